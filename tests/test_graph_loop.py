"""graph_loop=True: the whole call as one compiled graph equals the step-by-step sampler, for every sampler (VE and
flow, deterministic, ancestral, multistep, SDE), with CFG and the video guiders, and compiles once."""

from __future__ import annotations

import numpy as np
import pytest
from realnets import SHAPE, TRACES, B, DoubleChannelNet, OneChannelNet, TracedNet, TupleNet, conditioning, small_net

import mindspore as ms
from mindspore import Tensor

import edm_sampler
from edm_sampler import (
    BaseDiffusionSampler,
    Denoiser,
    DiscreteDenoiser,
    EDMDiscretization,
    EDMScaling,
    EpsScaling,
    EulerEDMSampler,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    HeunEDMSampler,
    LegacyDDPMDiscretization,
    Level,
    LinearPredictionGuider,
    ModelOutputError,
    VanillaCFG,
    randn,
)

# Every sampler of the family at non-default parameters (eta, s_noise, r != their defaults hide no factor).
FAMILY = [
    ("EulerEDMSampler", dict(s_churn=3.0, s_noise=1.003, s_tmax=20.0)),
    ("HeunEDMSampler", dict(s_churn=3.0, s_noise=0.97)),
    ("EulerAncestralSampler", dict(eta=0.7, s_noise=0.9)),
    ("DPMPP2SAncestralSampler", dict(eta=0.7)),
    ("DPMPP2MSampler", {}),
    ("LinearMultistepSampler", dict(order=3)),
    ("LCMSampler", {}),
    ("DPM2Sampler", dict(s_churn=3.0)),
    ("DPM2AncestralSampler", dict(eta=0.6, s_noise=1.1)),
    ("DPMPPSDESampler", dict(eta=0.8, r=0.4)),
    ("DPMPP2MSDESampler", dict(eta=0.8, solver_type="heun")),
    ("DPMPP3MSDESampler", dict(eta=0.8, s_noise=0.9)),
]
PARAMETRIZATIONS = {
    "ve": (EDMScaling, EDMDiscretization),
    "flow": (FlowVelocityScaling, lambda: FlowMatchDiscretization(shift=3.0)),
}


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


@pytest.mark.parametrize("parametrization", sorted(PARAMETRIZATIONS))
@pytest.mark.parametrize("name, params", FAMILY, ids=[f[0] for f in FAMILY])
def test_every_sampler_runs_as_one_graph(mode, name, params, parametrization):
    """The step-by-step call's bits (same draws, same NFE, the same kernels), and no compile after the first call."""
    scaling, schedule = PARAMETRIZATIONS[parametrization]
    denoiser = Denoiser(scaling()).bind(small_net(TracedNet))
    kwargs = dict(params, num_steps=5, discretization_config=schedule(), guider_config=VanillaCFG(2.5))
    steps = getattr(edm_sampler, name)(**kwargs)
    loop = getattr(edm_sampler, name)(graph_loop=True, **kwargs)
    expected = run(steps, denoiser)
    got = run(loop, denoiser)
    assert loop.last_nfe == steps.last_nfe
    np.testing.assert_array_equal(got, expected)
    del TRACES[:]
    again = run(loop, denoiser, seed=1)  # new noise, new conditioning: the same compiled loop
    assert TRACES == [] and not np.array_equal(again, got)


@pytest.mark.parametrize("name, params", [FAMILY[4], FAMILY[9], FAMILY[11]], ids=lambda v: str(v)[:20])
def test_graph_loop_with_a_video_guider(name, params):
    """Per-frame guidance scales enter the loop as per-step arrays."""
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    guider = LinearPredictionGuider(max_scale=3.0, num_frames=B // 2, min_scale=1.5)
    kwargs = dict(params, num_steps=4, guider_config=guider)
    expected = run(getattr(edm_sampler, name)(**kwargs), denoiser)
    got = run(getattr(edm_sampler, name)(graph_loop=True, **kwargs), denoiser)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


class ExponentialEuler(BaseDiffusionSampler):
    """A sampler written as the docs show (docs/plugins.md): DDIM in the data prediction (first-order DPM-Solver++),
    for VE and flow models alike:
    ``x <- (sigma_next / sigma) x + alpha_next (1 - sigma_next alpha / (sigma alpha_next)) D``."""

    def plan(self, p, sigmas, noise):
        for i in range(len(sigmas) - 1):
            sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
            a, a_next = p.alpha(sigma), p.alpha(sigma_next)
            yield {"at": Level(sigma), "x_weight": sigma_next / sigma, "d_weight": a_next - sigma_next * a / sigma}

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        return x * c["x_weight"] + denoised * c["d_weight"], state


@pytest.mark.parametrize("parametrization", sorted(PARAMETRIZATIONS))
def test_a_new_sampler_gets_graph_loop_without_extra_code(mode, parametrization):
    scaling, schedule = PARAMETRIZATIONS[parametrization]
    denoiser = Denoiser(scaling()).bind(small_net())
    kwargs = dict(num_steps=4, discretization_config=schedule(), guider_config=VanillaCFG(2.0))
    expected = run(ExponentialEuler(**kwargs), denoiser)
    got = run(ExponentialEuler(graph_loop=True, **kwargs), denoiser)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    # it is DPM-Solver++(1): DPM++(2M)'s first step, and the same method as Euler for flow models
    one = edm_sampler.DPMPP2MSampler(num_steps=1, discretization_config=schedule(), guider_config=VanillaCFG(2.0))
    sigmas = [float(v) for v in schedule()(4)[:2]]
    np.testing.assert_allclose(
        run(ExponentialEuler(guider_config=VanillaCFG(2.0)), denoiser, sigmas=sigmas),
        run(one, denoiser, sigmas=sigmas),
        rtol=1e-5,
        atol=1e-6,
    )
    assert repr(ExponentialEuler(num_steps=4)) == "ExponentialEuler(num_steps=4 (default), init_noise='sgm')"


def test_a_step_that_is_not_a_staticmethod_is_refused_when_the_class_is_defined():
    with pytest.raises(TypeError, match=r"Bad.step must be a @staticmethod step\(m, x, state, c\)"):

        class Bad(BaseDiffusionSampler):
            def step(self, m, x, state, c):
                return x, state


@pytest.mark.parametrize("net_cls", [TupleNet, DoubleChannelNet, OneChannelNet])
def test_graph_loop_network_errors_are_model_output_errors(mode, net_cls):
    """Including the output that would broadcast silently: (B, 1, H, W) against x's (B, C, H, W)."""
    sampler = EulerEDMSampler(num_steps=3, guider_config=VanillaCFG(2.0), graph_loop=True)
    with pytest.raises(ModelOutputError, match=r"(?s)graph_loop=True\) failed: .*called as network"):
        run(sampler, Denoiser(EDMScaling()).bind(small_net(net_cls)))


def test_graph_loop_must_be_a_bool():
    with pytest.raises(TypeError, match="graph_loop must be True or False"):
        EulerEDMSampler(graph_loop="yes")
