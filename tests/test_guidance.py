"""Guidance beyond plain CFG: CFG rescale, the guidance interval, APG, CFG-Zero*, a second scale below a boundary, and
guiders around guiders. Each formula against a float64 NumPy version written from its paper (and the oracles'
formulas where they differ), whole sampling runs against a float64 reference loop on an exact conditional model (VE
and flow), the interval's model calls, YAML composition, the compiled paths on a real network, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from numerics import rel
from omegaconf import OmegaConf
from realnets import SHAPE, TRACES, B, TracedNet, conditioning, small_net

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    APG,
    CFGRescale,
    CFGZeroStar,
    Denoiser,
    EDMScaling,
    EulerEDMSampler,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    GuidanceInterval,
    HeunEDMSampler,
    IdentityGuider,
    LinearPredictionGuider,
    MultiConditionCFG,
    ScaleSwitch,
    VanillaCFG,
    instantiate_from_config,
    load_sampler,
    randn,
)
from edm_sampler.checks import ConfigError
from edm_sampler.guiders import ConditionalOnly, SampleItself

# ---------------------------------------------------------------------------------------------------------------------
# float64 references, written from the papers
# ---------------------------------------------------------------------------------------------------------------------


def per_sample(values, reduce):
    return reduce(values.reshape(len(values), -1), axis=1).reshape((-1,) + (1,) * (values.ndim - 1))


def std(v):
    return per_sample(v, np.std)


def dot(a, b):
    return per_sample(a * b, np.sum)


def cfg64(u, c, w):
    return u + w * (c - u)


def rescale64(u, c, w, phi):
    """Lin et al. Section 3.4: x_cfg; x_rescaled = x_cfg std(x_pos) / std(x_cfg); phi x_rescaled + (1 - phi) x_cfg."""
    guided = cfg64(u, c, w)
    return phi * guided * std(c) / std(guided) + (1 - phi) * guided


class APG64:
    """Sadat et al., Algorithm 1 (MomentumBuffer, normalized_guidance), on the denoised estimates."""

    def __init__(self, w, eta, norm_threshold, momentum):
        self.w, self.eta, self.threshold, self.momentum = w, eta, norm_threshold, momentum
        self.running = 0.0

    def __call__(self, u, c):
        diff = c - u
        self.running = diff + self.momentum * self.running
        diff = self.running
        if self.threshold > 0:
            diff = diff * np.minimum(1.0, self.threshold / np.sqrt(dot(diff, diff)))
        unit = c / np.sqrt(dot(c, c))
        parallel = dot(diff, unit) * unit
        return c + (self.w - 1) * ((diff - parallel) + self.eta * parallel)


def zero_star64(x, u, c, w, sigma):
    """Fan et al. in velocity terms: v = (x - D) / sigma; s* = <v_c, v_u> / ||v_u||^2; v = s* v_u + w (v_c - s* v_u)."""
    v_u, v_c = (x - u) / sigma, (x - c) / sigma
    s = dot(v_c, v_u) / (dot(v_u, v_u) + 1e-8)
    v = s * v_u + w * (v_c - s * v_u)
    return x - sigma * v


# ---------------------------------------------------------------------------------------------------------------------
# The combinations on random batches (non-default parameters)
# ---------------------------------------------------------------------------------------------------------------------

RNG = np.random.default_rng(11)
U, C = RNG.standard_normal((2, 3, 4, 5, 5))  # D_u and D_c for 3 samples
X = RNG.standard_normal((3, 4, 5, 5)) * 2.0


def combine(guider, u=U, c=C, x=None, scale=None):
    denoised = Tensor(np.concatenate([u, c]).astype(np.float32))
    scale = guider.scale_at(1.0, u.shape) if scale is None else scale
    if guider.needs_input:
        return guider.combine(denoised, scale, Tensor(x.astype(np.float32))).asnumpy()
    return guider.combine(denoised, scale).asnumpy()


def test_rescale_pinned_by_hand():
    """D_u = 0, D_c = [1, -1, 1, -1] (std 1), scale 3: D_cfg = 3 D_c (std 3); phi 0.75: (0.75 / 3 + 0.25) D_cfg."""
    c = np.array([[1.0, -1.0, 1.0, -1.0]])
    got = combine(CFGRescale(VanillaCFG(3.0), phi=0.75), np.zeros_like(c), c)
    np.testing.assert_allclose(got, [[1.5, -1.5, 1.5, -1.5]], rtol=1e-6)


@pytest.mark.parametrize("phi", [0.0, 0.35, 1.0])
def test_rescale_matches_the_paper_and_diffusers(phi):
    got = combine(CFGRescale(VanillaCFG(4.5), phi=phi))
    np.testing.assert_allclose(got, rescale64(U, C, 4.5, phi), rtol=2e-5, atol=2e-5)
    torch = pytest.importorskip("torch")
    guider_utils = pytest.importorskip("diffusers.guiders.guider_utils")
    guided = torch.from_numpy(cfg64(U, C, 4.5))
    oracle = guider_utils.rescale_noise_cfg(guided, torch.from_numpy(C), phi).numpy()  # torch's Bessel std: same ratio
    np.testing.assert_allclose(got, oracle, rtol=2e-5, atol=2e-5)


def comfy_rescale_ve64(x, u, c, w, phi, sigma):
    """ComfyUI RescaleCFG on a VE-type model: the denoised estimates to VP's v, rescale, back (its formula)."""
    xs = x / (sigma**2 + 1)
    v_c, v_u = ((xs - c) * np.sqrt(sigma**2 + 1) / sigma for c in (c, u))
    v_cfg = v_u + w * (v_c - v_u)
    v = phi * v_cfg * std(v_c) / std(v_cfg) + (1 - phi) * v_cfg
    return x - (x - (xs - v * sigma / np.sqrt(sigma**2 + 1)))


def test_rescale_on_denoised_is_comfys_v_rescale_at_high_noise_only():
    """Here the rescale acts on D: ComfyUI's flow branch (x0), and its VE (v) branch as sigma -> inf, not below."""
    ours = rescale64(U, C, 4.0, 0.7)
    assert rel(comfy_rescale_ve64(X, U, C, 4.0, 0.7, 1e4), ours) < 1e-6
    assert rel(comfy_rescale_ve64(X, U, C, 4.0, 0.7, 1.0), ours) > 1e-2


def test_apg_pinned_by_hand():
    """D_u = (0, 0), D_c = (1, 1): g = (1, 1) is parallel to D_c; its norm sqrt(2) > 1 limits it to (1, 1) / sqrt(2);
    eta 0.5 halves it; scale 3: D = D_c + 2 * 0.5 (1, 1) / sqrt(2) = (1.7071, 1.7071)."""
    got = combine(APG(3.0, eta=0.5, norm_threshold=1.0), np.zeros((1, 2)), np.ones((1, 2)))
    np.testing.assert_allclose(got, np.full((1, 2), 1 + 1 / np.sqrt(2)), rtol=1e-6)


@pytest.mark.parametrize("eta, threshold, momentum", [(1.0, 0.0, 0.0), (0.3, 12.0, 0.0), (-0.4, 9.0, -0.5)])
def test_apg_matches_the_paper_over_several_evaluations(eta, threshold, momentum):
    guider = APG(5.0, eta=eta, norm_threshold=threshold, momentum=momentum).for_call({})
    reference = APG64(5.0, eta, threshold, momentum)
    for k in range(3):  # momentum: a running average across evaluations
        u, c = U * (1 + 0.3 * k), C - 0.2 * k
        np.testing.assert_allclose(combine(guider, u, c), reference(u, c), rtol=3e-5, atol=3e-5)
    if (eta, threshold, momentum) == (1.0, 0.0, 0.0):
        np.testing.assert_allclose(combine(guider), cfg64(U, C, 5.0), rtol=2e-5, atol=2e-5)  # plain CFG


def test_apg_update_is_diffusers_and_comfy_is_the_paper_at_scale_plus_one():
    """diffusers returns D_u + w * update and the paper D_c + (w - 1) update: the same update. ComfyUI's node returns
    cfg(u, cond') with cond' = u + g' + (c - u) / s, i.e. D_c + s g': the paper's at scale s + 1."""
    torch = pytest.importorskip("torch")
    apg = pytest.importorskip("diffusers.guiders.adaptive_projected_guidance")
    w, eta, threshold, momentum = 4.0, 0.25, 10.0, -0.6
    buffer = apg.MomentumBuffer(momentum)
    ours = APG(w, eta=eta, norm_threshold=threshold, momentum=momentum).for_call({})
    for k in range(2):
        u, c = U - 0.1 * k, C * (1 + 0.2 * k)
        oracle = apg.normalized_guidance(torch.from_numpy(c), torch.from_numpy(u), w, buffer, eta, threshold).numpy()
        update = (oracle - u) / w
        np.testing.assert_allclose(combine(ours, u, c), c + (w - 1) * update, rtol=3e-5, atol=3e-5)
    s = 2.5
    g = APG64(0.0, eta, 0.0, 0.0)  # g' from the paper's update at w = 0: D = D_c - g'
    g_prime = C - g(U, C)
    comfy = cfg64(U, U + g_prime + (C - U) / s, s)
    np.testing.assert_allclose(combine(APG(s + 1, eta=eta, norm_threshold=0.0)), comfy, rtol=3e-5, atol=3e-5)


@pytest.mark.parametrize("sigma", [0.6, 3.0])  # a flow level, a VE level: the formula is the same
def test_cfg_zero_star_in_denoised_space_is_the_papers_velocity_formula(sigma):
    got = combine(CFGZeroStar(3.5, zero_init_steps=0), x=X)
    np.testing.assert_allclose(got, zero_star64(X, U, C, 3.5, sigma), rtol=3e-5, atol=3e-5)


def test_cfg_zero_star_is_diffusers_in_velocity_and_differs_from_comfys_node():
    torch = pytest.importorskip("torch")
    zero_star = pytest.importorskip("diffusers.guiders.classifier_free_zero_star_guidance")
    sigma, w = 0.4, 5.0
    v_u, v_c = (X - U) / sigma, (X - C) / sigma  # a flow model's velocities
    flat = [torch.from_numpy(v.reshape(3, -1)) for v in (v_c, v_u)]
    alpha = zero_star.cfg_zero_star_scale(*flat).numpy().reshape(3, 1, 1, 1)
    v = v_u * alpha + w * (v_c - v_u * alpha)  # the guider's forward, past its zero-init steps
    got = combine(CFGZeroStar(w, zero_init_steps=0), x=X)
    np.testing.assert_allclose(got, X - sigma * v, rtol=3e-5, atol=3e-5)
    comfy = alpha * U + w * (C - alpha * U)  # ComfyUI's CFGZeroStar: the scale on the denoised D_u
    np.testing.assert_allclose(got - comfy, (1 - w) * (1 - alpha) * X, rtol=1e-4, atol=1e-4)


def test_cfg_zero_star_zero_init_steps_make_no_model_call():
    guider = CFGZeroStar(3.0, zero_init_steps=2)
    assert [type(guider.at(1.0, step)) for step in range(3)] == [SampleItself, SampleItself, CFGZeroStar]
    assert guider.at(1.0, 2).zero_init_steps == 0 and guider.at(1.0, 0).copies == 0
    plain = CFGZeroStar(3.0, zero_init_steps=0)
    assert plain.variants() == (plain,) and plain.at(1.0, 0) is plain


def test_interval_ends_and_scale_switch_boundary():
    interval = GuidanceInterval(0.5, 2.0, VanillaCFG(3.0))
    assert [type(interval.at(s, 0)).__name__ for s in (0.4, 0.5, 0.5001, 2.0, 2.0001)] == [
        "ConditionalOnly",
        "ConditionalOnly",
        "VanillaCFG",
        "VanillaCFG",
        "ConditionalOnly",
    ]
    switch = ScaleSwitch(VanillaCFG(4.0), scale_2=3.0, boundary=0.875)  # Wan 2.2 T2V's scales and boundary_ratio
    assert [switch.scale_at(s, (2, 3)) for s in (1.0, 0.875, 0.8749)] == [4.0, 4.0, 3.0]
    video = ScaleSwitch(LinearPredictionGuider(3.0, num_frames=2, min_scale=2.0), scale_2=1.5, boundary=1.0)
    np.testing.assert_array_equal(video.scale_at(2.0, (4, 3)).ravel(), [2, 3, 2, 3])
    np.testing.assert_array_equal(video.scale_at(0.5, (4, 3)).ravel(), [1.5] * 4)  # same shape along the schedule


# ---------------------------------------------------------------------------------------------------------------------
# Whole sampling runs on an exact conditional model, against a float64 reference loop
# ---------------------------------------------------------------------------------------------------------------------

SD = 0.5


class GaussianMeans:
    """The exact denoiser of data ``N(mu, SD^2 I)`` per row, ``mu = cond["vector"]`` (VE or flow), recording the
    batch size of every call."""

    def __init__(self, parametrization="ve"):
        self.parametrization = parametrization
        self.calls: list[int] = []

    def __call__(self, x, sigma, cond):
        self.calls.append(int(x.shape[0]))
        return self.numpy(x, sigma.reshape(-1, 1), cond["vector"])

    def numpy(self, x, s, mu):
        if self.parametrization == "flow":
            a = 1 - s
            return mu + a * SD**2 * (x - a * mu) / (a * a * SD**2 + s * s)
        return (x * SD**2 + mu * s * s) / (s * s + SD**2)


MEANS = np.random.default_rng(3).uniform(-1, 1, (2, 2, 6))  # uc, c: 2 samples of 6 coordinates
NOISE = np.random.default_rng(4).standard_normal((2, 6))


def guided64(kind, model, x, sigma, step, state):
    """The reference guided estimate, the model calls it makes, for each guider kind below."""
    mu_u, mu_c = MEANS
    u, c = (model.numpy(x, sigma, m) for m in (mu_u, mu_c))
    if kind == "rescale":
        return rescale64(u, c, 3.0, 0.6), 2
    if kind == "apg":
        return state(u, c), 2
    if kind == "zero_star":
        return (x, 0) if step < 2 else (zero_star64(x, u, c, 3.0, sigma), 2)
    if kind == "interval":
        return (cfg64(u, c, 3.0), 2) if 0.3 < sigma <= 2.0 else (c, 1)
    if kind == "switch":
        return cfg64(u, c, 3.0 if sigma >= 0.5 else 1.5), 2
    assert kind == "nested"  # an interval around rescaled APG
    return (rescale64(u, c, 2.5, 0.5), 2) if 0.3 < sigma <= 2.0 else (c, 1)


def guider_of(kind):
    return {
        "rescale": CFGRescale(VanillaCFG(3.0), phi=0.6),
        "apg": APG(3.0, eta=0.4, norm_threshold=1.2, momentum=-0.5),
        "zero_star": CFGZeroStar(3.0, zero_init_steps=2),
        "interval": GuidanceInterval(0.3, 2.0, VanillaCFG(3.0)),
        "switch": ScaleSwitch(VanillaCFG(3.0), scale_2=1.5, boundary=0.5),
        "nested": GuidanceInterval(0.3, 2.0, CFGRescale(APG(2.5, eta=1.0, norm_threshold=0.0), phi=0.5)),
    }[kind]


def reference_run(kind, model, sigmas, heun):
    """EDM's Euler / Heun (no correction on the step to 0) in float64, with the guided estimate above."""
    state = APG64(3.0, 0.4, 1.2, -0.5)
    x = NOISE * sigmas[0]
    rows = []

    def denoise(x, sigma, step):
        d, copies = guided64(kind, model, x, sigma, step, state)
        rows.append(copies * len(x))
        return d

    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - denoise(x, s, i)) / s
        x_euler = x + (s_next - s) * d
        if heun and s_next > 0:
            d_next = (x_euler - denoise(x_euler, s_next, i)) / s_next
            x = x + (s_next - s) * (d + d_next) / 2
        else:
            x = x_euler
    return x, rows


KINDS = ["rescale", "apg", "zero_star", "interval", "switch", "nested"]


@pytest.mark.parametrize("parametrization", ["ve", "flow"])
@pytest.mark.parametrize("kind", KINDS)
def test_sampling_run_equals_the_float64_reference(kind, parametrization):
    model = GaussianMeans(parametrization)
    schedule = {} if parametrization == "ve" else {"discretization_config": FlowMatchDiscretization(shift=3.0)}
    sampler = HeunEDMSampler(num_steps=6, guider_config=guider_of(kind), init_noise="edm", **schedule)
    uc, cond = ({"vector": Tensor(m.astype(np.float32))} for m in MEANS)
    got = sampler(model, Tensor(NOISE.astype(np.float32)), cond, uc).asnumpy()
    expected, rows = reference_run(kind, model, sampler.get_sigmas(), heun=True)
    # CFG-Zero*'s s* reads u = x - D, which float32 resolves only to eps |x| / |u| at the last, lowest level (sigma
    # 0.002 here): 1e-5 there, against 1e-7 for the other guiders' estimates
    assert rel(got, expected) < (6e-5 if kind == "zero_star" else 1e-5)
    # the model calls: one per evaluation with a model batch (none on CFG-Zero*'s zero-init steps)
    assert model.calls == [r for r in rows if r] and sampler.last_nfe == len(model.calls)
    assert sampler.last_model_rows == sum(rows)


def test_interval_skips_the_unconditional_branch_outside():
    """Heun on 6 steps from sigma 80: the evaluations above 2.0 and at/below 0.3 see the conditional batch alone."""
    model = GaussianMeans()
    sampler = HeunEDMSampler(num_steps=6, guider_config=GuidanceInterval(0.3, 2.0, VanillaCFG(3.0)))
    uc, cond = ({"vector": Tensor(m.astype(np.float32))} for m in MEANS)
    sampler(model, Tensor(NOISE.astype(np.float32)), cond, uc)
    sigmas = sampler.get_sigmas()
    levels = [s for i in range(6) for s in (sigmas[i], sigmas[i + 1]) if s > 0]  # Heun: sigma_i, then sigma_{i+1}
    assert model.calls == [4 if 0.3 < s <= 2.0 else 2 for s in levels]
    assert sampler.last_nfe == 11 and sampler.last_model_rows == sum(model.calls) < 2 * 2 * 11


@pytest.mark.parametrize("kind", ["rescale", "apg", "zero_star"])
def test_heun_keeps_its_order_under_the_guider(kind):
    """The guided estimate is a smooth function of (x, sigma) here: Heun's error against a 1024-step float64 Heun of
    the same guided ODE shrinks 4x per doubling of the steps (order 2; measured 2.25/2.10 for CFG-Zero*, 2.09/2.05
    for rescale, 2.10/2.05 for APG)."""
    model = GaussianMeans()
    guider = {
        "rescale": CFGRescale(VanillaCFG(3.0), phi=0.6),
        "apg": APG(3.0, eta=0.4, norm_threshold=0.0),
        "zero_star": CFGZeroStar(3.0, zero_init_steps=0),
    }[kind]
    uc, cond = ({"vector": Tensor(m.astype(np.float32))} for m in MEANS)

    def exact(sigmas):
        state = APG64(3.0, 0.4, 0.0, 0.0)
        x = NOISE * sigmas[0]

        def denoise(x, s):
            return guided64(kind, model, x, s, 99, state)[0]  # step 99: past CFG-Zero*'s zero-init steps

        for s, s_next in zip(sigmas[:-1], sigmas[1:]):
            d = (x - denoise(x, s)) / s
            x_euler = x + (s_next - s) * d
            x = x + (s_next - s) * (d + (x_euler - denoise(x_euler, s_next)) / s_next) / 2 if s_next > 0 else x_euler
        return x

    reference = exact(HeunEDMSampler(init_noise="edm").get_sigmas(1024))
    errors = []
    for steps in (32, 64, 128):
        sampler = HeunEDMSampler(num_steps=steps, guider_config=guider, init_noise="edm")
        errors.append(rel(sampler(model, Tensor(NOISE.astype(np.float32)), cond, uc).asnumpy(), reference))
    slopes = -np.diff(np.log2(errors))
    assert slopes == pytest.approx([2.0, 2.0], abs=0.3), (errors, slopes)


# ---------------------------------------------------------------------------------------------------------------------
# YAML composition
# ---------------------------------------------------------------------------------------------------------------------

YAML = """
sampler:
  target: heun_edm
  params:
    num_steps: 6
    init_noise: edm
    guider_config:
      target: guidance_interval
      params:
        sigma_lo: 0.3
        sigma_hi: 2.0
        guider_config:
          target: cfg_rescale
          params:
            phi: 0.5
            guider_config: {target: apg, params: {scale: 2.5, eta: 1.0, norm_threshold: 0.0}}
"""


def test_yaml_composes_guiders_around_guiders():
    sampler = load_sampler(OmegaConf.create(YAML))
    guider = sampler.guider
    assert isinstance(guider, GuidanceInterval) and isinstance(guider.inner, CFGRescale)
    assert isinstance(guider.inner.inner, APG) and guider.inner.phi == 0.5
    model = GaussianMeans()
    uc, cond = ({"vector": Tensor(m.astype(np.float32))} for m in MEANS)
    got = sampler(model, Tensor(NOISE.astype(np.float32)), cond, uc).asnumpy()
    assert rel(got, reference_run("nested", model, sampler.get_sigmas(), heun=True)[0]) < 2e-5
    rescaled_switch = instantiate_from_config(
        {
            "target": "cfg_rescale",
            "params": {
                "phi": 0.7,
                "guider_config": {
                    "target": "scale_switch",
                    "params": {
                        "scale_2": 2.0,
                        "boundary": 1.0,
                        "guider_config": {"target": "vanilla_cfg", "params": {"scale": 5.0}},
                    },
                },
            },
        }
    )
    assert [rescaled_switch.scale_at(s, (2, 6)) for s in (1.0, 0.9)] == [5.0, 2.0]


def test_guiders_around_multi_condition_take_the_extra_conditions():
    model = GaussianMeans()
    extra = {"vector": Tensor(np.full((2, 6), 0.3, np.float32))}
    uc, cond = ({"vector": Tensor(m.astype(np.float32))} for m in MEANS)
    sampler = EulerEDMSampler(
        num_steps=4, init_noise="edm", guider_config=CFGRescale(MultiConditionCFG(3.0, [1.5]), phi=0.4)
    )
    got = sampler(model, Tensor(NOISE.astype(np.float32)), cond, uc, other_c=[extra]).asnumpy()
    sigmas, x = sampler.get_sigmas(), NOISE * sampler.get_sigmas()[0]
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        u, c, e = (model.numpy(x, s, m) for m in (*MEANS, np.full((2, 6), 0.3)))
        guided = cfg64(u, c, 3.0) + 1.5 * (e - c)
        d = 0.4 * guided * std(c) / std(guided) + 0.6 * guided
        x = x + (s_next - s) * (x - d) / s
    assert rel(got, x) < 2e-5 and model.calls == [6] * 4


# ---------------------------------------------------------------------------------------------------------------------
# A real network: the compiled loop and graph mode's compiled steps equal the eager call, and compile once
# ---------------------------------------------------------------------------------------------------------------------


def run(sampler, denoiser, seed=0):
    cond, uc = conditioning(seed)
    return sampler(denoiser, randn((B, *SHAPE), generator=seed), cond, uc, generator=seed + 7).asnumpy()


REAL = {
    "rescale-interval-zero_star": lambda: CFGRescale(GuidanceInterval(0.5, 10.0, CFGZeroStar(4.0, 2)), phi=0.5),
    "interval-apg": lambda: GuidanceInterval(0.5, 10.0, APG(3.0, eta=0.3, norm_threshold=2.0)),
    "switch": lambda: ScaleSwitch(VanillaCFG(3.0), scale_2=1.5, boundary=5.0),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_graph_mode_and_graph_loop_equal_eager_and_compile_once(name):
    denoiser = Denoiser(EDMScaling()).bind(small_net(TracedNet))
    kwargs = dict(num_steps=5, s_churn=2.0, s_tmax=20.0, guider_config=REAL[name]())
    eager = HeunEDMSampler(**kwargs)
    expected = run(eager, denoiser)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        steps, loop = HeunEDMSampler(**kwargs), HeunEDMSampler(graph_loop=True, **kwargs)
        del TRACES[:]
        for sampler in (steps, loop):
            got = run(sampler, denoiser)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
            assert (sampler.last_nfe, sampler.last_model_rows) == (eager.last_nfe, eager.last_model_rows)
        compiled = len(TRACES)
        again = [run(sampler, denoiser, seed=1) for sampler in (steps, loop)]
        assert compiled >= 2 and len(TRACES) == compiled  # no compile on a second call
        np.testing.assert_allclose(again[1], again[0], rtol=1e-5, atol=1e-5 * np.abs(again[0]).max())
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    if "interval" in name:
        assert eager.last_model_rows < 2 * B * eager.last_nfe  # the unconditional branch skipped outside


def test_graph_mode_evaluation_by_evaluation_with_a_video_guider_in_an_interval():
    """A callback keeps graph mode's steps eager: each variant's path runs its own compiled evaluation (compiled once;
    per-frame scales inside the interval, the conditional frames alone outside)."""
    denoiser = Denoiser(EDMScaling()).bind(small_net(TracedNet))
    guider = GuidanceInterval(1.0, 30.0, LinearPredictionGuider(3.0, num_frames=B, min_scale=1.5))
    kwargs = dict(num_steps=4, guider_config=guider)
    expected = run(EulerEDMSampler(**kwargs), denoiser)
    levels = []
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        sampler = EulerEDMSampler(**kwargs)
        cond, uc = conditioning(0)
        noise = randn((B, *SHAPE), generator=0)
        got = sampler(denoiser, noise, cond, uc, generator=7, callback=lambda d: levels.append(d["sigma"])).asnumpy()
        del TRACES[:]
        sampler(denoiser, noise, cond, uc, generator=7, callback=lambda d: None)
        assert TRACES == []
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    inside = sum(1.0 < s <= 30.0 for s in levels)
    assert 0 < inside < 4 and sampler.last_model_rows == B * (4 + inside)


def test_pynative_graph_loop_and_a_cfg_pp_sampler_with_variants():
    """The compiled loop in PyNative; a CFG++ sampler takes the unconditional estimate through the variants too (the
    conditional one outside the interval, x itself on a zero-init step)."""
    from edm_sampler.samplers.cfg_pp import EulerCFGPPSampler

    denoiser = Denoiser(FlowVelocityScaling()).bind(small_net())
    guider = GuidanceInterval(0.5, 1.0, CFGZeroStar(3.0, 1))  # flow levels 1, .92, .82, .67 inside; .43 not
    for cls in (EulerEDMSampler, EulerCFGPPSampler):
        kwargs = dict(num_steps=5, discretization_config=FlowMatchDiscretization(shift=3.0), guider_config=guider)
        eager, loop = cls(**kwargs), cls(graph_loop=True, **kwargs)
        expected = run(eager, denoiser)
        np.testing.assert_allclose(run(loop, denoiser), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
        assert eager.last_nfe == loop.last_nfe == 4 and eager.last_model_rows == loop.last_model_rows == 7 * B


def test_apg_momentum_runs_eagerly_in_graph_mode_and_graph_loop_refuses_it():
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    kwargs = dict(num_steps=3, guider_config=APG(3.0, eta=0.5, momentum=-0.5))
    expected = run(EulerEDMSampler(**kwargs), denoiser)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        got = run(EulerEDMSampler(**kwargs), denoiser)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    with pytest.raises(ValueError, match="graph_loop=True: .*carries state .*APG's momentum"):
        run(EulerEDMSampler(graph_loop=True, **kwargs), denoiser)


# ---------------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, error, words",
    [
        (lambda: CFGRescale(VanillaCFG(2.0), phi=1.5), ValueError, "phi must be in \\[0, 1\\]"),
        (lambda: CFGRescale(VanillaCFG(2.0), phi=-0.1), ValueError, "phi must be >= 0"),
        (lambda: GuidanceInterval(2.0, 2.0, VanillaCFG(2.0)), ValueError, "sigma_lo must be below sigma_hi"),
        (lambda: GuidanceInterval(-1.0, 2.0, VanillaCFG(2.0)), ValueError, "sigma_lo must be >= 0"),
        (lambda: APG(2.0, momentum=1.5), ValueError, "momentum must be in \\[-1, 1\\]"),
        (lambda: APG(2.0, norm_threshold=-1.0), ValueError, "norm_threshold must be >= 0"),
        (lambda: CFGZeroStar(2.0, zero_init_steps=-1), ValueError, "zero_init_steps must be >= 0"),
        (lambda: CFGZeroStar(2.0, zero_init_steps=0.5), TypeError, "zero_init_steps must be an integer"),
        (lambda: CFGRescale(IdentityGuider()), ConfigError, "an unconditional and a conditional estimate"),
        (lambda: CFGRescale(lambda d, s: d), ConfigError, "must build an edm_sampler Guider"),
        (lambda: ScaleSwitch(VanillaCFG(2.0), scale_2="a", boundary=1.0), TypeError, "scale_2 must be a real"),
        (
            lambda: instantiate_from_config({"target": "cfg_rescale", "params": {"phi": 0.5, "guider": {}}}),
            ConfigError,
            "unknown parameter\\(s\\) guider; valid parameters: guider_config, phi",
        ),
        (lambda: instantiate_from_config({"target": "cfg_rescal"}), ConfigError, "did you mean 'cfg_rescale'"),
    ],
)
def test_bad_parameters_are_refused_early(build, error, words):
    with pytest.raises(error, match=words):
        build()


def test_sgm_protocol_refuses_what_it_cannot_tell():
    denoised = Tensor(np.zeros((4, 3), np.float32))
    for guider in (CFGZeroStar(2.0, 0), GuidanceInterval(0.1, 1.0, VanillaCFG(2.0))):
        with pytest.raises(TypeError, match="sample through an edm_sampler sampler"):
            guider(denoised, 1.0)
    assert repr(ConditionalOnly(VanillaCFG(2.0))) == "ConditionalOnly()"


def test_diffusers_x0_limits_refuse_guiders_they_cannot_follow():
    """clip_sample / thresholding follow the guider's combine: refused (not silently skipped) where there is none."""
    from edm_sampler.guiders.x0_limits import ClipX0, limit_denoised

    for guider in (CFGZeroStar(2.0, 0), GuidanceInterval(0.1, 1.0, VanillaCFG(2.0))):
        with pytest.raises(ValueError, match="clip_sample / thresholding follow a guider's combine step"):
            limit_denoised(guider, ClipX0())
    limited = limit_denoised(CFGRescale(VanillaCFG(3.0), phi=0.5), ClipX0(0.5))
    np.testing.assert_allclose(combine(limited), np.clip(rescale64(U, C, 3.0, 0.5), -0.5, 0.5), rtol=2e-5, atol=2e-5)
