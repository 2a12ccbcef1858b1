"""graph_loop=True: the whole EDM loop as one compiled graph equals the step-by-step sampler."""

from __future__ import annotations

import numpy as np
import pytest
from realnets import SHAPE, TRACES, B, DoubleChannelNet, OneChannelNet, TracedNet, TupleNet, conditioning, small_net

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    DiscreteDenoiser,
    EDMScaling,
    EpsScaling,
    EulerEDMSampler,
    HeunEDMSampler,
    LegacyDDPMDiscretization,
    ModelOutputError,
    VanillaCFG,
    randn,
)


def run(sampler, denoiser, seed=0, guided=True, **kwargs):
    cond, uc = conditioning(seed)
    noise = randn((B, *SHAPE), generator=seed)
    return sampler(denoiser, noise, cond, uc if guided else None, generator=seed + 7, **kwargs).asnumpy()


@pytest.fixture(params=["pynative", "graph"])
def mode(request):
    ms.set_context(mode=ms.GRAPH_MODE if request.param == "graph" else ms.PYNATIVE_MODE)
    yield request.param
    ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("sampler_cls", [EulerEDMSampler, HeunEDMSampler])
@pytest.mark.parametrize("s_churn", [0.0, 3.0])
@pytest.mark.parametrize("guided", [False, True])
def test_graph_loop_equals_step_by_step(mode, sampler_cls, s_churn, guided):
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    kwargs = {"num_steps": 4, "s_churn": s_churn, "s_tmax": 20.0}
    if guided:
        kwargs["guider_config"] = VanillaCFG(2.5)
    steps = sampler_cls(**kwargs)
    loop = sampler_cls(graph_loop=True, **kwargs)
    expected = run(steps, denoiser, guided=guided)
    got = run(loop, denoiser, guided=guided)
    assert loop.last_nfe == steps.last_nfe == (4 if sampler_cls is EulerEDMSampler else 7)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_graph_loop_with_a_discrete_denoiser_and_injected_noise():
    denoiser = DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization()).bind(small_net())
    kwargs = {"num_steps": 5, "s_churn": 2.0, "s_tmax": 10.0, "discretization_config": LegacyDDPMDiscretization()}
    outputs = []
    for graph_loop in (False, True):
        rng = np.random.default_rng(3)
        calls = []

        def noise_sampler(sigma, sigma_next, rng=rng, calls=calls):
            calls.append((sigma, sigma_next))
            return rng.standard_normal((B, *SHAPE), dtype=np.float32)

        sampler = HeunEDMSampler(graph_loop=graph_loop, guider_config=VanillaCFG(4.0), **kwargs)
        outputs.append(run(sampler, denoiser, noise_sampler=noise_sampler))
        outputs.append(calls)
    np.testing.assert_allclose(outputs[2], outputs[0], rtol=1e-6, atol=1e-6 * np.abs(outputs[0]).max())
    assert outputs[3] == outputs[1] and len(outputs[1]) > 0  # the same draws, in the same order


def test_graph_loop_with_a_float16_network(mode):
    """The network input, c_noise and conditioning are cast to float16 inside the graph; the state stays float32."""
    denoiser = Denoiser(EDMScaling()).bind(small_net(dtype=ms.float16))
    kwargs = {"num_steps": 3, "s_churn": 3.0, "s_tmax": 20.0, "guider_config": VanillaCFG(2.0)}
    expected = run(EulerEDMSampler(**kwargs), denoiser)
    got = run(EulerEDMSampler(graph_loop=True, **kwargs), denoiser)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_graph_loop_compiles_once(mode):
    denoiser = Denoiser(EDMScaling()).bind(small_net(TracedNet))
    sampler = EulerEDMSampler(num_steps=4, s_churn=3.0, guider_config=VanillaCFG(2.0), graph_loop=True)
    del TRACES[:]
    run(sampler, denoiser, seed=0)
    first = len(TRACES)
    for seed in (1, 2):
        run(sampler, denoiser, seed=seed)
    assert first >= 1 and len(TRACES) == first


@pytest.mark.parametrize(
    "denoiser, call_kwargs, sampler_kwargs, message",
    [
        (lambda: lambda x, s, c: x, {}, {}, "Denoiser\\(...\\).bind\\(net\\) with an nn.Cell net"),
        (lambda: Denoiser(EDMScaling()).bind(small_net()), {"callback": print}, {}, "a callback cannot run"),
        (lambda: Denoiser(EDMScaling()).bind(small_net()), {"model_kwargs": {"a": Tensor(1.0)}}, {}, "model_kwargs"),
        (lambda: Denoiser(EDMScaling()).bind(small_net()), {}, {"check_finite": "step"}, "check_finite='step'"),
    ],
    ids=["plain-callable", "callback", "model_kwargs", "check_finite-step"],
)
def test_graph_loop_refuses_what_cannot_run_in_a_graph(denoiser, call_kwargs, sampler_kwargs, message):
    sampler = EulerEDMSampler(num_steps=3, graph_loop=True, **sampler_kwargs)
    with pytest.raises(ValueError, match=f"graph_loop=True: .*{message}"):
        run(sampler, denoiser(), guided=False, **call_kwargs)


def test_graph_loop_refuses_a_sampler_with_its_own_step():
    class MyEuler(EulerEDMSampler):
        def step(self, run, x, sigma, sigma_next):
            return super().step(run, x, sigma, sigma_next)

    with pytest.raises(ValueError, match="graph_loop=True: MyEuler overrides step"):
        run(MyEuler(num_steps=3, graph_loop=True), Denoiser(EDMScaling()).bind(small_net()), guided=False)


@pytest.mark.parametrize("net_cls", [TupleNet, DoubleChannelNet, OneChannelNet])
def test_graph_loop_network_errors_are_model_output_errors(mode, net_cls):
    """Including the output that would broadcast silently: (B, 1, H, W) against x's (B, C, H, W)."""
    sampler = EulerEDMSampler(num_steps=3, guider_config=VanillaCFG(2.0), graph_loop=True)
    with pytest.raises(ModelOutputError, match=r"(?s)graph_loop=True\) failed: .*called as network"):
        run(sampler, Denoiser(EDMScaling()).bind(small_net(net_cls)))


def test_graph_loop_must_be_a_bool():
    with pytest.raises(TypeError, match="graph_loop must be True or False"):
        EulerEDMSampler(graph_loop="yes")
