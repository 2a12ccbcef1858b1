"""Sampler numerics against exact and independent references."""

import math

import numpy as np
import pytest
from conftest import to_np
from reference import edm_reference, gmm_denoiser, karras_sigmas

import mindspore as ms
from mindspore import Tensor

from edm_sampler import EDMDiscretization, EDMSampler, EulerEDMSampler, HeunEDMSampler
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser

SIGMA_DATA = 0.5


def exact_ode_error(sampler_cls, n, x_unit):
    """Relative error at sigma = 0 against the closed-form probability-flow ODE solution for N(0, SIGMA_DATA^2)."""
    model = GaussianDenoiser(SIGMA_DATA)
    sampler = sampler_cls(discretization_config=EDMDiscretization(), num_steps=n)
    out = to_np(sampler(model, Tensor(x_unit), generator=0)).astype(np.float64)
    sigma_0 = 80.0
    exact = model.exact_solution(x_unit * math.sqrt(1 + sigma_0**2), sigma_0, 0.0)
    return np.abs(out - exact).max() / np.abs(exact).max()


@pytest.mark.parametrize("sampler_cls, order", [(EulerEDMSampler, 1), (HeunEDMSampler, 2)])
def test_convergence_order_against_exact_ode_solution(sampler_cls, order, rng):
    x_unit = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    steps = np.array([16, 32, 64, 128])
    errors = np.array([exact_ode_error(sampler_cls, n, x_unit) for n in steps])
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 1e-5  # well above float32 round-off, so the fit measures truncation error
    assert np.all(np.diff(errors) < 0)
    assert slope == pytest.approx(-order, abs=0.2)


def test_exact_ode_errors_match_float64_reference(rng):
    """The float32 sampler and the float64 reference make the same discretization error."""
    x_unit = rng.standard_normal((2, 5)).astype(np.float32)
    model = GaussianDenoiser(SIGMA_DATA)
    numpy_model = lambda x, s: x * SIGMA_DATA**2 / (s**2 + SIGMA_DATA**2)  # noqa: E731
    for cls, heun in ((EulerEDMSampler, False), (HeunEDMSampler, True)):
        out = to_np(cls(num_steps=18)(model, Tensor(x_unit)))
        ref, _, _ = edm_reference(numpy_model, x_unit, karras_sigmas(18), heun=heun)
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


CHURN_SETTINGS = [
    dict(s_churn=0.0),
    dict(s_churn=5.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003),
    dict(s_churn=80.0),  # gamma capped at sqrt(2) - 1 on every step
]


@pytest.mark.parametrize("churn", CHURN_SETTINGS)
@pytest.mark.parametrize("sampler_cls, heun", [(EulerEDMSampler, False), (HeunEDMSampler, True)])
def test_matches_float64_reference_with_injected_noise(sampler_cls, heun, churn, rng):
    means = [[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8], [0.2, 0.1]]
    stds, weights = [0.1, 0.2, 0.15, 0.05], [0.4, 0.3, 0.2, 0.1]
    n = 12
    x_unit = rng.standard_normal((6, 2)).astype(np.float32)
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(n)]
    calls = []

    def noise_sampler(sigma, sigma_next):
        calls.append((sigma, sigma_next))
        return Tensor(noises[len(calls) - 1])

    sampler = sampler_cls(**churn, discretization_config=EDMDiscretization(), num_steps=n)
    out = to_np(sampler(GaussianMixtureDenoiser(means, stds, weights), Tensor(x_unit), noise_sampler=noise_sampler))
    ref, nfe, draws = edm_reference(
        gmm_denoiser(means, stds, weights), x_unit, karras_sigmas(n), heun=heun, noises=noises, **churn
    )
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    assert sampler.last_nfe == nfe
    assert len(calls) == draws  # one draw per churned step, none when gamma = 0
    sigmas = karras_sigmas(n)
    expected_calls = [(sigmas[i], sigmas[i + 1]) for i in range(n) if sampler.gamma(sigmas[i], n) > 0]
    np.testing.assert_allclose(np.reshape(calls, (-1, 2)), np.reshape(expected_calls, (-1, 2)))


def test_gamma_values():
    sampler = EDMSampler(s_churn=40.0, s_tmin=0.05, s_tmax=50.0)
    assert sampler.gamma(1.0, 256) == pytest.approx(0.15625)
    assert sampler.gamma(0.01, 256) == 0.0  # below s_tmin
    assert sampler.gamma(60.0, 256) == 0.0  # above s_tmax
    assert sampler.gamma(0.05, 256) == pytest.approx(0.15625)  # the window is closed
    assert EDMSampler(s_churn=80.0).gamma(80.0, 18) == pytest.approx(math.sqrt(2) - 1)
    assert EDMSampler().gamma(1.0, 18) == 0.0


def test_no_churn_consumes_no_noise():
    def noise_sampler(sigma, sigma_next):
        raise AssertionError("noise drawn with s_churn = 0")

    x = Tensor(np.ones((2, 3), np.float32))
    a = EulerEDMSampler(num_steps=5)(GaussianDenoiser(), x, noise_sampler=noise_sampler)
    b = EulerEDMSampler(num_steps=5)(GaussianDenoiser(), x, generator=123)
    np.testing.assert_array_equal(to_np(a), to_np(b))


@pytest.mark.parametrize("init_noise, factor", [("sgm", math.sqrt(1 + 80.0**2)), ("edm", 80.0), ("prescaled", 1.0)])
def test_initial_noise_convention(init_noise, factor):
    seen = []

    def model(x, sigma, cond):
        seen.append(to_np(x).copy())
        return x * 0.0

    x = np.full((1, 2), 0.5, np.float32)
    EulerEDMSampler(num_steps=2, init_noise=init_noise)(model, Tensor(x))
    np.testing.assert_allclose(seen[0], x * factor, rtol=1e-6)


def test_sigma_reaches_model_as_float32_batch_vector():
    seen = []

    def model(x, sigma, cond):
        seen.append(sigma)
        return x * 0.0

    HeunEDMSampler(num_steps=3)(model, Tensor(np.zeros((3, 2), np.float32)))
    expected = karras_sigmas(3)
    expected = [expected[0], expected[1], expected[1], expected[2], expected[2]]  # Heun: (sigma_i, sigma_{i+1})
    assert all(isinstance(s, Tensor) and s.dtype == ms.float32 and s.shape == (3,) for s in seen)
    np.testing.assert_allclose([to_np(s)[0] for s in seen], expected, rtol=1e-6)


def test_float16_input_and_model_output_give_float32_state():
    def model(x, sigma, cond):
        assert x.dtype == ms.float32
        return (x * 0.25).astype(ms.float16)

    out = HeunEDMSampler(num_steps=4)(model, Tensor(np.ones((2, 3), np.float16)))
    assert out.dtype == ms.float32
