"""Every sampler on flow-matching models (``x = (1 - sigma) x0 + sigma eps``) against independent float64 references.

The references (tests/reference_flow.py) are written from the flow update equations (alpha = 1 - sigma, lambda =
log(alpha / sigma)), not from the library's code; with alpha forced to 1 they reproduce the VE references of
tests/reference.py and tests/reference_sde.py, which section 0 checks. The exact models are the built-in flow
Gaussian (closed-form ODE solution) and Gaussian mixture.
"""

import functools
import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
import reference_sde as ve_sde
from conftest import to_np
from numerics import MEANS, SIGMA_DATA, STDS, WEIGHTS

from mindspore import Tensor

from edm_sampler import (
    DPM2AncestralSampler,
    DPM2Sampler,
    DPMPP2MSampler,
    DPMPP2MSDESampler,
    DPMPP2SAncestralSampler,
    DPMPP3MSDESampler,
    DPMPPSDESampler,
    EulerAncestralSampler,
    EulerEDMSampler,
    HeunEDMSampler,
    LCMSampler,
    LinearMultistepSampler,
    as_denoiser,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser

euler_reference = functools.partial(rf.edm_reference, heun=False)
heun_reference = functools.partial(rf.edm_reference, heun=True)

SAMPLERS = {
    "euler": (EulerEDMSampler, euler_reference),
    "heun": (HeunEDMSampler, heun_reference),
    "euler_a": (EulerAncestralSampler, rf.euler_ancestral_reference),
    "dpmpp_2s_a": (DPMPP2SAncestralSampler, rf.dpmpp_2s_ancestral_reference),
    "dpm_2": (DPM2Sampler, rf.dpm2_reference),
    "dpm_2_a": (DPM2AncestralSampler, rf.dpm2_ancestral_reference),
    "dpmpp_2m": (DPMPP2MSampler, rf.dpmpp_2m_reference),
    "lms": (LinearMultistepSampler, rf.lms_reference),
    "lcm": (LCMSampler, rf.lcm_reference),
    "dpmpp_sde": (DPMPPSDESampler, rf.dpmpp_sde_reference),
    "dpmpp_2m_sde": (DPMPP2MSDESampler, rf.dpmpp_2m_sde_reference),
    "dpmpp_3m_sde": (DPMPP3MSDESampler, rf.dpmpp_3m_sde_reference),
}
BROWNIAN = {"dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde"}  # default noise: increments of one Brownian path W(sigma)


def flow_mixture():
    return GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization="flow")


def flow_gaussian():
    return GaussianDenoiser(SIGMA_DATA, parametrization="flow")


def rel_err(out, ref):
    return np.abs(np.asarray(out, np.float64) - ref).max() / np.abs(ref).max()


def flow_linear(n, end=0.02, start=1.0):
    """``n`` steps: n evenly spaced sigmas from ``start`` to ``end``, then 0."""
    return np.append(np.linspace(start, end, n), 0.0)


# ---------------------------------------------------------------------------------------------------------------------
# 0. The flow references reduce to the VE references when alpha = 1
# ---------------------------------------------------------------------------------------------------------------------

VE_PAIRS = [
    ("euler", euler_reference, ve_ref.edm_reference, dict(s_churn=5.0, s_tmin=0.5, s_tmax=20.0, s_noise=1.003)),
    ("heun", heun_reference, ve_ref.edm_reference, dict(s_churn=5.0, s_noise=1.003)),
    ("euler_a", rf.euler_ancestral_reference, ve_ref.euler_ancestral_reference, dict(eta=0.6, s_noise=0.9)),
    ("dpmpp_2s_a", rf.dpmpp_2s_ancestral_reference, ve_ref.dpmpp_2s_ancestral_reference, dict(eta=1.5)),
    ("dpmpp_2m", rf.dpmpp_2m_reference, ve_ref.dpmpp_2m_reference, {}),
    ("dpm_2", rf.dpm2_reference, ve_sde.dpm2_reference, dict(s_churn=5.0, s_noise=1.003)),
    ("dpm_2_a", rf.dpm2_ancestral_reference, ve_sde.dpm2_ancestral_reference, dict(eta=0.6, s_noise=0.9)),
    ("dpmpp_sde", rf.dpmpp_sde_reference, ve_sde.dpmpp_sde_reference, dict(eta=0.7, r=0.4)),
    ("dpmpp_2m_sde", rf.dpmpp_2m_sde_reference, ve_sde.dpmpp_2m_sde_reference, dict(eta=0.7)),
    ("dpmpp_2m_sde_h", rf.dpmpp_2m_sde_reference, ve_sde.dpmpp_2m_sde_reference, dict(eta=0.7, solver_type="heun")),
    ("dpmpp_3m_sde", rf.dpmpp_3m_sde_reference, ve_sde.dpmpp_3m_sde_reference, dict(eta=0.7, s_noise=0.9)),
]


@pytest.mark.parametrize("name, flow_ref, ve_reference, params", VE_PAIRS, ids=[p[0] for p in VE_PAIRS])
def test_flow_references_with_alpha_one_are_the_ve_references(name, flow_ref, ve_reference, params, rng):
    sigmas = ve_ref.karras_sigmas(7)
    x = rng.standard_normal((5, 2)) * 80.0
    noises = [rng.standard_normal((5, 2)) for _ in range(20)]
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS)
    out, nfe, draws = flow_ref(denoise, x, sigmas, **params, noises=noises, param="ve")
    if ve_reference is ve_ref.edm_reference:  # takes unit noise (scaled by sqrt(1 + sigma_0^2)), returns a draw count
        heun = flow_ref is heun_reference
        expected, expected_nfe, count = ve_reference(
            denoise, x / math.sqrt(1 + sigmas[0] ** 2), sigmas, heun=heun, **params, noises=noises
        )
        assert len(draws) == count
    else:
        expected, expected_nfe, expected_draws = ve_reference(denoise, x, sigmas, **params, noises=noises)
        np.testing.assert_allclose(np.reshape(draws, (-1, 2)), np.reshape(expected_draws, (-1, 2)), rtol=1e-12)
    assert rel_err(out, expected) <= 1e-12
    assert nfe == expected_nfe


# ---------------------------------------------------------------------------------------------------------------------
# 1. Parity with the float64 references on identical injected noise
# ---------------------------------------------------------------------------------------------------------------------

CHURN = dict(s_churn=5.0, s_noise=1.003)
PARITY = [
    ("euler", CHURN),
    ("euler", dict(CHURN, s_tmin=0.1, s_tmax=0.7)),
    ("heun", CHURN),
    ("heun", dict(CHURN, s_tmin=0.1, s_tmax=0.7)),
    ("euler_a", dict(eta=0.6, s_noise=0.9)),
    ("euler_a", dict(eta=1.0, s_noise=0.9)),
    ("dpmpp_2s_a", dict(eta=0.6, s_noise=0.9)),
    ("dpmpp_2s_a", dict(eta=1.0, s_noise=0.9)),
    ("dpm_2_a", dict(eta=0.6, s_noise=0.9)),
    ("dpm_2_a", dict(eta=1.0, s_noise=0.9)),
    ("dpm_2", CHURN),
    ("dpmpp_2m", {}),
    ("lms", dict(order=3)),
    ("lcm", {}),
    ("dpmpp_sde", dict(eta=0.7, r=0.4)),
    ("dpmpp_2m_sde", dict(eta=0.7)),
    ("dpmpp_2m_sde", dict(eta=0.7, solver_type="heun")),
    ("dpmpp_3m_sde", dict(eta=0.7, s_noise=0.9)),
]
SCHEDULES = {
    "from_1": flow_linear(8),  # the first step leaves alpha = 0: Euler / DDIM-type first steps, no lambda history
    "from_0.8": flow_linear(8, start=0.8),  # every step is a regular one
    "coarse": np.array([1.0, 0.3, 0.05, 0.0]),  # large steps: with eta = 1, sigma_down = 0.09 on 1 -> 0.3
    "positive_end": np.array([0.9, 0.6, 0.3, 0.1, 0.03]),  # no final jump to 0
}


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("name, params", PARITY, ids=[f"{n}-{p}" for n, p in PARITY])
def test_matches_float64_reference_with_injected_noise(name, params, schedule, rng):
    """Default init_noise (the start is sigma_0 * x), explicit sigmas, injected noise: same result, NFE, noise calls,
    and the callback sees the reference's states, denoised estimates and noise levels."""
    sigmas = SCHEDULES[schedule]
    n = len(sigmas) - 1
    x = rng.standard_normal((6, 2)).astype(np.float32)
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(3 * n)]
    calls, infos = [], []

    def noise_sampler(sigma, sigma_next):
        calls.append((sigma, sigma_next))
        return Tensor(noises[len(calls) - 1])

    cls, reference = SAMPLERS[name]
    sampler = cls(**params)
    out = to_np(sampler(flow_mixture(), Tensor(x), noise_sampler=noise_sampler, callback=infos.append, sigmas=sigmas))
    trace = []
    denoise = rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    ref, nfe, draws = reference(denoise, x.astype(np.float64) * sigmas[0], sigmas, **params, noises=noises, trace=trace)
    err = rel_err(out, ref)
    assert err <= 1e-5, f"max |out - ref| / max |ref| = {err:.3g}"
    assert sampler.last_nfe == nfe
    assert len(calls) == len(draws)  # noise drawn exactly where the reference draws it, at the same pairs, in order
    if draws:
        np.testing.assert_allclose(np.reshape(calls, (-1, 2)), np.reshape(draws, (-1, 2)), rtol=1e-6)
    assert [info["i"] for info in infos] == list(range(n))
    for info, step in zip(infos, trace):
        assert info["sigma"] == pytest.approx(step["sigma"], rel=1e-6)
        assert info["sigma_hat"] == pytest.approx(step["sigma_hat"], rel=1e-6)
        assert rel_err(to_np(info["x"]), step["x"]) <= 1e-5
        # D at the reported state and level (against the reference's D only through x: the mixture's D amplifies the
        # float32 rounding of x by its responsibilities' slope, up to ~1.4e-5 relative here)
        expected = denoise(to_np(info["x"]).astype(np.float64), step["sigma_hat"])
        assert rel_err(to_np(info["denoised"]), expected) <= 1e-5
        assert rel_err(to_np(info["denoised"]), step["denoised"]) <= 1e-4


# eta > 1 puts sigma_down at 0 on a step that does not end the schedule (coarse: 1 -> 0.3 has sigma_down =
# 0.3 (1 - 0.7 * 1.5) < 0 -> 0): the deterministic part lands on D, then noise brings it back to sigma_next.
EXTREME = [
    ("euler_a", dict(eta=1.5)),
    ("dpmpp_2s_a", dict(eta=1.5)),
    ("dpm_2_a", dict(eta=1.5)),
    ("dpmpp_sde", dict(eta=1.5)),
    ("heun", dict(s_churn=80.0)),  # gamma capped at sqrt(2) - 1
    ("dpm_2", dict(s_churn=80.0, s_noise=0.0)),  # churned levels, no noise added
    ("dpmpp_sde", dict(eta=0.0)),
    ("dpmpp_2m_sde", dict(eta=0.0, solver_type="heun")),
    ("dpmpp_3m_sde", dict(eta=0.0)),
]


@pytest.mark.parametrize("name, params", EXTREME, ids=[f"{n}-{p}" for n, p in EXTREME])
def test_matches_reference_at_extreme_settings(name, params, rng):
    sigmas = SCHEDULES["coarse"]
    x = rng.standard_normal((5, 2)).astype(np.float32)
    noises = [rng.standard_normal((5, 2)).astype(np.float32) for _ in range(9)]
    calls = []

    def noise_sampler(sigma, sigma_next):
        calls.append((sigma, sigma_next))
        return Tensor(noises[len(calls) - 1])

    cls, reference = SAMPLERS[name]
    sampler = cls(**params)
    out = to_np(sampler(flow_mixture(), Tensor(x), noise_sampler=noise_sampler, sigmas=sigmas))
    denoise = rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    ref, nfe, draws = reference(denoise, x.astype(np.float64), sigmas, **params, noises=noises)
    assert rel_err(out, ref) <= 1e-5
    assert sampler.last_nfe == nfe
    assert len(calls) == len(draws)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_single_step_from_pure_noise_returns_the_mixture_mean(name, rng):
    """From sigma = 1 to 0 every sampler returns D(x, 1), which for a flow model is the data mean whatever x is:
    one evaluation, no noise."""

    def no_noise(sigma, sigma_next):
        raise AssertionError(f"noise drawn on the step {sigma} -> {sigma_next}")

    cls, _ = SAMPLERS[name]
    sampler = cls(s_churn=5.0) if name in ("euler", "heun", "dpm_2") else cls()
    x = rng.standard_normal((4, 2)).astype(np.float32)
    out = to_np(sampler(flow_mixture(), Tensor(x), noise_sampler=no_noise, sigmas=[1.0, 0.0]))
    mean = np.asarray(WEIGHTS) @ np.asarray(MEANS)
    np.testing.assert_allclose(out, np.broadcast_to(mean, out.shape), rtol=0, atol=2e-6)
    assert sampler.last_nfe == 1


# ---------------------------------------------------------------------------------------------------------------------
# 2. Orders of accuracy on the exact flow Gaussian ODE from sigma = 1
# ---------------------------------------------------------------------------------------------------------------------

# The schedule is linspace(1, 1e-3, N), no final jump to 0, so the error at sigma = 1e-3 against the closed-form
# solution is pure truncation error (dx/dsigma = x (sigma - alpha sd^2) / v(sigma) is smooth down to 0). Fitted slopes
# measured here (library float32 = float64 reference to 0.01, 16-128 steps): Euler and Euler ancestral (eta 0) -1.01,
# Heun -1.97, DPM-2 and DPM-2 ancestral (eta 0) -2.01, DPM++(2S) ancestral and DPM++ SDE (eta 0) -1.99, DPM++(2M) and
# DPM++(2M) SDE midpoint (eta 0) -2.19, DPM++(2M) SDE heun -2.30, DPM++(3M) SDE (eta 0) -2.68 (local slopes 2.25 ->
# 3.0 up to 256 steps; its first two steps are first order -- from sigma = 1, then with no usable history -- so it is
# asymptotically second order with a small constant, and its error changes sign beyond 1000 steps). LMS(3): its Euler
# and 2-step start-up leave an O(h^2) error of the opposite sign to the O(h^3) one, so the error crosses 0 near 50
# steps; local slopes are 3.3-4.5 over 16-32 steps (fitted -3.78), tending to -2 beyond 100: measured over 16-32.
ORDERS = [
    ("euler", {}, [16, 32, 64, 128], (-1.1, -0.9)),
    ("euler_a", dict(eta=0.0), [16, 32, 64, 128], (-1.1, -0.9)),
    ("heun", {}, [16, 32, 64, 128], (-2.2, -1.9)),
    ("dpm_2", {}, [16, 32, 64, 128], (-2.2, -1.9)),
    ("dpm_2_a", dict(eta=0.0), [16, 32, 64, 128], (-2.2, -1.9)),
    ("dpmpp_2s_a", dict(eta=0.0), [16, 32, 64, 128], (-2.2, -1.9)),
    ("dpmpp_sde", dict(eta=0.0), [16, 32, 64, 128], (-2.2, -1.9)),
    ("dpmpp_2m", {}, [16, 32, 64, 128], (-2.4, -1.9)),
    ("dpmpp_2m_sde", dict(eta=0.0), [16, 32, 64, 128], (-2.4, -1.9)),
    ("dpmpp_2m_sde", dict(eta=0.0, solver_type="heun"), [16, 32, 64, 128], (-2.5, -1.9)),
    ("dpmpp_3m_sde", dict(eta=0.0), [16, 32, 64, 128], (-2.9, -2.5)),
    ("lms", dict(order=3), [16, 20, 24, 28, 32], (-4.2, -3.3)),
]


@pytest.mark.parametrize("name, params, steps, bounds", ORDERS, ids=[f"{o[0]}-{o[1]}" for o in ORDERS])
def test_convergence_order_against_exact_flow_ode(name, params, steps, bounds):
    cls, reference = SAMPLERS[name]
    model = flow_gaussian()
    x = np.random.default_rng(1234).standard_normal((4, 9)).astype(np.float32)  # unit noise: the state at sigma = 1
    errors, ref_errors = [], []
    for n in steps:
        sigmas = np.linspace(1.0, 1e-3, n)
        exact = model.exact_solution(x, 1.0, sigmas[-1])
        errors.append(rel_err(to_np(cls(**params)(model, Tensor(x), sigmas=sigmas)), exact))
        ref, _, _ = reference(rf.flow_gaussian(SIGMA_DATA), x.astype(np.float64), sigmas, **params)
        ref_errors.append(rel_err(ref, exact))
    errors = np.array(errors)
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 2e-5  # well above float32 round-off, so the fit measures truncation error
    assert np.all(np.diff(errors) < 0), errors
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"
    # the errors are the reference's errors: the same discretization, not just the same order
    np.testing.assert_allclose(errors, ref_errors, rtol=0.05)


# ---------------------------------------------------------------------------------------------------------------------
# 3. The stochastic samplers reach the data distribution (flow Gaussian, 64 linear steps from 1 to 0)
# ---------------------------------------------------------------------------------------------------------------------


def chain_std(name, params, sigmas, brownian):
    """Exact std of the discretized chain on flow-Gaussian data, started from unit noise at sigma_0 = 1.

    D is linear, so the result is a linear map of the start and the noises: run the reference on basis vectors. With
    ``brownian``, the noise of a call (sigma, sigma_next) is the normalised increment of one path W over [sigma_next,
    sigma] (DPM++ SDE's two draws in a step overlap): built from independent increments over the elementary intervals
    between all the points the reference queries (found by a first pass)."""
    reference = SAMPLERS[name][1]
    denoise = rf.flow_gaussian(SIGMA_DATA)
    _, _, draws = reference(denoise, np.zeros(1), sigmas, **params, noises=iter(lambda: np.zeros(1), None))
    if brownian:
        points = np.unique(np.ravel(draws))
        basis = np.eye(len(points))  # basis[0]: the start; basis[k]: W's increment over (points[k-1], points[k])
        noises = []
        for sigma, sigma_next in draws:
            inside = (points[1:] <= sigma) & (points[:-1] >= sigma_next)
            weights = np.sqrt(np.diff(points)) * inside
            noises.append(weights @ basis[1:] / math.sqrt(sigma - sigma_next))
    else:
        basis = np.eye(len(draws) + 1)
        noises = list(basis[1:])
    out, _, _ = reference(denoise, basis[0] * sigmas[0], sigmas, **params, noises=noises)
    return float(np.sqrt(np.sum(out**2)))


# tol: the chain's own discretization bias |std - 0.5| / 0.5 at 64 steps (float64 reference, measured): Euler with
# churn 0.091 and Euler ancestral 0.049 (first order in distribution: 0.026 and 0.013 at 256 steps), Heun with churn
# 0.0008, DPM++(2S) ancestral 0.0038, DPM-2 ancestral 0.0030, DPM++ SDE 0.0025 (with its Brownian noise; 0.044 if
# its two draws per step were independent), DPM++(2M) SDE midpoint 0.0105 / heun 0.0159, DPM++(3M) SDE 0.0021; the
# tolerances leave ~20% margin on the measured bias (Heun: 0.002 on 0.0008).
DISTRIBUTION = [
    ("euler", dict(s_churn=20.0), 0.11),
    ("heun", dict(s_churn=20.0), 0.002),
    ("euler_a", dict(eta=1.0), 0.06),
    ("dpmpp_2s_a", dict(eta=1.0), 0.005),
    ("dpm_2_a", dict(eta=1.0), 0.004),
    ("dpmpp_sde", dict(eta=1.0), 0.003),
    ("dpmpp_2m_sde", dict(eta=1.0), 0.013),
    ("dpmpp_2m_sde", dict(eta=1.0, solver_type="heun"), 0.019),
    ("dpmpp_3m_sde", dict(eta=1.0), 0.003),
]


@pytest.mark.parametrize("name, params, tol", DISTRIBUTION, ids=[f"{d[0]}-{d[1]}" for d in DISTRIBUTION])
def test_stochastic_samples_have_the_data_std(name, params, tol):
    sigmas = np.linspace(1.0, 0.0, 65)
    x = np.random.default_rng(5).standard_normal((4096, 8)).astype(np.float32)
    out = to_np(SAMPLERS[name][0](**params)(flow_gaussian(), Tensor(x), sigmas=sigmas, generator=6))
    count = out.size
    predicted = chain_std(name, params, sigmas, brownian=name in BROWNIAN)
    assert abs(predicted - SIGMA_DATA) <= tol * SIGMA_DATA  # the discretization bias of the chain itself
    std_error = predicted / math.sqrt(2 * count)  # 0.002 for 32768 values
    assert abs(out.std() - predicted) <= 4 * std_error, (out.std(), predicted)
    assert abs(out.mean()) <= 4 * SIGMA_DATA / math.sqrt(count)
    assert abs(out.std() - SIGMA_DATA) <= tol * SIGMA_DATA + 4 * std_error


# ---------------------------------------------------------------------------------------------------------------------
# 4. Call contract: plain flow callables, range checks, initial noise, img2img
# ---------------------------------------------------------------------------------------------------------------------


def plain_flow_gaussian(x, sigma, cond):
    """The flow Gaussian's posterior mean written as a plain function of MindSpore tensors."""
    alpha = (1.0 - sigma).reshape((-1,) + (1,) * (x.ndim - 1))
    s2 = (sigma**2).reshape(alpha.shape)
    return x * (alpha * SIGMA_DATA**2 / (alpha**2 * SIGMA_DATA**2 + s2))


def test_plain_function_declared_flow(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    sigmas = flow_linear(6)
    den = as_denoiser(plain_flow_gaussian, parametrization="flow")
    out = to_np(DPMPP2MSampler()(den, Tensor(x), sigmas=sigmas))
    ref, _, _ = rf.dpmpp_2m_reference(rf.flow_gaussian(SIGMA_DATA), x.astype(np.float64), sigmas)
    assert rel_err(out, ref) <= 1e-5
    np.testing.assert_allclose(out, to_np(DPMPP2MSampler()(flow_gaussian(), Tensor(x), sigmas=sigmas)), rtol=1e-6)
    # undeclared, a plain function is a VE denoiser: the default start is then sqrt(1 + sigma_0^2) x = sqrt(2) x
    seen = []
    EulerEDMSampler()(lambda x, s, c: seen.append(to_np(x)) or x * 0.0, Tensor(x), sigmas=[1.0, 0.0])
    np.testing.assert_allclose(seen[0], x * math.sqrt(2.0), rtol=1e-6)


class CountingFlowModel:
    parametrization = "flow"

    def __init__(self):
        self.calls = 0

    def __call__(self, x, sigma, cond=None):
        self.calls += 1
        return x * 0.5


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_flow_model_with_a_ve_schedule_is_refused_before_any_call(name):
    model = CountingFlowModel()
    x = Tensor(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"sigma=80(?![\d.]).*flow"):
        SAMPLERS[name][0](num_steps=4)(model, x, generator=0)  # the default EDMDiscretization: sigma_max = 80
    with pytest.raises(ValueError, match=r"sigma=1\.5(?!\d).*flow"):
        SAMPLERS[name][0]()(model, x, sigmas=[1.5, 0.5, 0.0], generator=0)
    with pytest.raises(ValueError, match=r"sigma=1\.5(?!\d).*flow"):
        SAMPLERS[name][0]().img2img(model, x, sigmas=[1.5, 0.5, 0.0], generator=0)
    assert model.calls == 0


def test_plain_callable_declared_flow_is_refused_a_ve_schedule():
    calls = []
    den = as_denoiser(lambda x, sigma, cond: calls.append(1) or x, parametrization="flow")
    with pytest.raises(ValueError, match=r"sigma=80(?![\d.]).*flow"):
        HeunEDMSampler(num_steps=3)(den, Tensor(np.ones((2, 2), np.float32)))
    assert not calls


def test_unknown_parametrization_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"banana") as info:
        as_denoiser(lambda x, sigma, cond: x, parametrization="banana")
    assert "'ve'" in str(info.value) and "'flow'" in str(info.value)


@pytest.mark.parametrize("init_noise, scaled", [("sgm", True), ("edm", True), ("prescaled", False)])
def test_initial_noise_scaling_for_flow(init_noise, scaled, rng):
    x = rng.standard_normal((3, 2)).astype(np.float32)
    infos = []
    sampler = EulerEDMSampler(init_noise=init_noise)
    sampler(flow_mixture(), Tensor(x), sigmas=[0.8, 0.4, 0.0], callback=infos.append)
    expected = x.astype(np.float64) * (0.8 if scaled else 1.0)
    np.testing.assert_allclose(to_np(infos[0]["x"]), expected, rtol=1e-6)
    # from sigma = 1 the default start is the unit noise itself
    infos.clear()
    sampler(flow_mixture(), Tensor(x), sigmas=[1.0, 0.4, 0.0], callback=infos.append)
    np.testing.assert_array_equal(to_np(infos[0]["x"]), x)


def test_img2img_flow_start_and_result(rng):
    image = rng.standard_normal((4, 2)).astype(np.float32)
    z = rng.standard_normal((4, 2)).astype(np.float32)
    sigmas = [0.6, 0.3, 0.1, 0.0]
    infos = []
    sampler = HeunEDMSampler()
    out = to_np(sampler.img2img(flow_mixture(), Tensor(image), noise=Tensor(z), sigmas=sigmas, callback=infos.append))
    start = 0.4 * image.astype(np.float64) + 0.6 * z.astype(np.float64)
    np.testing.assert_allclose(to_np(infos[0]["x"]), start, rtol=1e-6, atol=1e-6)
    ref, nfe, _ = heun_reference(rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS), start, np.array(sigmas))
    assert rel_err(out, ref) <= 1e-5
    assert sampler.last_nfe == nfe


def test_img2img_discretization_wrapper_on_a_flow_schedule(rng):
    """sgm's Img2ImgDiscretizationWrapper prunes a flow schedule; img2img starts at the first kept sigma (< 1)."""
    from edm_sampler import FlowMatchDiscretization, Img2ImgDiscretizationWrapper

    schedule = FlowMatchDiscretization(shift=3.0)
    wrapper = Img2ImgDiscretizationWrapper(schedule, strength=0.5)
    kept = wrapper(10)
    np.testing.assert_array_equal(kept, schedule(10)[-len(kept) :])
    assert len(kept) == 5 and 0.0 < kept[0] < 1.0
    image = rng.standard_normal((4, 2)).astype(np.float32)
    z = rng.standard_normal((4, 2)).astype(np.float32)
    infos = []
    sampler = HeunEDMSampler(discretization_config=wrapper, num_steps=10)
    out = to_np(sampler.img2img(flow_mixture(), Tensor(image), noise=Tensor(z), callback=infos.append))
    start = (1.0 - kept[0]) * image.astype(np.float64) + kept[0] * z.astype(np.float64)
    np.testing.assert_allclose(to_np(infos[0]["x"]), start, rtol=1e-6, atol=1e-6)
    ref, nfe, _ = heun_reference(rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS), start, np.asarray(kept))
    assert rel_err(out, ref) <= 1e-5 and sampler.last_nfe == nfe == 2 * (len(kept) - 1) - 1


# ---------------------------------------------------------------------------------------------------------------------
# 5. The caller's x is not modified
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("init_noise", ["sgm", "prescaled"])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_callers_x_is_not_modified(name, init_noise, rng):
    x_np = rng.standard_normal((3, 2)).astype(np.float32)
    x = Tensor(x_np)
    cls = SAMPLERS[name][0]
    sampler = (
        cls(s_churn=5.0, init_noise=init_noise) if name in ("euler", "heun", "dpm_2") else cls(init_noise=init_noise)
    )
    out = sampler(flow_mixture(), x, sigmas=flow_linear(4), generator=0)
    assert out is not x
    np.testing.assert_array_equal(x.asnumpy(), x_np)
    image = Tensor(x_np.copy())
    sampler.img2img(flow_mixture(), image, sigmas=flow_linear(3, start=0.7), generator=0)
    np.testing.assert_array_equal(image.asnumpy(), x_np)
