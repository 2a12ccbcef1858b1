"""Preconditionings (c_skip, c_out, c_in, c_noise), sigma quantisation, and the denoiser adapters."""

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    DiscreteDenoiser,
    EDMScaling,
    EpsScaling,
    LegacyDDPMDiscretization,
    MindoneEngineDenoiser,
    VScaling,
    VScalingWithEDMcNoise,
    as_denoiser,
)

SIGMAS = np.array([0.002, 0.03, 0.2, 0.5, 1.0, 2.5, 14.6146, 80.0, 700.0], dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# float64 references
# ---------------------------------------------------------------------------------------------------------------------


def edm_ref(s, sigma_data=0.5):
    s = np.asarray(s, np.float64)
    sd2 = sigma_data**2
    return sd2 / (s**2 + sd2), s * sigma_data / np.sqrt(s**2 + sd2), 1.0 / np.sqrt(s**2 + sd2), np.log(s) / 4.0


def eps_ref(s):
    s = np.asarray(s, np.float64)
    return np.ones_like(s), -s, 1.0 / np.sqrt(s**2 + 1.0), s


def v_ref(s):
    s = np.asarray(s, np.float64)
    return 1.0 / (s**2 + 1.0), -s / np.sqrt(s**2 + 1.0), 1.0 / np.sqrt(s**2 + 1.0), s


def v_edm_ref(s):
    c_skip, c_out, c_in, _ = v_ref(s)
    return c_skip, c_out, c_in, np.log(np.asarray(s, np.float64)) / 4.0


SCALINGS = [
    pytest.param(EDMScaling, {}, edm_ref, id="edm"),
    pytest.param(EDMScaling, {"sigma_data": 1.0}, lambda s: edm_ref(s, 1.0), id="edm-sd1"),
    pytest.param(EDMScaling, {"sigma_data": 0.25}, lambda s: edm_ref(s, 0.25), id="edm-sd0.25"),
    pytest.param(EpsScaling, {}, eps_ref, id="eps"),
    pytest.param(VScaling, {}, v_ref, id="v"),
    pytest.param(VScalingWithEDMcNoise, {}, v_edm_ref, id="v-edm-c-noise"),
]


def _scalings_np(scaling, sigmas):
    out = scaling(Tensor(np.asarray(sigmas, np.float32)))
    assert len(out) == 4
    for t in out:
        assert isinstance(t, Tensor)
        assert t.dtype == ms.float32
        assert tuple(t.shape) == (len(sigmas),)
    return [t.asnumpy().astype(np.float64) for t in out]


# ---------------------------------------------------------------------------------------------------------------------
# Published values
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scaling, sigma, expected",
    [
        pytest.param(EDMScaling(sigma_data=0.5), 1.0, (0.2, 0.447214, 0.894427, 0.0), id="edm@1"),
        pytest.param(EDMScaling(sigma_data=0.5), 0.5, (0.5, 0.353553, 1.414214, -0.173287), id="edm@0.5"),
        pytest.param(EpsScaling(), 1.0, (1.0, -1.0, 0.707107, 1.0), id="eps@1"),
        pytest.param(VScaling(), 1.0, (0.5, -0.707107, 0.707107, 1.0), id="v@1"),
        pytest.param(VScalingWithEDMcNoise(), 1.0, (0.5, -0.707107, 0.707107, 0.0), id="v-edm@1"),
    ],
)
def test_scalings_published_values(scaling, sigma, expected):
    got = _scalings_np(scaling, [sigma])
    for name, value, want in zip(("c_skip", "c_out", "c_in", "c_noise"), got, expected):
        assert value[0] == pytest.approx(want, abs=1e-6), name


def test_edm_scaling_default_sigma_data_is_half():
    assert EDMScaling().sigma_data == 0.5
    np.testing.assert_allclose(_scalings_np(EDMScaling(), [1.0])[0], [0.2], rtol=1e-6)


@pytest.mark.parametrize("cls, params, ref", SCALINGS)
def test_scalings_match_float64_reference_over_batch(cls, params, ref):
    got = _scalings_np(cls(**params), SIGMAS)
    want = ref(SIGMAS.astype(np.float64))
    for name, value, expected in zip(("c_skip", "c_out", "c_in", "c_noise"), got, want):
        np.testing.assert_allclose(value, expected, rtol=2e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("cls, params, ref", SCALINGS)
def test_scalings_do_not_modify_sigma(cls, params, ref):
    sigma = Tensor(SIGMAS)
    c_skip, c_out, c_in, c_noise = cls(**params)(sigma)
    np.testing.assert_array_equal(sigma.asnumpy(), SIGMAS)


@pytest.mark.parametrize("value", [0.0, -0.5, float("nan"), float("inf")])
def test_edm_scaling_rejects_bad_sigma_data(value):
    with pytest.raises(ValueError, match="sigma_data"):
        EDMScaling(sigma_data=value)


# ---------------------------------------------------------------------------------------------------------------------
# DiscreteDenoiser quantisation (LegacyDDPM, 1000 levels, ascending)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def discrete():
    return DiscreteDenoiser(
        scaling_config={"target": "eps_scaling"}, num_idx=1000, discretization_config={"target": "legacy_ddpm"}
    )


@pytest.fixture(scope="module")
def levels():
    """The 1000 discrete noise levels, ascending, float64."""
    return LegacyDDPMDiscretization()(1000, do_append_zero=False, flip=True)


def test_discrete_levels_are_the_ascending_legacy_schedule(discrete, levels):
    assert discrete.sigmas_host.shape == (1000,)
    np.testing.assert_allclose(discrete.sigmas_host, levels, rtol=1e-12)
    assert np.all(np.diff(discrete.sigmas_host) > 0)
    assert isinstance(discrete.scaling, EpsScaling)


def test_sigma_to_idx_published_values(discrete):
    idx = discrete.sigma_to_idx(Tensor(np.array([1.0, 5.0, 0.03, 14.6146], np.float32)))
    assert idx.dtype in (ms.int32, ms.int64)
    np.testing.assert_array_equal(idx.asnumpy(), [354, 795, 0, 999])


def test_quantized_sigma_published_values(discrete):
    q = discrete.possibly_quantize_sigma(Tensor(np.array([1.0, 5.0, 0.03, 14.6146], np.float32))).asnumpy()
    np.testing.assert_allclose(q, [1.000365, 4.996075, 0.029167, 14.614641], rtol=1e-5)


def test_sigma_to_idx_is_nearest_level(discrete, levels):
    rng = np.random.default_rng(0)
    sigmas = np.exp(rng.uniform(np.log(0.02), np.log(20.0), size=64)).astype(np.float32)
    idx = discrete.sigma_to_idx(Tensor(sigmas)).asnumpy()
    dist = np.abs(sigmas.astype(np.float64)[:, None] - levels[None, :])
    chosen = dist[np.arange(len(sigmas)), idx]
    # nearest level (allowing float32 ties)
    assert np.all(chosen <= dist.min(axis=1) + 1e-5 * sigmas)


def test_discrete_scalings_use_quantized_sigma_and_integer_c_noise(discrete, levels):
    sigma = np.array([1.0, 5.0], np.float32)
    c_skip, c_out, c_in, c_noise = discrete.scalings(Tensor(sigma), 4)
    assert tuple(c_skip.shape) == (2, 1, 1, 1) and tuple(c_noise.shape) == (2,)
    assert c_noise.dtype in (ms.int32, ms.int64)
    np.testing.assert_array_equal(c_noise.asnumpy(), [354, 795])
    sq = levels[[354, 795]]
    np.testing.assert_allclose(c_out.asnumpy().ravel(), -sq, rtol=1e-6)
    np.testing.assert_allclose(c_in.asnumpy().ravel(), 1 / np.sqrt(sq**2 + 1), rtol=1e-6)
    np.testing.assert_allclose(c_skip.asnumpy().ravel(), [1.0, 1.0])


# ---------------------------------------------------------------------------------------------------------------------
# Denoiser.__call__ / bind with a fake network
# ---------------------------------------------------------------------------------------------------------------------


def make_net(out_dtype=ms.float32):
    """A plain function standing in for a network; it records every call."""
    calls = []

    def net(x, c_noise, cond, **kwargs):
        calls.append({"x": x, "c_noise": c_noise, "cond": cond, "kwargs": kwargs})
        b = x.shape[0]
        noise_term = c_noise.astype(ms.float32).reshape((b, 1, 1, 1))
        out = x * 3.0 - 1.0 + noise_term * 0.01 + cond["crossattn"].reshape((b, 1, 1, 1)) + kwargs.get("bias", 0.0)
        return out.astype(out_dtype)

    net.calls = calls
    return net


def net_ref(x_in, c_noise, crossattn, bias=0.0):
    b = x_in.shape[0]
    return (
        3.0 * x_in
        - 1.0
        + 0.01 * np.asarray(c_noise, np.float64).reshape(b, 1, 1, 1)
        + crossattn.reshape(b, 1, 1, 1)
        + bias
    )


@pytest.fixture
def inputs():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    sigma = np.array([0.5, 2.0, 11.0], np.float32)
    crossattn = np.array([0.1, -0.2, 0.3], np.float32)
    return x, sigma, crossattn


def _expand(v):
    return np.asarray(v, np.float64).reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("via", ["bind", "call"])
def test_denoiser_edm_matches_numpy(inputs, via):
    x, sigma, crossattn = inputs
    den = Denoiser(scaling_config={"target": "edm_scaling"})
    net = make_net()
    cond = {"crossattn": Tensor(crossattn)}
    if via == "bind":
        out = den.bind(net)(Tensor(x), Tensor(sigma), cond, bias=0.25)
    else:
        out = den(net, Tensor(x), Tensor(sigma), cond, bias=0.25)

    c_skip, c_out, c_in, c_noise = edm_ref(sigma.astype(np.float64))
    x64 = x.astype(np.float64)
    expected = _expand(c_skip) * x64 + _expand(c_out) * net_ref(_expand(c_in) * x64, c_noise, crossattn, 0.25)
    assert out.dtype == ms.float32 and tuple(out.shape) == x.shape
    np.testing.assert_allclose(out.asnumpy(), expected, rtol=1e-5, atol=1e-5)

    assert len(net.calls) == 1
    call = net.calls[0]
    np.testing.assert_allclose(call["x"].asnumpy(), _expand(c_in) * x64, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(call["c_noise"].asnumpy(), c_noise, rtol=1e-5, atol=1e-7)
    assert call["cond"]["crossattn"] is cond["crossattn"]  # the same tensors (marked ms.mutable for graph mode)
    assert call["kwargs"] == {"bias": 0.25}


def test_denoiser_does_not_modify_inputs(inputs):
    x, sigma, crossattn = inputs
    x_t, sigma_t = Tensor(x), Tensor(sigma)
    Denoiser(scaling_config={"target": "edm_scaling"}).bind(make_net())(x_t, sigma_t, {"crossattn": Tensor(crossattn)})
    np.testing.assert_array_equal(x_t.asnumpy(), x)
    np.testing.assert_array_equal(sigma_t.asnumpy(), sigma)


def test_denoiser_casts_float16_network_output_to_float32(inputs):
    x, sigma, crossattn = inputs
    net = make_net(out_dtype=ms.float16)
    out = Denoiser(scaling_config={"target": "edm_scaling"}).bind(net)(
        Tensor(x), Tensor(sigma), {"crossattn": Tensor(crossattn)}
    )
    assert out.dtype == ms.float32
    c_skip, c_out, c_in, c_noise = edm_ref(sigma.astype(np.float64))
    x64 = x.astype(np.float64)
    expected = _expand(c_skip) * x64 + _expand(c_out) * net_ref(_expand(c_in) * x64, c_noise, crossattn)
    np.testing.assert_allclose(out.asnumpy(), expected, rtol=2e-3, atol=2e-3)


def test_discrete_denoiser_call_matches_numpy(discrete, levels, inputs):
    x, sigma, crossattn = inputs
    net = make_net()
    out = discrete.bind(net)(Tensor(x), Tensor(sigma), {"crossattn": Tensor(crossattn)}, bias=-0.5)

    idx = np.abs(sigma.astype(np.float64)[:, None] - levels[None, :]).argmin(axis=1)
    sq = levels[idx]
    x64 = x.astype(np.float64)
    c_in = 1.0 / np.sqrt(sq**2 + 1.0)
    expected = x64 + _expand(-sq) * net_ref(_expand(c_in) * x64, idx, crossattn, -0.5)
    np.testing.assert_allclose(out.asnumpy(), expected, rtol=1e-5, atol=1e-4)

    call = net.calls[0]
    assert call["c_noise"].dtype in (ms.int32, ms.int64)
    np.testing.assert_array_equal(call["c_noise"].asnumpy(), idx)
    np.testing.assert_allclose(call["x"].asnumpy(), _expand(c_in) * x64, rtol=1e-6, atol=1e-7)
    assert call["kwargs"] == {"bias": -0.5}


def test_discrete_denoiser_without_c_noise_quantisation(levels, inputs):
    x, sigma, crossattn = inputs
    den = DiscreteDenoiser(
        scaling_config={"target": "eps_scaling"},
        num_idx=1000,
        discretization_config={"target": "legacy_ddpm"},
        quantize_c_noise=False,
    )
    net = make_net()
    den.bind(net)(Tensor(x), Tensor(sigma), {"crossattn": Tensor(crossattn)})
    idx = np.abs(sigma.astype(np.float64)[:, None] - levels[None, :]).argmin(axis=1)
    c_noise = net.calls[0]["c_noise"]
    assert c_noise.dtype == ms.float32
    np.testing.assert_allclose(c_noise.asnumpy(), levels[idx], rtol=1e-6)  # the quantised sigma, not an index


# ---------------------------------------------------------------------------------------------------------------------
# MindoneEngineDenoiser / as_denoiser
# ---------------------------------------------------------------------------------------------------------------------


class FakeEngine:
    """The three attributes of a mindone DiffusionEngine that the adapter uses; EDM scalings, sigma_data = 0.5."""

    def __init__(self, out_dtype=ms.float32):
        self.calls = []
        self.out_dtype = out_dtype

        def model(x, t, **kwargs):
            self.calls.append({"x": x, "t": t, "kwargs": kwargs})
            b = x.shape[0]
            out = x * 2.0 + kwargs["context"].reshape((b, 1, 1, 1)) + t.reshape((b, 1, 1, 1)) * 0.5
            return (out + kwargs.get("shift", 0.0)).astype(self.out_dtype)

        self.model = model

    def denoiser(self, sigma, ndim):
        c_skip, c_out, c_in, c_noise = EDMScaling(0.5)(sigma)
        shape = tuple(sigma.shape) + (1,) * (ndim - 1)
        return c_skip.reshape(shape), c_out.reshape(shape), c_in.reshape(shape), c_noise

    def openai_input_warpper(self, cond):
        return {"context": cond["crossattn"]}

    def __call__(self, *args, **kwargs):  # an nn.Cell-like engine is callable too
        raise AssertionError("the engine itself must not be called as a denoiser")


def engine_ref(x, sigma, crossattn, shift=0.0):
    c_skip, c_out, c_in, c_noise = edm_ref(sigma.astype(np.float64))
    x64 = x.astype(np.float64)
    model_out = 2.0 * _expand(c_in) * x64 + _expand(crossattn) + 0.5 * _expand(c_noise) + shift
    return _expand(c_skip) * x64 + _expand(c_out) * model_out


@pytest.mark.parametrize("out_dtype, tol", [(ms.float32, 1e-5), (ms.float16, 3e-3)])
def test_mindone_engine_denoiser_matches_numpy(inputs, out_dtype, tol):
    x, sigma, crossattn = inputs
    engine = FakeEngine(out_dtype)
    den = MindoneEngineDenoiser(engine)
    context = Tensor(crossattn)
    out = den(Tensor(x), Tensor(sigma), {"crossattn": context}, shift=0.75)
    assert out.dtype == ms.float32
    np.testing.assert_allclose(out.asnumpy(), engine_ref(x, sigma, crossattn, 0.75), rtol=tol, atol=tol)

    assert len(engine.calls) == 1
    kwargs = engine.calls[0]["kwargs"]
    assert set(kwargs) == {"context", "shift"}
    assert kwargs["context"] is context
    assert kwargs["shift"] == 0.75
    c_skip, c_out, c_in, c_noise = edm_ref(sigma.astype(np.float64))
    np.testing.assert_allclose(engine.calls[0]["t"].asnumpy(), c_noise, rtol=1e-5)
    np.testing.assert_allclose(engine.calls[0]["x"].asnumpy(), _expand(c_in) * x, rtol=1e-6, atol=1e-7)


def test_as_denoiser_auto_detects_mindone_engine(inputs):
    x, sigma, crossattn = inputs
    engine = FakeEngine()
    den = as_denoiser(engine)
    assert isinstance(den, MindoneEngineDenoiser)
    assert den.engine is engine
    out = den(Tensor(x), Tensor(sigma), {"crossattn": Tensor(crossattn)})
    np.testing.assert_allclose(out.asnumpy(), engine_ref(x, sigma, crossattn), rtol=1e-5, atol=1e-5)
    assert as_denoiser(engine, kind="mindone").engine is engine


def test_as_denoiser_keeps_callables():
    def plain(x, sigma, cond=None):
        return x

    assert as_denoiser(plain) is plain
    assert as_denoiser(plain, kind="callable") is plain
    engine = FakeEngine()
    assert as_denoiser(engine, kind="callable") is engine
    wrapped = MindoneEngineDenoiser(engine)
    assert as_denoiser(wrapped) is wrapped


def test_as_denoiser_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        as_denoiser(object())
    with pytest.raises(TypeError, match="callable"):
        as_denoiser(42, kind="callable")


def test_as_denoiser_mindone_kind_needs_engine_attributes():
    class Partial:
        model = None

        def denoiser(self, sigma, ndim):
            return None

    with pytest.raises(TypeError, match="openai_input_warpper"):
        as_denoiser(Partial(), kind="mindone")
    # auto-detection needs all three attributes; a callable with only some of them stays a plain callable
    Partial.__call__ = lambda self, *a: None
    assert as_denoiser(Partial()).__class__ is Partial


@pytest.mark.parametrize("kind", ["bogus", "", "Mindone", None])
def test_as_denoiser_bad_kind(kind):
    with pytest.raises(ValueError, match="kind"):
        as_denoiser(lambda x, s, c: x, kind=kind)


def test_denoiser_accepts_a_third_party_tensor_scaling(inputs):
    """An sgm-style scaling written for Tensors (no host ``coefficients``) still works, with the same result."""

    class TensorEDMScaling:
        def __call__(self, sigma):
            assert isinstance(sigma, Tensor)
            c_skip = 0.25 / (sigma**2 + 0.25)
            c_out = sigma * 0.5 / (sigma**2 + 0.25) ** 0.5
            c_in = 1 / (sigma**2 + 0.25) ** 0.5
            return c_skip, c_out, c_in, sigma.log() / 4

    x, sigma, crossattn = inputs
    cond = {"crossattn": Tensor(crossattn)}
    got = Denoiser(TensorEDMScaling()).bind(make_net())(Tensor(x), Tensor(sigma), cond).asnumpy()
    expected = Denoiser(EDMScaling()).bind(make_net())(Tensor(x), Tensor(sigma), cond).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
