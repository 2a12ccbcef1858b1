"""UniPCSampler (UniPC, Zhao et al. 2023, arXiv:2302.04867) against diffusers' UniPCMultistepScheduler, against an
independent float64 NumPy reference written from the paper's equations, and against the exact ODE solution of a
Gaussian data model (the measured order of accuracy).

The reference (``unipc_reference``) keeps the paper's objects: the list of past model outputs with their half-log-SNR
``lambda``, UniP-p from ``x_s`` with the ``p - 1`` newest older outputs, UniC-p redoing the last step with the new
output at ``r = 1``, ``rho`` from the order conditions ``sum_k rho_k r_k^(n-1) = n! hh phi_{n+1}(hh) / B(h)`` (solved
with NumPy, ``phi_k`` by Gauss-Legendre quadrature of ``int_0^1 e^{(1-d) z} d^(k-1) / (k-1)! dd``), ``rho = 1/2`` for a
single node (the official code's choice). Its state and parametrizations are tests/reference_flow.py's ``Param``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import MEANS, STDS, WEIGHTS
from realnets import small_net

import mindspore as ms
from mindspore import Tensor, ops

from edm_sampler import (
    Denoiser,
    DPMPP2MSampler,
    EDMScaling,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    VanillaCFG,
    as_denoiser,
    randn,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser
from edm_sampler.samplers.unipc import UniPCSampler, phi, unipc_rhos

OPTION_NAMES = ("solver_order", "solver_type", "predict_x0", "lower_order_final", "disable_corrector")


def rel_norm(out, ref):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


# ---------------------------------------------------------------------------------------------------------------------
# The float64 reference, from the paper
# ---------------------------------------------------------------------------------------------------------------------

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(40)


def phi_quadrature(k, z):
    """``phi_k(z) = int_0^1 e^{(1 - d) z} d^(k-1) / (k-1)! dd`` (Gauss-Legendre, exact to float64 for |z| < 20)."""
    d = (_GL_NODES + 1.0) / 2.0
    return float(np.sum(_GL_WEIGHTS / 2.0 * np.exp((1.0 - d) * z) * d ** (k - 1))) / math.factorial(k - 1)


def unipc_reference(
    denoise,
    x,
    sigmas,
    *,
    solver_order=2,
    solver_type="bh2",
    predict_x0=True,
    lower_order_final=True,
    disable_corrector=(),
    param="ve",
    trace=None,
):
    """UniPC with B(h) (bh1: B = hh, bh2: B = e^hh - 1) in the data- (``predict_x0``) or noise-prediction form, from
    ``x`` at ``sigmas[0]``; returns ``(x, nfe)``. diffusers' schedule of orders: UniP order ``min(solver_order, N - i)``
    with ``lower_order_final``, and at most one more than the outputs kept so far; UniC of the previous UniP's order at
    every step but those after ``disable_corrector``. A step to sigma = 0 is first order (data: ``D``; noise:
    ``(x - sigma_s eps) / alpha_s``), a step from alpha = 0 is the DDIM step on ``D`` and restarts the history."""
    p = rf.Param(param)
    n = len(sigmas) - 1
    outputs = []  # (lambda, m), oldest first, since the last restart
    x_prev = previous = None
    nfe = 0

    def update(x_s, s, t, m0, older, m_t=None):
        h = p.lam(t) - p.lam(s)
        hh = -h if predict_x0 else h
        b_h = hh if solver_type == "bh1" else math.exp(hh) - 1.0
        r = [(lam_k - p.lam(s)) / h for lam_k, _ in older]
        diffs = [(m_k - m0) / r_k for (_, m_k), r_k in zip(older, r)]
        if m_t is not None:
            r.append(1.0)
            diffs.append(m_t - m0)
        if len(r) == 1:
            rho = [0.5]
        elif r:
            rows = np.array([[r_k ** (q - 1) for r_k in r] for q in range(1, len(r) + 1)])
            g = np.array([math.factorial(q) * hh * phi_quadrature(q + 1, hh) / b_h for q in range(1, len(r) + 1)])
            rho = np.linalg.solve(rows, g)
        else:
            rho = []
        if predict_x0:  # x_t = (sigma_t/sigma_s) x_s + alpha_t (1 - e^-h) m0 - alpha_t B(h) sum rho D
            out, scale = t / s * x_s - p.alpha(t) * (math.exp(-h) - 1.0) * m0, p.alpha(t)
        else:  # x_t = (alpha_t/alpha_s) x_s - sigma_t (e^h - 1) m0 - sigma_t B(h) sum rho D
            out, scale = p.alpha(t) / p.alpha(s) * x_s - t * (math.exp(h) - 1.0) * m0, t
        for rho_k, d_k in zip(rho, diffs):
            out = out - scale * b_h * rho_k * d_k
        return out

    for i in range(n):
        s, t = float(sigmas[i]), float(sigmas[i + 1])
        d = denoise(x, s)
        nfe += 1
        if trace is not None:
            trace.append({"i": i, "sigma": s, "x": np.array(x), "denoised": d})
        m_new = d if predict_x0 else (x - p.alpha(s) * d) / s
        if previous is not None and (i - 1) not in disable_corrector:
            s_prev, order_prev = previous
            x = update(x_prev, s_prev, s, outputs[-1][1], outputs[-order_prev:-1][::-1], m_t=m_new)
        if p.alpha(s) == 0.0:
            x, outputs, previous = t / s * x + p.alpha(t) * d, [], None
            continue
        outputs = (outputs + [(p.lam(s), m_new)])[-(solver_order + 1) :]
        if t == 0.0:
            x = d if predict_x0 else (x - s * m_new) / p.alpha(s)
            continue
        order = min(solver_order, n - i) if lower_order_final else solver_order
        order = min(order, len(outputs))
        x_prev = x
        x = update(x, s, t, m_new, outputs[-order:-1][::-1])
        previous = (s, order)
    return x, nfe


# ---------------------------------------------------------------------------------------------------------------------
# 1. Options and coefficients
# ---------------------------------------------------------------------------------------------------------------------


def test_options_defaults_and_repr():
    sampler = UniPCSampler()
    assert (sampler.solver_order, sampler.solver_type, sampler.predict_x0) == (2, "bh2", True)
    assert sampler.lower_order_final is True and sampler.disable_corrector == ()
    assert sampler.history == 3
    custom = UniPCSampler(3, "bh1", False, False, [4, 0, 4])
    assert custom.disable_corrector == (0, 4) and custom.history == 4
    assert repr(custom).startswith(
        "UniPCSampler(solver_order=3, solver_type='bh1', predict_x0=False, lower_order_final=False, "
        "disable_corrector=(0, 4), num_steps=None"
    )


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(solver_order=0), ValueError, r"solver_order must be >= 1, got 0"),
        (dict(solver_order=4), ValueError, r"solver_order must be 1, 2 or 3"),
        (dict(solver_order=2.0), TypeError, r"solver_order must be an integer"),
        (dict(solver_order=True), TypeError, r"solver_order must be an integer"),
        (dict(solver_type="midpoint"), ValueError, r"solver_type must be one of 'bh1', 'bh2'; got 'midpoint'"),
        (dict(predict_x0=1), TypeError, r"predict_x0 must be True or False, got 1"),
        (dict(lower_order_final="yes"), TypeError, r"lower_order_final must be True or False"),
        (dict(disable_corrector=3), TypeError, r"disable_corrector must be a list of step indices, got 3"),
        (dict(disable_corrector="0"), TypeError, r"disable_corrector must be a list of step indices"),
        (dict(disable_corrector=[0, -1]), ValueError, r"disable_corrector\[\] must be >= 0, got -1"),
        (dict(disable_corrector=[0.5]), TypeError, r"disable_corrector\[\] must be an integer"),
        (dict(order=2), TypeError, r"UniPCSampler: .*order.*valid parameters: solver_order, solver_type"),
    ],
)
def test_bad_options_name_the_parameter(kwargs, error, message):
    with pytest.raises(error, match=message):
        UniPCSampler(**kwargs)


@pytest.mark.parametrize("z", [-30.0, -3.0, -0.6, -0.49, -1e-3, 1e-4, 0.3, 0.5, 2.0, 5.0])
def test_phi_functions_match_quadrature(z):
    for k in range(1, 6):
        assert phi(k, z) == pytest.approx(phi_quadrature(k, z), rel=1e-12)


def test_rhos_solve_the_order_conditions():
    hh, r = -0.7, [-0.8, -1.9, 1.0]
    b_h = math.expm1(hh)
    rhos = unipc_rhos(r, hh, b_h)
    for n in range(1, 4):
        lhs = sum(rho * r_k ** (n - 1) for rho, r_k in zip(rhos, r))
        assert lhs == pytest.approx(math.factorial(n) * hh * phi_quadrature(n + 1, hh) / b_h, rel=1e-12)
    assert unipc_rhos([-1.3], hh, b_h) == [0.5]


# ---------------------------------------------------------------------------------------------------------------------
# 2. Against the float64 reference (VE and flow Gaussian mixtures)
# ---------------------------------------------------------------------------------------------------------------------

SCHEDULES = {
    "ve_to_0": ("ve", ve_ref.karras_sigmas(9, sigma_min=0.02, sigma_max=40.0)),
    "ve_positive_end": ("ve", ve_ref.karras_sigmas(8, sigma_min=0.02, sigma_max=40.0)[:-1]),
    "flow_from_1": ("flow", np.append(np.linspace(1.0, 0.05, 9), 0.0)),  # alpha = 0 first: DDIM step, restart
    "flow_from_0.8": ("flow", np.append(np.linspace(0.8, 0.05, 8), 0.0)),
    "flow_positive_end": ("flow", np.array([0.95, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.04])),
}
VARIANTS = [
    dict(solver_order=1, solver_type="bh1"),
    dict(solver_order=2, solver_type="bh1"),
    dict(solver_order=2, solver_type="bh2"),
    dict(solver_order=3, solver_type="bh2"),
    dict(solver_order=3, solver_type="bh1", lower_order_final=False, disable_corrector=(0, 3)),
    dict(solver_order=2, solver_type="bh2", predict_x0=False),
    dict(solver_order=3, solver_type="bh1", predict_x0=False, lower_order_final=False),
    dict(solver_order=1, solver_type="bh2", predict_x0=False, disable_corrector=(1,)),
]


def mixture(param):
    return GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)


def reference_mixture(param):
    return rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "flow" else ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("params", VARIANTS, ids=lambda p: "-".join(f"{v}" for v in p.values()))
def test_matches_float64_reference(params, schedule, rng):
    param, sigmas = SCHEDULES[schedule]
    x = rng.standard_normal((6, 2)).astype(np.float32)
    start = x.astype(np.float64) * (sigmas[0] if param == "flow" else math.sqrt(1.0 + sigmas[0] ** 2))
    infos, trace = [], []
    sampler = UniPCSampler(**params)
    out = to_np(sampler(mixture(param), Tensor(x), sigmas=sigmas, callback=infos.append))
    ref, nfe = unipc_reference(reference_mixture(param), start, sigmas, param=param, trace=trace, **params)
    assert rel_norm(out, ref) <= 1e-5
    assert sampler.last_nfe == nfe == len(sigmas) - 1
    for info, step in zip(infos, trace):  # the model sees the reference's (uncorrected) states
        assert info["sigma"] == pytest.approx(step["sigma"], rel=1e-6)
        assert rel_norm(to_np(info["x"]), step["x"]) <= 1e-5


def test_reference_bh2_order_2_without_corrector_is_dpmpp_2m(rng):
    """UniP-2 with B(h) = expm1(-h) and rho = 1/2 is DPM-Solver++(2M); the last step to 0 returns D in both."""
    sigmas = ve_ref.karras_sigmas(7)
    x = rng.standard_normal((5, 2)) * 80.0
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS)
    uni, _ = unipc_reference(denoise, x, sigmas, disable_corrector=range(7))
    dpm, _, _ = ve_ref.dpmpp_2m_reference(denoise, x, sigmas)
    assert rel_norm(uni, dpm) <= 1e-12
    sampler = UniPCSampler(disable_corrector=range(7), init_noise="prescaled")
    out = to_np(sampler(mixture("ve"), Tensor(x.astype(np.float32)), sigmas=sigmas))
    expected = to_np(DPMPP2MSampler(init_noise="prescaled")(mixture("ve"), Tensor(x.astype(np.float32)), sigmas=sigmas))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_single_flow_step_from_pure_noise_returns_the_mean(rng):
    x = rng.standard_normal((4, 2)).astype(np.float32)
    for predict_x0 in (True, False):
        sampler = UniPCSampler(solver_order=3, predict_x0=predict_x0)
        out = to_np(sampler(mixture("flow"), Tensor(x), sigmas=[1.0, 0.0]))
        mean = np.asarray(WEIGHTS) @ np.asarray(MEANS)
        np.testing.assert_allclose(out, np.broadcast_to(mean, out.shape), rtol=0, atol=2e-6)
        assert sampler.last_nfe == 1


def test_callers_x_is_not_modified(rng):
    x_np = rng.standard_normal((3, 2)).astype(np.float32)
    x = Tensor(x_np)
    UniPCSampler(solver_order=3)(mixture("ve"), x, sigmas=SCHEDULES["ve_to_0"][1])
    UniPCSampler(predict_x0=False, init_noise="prescaled")(mixture("flow"), x, sigmas=SCHEDULES["flow_from_1"][1])
    np.testing.assert_array_equal(x.asnumpy(), x_np)


# ---------------------------------------------------------------------------------------------------------------------
# 3. Order of accuracy on the exact VE Gaussian ODE
# ---------------------------------------------------------------------------------------------------------------------

# Data N(0, s^2), D = x s^2 / (s^2 + sigma^2), x(sigma) = x(sigma_0) sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_0^2).
# Karras schedule (rho 7) from 20 to 0.02 with no jump to 0, lower_order_final=False: the error at 0.02 is the global
# truncation error of UniPC-p with its corrector. Measured (float64 reference, 16-64 steps; the library's float32 errors
# equal them within 1%): data form, bh1 / bh2: order 1: -2.12 / -1.95; order 2: -3.21 / -3.05; order 3: -4.10 / -4.10
# (local slopes -3.9..-4.0 past 24 steps): order p + 1, the paper's claim for UniPC-p. Noise form: order 1: -1.74 /
# -1.99, order 2: -2.87 / -3.04 (order 3 in the noise form goes through a sign change of its error in this range).
ORDERS = [
    (dict(solver_order=1, solver_type="bh1"), (-2.3, -1.9)),
    (dict(solver_order=1, solver_type="bh2"), (-2.1, -1.85)),
    (dict(solver_order=2, solver_type="bh1"), (-3.4, -2.9)),
    (dict(solver_order=2, solver_type="bh2"), (-3.2, -2.9)),
    (dict(solver_order=3, solver_type="bh1"), (-4.3, -3.8)),
    (dict(solver_order=3, solver_type="bh2"), (-4.3, -3.8)),
    (dict(solver_order=1, solver_type="bh2", predict_x0=False), (-2.1, -1.85)),
    (dict(solver_order=2, solver_type="bh2", predict_x0=False), (-3.2, -2.9)),
]
ORDER_STEPS = [16, 24, 32, 48]


def karras(n, sigma_min=0.02, sigma_max=20.0, rho=7.0):
    ramp = np.linspace(0.0, 1.0, n + 1)
    return (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


@pytest.mark.parametrize(
    "params, bounds", ORDERS, ids=lambda v: "-".join(map(str, v.values())) if isinstance(v, dict) else ""
)
def test_convergence_order_on_the_gaussian_ode(params, bounds):
    s = 0.5
    model = GaussianDenoiser(s)
    x = np.random.default_rng(7).standard_normal((4, 9)).astype(np.float32) * 20.0
    errors, ref_errors = [], []
    for n in ORDER_STEPS:
        sigmas = karras(n)
        exact = x.astype(np.float64) * math.sqrt(s**2 + sigmas[-1] ** 2) / math.sqrt(s**2 + sigmas[0] ** 2)
        sampler = UniPCSampler(lower_order_final=False, init_noise="prescaled", **params)
        errors.append(rel_norm(to_np(sampler(model, Tensor(x), sigmas=sigmas)), exact))
        ref, _ = unipc_reference(
            lambda y, sigma: y * s**2 / (s**2 + sigma**2),
            x.astype(np.float64),
            sigmas,
            lower_order_final=False,
            **params,
        )
        ref_errors.append(rel_norm(ref, exact))
    slope = np.polyfit(np.log(ORDER_STEPS), np.log(errors), 1)[0]
    assert errors[-1] > 2e-5, errors  # truncation error well above float32 round-off
    assert np.all(np.diff(errors) < 0), errors
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"
    np.testing.assert_allclose(errors, ref_errors, rtol=0.02)


# ---------------------------------------------------------------------------------------------------------------------
# 4. Parity with diffusers' UniPCMultistepScheduler (its own loop, float64 tables)
# ---------------------------------------------------------------------------------------------------------------------

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
LINEAR_BETAS = dict(beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
SHAPE = (2, 3, 8, 8)


def float64_betas(config):
    if config["beta_schedule"] == "scaled_linear":
        return np.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, 1000, dtype=np.float64) ** 2
    return np.linspace(config["beta_start"], config["beta_end"], 1000, dtype=np.float64)


def flow_sigmas(n, shift):
    """diffusers' use_flow_sigmas schedule (UniPCMultistepScheduler.set_timesteps), in float64: N sigmas from
    linspace(1, 1/1000, N + 1)[:-1] shifted by ``shift s / (1 + (shift - 1) s)``, the first moved to 1 - 1e-6, then 0;
    the model's timesteps are ``int64(sigma * 1000)`` (truncated)."""
    sigmas = np.linspace(1.0, 1.0 / 1000, n + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    if abs(sigmas[0] - 1.0) < 1e-6:
        sigmas[0] -= 1e-6
    return np.append(sigmas, 0.0), (sigmas * 1000).astype(np.int64)


def torch_model(x, t):
    import torch

    return torch.tanh(0.7 * x) * torch.cos(t.double() / 300) + 0.05 * x


def np_model(x, t):
    return np.tanh(0.7 * x) * math.cos(t / 300) + 0.05 * x


def diffusers_setup(config, n):
    """The scheduler with float64 tables and sigmas, and the float64 (sigmas, timesteps) the edm side uses."""
    import torch
    from diffusers import UniPCMultistepScheduler

    scheduler = UniPCMultistepScheduler(**config)
    if config.get("use_flow_sigmas"):
        scheduler.set_timesteps(n)
        sigmas, timesteps = flow_sigmas(n, config["flow_shift"])
    else:
        betas = float64_betas(config)
        alphas_cumprod = np.cumprod(1.0 - betas)
        scheduler.betas = torch.from_numpy(betas)
        scheduler.alphas = torch.from_numpy(1.0 - betas)
        scheduler.alphas_cumprod = torch.from_numpy(alphas_cumprod)
        scheduler.alpha_t = torch.from_numpy(np.sqrt(alphas_cumprod))
        scheduler.sigma_t = torch.from_numpy(np.sqrt(1.0 - alphas_cumprod))
        scheduler.lambda_t = torch.log(scheduler.alpha_t) - torch.log(scheduler.sigma_t)
        scheduler.sigmas = torch.from_numpy(np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod))
        scheduler.set_timesteps(n)
        timesteps = scheduler.timesteps.numpy()
        a = alphas_cumprod[timesteps]
        sigma_min = config.get("final_sigmas_type") == "sigma_min"
        last = math.sqrt((1.0 - alphas_cumprod[0]) / alphas_cumprod[0]) if sigma_min else 0.0
        sigmas = np.append(np.sqrt((1.0 - a) / a), last)
    # set_timesteps rounds its sigmas to float32: the same values, which the float64 ones replace
    np.testing.assert_array_equal(sigmas.astype(np.float32), scheduler.sigmas.numpy())
    np.testing.assert_array_equal(timesteps, scheduler.timesteps.numpy())
    scheduler.sigmas = torch.from_numpy(sigmas)
    return scheduler, sigmas, timesteps


def run_diffusers(scheduler, noise):
    """The pipeline loop; returns (final latents or None when a step fails, [(x_in, t)])."""
    import torch

    latents = torch.from_numpy(noise) * scheduler.init_noise_sigma
    calls = []
    try:
        for t in scheduler.timesteps:
            x_in = scheduler.scale_model_input(latents, t)
            calls.append((x_in.numpy().copy(), int(t)))
            latents = scheduler.step(torch_model(x_in, t), t, latents).prev_sample
    except RuntimeError:  # torch.linalg.solve on a singular matrix (order 3 on the step to 0)
        return None, calls
    return latents.numpy(), calls


def edm_denoiser(sigmas, timesteps, flow, calls):
    """D(x, sigma) for the edm side: maps the state to diffusers' model input, finds the timestep of that sigma, calls
    the same model in MindSpore ops, records (x_in, t)."""
    table = sigmas[:-1]

    def denoise(x, sigma, cond):
        i = int(np.argmin(np.abs(table - float(sigma.asnumpy()[0]))))
        t, s = int(timesteps[i]), float(table[i])
        x_in = x if flow else x / math.sqrt(1.0 + s * s)
        calls.append((x_in.asnumpy(), t))
        out = ops.tanh(x_in * 0.7) * math.cos(t / 300) + x_in * 0.05
        return x - out * s

    return as_denoiser(denoise, parametrization="flow") if flow else denoise


def reference_model(sigmas, timesteps, flow):
    table = sigmas[:-1]

    def denoise(x, s):
        t = int(timesteps[int(np.argmin(np.abs(table - s)))])
        return x - s * np_model(x if flow else x / math.sqrt(1.0 + s * s), t)

    return denoise


VE_CASES = [  # (scheduler config, N); final_sigmas_type="sigma_min" ends at sigma(t=0) > 0
    *[
        (dict(SD_BETAS, solver_order=o, solver_type=b, predict_x0=x0, final_sigmas_type="sigma_min"), 8)
        for o in (1, 2, 3)
        for b in ("bh1", "bh2")
        for x0 in (True, False)
    ],
    (dict(SD_BETAS), 10),
    (dict(SD_BETAS, solver_order=3), 16),  # 16 >= 15 steps: lower_order_final still lowers the last orders
    (dict(SD_BETAS, solver_order=3, final_sigmas_type="sigma_min"), 16),
    (dict(SD_BETAS, solver_order=3, final_sigmas_type="sigma_min", lower_order_final=False), 16),
    (
        dict(
            SD_BETAS, solver_order=2, lower_order_final=False, final_sigmas_type="sigma_min", disable_corrector=[0, 3]
        ),
        9,
    ),
    (
        dict(
            SD_BETAS,
            solver_order=3,
            solver_type="bh1",
            predict_x0=False,
            lower_order_final=False,
            final_sigmas_type="sigma_min",
            disable_corrector=[2],
        ),
        9,
    ),  # fmt: skip
    (dict(LINEAR_BETAS, solver_order=3, disable_corrector=[1, 2]), 12),
    (dict(LINEAR_BETAS, solver_order=2, timestep_spacing="trailing", final_sigmas_type="sigma_min"), 7),
    (dict(SD_BETAS, solver_order=3, timestep_spacing="leading", steps_offset=1), 6),
    (dict(SD_BETAS, solver_order=3), 1),
    (dict(SD_BETAS, solver_order=3, solver_type="bh1", final_sigmas_type="sigma_min"), 2),
    # diffusers returns no finite result on the step to sigma = 0 here (the sampler's result is the reference's):
    (dict(SD_BETAS, solver_type="bh1"), 8),  # B(h) = -inf times a zero correction
    (dict(SD_BETAS, predict_x0=False), 8),  # sigma_t expm1(h) = 0 * inf
    (dict(SD_BETAS, lower_order_final=False), 8),  # order 2 on the step to 0: D1 / r with r = -0
    (dict(SD_BETAS, solver_order=3, lower_order_final=False), 8),  # order 3: torch.linalg.solve fails
]
FLOW_CASES = [  # Wan 2.1's scheduler: flow_prediction, use_flow_sigmas, flow_shift 3.0 (480p) / 5.0 (720p)
    (dict(flow_shift=3.0), 10),
    (dict(flow_shift=5.0), 12),
    (dict(flow_shift=3.0, solver_order=3, disable_corrector=[0, 4]), 7),
    (dict(flow_shift=5.0, solver_order=1), 16),
    (dict(flow_shift=5.0, solver_type="bh1"), 8),  # non-finite in diffusers (B(h) = -inf on the step to 0)
]


def case_id(case):
    config, n = case
    return f"{n}-" + "-".join(f"{k}={v}" for k, v in config.items() if k not in SD_BETAS or k == "beta_schedule")


@pytest.mark.parametrize(
    "config, n, flow",
    [(c, n, False) for c, n in VE_CASES] + [(c, n, True) for c, n in FLOW_CASES],
    ids=[case_id(c) for c in VE_CASES] + ["flow-" + case_id(c) for c in FLOW_CASES],
)
def test_matches_diffusers(config, n, flow):
    pytest.importorskip("diffusers")
    if flow:
        config = dict(config, prediction_type="flow_prediction", use_flow_sigmas=True)
    scheduler, sigmas, timesteps = diffusers_setup(config, n)
    noise = np.random.default_rng(n).standard_normal(SHAPE)
    expected, expected_calls = run_diffusers(scheduler, noise)

    calls = []
    options = {k: v for k, v in config.items() if k in OPTION_NAMES}
    # diffusers starts from the unit noise itself: VE x = noise sqrt(1 + sigma_0^2) ("sgm"); flow x = noise at
    # sigma_0 = 1 - 1e-6 ("prescaled": no 1e-6 rescaling)
    sampler = UniPCSampler(**options, init_noise="prescaled" if flow else "sgm")
    out = to_np(sampler(edm_denoiser(sigmas, timesteps, flow, calls), Tensor(noise.astype(np.float32)), sigmas=sigmas))
    alpha_last = 1.0 if flow else 1.0 / math.sqrt(1.0 + sigmas[-1] ** 2)

    assert sampler.last_nfe == len(calls) == len(expected_calls) == n
    assert [t for _, t in calls] == [t for _, t in expected_calls]
    assert max(rel_norm(mine[0], theirs[0]) for mine, theirs in zip(calls, expected_calls)) <= 1e-5

    start = noise if flow else noise * math.sqrt(1.0 + sigmas[0] ** 2)
    ref, _ = unipc_reference(
        reference_model(sigmas, timesteps, flow), start, sigmas, param="flow" if flow else "ve", **options
    )
    if expected is not None and np.all(np.isfinite(expected)):
        assert rel_norm(out * alpha_last, expected) <= 1e-5
        assert rel_norm(ref * alpha_last, expected) <= 1e-10  # the paper's equations are diffusers' to float64
    else:  # a documented difference: the first-order step to sigma = 0
        assert sigmas[-1] == 0.0
        assert rel_norm(out, ref) <= 1e-5


def test_diffusers_applies_lower_order_final_at_any_step_count():
    """Its docstring says 'only valid for < 15 inference steps'; its step() lowers the order at 16 steps too."""
    pytest.importorskip("diffusers")
    results = []
    for lower_order_final in (True, False):
        config = dict(SD_BETAS, solver_order=3, final_sigmas_type="sigma_min", lower_order_final=lower_order_final)
        scheduler, _, _ = diffusers_setup(config, 16)
        results.append(run_diffusers(scheduler, np.random.default_rng(0).standard_normal(SHAPE))[0])
    assert rel_norm(results[0], results[1]) > 1e-6


def test_diffusers_flow_sigma_min_repeats_the_last_sigma():
    """Not covered (see UniPCSampler's docstring): with use_flow_sigmas, final_sigmas_type="sigma_min" appends the
    last sigma again, a zero-length step; edm_sampler's schedules are strictly decreasing."""
    pytest.importorskip("diffusers")
    from diffusers import UniPCMultistepScheduler

    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, final_sigmas_type="sigma_min"
    )
    scheduler.set_timesteps(6)
    sigmas = scheduler.sigmas.numpy().astype(np.float64)
    assert sigmas[-1] == sigmas[-2] > 0
    with pytest.raises(ValueError, match="strictly decreasing"):
        UniPCSampler()(mixture("flow"), Tensor(np.ones((2, 2), np.float32)), sigmas=sigmas)


# ---------------------------------------------------------------------------------------------------------------------
# 5. The compiled loop equals the step-by-step call
# ---------------------------------------------------------------------------------------------------------------------

GRAPH_CASES = [
    ("ve", dict(solver_order=3, solver_type="bh1", disable_corrector=(1,), lower_order_final=False)),
    ("ve", dict(solver_order=2, predict_x0=False)),
    ("flow", dict(solver_order=3, solver_type="bh2")),
    ("flow", dict(solver_order=2, solver_type="bh1", predict_x0=False)),  # on_data varies: a branch in the graph
]


@pytest.mark.parametrize("param, params", GRAPH_CASES, ids=lambda v: str(v))
def test_graph_loop_equals_step_by_step(param, params):
    kwargs = dict(params, num_steps=6, guider_config=VanillaCFG(2.0))
    if param == "flow":  # from sigma = 1: the DDIM first step and the restart of the history
        kwargs["discretization_config"] = FlowMatchDiscretization(shift=3.0)
    denoiser = Denoiser(EDMScaling() if param == "ve" else FlowVelocityScaling()).bind(small_net())
    rng = np.random.default_rng(3)
    cond = {"vector": Tensor(np.eye(10, dtype=np.float32)[rng.integers(0, 10, 2)])}
    uc = {"vector": Tensor(np.zeros((2, 10), np.float32))}
    noise = randn((2, 4, 8, 8), generator=0)
    steps = UniPCSampler(**kwargs)
    loop = UniPCSampler(graph_loop=True, **kwargs)
    expected = steps(denoiser, noise, cond, uc).asnumpy()
    got = loop(denoiser, noise, cond, uc).asnumpy()
    assert loop.last_nfe == steps.last_nfe == 6
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_graph_mode_step_by_step_equals_pynative():
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    sampler = UniPCSampler(solver_order=3, num_steps=5, disable_corrector=[2])
    noise = randn((2, 4, 8, 8), generator=1)
    expected = sampler(denoiser, noise).asnumpy()
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        got = sampler(denoiser, noise).asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
