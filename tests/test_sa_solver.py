"""SASolverSampler against diffusers' SASolverScheduler (float64 tables, the pipeline loop, injected noise), against an
independent float64 reference of SA-Solver (Xue et al. 2023: Lagrange interpolation in lambda, the exponentially
weighted integrals by Gauss-Legendre quadrature), its measured order on the exact Gaussian ODE (tau = 0), the
compiled loop, and its parameter checks."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import LINEAR, MEANS, SD, SIGMA_DATA, STDS, WEIGHTS, gauss_legendre, lagrange, queue_sampler, rel
from realnets import SHAPE, B, conditioning, small_net

from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    EDMScaling,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    VanillaCFG,
    as_denoiser,
    randn,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser
from edm_sampler.samplers.sa_solver import SASolverSampler, exponential_moments, lagrange_exponential_integrals

# ---------------------------------------------------------------------------------------------------------------------
# The float64 reference: SA-Predictor / SA-Corrector with the integrals by quadrature
# ---------------------------------------------------------------------------------------------------------------------


def _basis_integral(nodes, k, exponent, a, b):
    """``int_a^b exp(exponent u) l_k(u) du`` for the Lagrange basis on ``nodes``, by quadrature."""
    return gauss_legendre(lambda u: np.exp(exponent * u) * lagrange(nodes, k)(u), a, b)


def sa_solver_reference(
    denoise,
    x,
    sigmas,
    *,
    predictor_order=2,
    corrector_order=2,
    predict_x0=True,
    tau=1.0,
    tau_interval=None,
    lower_order_final=True,
    repeated_last_sigma=False,
    noises=(),
    param="ve",
):
    """SA-Solver with a constant tau per step (the paper's Algorithms 1-2; ``tau`` where the step's start lies in
    ``tau_interval``), the official code's order-2 term, and the first-order limits where a step starts at alpha = 0 or
    ends at sigma = 0. With ``repeated_last_sigma`` the schedule gets its last sigma twice, as diffusers' does. The
    interpolated outputs are ``D`` (``predict_x0``) or ``eps``; the weights are the integrals of the Lagrange basis in
    lambda against ``c sigma_t exp(-tau^2 lambda_t) exp(c lambda)`` (data) or ``-c alpha_t exp(-lambda)`` (noise),
    ``c = 1 + tau^2``. Returns (x, nfe, draws)."""
    alpha = (lambda s: 1.0) if param == "ve" else (lambda s: 1.0 - s)

    def lam(s):
        return math.log(alpha(s) / s)

    sig = [float(s) for s in sigmas] + ([float(sigmas[-1])] if repeated_last_sigma else [])
    n = len(sig) - 1
    draws = 0

    def update(x_s, s, t, node_sigmas, outputs, tau_k, z):
        a_s, a_t, c = alpha(s), alpha(t), 1.0 + tau_k**2
        if a_s == 0.0:
            return (0.0 if tau_k > 0 else t / s) * x_s + a_t * outputs[0] + (t if tau_k > 0 else 0.0) * z
        if t == 0.0:
            if predict_x0:
                return outputs[0]
            return (x_s - c * s * outputs[0] + tau_k * s * z) / a_s
        ls, lt = lam(s), lam(t)
        h = lt - ls
        lams = [lam(q) for q in node_sigmas]
        if predict_x0:
            coefs = [_basis_integral(lams, k, c, ls, lt) for k in range(len(lams))]
            if len(lams) == 2:  # the official code's order-2 term
                e = math.exp(c * lt) * (h * h / 2 - (h * c - 1 + math.exp(-c * h)) / c**2) / (lams[0] - lams[1])
                coefs = [coefs[0] + e, coefs[1] - e]
            out = math.exp(-(tau_k**2) * h) * (t / s) * x_s + t * math.sqrt(1 - math.exp(-2 * tau_k**2 * h)) * z
            for k, coef in enumerate(coefs):
                out = out + c * t * math.exp(-(tau_k**2) * lt) * coef * outputs[k]
            return out
        coefs = [_basis_integral(lams, k, -1.0, ls, lt) for k in range(len(lams))]
        out = (a_t / a_s) * x_s + tau_k * t * math.sqrt(math.expm1(2 * h)) * z
        for k, coef in enumerate(coefs):
            out = out - c * a_t * coef * outputs[k]
        return out

    x = np.asarray(x, np.float64)
    outputs, last, usable = [], None, 0  # outputs newest first; last: the step the corrector redoes
    for i in range(n):
        s, t = sig[i], sig[i + 1]
        denoised = denoise(x, s)
        outputs = [denoised if predict_x0 else (x - alpha(s) * denoised) / s] + outputs
        if last is not None:  # SA-Corrector of the previous step, with this output as its newest node
            x_s, s_prev, t_prev, order, tau_prev, z_prev = last
            x = update(x_s, s_prev, t_prev, [sig[i - k] for k in range(order)], outputs, tau_prev, z_prev)
        z = np.asarray(noises[draws], np.float64)
        draws += 1
        p, c = min(predictor_order, usable + 1), min(corrector_order, usable + 2)
        if lower_order_final:
            p, c = min(p, n - i), min(c, n - i + 1)
        tau_k = tau if tau_interval is None or tau_interval[0] <= s <= tau_interval[1] else 0.0
        x_next = x if t == s else update(x, s, t, [sig[i - k] for k in range(p)], outputs, tau_k, z)
        if alpha(s) == 0.0:  # lambda = -inf: no corrector, no history
            usable, last, outputs = 0, None, []
        else:
            usable, last = min(usable + 1, max(predictor_order, corrector_order)), (x, s, t, c, tau_k, z)
        x = x_next
    return x, n, draws


def test_exact_integrals_against_quadrature():
    """The library's closed forms (series near 0, recursion elsewhere) against quadrature, for the data form (z > 0),
    the noise form (z < 0) and tiny steps."""
    nodes = [0.0, 1.0, 1.7, 2.9]
    for z in (1e-6, 0.03, 0.7, 1.0, 2.5, 12.0, -1e-5, -0.4, -3.0):
        for n, g in enumerate(exponential_moments(z, 4)):
            assert g == pytest.approx(_moment(z, n), rel=1e-13)
        for count in (1, 2, 3, 4):
            got = lagrange_exponential_integrals(nodes[:count], z)
            expected = [_basis_integral(nodes[:count], k, -z, 0.0, 1.0) for k in range(count)]
            np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-13)


def _moment(z, n):
    """``int_0^1 exp(-z v) v^n dv`` by quadrature."""
    return gauss_legendre(lambda v: np.exp(-z * v) * v**n, 0.0, 1.0)


def test_first_order_updates_are_dpm_solver_1_and_ddim():
    """At order 1 and tau = 0 the data form is DPM-Solver++(1) and the noise form DDIM."""
    sampler = SASolverSampler(1, 1)
    sigma_s, sigma_t = 3.0, 1.2
    h = math.log(sigma_s / sigma_t)
    data = sampler.update(p_ve(), sigma_s, sigma_t, [sigma_s], 0.0)
    assert data["x"] == pytest.approx(sigma_t / sigma_s, rel=1e-15)
    assert data["weights"][0] == pytest.approx(-math.expm1(-h), rel=1e-14)
    noise = SASolverSampler(1, 1, "noise_prediction").update(p_ve(), sigma_s, sigma_t, [sigma_s], 0.0)
    assert noise["x"] == 1.0 and noise["weights"][0] == pytest.approx(sigma_t - sigma_s, rel=1e-14)
    assert data["std"] == noise["std"] == 0.0


def p_ve():
    from edm_sampler import parametrization

    return parametrization.get("ve")


# ---------------------------------------------------------------------------------------------------------------------
# 1. diffusers' SASolverScheduler, float64, on the same eps / velocity model
# ---------------------------------------------------------------------------------------------------------------------


# The test network: smooth, nonlinear, in the timestep too, and made of correctly rounded operations only: MindSpore's
# CPU float32 tanh is off by up to 1.5e-5 (|x| in [2, 4]) and 1e-4 (|x| in [4, 9]) relative, which a tanh network
# would carry into the comparison (the data form multiplies eps errors by sigma).
def model_torch(x, t):
    return x * (1.0 + 0.1 * x * x) / (1.0 + 0.3 * x * x) * math.cos(float(t) / 300.0) + 0.05 * x


def model_ms(x, t):
    return x * (1.0 + 0.1 * x * x) / (1.0 + 0.3 * x * x) * math.cos(float(t) / 300.0) + 0.05 * x


def float64_scheduler(config, n):
    """diffusers' SASolverScheduler with its tables recomputed in float64 (__init__'s betas, alphas, alphas_cumprod,
    alpha_t, sigma_t, lambda_t, sigmas; and set_timesteps' sigmas, which it casts to float32), after set_timesteps(n).
    Returns it and its float64 sigmas (N + 1 of them)."""
    diffusers = pytest.importorskip("diffusers")
    torch = pytest.importorskip("torch")
    scheduler = diffusers.SASolverScheduler(**config)
    from diffusers_oracle import float64_repeating_sigmas, float64_tables  # import torch: once diffusers is there

    alphas_cumprod = float64_tables(scheduler)
    table = np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)
    scheduler.sigmas = torch.from_numpy(table)
    scheduler.set_timesteps(n)
    sigmas = float64_repeating_sigmas(scheduler, table, n)
    return scheduler, sigmas


def diffusers_loop(scheduler, noise, noises):
    """The pipeline loop in float64 with ``randn_tensor`` popping ``noises``: (result, calls [(x_in, t)], draws)."""
    torch = pytest.importorskip("torch")
    module = importlib.import_module(type(scheduler).__module__)
    pending = [torch.from_numpy(z) for z in noises]
    original = module.randn_tensor
    module.randn_tensor = lambda shape, **kw: pending.pop(0)
    try:
        latents = torch.from_numpy(noise) * scheduler.init_noise_sigma
        calls = []
        for t in scheduler.timesteps:
            x_in = scheduler.scale_model_input(latents, t)
            calls.append((x_in.numpy().copy(), int(t)))
            latents = scheduler.step(model_torch(x_in, t), t, latents).prev_sample
    finally:
        module.randn_tensor = original
    return latents.numpy(), calls, len(noises) - len(pending)


def table_denoiser(levels, flow, prediction):
    """A plain-callable VE (or flow) denoiser over the network: the timestep of a sigma is looked up in ``levels``
    [(sigma, t)]; the output is an eps (``"epsilon"``) or a velocity (``"flow_prediction"``). Records (model input,
    t) per call."""
    sigmas = np.array([s for s, _ in levels])
    calls = []

    def denoise(x, sigma, cond):
        s32 = float(sigma.asnumpy()[0])
        k = int(np.argmin(np.abs(sigmas - s32)))
        s, t = float(levels[k][0]), levels[k][1]
        assert abs(s - s32) <= 1e-6 * s
        x_in = x if flow else x / math.sqrt(1.0 + s * s)
        calls.append((x_in.asnumpy().astype(np.float64), t))
        out = model_ms(x_in, t)
        if prediction == "flow_prediction":
            return x - out * s
        return (x - out * s) / (1.0 - s) if flow else x - out * s

    denoise.calls = calls
    return denoise


def default_tau(t):  # diffusers' default tau_func
    return 1 if 200 <= t <= 800 else 0


PARITY = [
    # id, scheduler config, steps, tau_func (None: diffusers' default) as (tau, timestep interval or None)
    ("sd-p2c2-default-tau", dict(SD), 10, None),
    ("sd-p2c2-n5-boundary", dict(SD), 5, None),  # timesteps 799, 599, 400, 200: t = 200 is inside the interval
    ("linear-p3c4-tau0.7", dict(LINEAR, predictor_order=3, corrector_order=4), 10, (0.7, None)),
    (
        "sd-p4c3-noise-pred",
        dict(SD, predictor_order=4, corrector_order=3, algorithm_type="noise_prediction"),
        9,
        (0.5, (300, 700)),
    ),  # fmt: skip
    ("sd-p3c3-ode-no-lof", dict(SD, predictor_order=3, corrector_order=3, lower_order_final=False), 8, (0.0, None)),
    ("sd-p1c1", dict(SD, predictor_order=1, corrector_order=1), 6, None),
    ("linear-trailing-p2c1", dict(LINEAR, corrector_order=1, timestep_spacing="trailing"), 7, None),
    ("sd-karras-p2c3", dict(SD, corrector_order=3, use_karras_sigmas=True), 8, None),
    ("linear-karras-p3c2", dict(LINEAR, predictor_order=3, use_karras_sigmas=True), 8, (0.6, (100, 700))),
    (
        "flow-shift3-p3c3",
        dict(
            use_flow_sigmas=True,
            flow_shift=3.0,
            prediction_type="flow_prediction",
            predictor_order=3,
            corrector_order=3,
        ),
        8,
        None,
    ),  # fmt: skip
    (
        "flow-eps-noise-pred",
        dict(use_flow_sigmas=True, flow_shift=2.0, algorithm_type="noise_prediction", corrector_order=3),
        7,
        (0.8, (100, 900)),
    ),  # fmt: skip
]


def tau_options(tau_func, levels):
    """The sampler's ``tau`` / ``tau_interval`` for diffusers' ``tau_func``: the sigma interval that holds exactly the
    levels whose timestep the function's interval holds (the lead's loader converts diffusers' timesteps likewise)."""
    tau, interval = (1.0, (200, 800)) if tau_func is None else tau_func
    if interval is None:
        return dict(tau=tau)
    inside = [s for s, t in levels if interval[0] <= t <= interval[1]]
    return dict(tau=tau, tau_interval=(min(inside), max(inside)))


@pytest.mark.parametrize("name, config, n, tau_func", PARITY, ids=[p[0] for p in PARITY])
def test_matches_diffusers(name, config, n, tau_func):
    flow = config.get("use_flow_sigmas", False)
    if tau_func is not None:
        tau, interval = tau_func
        config = dict(config, tau_func=(lambda t: tau if interval is None or interval[0] <= t <= interval[1] else 0))
    scheduler, sigmas = float64_scheduler(config, n)
    repeated = bool(sigmas[-1] == sigmas[-2])
    assert repeated == (flow or "use_karras_sigmas" in config)
    rng = np.random.default_rng(7)
    noise = rng.standard_normal((2, 3, 8, 8))
    noises = [rng.standard_normal((2, 3, 8, 8)) for _ in range(n)]
    expected, expected_calls, expected_draws = diffusers_loop(scheduler, noise, noises)

    timesteps = [int(t) for t in scheduler.timesteps]
    schedule = sigmas[:-1] if repeated else sigmas  # without diffusers' repeated last sigma
    levels = list(zip(schedule, timesteps))
    cfg = scheduler.config
    denoise = table_denoiser(levels, flow, cfg.prediction_type)
    sampler = SASolverSampler(
        cfg.predictor_order,
        cfg.corrector_order,
        cfg.algorithm_type,
        lower_order_final=cfg.lower_order_final,
        repeated_last_sigma=repeated,
        init_noise="prescaled" if flow else "sgm",  # diffusers' start is the noise: the VP latent, or the flow state
        **tau_options(tau_func, levels),
    )
    calls = []
    model = as_denoiser(denoise, parametrization="flow" if flow else "ve")
    out = sampler(model, Tensor(noise.astype(np.float32)), sigmas=schedule, noise_sampler=queue_sampler(noises, calls))
    out = to_np(out).astype(np.float64)

    assert expected_draws == len(calls) == n  # one draw per step, the zero-length last step's included
    assert len(expected_calls) == len(denoise.calls) == sampler.last_nfe == n
    for (x_in, t), (x_ref, t_ref) in zip(denoise.calls, expected_calls):
        assert t == t_ref
        assert rel(x_in, x_ref) <= 1e-5
    alpha_last = 1.0 if flow else 1.0 / math.sqrt(1.0 + schedule[-1] ** 2)
    err = rel(alpha_last * out, expected)
    assert err <= 1e-5, err
    if repeated:  # diffusers' last step is the corrector alone: its result is not its last call's input
        assert rel(expected_calls[-1][0], expected) > 1e-4


def test_diffusers_default_tau_is_an_interval_of_timesteps():
    """diffusers' default ``tau_func`` is 1 on the closed timestep interval [200, 800]: the sigma interval from the
    level at t = 200 to the level at t = 800 (inclusive), as the parity tests pass it."""
    scheduler, _ = float64_scheduler(dict(SD), 5)
    assert [scheduler.tau_func(t) for t in (199, 200, 800, 801)] == [0, 1, 1, 0]
    sampler = SASolverSampler(tau=1.0, tau_interval=(2.0, 5.0))
    assert [sampler.tau_at(s) for s in (1.999, 2.0, 5.0, 5.001)] == [0.0, 1.0, 1.0, 0.0]
    assert SASolverSampler(tau=0.3).tau_at(1e6) == 0.3


# ---------------------------------------------------------------------------------------------------------------------
# 2. The float64 reference, both parametrizations, non-default settings
# ---------------------------------------------------------------------------------------------------------------------

VE_SIGMAS = np.geomspace(15.0, 0.03, 11)
FLOW_SIGMAS = np.linspace(0.95, 0.05, 10)
REFERENCE_CASES = [
    ("ve", dict(predictor_order=3, corrector_order=2, tau=0.6), VE_SIGMAS),
    ("ve", dict(predictor_order=2, corrector_order=4, tau=1.0, tau_interval=(0.2, 5.0)), VE_SIGMAS),
    ("ve", dict(predictor_order=4, corrector_order=4, tau=0.0, lower_order_final=False), VE_SIGMAS),
    ("ve", dict(predictor_order=2, corrector_order=3, tau=0.4), np.append(VE_SIGMAS[:8], 0.0)),  # ends at 0
    ("ve", dict(predictor_order=3, corrector_order=3, algorithm_type="noise_prediction", tau=0.7), VE_SIGMAS),
    ("ve", dict(corrector_order=3, tau=0.5, repeated_last_sigma=True), VE_SIGMAS),
    ("flow", dict(predictor_order=3, corrector_order=3, tau=0.8), FLOW_SIGMAS),
    ("flow", dict(predictor_order=2, corrector_order=2, tau=1.0), np.append(np.linspace(1.0, 0.1, 9), 0.0)),
    ("flow", dict(predictor_order=3, corrector_order=2, tau=0.0), np.append(np.linspace(1.0, 0.1, 9), 0.0)),
    ("flow", dict(predictor_order=2, corrector_order=3, tau=0.6, repeated_last_sigma=True), FLOW_SIGMAS),
    ("flow", dict(predictor_order=4, corrector_order=1, algorithm_type="noise_prediction", tau=0.3), FLOW_SIGMAS),
    ("flow", dict(algorithm_type="noise_prediction", tau=0.5), np.append(FLOW_SIGMAS, 0.0)),  # ends at 0
]


@pytest.mark.parametrize("param, params, sigmas", REFERENCE_CASES, ids=[f"{c[0]}-{c[1]}" for c in REFERENCE_CASES])
def test_matches_float64_reference(param, params, sigmas, rng):
    repeated = params.get("repeated_last_sigma", False)
    n = len(sigmas) - 1 + repeated
    x = rng.standard_normal((6, 2)).astype(np.float32)
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(n)]
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    calls, infos = [], []
    sampler = SASolverSampler(**params, init_noise="prescaled")
    out = sampler(model, Tensor(x * sigmas[0]), sigmas=sigmas, noise_sampler=queue_sampler(noises, calls),
                  callback=infos.append)  # fmt: skip
    options = dict(params)
    options["predict_x0"] = options.pop("algorithm_type", "data_prediction") == "data_prediction"
    ref, nfe, draws = sa_solver_reference(
        denoise, x.astype(np.float64) * sigmas[0], sigmas, noises=noises, param=param, **options
    )
    assert rel(to_np(out), ref) <= 1e-5
    assert sampler.last_nfe == nfe == len(infos) == n
    assert len(calls) == draws == n


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_tau_zero_draws_but_ignores_its_noise(param, rng):
    """With tau = 0 every draw meets a zero weight: any noise gives the same (ODE) result."""
    sigmas = VE_SIGMAS if param == "ve" else FLOW_SIGMAS
    x = Tensor(rng.standard_normal((6, 2)).astype(np.float32))
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    sampler = SASolverSampler(3, 3, tau=0.0)
    first = to_np(sampler(model, x, sigmas=sigmas, generator=1))
    second = to_np(sampler(model, x, sigmas=sigmas, generator=2))
    np.testing.assert_array_equal(first, second)


# ---------------------------------------------------------------------------------------------------------------------
# 3. Convergence order on the exact Gaussian ODE (tau = 0)
# ---------------------------------------------------------------------------------------------------------------------

# VE: data N(0, 0.5^2), schedule geomspace(20, 0.05, N + 1), uniform in lambda, no final jump to 0, lower_order_final
# off. Flow: the flow Gaussian from sigma = 0.98 to 0.02, uniform in lambda. The predictor-corrector pair (p, c) has
# order min(p + 1, c) (the corrector's c nodes include the new output). The slope is fitted to the float64 reference's
# errors, which the library's equal to 1% wherever they are above float32 rounding (> 1e-4): order 4 reaches its
# asymptotic range only where the library's float32 result is rounding-bound. Fitted slopes (VE / flow): (1, 2) -2.17
# / -2.17, (2, 3) -3.13 / -3.13, (3, 4) -3.84 / -3.59 (local slopes rising to 3.97 / 3.84 at 96-128 steps). (1, 1)
# is first order only asymptotically (local slopes 0.8-0.94 at 32-128 steps, non-monotonic errors below 16).
ORDERS = [
    ("ve", 1, 2, [8, 16, 32, 64], (-2.3, -1.95)),
    ("ve", 2, 3, [12, 16, 24, 32, 48], (-3.35, -2.95)),
    ("ve", 3, 4, [32, 48, 64, 96, 128], (-4.1, -3.6)),
    ("flow", 1, 2, [8, 16, 32, 64], (-2.3, -1.95)),
    ("flow", 2, 3, [12, 16, 24, 32, 48], (-3.35, -2.95)),
    ("flow", 3, 4, [32, 48, 64, 96, 128], (-4.1, -3.4)),
]


def order_schedule(param, n):
    if param == "ve":
        return np.geomspace(20.0, 0.05, n + 1)
    lam = np.linspace(math.log(0.02 / 0.98), math.log(0.98 / 0.02), n + 1)
    return 1.0 / (1.0 + np.exp(lam))


@pytest.mark.parametrize("param, p, c, steps, bounds", ORDERS, ids=[f"{o[0]}-p{o[1]}c{o[2]}" for o in ORDERS])
def test_convergence_order_on_the_gaussian_ode(param, p, c, steps, bounds):
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    reference_model = rf.flow_gaussian(SIGMA_DATA) if param == "flow" else (lambda x, s: x * 0.25 / (0.25 + s * s))
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    errors, ref_errors = {}, {}
    for n in sorted(set(steps) | {8, 12}):
        sigmas = order_schedule(param, n)
        start = x.astype(np.float64) * sigmas[0]
        exact = model.exact_solution(start, sigmas[0], sigmas[-1])
        options = dict(predictor_order=p, corrector_order=c, tau=0.0, lower_order_final=False, param=param)
        ref, _, _ = sa_solver_reference(reference_model, start, sigmas, noises=np.zeros((n, 4, 9)), **options)
        ref_errors[n] = rel(ref, exact)
        if ref_errors[n] > 1e-4:  # above float32 rounding: the library's error is the same truncation error
            sampler = SASolverSampler(p, c, tau=0.0, lower_order_final=False, init_noise="edm")
            errors[n] = rel(to_np(sampler(model, Tensor(x), sigmas=sigmas)), exact)
            assert errors[n] == pytest.approx(ref_errors[n], rel=0.01)
    slope = np.polyfit(np.log(steps), np.log([ref_errors[n] for n in steps]), 1)[0]
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {ref_errors}"
    assert len(errors) >= 2


# ---------------------------------------------------------------------------------------------------------------------
# 4. graph_loop=True equals the step-by-step call
# ---------------------------------------------------------------------------------------------------------------------

GRAPH = [
    ("ve", dict(predictor_order=3, corrector_order=2, tau=0.8, tau_interval=(0.5, 20.0)), None),
    # diffusers' flow schedule shape: no final 0, the last sigma repeated (6 evaluations for 5 intervals)
    (
        "flow",
        dict(corrector_order=3, algorithm_type="noise_prediction", tau=0.5, repeated_last_sigma=True),
        FlowMatchDiscretization(shift=3.0)(6)[:-1],
    ),
]


@pytest.mark.parametrize("param, params, sigmas", GRAPH, ids=[g[0] for g in GRAPH])
def test_graph_loop_equals_step_by_step(param, params, sigmas):
    scaling = EDMScaling() if param == "ve" else FlowVelocityScaling()
    denoiser = Denoiser(scaling).bind(small_net())
    kwargs = dict(params, guider_config=VanillaCFG(2.0))
    call = dict(num_steps=6) if sigmas is None else dict(sigmas=sigmas)
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    expected = SASolverSampler(**kwargs)(denoiser, noise, cond, uc, generator=5, **call).asnumpy()
    loop = SASolverSampler(graph_loop=True, **kwargs)
    got = loop(denoiser, noise, cond, uc, generator=5, **call).asnumpy()
    assert loop.last_nfe == 6
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# 5. Parameters and contract
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(predictor_order=5), ValueError, r"predictor_order must be 1, 2, 3 or 4"),
        (dict(corrector_order=0), ValueError, r"corrector_order must be >= 1"),
        (dict(corrector_order=2.0), TypeError, r"corrector_order must be an integer"),
        (dict(algorithm_type="dpmsolver++"), ValueError, r"algorithm_type must be one of"),
        (dict(tau=-1.0), ValueError, r"tau must be >= 0"),
        (dict(tau_interval=(5.0, 1.0)), ValueError, r"tau_interval must be \(sigma_low, sigma_high\) with"),
        (dict(tau_interval=3.0), TypeError, r"tau_interval must be None or a pair"),
        (dict(tau_interval=(-1.0, 2.0)), ValueError, r"tau_interval\[0\] must be >= 0"),
        (dict(lower_order_final=1), TypeError, r"lower_order_final must be True or False"),
        (dict(repeated_last_sigma="no"), TypeError, r"repeated_last_sigma must be True or False"),
        (dict(tau_func=None), TypeError, r"SASolverSampler: .*tau_func"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        SASolverSampler(**kwargs)


def test_repeated_last_sigma_needs_a_positive_end(rng):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    with pytest.raises(ValueError, match=r"repeated_last_sigma=True .* 0 here"):
        SASolverSampler(repeated_last_sigma=True)(model, Tensor(np.ones((2, 2), np.float32)), sigmas=[5.0, 1.0, 0.0])


def test_flow_step_from_pure_noise_is_not_corrected(rng):
    """A flow step from sigma = 1 has no corrector (lambda = -inf there): with repeated_last_sigma on a one-step
    schedule from 1 there is nothing to correct, so the result is the plain step's (one draw, one evaluation)."""
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization="flow")
    x = Tensor(rng.standard_normal((4, 2)).astype(np.float32))
    noises = [rng.standard_normal((4, 2)).astype(np.float32) for _ in range(2)]
    repeated = SASolverSampler(tau=0.5, repeated_last_sigma=True)
    got = to_np(repeated(model, x, sigmas=[1.0, 0.4], noise_sampler=queue_sampler(noises)))
    expected = to_np(SASolverSampler(tau=0.5)(model, x, sigmas=[1.0, 0.4], noise_sampler=queue_sampler(noises)))
    np.testing.assert_array_equal(got, expected)
    assert repeated.last_nfe == 1


def test_repr_and_history():
    sampler = SASolverSampler(3, 4, tau=0.5, tau_interval=[0.1, 10])
    assert sampler.tau_interval == (0.1, 10.0)
    assert "predictor_order=3" in repr(sampler) and "tau_interval=(0.1, 10.0)" in repr(sampler)
    assert sampler.history == 2 + 3  # the corrected state, its noise, the three older outputs
    assert SASolverSampler(1, 1).history == 2


# ---------------------------------------------------------------------------------------------------------------------
# 6. ComfyUI's SA-Solver (sa_solver_pece; convention="comfyui"): its loop, PECE, its order-2 weights, its defaults
# ---------------------------------------------------------------------------------------------------------------------


def sa_solver_comfyui_reference(
    denoise,
    x,
    sigmas,
    *,
    predictor_order=3,
    corrector_order=4,
    tau=1.0,
    tau_interval=None,
    s_noise=1.0,
    pece=True,
    second_order="lagrange",
    noises=(),
    param="ve",
):
    """SA-Solver in data prediction as ComfyUI's sample_sa_solver loops (the paper's Algorithms 1-2 in the order
    "evaluate at the prediction, correct the previous step, [evaluate again (PECE)], predict"): a step's tau from its
    end sigma; noise drawn only when the step adds it; orders lowered at the end of a schedule ending at 0 (predictor
    at most N - 1 - i, corrector at most N - i); weights by quadrature of ``alpha_t c exp(c (lambda - lambda_t)) l_k``
    (``"lagrange"``) or the paper's simplified order-2 ones (``"simple"``). A flow step from sigma = 1 is the
    first-order limit (alpha_t D + sigma_t x, or + sigma_t z with tau), uncorrected, and leaves no history (the
    library's rule; ComfyUI moves that first sigma instead). Returns (x, nfe, draws)."""
    p = rf.Param(param)
    sig = [float(s) for s in sigmas]
    n, lower = len(sig) - 1, sig[-1] == 0.0
    noises, nfe, draws = iter(noises), 0, 0

    def model(u, s):
        nonlocal nfe
        nfe += 1
        return denoise(u, s)

    def update(x_s, s, t, nodes, outputs, tau_k, z, corrector):
        a_t, c = p.alpha(t), 1 + tau_k**2
        if p.alpha(s) == 0.0:
            return (0.0 if tau_k > 0 else t / s) * x_s + a_t * outputs[-1] + (t * s_noise if tau_k > 0 else 0.0) * z
        ls, lt = p.lam(s), p.lam(t)
        h = lt - ls
        lams = [p.lam(q) for q in nodes]  # oldest first, as outputs
        if second_order == "simple" and len(lams) == 2:
            first = a_t * (1 - math.exp(-c * h))
            if corrector:
                coefs = [first - a_t * c * h / 2, a_t * c * h / 2]
            else:
                older = a_t * c * h * h / 2 / (lams[0] - ls)
                coefs = [older, first - older]
        else:
            coefs = [a_t * c * _basis_integral(lams, k, c, ls, lt) * math.exp(-c * lt) for k in range(len(lams))]
        out = (t / s) * math.exp(-(tau_k**2) * h) * x_s + sum(b * m for b, m in zip(coefs, outputs))
        return out + t * math.sqrt(-math.expm1(-2 * tau_k**2 * h)) * s_noise * z

    x_pred = x_cur = np.asarray(x, np.float64)
    outputs, history_from, tau_prev, z = [], 0, 0.0, 0.0
    for i in range(n):
        s, t = sig[i], sig[i + 1]
        denoised = model(x_pred, s)
        outputs.append(denoised)
        usable = outputs[max(history_from, len(outputs) - max(predictor_order, corrector_order)) :]
        p_used = min(predictor_order, len(usable))
        c_used = 0 if i == history_from or (t == 0 and not pece) else min(corrector_order, len(usable))
        if lower:
            p_used, c_used = min(p_used, n - 1 - i), min(c_used, n - i)
        if c_used == 0:
            x_cur = x_pred
        else:
            nodes = sig[i - c_used + 1 : i + 1]
            x_cur = update(x_cur, sig[i - 1], s, nodes, usable[-c_used:], tau_prev, z, True)
            if pece:
                outputs[-1] = usable[-1] = model(x_cur, s)
        if t == 0:
            x_pred = outputs[-1]
            continue
        tau_prev = tau if tau_interval is None or tau_interval[0] <= t <= tau_interval[1] else 0.0
        z = 0.0
        if tau_prev > 0 and s_noise > 0:
            z, draws = np.asarray(next(noises), np.float64), draws + 1
        p_used = max(p_used, 1)
        x_pred = update(x_cur, s, t, sig[i - p_used + 1 : i + 1], usable[-p_used:], tau_prev, z, False)
        if p.alpha(s) == 0.0:
            history_from = i + 1  # nothing before lambda = -inf is history
    return x_pred, nfe, draws


COMFY_CASES = [
    ("ve", dict(), np.append(VE_SIGMAS[:9], 0.0)),  # ComfyUI's defaults on a schedule ending at 0
    ("ve", dict(pece=False, tau=0.7, s_noise=1.3, tau_interval=(0.1, 3.0)), VE_SIGMAS),
    ("ve", dict(predictor_order=2, corrector_order=2, second_order="simple", tau=0.5), np.append(VE_SIGMAS, 0.0)),
    ("ve", dict(predictor_order=2, corrector_order=3, tau=0.0), VE_SIGMAS),
    ("flow", dict(tau_interval="comfyui", s_noise=0.8), np.append(np.linspace(1.0, 0.1, 9), 0.0)),  # from 1
    ("flow", dict(predictor_order=2, corrector_order=2, second_order="simple", pece=False), FLOW_SIGMAS),
    ("flow", dict(predictor_order=4, corrector_order=3, tau=0.6), np.append(FLOW_SIGMAS, 0.0)),
]


@pytest.mark.parametrize("param, params, sigmas", COMFY_CASES, ids=[f"{c[0]}-{c[1]}" for c in COMFY_CASES])
def test_comfyui_convention_matches_float64_reference(param, params, sigmas):
    from edm_sampler import SASolverPECESampler
    from edm_sampler.samplers.sa_solver import comfyui_tau_interval

    # not the shared seed 1234: its third sample ends between two modes of the flow mixture, where the ODE magnifies a
    # 1e-7 change of the input 45-fold (float32 then agrees to 4e-5 only; 2e-7 for the other samples and seeds)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 2)).astype(np.float32) * sigmas[0]
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(len(sigmas))]
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    calls, infos = [], []
    sampler = SASolverPECESampler(**params, init_noise="prescaled")
    out = sampler(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises, calls), callback=infos.append)
    options = dict(params)
    interval = options.get("tau_interval", "comfyui")
    options["tau_interval"] = comfyui_tau_interval(param) if interval == "comfyui" else interval
    ref, nfe, draws = sa_solver_comfyui_reference(denoise, x, sigmas, noises=noises, param=param, **options)
    n = len(sigmas) - 1
    corrected = n - 1 - int(param == "flow" and sigmas[0] == 1.0)
    assert sampler.last_nfe == nfe == n + (corrected if sampler.pece else 0)
    assert len(infos) == n  # one report per step (the predicted state's evaluation)
    assert len(calls) == draws and (draws > 0) == (sampler.tau > 0)
    assert rel(to_np(out), ref) <= 5e-6, rel(to_np(out), ref)


def test_comfyui_defaults_and_numbers():
    """ComfyUI's defaults (SamplerSASolver / sa_solver_pece), its tau interval for SD 1.x / SDXL's table worked out
    from its formula (log sigma interpolated at timesteps 199.8 and 799.2 of the scaled-linear betas), and the paper's
    simplified order-2 weights by hand: VE, sigma 4 -> 2 -> 1, tau 0 (c = 1, h = log 2, first-order weight 1/2): the
    predictor puts -log(2)/2 on the older output, the corrector log(2)/2 on the newer."""
    from edm_sampler import SASolverPECESampler, load_sampler
    from edm_sampler.samplers.sa_solver import comfyui_tau_interval

    sampler = SASolverPECESampler()
    assert (sampler.predictor_order, sampler.corrector_order, sampler.tau, sampler.s_noise) == (3, 4, 1.0, 1.0)
    assert (sampler.pece, sampler.second_order, sampler.convention, sampler.tau_interval) == (
        True,
        "lagrange",
        "comfyui",
        "comfyui",
    )
    low, high = comfyui_tau_interval("ve")
    assert low == pytest.approx(0.5711889, rel=1e-6) and high == pytest.approx(5.0924076, rel=1e-6)
    assert comfyui_tau_interval("flow") == pytest.approx((0.2, 0.8), rel=1e-15)
    assert sampler.tau_at(5.09, "ve") == sampler.tau_at(0.2, "flow") == 1.0 and sampler.tau_at(5.1, "ve") == 0.0
    simple = SASolverSampler(2, 2, second_order="simple", tau=0.0)
    half_log2 = 0.5 * math.log(2.0)
    predictor = simple.update(p_ve(), 2.0, 1.0, [2.0, 4.0], 0.0)
    np.testing.assert_allclose(predictor["weights"][:2], [0.5 + half_log2, -half_log2], rtol=1e-14)
    corrector = simple.update(p_ve(), 2.0, 1.0, [1.0, 2.0], 0.0, corrector=True)
    np.testing.assert_allclose(corrector["weights"][:2], [half_log2, 0.5 - half_log2], rtol=1e-14)
    shipped = load_sampler("sa_solver_pece.yaml")
    assert type(shipped) is SASolverPECESampler and shipped.num_steps == 20


# ComfyUI's PECE (3, 4) with tau = 0 on the schedules of section 3: the corrector's order, 4. Local slopes of the
# float64 reference, 8 -> 128 steps (the library's errors equal them to 1% above float32 rounding): VE 3.06, 4.13, 4.00,
# 4.00, 4.01, 4.02; flow 4.85, 2.94, 3.43, 3.64, 3.77, 3.86 (rising to 4, as PEC's: VE 3.93, flow 3.84 at 96-128).
PECE_ORDERS = [("ve", (-4.2, -3.9)), ("flow", (-4.2, -3.5))]


@pytest.mark.parametrize("param, bounds", PECE_ORDERS, ids=[o[0] for o in PECE_ORDERS])
def test_pece_convergence_order(param, bounds):
    from edm_sampler import SASolverPECESampler

    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    reference_model = rf.flow_gaussian(SIGMA_DATA) if param == "flow" else (lambda x, s: x * 0.25 / (0.25 + s * s))
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    steps, errors, checked = [32, 48, 64, 96, 128], {}, 0
    for n in sorted(set(steps) | {8, 16}):
        sigmas = order_schedule(param, n)
        start = x.astype(np.float64) * sigmas[0]
        exact = model.exact_solution(start, sigmas[0], sigmas[-1])
        ref, _, _ = sa_solver_comfyui_reference(reference_model, start, sigmas, tau=0.0, param=param)
        errors[n] = rel(ref, exact)
        if errors[n] > 1e-4:
            out = to_np(SASolverPECESampler(tau=0.0, init_noise="edm")(model, Tensor(x), sigmas=sigmas))
            assert rel(out, exact) == pytest.approx(errors[n], rel=0.01)
            checked += 1
    slope = np.polyfit(np.log(steps), np.log([errors[n] for n in steps]), 1)[0]
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"
    assert checked == 2


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_pece_graph_loop_equals_step_by_step(param):
    from edm_sampler import SASolverPECESampler

    scaling = EDMScaling() if param == "ve" else FlowVelocityScaling()
    denoiser = Denoiser(scaling).bind(small_net())
    kwargs = dict(num_steps=6, guider_config=VanillaCFG(2.0), s_noise=0.9)
    if param == "flow":
        kwargs["discretization_config"] = FlowMatchDiscretization(shift=3.0)
    else:  # the interval holds some of the steps' ends but not all: draws on some steps only
        kwargs["discretization_config"] = {"target": "edm", "params": {"sigma_min": 0.0292, "sigma_max": 14.6146}}
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    expected = SASolverPECESampler(**kwargs)(denoiser, noise, cond, uc, generator=5).asnumpy()
    loop = SASolverPECESampler(graph_loop=True, **kwargs)
    got = loop(denoiser, noise, cond, uc, generator=5).asnumpy()
    assert loop.last_nfe == (11 if param == "ve" else 10)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(second_order="simple", algorithm_type="noise_prediction"), ValueError, r"second_order='simple' has"),
        (dict(second_order="unipc"), ValueError, r"second_order must be one of 'official', 'lagrange', 'simple'"),
        (dict(convention="comfy"), ValueError, r"convention must be one of 'diffusers', 'comfyui'"),
        (dict(pece=1), TypeError, r"pece must be True or False"),
        (dict(s_noise=-1.0), ValueError, r"s_noise must be >= 0"),
        (dict(pece=True, repeated_last_sigma=True), ValueError, r"repeated_last_sigma=True is diffusers'"),
        (dict(convention="comfyui", repeated_last_sigma=True), ValueError, r"repeated_last_sigma=True is diffusers'"),
        (dict(tau_interval="percent"), TypeError, r"tau_interval must be None or a pair .* or 'comfyui'"),
    ],
)
def test_comfyui_options_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        SASolverSampler(**kwargs)
