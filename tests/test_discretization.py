"""Sigma schedules: published values, independent float64 references, the call contract and argument errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edm_sampler import EDMDiscretization, LegacyDDPMDiscretization

RTOL = 1e-6


# ---------------------------------------------------------------------------------------------------------------------
# Independent float64 references (plain Python math, no numpy vectorisation, no library code)
# ---------------------------------------------------------------------------------------------------------------------


def karras_reference(n, sigma_min, sigma_max, rho):
    """Karras et al. (2022) eq. 5, i = 0..n-1, descending, without the trailing zero.

    Written as the interpolation ``(1 - t) hi + t lo``, which is exact at both ends (t = 0 and t = 1).
    """
    if n == 1:
        return [float(sigma_max)]
    hi, lo = math.pow(sigma_max, 1.0 / rho), math.pow(sigma_min, 1.0 / rho)
    return [math.pow((1.0 - i / (n - 1)) * hi + (i / (n - 1)) * lo, rho) for i in range(n)]


def legacy_alphas_cumprod(linear_start=0.00085, linear_end=0.012, num_timesteps=1000):
    """sqrt-linear betas and their running product, written as a loop."""
    a, b = math.sqrt(linear_start), math.sqrt(linear_end)
    out, prod = [], 1.0
    for t in range(num_timesteps):
        root = a + (b - a) * t / (num_timesteps - 1) if num_timesteps > 1 else a
        prod *= 1.0 - root * root
        out.append(prod)
    return out


def legacy_reference(n, num_timesteps=1000, **kw):
    """sgm's rule in exact integer arithmetic: timesteps floor((T-1)(n-k)/n), k = 0..n-1 (descending)."""
    acp = legacy_alphas_cumprod(num_timesteps=num_timesteps, **kw)
    steps = [((num_timesteps - 1) * (n - k)) // n for k in range(n)]
    return [math.sqrt((1.0 - acp[t]) / acp[t]) for t in steps]


# ---------------------------------------------------------------------------------------------------------------------
# EDM (Karras) discretization: published values
# ---------------------------------------------------------------------------------------------------------------------


def test_edm_n5_paper_defaults():
    sigmas = EDMDiscretization(0.002, 80.0, 7.0)(5)
    np.testing.assert_allclose(sigmas, [80.0, 17.527830, 2.515219, 0.1697528, 0.002, 0.0], rtol=RTOL)
    assert sigmas[-1] == 0.0


def test_edm_n18_head_and_tail():
    sigmas = EDMDiscretization()(18)
    assert len(sigmas) == 19
    np.testing.assert_allclose(sigmas[:4], [80.0, 57.58598, 40.78557, 28.37458], rtol=RTOL)
    np.testing.assert_allclose(sigmas[-4:-1], [0.02293452, 0.007528020, 0.002], rtol=RTOL)
    assert sigmas[-1] == 0.0


def test_edm_streamlit_defaults():
    sigmas = EDMDiscretization(sigma_min=0.0292, sigma_max=14.6146, rho=3.0)(5)
    np.testing.assert_allclose(sigmas, [14.6146, 6.975143, 2.607681, 0.597328, 0.0292, 0.0], rtol=RTOL)


def test_edm_default_sigma_min_is_0_002_not_old_sgm_0_02():
    """Regression for Stability-AI/generative-models#114: sgm's default sigma_min used to be 0.02."""
    default = EDMDiscretization()
    assert default.sigma_min == 0.002 and default.sigma_max == 80.0 and default.rho == 7.0
    assert default(10)[-2] == pytest.approx(0.002, rel=1e-12)
    old = EDMDiscretization(sigma_min=0.02)
    assert old(10)[-2] == pytest.approx(0.02, rel=1e-12)
    assert old(10)[0] == pytest.approx(80.0, rel=1e-12)


@pytest.mark.parametrize(
    "n, sigma_min, sigma_max, rho",
    [
        (1, 0.002, 80.0, 7.0),
        (2, 0.002, 80.0, 7.0),
        (18, 0.002, 80.0, 7.0),
        (40, 0.002, 80.0, 7.0),
        (256, 0.002, 80.0, 7.0),
        (25, 0.002, 700.0, 7.0),
        (10, 0.0292, 14.6146, 3.0),
        (7, 0.1, 10.0, 1.0),
        (12, 0.002, 80.0, 2.0),
        (9, 0.3, 0.31, 12.0),
    ],
)
def test_edm_matches_float64_reference(n, sigma_min, sigma_max, rho):
    sigmas = EDMDiscretization(sigma_min, sigma_max, rho)(n)
    np.testing.assert_allclose(sigmas[:-1], karras_reference(n, sigma_min, sigma_max, rho), rtol=1e-12)
    assert sigmas[0] == pytest.approx(sigma_max, rel=1e-12)
    assert sigmas[-2] == pytest.approx(sigma_min if n > 1 else sigma_max, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    sigma_min=st.floats(1e-4, 1.0),
    ratio=st.floats(1.05, 1e5),
    rho=st.floats(1.0, 20.0),
)
def test_edm_property_against_reference(n, sigma_min, ratio, rho):
    sigma_max = sigma_min * ratio
    sigmas = EDMDiscretization(sigma_min, sigma_max, rho)(n)
    assert sigmas.dtype == np.float64 and sigmas.shape == (n + 1,)
    np.testing.assert_allclose(sigmas[:-1], karras_reference(n, sigma_min, sigma_max, rho), rtol=1e-10)
    assert np.all(np.diff(sigmas) < 0)
    assert sigmas[-1] == 0.0


@pytest.mark.parametrize(
    "n, sigma_min, sigma_max, rho",
    [(5, 0.002, 80.0, 0.25), (3, 3.0, 30000.0, 0.25), (12, 1e-4, 1e3, 0.5), (12, 0.002, 80.0, 0.5)],
)
def test_edm_small_rho_reaches_sigma_min(n, sigma_min, sigma_max, rho):
    sigmas = EDMDiscretization(sigma_min, sigma_max, rho)(n)
    assert sigmas[-2] == pytest.approx(sigma_min, rel=1e-9)
    assert np.all(np.diff(sigmas) < 0)
    np.testing.assert_allclose(sigmas[:-1], karras_reference(n, sigma_min, sigma_max, rho), rtol=1e-9)


# ---------------------------------------------------------------------------------------------------------------------
# LegacyDDPM discretization: published values
# ---------------------------------------------------------------------------------------------------------------------


def test_legacy_alphas_cumprod_endpoints_and_reference():
    acp = LegacyDDPMDiscretization().alphas_cumprod
    assert acp.shape == (1000,) and acp.dtype == np.float64
    assert acp[0] == pytest.approx(0.99915000, abs=5e-9)
    assert acp[999] == pytest.approx(0.00466010, abs=5e-9)
    np.testing.assert_allclose(acp, legacy_alphas_cumprod(), rtol=1e-12)


def test_legacy_alphas_cumprod_is_a_copy():
    disc = LegacyDDPMDiscretization()
    disc.alphas_cumprod[:] = 0.5
    assert disc.alphas_cumprod[0] == pytest.approx(0.99915)
    before = disc(5).copy()
    disc(5)[:] = -1.0
    np.testing.assert_array_equal(disc(5), before)


def test_legacy_full_schedule_endpoints():
    sigmas = LegacyDDPMDiscretization()(1000)
    assert sigmas.shape == (1001,)
    assert sigmas[0] == pytest.approx(14.614641, abs=5e-7)
    assert sigmas[-2] == pytest.approx(0.029167, abs=5e-7)
    assert sigmas[-1] == 0.0


@pytest.mark.parametrize(
    "n, expected",
    [
        (5, [14.614641, 5.087763, 2.276463, 1.160578, 0.569285, 0.0]),
        (
            10,
            [14.614641, 8.302803, 5.087763, 3.321083, 2.276463, 1.612886, 1.160578, 0.829860, 0.569285, 0.341674, 0.0],
        ),
    ],
)
def test_legacy_sgm_index_rule_values(n, expected):
    np.testing.assert_allclose(LegacyDDPMDiscretization()(n), expected, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("n, last", [(50, 0.134451), (30, 0.179259)])
def test_legacy_last_nonzero_sigma(n, last):
    """n=50 agrees with diffusers 'trailing' (t=19); n=30 is sgm's t=33 (0.179259), not trailing's t=32 (0.176321)."""
    sigmas = LegacyDDPMDiscretization()(n)
    assert sigmas[-2] == pytest.approx(last, abs=5e-7)
    assert sigmas[-2] != pytest.approx(0.176321, abs=1e-4)


def test_legacy_matches_integer_reference_for_every_n():
    disc = LegacyDDPMDiscretization()
    for n in list(range(1, 60)) + [97, 128, 250, 333, 500, 999, 1000]:
        np.testing.assert_allclose(disc(n)[:-1], legacy_reference(n), rtol=1e-12, err_msg=f"n={n}")


@settings(max_examples=30, deadline=None)
@given(
    linear_start=st.floats(1e-5, 1e-2),
    span=st.floats(1.0, 20.0),
    num_timesteps=st.integers(2, 400),
    frac=st.floats(0.0, 1.0),
)
def test_legacy_property_against_reference(linear_start, span, num_timesteps, frac):
    linear_end = min(linear_start * span, 0.5)
    n = max(1, int(round(frac * num_timesteps)))
    disc = LegacyDDPMDiscretization(linear_start, linear_end, num_timesteps)
    sigmas = disc(n)
    assert sigmas.shape == (n + 1,) and sigmas[-1] == 0.0
    assert np.all(np.diff(sigmas) < 0)
    acp = legacy_alphas_cumprod(linear_start, linear_end, num_timesteps)
    np.testing.assert_allclose(disc.alphas_cumprod, acp, rtol=1e-10)
    # the largest level is always used; the smallest only when n == num_timesteps
    top = math.sqrt((1 - acp[-1]) / acp[-1])
    assert sigmas[0] == pytest.approx(top, rel=1e-10)
    if n == num_timesteps:
        assert sigmas[-2] == pytest.approx(math.sqrt((1 - acp[0]) / acp[0]), rel=1e-10)


def test_legacy_more_steps_than_timesteps_is_refused():
    with pytest.raises(ValueError, match="num_steps"):
        LegacyDDPMDiscretization()(1001)
    with pytest.raises(ValueError, match="num_steps"):
        LegacyDDPMDiscretization(num_timesteps=10)(11)


# ---------------------------------------------------------------------------------------------------------------------
# The call contract, for both discretizations
# ---------------------------------------------------------------------------------------------------------------------

DISCRETIZATIONS = [
    pytest.param(EDMDiscretization, {}, id="edm-default"),
    pytest.param(EDMDiscretization, {"sigma_min": 0.0292, "sigma_max": 14.6146, "rho": 3.0}, id="edm-streamlit"),
    pytest.param(LegacyDDPMDiscretization, {}, id="legacy-default"),
    pytest.param(LegacyDDPMDiscretization, {"num_timesteps": 50}, id="legacy-T50"),
]


@pytest.mark.parametrize("cls, params", DISCRETIZATIONS)
@pytest.mark.parametrize("n", [1, 2, 5, 18, 40])
def test_contract_default_call(cls, params, n):
    sigmas = cls(**params)(n)
    assert isinstance(sigmas, np.ndarray)
    assert sigmas.dtype == np.float64
    assert sigmas.shape == (n + 1,)
    assert sigmas[-1] == 0.0
    assert np.all(np.diff(sigmas) < 0), sigmas
    assert np.all(sigmas[:-1] > 0)


@pytest.mark.parametrize("cls, params", DISCRETIZATIONS)
@pytest.mark.parametrize("n", [1, 7])
def test_contract_no_zero_and_flip(cls, params, n):
    disc = cls(**params)
    full = disc(n)
    no_zero = disc(n, do_append_zero=False)
    assert no_zero.dtype == np.float64 and no_zero.shape == (n,)
    np.testing.assert_array_equal(no_zero, full[:-1])
    assert np.all(no_zero > 0)

    flipped = disc(n, flip=True)
    assert flipped.shape == (n + 1,) and flipped[0] == 0.0
    np.testing.assert_array_equal(flipped, full[::-1])
    assert np.all(np.diff(flipped) > 0)

    flipped_no_zero = disc(n, do_append_zero=False, flip=True)
    np.testing.assert_array_equal(flipped_no_zero, full[:-1][::-1])


@pytest.mark.parametrize(
    "cls, params, expected",
    [
        pytest.param(EDMDiscretization, {}, [80.0, 0.0], id="edm"),
        pytest.param(LegacyDDPMDiscretization, {}, [14.614641, 0.0], id="legacy"),
    ],
)
def test_contract_single_step_starts_at_sigma_max(cls, params, expected):
    np.testing.assert_allclose(cls(**params)(1), expected, rtol=RTOL)


@pytest.mark.parametrize("cls", [EDMDiscretization, LegacyDDPMDiscretization])
def test_contract_numpy_integer_num_steps_accepted(cls):
    np.testing.assert_array_equal(cls()(np.int64(6)), cls()(6))


# ---------------------------------------------------------------------------------------------------------------------
# Argument errors: the message must name the offending parameter
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [EDMDiscretization, LegacyDDPMDiscretization])
@pytest.mark.parametrize(
    "n, error",
    [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError), ("5", TypeError), (None, TypeError)],
)
def test_bad_num_steps(cls, n, error):
    with pytest.raises(error, match="num_steps"):
        cls()(n)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"sigma_min": 80.0, "sigma_max": 80.0}, "sigma_min"),
        ({"sigma_min": 90.0, "sigma_max": 80.0}, "sigma_min"),
        ({"sigma_min": 0.0}, "sigma_min"),
        ({"sigma_min": -0.002}, "sigma_min"),
        ({"sigma_max": 0.0, "sigma_min": 0.002}, "sigma_max"),
        ({"rho": 0.0}, "rho"),
        ({"rho": -7.0}, "rho"),
        ({"sigma_min": float("nan")}, "sigma_min"),
        ({"sigma_max": float("nan")}, "sigma_max"),
        ({"sigma_max": float("inf")}, "sigma_max"),
        ({"rho": float("inf")}, "rho"),
        ({"rho": float("nan")}, "rho"),
        ({"sigma_min": float("-inf")}, "sigma_min"),
    ],
)
def test_edm_bad_params(params, name):
    with pytest.raises(ValueError, match=name):
        EDMDiscretization(**params)


@pytest.mark.parametrize("params, name", [({"sigma_min": "0.002"}, "sigma_min"), ({"rho": True}, "rho")])
def test_edm_non_numeric_params(params, name):
    with pytest.raises(TypeError, match=name):
        EDMDiscretization(**params)


@pytest.mark.parametrize(
    "params, name, error",
    [
        ({"linear_start": 0.02, "linear_end": 0.012}, "linear_start", ValueError),
        ({"linear_start": 0.0}, "linear_start", ValueError),
        ({"linear_end": 1.5}, "linear_end", ValueError),
        ({"linear_start": float("nan")}, "linear_start", ValueError),
        ({"linear_end": float("inf")}, "linear_end", ValueError),
        ({"num_timesteps": 0}, "num_timesteps", ValueError),
        ({"num_timesteps": -3}, "num_timesteps", ValueError),
        ({"num_timesteps": 1000.0}, "num_timesteps", TypeError),
    ],
)
def test_legacy_bad_params(params, name, error):
    with pytest.raises(error, match=name):
        LegacyDDPMDiscretization(**params)
