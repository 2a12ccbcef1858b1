"""DEISSampler against diffusers' DEISMultistepScheduler (float64 tables, the pipeline loop), against an independent
float64 reference of the DEIS equations (Zhang & Chen 2022, log-rho polynomial integrated by Gauss-Legendre
quadrature), its measured order on the exact Gaussian ODE, the compiled loop, and its parameter checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import LINEAR, MEANS, SD, SIGMA_DATA, STDS, WEIGHTS, gauss_legendre, lagrange, rel
from realnets import SHAPE, B, conditioning, small_net

from mindspore import Tensor, ops

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
from edm_sampler.samplers.deis import DEISSampler, logrho_weights

# ---------------------------------------------------------------------------------------------------------------------
# The float64 reference: DEIS (Zhang & Chen 2022), the exponential integrator in rho = sigma / alpha
# ---------------------------------------------------------------------------------------------------------------------


def deis_coefficient(nodes, j, rho, rho_next):
    """``integral_rho^rho_next L_j(log r) dr = integral L_j(u) e^u du`` over ``u`` in ``[log rho, log rho_next]`` by
    quadrature; to rho_next = 0 the interval is ``(-inf, log rho]``, cut at ``log rho - 60`` into unit panels."""
    f = lagrange(nodes, j)

    def integrand(u):
        return f(u) * np.exp(u)

    top = math.log(rho)
    if rho_next > 0:
        return gauss_legendre(integrand, top, math.log(rho_next), 24)
    return -sum(gauss_legendre(integrand, top - k - 1.0, top - k, 24) for k in range(60))


def deis_reference(denoise, x, sigmas, *, order=2, lower_order_final=True, repeated_last_sigma=False, param="ve"):
    """DEIS "rhoAB" with the polynomial in log rho (diffusers' "logrho"): ``x_next = alpha_next (x / alpha + sum_j
    C_j eps_j)``, eps the noise prediction ``(x - alpha D) / sigma``, orders lowered for warm-up and (diffusers'
    rule) for the last two steps of fewer than 15. A flow step from sigma = 1 is DDIM with no history after it.
    Returns (x, nfe, the orders used)."""
    alpha = (lambda s: 1.0) if param == "ve" else (lambda s: 1.0 - s)
    n = len(sigmas) - 1
    counted = n + int(repeated_last_sigma)
    eps_history, u_history, orders = [], [], []
    x = np.asarray(x, np.float64)
    for i in range(n):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        a, a_next = alpha(s), alpha(s_next)
        denoised = denoise(x, s)
        eps = (x - a * denoised) / s
        if a == 0.0:
            x = a_next * denoised + s_next * eps
            eps_history, u_history = [], []
            orders.append(1)
            continue
        k = min(order, len(eps_history) + 1)
        if lower_order_final and counted < 15:
            k = min(k, counted - i)
        eps_history = [eps] + eps_history
        u_history = [math.log(s / a)] + u_history
        nodes = u_history[:k]
        total = x / a
        for j in range(k):
            total = total + deis_coefficient(nodes, j, s / a, s_next / a_next) * eps_history[j]
        x = a_next * total
        orders.append(k)
    return x, n, orders


def test_reference_coefficients_are_the_closed_form_ones():
    """The quadrature reference against diffusers' ind_fn formulas (orders 2 and 3) and the library's weights."""

    def ind2(t, b, c):
        return t * (-np.log(c) + np.log(t) - 1) / (np.log(b) - np.log(c))

    t, s0, s1, s2 = 1.5, 2.0, 3.0, 4.5
    nodes = [math.log(s0), math.log(s1)]
    expected = [ind2(t, s0, s1) - ind2(s0, s0, s1), ind2(t, s1, s0) - ind2(s0, s1, s0)]
    got = [deis_coefficient(nodes, j, s0, t) for j in range(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    nodes3 = [math.log(v) for v in (s0, s1, s2)]
    for rho_next in (t, 0.05, 0.0):
        ref = [deis_coefficient(nodes3, j, s0, rho_next) for j in range(3)]
        np.testing.assert_allclose(logrho_weights([s0, s1, s2], rho_next), ref, rtol=1e-12, atol=1e-14)
    assert logrho_weights([s0], t) == pytest.approx([t - s0], rel=1e-15)  # order 1: DDIM


# ---------------------------------------------------------------------------------------------------------------------
# 1. diffusers' DEISMultistepScheduler, float64, on the same eps / velocity model
# ---------------------------------------------------------------------------------------------------------------------


# The eps (velocity) model on both sides: a tanh-like squashing written with sqrt, because MindSpore's CPU tanh is an
# approximation (absolute error up to 1e-4 at |x| > 2, against 6e-8 for sqrt) that would dominate the comparison.
def eps_model_torch(x, t):
    torch = pytest.importorskip("torch")
    y = 0.7 * x
    return y / torch.sqrt(1.0 + y * y) * math.cos(float(t) / 300.0) + 0.05 * x


def eps_model_ms(x, t):
    y = 0.7 * x
    return y / ops.sqrt(1.0 + y * y) * math.cos(float(t) / 300.0) + 0.05 * x


def float64_scheduler(config, n):
    """diffusers' scheduler with its tables recomputed in float64 (__init__'s betas and everything derived from them,
    and set_timesteps' sigmas, which it casts to float32), after set_timesteps(n)."""
    diffusers = pytest.importorskip("diffusers")
    pytest.importorskip("torch")
    scheduler = diffusers.DEISMultistepScheduler(**config)
    from diffusers_oracle import float64_repeating_sigmas, float64_tables  # import torch: once diffusers is there

    alphas_cumprod = float64_tables(scheduler)
    scheduler.set_timesteps(n)
    table = np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)
    sigmas = float64_repeating_sigmas(scheduler, table, n)
    return scheduler, sigmas


def diffusers_loop(scheduler, noise, model):
    """The pipeline loop in float64, recording (x_in, t) at every model call."""
    torch = pytest.importorskip("torch")
    latents = torch.from_numpy(noise.astype(np.float64)) * scheduler.init_noise_sigma
    calls = []
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(latents, t)
        calls.append((x_in.numpy().copy(), int(t)))
        latents = scheduler.step(model(x_in, t), t, latents).prev_sample
    return latents.numpy(), calls


def table_denoiser(levels, flow):
    """A plain-callable VE (or flow) denoiser on top of the eps (velocity) model: the timestep of a sigma is looked up
    in ``levels`` (float64 sigma -> diffusers' timestep); records (model input, t) per call."""
    sigmas = np.array([s for s, _ in levels])
    calls = []

    def denoise(x, sigma, cond):
        s32 = float(sigma.asnumpy()[0])
        k = int(np.argmin(np.abs(sigmas - s32)))
        s, t = levels[k]
        assert abs(s - s32) <= 1e-6 * s
        x_in = x if flow else x / math.sqrt(1.0 + s * s)
        calls.append((x_in.asnumpy().astype(np.float64), t))
        return x - eps_model_ms(x_in, t) * s

    denoise.calls = calls
    return denoise


PARITY = [
    # id, scheduler config, steps, sampler options
    ("sd-order2-lof", dict(SD, solver_order=2), 10),
    ("sd-order3-lof", dict(SD, solver_order=3), 8),
    ("linear-leading-order3-n15", dict(LINEAR, solver_order=3, timestep_spacing="leading", steps_offset=1), 15),
    ("linear-trailing-order1", dict(LINEAR, solver_order=1, timestep_spacing="trailing"), 6),
    ("sd-order3-no-lof", dict(SD, solver_order=3, lower_order_final=False), 9),
    ("karras-order3", dict(LINEAR, solver_order=3, use_karras_sigmas=True), 9),
    ("flow-shift3-order2", dict(solver_order=2, use_flow_sigmas=True, flow_shift=3.0), 6),
    ("flow-order3-n15", dict(solver_order=3, use_flow_sigmas=True), 15),
    ("flow-order3-n14", dict(solver_order=3, use_flow_sigmas=True, flow_shift=2.0), 14),
]


@pytest.mark.parametrize("name, config, n", PARITY, ids=[p[0] for p in PARITY])
def test_matches_diffusers(name, config, n):
    flow = config.get("use_flow_sigmas", False)
    if flow:
        config = dict(config, prediction_type="flow_prediction")
    scheduler, sigmas = float64_scheduler(config, n)
    repeated = bool(sigmas[-1] == sigmas[-2])
    assert repeated == (flow or "use_karras_sigmas" in config)
    noise = np.random.default_rng(7).standard_normal((2, 3, 8, 8))
    expected, expected_calls = diffusers_loop(scheduler, noise, eps_model_torch)

    timesteps = [int(t) for t in scheduler.timesteps]
    schedule = sigmas[:-1] if repeated else sigmas  # without diffusers' repeated last sigma
    denoise = table_denoiser(list(zip(schedule, timesteps)), flow)
    cfg = scheduler.config
    # diffusers' start is the noise itself: the VP latent at sigma_0 (VE: scaled by sqrt(1 + sigma_0^2), "sgm"), or
    # the flow state at sigma_0 < 1 ("prescaled")
    init_noise = "prescaled" if flow else "sgm"
    sampler = DEISSampler(
        cfg.solver_order, lower_order_final=cfg.lower_order_final, repeated_last_sigma=repeated, init_noise=init_noise
    )
    model = as_denoiser(denoise, parametrization="flow" if flow else "ve")
    out = to_np(sampler(model, Tensor(noise.astype(np.float32)), sigmas=schedule)).astype(np.float64)

    # the same model calls (diffusers' last one is the no-op step from s_last to itself when the sigma repeats)
    assert len(expected_calls) == n and len(denoise.calls) == sampler.last_nfe == n - repeated
    for (x_in, t), (x_ref, t_ref) in zip(denoise.calls, expected_calls):
        assert t == t_ref
        assert rel(x_in, x_ref) <= 1e-5
    last = schedule[-1]
    alpha_last = 1.0 if flow else 1.0 / math.sqrt(1.0 + last * last)
    err = rel(alpha_last * out, expected)
    assert err <= 1e-5, err
    if repeated:  # diffusers' last step left the state as it was: the input of its last call is its result
        np.testing.assert_allclose(expected_calls[-1][0], expected, rtol=0, atol=0)


def test_diffusers_flow_schedules_end_above_zero():
    """diffusers' quirk, which repeated_last_sigma exists for: with use_flow_sigmas the schedule is (..., s, s) with
    s = shift (1/N) / (1 + (shift - 1) / N) (0.999/N before the shift): the sample is returned at that noise level."""
    scheduler, sigmas = float64_scheduler(dict(use_flow_sigmas=True, flow_shift=3.0), 6)
    s = 0.999 / 6
    assert sigmas[-1] == sigmas[-2] == pytest.approx(3.0 * s / (1.0 + 2.0 * s), rel=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# 2. The float64 reference, both parametrizations, non-default settings
# ---------------------------------------------------------------------------------------------------------------------

REFERENCE_CASES = [
    ("ve", dict(solver_order=1), ve_ref.karras_sigmas(8, sigma_max=20.0)),
    ("ve", dict(solver_order=2), ve_ref.karras_sigmas(8, sigma_max=20.0)),  # lower_order_final, last step to 0
    ("ve", dict(solver_order=3, lower_order_final=False), ve_ref.karras_sigmas(10, sigma_max=20.0)),
    ("ve", dict(solver_order=3, repeated_last_sigma=True), np.geomspace(15.0, 0.03, 12)),
    ("flow", dict(solver_order=3), np.append(np.linspace(1.0, 0.05, 10), 0.0)),  # from sigma = 1
    ("flow", dict(solver_order=3, lower_order_final=False), np.linspace(0.95, 0.02, 12)),
    ("flow", dict(solver_order=2, repeated_last_sigma=True), np.linspace(0.9, 0.1, 9)),
]


@pytest.mark.parametrize("param, params, sigmas", REFERENCE_CASES, ids=[f"{c[0]}-{c[1]}" for c in REFERENCE_CASES])
def test_matches_float64_reference(param, params, sigmas, rng):
    x = rng.standard_normal((6, 2)).astype(np.float32)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    infos = []
    sampler = DEISSampler(**params, init_noise="prescaled")
    out = to_np(sampler(model, Tensor(x * sigmas[0]), sigmas=sigmas, callback=infos.append))
    ref, nfe, _ = deis_reference(
        denoise,
        x.astype(np.float64) * sigmas[0],
        sigmas,
        order=params["solver_order"],
        lower_order_final=params.get("lower_order_final", True),
        repeated_last_sigma=params.get("repeated_last_sigma", False),
        param=param,
    )
    assert rel(out, ref) <= 1e-5
    assert sampler.last_nfe == nfe == len(infos) == len(sigmas) - 1


def test_orders_follow_diffusers_rules():
    """Warm-up 1, 2, 3, ...; with lower_order_final below 15 steps the last is 1 and the one before 2; counted with
    the repeated last sigma, the real last step is 2 and the threshold is 14 real steps."""

    def orders(n, **kw):
        return deis_reference(lambda x, s: x * 0.0, np.zeros(1), np.geomspace(10.0, 0.1, n + 1), order=3, **kw)[2]

    assert orders(6) == [1, 2, 3, 3, 2, 1]
    assert orders(15) == [1, 2] + [3] * 13
    assert orders(6, repeated_last_sigma=True) == [1, 2, 3, 3, 3, 2]
    assert orders(13, repeated_last_sigma=True)[-1] == 2 and orders(14, repeated_last_sigma=True)[-1] == 3
    assert orders(6, lower_order_final=False) == [1, 2, 3, 3, 3, 3]


def test_flow_single_step_from_pure_noise_is_the_data_mean(rng):
    x = rng.standard_normal((4, 2)).astype(np.float32)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization="flow")
    out = to_np(DEISSampler(solver_order=3)(model, Tensor(x), sigmas=[1.0, 0.0]))
    mean = np.asarray(WEIGHTS) @ np.asarray(MEANS)
    np.testing.assert_allclose(out, np.broadcast_to(mean, out.shape), atol=2e-6)


# ---------------------------------------------------------------------------------------------------------------------
# 3. Convergence order on the exact Gaussian ODE
# ---------------------------------------------------------------------------------------------------------------------

# VE: data N(0, 0.5^2), D = x s^2 / (s^2 + sigma^2), exact x(sigma) = x(sigma_0) sqrt(s^2 + sigma^2) / sqrt(s^2 +
# sigma_0^2); schedule geomspace(20, 0.05, N + 1) (uniform in log rho, the variable DEIS interpolates in), no final
# jump to 0, lower_order_final off so that every step after the warm-up has its full order. Flow: the flow Gaussian
# from sigma = 0.98 to 0.02, uniform in lambda. Fitted slopes (float64 reference; the library's errors equal its errors
# to 1%): order 1: -0.95 (VE), -0.95 (flow); order 2: -1.91, -1.88 (local slopes -1.83 -> -1.98 up to 64 steps);
# order 3 over 8-24 steps: -3.59, -3.45 -- above 3 before the asymptotic range: the local slopes rise to 3.7-3.9 and
# then fall back (VE: -3.3 at 48-64 steps) towards 2, the order the first-order warm-up step's O(h^2) error sets in
# the end, as for every multistep method started without exact history.
ORDERS = [
    ("ve", 1, [8, 16, 32, 64], (-1.1, -0.9)),
    ("ve", 2, [8, 16, 32, 64], (-2.1, -1.8)),
    ("ve", 3, [8, 12, 16, 24], (-3.9, -3.0)),
    ("flow", 1, [8, 16, 32, 64], (-1.1, -0.9)),
    ("flow", 2, [8, 16, 32, 64], (-2.1, -1.8)),
    ("flow", 3, [8, 12, 16, 24], (-3.9, -3.0)),
]


def order_schedule(param, n):
    if param == "ve":
        return np.geomspace(20.0, 0.05, n + 1)
    lam = np.linspace(math.log(0.02 / 0.98), math.log(0.98 / 0.02), n + 1)
    return 1.0 / (1.0 + np.exp(lam))


@pytest.mark.parametrize("param, order, steps, bounds", ORDERS, ids=[f"{o[0]}-order{o[1]}" for o in ORDERS])
def test_convergence_order_on_the_gaussian_ode(param, order, steps, bounds):
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    reference_model = rf.flow_gaussian(SIGMA_DATA) if param == "flow" else (lambda x, s: x * 0.25 / (0.25 + s * s))
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    errors, ref_errors = [], []
    for n in steps:
        sigmas = order_schedule(param, n)
        start = x.astype(np.float64) * sigmas[0]
        exact = model.exact_solution(start, sigmas[0], sigmas[-1])
        sampler = DEISSampler(order, lower_order_final=False, init_noise="edm")
        errors.append(rel(to_np(sampler(model, Tensor(x), sigmas=sigmas)), exact))
        ref, _, _ = deis_reference(reference_model, start, sigmas, order=order, lower_order_final=False, param=param)
        ref_errors.append(rel(ref, exact))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 2e-5  # truncation error, well above float32 rounding
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"
    np.testing.assert_allclose(errors, ref_errors, rtol=0.01)


# ---------------------------------------------------------------------------------------------------------------------
# 4. graph_loop=True equals the step-by-step call
# ---------------------------------------------------------------------------------------------------------------------

GRAPH = [
    ("ve", dict(solver_order=3), None),
    (
        "flow",
        dict(solver_order=2, lower_order_final=False, repeated_last_sigma=True),
        FlowMatchDiscretization(shift=3.0),
    ),
]


@pytest.mark.parametrize("param, params, schedule", GRAPH, ids=[g[0] for g in GRAPH])
def test_graph_loop_equals_step_by_step(param, params, schedule):
    scaling = EDMScaling() if param == "ve" else FlowVelocityScaling()
    denoiser = Denoiser(scaling).bind(small_net())
    kwargs = dict(params, num_steps=6, guider_config=VanillaCFG(2.0))
    if schedule is not None:
        kwargs["discretization_config"] = schedule
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    expected = DEISSampler(**kwargs)(denoiser, noise, cond, uc).asnumpy()
    loop = DEISSampler(graph_loop=True, **kwargs)
    got = loop(denoiser, noise, cond, uc).asnumpy()
    assert loop.last_nfe == 6
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# 5. Parameters and contract
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(solver_order=4), ValueError, r"solver_order must be 1, 2 or 3"),
        (dict(solver_order=0), ValueError, r"solver_order must be >= 1"),
        (dict(solver_order=2.0), TypeError, r"solver_order must be an integer"),
        (dict(lower_order_final="yes"), TypeError, r"lower_order_final must be True or False"),
        (dict(repeated_last_sigma=1), TypeError, r"repeated_last_sigma must be True or False"),
        (dict(algorithm_type="deis"), TypeError, r"DEISSampler: .*algorithm_type"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        DEISSampler(**kwargs)


def test_repr_and_callers_x_untouched(rng):
    sampler = DEISSampler(3, lower_order_final=False)
    assert repr(sampler).startswith("DEISSampler(solver_order=3, lower_order_final=False, repeated_last_sigma=False")
    x_np = rng.standard_normal((3, 2)).astype(np.float32)
    x = Tensor(x_np)
    out = sampler(GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS), x, sigmas=ve_ref.karras_sigmas(5))
    assert out is not x and sampler.last_nfe == 5
    np.testing.assert_array_equal(x.asnumpy(), x_np)
