"""ER-SDE-Solver-3 (Cui et al. 2023) and SEEDS-2/3 (Gonzalez et al. 2023), ComfyUI's ``er_sde``, ``seeds_2`` and
``seeds_3``: against independent float64 references of the published equations (VE and flow, non-default eta /
s_noise / stages, injected noise, the draw order), ComfyUI's numbers worked out from its formulas, cross-checks with
the samplers they reduce to, measured orders of their ODE forms on the exact Gaussian model, the sample variance of
their SDE forms, the compiled loop on a real network, and their parameter checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import MEANS, SIGMA_DATA, STDS, WEIGHTS, gauss_legendre, queue_sampler, rel
from realnets import compiled_and_eager
from scipy.integrate import quad

from mindspore import Tensor

from edm_sampler import (
    DPMPP2SAncestralSampler,
    ERSDESampler,
    EulerAncestralSampler,
    FlowMatchDiscretization,
    SEEDS2Sampler,
    SEEDS3Sampler,
    load_sampler,
    parametrization,
    randn,
    resolve,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser

# ---------------------------------------------------------------------------------------------------------------------
# The float64 references
# ---------------------------------------------------------------------------------------------------------------------


def noise_scale_function(solver_type, eta):
    """The paper's phi(l): ER-SDE's ``l (e^(l^0.3) + 10)^eta`` (ComfyUI's node), ``l^(1 + eta)``, or the ODE's ``l``."""
    if solver_type == "ode" or eta == 0:
        return lambda level: level
    if solver_type == "er_sde":
        return lambda level: level * (math.exp(level**0.3) + 10.0) ** eta
    return lambda level: level ** (1.0 + eta)


def taylor_integrals(phi, l_t, l_s):
    """``int_{l_t}^{l_s} dl / phi(l)`` and ``int_{l_t}^{l_s} (l - l_s) / phi(l) dl`` by scipy's adaptive quadrature."""
    s_1 = quad(lambda v: 1 / phi(v), l_t, l_s, epsabs=0, epsrel=1e-13)[0]
    s_2 = quad(lambda v: (v - l_s) / phi(v), l_t, l_s, epsabs=0, epsrel=1e-13)[0]
    return s_1, s_2


def er_sde_reference(
    denoise, x, sigmas, *, solver_type="er_sde", eta=1.0, s_noise=1.0, max_stage=3, noises=(), param="ve"
):
    """ER-SDE-Solver-3 (arXiv:2309.06169, VP data prediction) in l = sigma / alpha: the first-order term, then the
    Taylor terms in D' and D'' with their integrals of 1/phi by scipy's adaptive quadrature, the noise ``alpha_t
    sqrt(l_t^2 - l_s^2 r^2) z``. A flow step from sigma = 1 (l = inf) is the limit: ``alpha_t D`` (plus ``sigma_t x``
    for the ODE), noise ``sigma_t z`` (none for the ODE), no history after it."""
    p, noises, phi = rf.as_param(param), iter(noises), noise_scale_function(solver_type, eta)
    stochastic = not (solver_type == "ode" or eta == 0)
    x, nfe, draws, history = np.asarray(x, np.float64), 0, [], []  # history: (l, D, D') newest first
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        sigma, sigma_next = float(sigma), float(sigma_next)
        denoised = denoise(x, sigma)
        nfe += 1
        if sigma_next == 0:
            x = denoised
            continue
        alpha, alpha_next = p.alpha(sigma), p.alpha(sigma_next)
        l_t = sigma_next / alpha_next
        if alpha == 0:
            x = (0.0 if stochastic else sigma_next) * x + alpha_next * denoised
            std = sigma_next if stochastic else 0.0
            history = []
        else:
            l_s = sigma / alpha
            r = phi(l_t) / phi(l_s)
            x_next = (alpha_next / alpha) * r * x + alpha_next * (1 - r) * denoised
            stage = min(max_stage, len(history) + 1)
            d1 = None
            if stage >= 2:
                s_1, s_2 = taylor_integrals(phi, l_t, l_s)
                d1 = (denoised - history[0][1]) / (l_s - history[0][0])
                x_next = x_next + alpha_next * (l_t - l_s + phi(l_t) * s_1) * d1
                if stage >= 3:
                    d2 = (d1 - history[0][2]) / ((l_s - history[1][0]) / 2)
                    x_next = x_next + alpha_next * ((l_t - l_s) ** 2 / 2 + phi(l_t) * s_2) * d2
            x = x_next
            std = alpha_next * math.sqrt(max(l_t**2 - (l_s * r) ** 2, 0.0)) if stochastic else 0.0
            history = [(l_s, denoised, d1)] + history[:1]
        if std > 0 and s_noise > 0:
            draws.append((sigma, sigma_next))
            x = x + s_noise * std * np.asarray(next(noises), np.float64)
    return x, nfe, draws


def _exp_weights(length):
    """``int_0^F e^-(F - u) du`` and ``int_0^F e^-(F - u) u du`` by Gauss-Legendre quadrature."""
    return (
        gauss_legendre(lambda u: np.exp(u - length), 0.0, length),
        gauss_legendre(lambda u: np.exp(u - length) * u, 0.0, length),
    )


class SeedsStep:
    """One SEEDS step from ``x_s`` at sigma to sigma_next: its moves, each from x_s to the fraction f of the step
    (``(sigma_f / sigma) e^(-eta f h) x_s + alpha_f int_0^(f H) e^-(fH - u) (D + u D') du``), with the noise of each
    continuing the previous move's: ``n <- e^(-eta df h) n + sqrt(1 - e^(-2 eta df h)) z``, times ``sigma_f
    s_noise``."""

    def __init__(self, p, sigma, sigma_next, x_s, eta, s_noise, draw):
        self.p, self.sigma, self.sigma_next, self.x_s = p, sigma, sigma_next, x_s
        self.eta, self.s_noise, self.draw = eta, s_noise, draw
        self.h = p.lam_step(sigma, sigma_next)
        self.big_h = self.h * (1 + eta)
        self.n, self.f, self.level = 0.0, 0.0, sigma

    def move(self, f, estimate, slope):
        p, h, eta = self.p, self.h, self.eta
        level = p.lam_fraction(self.sigma, self.sigma_next, f) if f < 1 else self.sigma_next
        e0, e1 = _exp_weights(f * self.big_h)
        out = (level / self.sigma) * math.exp(-eta * f * h) * self.x_s + p.alpha(level) * (e0 * estimate + e1 * slope)
        if eta > 0 and self.s_noise > 0:
            df = f - self.f
            z = self.draw(self.level, level)
            self.n = math.exp(-eta * df * h) * self.n + math.sqrt(-math.expm1(-2 * eta * df * h)) * z
            out = out + level * self.s_noise * self.n
        self.f, self.level = f, level
        return out, level


def seeds_reference(denoise, x, sigmas, *, stages=2, eta=1.0, s_noise=1.0, r=0.5, solver_type="phi_1", r_1=1 / 3,
                    r_2=2 / 3, noises=(), param="ve"):  # fmt: skip
    """SEEDS-2 / SEEDS-3 (arXiv:2305.14267) in lambda with H = (1 + eta) h (:class:`SeedsStep`): SEEDS-2 moves to r,
    then the full step with ``D + (D_1 - D) / (2r)`` (phi_1) or the slope ``(D_1 - D) / (r H)`` (phi_2); SEEDS-3
    moves to r_1, to r_2 with the slope ``(D_1 - D) / (r_1 H)``, then the full step with ``(D_2 - D) / (r_2 H)``. A
    flow step from sigma = 1 is the exact first-order step."""
    p, noises = rf.as_param(param), iter(noises)
    x, nfe, draws = np.asarray(x, np.float64), 0, []

    def draw(a, b):
        draws.append((a, b))
        return np.asarray(next(noises), np.float64)

    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        sigma, sigma_next = float(sigma), float(sigma_next)
        denoised = denoise(x, sigma)
        nfe += 1
        if sigma_next == 0:
            x = denoised
            continue
        step = SeedsStep(p, sigma, sigma_next, x, eta, s_noise, draw)
        if math.isinf(step.h):
            x = (0.0 if eta > 0 else sigma_next / sigma) * x + p.alpha(sigma_next) * denoised
            if eta > 0 and s_noise > 0:
                x = x + s_noise * sigma_next * draw(sigma, sigma_next)
        elif stages == 2:
            d_1 = denoise(*step.move(r, denoised, 0.0))
            nfe += 1
            if solver_type == "phi_1":
                x, _ = step.move(1.0, denoised + (d_1 - denoised) / (2 * r), 0.0)
            else:
                x, _ = step.move(1.0, denoised, (d_1 - denoised) / (r * step.big_h))
        else:
            d_1 = denoise(*step.move(r_1, denoised, 0.0))
            d_2 = denoise(*step.move(r_2, denoised, (d_1 - denoised) / (r_1 * step.big_h)))
            nfe += 2
            x, _ = step.move(1.0, denoised, (d_2 - denoised) / (r_2 * step.big_h))
    return x, nfe, draws


def gmm(param):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    return model, denoise


VE_SIGMAS = ve_ref.karras_sigmas(9, sigma_max=20.0)
FLOW_FROM_ONE = np.append(np.linspace(1.0, 0.06, 9), 0.0)
FLOW_BELOW_ONE = np.linspace(0.97, 0.03, 10)


def run(sampler, model, sigmas, rng):
    """The sampler from ``x * sigma_0`` with recorded injected noise: (output, start, noises, calls)."""
    start = rng.standard_normal((6, 2)) * sigmas[0]
    noises = rng.standard_normal((3 * len(sigmas), 6, 2))
    calls = []
    out = sampler(model, Tensor(start.astype(np.float32)), sigmas=sigmas, noise_sampler=queue_sampler(noises, calls))
    return to_np(out), start, noises, calls


# ---------------------------------------------------------------------------------------------------------------------
# 1. The float64 references, VE and flow
# ---------------------------------------------------------------------------------------------------------------------

ER_CASES = [
    ("ve", dict(), VE_SIGMAS),
    ("ve", dict(eta=0.6, s_noise=0.8), VE_SIGMAS),
    ("ve", dict(solver_type="reverse_time_sde", eta=0.5, max_stage=2), VE_SIGMAS),
    ("ve", dict(solver_type="ode"), VE_SIGMAS),
    ("flow", dict(), FLOW_FROM_ONE),
    ("flow", dict(solver_type="ode", max_stage=3), FLOW_FROM_ONE),
    ("flow", dict(eta=1.5, s_noise=1.2), FLOW_BELOW_ONE),
    ("flow", dict(solver_type="reverse_time_sde", max_stage=1), FLOW_BELOW_ONE),
]


@pytest.mark.parametrize("param, params, sigmas", ER_CASES, ids=[f"{c[0]}-{c[1]}" for c in ER_CASES])
def test_er_sde_matches_the_float64_reference(param, params, sigmas, rng):
    model, denoise = gmm(param)
    sampler = ERSDESampler(**params, init_noise="prescaled")
    out, start, noises, calls = run(sampler, model, sigmas, rng)
    ref, nfe, draws = er_sde_reference(denoise, start, sigmas, noises=noises, param=param, **params)
    assert rel(out, ref) <= 2e-6
    assert sampler.last_nfe == nfe == len(sigmas) - 1
    assert calls == draws
    ode = params.get("solver_type") == "ode"
    assert len(draws) == (0 if ode else int(np.sum(sigmas[1:] > 0)))


SEEDS_CASES = [
    ("ve", 2, dict(), VE_SIGMAS),
    ("ve", 2, dict(eta=0.5, s_noise=0.8, r=0.3, solver_type="phi_2"), VE_SIGMAS),
    ("ve", 3, dict(), VE_SIGMAS),
    ("ve", 3, dict(eta=0.7, s_noise=1.3, r_1=0.25, r_2=0.8), VE_SIGMAS),
    ("flow", 2, dict(eta=0.0, r=0.7), FLOW_FROM_ONE),
    ("flow", 2, dict(eta=1.2, s_noise=0.9, solver_type="phi_2"), FLOW_FROM_ONE),
    ("flow", 3, dict(), FLOW_FROM_ONE),
    ("flow", 3, dict(eta=0.4, s_noise=0.7, r_1=0.5, r_2=1.0), FLOW_BELOW_ONE),
]


@pytest.mark.parametrize(
    "param, stages, params, sigmas", SEEDS_CASES, ids=[f"{c[0]}-seeds{c[1]}-{c[2]}" for c in SEEDS_CASES]
)
def test_seeds_matches_the_float64_reference(param, stages, params, sigmas, rng):
    model, denoise = gmm(param)
    sampler = (SEEDS2Sampler if stages == 2 else SEEDS3Sampler)(**params, init_noise="prescaled")
    out, start, noises, calls = run(sampler, model, sigmas, rng)
    ref, nfe, draws = seeds_reference(denoise, start, sigmas, stages=stages, noises=noises, param=param, **params)
    assert rel(out, ref) <= 2e-6
    assert sampler.last_nfe == nfe
    # ComfyUI's order: (sigma, sigma_1), (sigma_1, sigma_2), ..., (sigma_k, sigma_next)
    assert len(calls) == len(draws) and np.allclose(calls, draws, rtol=1e-12, atol=0)
    steps = len(sigmas) - 1
    full = steps - int(sigmas[-1] == 0) - int(sigmas[0] == 1.0)  # the multi-stage steps
    assert nfe == steps + (stages - 1) * full
    assert len(draws) == (0 if params.get("eta") == 0 else stages * full + int(sigmas[0] == 1.0))


# ---------------------------------------------------------------------------------------------------------------------
# 2. ComfyUI's numbers, and the samplers these reduce to
# ---------------------------------------------------------------------------------------------------------------------


def test_er_sde_coefficients_are_comfyuis():
    """VE step 10 -> 5 after one at 20: phi(l) = l (e^(l^0.3) + 10), phi(10) = 173.5413187, phi(5) = 75.28204624, r =
    0.4337989753 (x weight r, D weight 1 - r), noise std sqrt(25 - 100 r^2) = 2.486331615. Stage 2's weight with the
    exact integral is -1.752292467; ComfyUI's 200-point Riemann sum gives -1.745205670 (0.40% off)."""
    sampler = ERSDESampler(max_stage=2)
    plan = list(sampler.plan(parametrization.get("ve"), np.array([20.0, 10.0, 5.0, 0.0]), lambda a, b: None))
    c = plan[1]
    assert c["x_weight"] == pytest.approx(0.4337989753089, abs=1e-12)
    assert c["d_weight"] == pytest.approx(1 - 0.4337989753089, abs=1e-12)
    assert c["noise"]["std"] == pytest.approx(2.486331615471846, abs=1e-12)
    assert c["inv_dl"] == pytest.approx(1 / (10.0 - 20.0))
    assert c["w_2"] == pytest.approx(-1.7522924673316522, abs=1e-12)
    assert c["w_2"] / -1.7452056695312503 - 1 == pytest.approx(0.00406, abs=1e-5)
    assert not c["stage_3"] and plan[0]["stage_2"] is False and plan[2]["last"]


def test_er_sde_reverse_sde_first_stage_is_euler_ancestral(rng):
    """phi(l) = l^2 with one stage: x weight (sigma_t / sigma_s)^2, noise sqrt(sigma_t^2 - sigma_t^4 / sigma_s^2): the
    Euler ancestral step with eta = 1 (VE)."""
    model, _ = gmm("ve")
    x = Tensor(rng.standard_normal((5, 2)).astype(np.float32))
    noises = rng.standard_normal((len(VE_SIGMAS), 5, 2))
    a = ERSDESampler("reverse_time_sde", max_stage=1)(model, x, sigmas=VE_SIGMAS, noise_sampler=queue_sampler(noises))
    b = EulerAncestralSampler()(model, x, sigmas=VE_SIGMAS, noise_sampler=queue_sampler(noises))
    np.testing.assert_allclose(to_np(a), to_np(b), rtol=0, atol=2e-6)


def test_er_sde_eta_0_is_the_ode_for_every_type(rng):
    model, _ = gmm("flow")
    x = Tensor(rng.standard_normal((5, 2)).astype(np.float32))
    ode = to_np(ERSDESampler("ode")(model, x, sigmas=FLOW_FROM_ONE))
    for solver_type in ("er_sde", "reverse_time_sde"):
        out = ERSDESampler(solver_type, eta=0.0)(model, x, sigmas=FLOW_FROM_ONE, generator=0)
        np.testing.assert_array_equal(to_np(out), ode)


def test_seeds_2_without_noise_is_dpmpp_2s(rng):
    """eta = 0, r = 1/2, phi_1: the stage at the lambda midpoint, then the full step with its estimate alone."""
    for param, sigmas in (("ve", VE_SIGMAS), ("flow", FLOW_FROM_ONE)):
        model, _ = gmm(param)
        x = Tensor(rng.standard_normal((5, 2)).astype(np.float32))
        a = SEEDS2Sampler(eta=0.0)(model, x, sigmas=sigmas)
        b = DPMPP2SAncestralSampler(eta=0.0)(model, x, sigmas=sigmas)
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=0, atol=2e-6)


# ---------------------------------------------------------------------------------------------------------------------
# 3. The ODE forms' convergence order on the exact Gaussian ODE; the SDE forms' sample variance
# ---------------------------------------------------------------------------------------------------------------------

# VE: geomspace(20, 0.05) (uniform in lambda), no final jump to 0; flow: 0.98 -> 0.02 uniform in lambda. Fitted slopes:
# SEEDS-2 (eta 0) -1.93 (VE), -1.98 (flow, phi_2); ER-SDE's ODE -2.16 (VE, 3 stages), -2.06 (flow, 2 stages). ER-SDE's
# D' is a backward difference (first-order accurate, as in the paper's code and ComfyUI), so its third stage lowers
# the error (by 20-40% here) but not the order: float64 local slopes fall to -2.02 (3 stages) at 256-512 steps.
ORDERS = [
    ("seeds_2", "ve", dict(eta=0.0), [8, 16, 32, 64], (-2.1, -1.9)),
    ("seeds_2", "flow", dict(eta=0.0, solver_type="phi_2"), [8, 16, 32, 64], (-2.1, -1.9)),
    ("er_sde", "ve", dict(solver_type="ode"), [16, 32, 64, 128], (-2.3, -1.9)),
    ("er_sde", "flow", dict(solver_type="ode", max_stage=2), [16, 32, 64, 128], (-2.3, -1.9)),
]


def order_schedule(param, n):
    if param == "ve":
        return np.geomspace(20.0, 0.05, n + 1)
    lam = np.linspace(math.log(0.02 / 0.98), math.log(0.98 / 0.02), n + 1)
    return 1.0 / (1.0 + np.exp(lam))


def gaussian_errors(name, param, params, steps):
    """The library's relative errors against the exact Gaussian ODE solution, one per step count."""
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    errors = []
    for n in steps:
        sigmas = order_schedule(param, n)
        exact = model.exact_solution(x.astype(np.float64) * sigmas[0], sigmas[0], sigmas[-1])
        out = resolve(name)(**params, init_noise="edm")(model, Tensor(x), sigmas=sigmas)
        errors.append(rel(to_np(out), exact))
    return errors


@pytest.mark.parametrize("name, param, params, steps, bounds", ORDERS, ids=[f"{o[0]}-{o[1]}-{o[2]}" for o in ORDERS])
def test_convergence_order_on_the_gaussian_ode(name, param, params, steps, bounds):
    errors = gaussian_errors(name, param, params, steps)
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 2e-5  # truncation error, well above float32 rounding
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"
    if name == "er_sde" and params.get("max_stage") == 2:  # the third stage: the same order, a smaller error
        three = gaussian_errors(name, param, dict(params, max_stage=3), steps)
        assert all(e3 < 0.85 * e2 for e2, e3 in zip(errors, three)), (errors, three)


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_seeds_3_is_third_order(param):
    """SEEDS-3's ODE (DPM-Solver-3's stages) reaches order 3 only past 64 steps here, where float32 rounding would
    blur the library's errors: the order is measured on the float64 reference (local slopes -2.86, -2.93, -2.97 for VE
    over 32-256 steps; flow -2.81, -2.91, -2.96), and the library's errors equal the reference's where they are large
    (4-16 steps, errors 1e-3 to 4e-5)."""
    gaussian = (lambda x, s: x * 0.25 / (0.25 + s * s)) if param == "ve" else rf.flow_gaussian(SIGMA_DATA)
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    x = np.random.default_rng(3).standard_normal((4, 9))

    def reference_error(n):
        sigmas = order_schedule(param, n)
        exact = model.exact_solution(x * sigmas[0], sigmas[0], sigmas[-1])
        return rel(seeds_reference(gaussian, x * sigmas[0], sigmas, stages=3, eta=0.0, param=param)[0], exact)

    steps = [64, 128, 256]
    slope = np.polyfit(np.log(steps), np.log([reference_error(n) for n in steps]), 1)[0]
    assert -3.1 <= slope <= -2.9, slope
    small = [4, 8, 16]
    np.testing.assert_allclose(
        gaussian_errors("seeds_3", param, dict(eta=0.0), small), [reference_error(n) for n in small], rtol=0.02
    )


# Data N(0, 0.5^2), 20000 samples, 64 steps to 0 (EDM's schedule; flow_match with shift 3): the sample std (0.5 exact,
# standard error 0.0025) is 0.498 (ER-SDE VE), 0.498 (SEEDS-2 VE), 0.492 (SEEDS-2 flow), 0.500 (SEEDS-3 flow), 0.501
# (ER-SDE flow, eta 0.5); at 12 steps they are 3-16% low (discretization), and all converge to 0.5.
VARIANCE = [
    ("er_sde", "ve", {}),
    ("seeds_2", "ve", {}),
    ("seeds_2", "flow", {}),
    ("seeds_3", "flow", {}),
    ("er_sde", "flow", dict(eta=0.5)),
]


@pytest.mark.parametrize("name, param, params", VARIANCE, ids=[f"{v[0]}-{v[1]}" for v in VARIANCE])
def test_sde_forms_sample_the_data_variance(name, param, params):
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    schedule = FlowMatchDiscretization(shift=3.0) if param == "flow" else None
    sampler = resolve(name)(**params, num_steps=64, discretization_config=schedule)
    out = to_np(sampler(model, randn((20000, 1), generator=0), generator=1))
    assert abs(out.std() / SIGMA_DATA - 1) < 0.02, out.std()


# ---------------------------------------------------------------------------------------------------------------------
# 4. graph_loop=True equals the step-by-step call on a real network
# ---------------------------------------------------------------------------------------------------------------------

GRAPH = [
    ("ve", SEEDS3Sampler, dict(eta=0.8)),
    ("flow", SEEDS2Sampler, dict(solver_type="phi_2", s_noise=0.9)),
    ("flow", ERSDESampler, dict(eta=0.7)),
]


@pytest.mark.parametrize("param, cls, params", GRAPH, ids=[f"{g[0]}-{g[1].__name__}" for g in GRAPH])
def test_graph_loop_equals_step_by_step(param, cls, params):
    got, expected, nfe, eager_nfe = compiled_and_eager(cls, param, 5, **params)
    assert nfe == eager_nfe
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# 5. Names, configs, parameters
# ---------------------------------------------------------------------------------------------------------------------


def test_short_names_and_shipped_configs():
    assert resolve("er_sde") is ERSDESampler
    assert resolve("seeds_2") is SEEDS2Sampler
    assert resolve("seeds_3") is SEEDS3Sampler
    er = load_sampler("er_sde.yaml")
    assert (er.solver_type, er.max_stage, er.eta, er.s_noise) == ("er_sde", 3, 1.0, 1.0)
    assert (load_sampler("seeds_2.yaml").r, load_sampler("seeds_3.yaml").r_2) == (0.5, 2 / 3)


@pytest.mark.parametrize(
    "cls, kwargs, error, match",
    [
        (ERSDESampler, dict(solver_type="sde"), ValueError, r"solver_type must be one of 'er_sde', 'reverse_time_sde'"),
        (ERSDESampler, dict(max_stage=4), ValueError, r"max_stage must be 1, 2 or 3"),
        (ERSDESampler, dict(max_stage=0), ValueError, r"max_stage must be >= 1"),
        (ERSDESampler, dict(eta=-1.0), ValueError, r"eta must be >= 0"),
        (ERSDESampler, dict(noise_scaler=None), TypeError, r"ERSDESampler: .*solver_type"),
        (SEEDS2Sampler, dict(r=0.0), ValueError, r"r must be > 0"),
        (SEEDS2Sampler, dict(r=1.5), ValueError, r"r must be <= 1"),
        (SEEDS2Sampler, dict(solver_type="phi_3"), ValueError, r"solver_type must be one of 'phi_1', 'phi_2'"),
        (SEEDS2Sampler, dict(s_noise=-0.5), ValueError, r"s_noise must be >= 0"),
        (SEEDS3Sampler, dict(r_1=0.7, r_2=0.6), ValueError, r"r_1 must be < r_2"),
        (SEEDS3Sampler, dict(r_2=True), TypeError, r"r_2 must be a real number"),
    ],
)
def test_bad_parameters_are_refused_by_name(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_repr_and_callers_x_untouched(rng):
    sampler = SEEDS2Sampler(0.5, 0.7, num_steps=4)
    assert repr(sampler).startswith("SEEDS2Sampler(eta=0.5, s_noise=0.7, r=0.5, solver_type='phi_1', num_steps=4")
    x_np = rng.standard_normal((3, 2)).astype(np.float32)
    x = Tensor(x_np)
    out = sampler(GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS), x, generator=0)
    assert out is not x and sampler.last_nfe == 7
    np.testing.assert_array_equal(x.asnumpy(), x_np)
