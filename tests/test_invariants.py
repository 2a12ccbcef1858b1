"""Contract of a sampler call: inputs untouched, explicit randomness, NFE, progress, callbacks, model kwargs."""

import re

import numpy as np
import pytest
from conftest import to_np

import mindspore as ms
from mindspore import Tensor, ops

from edm_sampler import EDMSampler, EulerEDMSampler, HeunEDMSampler, VanillaCFG, as_denoiser
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser

SAMPLERS = [EulerEDMSampler, HeunEDMSampler]
CHURN = dict(s_churn=10.0, s_tmin=0.01, s_tmax=60.0)


@pytest.mark.parametrize("sampler_cls", SAMPLERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("init_noise", ["sgm", "prescaled"])
def test_callers_x_is_not_modified(sampler_cls, dtype, init_noise, rng):
    x_np = rng.standard_normal((2, 2)).astype(dtype)
    x = Tensor(x_np)
    out = sampler_cls(**CHURN, num_steps=4, init_noise=init_noise)(GaussianMixtureDenoiser(), x, generator=0)
    assert out is not x
    np.testing.assert_array_equal(x.asnumpy(), x_np)
    assert x.dtype == Tensor(x_np).dtype


@pytest.mark.parametrize("sampler_cls", SAMPLERS)
def test_same_seed_same_bits_different_seed_different_bits(sampler_cls, rng):
    x = Tensor(rng.standard_normal((3, 2)).astype(np.float32))
    sampler = sampler_cls(**CHURN, num_steps=6)
    a = to_np(sampler(GaussianMixtureDenoiser(), x, generator=7))
    b = to_np(sampler(GaussianMixtureDenoiser(), x, generator=np.random.default_rng(7)))
    c = to_np(sampler(GaussianMixtureDenoiser(), x, generator=8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unseeded_calls_differ_and_never_touch_global_rng(rng):
    x = Tensor(rng.standard_normal((3, 2)).astype(np.float32))
    sampler = EulerEDMSampler(**CHURN, num_steps=6)
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    a = to_np(sampler(GaussianMixtureDenoiser(), x))
    b = to_np(sampler(GaussianMixtureDenoiser(), x))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("sampler_cls", SAMPLERS)
def test_per_sample_generators_make_items_batch_invariant(sampler_cls, rng):
    seeds = [11, 22, 33, 44]
    x = rng.standard_normal((4, 2)).astype(np.float32)
    sampler = sampler_cls(**CHURN, num_steps=6)
    model = GaussianMixtureDenoiser()
    batch = to_np(sampler(model, Tensor(x), generator=[np.random.default_rng(s) for s in seeds]))
    for k, seed in enumerate(seeds):
        alone = to_np(sampler(model, Tensor(x[k : k + 1]), generator=[seed]))
        np.testing.assert_array_equal(alone[0], batch[k])
    reordered = to_np(sampler(model, Tensor(x[::-1].copy()), generator=seeds[::-1]))
    np.testing.assert_array_equal(reordered[::-1], batch)


def test_randn_with_generator_list_is_batch_invariant():
    from edm_sampler import randn

    batch = to_np(randn((3, 2, 2), [5, 6, 7]))
    np.testing.assert_array_equal(to_np(randn((1, 2, 2), [6]))[0], batch[1])
    np.testing.assert_array_equal(batch[0], np.random.default_rng(5).standard_normal((2, 2), dtype=np.float32))


def _counting_model(calls):
    def model(x, sigma, cond, **kwargs):
        calls.append({"batch": x.shape[0], "kwargs": kwargs, "cond": cond})
        return x * 0.5

    return model


@pytest.mark.parametrize("sampler_cls, nfe", [(EulerEDMSampler, lambda n: n), (HeunEDMSampler, lambda n: 2 * n - 1)])
@pytest.mark.parametrize("n", [1, 2, 18])
def test_nfe_and_model_kwargs_reach_every_evaluation(sampler_cls, nfe, n):
    calls = []
    sampler = sampler_cls(num_steps=n)
    marker = object()
    sampler(_counting_model(calls), Tensor(np.ones((2, 3), np.float32)), model_kwargs={"extra": marker})
    assert sampler.last_nfe == nfe(n) == len(calls)
    assert all(c["kwargs"] == {"extra": marker} for c in calls)


def test_cfg_doubles_the_batch_not_the_nfe():
    calls = []
    sampler = HeunEDMSampler(num_steps=5, guider_config=VanillaCFG(scale=3.0))
    cond = {"vector": Tensor(np.ones((2, 4), np.float32)), "scalar_key": 1}
    uc = {"vector": Tensor(np.zeros((2, 4), np.float32)), "scalar_key": 1}
    sampler(_counting_model(calls), Tensor(np.ones((2, 3), np.float32)), cond, uc)
    assert sampler.last_nfe == 9 == len(calls)
    assert all(c["batch"] == 4 for c in calls)
    stacked = to_np(calls[0]["cond"]["vector"])
    np.testing.assert_array_equal(stacked, np.concatenate([np.zeros((2, 4)), np.ones((2, 4))]))  # [uc; c]
    assert calls[0]["cond"]["scalar_key"] == 1


def test_cfg_combines_uncond_and_cond_outputs():
    def model(x, sigma, cond, **kwargs):
        return x * 0.0 + cond["vector"][:, :1]  # denoised = the vector's first entry, per sample

    cond = {"vector": Tensor(np.full((2, 1), 2.0, np.float32))}
    uc = {"vector": Tensor(np.full((2, 1), 0.5, np.float32))}
    seen = []
    EulerEDMSampler(num_steps=1, guider_config=VanillaCFG(scale=3.0))(
        model, Tensor(np.ones((2, 1), np.float32)), cond, uc, callback=lambda info: seen.append(to_np(info["denoised"]))
    )
    np.testing.assert_allclose(seen[0], np.full((2, 1), 0.5 + 3.0 * (2.0 - 0.5)))


@pytest.mark.parametrize("sampler_cls", SAMPLERS)
def test_progress_bar_total_and_label_are_the_step_count(sampler_cls, capsys):
    sampler_cls(num_steps=7)(GaussianDenoiser(), Tensor(np.ones((1, 2), np.float32)), disable=False)
    err = capsys.readouterr().err
    assert f"{sampler_cls.__name__} (7 steps)" in err
    assert re.search(r"\b7/7\b", err) and not re.search(r"/8\b", err)


def test_progress_bar_hidden_by_default_and_shown_when_verbose(capsys):
    x = Tensor(np.ones((1, 2), np.float32))
    EulerEDMSampler(num_steps=3)(GaussianDenoiser(), x)
    assert capsys.readouterr().err == ""
    EulerEDMSampler(num_steps=3, verbose=True)(GaussianDenoiser(), x)
    assert "3/3" in capsys.readouterr().err
    EulerEDMSampler(num_steps=3, verbose=True)(GaussianDenoiser(), x, disable=True)
    assert capsys.readouterr().err == ""


def test_callback_sees_every_step_with_kdiffusion_keys():
    infos = []
    n = 4
    sampler = HeunEDMSampler(s_churn=40.0, num_steps=n)
    sampler(GaussianDenoiser(), Tensor(np.ones((2, 2), np.float32)), generator=0, callback=infos.append)
    assert [info["i"] for info in infos] == list(range(n))
    assert all(set(info) == {"x", "i", "sigma", "sigma_hat", "denoised"} for info in infos)
    sigmas = sampler.get_sigmas(n)
    for info in infos:
        gamma = sampler.gamma(info["sigma"], n)
        assert info["sigma"] == pytest.approx(sigmas[info["i"]])
        assert info["sigma_hat"] == pytest.approx(info["sigma"] * (1 + gamma))
        # denoised is D(x_hat, sigma_hat) for the state handed to the callback
        expected = to_np(info["x"]) * 0.25 / (info["sigma_hat"] ** 2 + 0.25)
        np.testing.assert_allclose(to_np(info["denoised"]), expected, rtol=1e-5)


class FakeEngine:
    """mindone's DiffusionEngine surface: .model, .denoiser -> scalings, .openai_input_warpper."""

    def __init__(self):
        self.calls = []
        self.denoiser = self._scalings
        self.model = self._network

    @staticmethod
    def _scalings(sigma, ndim):
        shape = (-1,) + (1,) * (ndim - 1)
        c_skip = (0.25 / (sigma**2 + 0.25)).reshape(shape)
        c_out = (sigma * 0.5 / ops.sqrt(sigma**2 + 0.25)).reshape(shape)
        c_in = (1 / ops.sqrt(sigma**2 + 0.25)).reshape(shape)
        return c_skip, c_out, c_in, 0.25 * ops.log(sigma)

    def _network(self, x, c_noise, context=None, y=None, **kwargs):
        self.calls.append(kwargs)
        return (x * 0.1 + y[:, :1].reshape((-1, 1))).astype(ms.float16)

    @staticmethod
    def openai_input_warpper(cond):
        return {"y": cond["vector"]}


def test_mindone_engine_matches_equivalent_callable(rng):
    engine = FakeEngine()
    cond = {"vector": Tensor(np.full((2, 3), 0.3, np.float32))}
    uc = {"vector": Tensor(np.zeros((2, 3), np.float32))}
    x = Tensor(rng.standard_normal((2, 1)).astype(np.float32))

    def same_as_callable(x, sigma, cond, **kwargs):
        c_skip, c_out, c_in, _ = FakeEngine._scalings(sigma, x.ndim)
        net = (x * c_in * 0.1 + cond["vector"][:, :1]).astype(ms.float16).astype(ms.float32)
        return net * c_out + x * c_skip

    sampler = HeunEDMSampler(num_steps=5, guider_config=VanillaCFG(scale=2.0))
    via_engine = to_np(sampler(engine, x, cond, uc, model_kwargs={"adapter_states": 1}))
    via_callable = to_np(sampler(same_as_callable, x, cond, uc))
    np.testing.assert_allclose(via_engine, via_callable, rtol=1e-6)
    assert len(engine.calls) == 9 and all(c == {"adapter_states": 1} for c in engine.calls)
    assert callable(as_denoiser(engine)) and type(as_denoiser(engine)).__name__ == "MindoneEngineDenoiser"


def test_edm_sampler_itself_is_usable_and_equals_euler():
    x = Tensor(np.ones((2, 2), np.float32))
    a = to_np(EDMSampler(**CHURN, num_steps=5)(GaussianMixtureDenoiser(), x, generator=3))
    b = to_np(EulerEDMSampler(**CHURN, num_steps=5)(GaussianMixtureDenoiser(), x, generator=3))
    np.testing.assert_array_equal(a, b)


def test_num_steps_at_call_overrides_constructor():
    sampler = EulerEDMSampler(num_steps=3)
    sampler(GaussianDenoiser(), Tensor(np.ones((1, 2), np.float32)), num_steps=9)
    assert sampler.last_nfe == 9 and sampler.num_steps == 3
