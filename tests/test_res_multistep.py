"""RES multistep (Zhang, Song & Chen 2023), its ancestral form, and the gradient-estimation sampler (Permenter & Yuan
2024), ComfyUI's ``res_multistep``, ``res_multistep_ancestral`` and ``gradient_estimation``: against independent
float64 references of the published equations (VE and flow, non-default eta / s_noise / gamma, injected noise), a few
of ComfyUI's numbers worked out by hand, measured orders on the exact Gaussian ODE, the compiled loop on a real
network, and their parameter checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import MEANS, SIGMA_DATA, STDS, WEIGHTS, gauss_legendre, queue_sampler, rel
from realnets import compiled_and_eager

from mindspore import Tensor

from edm_sampler import (
    EulerEDMSampler,
    GradientEstimationSampler,
    ResMultistepAncestralSampler,
    ResMultistepSampler,
    load_sampler,
    randn,
    resolve,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser
from edm_sampler.samplers.res_multistep import res_weights

# ---------------------------------------------------------------------------------------------------------------------
# The float64 references
# ---------------------------------------------------------------------------------------------------------------------


def _euler(x, sigma, denoised, sigma_to):
    return denoised if sigma_to == 0 else x + (sigma_to - sigma) * (x - denoised) / sigma


def interpolant_weights(h, h_prev):
    """With ``D(tau) = D + tau (D_old - D) / (-h_prev)``: the weights of D and D_old in ``int_0^h e^(tau - h) D(tau)
    dtau``, by Gauss-Legendre quadrature."""
    w_new = gauss_legendre(lambda t: np.exp(t - h) * (1 + t / h_prev), 0.0, h)
    w_old = gauss_legendre(lambda t: np.exp(t - h) * (-t / h_prev), 0.0, h)
    return w_new, w_old


def res_reference(denoise, x, sigmas, *, eta=0.0, s_noise=1.0, noises=(), param="ve"):
    """RES (arXiv:2308.02157): in lambda = log(alpha / sigma), the data estimate interpolated linearly through D_i (at
    0) and D_{i-1} (at -h_prev, the previous step's length) and the linear ODE ``dx/dlambda = -x + alpha D`` (in
    ``x / sigma``) integrated exactly; the integrals of the interpolant by Gauss-Legendre quadrature. The first step,
    the step to 0 and a flow step from sigma = 1 are Euler steps (the latter two leave no history). The ancestral
    split (k-diffusion's for VE, the rectified-flow one for flow) wraps each step: to sigma_down, then noise."""
    p, noises = rf.as_param(param), iter(noises)
    x, nfe, draws, previous = np.asarray(x, np.float64), 0, [], None
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        sigma, sigma_next = float(sigma), float(sigma_next)
        denoised = denoise(x, sigma)
        nfe += 1
        down, a, up = p.split(sigma, sigma_next, eta)
        h = p.lam_step(sigma, down) if down > 0 else math.inf
        if previous is None or math.isinf(h):
            x = _euler(x, sigma, denoised, down)
        else:
            old, h_prev = previous
            w_new, w_old = interpolant_weights(h, h_prev)
            x = (down / sigma) * x + p.alpha(down) * (w_new * denoised + w_old * old)
        if up > 0 and s_noise > 0:
            draws.append((sigma, sigma_next))
            x = a * x + s_noise * up * np.asarray(next(noises), np.float64)
        previous = None if math.isinf(h) else (denoised, h)
    return x, nfe, draws


def gradient_estimation_reference(denoise, x, sigmas, *, gamma=2.0):
    """Permenter & Yuan's Algorithm 2 in sigma: ``x <- x + (sigma' - sigma) (gamma d + (1 - gamma) d_prev)``, the
    first step with ``d`` alone, the step to 0 returning D."""
    x, d_prev = np.asarray(x, np.float64), None
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = denoise(x, float(sigma))
        d = (x - denoised) / sigma
        if sigma_next == 0:
            x = denoised
        else:
            slope = d if d_prev is None else gamma * d + (1 - gamma) * d_prev
            x = x + (sigma_next - sigma) * slope
        d_prev = d
    return x


def gmm(param):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    return model, denoise


VE_SIGMAS = ve_ref.karras_sigmas(9, sigma_max=20.0)
FLOW_FROM_ONE = np.append(np.linspace(1.0, 0.06, 9), 0.0)
FLOW_BELOW_ONE = np.linspace(0.97, 0.03, 10)


# ---------------------------------------------------------------------------------------------------------------------
# 1. The float64 references, VE and flow
# ---------------------------------------------------------------------------------------------------------------------

RES_CASES = [
    ("ve", 0.0, 1.0, VE_SIGMAS),
    ("ve", 0.7, 0.8, VE_SIGMAS),
    ("flow", 0.0, 1.0, FLOW_FROM_ONE),
    ("flow", 0.6, 1.3, FLOW_FROM_ONE),
    ("flow", 1.0, 1.0, FLOW_BELOW_ONE),
]


@pytest.mark.parametrize("param, eta, s_noise, sigmas", RES_CASES, ids=[f"{c[0]}-eta{c[1]}" for c in RES_CASES])
def test_res_multistep_matches_the_float64_reference(param, eta, s_noise, sigmas, rng):
    model, denoise = gmm(param)
    x = rng.standard_normal((6, 2))
    noises = rng.standard_normal((len(sigmas), 6, 2))
    calls = []
    sampler = (
        ResMultistepSampler(init_noise="prescaled")
        if eta == 0
        else ResMultistepAncestralSampler(eta, s_noise, init_noise="prescaled")
    )
    start = x * sigmas[0]
    out = sampler(model, Tensor(start.astype(np.float32)), sigmas=sigmas, noise_sampler=queue_sampler(noises, calls))
    ref, nfe, draws = res_reference(denoise, start, sigmas, eta=eta, s_noise=s_noise, noises=noises, param=param)
    assert rel(to_np(out), ref) <= 2e-6
    assert sampler.last_nfe == nfe == len(sigmas) - 1
    assert calls == draws and len(draws) == (0 if eta == 0 else int(np.sum(sigmas[1:] > 0)))


def test_res_multistep_ancestral_with_eta_0_is_res_multistep(rng):
    model, _ = gmm("ve")
    x = Tensor(rng.standard_normal((5, 2)).astype(np.float32))
    a = ResMultistepSampler()(model, x, sigmas=VE_SIGMAS)
    b = ResMultistepAncestralSampler(eta=0.0)(model, x, sigmas=VE_SIGMAS, generator=0)
    np.testing.assert_array_equal(to_np(a), to_np(b))


GE_CASES = [("ve", 2.0, VE_SIGMAS), ("ve", 3.5, VE_SIGMAS), ("flow", 2.0, FLOW_FROM_ONE), ("flow", 1.5, FLOW_BELOW_ONE)]


@pytest.mark.parametrize("param, gamma, sigmas", GE_CASES, ids=[f"{c[0]}-gamma{c[1]}" for c in GE_CASES])
def test_gradient_estimation_matches_the_float64_reference(param, gamma, sigmas, rng):
    model, denoise = gmm(param)
    start = rng.standard_normal((6, 2)) * sigmas[0]
    sampler = GradientEstimationSampler(gamma, init_noise="prescaled")
    out = sampler(model, Tensor(start.astype(np.float32)), sigmas=sigmas)
    assert rel(to_np(out), gradient_estimation_reference(denoise, start, sigmas, gamma=gamma)) <= 2e-6
    assert sampler.last_nfe == len(sigmas) - 1


def test_gradient_estimation_with_gamma_1_is_euler(rng):
    model, _ = gmm("flow")
    x = Tensor(rng.standard_normal((5, 2)).astype(np.float32))
    a = GradientEstimationSampler(ge_gamma=1.0)(model, x, sigmas=FLOW_FROM_ONE)
    b = EulerEDMSampler()(model, x, sigmas=FLOW_FROM_ONE)
    np.testing.assert_allclose(to_np(a), to_np(b), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# 2. ComfyUI's numbers, from its formulas by hand
# ---------------------------------------------------------------------------------------------------------------------


def test_res_weights_are_comfyuis_for_equal_steps_of_log_2():
    """ComfyUI: c2 = -1, phi_1(-ln 2) = 0.5 / ln 2, phi_2(-ln 2) = (1 - 0.5 / ln 2) / ln 2, b2 = phi_2 / c2, b1 = phi_1
    - b2: h b1 = 1 - 1/2 + (ln 2 - 1/2) / ln 2 = 0.778652..., h b2 = -(ln 2 - 1/2) / ln 2 = -0.278652..."""
    w_new, w_old = res_weights(math.log(2.0), math.log(2.0))
    assert w_new == pytest.approx(0.7786524795, abs=1e-10)
    assert w_old == pytest.approx(-0.2786524795, abs=1e-10)
    assert w_new + w_old == pytest.approx(0.5, abs=1e-15)  # 1 - e^-h: a constant D is integrated exactly


def test_res_multistep_two_steps_by_hand():
    """VE, D = x / 2, sigmas 4 -> 2 -> 1, x_0 = 4: step 1 is Euler
    to 2: x = 4 + (2 - 4) (4 - 2) / 4 = 3 (D_0 = 2); step 2 (h = ln 2, c2 = -1): D_1 = 1.5, x = x / 2 + 0.778652 *
    1.5 - 0.278652 * 2 = 1.5 + 1.167979 - 0.557305 = 2.110674."""

    def half(x, sigma, cond=None):
        return x * 0.5

    out = ResMultistepSampler(init_noise="prescaled")(half, Tensor(np.array([[4.0]], np.float32)), sigmas=[4, 2, 1])
    assert float(to_np(out)[0, 0]) == pytest.approx(1.5 + 0.7786524795 * 1.5 - 0.2786524795 * 2.0, abs=2e-6)


# ---------------------------------------------------------------------------------------------------------------------
# 3. Convergence order on the exact Gaussian ODE
# ---------------------------------------------------------------------------------------------------------------------

# VE: geomspace(20, 0.05) (uniform in lambda), no final jump to 0; flow: 0.98 -> 0.02 uniform in lambda. Fitted slopes:
# RES -2.00 (VE), -2.02 (flow) over 16-128 steps (-1.67 / -1.66 from 8 to 16); gradient estimation with gamma 2 -0.93 /
# -0.97 over 32-256 steps (the local slopes still rising to -0.97 / -0.99: first order, with a large error constant);
# gamma 1.5 is second-order Adams-Bashforth (the steps' ratio tends to 1): -1.99 / -2.22 over 16-128 steps (flow: local
# slopes falling from -2.3 to -2.14 towards 2).
ORDERS = [
    ("res", "ve", {}, [16, 32, 64, 128], (-2.1, -1.9)),
    ("res", "flow", {}, [16, 32, 64, 128], (-2.1, -1.9)),
    ("ge", "ve", {}, [32, 64, 128, 256], (-1.1, -0.9)),
    ("ge", "flow", {}, [32, 64, 128, 256], (-1.1, -0.9)),
    ("ge", "ve", dict(ge_gamma=1.5), [16, 32, 64, 128], (-2.3, -1.9)),
    ("ge", "flow", dict(ge_gamma=1.5), [16, 32, 64, 128], (-2.3, -1.9)),
]


def order_schedule(param, n):
    if param == "ve":
        return np.geomspace(20.0, 0.05, n + 1)
    lam = np.linspace(math.log(0.02 / 0.98), math.log(0.98 / 0.02), n + 1)
    return 1.0 / (1.0 + np.exp(lam))


@pytest.mark.parametrize("name, param, params, steps, bounds", ORDERS, ids=[f"{o[0]}-{o[1]}-{o[2]}" for o in ORDERS])
def test_convergence_order_on_the_gaussian_ode(name, param, params, steps, bounds):
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    cls = ResMultistepSampler if name == "res" else GradientEstimationSampler
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    errors = []
    for n in steps:
        sigmas = order_schedule(param, n)
        exact = model.exact_solution(x.astype(np.float64) * sigmas[0], sigmas[0], sigmas[-1])
        out = cls(**params, init_noise="edm")(model, Tensor(x), sigmas=sigmas)
        errors.append(rel(to_np(out), exact))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 2e-5  # truncation error, well above float32 rounding
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"


def test_res_multistep_ancestral_samples_the_data_variance():
    """Data N(0, 0.5^2), 20000 samples, EDM's schedule: the sample std is 0.504 at 64 steps (0.519 at 48, 0.82 at 12:
    discretization; the standard error is 0.0025)."""
    sampler = ResMultistepAncestralSampler(num_steps=64)
    out = to_np(sampler(GaussianDenoiser(SIGMA_DATA), randn((20000, 1), generator=0), generator=1))
    assert abs(out.std() / SIGMA_DATA - 1) < 0.02, out.std()


# ---------------------------------------------------------------------------------------------------------------------
# 4. graph_loop=True equals the step-by-step call on a real network
# ---------------------------------------------------------------------------------------------------------------------

GRAPH = [
    ("ve", ResMultistepAncestralSampler, dict(eta=0.8, s_noise=0.9)),
    ("flow", ResMultistepSampler, {}),
    ("flow", GradientEstimationSampler, dict(ge_gamma=2.5)),
]


@pytest.mark.parametrize("param, cls, params", GRAPH, ids=[f"{g[0]}-{g[1].__name__}" for g in GRAPH])
def test_graph_loop_equals_step_by_step(param, cls, params):
    got, expected, nfe, _ = compiled_and_eager(cls, param, 6, **params)
    assert nfe == 6
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# 5. Names, configs, parameters
# ---------------------------------------------------------------------------------------------------------------------


def test_short_names_and_shipped_configs():
    assert resolve("res_multistep") is ResMultistepSampler
    assert resolve("res_multistep_ancestral") is ResMultistepAncestralSampler
    assert resolve("gradient_estimation") is GradientEstimationSampler
    assert load_sampler("res_multistep.yaml").num_steps == 20
    assert load_sampler("res_multistep_ancestral.yaml").eta == 1.0
    assert load_sampler("gradient_estimation.yaml").ge_gamma == 2.0


@pytest.mark.parametrize(
    "cls, kwargs, error, match",
    [
        (ResMultistepAncestralSampler, dict(eta=-0.1), ValueError, r"eta must be >= 0"),
        (ResMultistepAncestralSampler, dict(s_noise=float("nan")), ValueError, r"s_noise must be a finite"),
        (ResMultistepSampler, dict(eta=0.5), TypeError, r"ResMultistepSampler: .*eta"),
        (GradientEstimationSampler, dict(ge_gamma=-1.0), ValueError, r"ge_gamma must be >= 0"),
        (GradientEstimationSampler, dict(ge_gamma="2"), TypeError, r"ge_gamma must be a real number"),
        (GradientEstimationSampler, dict(gamma=2.0), TypeError, r"GradientEstimationSampler: .*ge_gamma"),
    ],
)
def test_bad_parameters_are_refused_by_name(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_repr_and_callers_x_untouched(rng):
    sampler = ResMultistepAncestralSampler(0.5, 0.7, num_steps=4)
    expected = "ResMultistepAncestralSampler(eta=0.5, s_noise=0.7, num_steps=4 (default), init_noise='sgm')"
    assert repr(sampler) == expected
    x_np = rng.standard_normal((3, 2)).astype(np.float32)
    x = Tensor(x_np)
    out = sampler(GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS), x, generator=0)
    assert out is not x and sampler.last_nfe == 4
    np.testing.assert_array_equal(x.asnumpy(), x_np)
