"""Ancestral Euler, DPM++(2S) ancestral, DPM++(2M) and LMS against independent float64 references and exact numbers.

The references (tests/reference.py) are written from the published update equations; the exact model is the ideal
denoiser of N(0, 0.5^2) data, whose probability-flow ODE has a closed-form solution, or of a Gaussian mixture.
"""

import math
import warnings

import numpy as np
import pytest
from conftest import to_np
from numerics import MEANS, SIGMA_DATA, STDS, WEIGHTS
from reference import (
    ancestral_step,
    dpmpp_2m_reference,
    dpmpp_2s_ancestral_reference,
    euler_ancestral_reference,
    gmm_denoiser,
    karras_sigmas,
    lms_coefficients_reference,
    lms_reference,
)

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    DPMPP2MSampler,
    DPMPP2SAncestralSampler,
    EulerAncestralSampler,
    EulerEDMSampler,
    LinearMultistepSampler,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser
from edm_sampler.samplers.ancestral import get_ancestral_step
from edm_sampler.samplers.multistep import lms_coefficients

SIGMA_MAX = 80.0

SAMPLERS = {
    "euler_a": (EulerAncestralSampler, euler_ancestral_reference),
    "dpmpp_2s_a": (DPMPP2SAncestralSampler, dpmpp_2s_ancestral_reference),
    "dpmpp_2m": (DPMPP2MSampler, dpmpp_2m_reference),
    "lms": (LinearMultistepSampler, lms_reference),
}
ALL_FOUR = [("euler_a", {}), ("dpmpp_2s_a", {}), ("dpmpp_2m", {}), ("lms", {})]


def numpy_gaussian(x, sigma):
    return x * SIGMA_DATA**2 / (sigma**2 + SIGMA_DATA**2)


def make_sampler(name, params, n, **kwargs):
    return SAMPLERS[name][0](**params, num_steps=n, init_noise="prescaled", **kwargs)


def rel_err(out, ref):
    return np.abs(np.asarray(out, np.float64) - ref).max() / np.abs(ref).max()


# ---------------------------------------------------------------------------------------------------------------------
# 1. Parity with the float64 references on identical injected noise
# ---------------------------------------------------------------------------------------------------------------------

PARITY = [
    ("euler_a", dict(eta=1.0)),
    ("euler_a", dict(eta=0.5, s_noise=1.003)),
    ("euler_a", dict(eta=0.0)),
    ("euler_a", dict(eta=1.5)),  # sigma_up capped at sigma_next: sigma_down = 0, x -> D + sigma_next * noise
    ("dpmpp_2s_a", dict(eta=1.0)),
    ("dpmpp_2s_a", dict(eta=0.5, s_noise=1.003)),
    ("dpmpp_2s_a", dict(eta=0.0)),
    ("dpmpp_2s_a", dict(eta=1.5)),  # sigma_down = 0 on every step: Euler to 0, no second evaluation
    ("dpmpp_2m", {}),
    ("lms", dict(order=1)),
    ("lms", dict(order=2)),
    ("lms", dict(order=4)),
    ("lms", dict(order=6)),  # more than the steps taken: cur_order = i + 1 throughout
]
MODELS = {
    "gaussian": (lambda: GaussianDenoiser(SIGMA_DATA), lambda: numpy_gaussian, (3, 2, 2)),
    "mixture": (
        lambda: GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS),
        lambda: gmm_denoiser(MEANS, STDS, WEIGHTS),
        (6, 2),
    ),
}


# n >= 3, so the first step ends at sigma >= 2.5. A float32 Euler-type step from sigma = 80 straight to (nearly) 0
# computes x + (sigma_down - sigma) (x - D) / sigma, cancelling x against x - D, and keeps only ~eps32 * |x| of absolute
# accuracy in a result 100x smaller than x; test_single_step_to_zero_lands_on_denoised covers that regime.
@pytest.mark.parametrize("n", [3, 5, 12])
@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("name, params", PARITY, ids=[f"{n}-{p}" for n, p in PARITY])
def test_matches_float64_reference_with_injected_noise(name, params, model_name, n, rng):
    make_model, make_numpy_model, shape = MODELS[model_name]
    x = (rng.standard_normal(shape) * SIGMA_MAX).astype(np.float32)
    noises = [rng.standard_normal(shape).astype(np.float32) for _ in range(2 * n)]
    calls, infos = [], []

    def noise_sampler(sigma, sigma_next):
        calls.append((sigma, sigma_next))
        return Tensor(noises[len(calls) - 1])

    sampler = make_sampler(name, params, n)
    out = to_np(sampler(make_model(), Tensor(x), noise_sampler=noise_sampler, callback=infos.append))
    sigmas = karras_sigmas(n)
    trace = []
    ref, nfe, draws = SAMPLERS[name][1](
        make_numpy_model(), x.astype(np.float64), sigmas, **params, noises=noises, trace=trace
    )
    err = rel_err(out, ref)
    assert err <= 1e-5, f"max |out - ref| / max |ref| = {err:.3g}"
    assert sampler.last_nfe == nfe
    # noise is drawn exactly where the reference draws it: same count, same (sigma, sigma_next) pairs, same order
    assert len(calls) == len(draws)
    np.testing.assert_allclose(np.reshape(calls, (-1, 2)), np.reshape(draws, (-1, 2)), rtol=1e-6)
    # the callback sees the state before each step and D at that state
    assert [info["i"] for info in infos] == list(range(n))
    for info, step in zip(infos, trace):
        assert set(info) == {"x", "i", "sigma", "sigma_hat", "denoised"}
        assert info["sigma"] == pytest.approx(step["sigma"], rel=1e-6)
        assert info["sigma_hat"] == pytest.approx(step["sigma"], rel=1e-6)
        assert rel_err(to_np(info["x"]), step["x"]) <= 1e-5
        assert rel_err(to_np(info["denoised"]), step["denoised"]) <= 1e-5


# ---------------------------------------------------------------------------------------------------------------------
# 2. Orders of accuracy on the exact Gaussian probability-flow ODE
# ---------------------------------------------------------------------------------------------------------------------


def exact_ode_errors(name, params, steps, x_unit):
    """Relative error at sigma = 0 against the closed-form ODE solution, for each step count."""
    model = GaussianDenoiser(SIGMA_DATA)
    x = x_unit * SIGMA_MAX
    exact = model.exact_solution(x, SIGMA_MAX, 0.0)
    errors = []
    for n in steps:
        out = make_sampler(name, params, n)(model, Tensor(x), generator=0)
        errors.append(rel_err(to_np(out), exact))
    return np.array(errors)


# Measured with the float64 references over the same step counts: Euler (eta = 0) -0.99, DPM-Solver++(2S) -1.99,
# DPM++(2M) -2.12 (local slopes 2.26 -> 2.07), LMS(2) -1.92, LMS(4) -3.56 (local slopes 3.13 -> 3.80: the order-1
# and order-2 start-up steps happen at sigma ~ 80, where the solution is almost linear in sigma).
ORDERS = [
    ("euler_a", dict(eta=0.0), [16, 32, 64, 128], (-1.1, -0.9)),
    ("dpmpp_2s_a", dict(eta=0.0), [16, 32, 64, 128], (-2.2, -1.8)),
    ("dpmpp_2m", {}, [32, 48, 64, 96, 128], (-2.3, -1.8)),
    ("lms", dict(order=2), [32, 48, 64, 96, 128], (-2.2, -1.75)),
    ("lms", dict(order=4), [32, 48, 64, 96, 128], (-4.2, -3.0)),
]


@pytest.mark.parametrize("name, params, steps, bounds", ORDERS, ids=[f"{o[0]}-{o[1]}" for o in ORDERS])
def test_convergence_order_against_exact_ode_solution(name, params, steps, bounds, rng):
    x_unit = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    steps = np.array(steps)
    errors = exact_ode_errors(name, params, steps, x_unit)
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 2e-5  # well above float32 round-off, so the fit measures truncation error
    assert np.all(np.diff(errors) < 0), errors
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"
    # and the errors are the reference's errors (the same discretization, not just the same order)
    exact = GaussianDenoiser(SIGMA_DATA).exact_solution(x_unit * SIGMA_MAX, SIGMA_MAX, 0.0)
    ref, _, _ = SAMPLERS[name][1](
        numpy_gaussian, x_unit.astype(np.float64) * SIGMA_MAX, karras_sigmas(steps[-1]), **params
    )
    assert errors[-1] == pytest.approx(rel_err(ref, exact), rel=0.05)


@pytest.mark.parametrize(
    "name, params",
    [
        ("euler_a", dict(eta=1.0)),
        ("euler_a", dict(eta=0.0)),
        ("dpmpp_2s_a", dict(eta=1.0)),
        ("dpmpp_2s_a", dict(eta=0.0)),
    ]
    + [("dpmpp_2m", {}), ("lms", dict(order=4))],
)
def test_single_step_to_zero_lands_on_denoised(name, params, rng):
    """One step from 80 to 0: one evaluation, no noise (sigma_up = 0), and the result is D(x, 80).

    DPM++(2M) and the ancestral samplers return D exactly; LMS computes x + (0 - sigma) (x - D) / sigma, which equals
    D up to the float32 rounding of x (about eps32 * |x| = 1e-5 here, against |D| ~ 0.003).
    """

    def no_noise(sigma, sigma_next):
        raise AssertionError(f"noise drawn on the step {sigma} -> {sigma_next}")

    x = (rng.standard_normal((3, 4)) * SIGMA_MAX).astype(np.float32)
    infos = []
    sampler = make_sampler(name, params, 1)
    out = to_np(sampler(GaussianDenoiser(SIGMA_DATA), Tensor(x), noise_sampler=no_noise, callback=infos.append))
    assert sampler.last_nfe == 1 and len(infos) == 1
    denoised = to_np(infos[0]["denoised"])
    np.testing.assert_allclose(denoised, numpy_gaussian(x.astype(np.float64), SIGMA_MAX), rtol=1e-6)
    if name != "lms":
        np.testing.assert_array_equal(out, denoised)
    else:
        assert np.abs(out - denoised).max() <= 2 * np.finfo(np.float32).eps * np.abs(x).max()


def test_deterministic_limits_of_the_ancestral_samplers(rng):
    """EulerA with eta = 0 is the Euler sampler; neither ancestral sampler draws noise with eta = 0."""

    def no_noise(sigma, sigma_next):
        raise AssertionError("noise drawn with eta = 0")

    x = Tensor((rng.standard_normal((3, 2)) * SIGMA_MAX).astype(np.float32))
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    euler = to_np(EulerEDMSampler(num_steps=10, init_noise="prescaled")(model, x))
    euler_a = to_np(make_sampler("euler_a", dict(eta=0.0), 10)(model, x, noise_sampler=no_noise))
    np.testing.assert_allclose(euler_a, euler, rtol=1e-5, atol=1e-6)
    make_sampler("dpmpp_2s_a", dict(eta=0.0), 10)(model, x, noise_sampler=no_noise)


# ---------------------------------------------------------------------------------------------------------------------
# 3. The stochastic samplers reach the data distribution
# ---------------------------------------------------------------------------------------------------------------------


def predicted_final_std(reference, n, eta=1.0, s_noise=1.0):
    """Exact std of the discretized chain on Gaussian data, started from N(0, sigma_0^2 + sigma_data^2).

    D is linear, so x_N = a x_0 + sum_k b_k noise_k; running the reference on the basis vectors (x_0 = e_0, noise_k =
    e_{k+1}) gives a and the b_k at once.
    """
    sigmas = karras_sigmas(n)
    x0 = np.eye(n + 1)[0]
    out, _, draws = reference(numpy_gaussian, x0, sigmas, eta=eta, s_noise=s_noise, noises=list(np.eye(n + 1)[1:]))
    b = out[1 : len(draws) + 1]
    return math.sqrt(out[0] ** 2 * (sigmas[0] ** 2 + SIGMA_DATA**2) + np.sum(b**2))


# Ancestral Euler is first order in distribution: its std bias is 0.044 at 64 steps and 0.012 at 256 (float64
# reference); DPM++(2S) ancestral has 0.0043 at 64 steps.
@pytest.mark.parametrize("name, n, tol", [("euler_a", 256, 0.025), ("dpmpp_2s_a", 64, 0.01)])
def test_ancestral_samples_have_the_data_std(name, n, tol):
    batch, dim = 4096, 8
    x_unit = np.random.default_rng(5).standard_normal((batch, dim)).astype(np.float32)
    x = x_unit * math.sqrt(SIGMA_MAX**2 + SIGMA_DATA**2)
    out = to_np(make_sampler(name, dict(eta=1.0), n)(GaussianDenoiser(SIGMA_DATA), Tensor(x), generator=6))
    count = out.size
    predicted = predicted_final_std(SAMPLERS[name][1], n)
    assert abs(predicted - SIGMA_DATA) <= tol * SIGMA_DATA  # the discretization bias of the chain itself
    std_error = predicted / math.sqrt(2 * count)  # 0.0019 for 32768 values
    assert abs(out.std() - predicted) <= 4 * std_error, (out.std(), predicted)
    assert abs(out.mean()) <= 4 * SIGMA_DATA / math.sqrt(count)
    assert abs(out.std() - SIGMA_DATA) <= tol * SIGMA_DATA + 4 * std_error


# ---------------------------------------------------------------------------------------------------------------------
# 4. Published numbers (anchors section 5), recomputed here from the equations
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sigma_from, sigma_to, eta, expected",
    [
        (1.0, 0.5, 1.0, (0.25, 0.4330127)),
        (1.0, 0.5, 0.5, (0.450694, 0.216506)),
        (80.0, 40.0, 1.0, (20.0, 34.641016)),
        (14.6146, 7.0, 1.0, (3.352812, 6.144807)),
    ],
)
def test_ancestral_step_table(sigma_from, sigma_to, eta, expected):
    down, up = get_ancestral_step(sigma_from, sigma_to, eta)
    assert isinstance(down, float) and isinstance(up, float)
    assert (down, up) == pytest.approx(expected, rel=2e-6)
    assert (down, up) == pytest.approx(ancestral_step(sigma_from, sigma_to, eta), rel=1e-12)
    if eta == 1.0:
        assert get_ancestral_step(sigma_from, sigma_to) == pytest.approx((down, up), rel=1e-15)  # eta defaults to 1


def test_ancestral_step_edge_cases_and_invariant():
    assert get_ancestral_step(3.0, 0.0, 1.0) == (0.0, 0.0)
    assert get_ancestral_step(3.0, 1.0, 0.0) == (1.0, 0.0)
    for sigma_from, sigma_to in [(80.0, 57.58598), (2.5, 0.17), (0.0075, 0.002), (1.0, 0.999)]:
        for eta in [0.0, 0.3, 1.0, 1.7]:
            down, up = get_ancestral_step(sigma_from, sigma_to, eta)
            assert down**2 + up**2 == pytest.approx(sigma_to**2, rel=1e-12)
            assert 0.0 <= up <= sigma_to and 0.0 <= down <= sigma_to
            assert (down, up) == pytest.approx(ancestral_step(sigma_from, sigma_to, eta), rel=1e-12, abs=1e-300)


LMS_PUBLISHED = [  # Karras n = 5 (0.002, 80, rho 7) with order 4, newest derivative first
    [-62.472168],
    [-16.816445, 1.803832],
    [-2.567882, 0.231835, -0.009419],
    [-0.174787, 0.007202, -0.000170, 0.000002],
]


def test_lms_coefficients_published_values():
    sigmas = karras_sigmas(5)
    for i, expected in enumerate(LMS_PUBLISHED):
        coeffs = np.asarray(lms_coefficients(sigmas, i, 4), np.float64)
        assert coeffs.shape == (len(expected),)
        np.testing.assert_allclose(coeffs, expected, rtol=0, atol=6e-7)
        np.testing.assert_allclose(coeffs, lms_coefficients_reference(sigmas, i, 4), rtol=1e-8, atol=1e-14)


def test_lms_reference_coefficients_agree_with_quadrature():
    """The exact numpy.polynomial integral is also what adaptive quadrature of the Lagrange basis gives."""
    integrate = pytest.importorskip("scipy.integrate")
    sigmas = karras_sigmas(7)
    for i in range(7):
        nodes = sigmas[i - np.arange(min(i + 1, 4))]
        for j, c in enumerate(lms_coefficients_reference(sigmas, i, 4)):
            others = np.delete(nodes, j)
            basis = lambda tau: np.prod((tau - others) / (nodes[j] - others))  # noqa: B023, E731
            assert c == pytest.approx(integrate.quad(basis, sigmas[i], sigmas[i + 1], epsrel=1e-12)[0], rel=1e-9)


@pytest.mark.parametrize("n", [5, 18])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_lms_coefficients_sum_to_the_step(n, order):
    """The Lagrange basis sums to 1, so each step's coefficients sum to sigma_{i+1} - sigma_i (not twice that)."""
    sigmas = karras_sigmas(n)
    for i in range(n):
        coeffs = np.asarray(lms_coefficients(sigmas, i, order), np.float64)
        assert len(coeffs) == min(i + 1, order)
        assert coeffs.sum() == pytest.approx(sigmas[i + 1] - sigmas[i], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("order", [1, 4])
def test_lms_applies_one_update_per_step(order, rng):
    """With D = 0, d = x / sigma stays x_0 / sigma_0, so x_i = x_0 sigma_i / sigma_0 (a double update gives more)."""
    x0 = (rng.standard_normal((2, 3)) * SIGMA_MAX).astype(np.float32)
    infos = []
    out = make_sampler("lms", dict(order=order), 5)(lambda x, sigma, cond: x * 0.0, Tensor(x0), callback=infos.append)
    sigmas = karras_sigmas(5)
    for info in infos:
        np.testing.assert_allclose(to_np(info["x"]), x0 * sigmas[info["i"]] / sigmas[0], rtol=1e-5)
    assert np.abs(to_np(out)).max() <= 1e-5 * np.abs(x0).max()


def test_dpmpp_2m_published_steps_and_exact_last_step(rng):
    """Karras n = 5: step 0 is first order, steps 1-3 use the published r, and the last step returns D exactly."""
    sigmas = karras_sigmas(5)
    h = np.log(sigmas[:4] / sigmas[1:5])
    assert h[0] == pytest.approx(1.518237, abs=1e-6)
    assert sigmas[1] / sigmas[0] == pytest.approx(0.219098, abs=1e-6)
    assert np.expm1(-h[0]) == pytest.approx(-0.780902, abs=1e-6)
    published_r = [None, 0.782020, 0.720176, 0.606992, None]
    trace = []
    dpmpp_2m_reference(numpy_gaussian, np.ones(2), sigmas, trace=trace)
    assert [t["r"] for t in trace] == [pytest.approx(r, abs=1e-6) if r else None for r in published_r]
    assert (1 + 1 / (2 * published_r[1]), 1 / (2 * published_r[1])) == pytest.approx((1.639370, 0.639370), abs=2e-6)

    def model(x, sigma, cond):  # D is known: a fixed mixture of x and a per-sample offset, varying with sigma
        return x * (0.3 / (1 + sigma.reshape((-1, 1)))) + Tensor(np.array([[0.7], [-0.2]], np.float32))

    x0 = (rng.standard_normal((2, 3)) * SIGMA_MAX).astype(np.float32)
    infos = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no log(0), no division by zero
        out = to_np(make_sampler("dpmpp_2m", {}, 5)(model, Tensor(x0), callback=infos.append))
    xs = [to_np(info["x"]).astype(np.float64) for info in infos] + [out.astype(np.float64)]
    ds = [to_np(info["denoised"]).astype(np.float64) for info in infos]
    np.testing.assert_allclose(xs[1], 0.219098 * xs[0] + 0.780902 * ds[0], rtol=1e-5, atol=1e-5 * np.abs(xs[0]).max())
    for i in (1, 2, 3):
        r = published_r[i]
        expected = (sigmas[i + 1] / sigmas[i]) * xs[i] - np.expm1(-h[i]) * (
            (1 + 1 / (2 * r)) * ds[i] - ds[i - 1] / (2 * r)
        )
        np.testing.assert_allclose(xs[i + 1], expected, rtol=0, atol=1e-5 * np.abs(xs[i]).max())
    np.testing.assert_array_equal(out, to_np(infos[4]["denoised"]))  # the step to sigma = 0 is x <- D, exactly


# ---------------------------------------------------------------------------------------------------------------------
# 5. Call contract: NFE, randomness, the caller's x, model kwargs, early errors
# ---------------------------------------------------------------------------------------------------------------------

NFE = [
    ("euler_a", dict(eta=1.0), lambda n: n),
    ("euler_a", dict(eta=0.0), lambda n: n),
    ("dpmpp_2s_a", dict(eta=1.0), lambda n: 2 * n - 1),
    ("dpmpp_2s_a", dict(eta=0.0), lambda n: 2 * n - 1),
    ("dpmpp_2m", {}, lambda n: n),
    ("lms", dict(order=4), lambda n: n),
]


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("name, params, nfe", NFE, ids=[f"{n}-{p}" for n, p, _ in NFE])
def test_nfe_and_model_kwargs_reach_every_evaluation(name, params, nfe, n):
    calls = []
    marker = object()

    def model(x, sigma, cond, **kwargs):
        assert isinstance(sigma, Tensor) and sigma.dtype == ms.float32 and sigma.shape == (2,)
        calls.append((kwargs, float(to_np(sigma)[0])))
        return x * 0.5

    sampler = make_sampler(name, params, n)
    sampler(model, Tensor(np.ones((2, 3), np.float32)), generator=0, model_kwargs={"extra": marker})
    assert sampler.last_nfe == nfe(n) == len(calls)
    assert all(kwargs == {"extra": marker} for kwargs, _ in calls)
    # and the model is evaluated at the reference's noise levels, in the reference's order
    seen = []
    SAMPLERS[name][1](lambda x, s: seen.append(s) or x * 0.5, np.ones(3), karras_sigmas(n), **params, noises=[0.0] * n)
    np.testing.assert_allclose([s for _, s in calls], seen, rtol=1e-6)


STOCHASTIC = [("euler_a", dict(eta=1.0)), ("dpmpp_2s_a", dict(eta=0.7, s_noise=1.01))]


@pytest.mark.parametrize("name, params", STOCHASTIC)
def test_same_seed_same_bits_different_seed_different_bits(name, params, rng):
    x = Tensor((rng.standard_normal((3, 2)) * SIGMA_MAX).astype(np.float32))
    sampler = make_sampler(name, params, 6)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    a = to_np(sampler(model, x, generator=7))
    b = to_np(sampler(model, x, generator=np.random.default_rng(7)))
    c = to_np(sampler(model, x, generator=8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name, params", STOCHASTIC + [("dpmpp_2m", {}), ("lms", dict(order=3))])
def test_per_sample_generators_make_items_batch_invariant(name, params, rng):
    seeds = [11, 22, 33, 44]
    x = (rng.standard_normal((4, 2)) * SIGMA_MAX).astype(np.float32)
    sampler = make_sampler(name, params, 6)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    batch = to_np(sampler(model, Tensor(x), generator=[np.random.default_rng(s) for s in seeds]))
    for k, seed in enumerate(seeds):
        alone = to_np(sampler(model, Tensor(x[k : k + 1]), generator=[seed]))
        np.testing.assert_array_equal(alone[0], batch[k])
    reordered = to_np(sampler(model, Tensor(x[::-1].copy()), generator=seeds[::-1]))
    np.testing.assert_array_equal(reordered[::-1], batch)


@pytest.mark.parametrize("init_noise", ["sgm", "prescaled"])
@pytest.mark.parametrize("name, params", ALL_FOUR)
def test_callers_x_is_not_modified(name, params, init_noise, rng):
    x_np = rng.standard_normal((2, 2)).astype(np.float32)
    x = Tensor(x_np)
    sampler = SAMPLERS[name][0](**params, num_steps=4, init_noise=init_noise)
    out = sampler(GaussianMixtureDenoiser(), x, generator=0)
    assert out is not x
    np.testing.assert_array_equal(x.asnumpy(), x_np)


class RecordingModel:
    def __init__(self):
        self.calls = 0

    def __call__(self, x, sigma, cond, **kwargs):
        self.calls += 1
        return x * 0.5


@pytest.mark.parametrize(
    "name, params, exc, match",
    [
        ("euler_a", dict(eta=-0.1), ValueError, "eta"),
        ("euler_a", dict(eta=float("nan")), ValueError, "eta"),
        ("euler_a", dict(s_noise=-1.0), ValueError, "s_noise"),
        ("dpmpp_2s_a", dict(eta=-1.0), ValueError, "eta"),
        ("dpmpp_2s_a", dict(s_noise=-0.5), ValueError, "s_noise"),
        ("lms", dict(order=0), ValueError, "order"),
        ("lms", dict(order=-2), ValueError, "order"),
        ("lms", dict(order=2.5), (TypeError, ValueError), "order"),
    ],
)
def test_bad_parameters_fail_before_any_model_call(name, params, exc, match):
    model = RecordingModel()
    with pytest.raises(exc, match=match):
        SAMPLERS[name][0](**params, num_steps=3)(model, Tensor(np.ones((2, 3), np.float32)), generator=0)
    assert model.calls == 0
