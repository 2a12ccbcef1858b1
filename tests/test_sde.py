"""DPM-2, DPM-2 ancestral, DPM++ SDE, DPM++(2M) SDE and DPM++(3M) SDE against float64 references and exact numbers,
and the Brownian noise source they use.

The references (tests/reference_sde.py) are written from the update equations in t = -log(sigma); the exact model is
the ideal denoiser of N(0, 0.5^2) data (closed-form probability-flow ODE) or of a Gaussian mixture.
"""

import math

import numpy as np
import pytest
from conftest import to_np
from numerics import MEANS, SIGMA_DATA, STDS, WEIGHTS
from reference import gmm_denoiser, karras_sigmas
from reference_sde import (
    dpm2_ancestral_reference,
    dpm2_reference,
    dpmpp_2m_sde_reference,
    dpmpp_3m_sde_reference,
    dpmpp_sde_reference,
)

import mindspore as ms
from mindspore import Tensor

from edm_sampler.brownian import BrownianNoise, brownian_tol
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser
from edm_sampler.samplers.dpm import DPM2AncestralSampler, DPM2Sampler
from edm_sampler.samplers.sde import DPMPP2MSDESampler, DPMPP3MSDESampler, DPMPPSDESampler

SIGMA_MAX = 80.0

SAMPLERS = {
    "dpm_2": (DPM2Sampler, dpm2_reference),
    "dpm_2_a": (DPM2AncestralSampler, dpm2_ancestral_reference),
    "dpmpp_sde": (DPMPPSDESampler, dpmpp_sde_reference),
    "dpmpp_2m_sde": (DPMPP2MSDESampler, dpmpp_2m_sde_reference),
    "dpmpp_3m_sde": (DPMPP3MSDESampler, dpmpp_3m_sde_reference),
}


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
    ("dpm_2", {}),
    ("dpm_2", dict(s_churn=20.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)),
    ("dpm_2_a", dict(eta=1.0)),
    ("dpm_2_a", dict(eta=0.5, s_noise=1.003)),
    ("dpm_2_a", dict(eta=0.0)),
    ("dpm_2_a", dict(eta=1.5)),  # sigma_down = 0 before the last step: D, then sigma_next * noise
    ("dpmpp_sde", dict(eta=1.0)),
    ("dpmpp_sde", dict(eta=0.6, s_noise=1.003, r=0.3)),
    ("dpmpp_sde", dict(eta=0.0)),
    ("dpmpp_sde", dict(eta=1.5)),
    ("dpmpp_2m_sde", dict(eta=1.0)),
    ("dpmpp_2m_sde", dict(eta=0.5, s_noise=1.003, solver_type="heun")),
    ("dpmpp_2m_sde", dict(eta=0.0, solver_type="heun")),
    ("dpmpp_3m_sde", dict(eta=1.0)),
    ("dpmpp_3m_sde", dict(eta=0.4, s_noise=1.003)),
    ("dpmpp_3m_sde", dict(eta=0.0)),
]
MODELS = {
    "gaussian": (lambda: GaussianDenoiser(SIGMA_DATA), lambda: numpy_gaussian, (3, 2, 2)),
    "mixture": (
        lambda: GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS),
        lambda: gmm_denoiser(MEANS, STDS, WEIGHTS),
        (6, 2),
    ),
}


# n >= 5: DPM-2 from sigma = 80 straight to ~2.5 (n = 3) cancels x against x - D twice and keeps only ~eps32 * |x|
# of absolute accuracy (1.8e-5 relative here); from 80 to 27 (n = 5) it is within 1e-5.
@pytest.mark.parametrize("n", [5, 12])
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
    trace = []
    ref, nfe, draws = SAMPLERS[name][1](
        make_numpy_model(), x.astype(np.float64), karras_sigmas(n), **params, noises=noises, trace=trace
    )
    err = rel_err(out, ref)
    assert err <= 1e-5, f"max |out - ref| / max |ref| = {err:.3g}"
    assert sampler.last_nfe == nfe
    assert len(calls) == len(draws)  # noise drawn exactly where the reference draws it, in order
    if draws:
        np.testing.assert_allclose(np.reshape(calls, (-1, 2)), np.reshape(draws, (-1, 2)), rtol=1e-6)
    assert [info["i"] for info in infos] == list(range(n))
    for info, step in zip(infos, trace):
        assert set(info) == {"x", "i", "sigma", "sigma_hat", "denoised"}
        assert info["sigma"] == pytest.approx(step["sigma"], rel=1e-6)
        assert info["sigma_hat"] == pytest.approx(step["sigma_hat"], rel=1e-6)
        assert rel_err(to_np(info["x"]), step["x"]) <= 1e-5
        assert rel_err(to_np(info["denoised"]), step["denoised"]) <= 1e-5


NFE = [
    ("dpm_2", {}, lambda n: 2 * n - 1, 0),
    ("dpm_2", dict(s_churn=10.0), lambda n: 2 * n - 1, None),
    ("dpm_2_a", dict(eta=1.0), lambda n: 2 * n - 1, None),
    ("dpmpp_sde", dict(eta=1.0), lambda n: 2 * n - 1, lambda n: 2 * (n - 1)),
    ("dpmpp_sde", dict(eta=0.0), lambda n: 2 * n - 1, 0),
    ("dpmpp_2m_sde", dict(eta=1.0), lambda n: n, lambda n: n - 1),
    ("dpmpp_2m_sde", dict(eta=1.0, s_noise=0.0), lambda n: n, 0),
    ("dpmpp_3m_sde", dict(eta=1.0), lambda n: n, lambda n: n - 1),
    ("dpmpp_3m_sde", dict(eta=0.0), lambda n: n, 0),
]


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("name, params, nfe, draws", NFE, ids=[f"{n[0]}-{n[1]}" for n in NFE])
def test_nfe_noise_calls_and_model_kwargs(name, params, nfe, draws, n):
    calls, noise_calls = [], []
    marker = object()

    def model(x, sigma, cond, **kwargs):
        assert isinstance(sigma, Tensor) and sigma.dtype == ms.float32 and sigma.shape == (2,)
        calls.append(kwargs)
        return x * 0.5

    def noise_sampler(sigma, sigma_next):
        noise_calls.append((sigma, sigma_next))
        return Tensor(np.zeros((2, 3), np.float32))

    sampler = make_sampler(name, params, n)
    out = sampler(model, Tensor(np.ones((2, 3), np.float32)), noise_sampler=noise_sampler, model_kwargs={"e": marker})
    assert out.dtype == ms.float32
    assert sampler.last_nfe == nfe(n) == len(calls)
    assert all(kwargs == {"e": marker} for kwargs in calls)
    if draws is not None:
        assert len(noise_calls) == (draws if isinstance(draws, int) else draws(n))


@pytest.mark.parametrize(
    "name, params",
    [
        ("dpm_2", {}),
        ("dpm_2_a", dict(eta=1.0)),
        ("dpmpp_sde", dict(eta=1.0)),
        ("dpmpp_2m_sde", dict(eta=1.0)),
        ("dpmpp_3m_sde", dict(eta=1.0)),
    ],
)
def test_single_step_to_zero_returns_denoised_exactly(name, params, rng):
    def no_noise(sigma, sigma_next):
        raise AssertionError(f"noise drawn on the step {sigma} -> {sigma_next}")

    x = (rng.standard_normal((3, 4)) * SIGMA_MAX).astype(np.float32)
    infos = []
    sampler = make_sampler(name, params, 1)
    out = to_np(sampler(GaussianDenoiser(SIGMA_DATA), Tensor(x), noise_sampler=no_noise, callback=infos.append))
    assert sampler.last_nfe == 1 and len(infos) == 1
    np.testing.assert_array_equal(out, to_np(infos[0]["denoised"]))


# ---------------------------------------------------------------------------------------------------------------------
# 2. Orders of accuracy on the exact Gaussian probability-flow ODE (the deterministic limits)
# ---------------------------------------------------------------------------------------------------------------------

# Fitted slopes measured here (float32, these step counts): DPM-2 -2.11, DPM-2 ancestral (eta 0) -2.11, DPM++ SDE
# (eta 0) -1.98, DPM++(2M) SDE (eta 0) midpoint -2.12 / heun -2.16, DPM++(3M) SDE (eta 0) -2.08 over 128-256 steps:
# its float64 local orders are still rising (0.9, 1.8, 2.1, 2.9 from 32 to 512 steps), pre-asymptotic on Karras sigmas.
ORDERS = [
    ("dpm_2", {}, [16, 32, 64, 128], (-2.2, -1.8)),
    ("dpm_2_a", dict(eta=0.0), [16, 32, 64, 128], (-2.2, -1.8)),
    ("dpmpp_sde", dict(eta=0.0), [16, 32, 64, 128], (-2.2, -1.8)),
    ("dpmpp_2m_sde", dict(eta=0.0), [32, 48, 64, 96, 128], (-2.3, -1.8)),
    ("dpmpp_2m_sde", dict(eta=0.0, solver_type="heun"), [32, 48, 64, 96, 128], (-2.3, -1.8)),
    ("dpmpp_3m_sde", dict(eta=0.0), [128, 160, 192, 256], (-3.3, -2.0)),
]


@pytest.mark.parametrize("name, params, steps, bounds", ORDERS, ids=[f"{o[0]}-{o[1]}" for o in ORDERS])
def test_convergence_order_against_exact_ode_solution(name, params, steps, bounds, rng):
    x_unit = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    model = GaussianDenoiser(SIGMA_DATA)
    x = x_unit * SIGMA_MAX
    exact = model.exact_solution(x, SIGMA_MAX, 0.0)
    errors = np.array([rel_err(to_np(make_sampler(name, params, n)(model, Tensor(x))), exact) for n in steps])
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 2e-5  # well above float32 round-off
    assert np.all(np.diff(errors) < 0), errors
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {errors}"
    ref, _, _ = SAMPLERS[name][1](numpy_gaussian, x.astype(np.float64), karras_sigmas(steps[-1]), **params)
    assert errors[-1] == pytest.approx(rel_err(ref, exact), rel=0.05)


# ---------------------------------------------------------------------------------------------------------------------
# 3. The stochastic samplers reach the data distribution (Brownian noise, eta = 1)
# ---------------------------------------------------------------------------------------------------------------------


def predicted_final_std(name, params, n):
    """Exact std of the discretized chain on Gaussian data (D is linear: run the reference on basis vectors), for
    independent unit noise per draw; for DPM++ SDE the two draws of a step are correlated Brownian increments, which
    the reference gets as the matching combinations of per-interval basis vectors."""
    sigmas = karras_sigmas(n)
    reference = SAMPLERS[name][1]
    if name != "dpmpp_sde":
        out, _, draws = reference(numpy_gaussian, np.eye(n + 1)[0], sigmas, **params, noises=list(np.eye(n + 1)[1:]))
        return math.sqrt(out[0] ** 2 * (sigmas[0] ** 2 + SIGMA_DATA**2) + np.sum(out[1 : len(draws) + 1] ** 2))
    # two independent basis vectors per step: W over (sigma, sigma_s) and over (sigma_s, sigma_next)
    basis = np.eye(2 * n + 1)
    noises = []
    for i in range(n - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        sigma_s = np.exp(0.5 * (np.log(sigma) + np.log(sigma_next)))
        a, b = sigma - sigma_s, sigma_s - sigma_next
        noises += [
            basis[1 + 2 * i],
            (math.sqrt(a) * basis[1 + 2 * i] + math.sqrt(b) * basis[2 + 2 * i]) / math.sqrt(a + b),
        ]
    out, _, _ = reference(numpy_gaussian, basis[0], sigmas, **params, noises=noises)
    return math.sqrt(out[0] ** 2 * (sigmas[0] ** 2 + SIGMA_DATA**2) + np.sum(out[1:] ** 2))


@pytest.mark.parametrize(
    "name, n, tol",
    [("dpm_2_a", 64, 0.02), ("dpmpp_sde", 32, 0.02), ("dpmpp_2m_sde", 64, 0.015), ("dpmpp_3m_sde", 64, 0.01)],
)
def test_stochastic_samples_have_the_data_std(name, n, tol):
    batch, dim = 4096, 8
    x = np.random.default_rng(5).standard_normal((batch, dim)).astype(np.float32)
    x *= math.sqrt(SIGMA_MAX**2 + SIGMA_DATA**2)
    out = to_np(make_sampler(name, dict(eta=1.0), n)(GaussianDenoiser(SIGMA_DATA), Tensor(x), generator=6))
    count = out.size
    predicted = predicted_final_std(name, dict(eta=1.0), n)
    assert abs(predicted - SIGMA_DATA) <= tol * SIGMA_DATA  # the discretization bias of the chain itself
    std_error = predicted / math.sqrt(2 * count)  # 0.0019 for 32768 values
    assert abs(out.std() - predicted) <= 4 * std_error, (out.std(), predicted)
    assert abs(out.mean()) <= 4 * SIGMA_DATA / math.sqrt(count)


# ---------------------------------------------------------------------------------------------------------------------
# 4. The Brownian noise source
# ---------------------------------------------------------------------------------------------------------------------


def test_brownian_same_seed_same_noise_and_int_equals_generator():
    a = BrownianNoise((2, 3, 4), 7, 0.002, 80.0)
    b = BrownianNoise((2, 3, 4), np.random.default_rng(7), 0.002, 80.0)
    c = BrownianNoise((2, 3, 4), 8, 0.002, 80.0)
    first = to_np(a(10.0, 5.0))
    assert first.dtype == np.float32 and first.shape == (2, 3, 4)
    b(1.0, 0.5)  # another query first: W is a function of the seed and the point, not of the query history
    np.testing.assert_array_equal(to_np(b(10.0, 5.0)), first)
    np.testing.assert_array_equal(to_np(a(10.0, 5.0)), first)
    assert not np.array_equal(to_np(c(10.0, 5.0)), first)


def test_brownian_increments_add_up_and_change_sign():
    noise = BrownianNoise((50, 7), 3, 0.002, 80.0)
    for a, b, c in [(80.0, 12.3, 0.002), (5.0, 4.0, 3.0), (0.01, 0.005, 0.0021)]:
        whole = noise.increment(a, c)
        np.testing.assert_allclose(noise.increment(a, b) + noise.increment(b, c), whole, rtol=0, atol=4e-6)
        np.testing.assert_array_equal(noise.increment(c, a), -whole)
        # the normalised call is the increment over sqrt(|dt|)
        np.testing.assert_allclose(to_np(noise(a, c)), whole / math.sqrt(a - c), rtol=1e-6)


def test_brownian_increments_are_independent_with_variance_dt():
    """Disjoint increments: unit normalised variance and no correlation, within 5 standard errors for 200k values
    (std error of a variance estimate sqrt(2/n) = 0.0032, of a correlation 1/sqrt(n) = 0.0022)."""
    count = 200_000
    noise = BrownianNoise((count,), 11, 0.002, 80.0)
    points = [80.0, 30.0, 7.5, 1.0, 0.9, 0.05, 0.002]
    incs = [noise.increment(s, s_next) / math.sqrt(s - s_next) for s, s_next in zip(points[:-1], points[1:])]
    for inc in incs:
        assert abs(inc.astype(np.float64).var() - 1.0) <= 5 * math.sqrt(2 / count)
        assert abs(inc.astype(np.float64).mean()) <= 5 / math.sqrt(count)
    corr = np.corrcoef(np.stack(incs).astype(np.float64))
    assert np.abs(corr - np.eye(len(incs))).max() <= 5 / math.sqrt(count)
    # overlapping intervals have the Brownian correlation sqrt(overlap / (len1 * len2))
    both = np.corrcoef(noise.increment(7.5, 1.0), noise.increment(7.5, 0.9))[0, 1]
    assert both == pytest.approx(math.sqrt(6.5 / 6.6), abs=5 / math.sqrt(count))


def test_brownian_per_sample_paths_are_batch_invariant():
    seeds = [5, 6, 7]
    batch = BrownianNoise((3, 4, 4), [np.random.default_rng(s) for s in seeds], 0.002, 80.0, tol=0.01)
    together = [to_np(batch(s, s_next)) for s, s_next in [(80.0, 20.0), (20.0, 0.3)]]
    for k, seed in enumerate(seeds):
        alone = BrownianNoise((1, 4, 4), [seed], 0.002, 80.0, tol=0.01)
        for noise, (s, s_next) in zip(together, [(80.0, 20.0), (20.0, 0.3)]):
            np.testing.assert_array_equal(to_np(alone(s, s_next))[0], noise[k])
    assert not np.array_equal(together[0][0], together[0][1])  # samples have their own paths


def test_brownian_refuses_bad_queries():
    noise = BrownianNoise((2,), 0, 0.1, 10.0, tol=0.01)
    with pytest.raises(ValueError, match="sigma_next"):
        noise(1.0, 20.0)
    with pytest.raises(ValueError, match="differ"):
        noise(1.0, 1.0)
    with pytest.raises(ValueError, match="resolution"):
        noise(2.0, 2.0001)
    with pytest.raises(ValueError, match="sigma_max"):
        BrownianNoise((2,), 0, 1.0, 0.5)
    with pytest.raises(ValueError, match="generator"):
        BrownianNoise((2,), [1, 2, 3], 0.1, 1.0)
    assert brownian_tol(karras_sigmas(10)[:-1]) == pytest.approx(np.min(-np.diff(np.log(karras_sigmas(10)[:-1]))))


# ---------------------------------------------------------------------------------------------------------------------
# 5. The SDE samplers with their Brownian noise: reproducible, batch invariant, overridable
# ---------------------------------------------------------------------------------------------------------------------

SDE = [("dpmpp_sde", dict(eta=1.0)), ("dpmpp_2m_sde", dict(eta=0.8)), ("dpmpp_3m_sde", dict(eta=1.0, s_noise=1.01))]


@pytest.mark.parametrize("name, params", SDE)
def test_sde_samplers_draw_brownian_noise_reproducibly_per_sample(name, params, rng):
    seeds = [11, 22, 33]
    x = (rng.standard_normal((3, 2)) * SIGMA_MAX).astype(np.float32)
    sampler = make_sampler(name, params, 6)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    a = to_np(sampler(model, Tensor(x), generator=7))
    np.testing.assert_array_equal(a, to_np(sampler(model, Tensor(x), generator=np.random.default_rng(7))))
    assert not np.array_equal(a, to_np(sampler(model, Tensor(x), generator=8)))
    batch = to_np(sampler(model, Tensor(x), generator=[np.random.default_rng(s) for s in seeds]))
    for k, seed in enumerate(seeds):
        np.testing.assert_array_equal(to_np(sampler(model, Tensor(x[k : k + 1]), generator=[seed]))[0], batch[k])
    # the noise is the Brownian source's: the same increments as a BrownianNoise on the schedule's range
    sigmas = karras_sigmas(6)
    points = sampler.noise_points(sigmas)
    source = BrownianNoise((3, 2), 7, points.min(), points.max(), tol=brownian_tol(points))
    injected = to_np(sampler(model, Tensor(x), noise_sampler=source))
    np.testing.assert_array_equal(injected, a)


def test_dpm2_samplers_use_gaussian_noise_and_validate_parameters():
    x = Tensor(np.ones((2, 2), np.float32) * SIGMA_MAX)
    model = GaussianDenoiser(SIGMA_DATA)
    a = to_np(make_sampler("dpm_2_a", dict(eta=1.0), 4)(model, x, generator=3))
    b = to_np(make_sampler("dpm_2_a", dict(eta=1.0), 4)(model, x, generator=3))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="s_churn"):
        DPM2Sampler(s_churn=-1.0)
    with pytest.raises(ValueError, match="s_tmin"):
        DPM2Sampler(s_tmin=2.0, s_tmax=1.0)
    with pytest.raises(ValueError, match="eta"):
        DPM2AncestralSampler(eta=-0.1)
    with pytest.raises(ValueError, match="r must"):
        DPMPPSDESampler(r=1.5)
    with pytest.raises(ValueError, match="r must"):
        DPMPPSDESampler(r=0.0)
    with pytest.raises(ValueError, match="solver_type"):
        DPMPP2MSDESampler(solver_type="euler")
    with pytest.raises(ValueError, match="s_noise"):
        DPMPP3MSDESampler(s_noise=-1.0)
    with pytest.raises(TypeError, match="eta"):
        DPMPP3MSDESampler(eta="1")
    with pytest.raises(TypeError):
        DPMPP2MSDESampler(1.0, 1.0, "midpoint", None)  # the base parameters are keyword-only
