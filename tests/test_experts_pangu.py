"""Several conditions with their own scales (MultiConditionCFG), two experts with a boundary (ExpertSwitch), and
PanGu-Draw v3's shipped config, which uses both, sampled with two real networks as mindone calls it; each against a
float64 NumPy version of the published formula and of mindone's loop."""

from __future__ import annotations

import numpy as np
import pytest
from affine_nets import VECTOR, AffineNet, C, Engine, RecordingNet, karras, legacy_ddpm
from realnets import TRACES, _trace

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    DiscreteDenoiser,
    EDMScaling,
    EpsScaling,
    EulerEDMSampler,
    ExpertSwitch,
    FlowVelocityScaling,
    HeunEDMSampler,
    LegacyDDPMDiscretization,
    MultiConditionCFG,
    PanGuEulerEDMSampler,
    PanGuVanillaCFG,
    as_denoiser,
    load_config,
    load_sampler,
    randn,
)
from edm_sampler.checks import ConfigError

H = W = 4


def _vectors(rows, seed):
    return Tensor(np.random.default_rng(seed).uniform(-1, 1, (rows, VECTOR)).astype(np.float32))


def _combination(parts, scale, other_scale):
    """PanGuNoDynamicThresholding: D_u + scale (D_c - D_u) + sum_i other_scale_i (D_i - D_c)."""
    uncond, cond, *extra = parts
    return uncond + scale * (cond - uncond) + sum(s * (d - cond) for s, d in zip(other_scale, extra))


# ---------------------------------------------------------------------------------------------------------------------
# MultiConditionCFG
# ---------------------------------------------------------------------------------------------------------------------


def test_combination_pinned_by_hand():
    """D_u = 1, D_c = 2, D_1 = 4, D_2 = 0 with scale 2 and other_scale [3, -0.5]: 1 + 2 + 3 * 2 - 0.5 * -2 = 10."""
    guider = MultiConditionCFG(2.0, [3.0, -0.5]).for_conditions([{}, {}])
    denoised = Tensor(np.array([1.0, 2.0, 4.0, 0.0], np.float32).reshape(4, 1))
    assert guider(denoised, Tensor(np.ones(4, np.float32))).asnumpy().item() == 10.0


def test_combination_and_model_batch_match_numpy():
    guider = MultiConditionCFG(6.0, [4.0, 1.5, -2.0])
    cond, uc = {"vector": _vectors(2, 0), "size": Tensor([3.0])}, {"vector": _vectors(2, 1), "size": Tensor([3.0])}
    extra = [{"vector": _vectors(2, 2 + i), "size": Tensor([3.0])} for i in range(3)]
    configured = guider.for_conditions(extra)
    configured.check_inputs(cond, uc, 2)
    assert type(configured).copies == 5 and guider.copies == 2 and guider.other_c == ()  # the guider is untouched
    stacked = configured.model_cond(cond, uc)["vector"].asnumpy()
    rows = [uc["vector"], cond["vector"], *(e["vector"] for e in extra)]
    np.testing.assert_array_equal(stacked, np.concatenate([r.asnumpy() for r in rows]))
    x = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(configured.expand(Tensor(x)).asnumpy(), np.concatenate([x] * 5))
    denoised = np.random.default_rng(4).standard_normal((10, 3)).astype(np.float32)
    got = configured(Tensor(denoised), Tensor(np.ones(10, np.float32))).asnumpy()
    expected = _combination(np.split(denoised.astype(np.float64), 5), 6.0, [4.0, 1.5, -2.0])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "steps_pair, sampler_cls, order", [((16, 32, 64), EulerEDMSampler, 1), ((32, 64, 128), HeunEDMSampler, 2)]
)
def test_guided_flow_of_gaussians_converges_at_the_samplers_order(steps_pair, sampler_cls, order):
    """With D_k the exact denoiser of N(mu_k, s^2) the guided D is that of N(mu, s^2), mu = (1 - scale) mu_u +
    (scale - sum s_i) mu_c + sum s_i mu_i (the weights sum to 1), whose probability-flow ODE has the closed form
    x(sigma) = mu + (x_T - mu) sqrt(sigma^2 + s^2) / sqrt(sigma_T^2 + s^2): the sampler keeps its order."""
    sd, scale, other = 0.5, 3.0, [2.0, -0.7]

    def gaussian(x, sigma, cond):
        s2 = sigma.reshape(-1, 1) ** 2
        return (x * sd**2 + cond["vector"] * s2) / (s2 + sd**2)

    rng = np.random.default_rng(5)
    means = [rng.uniform(-1, 1, (3, VECTOR)) for _ in range(4)]  # uc, c, c_1, c_2
    mu = _combination(means, scale, other)
    noise = rng.standard_normal((3, VECTOR)).astype(np.float32)
    sigma_max = 80.0
    x_top = noise.astype(np.float64) * np.sqrt(1 + sigma_max**2)
    exact = mu + (x_top - mu) * sd / np.sqrt(sigma_max**2 + sd**2)
    guider = MultiConditionCFG(scale, other)
    uc, cond, *extra = ({"vector": Tensor(m.astype(np.float32))} for m in means)
    errors = []
    for steps in steps_pair:
        sampler = sampler_cls(num_steps=steps, guider_config=guider)
        got = sampler(gaussian, Tensor(noise), cond, uc, other_c=extra).asnumpy()
        errors.append(np.abs(got - exact).max())
    slopes = -np.diff(np.log(errors)) / np.log(2)
    assert slopes == pytest.approx([order] * len(slopes), abs=0.25), (errors, slopes)


def _traced_denoiser(seed):
    class TracedAffineNet(AffineNet):
        def construct(self, x, c_noise, cond, **kwargs):
            _trace("affine")
            return super().construct(x, c_noise, cond, **kwargs)

    return Denoiser(EDMScaling()).bind(TracedAffineNet(seed=seed))


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_multi_condition_compiled_loop_equals_steps_and_compiles_once(mode):
    ms.set_context(mode=mode)
    try:
        denoiser = _traced_denoiser(20)
        guider = MultiConditionCFG(4.0, [2.0, 0.5])

        def sample(seed, graph_loop):
            cond, uc = {"vector": _vectors(2, seed)}, {"vector": _vectors(2, seed + 1)}
            extra = [{"vector": _vectors(2, seed + 2)}, {"vector": _vectors(2, seed + 3)}]
            sampler = EulerEDMSampler(num_steps=4, s_churn=2.0, guider_config=guider, graph_loop=graph_loop)
            return sampler(denoiser, randn((2, C, H, W), generator=seed), cond, uc, generator=seed + 9, other_c=extra)

        step = sample(0, False).asnumpy()
        del TRACES[:]
        loop = sample(0, True).asnumpy()
        np.testing.assert_allclose(loop, step, rtol=1e-5, atol=1e-5 * np.abs(step).max())
        compiled = len(TRACES)
        for seed in (1, 2):  # new conditions and noise: no compile
            sample(seed, True)
            if mode == ms.GRAPH_MODE:  # PyNative runs the step path eagerly: no graph to count there
                sample(seed, False)
        assert compiled >= 1 and len(TRACES) == compiled
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_extra_conditions_are_checked_before_any_model_call():
    calls = []

    def model(x, sigma, cond):
        calls.append(1)
        return x

    sampler = EulerEDMSampler(num_steps=2, guider_config=MultiConditionCFG(2.0, [1.0]))
    cond, uc = {"vector": _vectors(2, 0), "size": Tensor([1.0])}, {"vector": _vectors(2, 1), "size": Tensor([1.0])}
    noise = randn((2, 3), generator=0)
    cases = [
        ({}, ValueError, r"needs one extra condition per scale: pass other_c"),
        ({"other_c": [cond, cond]}, ValueError, r"other_c has 2 condition\(s\) but other_scale \[1.0\] has 1"),
        ({"other_c": cond}, TypeError, "other_c must be a list of conditioning dicts"),
        ({"other_c": [{"vector": _vectors(2, 2)}]}, ValueError, r"other_c\[0\] must have cond's keys"),
        ({"other_c": [{"vector": _vectors(3, 2), "size": Tensor([1.0])}]}, ValueError, "batch size 3"),
        ({"other_c": [{"vector": _vectors(2, 2), "size": Tensor([2.0])}]}, ValueError, r"other_c\[0\]\['size'\]"),
    ]
    for keywords, error, words in cases:
        with pytest.raises(error, match=words):
            sampler(model, noise, cond, uc, **keywords)
    with pytest.raises(TypeError, match="other_scale must be a list of numbers"):
        MultiConditionCFG(2.0, 4.0)
    assert not calls


# ---------------------------------------------------------------------------------------------------------------------
# ExpertSwitch
# ---------------------------------------------------------------------------------------------------------------------


def test_switch_on_a_sigma_boundary_at_the_exact_step():
    """Wan 2.2's rule (the step's own level against the boundary); a Heun step's correction stays with its expert."""
    high, low = RecordingNet(seed=30), RecordingNet(seed=31)
    sigmas = karras(6)
    switch = ExpertSwitch(Denoiser(EDMScaling()).bind(high), Denoiser(EDMScaling()).bind(low), float(sigmas[2]))
    HeunEDMSampler(num_steps=6)(switch, randn((2, C, H, W), generator=0), {"vector": _vectors(2, 1)})
    c_noise = lambda s: float(np.float32(0.25 * np.log(float(np.float32(s)))))  # noqa: E731 (EDM's, from float32 sigma)
    # steps 0-2 (sigma >= boundary): both evaluations of each on the high expert, the correction of step 2 included
    expected_high = [c_noise(s) for i in range(3) for s in (sigmas[i], sigmas[i + 1])]
    expected_low = [c_noise(s) for i in range(3, 6) for s in (sigmas[i], sigmas[i + 1]) if s > 0]
    np.testing.assert_allclose(high.calls, expected_high, rtol=1e-6)
    np.testing.assert_allclose(low.calls, expected_low, rtol=1e-6)


def test_switch_errors():
    edm = Denoiser(EDMScaling()).bind(AffineNet())
    with pytest.raises(ValueError, match="by='timestep'\\) needs a discrete denoiser"):
        ExpertSwitch(edm, edm, 500, by="timestep")
    flow = Denoiser(FlowVelocityScaling()).bind(AffineNet())
    with pytest.raises(ValueError, match=r"share a parametrization, got \['flow', 've'\]"):
        ExpertSwitch(edm, flow, 1.0)
    with pytest.raises(ValueError, match="decide_on must be one of 'current', 'previous'"):
        ExpertSwitch(edm, edm, 1.0, decide_on="next")
    sampler = EulerEDMSampler(num_steps=2, graph_loop=True)
    with pytest.raises(ValueError, match="graph_loop=True: an ExpertSwitch holds two networks"):
        sampler(ExpertSwitch(edm, edm, 1.0), randn((2, C, H, W), generator=0), {"vector": _vectors(2, 0)})


def test_direct_call_decides_by_the_sigma_it_is_given():
    switch = ExpertSwitch(as_denoiser(lambda x, s, c: x * 0 + 1), as_denoiser(lambda x, s, c: x * 0 - 1), 2.0)
    x = Tensor(np.zeros((2, 1), np.float32))
    assert switch(x, 2.0, None).asnumpy().ravel().tolist() == [1, 1]
    assert switch(x, Tensor(np.full(2, 1.5, np.float32)), None).asnumpy().ravel().tolist() == [-1, -1]


# ---------------------------------------------------------------------------------------------------------------------
# PanGu-Draw v3
# ---------------------------------------------------------------------------------------------------------------------

PANGU = "mindone_pangu_draw_v3"


def test_pangu_config_loads_as_mindone_builds_it():
    sampler = load_sampler(PANGU)
    assert type(sampler) is PanGuEulerEDMSampler and sampler.num_steps == 40 and sampler.s_tmax == 999.0
    assert type(sampler.guider) is PanGuVanillaCFG
    assert (sampler.guider.scale, sampler.guider.other_scale) == (6.0, (4.0,))
    assert type(sampler.discretization) is LegacyDDPMDiscretization
    np.testing.assert_allclose(sampler.get_sigmas(), legacy_ddpm(40)[0], rtol=1e-12)
    bad = {
        "target": "gm.modules.diffusionmodules.guiders.PanGuVanillaCFG",
        "params": {
            "scale": 6.0,
            "dyn_thresh_config": {"target": "gm.modules.diffusionmodules.sampling_utils.NoDynamicThresholding"},
        },
    }
    with pytest.raises(ConfigError, match="dyn_thresh_config must be PanGuNoDynamicThresholding"):
        load_sampler({"target": "pangu_euler_edm", "params": {"guider_config": bad}})


def _pangu(other_scale):
    config = load_config(PANGU)  # the shipped YAML, its other_scale replaced
    config.sampler.params.guider_config.params.other_scale = list(other_scale)
    config.sampler.params.verbose = False
    return load_sampler(config)


def _pangu_reference(base, high, noise, sigmas, timesteps, vectors, scale, other_scale):
    """mindone's PanGuEDMSampler.__call__ / sampler_step / denoise in float64: step_idx starts at 1000 and is the
    previous step's timestep index afterwards; the high-timestep model runs while it is >= 500."""
    x = noise.astype(np.float64) * np.sqrt(1 + sigmas[0] ** 2)
    step_idx, used = 1000, []
    for sigma, sigma_next, t in zip(sigmas[:-1], sigmas[1:], timesteps):
        net = high if step_idx >= 500 else base
        used.append("high" if net is high else "base")
        x_in = np.concatenate([x] * len(vectors))
        out = net.numpy(x_in / np.sqrt(sigma**2 + 1), np.full(len(x_in), t), np.concatenate(vectors))
        denoised = _combination(np.split(x_in - sigma * out, len(vectors)), scale, other_scale)  # eps: D = x - s eps
        x = x + (sigma_next - sigma) * (x - denoised) / sigma
        step_idx = t
    return x, used


@pytest.mark.parametrize("other_scale", [(4.0,), (4.0, 2.5, -1.0)], ids=["shipped", "three_extra"])
def test_pangu_samples_two_models_and_extra_conditions_as_mindone(other_scale):
    """sampler(model, high_timestamp_model, randn, cond=c, uc=uc, other_c=other_c), with engines as mindone's
    pangu_do_sample passes them: the formula, and the switch after step 20 of 40 (mindone's step 20 still runs the
    high-timestep model: its index is the one of step 19, timestep 524)."""
    base, high = RecordingNet(seed=40), RecordingNet(seed=41)
    engines = [Engine(net, DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization())) for net in (base, high)]
    rows = 2
    vectors = [_vectors(rows, 42 + i) for i in range(2 + len(other_scale))]
    uc, c, *extra = ({"vector": v} for v in vectors)
    noise = randn((rows, C, H, W), generator=50)
    got = _pangu(other_scale)(*engines, noise, cond=c, uc=uc, other_c=extra, adapter_states=None).asnumpy()
    sigmas, timesteps = legacy_ddpm(40)
    expected, used = _pangu_reference(
        base,
        high,
        noise.asnumpy(),
        sigmas,
        timesteps,
        [v.asnumpy().astype(np.float64) for v in vectors],
        6.0,
        other_scale,
    )
    np.testing.assert_allclose(got, expected, rtol=5e-5, atol=5e-5 * np.abs(expected).max())
    assert used == ["high"] * 21 + ["base"] * 19 and timesteps[19:21].tolist() == [524, 499]
    assert high.calls == timesteps[:21].tolist() and base.calls == timesteps[21:].tolist()


def test_pangu_without_the_high_timestep_model_runs_the_base_model():
    base = RecordingNet(seed=60)
    engine = Engine(base, DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization()))
    c, uc, extra = ({"vector": _vectors(2, 61 + i)} for i in range(3))
    _pangu((4.0,))(engine, None, randn((2, C, H, W), generator=0), c, uc, [extra], num_steps=6)
    assert base.calls == legacy_ddpm(6)[1].tolist()


def test_pangu_in_graph_mode_compiles_each_expert_once():
    """Step by step in graph mode, each expert's guided network is compiled once; the next call compiles nothing."""
    discrete = DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization())
    sampler = _pangu((4.0, 2.0))

    def sample(base, high, seed):
        c, uc, e1, e2 = ({"vector": _vectors(2, seed + i)} for i in range(4))
        return sampler(base, high, randn((2, C, H, W), generator=seed), c, uc, [e1, e2], num_steps=6).asnumpy()

    eager = sample(discrete.bind(AffineNet(seed=70)), discrete.bind(AffineNet(seed=71)), 0)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        base, high = discrete.bind(_traced_denoiser(70).network), discrete.bind(_traced_denoiser(71).network)
        del TRACES[:]
        graph = sample(base, high, 0)
        compiled = len(TRACES)
        sample(base, high, 1)
        assert compiled >= 2 and len(TRACES) == compiled
        np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-5 * np.abs(eager).max())
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
