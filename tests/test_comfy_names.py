"""ComfyUI's sampler names that are a registered class with ComfyUI's defaults (registry presets): each builds its class
with those defaults, a config's params override them, the ``_gpu`` names are their CPU twins, and the numbers are
ComfyUI's where it follows the paper.

The UniPC reference (``comfy_unipc``) is written from the UniPC equations (Zhao et al. 2023, arXiv:2302.04867: UniP-p
and UniC-p with B(h), in the VP form ComfyUI's ``comfy/extra_samplers/uni_pc.py`` uses: ``alpha = 1 / sqrt(1 +
sigma^2)``, ``lambda = -log sigma``) and ComfyUI's loop around them: order ``min(3, steps - 1)``, the first steps at
orders 1, 2, ..., then ``min(order, steps + 1 - k)`` for the update to level ``k``, a corrector on every update but the
last, the model evaluated once per update at the predicted state, and a final sigma 0 replaced by 0.001. The DPM++(2M)
SDE reference is k-diffusion's ``sample_dpmpp_2m_sde`` step written from its equations in the half-log-SNR.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from numerics import MEANS, STDS, WEIGHTS, queue_sampler, rel
from realnets import compiled_and_eager

from mindspore import Tensor

from edm_sampler import (
    DPMPP2MSDESampler,
    DPMPP3MSDESampler,
    DPMPPSDESampler,
    EulerEDMSampler,
    HeunEDMSampler,
    UniPCSampler,
    instantiate_from_config,
    known_targets,
    load_sampler,
    register,
    registry,
    resolve,
)
from edm_sampler.checks import ConfigError
from edm_sampler.models import GaussianMixtureDenoiser

# ComfyUI name -> (class, the defaults it carries, the registered twin it equals)
PRESETS = {
    "euler": (EulerEDMSampler, {"s_churn": 0.0, "s_noise": 1.0}, "euler_edm"),
    "heun": (HeunEDMSampler, {"s_churn": 0.0, "s_noise": 1.0}, "heun_edm"),
    "dpmpp_sde_gpu": (DPMPPSDESampler, {"eta": 1.0, "s_noise": 1.0, "r": 0.5}, "dpmpp_sde"),
    "dpmpp_2m_sde_gpu": (DPMPP2MSDESampler, {"eta": 1.0, "solver_type": "midpoint"}, "dpmpp_2m_sde"),
    "dpmpp_2m_sde_heun": (DPMPP2MSDESampler, {"eta": 1.0, "solver_type": "heun"}, None),
    "dpmpp_2m_sde_heun_gpu": (DPMPP2MSDESampler, {"eta": 1.0, "solver_type": "heun"}, "dpmpp_2m_sde_heun"),
    "dpmpp_3m_sde_gpu": (DPMPP3MSDESampler, {"eta": 1.0, "s_noise": 1.0}, "dpmpp_3m_sde"),
    "uni_pc": (UniPCSampler, {"solver_order": 3, "solver_type": "bh1", "predict_x0": True}, None),
    "uni_pc_bh2": (UniPCSampler, {"solver_order": 3, "solver_type": "bh2", "lower_order_final": True}, None),
}

# comfy/samplers.py KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2"] at a125cd8
COMFY_SAMPLER_NAMES = """euler euler_cfg_pp euler_ancestral euler_ancestral_cfg_pp heun heunpp2 dpm_2 dpm_2_ancestral
lms dpm_fast dpm_adaptive dpmpp_2s_ancestral dpmpp_2s_ancestral_cfg_pp dpmpp_sde dpmpp_sde_gpu dpmpp_2m dpmpp_2m_cfg_pp
dpmpp_2m_sde dpmpp_2m_sde_gpu dpmpp_2m_sde_heun dpmpp_2m_sde_heun_gpu dpmpp_3m_sde dpmpp_3m_sde_gpu ddpm lcm ipndm
ipndm_v deis res_multistep res_multistep_cfg_pp res_multistep_ancestral res_multistep_ancestral_cfg_pp
gradient_estimation gradient_estimation_cfg_pp er_sde seeds_2 seeds_3 sa_solver sa_solver_pece ddim uni_pc
uni_pc_bh2""".split()


def build(target, **params):
    return instantiate_from_config({"target": target, "params": params})


def unit_noise(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------------------------------------------------------------
# 1. The names
# ---------------------------------------------------------------------------------------------------------------------


def test_every_comfyui_sampler_name_is_registered():
    missing = [name for name in COMFY_SAMPLER_NAMES if name not in known_targets()]
    assert len(COMFY_SAMPLER_NAMES) == 42 and not missing, missing


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_builds_its_class_with_comfyui_defaults(name):
    cls, defaults, twin = PRESETS[name]
    assert resolve(name) is cls  # the class, not a subclass per name
    sampler = build(name)
    assert type(sampler) is cls
    assert {key: getattr(sampler, key) for key in defaults} == defaults
    if twin is not None:  # the same sampler as its twin, parameter for parameter
        assert repr(sampler) == repr(build(twin))
    assert registry.describe(name).startswith(f"{name} ({cls.__name__}")


def test_config_params_override_a_preset_default():
    assert build("uni_pc", solver_type="bh2").solver_type == "bh2"
    assert build("uni_pc", solver_order=2).solver_order == 2 and build("uni_pc").solver_order == 3
    heun = build("dpmpp_2m_sde_heun", eta=0.5, solver_type="midpoint", num_steps=4)
    assert (heun.eta, heun.solver_type, heun.num_steps) == (0.5, "midpoint", 4)
    yaml_built = load_sampler({"target": "uni_pc", "params": {"num_steps": 7, "disable_corrector": [2]}})
    assert (yaml_built.solver_type, yaml_built.solver_order, yaml_built.disable_corrector) == ("bh1", 3, (2,))


def test_errors_and_listings_show_the_preset():
    with pytest.raises(ConfigError, match=r"uni_pc \(UniPCSampler, solver_order=3, solver_type='bh1'\): unknown "):
        build("uni_pc", eta=1.0)
    with pytest.raises(ConfigError, match=r"did you mean 'uni_pc'"):
        resolve("uni_pcc")
    with pytest.raises(ConfigError, match="already registered"):
        register("dpmpp_2m_sde_heun", UniPCSampler)
    assert registry.preset("uni_pc_bh2").defaults == {"solver_order": 3, "solver_type": "bh2"}
    assert registry.preset("unipc") is None and registry.describe("unipc") == "unipc"
    assert "uni_pc" not in registry.aliases_of("unipc")  # a preset is not another spelling of its class's name


def test_gpu_names_draw_the_same_noise_as_their_cpu_twins():
    """ComfyUI's ``_gpu`` samplers put the Brownian tree on the GPU; MindSpore's noise is drawn on the host, so the
    same seed gives the same samples."""
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    x = Tensor(unit_noise((6, 2)).astype(np.float32))
    for gpu, cpu in (("dpmpp_2m_sde_heun_gpu", "dpmpp_2m_sde_heun"), ("dpmpp_3m_sde_gpu", "dpmpp_3m_sde")):
        a = build(gpu, num_steps=5)(model, x, generator=[3, 4, 5, 6, 7, 8]).asnumpy()
        b = build(cpu, num_steps=5)(model, x, generator=[3, 4, 5, 6, 7, 8]).asnumpy()
        assert np.array_equal(a, b)
        assert rel(a, build(cpu, num_steps=5)(model, x, generator=0).asnumpy()) > 1e-3  # noise on: the seed matters


# ---------------------------------------------------------------------------------------------------------------------
# 2. uni_pc and uni_pc_bh2: ComfyUI's numbers
# ---------------------------------------------------------------------------------------------------------------------

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(40)


def phi_k(k, z):
    """``phi_k(z) = int_0^1 e^{(1 - d) z} d^(k-1) / (k-1)! dd`` by Gauss-Legendre quadrature."""
    d = (_GL_NODES + 1.0) / 2.0
    return float(np.sum(_GL_WEIGHTS / 2.0 * np.exp((1.0 - d) * z) * d ** (k - 1))) / math.factorial(k - 1)


def comfy_unipc(denoise, noise, sigmas, variant, final_sigma_zero="comfyui"):
    """ComfyUI's ``sample_unipc`` on the VE data-prediction model ``denoise``, in float64. ``final_sigma_zero``:
    ``"comfyui"`` replaces a last sigma 0 by 0.001 (ComfyUI); ``"paper"`` takes the step to 0 exactly (x = D)."""
    t = [float(s) for s in sigmas]
    exact_zero = t[-1] == 0.0 and final_sigma_zero == "paper"
    if t[-1] == 0.0 and not exact_zero:
        t[-1] = 0.001
    steps = len(t) - 1
    order = min(3, steps - 1)
    alpha = [1.0 / math.sqrt(1.0 + s * s) for s in t]
    lam = [-math.log(s) if s > 0 else math.inf for s in t]
    x = noise * math.sqrt(1.0 + t[0] ** 2) * alpha[0]  # the VP state: ComfyUI divides the scaled noise by sqrt(1+s^2)

    def data(x_vp, k):  # the model on the VP state at level k
        return denoise(x_vp / alpha[k], t[k])

    def update(x_vp, prev, k, p, corrector):
        """UniP-p from the newest level prev[-1] to level k (and UniC-p with the output at the result)."""
        (s_idx, m0), older = prev[-1], prev[-p:-1][::-1]  # older: newest first
        h = lam[k] - lam[s_idx]
        hh = -h
        b_h = hh if variant == "bh1" else math.expm1(hh)
        sig_s, sig_t = t[s_idx] * alpha[s_idx], t[k] * alpha[k]  # VP sigmas
        base = sig_t / sig_s * x_vp - alpha[k] * math.expm1(hh) * m0
        r = [(lam[j] - lam[s_idx]) / h for j, _ in older]
        diffs = [(m - m0) / r_j for (_, m), r_j in zip(older, r)]

        def rhos(nodes):
            if len(nodes) == 1:
                return [0.5]
            rows = np.array([[node ** (q - 1) for node in nodes] for q in range(1, len(nodes) + 1)])
            g = [math.factorial(q) * hh * phi_k(q + 1, hh) / b_h for q in range(1, len(nodes) + 1)]
            return list(np.linalg.solve(rows, g))

        rho_p = rhos(r) if r else []
        x_t = base - alpha[k] * b_h * sum((rho * d for rho, d in zip(rho_p, diffs)), np.zeros_like(x_vp))
        if not corrector:
            return x_t, None
        m_t = data(x_t, k)  # evaluated at the predicted state: the next update's history
        rho_c = rhos(r + [1.0])
        correction = sum((rho * d for rho, d in zip(rho_c[:-1], diffs)), np.zeros_like(x_vp))
        return base - alpha[k] * b_h * (correction + rho_c[-1] * (m_t - m0)), m_t

    prev = [(0, data(x, 0))]
    for k in range(1, steps + 1):
        last = k == steps
        if exact_zero and last:
            return prev[-1][1]  # the first-order step to sigma = 0: D at the newest level
        p = k if k < order else min(order, steps + 1 - k)
        x, m = update(x, prev, k, max(p, 1), corrector=not last)
        if not last:
            prev = (prev + [(k, m)])[-3:]
    return x / alpha[-1]


def mixture():
    return ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS), GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)


@pytest.mark.parametrize("name, variant", [("uni_pc", "bh1"), ("uni_pc_bh2", "bh2")])
@pytest.mark.parametrize("steps", [2, 3, 4, 7])
def test_uni_pc_matches_comfyui_where_the_schedule_ends_above_zero(name, variant, steps):
    """On a schedule ending at sigma_min (no 0), ComfyUI's loop is the paper's; its order min(3, steps - 1) with
    lower-order-final is ``solver_order=3`` at every step count."""
    ref_denoise, model = mixture()
    sigmas = np.append(ve_ref.karras_sigmas(steps, sigma_min=0.03, sigma_max=14.6)[:-1], 0.01)  # steps + 1 levels
    noise = unit_noise((8, 2), seed=steps)
    expected = comfy_unipc(ref_denoise, noise, sigmas, variant)
    sampler = build(name)
    got = sampler(model, Tensor(noise.astype(np.float32)), sigmas=list(sigmas)).asnumpy()
    assert sampler.last_nfe == steps
    assert rel(got, expected) < 5e-6  # float32 against float64 (measured 4e-7 to 1.8e-6); bh1 vs bh2 differ by >= 0.1


@pytest.mark.parametrize("name, variant", [("uni_pc", "bh1"), ("uni_pc_bh2", "bh2")])
def test_uni_pc_takes_the_step_to_zero_exactly(name, variant):
    """ComfyUI stops at sigma 0.001 (the last update goes there, first order, and the state is returned); the paper's
    step to 0 returns the data estimate. Same history and model calls otherwise."""
    ref_denoise, model = mixture()
    sigmas = np.append(ve_ref.karras_sigmas(6, sigma_min=0.03, sigma_max=14.6)[:-1], 0.0)
    noise = unit_noise((8, 2), seed=11)
    paper = comfy_unipc(ref_denoise, noise, sigmas, variant, final_sigma_zero="paper")
    comfyui = comfy_unipc(ref_denoise, noise, sigmas, variant)
    got = build(name)(model, Tensor(noise.astype(np.float32)), sigmas=list(sigmas)).asnumpy()
    assert rel(got, paper) < 5e-6
    assert 1e-4 < rel(comfyui, paper) < 0.05  # 0.001 / 0.03 of the last state is left in ComfyUI's result


def test_uni_pc_hand_derived_numbers():
    """Two steps 10 -> 1 -> 0 on 1-D N(0, 1) data (D = x / (1 + sigma^2)) from unit noise 1: ComfyUI's order is
    min(3, 1) = 1, so with x0 = sqrt(101), h = log 10, m0 = D(x0, 10):

        x1' = x0 / 10 + 0.9 m0                        (UniP-1 to sigma 1),  m1 = D(x1', 1) = x1' / 2
        x1  = x1' - B(h) (m1 - m0) / 2,  B = -h (bh1) or e^-h - 1 (bh2)  (UniC-1)
        ComfyUI: x2 = 0.001 x1 + 0.999 m1             (UniP-1 to 0.001; its output m1 is the one at x1')
        here:    x2 = m1                              (the step to 0 returns D)
    """
    x0 = math.sqrt(101.0)
    m0 = x0 / 101.0
    x1p = x0 / 10.0 + 0.9 * m0
    m1 = x1p / 2.0
    h = math.log(10.0)
    for variant, b_h, corrected, comfy_value in (
        ("bh1", -h, 1.6100514, 0.5483332),
        ("bh2", -0.9, 1.2960359, 0.5480192),
    ):
        x1 = x1p - b_h * (m1 - m0) / 2.0
        assert x1 == pytest.approx(corrected, rel=1e-7)
        assert 0.001 * x1 + 0.999 * m1 == pytest.approx(comfy_value, rel=1e-7)
        reference = comfy_unipc(lambda x, s: x / (1.0 + s * s), np.ones((1, 1)), [10.0, 1.0, 0.0], variant)
        assert reference[0, 0] == pytest.approx(comfy_value, rel=1e-7)  # the reference loop gives the hand numbers
    assert m1 == pytest.approx(0.5472705, rel=1e-7)
    model = lambda x, sigma, cond=None: x / (1.0 + sigma[:, None] ** 2)  # noqa: E731
    for name in ("uni_pc", "uni_pc_bh2"):
        got = build(name)(model, Tensor(np.ones((1, 1), np.float32)), sigmas=[10.0, 1.0, 0.0]).asnumpy()
        assert got[0, 0] == pytest.approx(m1, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# 3. dpmpp_2m_sde_heun: ComfyUI's numbers, VE and flow
# ---------------------------------------------------------------------------------------------------------------------


def comfy_dpmpp_2m_sde(denoise, x, sigmas, noises, *, eta=1.0, s_noise=1.0, solver_type="heun", flow=False):
    """k-diffusion / ComfyUI ``sample_dpmpp_2m_sde`` in float64: lambda = -log sigma (VE) or -logit(sigma) (flow),
    ``x = (s'/s) e^{-eta h} x + alpha' (1 - e^{-h_eta}) D + correction + s' sqrt(1 - e^{-2 eta h}) s_noise z``."""
    lam = (lambda s: math.log((1.0 - s) / s)) if flow else (lambda s: -math.log(s))
    old, h_last, noises = None, None, list(noises)
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = denoise(x, s)
        if s_next == 0.0:
            return d
        h = lam(s_next) - lam(s)
        h_eta = h * (eta + 1.0)
        alpha_next = s_next * math.exp(lam(s_next))
        x = s_next / s * math.exp(-h * eta) * x + alpha_next * -math.expm1(-h_eta) * d
        if old is not None:
            r = h_last / h
            if solver_type == "heun":
                x = x + alpha_next * (-math.expm1(-h_eta) / -h_eta + 1.0) / r * (d - old)
            else:
                x = x + 0.5 * alpha_next * -math.expm1(-h_eta) / r * (d - old)
        x = x + noises.pop(0) * s_next * math.sqrt(-math.expm1(-2.0 * h * eta)) * s_noise
        old, h_last = d, h
    return x


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_dpmpp_2m_sde_heun_matches_comfyui(param):
    """ComfyUI's defaults (eta 1, s_noise 1, Heun's correction), the same noise per step, VE and flow (a flow schedule
    from 0.97: ComfyUI moves a first sigma of 1 away from 1, a deviation the family tests cover)."""
    flow = param == "flow"
    sigmas = [0.97, 0.8, 0.55, 0.3, 0.12, 0.03, 0.0] if flow else [14.6, 5.0, 2.0, 0.8, 0.3, 0.05, 0.0]
    ref_denoise = (rf.flow_gmm_denoiser if flow else ve_ref.gmm_denoiser)(MEANS, STDS, WEIGHTS)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    noise = unit_noise((8, 2), seed=5)
    noises = [unit_noise((8, 2), seed=20 + k) for k in range(len(sigmas) - 2)]
    start = noise * (sigmas[0] if flow else math.sqrt(1.0 + sigmas[0] ** 2))  # init_noise="sgm"
    expected = comfy_dpmpp_2m_sde(ref_denoise, start, sigmas, noises, flow=flow)
    sampler = build("dpmpp_2m_sde_heun")
    x = Tensor(noise.astype(np.float32))
    got = sampler(model, x, sigmas=sigmas, noise_sampler=queue_sampler(noises)).asnumpy()
    assert rel(got, expected) < 5e-6
    midpoint = comfy_dpmpp_2m_sde(ref_denoise, start, sigmas, noises, flow=flow, solver_type="midpoint")
    assert rel(midpoint, expected) > 1e-3  # the preset's solver_type matters


def test_a_preset_runs_as_one_compiled_graph():
    """``uni_pc`` (UniPC bh1, order 3) on a real network with CFG, on a flow model from sigma = 1: the whole-loop
    graph equals the step-by-step call."""
    preset = registry.preset("uni_pc")
    got, expected, nfe_loop, nfe_eager = compiled_and_eager(resolve("uni_pc"), "flow", 6, **preset.defaults)
    assert nfe_loop == nfe_eager == 6
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# 4. ComfyUI's schedule names
# ---------------------------------------------------------------------------------------------------------------------

# comfy/samplers.py SCHEDULER_NAMES, and the GITS, Align-Your-Steps and Laplace nodes (comfy_extras)
COMFY_SCHEDULE_NAMES = (
    "simple sgm_uniform karras exponential ddim_uniform beta normal linear_quadratic kl_optimal gits align_your_steps "
    "laplace"
).split()
SD = {"linear_start": 0.00085, "linear_end": 0.012}


def test_every_comfyui_schedule_name_is_a_discretization():
    from edm_sampler.discretization import Discretization

    for name in COMFY_SCHEDULE_NAMES:
        assert issubclass(resolve(name), Discretization), name


@pytest.mark.parametrize("name", ["simple", "sgm_uniform", "normal", "ddim_uniform", "beta"])
def test_a_schedule_walking_the_training_levels_says_what_to_pass(name):
    with pytest.raises(ValueError, match="pass linear_start and linear_end for a DDPM model .* or shift for a flow"):
        build(name)
    assert len(build(name, **SD)(10)) >= 11 and build(name, shift=3.0).parametrization == "flow"


def test_linear_quadratic_takes_a_ddpm_models_sigma_max():
    """ComfyUI scales Mochi's schedule by the model's sigma_max: 1 for flow, the top training level for SD (the
    schedule ComfyUI's KSampler gives an SD model under ``linear_quadratic``)."""
    flow, sd = build("linear_quadratic"), build("linear_quadratic", **SD)
    assert flow.parametrization == "flow" and sd.parametrization == "ve"
    top = math.sqrt(1.0 / np.prod(1.0 - np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2) - 1.0)  # SD's sigma_max
    assert top == pytest.approx(14.6146, abs=1e-4)
    np.testing.assert_allclose(sd(9), flow(9) * top, rtol=1e-14)
    comfy = build("comfy_scheduler", scheduler="linear_quadratic", **SD)
    np.testing.assert_allclose(sd(9), comfy(9), rtol=1e-14)
    assert repr(sd).endswith("linear_start=0.00085, linear_end=0.012, num_timesteps=1000)")
    with pytest.raises(ValueError, match="needs both linear_start and linear_end"):
        build("linear_quadratic", linear_start=0.00085)
