"""The model path with real MindSpore networks: graph mode without recompiles, bit reproducibility, fast path = plain
path, network dtype, and every failure on the network path as a clear error."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from realnets import (
    SHAPE,
    TRACES,
    B,
    DoubleChannelNet,
    OneChannelNet,
    TracedNet,
    TupleNet,
    _trace,
    conditioning,
    small_net,
)

import mindspore as ms
from mindspore import Tensor, nn

from edm_sampler import (
    Denoiser,
    DiscreteDenoiser,
    EDMDiscretization,
    EDMScaling,
    EpsScaling,
    EulerEDMSampler,
    HeunEDMSampler,
    IdentityGuider,
    LegacyDDPMDiscretization,
    ModelOutputError,
    VanillaCFG,
    as_denoiser,
    randn,
)


def sample(denoiser, guider=None, seed=0, steps=3, sampler_cls=EulerEDMSampler, model_kwargs=None, **kwargs):
    """One sampler call on fresh conditioning; churn on below sigma=10 (within a discrete denoiser's range)."""
    cond, uc = conditioning(seed)
    kwargs = {"s_churn": 1.0, "s_tmax": 10.0, **kwargs}
    sampler = sampler_cls(num_steps=steps, guider_config=guider, **kwargs)
    noise = randn((B, *SHAPE), generator=seed)
    uc = uc if guider is not None else None
    return sampler(denoiser, noise, cond, uc, generator=seed + 100, model_kwargs=model_kwargs).asnumpy()


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


GUIDERS = [pytest.param(None, id="unguided"), pytest.param(VanillaCFG(3.0), id="cfg")]


# ---------------------------------------------------------------------------------------------------------------------
# Compiles
# ---------------------------------------------------------------------------------------------------------------------


def test_trace_counter_detects_a_recompile(graph_mode):
    """The detector itself: a fresh plain dict per call recompiles a graph-mode network; ms.mutable does not."""
    net = small_net(TracedNet)
    x, c_noise = randn((B, *SHAPE), generator=0), Tensor(np.zeros(B, np.float32))
    del TRACES[:]
    for seed in range(3):
        net(x, c_noise, {"vector": conditioning(seed)[0]["vector"]})
    assert len(TRACES) == 3
    del TRACES[:]
    for seed in range(3):
        net(x, c_noise, ms.mutable({"vector": conditioning(seed)[0]["vector"]}))
    assert len(TRACES) == 1


@pytest.mark.parametrize("guider", GUIDERS)
@pytest.mark.parametrize("sampler_cls", [EulerEDMSampler, HeunEDMSampler])
def test_graph_mode_compiles_only_during_the_first_call(graph_mode, guider, sampler_cls):
    denoiser = Denoiser(EDMScaling()).bind(small_net(TracedNet))
    del TRACES[:]
    sample(denoiser, guider, seed=0, sampler_cls=sampler_cls)
    first = len(TRACES)
    assert first >= 1
    for seed in (1, 2):  # new conditioning tensors, new noise, same shapes
        sample(denoiser, guider, seed=seed, sampler_cls=sampler_cls)
    assert len(TRACES) == first, f"recompiled: {TRACES}"


def _jit_network(net):
    @ms.jit
    def network(x, c_noise, cond):
        return net(x, c_noise, cond)

    return network


@pytest.mark.parametrize("guider", GUIDERS)
def test_ms_jit_network_compiles_once(guider):
    """PyNative with an ms.jit network: the conditioning dict reaches it as a graph input, not a constant."""
    net = small_net(TracedNet)
    denoiser = Denoiser(EDMScaling()).bind(_jit_network(net), dtype=ms.float32)
    del TRACES[:]
    sample(denoiser, guider, seed=0)
    first = len(TRACES)
    for seed in (1, 2):
        sample(denoiser, guider, seed=seed)
    assert first >= 1 and len(TRACES) == first


class OpenAIStyleNet(nn.Cell):
    """mindone's UNet interface behind openai_input_warpper: model(x, timesteps, y=...)."""

    def __init__(self):
        super().__init__()
        self.net = small_net()

    def construct(self, x, timesteps, y=None):
        _trace("openai")
        return self.net(x, timesteps, {"vector": y})


class CellEngine:
    """A mindone DiffusionEngine whose .model is a real Cell, with EDM scalings."""

    def __init__(self):
        self.model = OpenAIStyleNet()

    def denoiser(self, sigma, ndim):
        c_skip, c_out, c_in, c_noise = EDMScaling()(sigma)
        shape = (-1,) + (1,) * (ndim - 1)
        return c_skip.reshape(shape), c_out.reshape(shape), c_in.reshape(shape), c_noise

    def openai_input_warpper(self, cond):
        return {"y": cond["vector"]}


@pytest.mark.parametrize("guider", GUIDERS)
def test_graph_mode_mindone_engine_compiles_once(graph_mode, guider):
    """The engine's conditioning reaches its model as keyword tensors: graph inputs, so no recompile either."""
    engine = CellEngine()
    del TRACES[:]
    reference = sample(engine, guider, seed=0)
    first = len(TRACES)
    for seed in (1, 2):
        sample(engine, guider, seed=seed)
    assert first >= 1 and len(TRACES) == first
    ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(sample(engine, guider, seed=0), reference, rtol=1e-6, atol=1e-6)


def test_graph_mode_with_model_kwargs_compiles_once(graph_mode):
    class KwNet(nn.Cell):
        def __init__(self):
            super().__init__()
            self.net = small_net()

        def construct(self, x, c_noise, cond=None, shift=None):
            _trace("kw")
            return self.net(x, c_noise, cond) + shift

    denoiser = Denoiser(EDMScaling()).bind(KwNet())
    cond, uc = conditioning(0)
    sampler = EulerEDMSampler(num_steps=3, guider_config=VanillaCFG(2.0))
    del TRACES[:]
    for seed in range(3):
        shift = Tensor(np.float32(seed))
        sampler(denoiser, randn((B, *SHAPE), generator=seed), cond, uc, model_kwargs={"shift": shift}).asnumpy()
        if seed == 0:
            first = len(TRACES)
    assert len(TRACES) == first


# ---------------------------------------------------------------------------------------------------------------------
# Bit reproducibility and fast path = plain path
# ---------------------------------------------------------------------------------------------------------------------

DENOISERS = {
    "edm": lambda: Denoiser(EDMScaling()),
    "discrete": lambda: DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization()),
}


def _schedule(kind):
    return LegacyDDPMDiscretization() if kind == "discrete" else EDMDiscretization()


@pytest.mark.parametrize("kind", sorted(DENOISERS))
def test_thirty_identical_calls_give_one_output(kind):
    denoiser = DENOISERS[kind]().bind(small_net())
    outputs = {digest(sample(denoiser, VanillaCFG(2.5), discretization_config=_schedule(kind))) for _ in range(30)}
    assert len(outputs) == 1


@pytest.mark.parametrize("kind", sorted(DENOISERS))
def test_graph_mode_is_reproducible(graph_mode, kind):
    denoiser = DENOISERS[kind]().bind(small_net())
    outputs = {digest(sample(denoiser, VanillaCFG(2.5), discretization_config=_schedule(kind))) for _ in range(5)}
    assert len(outputs) == 1


class SgmStyleGuider:
    """A third-party guider that only has sgm's protocol (delegating to VanillaCFG's)."""

    def __init__(self, scale):
        self.cfg = VanillaCFG(scale)

    def prepare_inputs(self, x, sigma, cond, uc):
        return self.cfg.prepare_inputs(x, sigma, cond, uc)

    def __call__(self, denoised, sigma):
        return self.cfg(denoised, sigma)


@pytest.mark.parametrize("kind", sorted(DENOISERS))
@pytest.mark.parametrize("sampler_cls", [EulerEDMSampler, HeunEDMSampler])
def test_fast_path_equals_plain_paths_bit_for_bit(kind, sampler_cls):
    """Bound network (host coefficients, conditioning once) == the same denoiser as an opaque callable == sgm's
    per-evaluation protocol with a third-party guider."""
    bound = DENOISERS[kind]().bind(small_net())
    schedule = _schedule(kind)

    def opaque(x, sigma, cond):
        return bound(x, sigma, cond)

    fast = sample(bound, VanillaCFG(2.5), sampler_cls=sampler_cls, discretization_config=schedule)
    plain = sample(opaque, VanillaCFG(2.5), sampler_cls=sampler_cls, discretization_config=schedule)
    sgm = sample(opaque, SgmStyleGuider(2.5), sampler_cls=sampler_cls, discretization_config=schedule)
    np.testing.assert_array_equal(fast, plain)
    np.testing.assert_array_equal(fast, sgm)


@pytest.mark.parametrize("guider", GUIDERS)
def test_graph_mode_fused_path_matches_pynative(guider):
    """In graph mode the glue runs inside the network's graph; graph kernels may round differently (<= 1e-6)."""
    net = small_net()
    pynative = sample(Denoiser(EDMScaling()).bind(net), guider)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        graph = sample(Denoiser(EDMScaling()).bind(net), guider)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(graph, pynative, rtol=1e-6, atol=1e-6 * np.abs(pynative).max())


def test_bound_denoiser_matches_its_definition():
    """D(x, sigma) = c_skip x + c_out F(c_in x, c_noise) with float64 EDM coefficients, F the network itself."""
    net = small_net()
    x = randn((B, *SHAPE), generator=3) * 5.0
    sigma = np.array([0.7, 12.0], np.float32)
    cond, _ = conditioning(0)
    out = Denoiser(EDMScaling()).bind(net)(x, Tensor(sigma), cond).asnumpy().astype(np.float64)
    s = sigma.astype(np.float64).reshape(-1, 1, 1, 1)
    c_skip, c_out, c_in = 0.25 / (s**2 + 0.25), s * 0.5 / np.sqrt(s**2 + 0.25), 1 / np.sqrt(s**2 + 0.25)
    f = net(Tensor((x.asnumpy() * c_in).astype(np.float32)), Tensor(np.log(sigma) / 4), cond).asnumpy()
    np.testing.assert_allclose(out, c_skip * x.asnumpy() + c_out * f, rtol=1e-5, atol=1e-5)


def test_generator_noise_is_drawn_in_step_order():
    """The churn noise is the caller's generator stream, drawn in step order, and nothing more is drawn from it."""
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    steps = 4
    reference = np.random.default_rng(5)
    in_place = EulerEDMSampler(num_steps=steps, s_churn=2.0)(
        denoiser,
        randn((B, *SHAPE), generator=0),
        conditioning(0)[0],
        noise_sampler=lambda s, sn: reference.standard_normal((B, *SHAPE), dtype=np.float32),
    )
    generator = np.random.default_rng(5)
    drawn = EulerEDMSampler(num_steps=steps, s_churn=2.0)(
        denoiser, randn((B, *SHAPE), generator=0), conditioning(0)[0], generator=generator
    )
    np.testing.assert_array_equal(drawn.asnumpy(), in_place.asnumpy())
    assert generator.bit_generator.state == reference.bit_generator.state


# ---------------------------------------------------------------------------------------------------------------------
# Network dtype
# ---------------------------------------------------------------------------------------------------------------------


def test_float16_network_runs_with_float32_state():
    net32, net16 = small_net(), small_net(dtype=ms.float16)
    bound16 = Denoiser(EDMScaling()).bind(net16)
    assert bound16.dtype == ms.float16  # read from the parameters
    seen = []

    def spy(x, c_noise, cond):
        seen.append((x.dtype, c_noise.dtype, cond["vector"].dtype))
        return net16(x, c_noise, cond)

    out16 = sample(Denoiser(EDMScaling()).bind(spy, dtype=ms.float16), VanillaCFG(2.0))
    out32 = sample(Denoiser(EDMScaling()).bind(net32), VanillaCFG(2.0))
    assert out16.dtype == np.float32
    assert set(seen) == {(ms.float16, ms.float16, ms.float16)}
    np.testing.assert_allclose(out16, out32, rtol=0, atol=2e-2 * np.abs(out32).max())
    np.testing.assert_array_equal(sample(bound16, VanillaCFG(2.0)), out16)


@pytest.mark.parametrize("network_dtype", [ms.float32, ms.float16])
def test_the_output_dtype_is_read_once_per_call(monkeypatch, network_dtype):
    """Reading a Tensor's dtype waits for the op that makes it: the model path reads the network output's dtype at
    the first evaluation's check only (per evaluation it stalled the host ~0.4 ms a step). A float16 output is still
    cast on every evaluation."""
    import sys

    reads = []
    dtype = Tensor.dtype

    def counted(tensor):
        if sys._getframe(1).f_code.co_filename.endswith("model_path.py"):
            reads.append(1)
        return dtype.fget(tensor)

    def network(x, c_noise, cond):
        return (x * 0.5).astype(network_dtype)

    denoiser = Denoiser(EDMScaling()).bind(network, dtype=ms.float32)
    noise = randn((1, 2, 4, 4), generator=0)
    monkeypatch.setattr(Tensor, "dtype", property(counted))
    counts = []
    for steps in (2, 8):
        del reads[:]
        out = EulerEDMSampler(num_steps=steps)(denoiser, noise, generator=0)
        counts.append(len(reads))
    monkeypatch.undo()
    assert counts[0] == counts[1] > 0  # the first evaluation's check only, however many evaluations follow
    assert out.dtype == ms.float32


def test_bad_network_dtype():
    with pytest.raises(ValueError, match="dtype must be one of"):
        Denoiser(EDMScaling()).bind(small_net(), dtype=ms.int32)


# ---------------------------------------------------------------------------------------------------------------------
# Errors on the network path
# ---------------------------------------------------------------------------------------------------------------------


class NoCondNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.net = small_net()

    def construct(self, x, c_noise):
        return self.net(x, c_noise)


class FakeEngine:
    """mindone's DiffusionEngine surface around a real Cell: model(x, c_noise, **{"y": vector})."""

    def __init__(self, net):
        self.net = net

    def model(self, x, c_noise, y=None, **kwargs):
        return self.net(x, c_noise, {"vector": y}, **kwargs)

    def denoiser(self, sigma, ndim):
        c_skip, c_out, c_in, c_noise = EDMScaling()(sigma)
        shape = (-1,) + (1,) * (ndim - 1)
        return c_skip.reshape(shape), c_out.reshape(shape), c_in.reshape(shape), c_noise

    def openai_input_warpper(self, cond):
        return {"y": cond["vector"]}


WRAPPERS = {
    "denoiser": lambda net: Denoiser(EDMScaling()).bind(net),
    "discrete": lambda net: DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization()).bind(net),
    "mindone": lambda net: FakeEngine(net),
}


def run_wrapped(wrapper, net, **kwargs):
    guider = VanillaCFG(2.0)
    schedule = LegacyDDPMDiscretization() if wrapper == "discrete" else EDMDiscretization()
    return sample(WRAPPERS[wrapper](net), guider, discretization_config=schedule, **kwargs)


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
@pytest.mark.parametrize(
    "net_cls, message",
    [
        (
            TupleNet,
            r"returned tuple\(Tensor\(4, 4, 8, 8\) Float32, Tensor\(4, 4, 8, 8\) Float32\) at step 0 "
            r"\(sigma=[0-9.]+\); expected a Tensor of shape \(4, 4, 8, 8\)",
        ),
        (DoubleChannelNet, r"returned shape \(4, 8, 8, 8\) at step 0 \(sigma=[0-9.]+\); expected \(4, 4, 8, 8\)"),
        (OneChannelNet, r"returned shape \(4, 1, 8, 8\) at step 0 \(sigma=[0-9.]+\); expected \(4, 4, 8, 8\)"),
    ],
    ids=["tuple", "2C-channels", "1-channel"],
)
@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_network_returning_the_wrong_thing(wrapper, net_cls, message, mode):
    if mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    try:
        with pytest.raises(ModelOutputError, match=message):
            run_wrapped(wrapper, small_net(net_cls))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_unexpected_keyword_names_the_step_and_the_call(wrapper):
    with pytest.raises(ModelOutputError, match=r"(?s)raised TypeError at step 0 \(sigma=[0-9.]+\): .*bogus") as info:
        run_wrapped(wrapper, small_net(), model_kwargs={"bogus": Tensor(np.float32(1))})
    assert "bogus" in str(info.value) and "called as" in str(info.value)


def test_network_without_a_cond_parameter():
    with pytest.raises(ModelOutputError, match=r"(?s)raised TypeError at step 0 .*called as network NoCondNet\("):
        run_wrapped("denoiser", NoCondNet())


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_cond_without_the_key_the_network_reads(mode):
    if mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    try:
        sampler = EulerEDMSampler(num_steps=2)
        with pytest.raises(ModelOutputError, match=r"(?s)at step 0 \(sigma=80\).*\{'text': Tensor"):
            sampler(Denoiser(EDMScaling()).bind(small_net()), randn((B, *SHAPE), generator=0), {"text": Tensor([1.0])})
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("guider", GUIDERS)
def test_numpy_conditioning_is_refused_before_any_model_call(guider):
    calls = []

    def net(x, c_noise, cond):
        calls.append(1)
        return x

    cond = {"vector": np.zeros((B, 10), np.float32)}
    sampler = EulerEDMSampler(num_steps=2, guider_config=guider)
    with pytest.raises(TypeError, match=r"cond\['vector'\] is a numpy array; .*mindspore.Tensor"):
        sampler(Denoiser(EDMScaling()).bind(net), randn((B, *SHAPE), generator=0), cond, cond if guider else None)
    assert not calls


@pytest.mark.parametrize("s_churn, s_tmax", [(0.0, float("inf")), (5.0, 20.0)])
def test_discrete_denoiser_outside_its_sigma_range(s_churn, s_tmax):
    """EDM's sigma_max=80 (or churn above the top level) against SDXL's 14.6: refused before any model call."""
    calls = []

    def net(x, c_noise, cond):
        calls.append(1)
        return x

    denoiser = DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization()).bind(net)
    schedule = EDMDiscretization(sigma_max=80.0 if s_churn == 0 else 14.6)
    sampler = EulerEDMSampler(num_steps=4, s_churn=s_churn, s_tmax=s_tmax, discretization_config=schedule)
    with pytest.raises(ValueError, match=r"reaches sigma=\d+.*noise levels end at sigma=14.6146"):
        sampler(denoiser, randn((B, *SHAPE), generator=0), None)
    assert not calls
    EulerEDMSampler(num_steps=4, discretization_config=LegacyDDPMDiscretization())(
        denoiser, randn((B, *SHAPE), generator=0), None
    )
    assert calls


def test_bare_network_is_not_a_denoiser():
    net = small_net()
    with pytest.raises(TypeError, match=r"TinyConvNet.construct takes 'c_noise'.*Denoiser\(EDMScaling\(\)\).bind"):
        EulerEDMSampler(num_steps=2)(net, randn((B, *SHAPE), generator=0), None)
    assert as_denoiser(net, kind="callable") is net


def test_identity_guider_passes_cond_through_to_a_real_net():
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    a = sample(denoiser, IdentityGuider())
    b = sample(denoiser, None)
    np.testing.assert_array_equal(a, b)


FAMILY = [
    "EulerAncestralSampler",
    "DPMPP2SAncestralSampler",
    "DPMPP2MSampler",
    "LinearMultistepSampler",
    "LCMSampler",
    "DPM2Sampler",
    "DPM2AncestralSampler",
    "DPMPPSDESampler",
    "DPMPP2MSDESampler",
    "DPMPP3MSDESampler",
]


@pytest.mark.parametrize("name", FAMILY)
def test_every_sampler_runs_a_real_net_in_graph_mode_without_recompiles(graph_mode, name):
    """The whole family goes through the same model path: CFG on a real Cell, one compile, reproducible bits."""
    import edm_sampler

    cls = getattr(edm_sampler, name)
    denoiser = Denoiser(EDMScaling()).bind(small_net(TracedNet))
    sampler = cls(num_steps=4, guider_config=VanillaCFG(2.0))
    cond, uc = conditioning(0)

    def call(seed):
        return sampler(denoiser, randn((B, *SHAPE), generator=seed), cond, uc, generator=seed + 1).asnumpy()

    del TRACES[:]
    first = call(0)
    compiles = len(TRACES)
    again = call(0)
    call(1)
    assert compiles >= 1 and len(TRACES) == compiles, TRACES
    np.testing.assert_array_equal(first, again)
    assert np.isfinite(first).all()
