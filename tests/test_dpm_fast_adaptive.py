"""DPM-Solver-fast and the adaptive DPM-Solver-12/23 (Lu et al. 2022; k-diffusion's ``DPMSolver``, ComfyUI's
``dpm_fast`` and ``dpm_adaptive``): against independent float64 references written from the paper's single-step
solvers (noise prediction, in the half-log-SNR of each parametrization) and the PID step-size rule, VE and flow, at
non-default eta / s_noise / order / tolerances with injected noise; a few of ComfyUI's numbers worked out by hand;
measured orders on the exact Gaussian ODE; the compiled loop (dpm_fast) and its refusal (dpm_adaptive); dpm_adaptive's
NFE against a count of the model's calls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import MEANS, SIGMA_DATA, STDS, WEIGHTS, queue_sampler, rel
from realnets import SHAPE, B, compiled_and_eager, conditioning, small_net

from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    DPMSolverAdaptiveSampler,
    DPMSolverFastSampler,
    EDMScaling,
    VanillaCFG,
    as_denoiser,
    load_sampler,
    randn,
    resolve,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser
from edm_sampler.samplers.dpm_adaptive import PIDStepSizeController
from edm_sampler.samplers.dpm_fast import fast_orders

# ---------------------------------------------------------------------------------------------------------------------
# The float64 references: DPM-Solver-1/2/3 (the paper's Algorithms 1 and 2), DPM-Solver-fast, DPM-Solver-12/23
# ---------------------------------------------------------------------------------------------------------------------


class Model:
    """A float64 denoiser that counts its calls; ``eps`` is the noise prediction ``(x - alpha D) / sigma``."""

    def __init__(self, denoise, p):
        self.denoise, self.p, self.nfe = denoise, p, 0

    def __call__(self, x, sigma):
        self.nfe += 1
        return self.denoise(x, sigma)

    def eps(self, x, sigma):
        return (x - self.p.alpha(sigma) * self(x, sigma)) / sigma


def dpm_solver(model, x, s, t, order, r1=0.5, r2=2 / 3, low_order=False):
    """DPM-Solver-``order`` from ``s`` to ``t``; with ``low_order`` also the order - 1 solution that shares the
    evaluations (DPM-Solver-12: DPM-Solver-1; DPM-Solver-23: DPM-Solver-2 with the same ``r1``)."""
    p = model.p
    lam_s = p.lam(s)
    h = p.lam(t) - lam_s
    ratio = p.alpha(t) / p.alpha(s)
    eps_0 = model.eps(x, s)
    x_1 = ratio * x - t * math.expm1(h) * eps_0
    if order == 1:
        return x_1
    s_1 = p.sigma_at(lam_s + r1 * h)
    u_1 = p.alpha(s_1) / p.alpha(s) * x - s_1 * math.expm1(r1 * h) * eps_0
    eps_1 = model.eps(u_1, s_1)
    x_2 = x_1 - t / (2 * r1) * math.expm1(h) * (eps_1 - eps_0)
    if order == 2:
        return (x_1, x_2) if low_order else x_2
    s_2 = p.sigma_at(lam_s + r2 * h)
    phi = math.expm1(r2 * h) / (r2 * h) - 1
    u_2 = p.alpha(s_2) / p.alpha(s) * x - s_2 * math.expm1(r2 * h) * eps_0 - s_2 * (r2 / r1) * phi * (eps_1 - eps_0)
    eps_2 = model.eps(u_2, s_2)
    x_3 = x_1 - t / r2 * (math.expm1(h) / h - 1) * (eps_2 - eps_0)
    return (x_2, x_3) if low_order else x_3


def paper_orders(nfe):
    """DPM-Solver-fast's orders (the paper, Sec. 3.4): K = nfe evaluations in floor(K / 3) + 1 steps."""
    if nfe == 0:
        return []
    m = nfe // 3 + 1
    return [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]


def ends(p, model, x, sigmas, budget):
    """ComfyUI's (sigma_max, sigma_min), after a flow model's DDIM step from sigma = 1 to the second sigma (one
    evaluation of ``budget``)."""
    s_max = float(sigmas[0])
    s_min = float(sigmas[-1]) if sigmas[-1] > 0 else float(sigmas[-2])
    if p.flow and s_max >= 1.0 and budget > 0 and sigmas[1] > 0:
        s_1 = float(sigmas[1])
        x = s_1 * x + (1 - s_1) * model(x, 1.0)
        s_max, budget = s_1, budget - 1
    return x, s_max, s_min, budget


def renoise_to(p, x, target, sigma_next, s_noise, noises, draws):
    """From the state at ``target`` (the ancestral sigma_down) back to the marginal at ``sigma_next``."""
    a = p.alpha(sigma_next) / p.alpha(target)
    std = s_noise * math.sqrt(max(sigma_next**2 - (a * target) ** 2, 0.0))
    x = a * x
    if std > 0:
        x = x + std * np.asarray(noises[len(draws)], np.float64)
        draws.append(std)
    return x


def dpm_fast_reference(
    denoise, x, sigmas, *, eta=0.0, s_noise=1.0, denoise_to_zero=False, noises=(), param="ve"
) -> tuple:
    """Returns (x, nfe, draws)."""
    p = rf.Param(param)
    model, draws = Model(denoise, p), []
    final = denoise_to_zero and sigmas[-1] == 0
    x, s_max, s_min, budget = ends(p, model, np.asarray(x, np.float64), sigmas, len(sigmas) - 1 - int(final))
    orders = paper_orders(budget)
    grid = [p.sigma_at(lam) for lam in np.linspace(p.lam(s_max), p.lam(s_min), len(orders) + 1)]
    grid[0], grid[-1] = s_max, s_min
    for k, order in enumerate(orders):
        s, s_next = grid[k], grid[k + 1]
        target = max(p.split(s, s_next, eta)[0], s_min) if eta else s_next
        x = dpm_solver(model, x, s, target, order, r1=0.5 if order == 2 else 1 / 3)
        if eta:
            x = renoise_to(p, x, target, s_next, s_noise, noises, draws)
    if final:
        x = model(x, s_min)
    return x, model.nfe, draws


def pid_factor(errors, b):
    """The PID step-size factor of the inverse errors (newest first) and exponents (b1, b2, b3), atan-limited."""
    f = errors[0] ** b[0] * errors[1] ** b[1] * errors[2] ** b[2]
    return 1 + math.atan(f - 1)


def dpm_adaptive_reference(
    denoise,
    x,
    sigmas,
    *,
    order=3,
    rtol=0.05,
    atol=0.0078,
    h_init=0.05,
    pcoeff=0.0,
    icoeff=1.0,
    dcoeff=0.0,
    accept_safety=0.81,
    eta=0.0,
    s_noise=1.0,
    noises=(),
    param="ve",
    replay=None,
) -> tuple:
    """DPM-Solver-12/23 with the PID rule in lambda, or, with ``replay`` (every attempt's start sigma, as a sampler's
    callback reports them), along those attempts: an attempt whose successor starts elsewhere was accepted and went
    there (the last one to sigma_min). Returns (x, nfe, draws, the attempts' start sigmas, their acceptances)."""
    p = rf.Param(param)
    model, draws = Model(denoise, p), []
    x, s_max, s_min, _ = ends(p, model, np.asarray(x, np.float64), sigmas, 1)
    lam_start, lam_end = p.lam(s_max), p.lam(s_min)
    k = 1.5 if eta else order
    b = ((pcoeff + icoeff + dcoeff) / k, -(pcoeff + 2 * dcoeff) / k, dcoeff / k)
    h, inverse, lam, x_prev, starts, accepts = h_init, [], lam_start, x, [], []
    while (len(starts) < len(replay)) if replay is not None else (lam < lam_end - 1e-5):
        s = s_max if lam == lam_start else p.sigma_at(lam)
        if replay is not None:
            n = len(starts)
            t = replay[n + 1] if n + 1 < len(replay) else s_min
            if t == replay[n]:  # rejected: its end does not matter, only its evaluations
                t = p.sigma_at(lam + 0.5)
        else:
            lam_t = min(lam_end, lam + h)
            t = s_min if lam_t == lam_end else p.sigma_at(lam_t)
        starts.append(s)
        target = max(p.split(s, t, eta)[0], s_min) if eta else t
        x_low, x_high = dpm_solver(model, x, s, target, order, r1=0.5 if order == 2 else 1 / 3, low_order=True)
        delta = np.maximum(atol, rtol * np.maximum(np.abs(x_low), np.abs(x_prev)))
        error = np.sqrt(np.mean(((x_low - x_high) / delta) ** 2))
        inverse = [1 / (error + 1e-8)] + (inverse[1:] if inverse else [1 / (error + 1e-8)] * 2)
        factor = pid_factor(inverse, b)
        accept = factor >= accept_safety if replay is None else t != p.sigma_at(lam + 0.5)
        if accept:
            inverse = [inverse[0], inverse[0], inverse[1]]
            x_prev, x, lam = x_low, x_high, p.lam(t)
            if eta:
                x = renoise_to(p, x, target, t, s_noise, noises, draws)
        accepts.append(bool(accept))
        h *= factor
    return x, model.nfe, draws, starts, accepts


def model_pair(param):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    return model, denoise


# ---------------------------------------------------------------------------------------------------------------------
# 1. dpm_fast against the reference, and ComfyUI's numbers
# ---------------------------------------------------------------------------------------------------------------------

FAST = [
    ("ve", dict(), ve_ref.karras_sigmas(9, sigma_max=20.0)),  # 9 evaluations: orders 3, 3, 2, 1
    ("ve", dict(eta=0.7, s_noise=1.2), ve_ref.karras_sigmas(7, sigma_max=20.0)),  # 3, 3, 1
    ("ve", dict(denoise_to_zero=True), ve_ref.karras_sigmas(6, sigma_max=20.0)),  # 3, 2 and D
    ("ve", dict(), np.geomspace(15.0, 0.03, 6)),  # ends above 0: sigma_min is the last sigma
    ("flow", dict(), np.append(np.linspace(1.0, 0.05, 8), 0.0)),  # DDIM from 1, then 3, 3, 1
    ("flow", dict(eta=0.5, s_noise=0.8, denoise_to_zero=True), np.append(np.linspace(1.0, 0.05, 9), 0.0)),
    ("flow", dict(), np.linspace(0.95, 0.05, 6)),  # from below 1: no DDIM step
]


@pytest.mark.parametrize("param, params, sigmas", FAST, ids=[f"{c[0]}-{c[1]}-{len(c[2]) - 1}" for c in FAST])
def test_dpm_fast_matches_float64_reference(param, params, sigmas, rng):
    model, denoise = model_pair(param)
    x = rng.standard_normal((6, 2)).astype(np.float32) * sigmas[0]
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(len(sigmas))]
    calls, infos = [], []
    sampler = DPMSolverFastSampler(**params, init_noise="prescaled")
    out = sampler(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises, calls), callback=infos.append)
    ref, nfe, draws = dpm_fast_reference(denoise, x, sigmas, **params, noises=noises, param=param)
    assert sampler.last_nfe == nfe == len(infos) == len(sigmas) - 1
    assert len(calls) == len(draws) and (len(draws) > 0) == ("eta" in params)
    assert rel(to_np(out), ref) <= 5e-6, rel(to_np(out), ref)


def test_dpm_fast_orders_are_comfyuis():
    """k-diffusion's (and the paper's) split of 1..9 evaluations into steps."""
    expected = [[1], [2], [2, 1], [3, 1], [3, 2], [3, 2, 1], [3, 3, 1], [3, 3, 2], [3, 3, 2, 1]]
    assert [fast_orders(n) for n in range(1, 10)] == expected == [paper_orders(n) for n in range(1, 10)]
    assert all(sum(fast_orders(n)) == n for n in range(1, 40))


def test_dpm_fast_comfyui_numbers_by_hand():
    """D = x / 2 (VE) from x = 1 on (8, 2, 0): sigma_max 8, sigma_min 2, two evaluations = one DPM-Solver-2 step:
    eps_0 = 1/16, u_1 = 3/4 at sigma 4, eps_1 = 3/32, x = 1 - 2 (3)(1/16) - 2 (3)(1/32) = 0.4375 (exact ODE: 0.5). One
    step to 0 (8, 0) leaves no interval: the input comes back unchanged, after one evaluation, as in ComfyUI."""
    model = as_denoiser(lambda x, sigma, cond: x * 0.5)
    one = Tensor(np.ones((1, 1), np.float32))
    sampler = DPMSolverFastSampler(init_noise="prescaled")
    np.testing.assert_allclose(to_np(sampler(model, one, sigmas=[8.0, 2.0, 0.0])), 0.4375, rtol=1e-7)
    assert sampler.last_nfe == 2
    np.testing.assert_array_equal(to_np(sampler(model, one, sigmas=[8.0, 0.0])), 1.0)
    assert sampler.last_nfe == 1
    to_zero = DPMSolverFastSampler(denoise_to_zero=True, init_noise="prescaled")
    np.testing.assert_allclose(to_np(to_zero(model, one, sigmas=[8.0, 0.0])), 0.5)  # D itself


# ---------------------------------------------------------------------------------------------------------------------
# 2. dpm_adaptive against the reference; its NFE and its refusal of graph_loop
# ---------------------------------------------------------------------------------------------------------------------

ADAPTIVE = [
    ("ve", dict(), ve_ref.karras_sigmas(10, sigma_max=20.0)),
    ("ve", dict(order=2, rtol=0.02, atol=0.004, h_init=0.1), np.geomspace(15.0, 0.03, 5)),
    ("ve", dict(eta=0.6, s_noise=1.3, pcoeff=0.1, dcoeff=0.05, accept_safety=0.9), ve_ref.karras_sigmas(4)),
    ("flow", dict(), np.append(np.linspace(1.0, 0.05, 8), 0.0)),  # DDIM from 1 to 0.86, then adaptive
    ("flow", dict(order=2, eta=0.4, s_noise=0.7), np.linspace(0.95, 0.05, 6)),
]


@pytest.mark.parametrize("param, params, sigmas", ADAPTIVE, ids=[f"{c[0]}-{c[1]}" for c in ADAPTIVE])
def test_dpm_adaptive_matches_float64_reference(param, params, sigmas, rng):
    """The same controller: the reference's attempts start where the sampler's do, to the few 1e-3 that float32 error
    estimates move the step sizes (the PID's integral term carries them along); the same acceptances and NFE. The same
    solver: along the sampler's own attempts the reference's result is the sampler's, to float32 rounding."""
    model, denoise = model_pair(param)
    x = rng.standard_normal((6, 2)).astype(np.float32) * sigmas[0]
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(200)]
    calls, infos = [], []
    sampler = DPMSolverAdaptiveSampler(**params, init_noise="prescaled")
    noise_sampler = queue_sampler(noises, calls)
    out = to_np(sampler(model, Tensor(x), sigmas=sigmas, noise_sampler=noise_sampler, callback=infos.append))
    starts = [info["sigma"] for info in infos][1 if sigmas[0] == 1.0 else 0 :]  # without the DDIM step from 1
    _, nfe, _, ref_starts, accepts = dpm_adaptive_reference(denoise, x, sigmas, **params, noises=noises, param=param)
    info = sampler.last_info
    assert (info["n_accept"], info["n_reject"]) == (sum(accepts), len(accepts) - sum(accepts))
    assert (
        sampler.last_nfe
        == info["nfe"]
        == nfe
        == len(infos) * sampler.order - (sampler.order - 1) * (len(infos) - len(starts))
    )
    np.testing.assert_allclose(starts, ref_starts, rtol=5e-3)
    replayed, _, draws, _, _ = dpm_adaptive_reference(
        denoise, x, sigmas, **params, noises=noises, param=param, replay=starts
    )
    assert len(calls) == len(draws) and (len(draws) > 0) == ("eta" in params)
    assert rel(out, replayed) <= 2e-6, rel(out, replayed)


def test_dpm_adaptive_nfe_is_the_count_of_model_calls(rng):
    counted = []
    model, _ = model_pair("ve")

    def counting(x, sigma, cond):
        counted.append(float(sigma.asnumpy()[0]))
        return model(x, sigma, cond)

    x = Tensor(rng.standard_normal((4, 2)).astype(np.float32))
    for params in (dict(), dict(order=2), dict(rtol=0.005, atol=0.001)):
        counted.clear()
        sampler = DPMSolverAdaptiveSampler(**params, num_steps=10)
        sampler(as_denoiser(counting), x, generator=0)
        info = sampler.last_info
        assert sampler.last_nfe == len(counted) == info["nfe"] == sampler.order * info["steps"]
        assert info["steps"] == info["n_accept"] + info["n_reject"] and info["n_accept"] > 0
    assert max(counted) == pytest.approx(80.0, rel=1e-6) and min(counted) >= 0.002 * (1 - 1e-6)


def test_dpm_adaptive_refuses_graph_loop_with_the_reason():
    with pytest.raises(ValueError, match=r"graph_loop=True: its step sizes, and so its number of model evaluations, "):
        DPMSolverAdaptiveSampler(graph_loop=True)


def test_pid_controller_accepts_small_errors_and_grows_the_step():
    pid = PIDStepSizeController(0.05, 0.0, 1.0, 0.0, 3, 0.81)
    assert pid.propose(0.1) and pid.h == pytest.approx(0.05 * (1 + math.atan((0.1 + 1e-8) ** (-1 / 3) - 1)), rel=1e-12)
    h = pid.h
    assert not pid.propose(20.0) and pid.h < h  # a large error: rejected, the step shrinks


# ---------------------------------------------------------------------------------------------------------------------
# 3. Convergence on the exact Gaussian ODE
# ---------------------------------------------------------------------------------------------------------------------


def gaussian_pair(param):
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    reference_model = rf.flow_gaussian(SIGMA_DATA) if param == "flow" else (lambda x, s: x * 0.25 / (0.25 + s * s))
    return model, reference_model


ENDS = {"ve": (20.0, 0.05), "flow": (0.98, 0.02)}  # the schedules only set the ends (no final jump to 0)


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_dpm_fast_third_order(param):
    """N = 2 mod 3 evaluations: third-order steps and a last second-order one. Slopes of the float64 reference (the
    library's errors equal them to 1% above float32 rounding), 11 -> 146 evaluations: VE 3.84, 3.45, 3.25, 3.14; flow
    3.79, 3.37, 3.27, 3.16 (3 from above). With N = 0 mod 3 the last step is first order (asymptotically second order
    overall)."""
    model, reference_model = gaussian_pair(param)
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    top, bottom = ENDS[param]
    steps, errors, checked = [20, 38, 74, 146], [], 0
    for n in steps:
        sigmas = np.geomspace(top, bottom, n + 1) if param == "ve" else np.linspace(top, bottom, n + 1)
        start = x.astype(np.float64) * top
        exact = model.exact_solution(start, top, bottom)
        errors.append(rel(dpm_fast_reference(reference_model, start, sigmas, param=param)[0], exact))
        if errors[-1] > 1e-4:
            out = to_np(DPMSolverFastSampler(init_noise="edm")(model, Tensor(x), sigmas=sigmas))
            assert rel(out, exact) == pytest.approx(errors[-1], rel=0.01)
            checked += 1
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert -3.6 <= slope <= -2.9, f"slope {slope:.3f}, errors {errors}"
    assert checked == 2


@pytest.mark.parametrize(
    "param, order, bounds", [("ve", 2, (-3.0, -1.9)), ("ve", 3, (-4.6, -2.9)), ("flow", 3, (-4.6, -2.9))]
)
def test_dpm_adaptive_error_against_nfe(param, order, bounds):
    """Tolerances rtol = 0.05 / 4^k (atol in proportion): the error against the NFE spent falls with the solver's
    order. Fitted slopes of the float64 reference over k = 0..5: VE order 2: -2.7, order 3: -4.3; flow order 3: -4.4
    (steeper than 3 before the asymptotic range; the error itself falls about as the tolerance, slope 0.9-1.0 over
    k = 0..7). The library takes the same steps (NFE equal) and lands on the same error to 2% at k = 1 and 3."""
    model, reference_model = gaussian_pair(param)
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    top, bottom = ENDS[param]
    start = x.astype(np.float64) * top
    exact = model.exact_solution(start, top, bottom)
    nfes, errors = [], []
    for k in range(6):
        rtol = 0.05 * 0.25**k
        options = dict(order=order, rtol=rtol, atol=rtol * 0.156)
        ref, nfe, _, _, _ = dpm_adaptive_reference(reference_model, start, [top, bottom], **options, param=param)
        nfes.append(nfe)
        errors.append(rel(ref, exact))
        if k in (1, 3):
            sampler = DPMSolverAdaptiveSampler(**options, init_noise="edm")
            out = to_np(sampler(model, Tensor(x), sigmas=[top, bottom]))
            assert sampler.last_nfe == nfe
            assert rel(out, exact) == pytest.approx(errors[-1], rel=0.02)
    assert nfes == sorted(nfes) and errors[-1] < errors[0] / 50
    slope = np.polyfit(np.log(nfes), np.log(errors), 1)[0]
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, nfe {nfes}, errors {errors}"


# ---------------------------------------------------------------------------------------------------------------------
# 4. graph_loop=True equals the step-by-step call (dpm_fast)
# ---------------------------------------------------------------------------------------------------------------------

GRAPH = [
    ("ve", dict(eta=0.5, s_noise=1.1)),
    ("flow", dict(denoise_to_zero=True)),  # flow_match from sigma = 1: the DDIM step, then the grid, then D
]


@pytest.mark.parametrize("param, params", GRAPH, ids=[g[0] for g in GRAPH])
def test_dpm_fast_graph_loop_equals_step_by_step(param, params):
    got, expected, nfe, _ = compiled_and_eager(DPMSolverFastSampler, param, 7, **params)
    assert nfe == 7
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_dpm_adaptive_runs_a_real_network_eagerly():
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    cond, uc = conditioning(0)
    sampler = DPMSolverAdaptiveSampler(num_steps=4, guider_config=VanillaCFG(2.0))
    out = sampler(denoiser, randn((B, *SHAPE), generator=0), cond, uc)
    assert np.isfinite(out.asnumpy()).all() and sampler.last_nfe % 3 == 0 and sampler.last_nfe >= 3


# ---------------------------------------------------------------------------------------------------------------------
# 5. Names, configs, parameters
# ---------------------------------------------------------------------------------------------------------------------


def test_short_names_and_shipped_configs():
    assert resolve("dpm_fast") is DPMSolverFastSampler and resolve("dpm_adaptive") is DPMSolverAdaptiveSampler
    assert load_sampler("dpm_fast.yaml").num_steps == 20
    adaptive = load_sampler("dpm_adaptive.yaml")
    assert (adaptive.order, adaptive.rtol, adaptive.atol, adaptive.h_init) == (3, 0.05, 0.0078, 0.05)
    assert (adaptive.accept_safety, adaptive.eta, adaptive.icoeff) == (0.81, 0.0, 1.0)
    from edm_sampler import evaluation

    # the eval holds every sampler to NFE budgets through its step count: dpm_adaptive's NFE follows the model instead
    names = evaluation.deterministic_samplers()
    assert "dpm_fast" in names and "dpm_adaptive" not in names
    assert evaluation.nfe_formula("dpm_fast", "edm") == (1, 1)


@pytest.mark.parametrize(
    "cls, kwargs, error, match",
    [
        (DPMSolverAdaptiveSampler, dict(order=1), ValueError, r"order must be 2 \(DPM-Solver-12\) or 3"),
        (DPMSolverAdaptiveSampler, dict(order=3.0), TypeError, r"order must be an integer"),
        (DPMSolverAdaptiveSampler, dict(rtol=0.0), ValueError, r"rtol must be > 0"),
        (DPMSolverAdaptiveSampler, dict(h_init=-0.1), ValueError, r"h_init must be > 0"),
        (DPMSolverAdaptiveSampler, dict(eta=-1.0), ValueError, r"eta must be >= 0"),
        (DPMSolverFastSampler, dict(s_noise=-0.5), ValueError, r"s_noise must be >= 0"),
        (DPMSolverFastSampler, dict(denoise_to_zero=1), TypeError, r"denoise_to_zero must be True or False"),
        (DPMSolverFastSampler, dict(sigma_min=0.1), TypeError, r"DPMSolverFastSampler: .*sigma_min"),
    ],
)
def test_bad_parameters_are_refused_by_name(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)
