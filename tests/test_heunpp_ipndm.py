"""Heun++ 2 (ComfyUI's ``heunpp2``) and the Adams-Bashforth samplers ``ipndm`` (fixed-step weights) and ``ipndm_v``
(variable-step weights): against independent float64 references (Carzit's Heun++ as ComfyUI runs it; Adams-Bashforth
with its weights from the uniform-step table, or integrated by Gauss-Legendre quadrature), VE and flow, at
non-default churn / order; a few of ComfyUI's numbers worked out by hand; measured orders on the exact Gaussian ODE;
the compiled loop on a real network; names, configs and parameter checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import MEANS, SIGMA_DATA, STDS, WEIGHTS, gauss_legendre, lagrange, queue_sampler, rel
from realnets import compiled_and_eager

from mindspore import Tensor

from edm_sampler import (
    HeunPP2Sampler,
    IPNDMFixedStepSampler,
    IPNDMVariableStepSampler,
    as_denoiser,
    load_sampler,
    resolve,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser

# ---------------------------------------------------------------------------------------------------------------------
# The float64 references
# ---------------------------------------------------------------------------------------------------------------------


def heunpp2_reference(
    denoise, x, sigmas, *, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0, noises=(), param="ve"
):
    """Heun++ 2 (Carzit/sd-webui-samplers-scheduler, ComfyUI's sample_heunpp2): EDM churn (on the VE-equivalent level
    for flow), then Euler on the last step, a Heun step weighted (1 - w, w), w = s_{i+1} / (2 s_0), on the one before,
    and elsewhere three slopes (at s_hat, s_{i+1} after an Euler step, s_{i+2} after a second Euler step) weighted
    (1 - w2 - w3, w2, w3), w2 = s_{i+1} / (3 s_0), w3 = s_{i+2} / (3 s_0). Returns (x, nfe, draws)."""
    p, noises = rf.Param(param), iter(noises)
    x, n, nfe, draws = np.asarray(x, np.float64), len(sigmas) - 1, 0, 0

    def slope(x, s):
        nonlocal nfe
        nfe += 1
        return (x - denoise(x, s)) / s

    for i in range(n):
        s, s1 = float(sigmas[i]), float(sigmas[i + 1])
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= s <= s_tmax else 0.0
        s_hat = p.churn(s, gamma)
        if s_hat > s:
            a = p.alpha(s_hat) / p.alpha(s)
            x = a * x + s_noise * math.sqrt(s_hat**2 - (a * s) ** 2) * np.asarray(next(noises), np.float64)
            draws += 1
        else:
            s_hat = s
        d, dt = slope(x, s_hat), s1 - s_hat
        x_2 = x + d * dt
        if i == n - 1:
            x = x_2
        elif i == n - 2:
            w = s1 / (2 * float(sigmas[0]))
            x = x + ((1 - w) * d + w * slope(x_2, s1)) * dt
        else:
            s2 = float(sigmas[i + 2])
            d_2 = slope(x_2, s1)
            d_3 = slope(x_2 + d_2 * (s2 - s1), s2)
            w2, w3 = s1 / (3 * float(sigmas[0])), s2 / (3 * float(sigmas[0]))
            x = x + ((1 - w2 - w3) * d + w2 * d_2 + w3 * d_3) * dt
    return x, nfe, draws


AB = {1: [1.0], 2: [3 / 2, -1 / 2], 3: [23 / 12, -16 / 12, 5 / 12], 4: [55 / 24, -59 / 24, 37 / 24, -9 / 24]}


def variable_weights(sigmas, i, order):
    """``int_{s_i}^{s_{i+1}}`` of the Lagrange basis on the last ``order`` sigmas, by Gauss-Legendre quadrature."""
    nodes = [float(sigmas[i - j]) for j in range(order)]
    return [gauss_legendre(lagrange(nodes, j), float(sigmas[i]), float(sigmas[i + 1]), 8) for j in range(order)]


def adams_reference(denoise, x, sigmas, *, max_order=4, variable=False):
    """Adams-Bashforth on dx/dsigma = (x - D) / sigma over the last min(max_order, i + 1) slopes, the step to 0
    returning D. Fixed-step weights: the uniform table times the step; variable-step: the Lagrange integrals."""
    x, slopes = np.asarray(x, np.float64), []
    for i in range(len(sigmas) - 1):
        s, s1 = float(sigmas[i]), float(sigmas[i + 1])
        denoised = denoise(x, s)
        slopes.insert(0, (x - denoised) / s)
        order = min(max_order, i + 1)
        if s1 == 0:
            x = denoised
            continue
        weights = variable_weights(sigmas, i, order) if variable else [w * (s1 - s) for w in AB[order]]
        x = x + sum(w * d for w, d in zip(weights, slopes))
    return x, len(sigmas) - 1


def model_pair(param):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    return model, denoise


# ---------------------------------------------------------------------------------------------------------------------
# 1. Against the float64 references
# ---------------------------------------------------------------------------------------------------------------------

HEUNPP = [
    ("ve", dict(), ve_ref.karras_sigmas(7, sigma_max=20.0)),
    ("ve", dict(s_churn=3.0, s_tmin=0.2, s_tmax=8.0, s_noise=1.1), ve_ref.karras_sigmas(7, sigma_max=20.0)),
    ("flow", dict(s_churn=2.0, s_noise=0.9), np.append(np.linspace(1.0, 0.1, 6), 0.0)),  # from sigma = 1
    ("flow", dict(), np.linspace(0.95, 0.05, 5)),  # ends above 0: the last step is Euler all the same
]


@pytest.mark.parametrize("param, params, sigmas", HEUNPP, ids=[f"{c[0]}-{c[1]}" for c in HEUNPP])
def test_heunpp2_matches_float64_reference(param, params, sigmas, rng):
    model, denoise = model_pair(param)
    x = rng.standard_normal((6, 2)).astype(np.float32) * sigmas[0]
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(len(sigmas))]
    calls = []
    sampler = HeunPP2Sampler(**params, init_noise="prescaled")
    out = to_np(sampler(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises, calls)))
    ref, nfe, draws = heunpp2_reference(denoise, x, sigmas, **params, noises=noises, param=param)
    n = len(sigmas) - 1
    assert sampler.last_nfe == nfe == 3 * n - 3
    assert len(calls) == draws and (draws > 0) == ("s_churn" in params)
    assert rel(out, ref) <= 2e-6, rel(out, ref)


def test_heunpp2_comfyui_numbers_by_hand():
    """D = x / 2 on sigmas (2, 1, 0.5, 0) from x = 1 (ComfyUI's formulas worked by hand): a three-slope step
    (weights 3/4, 1/6, 1/12) to 0.703125, a weighted Heun step (7/8, 1/8) to 0.516357421875, then Euler to
    0.2581787109375."""
    model = as_denoiser(lambda x, sigma, cond: x * 0.5)
    sampler = HeunPP2Sampler(init_noise="prescaled")
    out = to_np(sampler(model, Tensor(np.ones((1, 1), np.float32)), sigmas=[2.0, 1.0, 0.5, 0.0]))
    assert sampler.last_nfe == 6
    np.testing.assert_allclose(out, 0.2581787109375, rtol=1e-7)
    one = HeunPP2Sampler(init_noise="prescaled")
    np.testing.assert_allclose(to_np(one(model, Tensor(np.ones((1, 1), np.float32)), sigmas=[2.0, 0.0])), 0.5)
    assert one.last_nfe == 1


ADAMS = [
    ("ve", IPNDMFixedStepSampler, dict(), ve_ref.karras_sigmas(9, sigma_max=20.0)),
    ("ve", IPNDMFixedStepSampler, dict(max_order=2), ve_ref.karras_sigmas(6, sigma_max=20.0)),
    ("ve", IPNDMVariableStepSampler, dict(), ve_ref.karras_sigmas(9, sigma_max=20.0)),
    ("ve", IPNDMVariableStepSampler, dict(max_order=3), np.geomspace(15.0, 0.03, 8)),  # ends above 0
    ("flow", IPNDMFixedStepSampler, dict(max_order=3), np.append(np.linspace(1.0, 0.1, 8), 0.0)),
    ("flow", IPNDMVariableStepSampler, dict(), np.append(np.linspace(1.0, 0.1, 8) ** 1.5, 0.0)),
    ("flow", IPNDMVariableStepSampler, dict(max_order=1), np.linspace(0.9, 0.1, 5)),  # Euler
]


@pytest.mark.parametrize("param, cls, params, sigmas", ADAMS, ids=[f"{c[0]}-{c[1].__name__}-{c[2]}" for c in ADAMS])
def test_adams_matches_float64_reference(param, cls, params, sigmas, rng):
    model, denoise = model_pair(param)
    x = rng.standard_normal((6, 2)).astype(np.float32) * sigmas[0]
    infos = []
    sampler = cls(**params, init_noise="prescaled")
    out = to_np(sampler(model, Tensor(x), sigmas=sigmas, callback=infos.append))
    variable = cls is IPNDMVariableStepSampler
    ref, nfe = adams_reference(denoise, x, sigmas, max_order=params.get("max_order", 4), variable=variable)
    assert sampler.last_nfe == nfe == len(infos) == len(sigmas) - 1
    assert rel(out, ref) <= 2e-6, rel(out, ref)


def test_reference_weights_are_adams_bashforth():
    """The quadrature weights reduce to the uniform-step table on uniform steps (so ipndm_v is ipndm there)."""
    sigmas = np.linspace(5.0, 1.0, 9)
    for order in (1, 2, 3, 4):
        got = variable_weights(sigmas, 5, order)
        np.testing.assert_allclose(got, [w * -0.5 for w in AB[order]], rtol=1e-12)


def test_variable_equals_fixed_on_uniform_steps(rng):
    model, _ = model_pair("flow")
    x = Tensor(rng.standard_normal((6, 2)).astype(np.float32))
    sigmas = np.linspace(1.0, 0.1, 10)
    fixed = to_np(IPNDMFixedStepSampler(init_noise="prescaled")(model, x, sigmas=sigmas))
    variable = to_np(IPNDMVariableStepSampler(init_noise="prescaled")(model, x, sigmas=sigmas))
    assert rel(variable, fixed) <= 1e-6


def test_adams_comfyui_numbers_by_hand():
    """D = x / 2 from x = 1, ComfyUI's formulas by hand: on (3, 2, 1, 0) both give Euler to 5/6, AB2 to 29/48, then D
    = 29/96; on (4, 2, 1, 0) the fixed-step AB2 gives 17/32 and D = 17/64, the variable-step one (weights 5/4, -1/4 for
    the step ratio 1/2) 35/64 and D = 35/128."""
    model = as_denoiser(lambda x, sigma, cond: x * 0.5)
    one = Tensor(np.ones((1, 1), np.float32))
    for cls in (IPNDMFixedStepSampler, IPNDMVariableStepSampler):
        out = cls(init_noise="prescaled")(model, one, sigmas=[3.0, 2.0, 1.0, 0.0])
        np.testing.assert_allclose(to_np(out), 29 / 96, rtol=1e-7)
    fixed = IPNDMFixedStepSampler(init_noise="prescaled")(model, one, sigmas=[4.0, 2.0, 1.0, 0.0])
    variable = IPNDMVariableStepSampler(init_noise="prescaled")(model, one, sigmas=[4.0, 2.0, 1.0, 0.0])
    np.testing.assert_allclose(to_np(fixed), 17 / 64, rtol=1e-7)
    np.testing.assert_allclose(to_np(variable), 35 / 128, rtol=1e-7)


# ---------------------------------------------------------------------------------------------------------------------
# 2. Convergence order on the exact Gaussian ODE
# ---------------------------------------------------------------------------------------------------------------------

# Karras-type schedules (rho = 2) without the final jump to 0 (an Euler step to D): VE from 20 to 0.05, flow from 0.98
# to 0.02. The slopes are fitted to the float64 reference's errors; the library's equal them to 1% wherever they are
# above float32 rounding. Measured local slopes (8 -> 256 steps): Heun++ VE 0.93 -> 0.99, flow 1.29 -> 1.02 (first
# order: its weights tend to Euler's below sigma_0); ipndm VE 2.1-2.6 -> 2.05, flow 2.9 -> 2.2 (second order off
# uniform steps); ipndm_v order 3 VE 1.9 -> 2.97, order 4 VE 2.3 -> 4.02. Under flow from 0.98 every Adams method ends
# up second order (ipndm_v order 4: 2.7 -> 2.03): the warm-up's first (Euler) step, where the flow trajectory is
# curved, leaves an O(h^2) error; VE's starts at sigma 20, where it is nearly straight.
ORDERS = [
    ("ve", HeunPP2Sampler, {}, [16, 32, 64], (-1.1, -0.9)),
    ("flow", HeunPP2Sampler, {}, [16, 32, 64], (-1.25, -0.9)),
    ("ve", IPNDMFixedStepSampler, {}, [64, 128, 256], (-2.4, -1.9)),
    ("flow", IPNDMFixedStepSampler, {}, [64, 128, 256], (-2.5, -1.9)),
    ("ve", IPNDMVariableStepSampler, dict(max_order=3), [64, 128, 256], (-3.1, -2.9)),
    ("ve", IPNDMVariableStepSampler, {}, [64, 128, 256], (-4.2, -3.9)),
    ("flow", IPNDMVariableStepSampler, {}, [64, 128, 256], (-2.2, -1.9)),
]


def order_schedule(param, n):
    top, bottom = (20.0, 0.05) if param == "ve" else (0.98, 0.02)
    ramp = np.linspace(0.0, 1.0, n + 1)
    return (top**0.5 + ramp * (bottom**0.5 - top**0.5)) ** 2


def gaussian_pair(param):
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    reference_model = rf.flow_gaussian(SIGMA_DATA) if param == "flow" else (lambda x, s: x * 0.25 / (0.25 + s * s))
    return model, reference_model


def reference_run(cls, params, param, sigmas, start):
    _, reference_model = gaussian_pair(param)
    if cls is HeunPP2Sampler:
        return heunpp2_reference(reference_model, start, sigmas, **params, param=param)[0]
    variable = cls is IPNDMVariableStepSampler
    return adams_reference(reference_model, start, sigmas, max_order=params.get("max_order", 4), variable=variable)[0]


@pytest.mark.parametrize(
    "param, cls, params, steps, bounds", ORDERS, ids=[f"{o[0]}-{o[1].__name__}-{o[2]}" for o in ORDERS]
)
def test_convergence_order_on_the_gaussian_ode(param, cls, params, steps, bounds):
    model, _ = gaussian_pair(param)
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    errors, checked = {}, 0
    for n in sorted(set(steps) | {16, 32}):
        sigmas = order_schedule(param, n)
        start = x.astype(np.float64) * sigmas[0]
        exact = model.exact_solution(start, sigmas[0], sigmas[-1])
        errors[n] = rel(reference_run(cls, params, param, sigmas, start), exact)
        if errors[n] > 1e-4:  # above float32 rounding: the library's error is the same truncation error
            out = to_np(cls(**params, init_noise="edm")(model, Tensor(x), sigmas=sigmas))
            assert rel(out, exact) == pytest.approx(errors[n], rel=0.01)
            checked += 1
    slope = np.polyfit(np.log(steps), np.log([errors[n] for n in steps]), 1)[0]
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"
    assert checked >= 2


# ---------------------------------------------------------------------------------------------------------------------
# 3. graph_loop=True equals the step-by-step call
# ---------------------------------------------------------------------------------------------------------------------

GRAPH = [
    ("ve", HeunPP2Sampler, dict(s_churn=2.0, s_noise=1.05), 6, 15),
    ("flow", HeunPP2Sampler, dict(), 5, 12),
    ("ve", IPNDMFixedStepSampler, dict(max_order=3), 6, 6),
    ("flow", IPNDMVariableStepSampler, dict(), 6, 6),
]


@pytest.mark.parametrize("param, cls, params, steps, nfe", GRAPH, ids=[f"{g[0]}-{g[1].__name__}" for g in GRAPH])
def test_graph_loop_equals_step_by_step(param, cls, params, steps, nfe):
    got, expected, loop_nfe, eager_nfe = compiled_and_eager(cls, param, steps, **params)
    assert loop_nfe == eager_nfe == nfe
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# 4. Names, configs, parameters
# ---------------------------------------------------------------------------------------------------------------------


def test_short_names_and_shipped_configs():
    assert resolve("heunpp2") is HeunPP2Sampler
    assert resolve("ipndm") is IPNDMFixedStepSampler and resolve("ipndm_v") is IPNDMVariableStepSampler
    assert resolve("diffusers_ipndm").__name__ == "IPNDMSampler"  # diffusers' scheduler keeps its own name
    assert load_sampler("heunpp2.yaml").num_steps == 10
    assert load_sampler("ipndm.yaml").max_order == load_sampler("ipndm_v.yaml").max_order == 4
    from edm_sampler import evaluation

    assert {"heunpp2", "ipndm", "ipndm_v"} <= set(evaluation.deterministic_samplers())
    assert evaluation.nfe_formula("heunpp2", "edm") == (0, 3)  # 3N - 3 evaluations: 3 for 2 steps, 6 for 3


@pytest.mark.parametrize(
    "cls, kwargs, error, match",
    [
        (IPNDMFixedStepSampler, dict(max_order=5), ValueError, r"max_order must be 1, 2, 3 or 4, got 5"),
        (IPNDMVariableStepSampler, dict(max_order=0), ValueError, r"max_order must be >= 1"),
        (IPNDMVariableStepSampler, dict(max_order=2.0), TypeError, r"max_order must be an integer"),
        (HeunPP2Sampler, dict(s_noise=-1.0), ValueError, r"s_noise must be >= 0"),
        (HeunPP2Sampler, dict(s_tmin=2.0, s_tmax=1.0), ValueError, r"s_tmin must be <= s_tmax"),
        (IPNDMFixedStepSampler, dict(order=3), TypeError, r"IPNDMFixedStepSampler: .*order"),
    ],
)
def test_bad_parameters_are_refused_by_name(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_repr_and_callers_x_untouched(rng):
    sampler = IPNDMVariableStepSampler(3)
    assert repr(sampler).startswith("IPNDMVariableStepSampler(max_order=3, num_steps=None")
    x_np = rng.standard_normal((3, 2)).astype(np.float32)
    x = Tensor(x_np)
    model, _ = model_pair("ve")
    out = HeunPP2Sampler()(model, x, sigmas=ve_ref.karras_sigmas(4))
    assert out is not x
    np.testing.assert_array_equal(x.asnumpy(), x_np)
