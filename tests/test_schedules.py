"""The extra sigma schedules: published values, independent float64 references, the call contract, sampler use and
argument errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edm_sampler import EulerEDMSampler
from edm_sampler.schedules import (
    AYS_SIGMAS,
    AlignYourStepsDiscretization,
    DiffusersDDPMDiscretization,
    ExponentialDiscretization,
    ListDiscretization,
    PolyExponentialDiscretization,
    VPDiscretization,
)

RTOL = 1e-6
ATOL = 5e-7  # half a unit in the sixth decimal: anchors §5 rounds these lists to six decimals

# The published Align-Your-Steps lists (anchors §5; diffusers / mindone.diffusers ``AysSchedules``), written out again
# here rather than imported, so a typo in the library table is caught.
PUBLISHED_AYS = {
    "sdxl": [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.0],
    "sd15": [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.0],
    "svd": [700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.0],
}


# ---------------------------------------------------------------------------------------------------------------------
# Independent float64 references (plain Python math, written from the k-diffusion / AYS / diffusers formulas)
# ---------------------------------------------------------------------------------------------------------------------


def exponential_reference(n, sigma_min, sigma_max):
    if n == 1:
        return [sigma_max]
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return [math.exp(hi + (lo - hi) * i / (n - 1)) for i in range(n)]


def polyexponential_reference(n, sigma_min, sigma_max, rho):
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    ramps = [1.0] if n == 1 else [(1.0 - i / (n - 1)) ** rho for i in range(n)]
    return [math.exp(r * (hi - lo) + lo) for r in ramps]


def vp_reference(n, beta_d=19.9, beta_min=0.1, eps_s=1e-3):
    ts = [1.0] if n == 1 else [1.0 + (eps_s - 1.0) * i / (n - 1) for i in range(n)]
    return [math.sqrt(math.exp(beta_d * t * t / 2.0 + beta_min * t) - 1.0) for t in ts]


def loglinear_reference(sigmas, n):
    """ComfyUI's ``loglinear_interp`` written as a loop: log(sigma) piecewise linear on a uniform grid of [0, 1]."""
    m = len(sigmas)
    if n == 1:
        return [sigmas[0]]
    out = []
    for j in range(n):
        x = j / (n - 1) * (m - 1)  # position on the grid of the given list
        k = min(int(math.floor(x)), m - 2)
        w = x - k
        out.append(math.exp((1.0 - w) * math.log(sigmas[k]) + w * math.log(sigmas[k + 1])))
    return out


def ddpm_sigma_table(num_timesteps=1000, linear_start=0.00085, linear_end=0.012):
    a, b = math.sqrt(linear_start), math.sqrt(linear_end)
    table, prod = [], 1.0
    for t in range(num_timesteps):
        root = a + (b - a) * t / (num_timesteps - 1)
        prod *= 1.0 - root * root
        table.append(math.sqrt((1.0 - prod) / prod))
    return table


def table_at(table, t):
    """Linear interpolation of the sigma table at a (possibly fractional) timestep."""
    k = min(int(math.floor(t)), len(table) - 2)
    w = t - k
    return (1.0 - w) * table[k] + w * table[k + 1]


# ---------------------------------------------------------------------------------------------------------------------
# Exponential / polyexponential / VP: published values (anchors §5) and references
# ---------------------------------------------------------------------------------------------------------------------

EXPONENTIAL_N5 = [14.6146, 3.089839, 0.653258, 0.138113, 0.0292, 0.0]


def test_exponential_n5_published():
    sigmas = ExponentialDiscretization(sigma_min=0.0292, sigma_max=14.6146)(5)
    np.testing.assert_allclose(sigmas, EXPONENTIAL_N5, rtol=0, atol=ATOL)
    assert sigmas[0] == 14.6146 and sigmas[-2] == 0.0292 and sigmas[-1] == 0.0


def test_polyexponential_rho2_published():
    sigmas = PolyExponentialDiscretization(sigma_min=0.0292, sigma_max=14.6146, rho=2.0)(5)
    np.testing.assert_allclose(sigmas, [14.6146, 0.96338, 0.138113, 0.043062, 0.0292, 0.0], rtol=0, atol=ATOL)


@pytest.mark.parametrize("n", [1, 2, 5, 18, 100])
def test_polyexponential_rho1_is_exponential(n):
    poly = PolyExponentialDiscretization(sigma_min=0.0292, sigma_max=14.6146, rho=1.0)(n)
    expo = ExponentialDiscretization(sigma_min=0.0292, sigma_max=14.6146)(n)
    np.testing.assert_allclose(poly, expo, rtol=1e-13)


def test_vp_n5_published():
    sigmas = VPDiscretization()(5)
    np.testing.assert_allclose(sigmas, [152.1670, 17.04912, 3.422245, 0.9575265, 0.01048599, 0.0], rtol=RTOL)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 200), sigma_min=st.floats(1e-4, 1.0), ratio=st.floats(1.5, 1e5), rho=st.floats(0.3, 8.0))
def test_exponential_family_against_reference(n, sigma_min, ratio, rho):
    sigma_max = sigma_min * ratio
    expo = ExponentialDiscretization(sigma_min, sigma_max)(n)
    np.testing.assert_allclose(expo[:-1], exponential_reference(n, sigma_min, sigma_max), rtol=1e-12)
    poly = PolyExponentialDiscretization(sigma_min, sigma_max, rho)(n)
    np.testing.assert_allclose(poly[:-1], polyexponential_reference(n, sigma_min, sigma_max, rho), rtol=1e-12)
    for sigmas in (expo, poly):
        assert sigmas[0] == sigma_max
        assert sigmas[-2] == (sigma_min if n > 1 else sigma_max)
    assert np.all(np.diff(expo) < 0)
    # A large rho pushes ramp**rho below float64 resolution at the tail ((1/94)**8 ~ 1.6e-16), so the last few levels
    # can round to sigma_min exactly, as in k-diffusion: only non-increasing is guaranteed there.
    assert np.all(np.diff(poly) <= 0)


@pytest.mark.parametrize(
    "n, params", [(1, {}), (5, {}), (18, {}), (50, {}), (7, {"beta_d": 0.0, "beta_min": 2.0}), (9, {"eps_s": 0.5})]
)
def test_vp_against_reference(n, params):
    np.testing.assert_allclose(VPDiscretization(**params)(n)[:-1], vp_reference(n, **params), rtol=1e-12)


def test_vp_small_eps_is_accurate():
    """expm1 keeps relative accuracy where exp(x) - 1 would cancel."""
    sigma = VPDiscretization(eps_s=1e-12)(2)[-2]
    assert sigma == pytest.approx(math.sqrt(0.1e-12), rel=1e-9)


# ---------------------------------------------------------------------------------------------------------------------
# Align Your Steps
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["sdxl", "sd15", "svd"])
def test_ays_n10_is_the_published_list_exactly(model):
    sigmas = AlignYourStepsDiscretization(model)(10)
    assert sigmas.tolist() == PUBLISHED_AYS[model]
    assert list(AYS_SIGMAS[model]) == PUBLISHED_AYS[model]


def test_ays_default_model_is_sdxl():
    assert AlignYourStepsDiscretization()(10).tolist() == PUBLISHED_AYS["sdxl"]


@pytest.mark.parametrize("model", ["sdxl", "sd15", "svd"])
@pytest.mark.parametrize("n", [2, 3, 5, 7, 11, 19, 20, 32, 50, 100])
def test_ays_interpolation_against_reference(model, n):
    published = PUBLISHED_AYS[model][:-1]
    sigmas = AlignYourStepsDiscretization(model)(n)
    assert sigmas.shape == (n + 1,) and sigmas[-1] == 0.0
    np.testing.assert_allclose(sigmas[:-1], loglinear_reference(published, n), rtol=1e-12)
    assert sigmas[0] == published[0] and sigmas[-2] == published[-1]
    assert np.all(np.diff(sigmas) < 0)


@pytest.mark.parametrize("model", ["sdxl", "sd15", "svd"])
def test_ays_19_steps_contains_the_published_list(model):
    """With n = 2*10 - 1 the uniform grid holds every published point plus the log-midpoints between them."""
    published = np.array(PUBLISHED_AYS[model][:-1])
    sigmas = AlignYourStepsDiscretization(model)(19)[:-1]
    np.testing.assert_allclose(sigmas[::2], published, rtol=1e-13)
    np.testing.assert_allclose(sigmas[1::2], np.sqrt(published[:-1] * published[1:]), rtol=1e-13)


def test_ays_sdxl_n20_values():
    """Independent NumPy form of ComfyUI's loglinear_interp on the 10 non-zero SDXL values."""
    published = np.array(PUBLISHED_AYS["sdxl"][:-1])
    xs = np.linspace(0, 1, len(published))
    expected = np.exp(np.interp(np.linspace(0, 1, 20), xs, np.log(published[::-1])))[::-1]
    np.testing.assert_allclose(AlignYourStepsDiscretization("sdxl")(20)[:-1], expected, rtol=1e-12)
    np.testing.assert_allclose(AlignYourStepsDiscretization("sdxl")(20)[:3], [14.615, 9.821464, 6.600148], rtol=RTOL)


def test_ays_single_step_starts_at_the_top():
    np.testing.assert_array_equal(AlignYourStepsDiscretization("svd")(1), [700.0, 0.0])


# ---------------------------------------------------------------------------------------------------------------------
# ListDiscretization
# ---------------------------------------------------------------------------------------------------------------------


def test_list_exact_and_trailing_zero_dropped():
    disc = ListDiscretization([10.0, 3.0, 1.0, 0.1, 0.0])
    np.testing.assert_array_equal(disc(4), [10.0, 3.0, 1.0, 0.1, 0.0])
    np.testing.assert_array_equal(ListDiscretization((10.0, 3.0, 1.0, 0.1))(4), [10.0, 3.0, 1.0, 0.1, 0.0])
    np.testing.assert_array_equal(ListDiscretization(np.array([5, 2, 1]))(3), [5.0, 2.0, 1.0, 0.0])


def test_list_is_copied_in_and_out():
    values = [10.0, 3.0, 1.0]
    disc = ListDiscretization(values)
    values[0] = -1.0
    disc(3)[:] = -1.0
    disc.get_sigmas(3)[:] = -1.0
    np.testing.assert_array_equal(disc(3), [10.0, 3.0, 1.0, 0.0])


def test_list_wrong_num_steps_names_num_steps():
    with pytest.raises(ValueError, match=r"num_steps.*\(3\)"):
        ListDiscretization([10.0, 3.0, 1.0])(4)
    with pytest.raises(ValueError, match="num_steps"):
        ListDiscretization([10.0, 3.0, 1.0, 0.0])(2)


def test_list_interpolate_matches_ays():
    published = PUBLISHED_AYS["sd15"]
    for n in (4, 10, 25):
        np.testing.assert_array_equal(
            ListDiscretization(published, interpolate=True)(n), AlignYourStepsDiscretization("sd15")(n)
        )


def test_list_from_omegaconf_listconfig():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"sigmas": [4.0, 2.0, 1.0, 0]})
    np.testing.assert_array_equal(ListDiscretization(cfg.sigmas)(3), [4.0, 2.0, 1.0, 0.0])


def test_list_repr_round_trips():
    disc = ListDiscretization([4.0, 2.0, 0.5])
    assert repr(disc) == "ListDiscretization(sigmas=[4.0, 2.0, 0.5], interpolate=False)"
    assert repr(AlignYourStepsDiscretization("svd")) == "AlignYourStepsDiscretization(model='svd')"


# ---------------------------------------------------------------------------------------------------------------------
# DiffusersDDPMDiscretization (diffusers EulerDiscreteScheduler.set_timesteps; mindone gm discretizer)
# ---------------------------------------------------------------------------------------------------------------------


def test_diffusers_sdxl_leading_n50_published():
    disc = DiffusersDDPMDiscretization()  # mindone defaults = diffusers SDXL config: leading, steps_offset=1
    assert disc.timestep_spacing == "leading" and disc.steps_offset == 1
    sigmas = disc(50)
    assert disc.timesteps(50)[0] == 981.0 and disc.timesteps(50)[-1] == 1.0
    assert sigmas[0] == pytest.approx(13.120411, abs=5e-7)
    assert math.sqrt(sigmas[0] ** 2 + 1) == pytest.approx(13.158464, abs=5e-7)  # diffusers' init_noise_sigma
    assert sigmas[-1] == 0.0


def test_diffusers_linspace_n50_published():
    sigmas = DiffusersDDPMDiscretization(timestep_spacing="linspace")(50)
    assert sigmas[0] == pytest.approx(14.614641, abs=5e-7)
    assert sigmas[-2] == pytest.approx(0.029167, abs=5e-7)


def test_diffusers_trailing_n50_published():
    disc = DiffusersDDPMDiscretization(timestep_spacing="trailing")
    assert disc.timesteps(50)[-1] == 19.0 and disc.timesteps(50)[0] == 999.0
    sigmas = disc(50)
    assert sigmas[-2] == pytest.approx(0.134451, abs=5e-7)
    assert sigmas[0] == pytest.approx(14.614641, abs=5e-7)


def test_diffusers_trailing_n30_differs_from_sgm():
    """anchors §5: trailing n=30 ends at t=32 (0.176321), sgm's LegacyDDPM at t=33 (0.179259)."""
    disc = DiffusersDDPMDiscretization(timestep_spacing="trailing")
    assert disc.timesteps(30)[-1] == 32.0
    assert disc(30)[-2] == pytest.approx(0.176321, abs=5e-7)


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("n", [1, 3, 7, 16, 25, 50, 333, 999])
def test_diffusers_against_reference(spacing, n):
    T = 1000
    if spacing == "linspace":
        steps = [float(np.float32((T - 1) * (n - 1 - k) / (n - 1))) if n > 1 else 0.0 for k in range(n)]
    elif spacing == "leading":
        steps = [float((n - 1 - k) * (T // n) + 1) for k in range(n)]
    else:
        steps = [float(round(T * (n - k) / n) - 1) for k in range(n)]
    disc = DiffusersDDPMDiscretization(timestep_spacing=spacing)
    np.testing.assert_allclose(disc.timesteps(n), steps, rtol=0, atol=1e-4)
    table = ddpm_sigma_table()
    np.testing.assert_allclose(disc(n)[:-1], [table_at(table, t) for t in disc.timesteps(n)], rtol=1e-11)


def test_diffusers_linspace_timesteps_are_float32_like_diffusers():
    steps = DiffusersDDPMDiscretization(timestep_spacing="linspace").timesteps(50)
    np.testing.assert_array_equal(steps, np.linspace(0, 999, 50, dtype=np.float32)[::-1])


def test_diffusers_table_is_legacy_ddpm():
    from edm_sampler import LegacyDDPMDiscretization

    table = DiffusersDDPMDiscretization().sigma_table
    np.testing.assert_allclose(table, LegacyDDPMDiscretization()(1000, do_append_zero=False, flip=True), rtol=1e-15)
    np.testing.assert_allclose(table, ddpm_sigma_table(), rtol=1e-12)
    assert table[0] == pytest.approx(0.029167, abs=5e-7) and table[-1] == pytest.approx(14.614641, abs=5e-7)


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_diffusers_full_length_returns_the_whole_table(spacing):
    disc = DiffusersDDPMDiscretization(timestep_spacing=spacing)
    np.testing.assert_array_equal(disc(1000, do_append_zero=False), disc.sigma_table[::-1])


def test_diffusers_leading_offset_past_the_table_is_refused():
    """With T // n == 1 the leading timesteps are n - 1 .. 0 plus the offset; past t = T - 1 they would repeat."""
    with pytest.raises(ValueError, match="num_steps=998.*timestep 1002"):
        DiffusersDDPMDiscretization(steps_offset=5)(998)
    assert DiffusersDDPMDiscretization(steps_offset=5).timesteps(995)[0] == 999.0
    assert DiffusersDDPMDiscretization()(999).shape == (1000,)


def test_diffusers_more_steps_than_timesteps_is_refused():
    with pytest.raises(ValueError, match="num_steps"):
        DiffusersDDPMDiscretization()(1001)


def test_diffusers_linear_betas_and_log_linear():
    linear = DiffusersDDPMDiscretization(linear_start=1e-4, linear_end=0.02, beta_schedule="linear")
    acp = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))
    np.testing.assert_allclose(linear.sigma_table, np.sqrt((1 - acp) / acp), rtol=1e-13)
    log_linear = DiffusersDDPMDiscretization(interpolation_type="log_linear")(5)
    table = ddpm_sigma_table()
    np.testing.assert_allclose(log_linear[:-1], exponential_reference(5, table[0], table[-1]), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# The call contract and sampler use, for every class
# ---------------------------------------------------------------------------------------------------------------------

SCHEDULES = [
    pytest.param(ExponentialDiscretization, {}, id="exponential-default"),
    pytest.param(ExponentialDiscretization, {"sigma_min": 0.0292, "sigma_max": 14.6146}, id="exponential-sd"),
    pytest.param(PolyExponentialDiscretization, {}, id="polyexponential-default"),
    pytest.param(PolyExponentialDiscretization, {"rho": 2.0}, id="polyexponential-rho2"),
    pytest.param(PolyExponentialDiscretization, {"rho": 0.5}, id="polyexponential-rho0.5"),
    pytest.param(VPDiscretization, {}, id="vp-default"),
    pytest.param(ListDiscretization, {"sigmas": [80.0, 20.0, 5.0, 1.0, 0.2, 0.0], "interpolate": True}, id="list"),
    pytest.param(AlignYourStepsDiscretization, {"model": "sdxl"}, id="ays-sdxl"),
    pytest.param(AlignYourStepsDiscretization, {"model": "sd15"}, id="ays-sd15"),
    pytest.param(AlignYourStepsDiscretization, {"model": "svd"}, id="ays-svd"),
    pytest.param(DiffusersDDPMDiscretization, {}, id="diffusers-leading"),
    pytest.param(DiffusersDDPMDiscretization, {"timestep_spacing": "linspace"}, id="diffusers-linspace"),
    pytest.param(DiffusersDDPMDiscretization, {"timestep_spacing": "trailing"}, id="diffusers-trailing"),
    pytest.param(DiffusersDDPMDiscretization, {"interpolation_type": "log_linear"}, id="diffusers-log-linear"),
]


@pytest.mark.parametrize("cls, params", SCHEDULES)
@pytest.mark.parametrize("n", [1, 2, 5, 10, 18, 40])
def test_contract_default_call(cls, params, n):
    sigmas = cls(**params)(n)
    assert isinstance(sigmas, np.ndarray)
    assert sigmas.dtype == np.float64
    assert sigmas.shape == (n + 1,)
    assert sigmas[-1] == 0.0
    assert np.all(np.isfinite(sigmas))
    assert np.all(np.diff(sigmas) < 0), sigmas
    assert np.all(sigmas[:-1] > 0)


@pytest.mark.parametrize("cls, params", SCHEDULES)
@pytest.mark.parametrize("n", [1, 7])
def test_contract_no_zero_and_flip(cls, params, n):
    disc = cls(**params)
    full = disc(n)
    no_zero = disc(n, do_append_zero=False)
    assert no_zero.dtype == np.float64 and no_zero.shape == (n,)
    np.testing.assert_array_equal(no_zero, full[:-1])
    flipped = disc(n, flip=True)
    assert flipped[0] == 0.0
    np.testing.assert_array_equal(flipped, full[::-1])
    np.testing.assert_array_equal(disc(n, do_append_zero=False, flip=True), full[:-1][::-1])


@pytest.mark.parametrize("cls, params", SCHEDULES)
def test_contract_numpy_integer_num_steps_accepted(cls, params):
    np.testing.assert_array_equal(cls(**params)(np.int64(6)), cls(**params)(6))


@pytest.mark.parametrize("cls, params", SCHEDULES)
@pytest.mark.parametrize("n", [3, 10])
def test_usable_as_sampler_discretization(cls, params, n):
    disc = cls(**params)
    sampler = EulerEDMSampler(num_steps=n, discretization_config=disc)
    np.testing.assert_array_equal(sampler.get_sigmas(), disc(n))


def test_usable_as_sampler_discretization_exact_list():
    disc = ListDiscretization([3.0, 1.0, 0.25, 0.0])
    np.testing.assert_array_equal(EulerEDMSampler(num_steps=3, discretization_config=disc).get_sigmas(), disc(3))


@pytest.mark.parametrize("cls, params", SCHEDULES)
@pytest.mark.parametrize("n, error", [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_num_steps(cls, params, n, error):
    with pytest.raises(error, match="num_steps"):
        cls(**params)(n)


# ---------------------------------------------------------------------------------------------------------------------
# Argument errors: the message must name the offending parameter
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ExponentialDiscretization, PolyExponentialDiscretization])
@pytest.mark.parametrize(
    "params, name, error",
    [
        ({"sigma_min": 80.0, "sigma_max": 80.0}, "sigma_min", ValueError),
        ({"sigma_min": 90.0}, "sigma_min", ValueError),
        ({"sigma_min": 0.0}, "sigma_min", ValueError),
        ({"sigma_min": -0.002}, "sigma_min", ValueError),
        ({"sigma_max": -1.0}, "sigma_max", ValueError),
        ({"sigma_max": float("inf")}, "sigma_max", ValueError),
        ({"sigma_min": float("nan")}, "sigma_min", ValueError),
        ({"sigma_min": "0.002"}, "sigma_min", TypeError),
    ],
)
def test_exponential_bad_params(cls, params, name, error):
    with pytest.raises(error, match=name):
        cls(**params)


@pytest.mark.parametrize(
    "rho, error", [(0.0, ValueError), (-1.0, ValueError), (float("inf"), ValueError), (True, TypeError)]
)
def test_polyexponential_bad_rho(rho, error):
    with pytest.raises(error, match="rho"):
        PolyExponentialDiscretization(rho=rho)


@pytest.mark.parametrize(
    "params, name, error",
    [
        ({"beta_d": -1.0}, "beta_d", ValueError),
        ({"beta_min": -0.1}, "beta_min", ValueError),
        ({"beta_d": 0.0, "beta_min": 0.0}, "beta_d", ValueError),
        ({"eps_s": 0.0}, "eps_s", ValueError),
        ({"eps_s": 1.0}, "eps_s", ValueError),
        ({"eps_s": float("nan")}, "eps_s", ValueError),
        ({"beta_d": "19.9"}, "beta_d", TypeError),
    ],
)
def test_vp_bad_params(params, name, error):
    with pytest.raises(error, match=name):
        VPDiscretization(**params)


@pytest.mark.parametrize(
    "sigmas, match, error",
    [
        ([], "sigmas", ValueError),
        ([0.0], "sigmas", ValueError),
        ([3.0, 1.0, 1.0], r"sigmas must be strictly decreasing.*sigmas\[1\]", ValueError),
        ([1.0, 3.0], r"strictly decreasing.*sigmas\[0\]", ValueError),
        ([3.0, 0.0, 1.0], r"sigmas\[1\] must be > 0", ValueError),
        ([3.0, -1.0], r"sigmas\[1\]", ValueError),
        ([3.0, float("nan")], r"sigmas\[1\]", ValueError),
        ([float("inf"), 1.0], r"sigmas\[0\]", ValueError),
        ([3.0, "1.0"], r"sigmas\[1\]", TypeError),
        ("3.0", "sigmas", TypeError),
        (3.0, "sigmas", TypeError),
        ({"a": 1.0}, "sigmas", TypeError),
        (None, "sigmas", TypeError),
    ],
)
def test_list_bad_sigmas(sigmas, match, error):
    with pytest.raises(error, match=match):
        ListDiscretization(sigmas)


def test_list_bad_interpolate():
    with pytest.raises(TypeError, match="interpolate"):
        ListDiscretization([2.0, 1.0], interpolate="yes")


@pytest.mark.parametrize("model", ["SDXL", "sd1", "flux", "", None])
def test_ays_unknown_model_lists_the_allowed_ones(model):
    with pytest.raises(ValueError, match=r"model must be one of 'sd15', 'sdxl', 'svd'"):
        AlignYourStepsDiscretization(model)


@pytest.mark.parametrize(
    "params, name, error",
    [
        ({"timestep_spacing": "uniform"}, "timestep_spacing", ValueError),
        ({"interpolation_type": "cubic"}, "interpolation_type", ValueError),
        ({"beta_schedule": "cosine"}, "beta_schedule", ValueError),
        ({"steps_offset": -1}, "steps_offset", ValueError),
        ({"steps_offset": 1.0}, "steps_offset", TypeError),
        ({"steps_offset": 1000}, "steps_offset", ValueError),
        ({"num_timesteps": 1}, "num_timesteps", ValueError),
        ({"num_timesteps": 1000.0}, "num_timesteps", TypeError),
        ({"linear_start": 0.0}, "linear_start", ValueError),
        ({"linear_start": 0.02, "linear_end": 0.012}, "linear_start", ValueError),
        ({"linear_end": 1.5}, "linear_end", ValueError),
        ({"linear_end": float("nan")}, "linear_end", ValueError),
    ],
)
def test_diffusers_bad_params(params, name, error):
    with pytest.raises(error, match=name):
        DiffusersDDPMDiscretization(**params)


def test_polyexponential_tail_ties_are_refused_by_the_sampler():
    """rho=8 over a narrow range: the last levels round to sigma_min in float64; a sampler refuses the schedule."""
    disc = PolyExponentialDiscretization(sigma_min=1.0, sigma_max=2.0, rho=8.0)
    assert np.count_nonzero(disc(95)[:-1] == 1.0) > 1
    with pytest.raises(ValueError, match="strictly decreasing"):
        EulerEDMSampler(num_steps=95, discretization_config=disc).get_sigmas()
