"""The flow-matching schedules: independent float64 transcriptions of diffusers' and ComfyUI's formulas, published
numbers, the call contract, argument errors and loading from configs."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from edm_sampler.checks import ConfigError
from edm_sampler.flow_schedules import (
    DiscreteFlowDiscretization,
    FlowMatchDiscretization,
    LinearQuadraticDiscretization,
    beta_cdf,
    beta_ppf,
    exponential_time_shift,
    flux_mu,
    linear_time_shift,
    stretch_to_terminal,
    time_shift,
)
from edm_sampler.registry import instantiate_from_config

RTOL = 1e-12

# SD3 (FlowMatchEulerDiscreteScheduler, shift=3.0, num_train_timesteps=1000), 28 steps: ``scheduler.timesteps`` as
# diffusers prints them (float32, four decimals). Copied in several public SD3 repositories as a comment on
# ``retrieve_timesteps``; the last one is 1000 * shift(shift(1/1000)) = 8.9286 (the static shift applied twice).
PUBLISHED_SD3_TIMESTEPS_28 = [
    1000.0000, 987.3806, 974.1077, 960.1293, 945.3875, 929.8179, 913.3490, 895.9003, 877.3819, 857.6923,
    836.7167, 814.3248, 790.3683, 764.6771, 737.0558, 707.2785, 675.0823, 640.1602, 602.1506, 560.6250,
    515.0721, 464.8760, 409.2888, 347.3926, 278.0488, 199.8270, 110.9057, 8.9286,
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# Independent float64 references, transcribed from the sources' formulas (no import from edm_sampler.flow_schedules)
# ---------------------------------------------------------------------------------------------------------------------


def static_shift_reference(s, shift):
    return shift * s / (1 + (shift - 1) * s)


def calculate_shift_reference(image_seq_len, base_seq_len=256, max_seq_len=4096, base_shift=0.5, max_shift=1.15):
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    b = base_shift - m * base_seq_len
    return image_seq_len * m + b


def diffusers_flow_match_reference(
    n,
    num_train_timesteps=1000,
    shift=1.0,
    use_dynamic_shifting=False,
    mu=None,
    time_shift_type="exponential",
    shift_terminal=None,
    spacing=None,
    sigma_min=None,
    sigma_max=None,
):
    """FlowMatchEulerDiscreteScheduler.__init__ + set_timesteps(n), in float64, in diffusers' order of operations."""
    big_n = num_train_timesteps
    # __init__: timesteps = linspace(1, N, N)[::-1]; sigmas = timesteps / N; static shift unless dynamic
    train = [k / big_n for k in range(big_n, 0, -1)]
    if not use_dynamic_shifting:
        train = [static_shift_reference(s, shift) for s in train]
    train_min, train_max = train[-1], train[0]
    # set_timesteps: 1. timesteps = linspace(sigma_to_t(sigma_max), sigma_to_t(sigma_min), n); sigmas = timesteps / N
    sigmas = np.linspace(train_max * big_n, train_min * big_n, n) / big_n
    # 2. shift
    if use_dynamic_shifting:
        if time_shift_type == "exponential":
            sigmas = math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1) ** 1.0)
        else:
            sigmas = mu / (mu + (1 / sigmas - 1) ** 1.0)
    else:
        sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    # 3. stretch_shift_to_terminal (skipped for a single step, diffusers issue #14411)
    if shift_terminal and n > 1:
        one_minus_z = 1 - sigmas
        scale_factor = one_minus_z[-1] / (1 - shift_terminal)
        sigmas = 1 - (one_minus_z / scale_factor)
    # 4. karras / exponential / beta
    lo = sigma_min if sigma_min is not None else float(sigmas[-1])
    hi = sigma_max if sigma_max is not None else float(sigmas[0])
    if spacing == "karras":
        rho = 7.0
        ramp = np.linspace(0, 1, n)
        min_inv_rho = lo ** (1 / rho)
        max_inv_rho = hi ** (1 / rho)
        sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    elif spacing == "exponential":
        sigmas = np.exp(np.linspace(math.log(hi), math.log(lo), n))
    elif spacing == "beta":
        scipy_stats = pytest.importorskip("scipy.stats")
        ppfs = [scipy_stats.beta.ppf(t, 0.6, 0.6) for t in 1 - np.linspace(0, 1, n)]
        sigmas = np.array([lo + ppf * (hi - lo) for ppf in ppfs])
    return np.asarray(sigmas, dtype=np.float64)


def diffusers_float32_reference(n, shift):
    """The same static-shift path with diffusers' float32 steps: float32 training grid and sigma_min, float32 output."""
    timesteps = np.linspace(1, 1000, 1000, dtype=np.float32)[::-1].copy()
    train = timesteps / np.float32(1000)
    train = (np.float32(shift) * train / (np.float32(1) + np.float32(shift - 1) * train)).astype(np.float32)
    sigma_min, sigma_max = float(train[-1]), float(train[0])
    sigmas = np.linspace(sigma_max * 1000, sigma_min * 1000, n) / 1000
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return sigmas.astype(np.float32)


def comfy_discrete_flow_reference(n, shift=1.0, multiplier=1000, timesteps=1000):
    """ModelSamplingDiscreteFlow's table (time_snr_shift of (k / T) * multiplier / multiplier) + simple_scheduler."""

    def time_snr_shift(alpha, t):
        if alpha == 1.0:
            return t
        return alpha * t / (1 + (alpha - 1) * t)

    table = [time_snr_shift(shift, ((k / timesteps) * multiplier) / multiplier) for k in range(1, timesteps + 1)]
    sigs = []
    ss = len(table) / n
    for x in range(n):
        sigs += [float(table[-(1 + int(x * ss))])]
    sigs += [0.0]
    return sigs


def comfy_linear_quadratic_reference(steps, threshold_noise=0.025, linear_steps=None):
    """ComfyUI's linear_quadratic_schedule (from Mochi), the n + 1 values it returns, for a model with sigma_max 1."""
    if steps == 1:
        return [1.0, 0.0]
    if linear_steps is None:
        linear_steps = steps // 2
    linear = [i * threshold_noise / linear_steps for i in range(linear_steps)]
    step_diff = linear_steps - threshold_noise * steps
    quadratic_steps = steps - linear_steps
    quadratic_coef = step_diff / (linear_steps * quadratic_steps**2)
    linear_coef = threshold_noise / linear_steps - 2 * step_diff / (quadratic_steps**2)
    const = quadratic_coef * (linear_steps**2)
    quadratic = [quadratic_coef * (i**2) + linear_coef * i + const for i in range(linear_steps, steps)]
    schedule = linear + quadratic + [1.0]
    return [1.0 - x for x in schedule]


def assert_flow_schedule(sigmas, n):
    """The call contract: n sigmas in (0, 1], strictly descending, then the appended 0."""
    assert sigmas.dtype == np.float64
    assert sigmas.shape == (n + 1,)
    assert sigmas[-1] == 0.0
    assert np.all(sigmas[:-1] > 0.0) and np.all(sigmas[:-1] <= 1.0)
    assert np.all(np.diff(sigmas) < 0.0)


# ---------------------------------------------------------------------------------------------------------------------
# Time shifts, flux_mu, stretch_to_terminal
# ---------------------------------------------------------------------------------------------------------------------

GRID = np.linspace(0.001, 1.0, 999)


@pytest.mark.parametrize("shift", [0.3, 1.0, 1.7, 3.0, 6.0, 12.0])
def test_time_shift_matches_the_sd3_formula(shift):
    np.testing.assert_allclose(time_shift(GRID, shift), static_shift_reference(GRID, shift), rtol=RTOL, atol=0)


@pytest.mark.parametrize("mu", [-0.5, 0.0, 0.5, 0.7, 1.15, 2.0])
def test_exponential_time_shift_matches_diffusers(mu):
    expected = math.exp(mu) / (math.exp(mu) + (1 / GRID - 1))
    np.testing.assert_allclose(exponential_time_shift(GRID, mu), expected, rtol=RTOL, atol=0)


@pytest.mark.parametrize("mu", [0.25, 0.7, 1.0, 3.0])
def test_linear_time_shift_matches_diffusers(mu):
    expected = mu / (mu + (1 / GRID - 1))
    np.testing.assert_allclose(linear_time_shift(GRID, mu), expected, rtol=RTOL, atol=0)


def test_time_shifts_are_one_family():
    """Static shift k = linear shift with mu = k = exponential shift with mu = log k."""
    for k in (0.5, 3.0, 7.0):
        np.testing.assert_allclose(linear_time_shift(GRID, k), time_shift(GRID, k), rtol=1e-14, atol=0)
        np.testing.assert_allclose(exponential_time_shift(GRID, math.log(k)), time_shift(GRID, k), rtol=1e-14, atol=0)


def test_time_shifts_fix_0_and_1_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn, param in ((time_shift, 3.0), (exponential_time_shift, 0.7), (linear_time_shift, 0.7)):
            assert fn(0.0, param) == 0.0
            assert fn(1.0, param) == 1.0
            out = fn(np.array([1.0, 0.5, 0.0]), param)
            assert isinstance(out, np.ndarray) and out[0] == 1.0 and out[-1] == 0.0
            assert isinstance(fn(0.5, param), float)
    assert time_shift(0.5, 3.0) == pytest.approx(0.75, rel=1e-15)
    assert time_shift(0.37, 1.0) == 0.37  # identity, as ComfyUI's time_snr_shift


def test_flux_mu_matches_calculate_shift():
    # 1024 x 1024 pixels: (1024 // 16) * (1024 // 16) = 4096 tokens -> mu = max_shift
    assert (1024 // 16) * (1024 // 16) == 4096
    assert flux_mu(4096) == pytest.approx(1.15, rel=1e-14)
    assert flux_mu(256) == pytest.approx(0.5, rel=1e-14)
    assert flux_mu(1024) == pytest.approx(0.63, rel=1e-14)  # 512 x 512
    for args in [(4096,), (1024,), (6000,), (3600, 1024, 4096, 0.95, 2.05), (77, 128, 8192, 0.3, 1.5)]:
        assert flux_mu(*args) == pytest.approx(calculate_shift_reference(*args), rel=1e-15, abs=1e-15)


def test_stretch_to_terminal_matches_diffusers_and_ends_at_the_terminal():
    sigmas = static_shift_reference(np.linspace(1.0, 0.001, 40), 3.0)
    one_minus_z = 1 - sigmas
    expected = 1 - one_minus_z / (one_minus_z[-1] / (1 - 0.1))
    out = stretch_to_terminal(sigmas, 0.1)
    np.testing.assert_allclose(out, expected, rtol=RTOL, atol=0)
    assert out[0] == 1.0 and out[-1] == 0.1
    assert np.all(np.diff(out) < 0)


# ---------------------------------------------------------------------------------------------------------------------
# FlowMatchDiscretization (diffusers FlowMatchEulerDiscreteScheduler)
# ---------------------------------------------------------------------------------------------------------------------


def test_sd3_published_timesteps():
    disc = FlowMatchDiscretization(shift=3.0)
    np.testing.assert_allclose(disc.timesteps(28), PUBLISHED_SD3_TIMESTEPS_28, rtol=0, atol=1e-4)
    sigmas = disc(28)
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0
    assert sigmas[-2] == pytest.approx(3 * (3 / 1002) / (1 + 2 * (3 / 1002)), rel=1e-14)  # shift(shift(1/1000))


def test_float64_differs_from_diffusers_float32_by_float32_rounding_only():
    for n in (4, 28, 50):
        ours = FlowMatchDiscretization(shift=3.0)(n, do_append_zero=False)
        np.testing.assert_allclose(ours, diffusers_float32_reference(n, 3.0), rtol=3e-7, atol=0)


FLOW_MATCH_CASES = [
    {},
    {"shift": 3.0},
    {"shift": 0.5},
    {"shift": 5.0, "num_train_timesteps": 500},
    {"use_dynamic_shifting": True, "mu": 0.7},
    {"use_dynamic_shifting": True, "mu": -0.3},
    {"use_dynamic_shifting": True, "mu": 0.7, "time_shift_type": "linear"},
    {"use_dynamic_shifting": True, "mu": 2.5, "time_shift_type": "linear"},
    {"shift": 3.0, "shift_terminal": 0.1},
    {"use_dynamic_shifting": True, "mu": 1.15, "shift_terminal": 0.1},
    {"shift": 3.0, "use_karras_sigmas": True},
    {"shift": 3.0, "use_exponential_sigmas": True},
    {"shift": 3.0, "use_beta_sigmas": True},
    {"use_dynamic_shifting": True, "mu": 0.7, "shift_terminal": 0.1, "use_karras_sigmas": True},
    {"shift": 3.0, "use_karras_sigmas": True, "sigma_min": 0.02, "sigma_max": 0.9},
    {"shift": 3.0, "use_exponential_sigmas": True, "sigma_min": 0.02},
    {"use_beta_sigmas": True, "sigma_max": 0.95},
]


def _reference_kwargs(params):
    spacing = None
    for flag, name in (("use_karras_sigmas", "karras"), ("use_exponential_sigmas", "exponential")):
        if params.get(flag):
            spacing = name
    if params.get("use_beta_sigmas"):
        spacing = "beta"
    keys = ("num_train_timesteps", "shift", "use_dynamic_shifting", "mu", "time_shift_type", "shift_terminal")
    kwargs = {k: params[k] for k in keys if k in params}
    return {**kwargs, "spacing": spacing, "sigma_min": params.get("sigma_min"), "sigma_max": params.get("sigma_max")}


@pytest.mark.parametrize(
    "params", FLOW_MATCH_CASES, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "default"
)
@pytest.mark.parametrize("n", [1, 2, 3, 10, 28, 50])
def test_flow_match_matches_diffusers_transcription(params, n):
    sigmas = FlowMatchDiscretization(**params)(n)
    assert_flow_schedule(sigmas, n)
    expected = diffusers_flow_match_reference(n, **_reference_kwargs(params))
    np.testing.assert_allclose(sigmas[:-1], expected, rtol=RTOL, atol=0)


def test_flow_match_many_steps():
    for params in ({"shift": 3.0}, {"use_dynamic_shifting": True, "mu": 1.15}):
        sigmas = FlowMatchDiscretization(**params)(1000)
        assert_flow_schedule(sigmas, 1000)
        expected = diffusers_flow_match_reference(1000, **_reference_kwargs(params))
        np.testing.assert_allclose(sigmas[:-1], expected, rtol=RTOL, atol=0)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    shift=st.floats(0.2, 12.0),
    mu=st.floats(-1.0, 3.0),
    dynamic=st.booleans(),
    terminal=st.one_of(st.none(), st.floats(0.01, 0.5)),
)
def test_flow_match_random_parameters(n, shift, mu, dynamic, terminal):
    params = {"shift": shift, "use_dynamic_shifting": dynamic, "shift_terminal": terminal}
    if dynamic:
        params["mu"] = mu
    sigmas = FlowMatchDiscretization(**params)(n)
    assert sigmas[0] == 1.0
    expected = diffusers_flow_match_reference(n, **_reference_kwargs(params))
    np.testing.assert_allclose(sigmas[:-1], expected, rtol=1e-11, atol=0)


def test_flow_match_starts_at_one_and_shift_terminal_ends_exactly():
    for params in ({}, {"shift": 3.0}, {"use_dynamic_shifting": True, "mu": 0.7}, {"shift_terminal": 0.1}):
        assert FlowMatchDiscretization(**params)(20)[0] == 1.0
    sigmas = FlowMatchDiscretization(shift=3.0, shift_terminal=0.1)(20)
    assert sigmas[-2] == 0.1 and sigmas[-1] == 0.0
    # one step: diffusers' stretch would divide by zero (NaN); it is skipped, as diffusers now does
    np.testing.assert_array_equal(FlowMatchDiscretization(shift_terminal=0.1)(1), [1.0, 0.0])


def test_flow_match_image_seq_len_gives_flux_mu():
    by_len = FlowMatchDiscretization(use_dynamic_shifting=True, image_seq_len=4096)
    assert by_len.effective_mu == pytest.approx(1.15, rel=1e-14)
    by_mu = FlowMatchDiscretization(use_dynamic_shifting=True, mu=calculate_shift_reference(4096))
    np.testing.assert_array_equal(by_len(28), by_mu(28))
    custom = FlowMatchDiscretization(
        use_dynamic_shifting=True,
        image_seq_len=3600,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        base_shift=0.95,
        max_shift=2.05,
    )
    assert custom.effective_mu == pytest.approx(calculate_shift_reference(3600, 1024, 4096, 0.95, 2.05), rel=1e-15)
    assert FlowMatchDiscretization(shift=3.0).effective_mu is None


def test_flow_match_shift_is_unused_with_dynamic_shifting():
    """Flux's scheduler config carries shift=3.0 next to use_dynamic_shifting=True; diffusers ignores the shift."""
    flux = FlowMatchDiscretization(shift=3.0, use_dynamic_shifting=True, mu=0.7)
    np.testing.assert_array_equal(flux(28), FlowMatchDiscretization(use_dynamic_shifting=True, mu=0.7)(28))


def test_flow_match_training_sigmas_and_timesteps():
    disc = FlowMatchDiscretization(shift=3.0)
    train = disc.train_sigmas
    assert train.shape == (1000,) and train[0] == 1.0
    np.testing.assert_allclose(train, [static_shift_reference(k / 1000, 3.0) for k in range(1000, 0, -1)], rtol=RTOL)
    np.testing.assert_allclose(disc.timesteps(10), disc(10)[:-1] * 1000, rtol=0, atol=0)


def test_flow_match_call_contract():
    disc = FlowMatchDiscretization(shift=3.0)
    np.testing.assert_array_equal(disc(10, do_append_zero=False), disc(10)[:-1])
    np.testing.assert_array_equal(disc(10, flip=True), disc(10)[::-1])
    assert FlowMatchDiscretization.parametrization == "flow" and disc.parametrization == "flow"
    assert repr(disc) == "FlowMatchDiscretization(shift=3.0)"  # only what differs from the defaults


# ---------------------------------------------------------------------------------------------------------------------
# Beta quantiles (use_beta_sigmas), without SciPy
# ---------------------------------------------------------------------------------------------------------------------


def test_beta_ppf_known_values():
    p = np.linspace(0.0, 1.0, 101)
    assert beta_ppf(0.5, 0.6, 0.6) == pytest.approx(0.5, abs=1e-15)  # symmetric
    np.testing.assert_allclose(beta_ppf(p, 0.6, 0.6) + beta_ppf(1 - p, 0.6, 0.6), 1.0, rtol=0, atol=2e-15)
    np.testing.assert_allclose(beta_ppf(p, 1.0, 1.0), p, rtol=0, atol=1e-15)  # uniform
    np.testing.assert_allclose(beta_ppf(p, 2.5, 1.0), p ** (1 / 2.5), rtol=0, atol=2e-15)  # x^a
    np.testing.assert_allclose(beta_ppf(p, 1.0, 0.6), 1 - (1 - p) ** (1 / 0.6), rtol=0, atol=2e-15)
    np.testing.assert_allclose(beta_ppf(p, 0.5, 0.5), np.sin(np.pi * p / 2) ** 2, rtol=0, atol=2e-15)  # arcsine
    ends = beta_ppf(np.array([0.0, 1.0]), 0.6, 0.6)
    assert ends[0] == 0.0 and ends[1] == 1.0
    np.testing.assert_allclose(beta_cdf(beta_ppf(p, 0.6, 0.6), 0.6, 0.6), p, rtol=0, atol=2e-15)


def test_beta_functions_match_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    scipy_special = pytest.importorskip("scipy.special")
    p = 1 - np.linspace(0, 1, 997)
    x = np.linspace(0, 1, 1001)
    for a, b in ((0.6, 0.6), (0.5, 2.0), (2.5, 0.7), (5.0, 3.0), (0.1, 0.1)):
        np.testing.assert_allclose(beta_ppf(p, a, b), scipy_stats.beta.ppf(p, a, b), rtol=0, atol=1e-14)
        np.testing.assert_allclose(beta_cdf(x, a, b), scipy_special.betainc(a, b, x), rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------------------------------------------
# DiscreteFlowDiscretization (ComfyUI ModelSamplingDiscreteFlow + simple scheduler)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0, 8.0])
@pytest.mark.parametrize("n", [1, 4, 7, 20, 28, 30, 333, 1000])
def test_discrete_flow_matches_comfy_transcription(shift, n):
    sigmas = DiscreteFlowDiscretization(shift=shift)(n)
    assert_flow_schedule(sigmas, n)
    assert sigmas[0] == 1.0
    np.testing.assert_allclose(sigmas, comfy_discrete_flow_reference(n, shift), rtol=RTOL, atol=0)


def test_discrete_flow_other_table_sizes_and_multiplier():
    disc = DiscreteFlowDiscretization(shift=3.0, multiplier=1.0, num_timesteps=100)
    np.testing.assert_allclose(disc(9), comfy_discrete_flow_reference(9, 3.0, 1.0, 100), rtol=RTOL, atol=0)
    np.testing.assert_array_equal(disc.timesteps(9), disc(9)[:-1] * 1.0)
    np.testing.assert_array_equal(
        DiscreteFlowDiscretization(shift=3.0).timesteps(4), DiscreteFlowDiscretization(shift=3.0)(4)[:-1] * 1000
    )
    table = DiscreteFlowDiscretization(shift=3.0).sigma_table
    assert table.shape == (1000,) and table[-1] == 1.0 and np.all(np.diff(table) > 0)
    np.testing.assert_allclose(table[0], static_shift_reference(0.001, 3.0), rtol=RTOL)


def test_discrete_flow_is_the_sd3_formula_on_a_truncated_grid():
    """simple: k_x = int(x * 1000 / n), sigma_x = shift(1 - k_x / 1000), so 4 steps at shift 3 are exact."""
    sigmas = DiscreteFlowDiscretization(shift=3.0)(4)
    expected = [static_shift_reference(t, 3.0) for t in (1.0, 0.75, 0.5, 0.25)] + [0.0]
    np.testing.assert_allclose(sigmas, expected, rtol=RTOL, atol=0)
    np.testing.assert_allclose(sigmas[:4], [1.0, 0.9, 0.75, 0.5], rtol=RTOL)


# ---------------------------------------------------------------------------------------------------------------------
# LinearQuadraticDiscretization (ComfyUI linear_quadratic / Mochi)
# ---------------------------------------------------------------------------------------------------------------------


LINEAR_QUADRATIC_CASES = [
    (params, n)
    for params in ({}, {"threshold_noise": 0.05}, {"linear_steps": 3}, {"threshold_noise": 0.1, "linear_steps": 5})
    for n in (1, 2, 3, 6, 10, 25, 50, 64)
    if n == 1 or params.get("linear_steps", 0) < n  # linear_steps must be < n (n = 1 ignores it, as ComfyUI)
]


@pytest.mark.parametrize("params, n", LINEAR_QUADRATIC_CASES)
def test_linear_quadratic_matches_comfy_transcription(params, n):
    reference = comfy_linear_quadratic_reference(n, **params)
    assert len(reference) == n + 1 and reference[0] == 1.0 and reference[-1] == 0.0  # the source's n + 1 list
    sigmas = LinearQuadraticDiscretization(**params)(n)
    assert_flow_schedule(sigmas, n)
    assert sigmas[0] == 1.0
    np.testing.assert_allclose(sigmas, reference, rtol=RTOL, atol=0)


def test_linear_quadratic_small_cases_by_hand():
    np.testing.assert_allclose(LinearQuadraticDiscretization()(2), [1.0, 0.975, 0.0], rtol=1e-15)
    # n = 4, L = 2: linear 1, 1 - 0.0125; the quadratic part starts at 1 - 0.025 with the same slope
    sigmas = LinearQuadraticDiscretization()(4)
    np.testing.assert_allclose(sigmas[:3], [1.0, 0.9875, 0.975], rtol=1e-15)
    np.testing.assert_array_equal(LinearQuadraticDiscretization()(1), [1.0, 0.0])


# ---------------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: FlowMatchDiscretization(shift=0.0), "shift must be > 0"),
        (lambda: FlowMatchDiscretization(shift=-3.0), "shift must be > 0"),
        (lambda: DiscreteFlowDiscretization(shift=0.0), "shift must be > 0"),
        (lambda: time_shift(0.5, -1.0), "shift must be > 0"),
        (
            lambda: FlowMatchDiscretization(use_karras_sigmas=True, use_exponential_sigmas=True),
            "use_karras_sigmas=True and use_exponential_sigmas=True",
        ),
        (lambda: FlowMatchDiscretization(use_exponential_sigmas=True, use_beta_sigmas=True), "at most one of"),
        (lambda: FlowMatchDiscretization(use_dynamic_shifting=True), "needs mu or image_seq_len"),
        (lambda: FlowMatchDiscretization(use_dynamic_shifting=True, mu=1.0, image_seq_len=4096), "not both"),
        (lambda: FlowMatchDiscretization(mu=0.7), "mu applies only with use_dynamic_shifting=True"),
        (lambda: FlowMatchDiscretization(image_seq_len=4096), "image_seq_len applies only"),
        (lambda: FlowMatchDiscretization(time_shift_type="cosine"), "time_shift_type must be one of 'exponential'"),
        (
            lambda: FlowMatchDiscretization(use_dynamic_shifting=True, mu=-0.5, time_shift_type="linear"),
            "needs mu > 0",
        ),
        (lambda: FlowMatchDiscretization(shift_terminal=0.0), r"shift_terminal must be in \(0, 1\)"),
        (lambda: FlowMatchDiscretization(shift_terminal=1.0), r"shift_terminal must be in \(0, 1\)"),
        (lambda: FlowMatchDiscretization(sigma_min=0.01), "sigma_min sets the range"),
        (lambda: FlowMatchDiscretization(use_karras_sigmas=True, sigma_max=2.0), r"sigma_max must be in \(0, 1\]"),
        (
            lambda: FlowMatchDiscretization(use_karras_sigmas=True, sigma_min=0.5, sigma_max=0.2),
            "sigma_min must be < sigma_max",
        ),
        (lambda: FlowMatchDiscretization(num_train_timesteps=1), "num_train_timesteps must be >= 2"),
        (lambda: LinearQuadraticDiscretization(threshold_noise=1.0), r"threshold_noise must be in \(0, 1\)"),
        (lambda: LinearQuadraticDiscretization(threshold_noise=0.0), "threshold_noise must be > 0"),
        (lambda: LinearQuadraticDiscretization(linear_steps=0), "linear_steps must be >= 1"),
        (lambda: DiscreteFlowDiscretization(multiplier=0), "multiplier must be > 0"),
        (lambda: flux_mu(4096, base_seq_len=256, max_seq_len=256), "max_seq_len must differ"),
        (lambda: stretch_to_terminal([1.0], 0.1), "must be < 1"),
        (lambda: time_shift(1.5, 3.0), r"sigma must hold finite values in \[0, 1\]"),
    ],
)
def test_bad_parameters_raise_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_types_raise():
    with pytest.raises(TypeError, match="use_karras_sigmas must be a bool"):
        FlowMatchDiscretization(use_karras_sigmas="yes")
    with pytest.raises(TypeError, match="shift must be a real number"):
        FlowMatchDiscretization(shift="3")
    with pytest.raises(TypeError, match="image_seq_len must be an integer"):
        FlowMatchDiscretization(use_dynamic_shifting=True, image_seq_len=4096.5)


@pytest.mark.parametrize(
    "disc", [FlowMatchDiscretization(), DiscreteFlowDiscretization(), LinearQuadraticDiscretization()], ids=repr
)
def test_num_steps_below_one_raises(disc):
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        disc(0)
    with pytest.raises(TypeError, match="num_steps must be an integer"):
        disc(2.5)


def test_step_count_limits_raise():
    with pytest.raises(ValueError, match="num_steps must be <= num_timesteps=1000"):
        DiscreteFlowDiscretization()(1001)
    with pytest.raises(ValueError, match="linear_steps must be < num_steps"):
        LinearQuadraticDiscretization(linear_steps=10)(10)
    with pytest.raises(ValueError, match="strictly decreasing"):
        LinearQuadraticDiscretization(threshold_noise=0.9)(10)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        FlowMatchDiscretization(shift=3.0, use_karras_sigmas=True, sigma_max=0.005)(10)


# ---------------------------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------------------------


def test_instantiate_from_config_dicts():
    flux = instantiate_from_config(
        {"target": "flow_match", "params": {"use_dynamic_shifting": True, "image_seq_len": 4096, "shift": 3.0}}
    )
    assert isinstance(flux, FlowMatchDiscretization) and flux.effective_mu == pytest.approx(1.15, rel=1e-14)
    sd3 = instantiate_from_config({"target": "flow_match", "params": {"shift": 3.0}})
    np.testing.assert_allclose(sd3.timesteps(28), PUBLISHED_SD3_TIMESTEPS_28, rtol=0, atol=1e-4)
    comfy = instantiate_from_config({"target": "discrete_flow", "params": {"shift": 3.0}})
    np.testing.assert_allclose(comfy(20), comfy_discrete_flow_reference(20, 3.0), rtol=RTOL, atol=0)
    mochi = instantiate_from_config({"target": "linear_quadratic", "params": {"threshold_noise": 0.025}})
    np.testing.assert_allclose(mochi(64), comfy_linear_quadratic_reference(64), rtol=RTOL, atol=0)
    by_path = instantiate_from_config({"target": "edm_sampler.flow_schedules.FlowMatchDiscretization"})
    assert isinstance(by_path, FlowMatchDiscretization)
    for disc in (flux, comfy, mochi):
        assert disc.parametrization == "flow"


def test_instantiate_from_yaml():
    config = OmegaConf.create(
        """
        target: flow_match
        params:
          shift: 3.0
          shift_terminal: 0.1
          use_karras_sigmas: true
        """
    )
    disc = instantiate_from_config(config)
    expected = diffusers_flow_match_reference(30, shift=3.0, shift_terminal=0.1, spacing="karras")
    np.testing.assert_allclose(disc(30)[:-1], expected, rtol=RTOL, atol=0)


def test_config_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="unknown parameter.*invert_sigmas"):
        instantiate_from_config({"target": "flow_match", "params": {"invert_sigmas": True}})
    with pytest.raises(ValueError, match="needs mu or image_seq_len"):
        instantiate_from_config({"target": "flow_match", "params": {"use_dynamic_shifting": True}})
