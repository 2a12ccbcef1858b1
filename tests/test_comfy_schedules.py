"""ComfyUI's schedulers, published lists and sigma-list operations: independent float64 references written from
ComfyUI's formulas (comfy/samplers.py, comfy/model_sampling.py, comfy_extras/nodes_*.py), numbers derived by hand,
chained KSamplerAdvanced-style passes, YAML composition, the compiled loop, and the error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from conftest import to_np

from edm_sampler import (
    AlignYourStepsComfyDiscretization,
    AlignYourStepsDiscretization,
    BetaDiscretization,
    ComfySchedulerDiscretization,
    DDIMUniformDiscretization,
    DiscreteFlowDiscretization,
    EulerEDMSampler,
    ExtendIntermediateSigmas,
    FlipSigmas,
    GITSDiscretization,
    HeunEDMSampler,
    KarrasDiscretization,
    KLOptimalDiscretization,
    LaplaceDiscretization,
    NormalDiscretization,
    OptimalStepsDiscretization,
    SetFirstSigma,
    SGMUniformDiscretization,
    SimpleDiscretization,
    SplitSigmas,
    StepRange,
    load_sampler,
    randn,
)
from edm_sampler.checks import ConfigError
from edm_sampler.models import GaussianDenoiser

RTOL = 1e-12

SD = {"linear_start": 0.00085, "linear_end": 0.012}
# non-default training schedules: other betas and length; a flow shift; Flux's form (multiplier 1, more levels)
DDPM_B = {"linear_start": 0.0001, "linear_end": 0.02, "num_timesteps": 400}
FLOW = {"shift": 3.0}
FLUX_LIKE = {"shift": math.exp(1.15), "multiplier": 1.0, "num_timesteps": 2000}
MODELS = {"sd": SD, "ddpm_b": DDPM_B, "flow": FLOW, "flux_like": FLUX_LIKE}


# ---------------------------------------------------------------------------------------------------------------------
# Independent float64 references (plain Python, from ComfyUI's formulas)
# ---------------------------------------------------------------------------------------------------------------------


class RefModel:
    """ComfyUI's model_sampling: ModelSamplingDiscrete (sqrt-linear betas) or ModelSamplingDiscreteFlow."""

    def __init__(self, linear_start=None, linear_end=None, num_timesteps=1000, shift=None, multiplier=1000.0):
        self.shift, self.multiplier, T = shift, multiplier, num_timesteps
        if shift is None:
            a, b = math.sqrt(linear_start), math.sqrt(linear_end)
            abar, table = 1.0, []
            for i in range(T):
                abar *= 1.0 - (a + (b - a) * i / (T - 1)) ** 2
                table.append(math.sqrt((1.0 - abar) / abar))
        else:
            table = [self.shift_of(k / T) for k in range(1, T + 1)]
        self.table = table

    def shift_of(self, t):
        return self.shift * t / (1.0 + (self.shift - 1.0) * t)

    def timestep(self, sigma):
        if self.shift is not None:
            return sigma * self.multiplier
        logs = [abs(math.log(sigma) - math.log(s)) for s in self.table]
        return float(logs.index(min(logs)))

    def sigma(self, t):
        if self.shift is not None:
            return self.shift_of(t / self.multiplier)
        t = min(max(t, 0.0), len(self.table) - 1.0)
        lo, hi = math.floor(t), math.ceil(t)
        w = t - lo
        return math.exp((1 - w) * math.log(self.table[lo]) + w * math.log(self.table[hi]))


def linspace(a, b, n):
    return [a] if n == 1 else [a + (b - a) * i / (n - 1) for i in range(n)]


def simple_ref(m, n):
    T = len(m.table)
    return [m.table[-(1 + int(x * (T / n)))] for x in range(n)]


def normal_ref(m, n, sgm=False):
    start, end = m.timestep(m.table[-1]), m.timestep(m.table[0])
    ts = linspace(start, end, n + 1)[:-1] if sgm else linspace(start, end, n)
    return [m.sigma(t) for t in ts]


def ddim_ref(m, n):
    T = len(m.table)
    return [m.table[x] for x in range(1, T, max(T // n, 1))][::-1]


def beta_ref(m, n, a, b):
    out, last = [], None
    for i in range(n):
        t = round(float(scipy.stats.beta.ppf(1.0 - i / n, a, b)) * (len(m.table) - 1))
        if t != last:
            out.append(m.table[t])
        last = t
    return out


def karras_ref(n, lo, hi, rho=7.0):
    return [(hi ** (1 / rho) + r * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho for r in linspace(0.0, 1.0, n)]


def exponential_ref(n, lo, hi):
    return [math.exp(v) for v in linspace(math.log(hi), math.log(lo), n)]


def kl_ref(n, lo, hi):
    return [math.tan((1 - u) * math.atan(hi) + u * math.atan(lo)) for u in linspace(0.0, 1.0, n)]


def laplace_ref(n, lo, hi, mu, beta):
    out = []
    for x in linspace(0.0, 1.0, n):
        sign = (0.5 - x > 0) - (0.5 - x < 0)
        lam = mu - beta * sign * math.log(1 - 2 * abs(0.5 - x) + 1e-5)
        out.append(min(max(math.exp(lam), lo), hi))
    return out


def linear_quadratic_ref(n, sigma_max, tau=0.025):
    """genmoai's linear_quadratic_schedule, scaled by sigma_max as ComfyUI does; n levels without the final 0."""
    if n == 1:
        return [sigma_max]
    L = n // 2
    Q = n - L
    d = L - tau * n
    qc, lc = d / (L * Q**2), tau / L - 2 * d / Q**2
    c = qc * L**2
    u = [i * tau / L for i in range(L)] + [qc * i**2 + lc * i + c for i in range(L, n)]
    return [(1.0 - v) * sigma_max for v in u]


def comfy_loglinear(levels, num):
    """ComfyUI's loglinear_interp: log of the reversed list, np.interp on a uniform grid, reversed back."""
    ys = np.log(np.asarray(levels, np.float64)[::-1])
    return np.exp(np.interp(np.linspace(0, 1, num), np.linspace(0, 1, len(levels)), ys))[::-1]


def published_ref(levels, n, denoise=1.0):
    """GITS/AYS/OptimalSteps nodes: steps+1 points, the last round(steps*denoise)+1 kept, the last set to 0."""
    sigmas = np.asarray(levels, np.float64) if len(levels) == n + 1 else comfy_loglinear(levels, n + 1)
    total = n if denoise >= 1.0 else round(n * denoise)
    out = sigmas[-(total + 1) :].copy()
    out[-1] = 0.0
    return out


def full(levels):
    return np.append(np.asarray(levels, np.float64), 0.0)


# ---------------------------------------------------------------------------------------------------------------------
# The model-level walkers against the references
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("n", [1, 4, 13, 40])
def test_model_level_schedules_match_the_reference(model, n):
    params, ref = MODELS[model], RefModel(**MODELS[model])
    cases = [
        (SimpleDiscretization(**params), simple_ref(ref, n)),
        (SGMUniformDiscretization(**params), normal_ref(ref, n, sgm=True)),
        (NormalDiscretization(**params), normal_ref(ref, n)),
        (DDIMUniformDiscretization(**params), ddim_ref(ref, n)),
        (BetaDiscretization(**params), beta_ref(ref, n, 0.6, 0.6)),
        (BetaDiscretization(alpha=0.45, beta=0.8, **params), beta_ref(ref, n, 0.45, 0.8)),
    ]
    for schedule, expected in cases:
        np.testing.assert_allclose(schedule(n), full(expected), rtol=RTOL, atol=0, err_msg=repr(schedule))
        assert schedule.parametrization == ("flow" if "shift" in params else "ve")


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("n", [1, 5, 12])
def test_comfy_scheduler_is_basic_scheduler_for_every_name(model, n):
    params, ref = MODELS[model], RefModel(**MODELS[model])
    lo, hi = ref.table[0], ref.table[-1]
    expected = {
        "simple": simple_ref(ref, n),
        "sgm_uniform": normal_ref(ref, n, sgm=True),
        "karras": karras_ref(n, lo, hi),
        "exponential": exponential_ref(n, lo, hi),
        "ddim_uniform": ddim_ref(ref, n),
        "beta": beta_ref(ref, n, 0.6, 0.6),
        "normal": normal_ref(ref, n),
        "linear_quadratic": linear_quadratic_ref(n, hi),
        "kl_optimal": kl_ref(n, lo, hi),
    }
    for name, levels in expected.items():
        got = ComfySchedulerDiscretization(name, **params)(n)
        np.testing.assert_allclose(got, full(levels[-n:]), rtol=1e-11, atol=0, err_msg=name)
    # denoise: int(n / denoise) steps, the last n kept (BasicScheduler)
    for name in ("karras", "normal", "beta"):
        total = int(n / 0.35)
        longer = ComfySchedulerDiscretization(name, **params)(total)
        got = ComfySchedulerDiscretization(name, denoise=0.35, **params)(n)
        np.testing.assert_array_equal(got, longer[-(n + 1) :])


def test_comfyui_numbers_by_hand():
    # flow, shift 3, simple, 5 steps: t = 1, .8, .6, .4, .2 and sigma = 3t / (1 + 2t)
    np.testing.assert_allclose(SimpleDiscretization(shift=3.0)(5), [1, 12 / 13, 9 / 11, 2 / 3, 3 / 7, 0], rtol=1e-15)
    # flow, shift 1, normal, 5 steps: timesteps linspace(1000, 1, 5), sigma = t / 1000
    np.testing.assert_allclose(NormalDiscretization(shift=1.0)(5), [1, 0.75025, 0.5005, 0.25075, 0.001, 0], rtol=1e-14)
    # SD's table ends are AYS's published SD1 ends (ComfyUI's nodes_align_your_steps.py, 10 decimals)
    sd = SimpleDiscretization(**SD)
    assert sd.model_sampling.sigma_max == pytest.approx(14.6146412293, rel=1e-10)
    assert sd.model_sampling.sigma_min == pytest.approx(0.0291671582, rel=1e-8)
    # ddim_uniform, 7 steps on 1000 levels: stride 142, levels 1, 143, ..., 995 -> 8 steps (ComfyUI's count)
    ddim = DDIMUniformDiscretization(**SD)(7)
    assert len(ddim) == 9
    np.testing.assert_array_equal(ddim[:-1], sd.model_sampling.sigmas[[995, 853, 711, 569, 427, 285, 143, 1]])
    # kl_optimal, 3 steps: the middle level is tan of the mean of the arctangents
    mid = math.tan((math.atan(0.0291675) + math.atan(14.614642)) / 2)
    np.testing.assert_allclose(KLOptimalDiscretization()(3), [14.614642, mid, 0.0291675, 0], rtol=1e-14)


def test_sgm_uniform_is_normal_with_one_more_point_and_without_the_bottom_level():
    for params in (SD, FLOW):
        for n in (3, 10):
            normal_next = NormalDiscretization(**params)(n + 1)
            sgm = SGMUniformDiscretization(**params)(n)
            np.testing.assert_array_equal(sgm[:-1], normal_next[:-2])
            # normal ends on the bottom level (DDPM: sigma_min itself), sgm_uniform stops above it
            assert normal_next[-2] < sgm[-2]
    np.testing.assert_allclose(NormalDiscretization(**SD)(6)[-2], 0.0291671582, rtol=1e-8)


def test_simple_on_a_flow_model_is_the_discrete_flow_schedule():
    for shift, n in [(1.0, 7), (3.0, 20), (6.0, 1000)]:
        np.testing.assert_array_equal(SimpleDiscretization(shift=shift)(n), DiscreteFlowDiscretization(shift=shift)(n))


def test_beta_drops_repeated_timesteps_like_comfyui():
    # 31 levels: with an odd number of intervals ppf(1/2) * 29 would be a rounding tie that scipy's last-ulp error
    # (ppf(0.5, 0.6, 0.6) = 0.5000000000000001) decides; the library's exact 0.5 rounds it to even instead
    params = {"linear_start": 0.0001, "linear_end": 0.02, "num_timesteps": 31}
    got = BetaDiscretization(**params)(40)
    expected = beta_ref(RefModel(**params), 40, 0.6, 0.6)
    assert len(expected) < 40
    np.testing.assert_allclose(got, full(expected), rtol=RTOL)
    assert np.all(np.diff(got) < 0)


def test_levels_near_zero_become_the_final_zero():
    """A table whose lowest levels are below 1e-5: ComfyUI's normal/ddim_uniform take one more point and end on the
    near-zero level instead of appending 0; here that level is the appended 0."""
    params = {"linear_start": 1e-12, "linear_end": 1e-8}
    ref = RefModel(**params)
    assert ref.table[1] < 1e-5
    got = NormalDiscretization(**params)(5)
    np.testing.assert_allclose(got, full(normal_ref(ref, 6)[:-1]), rtol=RTOL)
    stride = 1000 // 6
    np.testing.assert_allclose(
        DDIMUniformDiscretization(**params)(5), full([ref.table[x] for x in range(1, 1000, stride)][::-1][:-1]), rtol=0
    )


# ---------------------------------------------------------------------------------------------------------------------
# Range schedules
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 9, 30])
def test_range_schedules_match_the_reference(n):
    np.testing.assert_allclose(KarrasDiscretization()(n), full(karras_ref(n, 0.0291675, 14.614642)), rtol=1e-13)
    np.testing.assert_allclose(
        KarrasDiscretization(0.1, 50.0, rho=3.5)(n), full(karras_ref(n, 0.1, 50, 3.5)), rtol=1e-13
    )
    np.testing.assert_allclose(KLOptimalDiscretization(0.05, 20.0)(n), full(kl_ref(n, 0.05, 20.0)), rtol=1e-13)
    laplace = LaplaceDiscretization(0.01, 30.0, mu=0.4, beta=0.7)
    np.testing.assert_allclose(laplace(n), full(laplace_ref(n, 0.01, 30.0, 0.4, 0.7)), rtol=1e-13)
    # ComfyUI's get_sigmas_laplace returns the n levels without the 0: that is do_append_zero=False
    np.testing.assert_allclose(laplace(n, do_append_zero=False), laplace_ref(n, 0.01, 30.0, 0.4, 0.7), rtol=1e-13)


def test_laplace_defaults_clamp_the_ends_to_sd1_range():
    sigmas = LaplaceDiscretization()(10, do_append_zero=False)
    assert sigmas[0] == 14.614642 and sigmas[-1] == 0.0291675  # exp(+-0.5 log 1e-5) = 316 / 0.0032, clamped
    np.testing.assert_allclose(sigmas[1:-1], laplace_ref(10, 0.0291675, 14.614642, 0.0, 0.5)[1:-1], rtol=1e-13)


# ---------------------------------------------------------------------------------------------------------------------
# Published lists
# ---------------------------------------------------------------------------------------------------------------------

# Rows of ComfyUI's nodes_gits.py, written out again here so a typo in the library's table shows.
GITS_120_STEPS_10 = [14.61464119, 5.85520077, 2.84484982, 1.67050016, 1.08895338, 0.74807048, 0.50118381, 0.32104823,
                     0.19894916, 0.09824532, 0.02916753]  # fmt: skip
GITS_080_STEPS_20 = [14.61464119, 13.76078796, 12.96784878, 12.2308979, 11.54541874, 10.90732002, 10.31284904,
                     9.75859547, 9.24142551, 8.75849152, 8.30717278, 7.88507891, 7.49001646, 6.77309084, 5.85520077,
                     4.86714602, 3.75677586, 2.84484982, 1.78698075, 0.803307, 0.02916753]  # fmt: skip
GITS_150_STEPS_2 = [14.61464119, 0.54755926, 0.02916753]
AYS_SDXL = [14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141, 0.5550693289,
            0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582]  # fmt: skip
OSS_FLUX = [0.9968, 0.9886, 0.9819, 0.975, 0.966, 0.9471, 0.9158, 0.8287, 0.5512, 0.2808, 0.001]


def test_gits_tables_rows_interpolation_and_denoise():
    np.testing.assert_array_equal(GITSDiscretization()(10), published_ref(GITS_120_STEPS_10, 10))
    np.testing.assert_array_equal(GITSDiscretization(coeff=1.5)(2), published_ref(GITS_150_STEPS_2, 2))
    np.testing.assert_array_equal(GITSDiscretization(coeff=0.8)(20), published_ref(GITS_080_STEPS_20, 20))
    for n in (21, 37):  # beyond the tables: the 20-step row resampled log-linearly to n + 1 points
        np.testing.assert_allclose(GITSDiscretization(coeff=0.80)(n), published_ref(GITS_080_STEPS_20, n), rtol=1e-14)
    # denoise keeps the last round(n * denoise) steps of the n-step row
    np.testing.assert_array_equal(GITSDiscretization(denoise=0.55)(10), published_ref(GITS_120_STEPS_10, 10, 0.55))
    assert len(GITSDiscretization(denoise=0.55)(10)) == 7  # round(5.5) = 6 steps (Python rounds half to even)
    assert GITSDiscretization(coeff=0.85000001).coeff == 0.85  # ComfyUI looks the table up at round(coeff, 2)


def test_gits_tables_are_well_formed():
    from edm_sampler.gits_tables import GITS_NOISE_LEVELS

    assert sorted(GITS_NOISE_LEVELS) == pytest.approx([0.8 + 0.05 * i for i in range(15)])
    for rows in GITS_NOISE_LEVELS.values():
        assert [len(r) for r in rows] == list(range(3, 22))
        for row in rows:
            assert row[0] == 14.61464119 and row[-1] == 0.02916753 and np.all(np.diff(row) < 0)


def test_align_your_steps_comfy_and_its_difference_from_diffusers_lists():
    comfy = AlignYourStepsComfyDiscretization("sdxl")
    np.testing.assert_array_equal(comfy(10), published_ref(AYS_SDXL, 10))
    np.testing.assert_allclose(comfy(25), published_ref(AYS_SDXL, 25), rtol=1e-14)
    np.testing.assert_allclose(comfy(10), AlignYourStepsDiscretization("sdxl")(10), rtol=0.014)  # published digits
    # at other step counts the rules differ: ComfyUI resamples all 11 levels (ending at sigma_min), diffusers 10
    assert np.max(np.abs(comfy(20) - AlignYourStepsDiscretization("sdxl")(20))) > 1e-2
    np.testing.assert_array_equal(AlignYourStepsComfyDiscretization("SVD", denoise=0.3)(10)[:-1], [0.403, 0.173, 0.034])


def test_optimal_steps_flow_lists():
    oss = OptimalStepsDiscretization("flux")
    assert oss.model == "FLUX" and oss.parametrization == "flow"
    np.testing.assert_array_equal(oss(10), published_ref(OSS_FLUX, 10))
    np.testing.assert_allclose(oss(16), published_ref(OSS_FLUX, 16), rtol=1e-14)
    for model, n in (("Wan", 20), ("Chroma", 40)):
        sigmas = OptimalStepsDiscretization(model)(n)
        assert len(sigmas) == n + 1 and sigmas[-2] > 0.04 and np.all(np.diff(sigmas) < 0)
    flow = GaussianDenoiser(parametrization="flow")
    out = EulerEDMSampler(num_steps=10, discretization_config=oss)(flow, randn((64, 4), generator=0))
    assert 0.3 < float(np.std(to_np(out))) < 0.7  # N(0, 0.5^2) data


# ---------------------------------------------------------------------------------------------------------------------
# Sigma-list operations
# ---------------------------------------------------------------------------------------------------------------------


def test_split_sigmas_parts_share_the_boundary():
    karras = KarrasDiscretization()
    whole = karras(12)
    high, low = SplitSigmas(karras, step=5)(12), SplitSigmas(karras, step=5, part="low")(12)
    np.testing.assert_array_equal(high, whole[:6])
    np.testing.assert_array_equal(low, whole[5:])
    # SplitSigmasDenoise: the low part has the last round(12 * 0.4) = 5 steps
    np.testing.assert_array_equal(SplitSigmas(karras, denoise=0.4, part="low")(12), whole[-6:])
    np.testing.assert_array_equal(SplitSigmas(karras, denoise=0.4)(12), whole[:-5])
    np.testing.assert_array_equal(SplitSigmas(karras, step=5)(12, do_append_zero=False), whole[:6])  # no 0 to drop
    np.testing.assert_array_equal(SplitSigmas(karras, step=5, part="low")(12, do_append_zero=False), whole[5:-1])


def test_flip_set_first_and_extend():
    karras = KarrasDiscretization(0.1, 10.0)
    whole = karras(4)
    flipped = FlipSigmas(karras)(4)
    np.testing.assert_array_equal(flipped, [1e-4, *whole[-2::-1]])  # ComfyUI: a leading 0 becomes 1e-4
    np.testing.assert_array_equal(SetFirstSigma(karras, sigma=25.0)(4), [25.0, *whole[1:]])
    np.testing.assert_array_equal(SetFirstSigma(karras, sigma=25.0)(4, flip=True), [0.0, *whole[-2:0:-1], 25.0])
    for spacing, f in (
        ("linear", lambda x: x),
        ("cosine", lambda x: math.sin(x * math.pi / 2)),
        ("sine", lambda x: 1 - math.cos(x * math.pi / 2)),
    ):
        extended = ExtendIntermediateSigmas(karras, steps=3, start_at_sigma=5.0, end_at_sigma=0.5, spacing=spacing)(4)
        expected = []
        for s, s_next in zip(whole[:-1], whole[1:]):
            expected.append(s)
            if 0.5 <= s <= 5.0:
                expected += [s + f(k / 3) * (s_next - s) for k in (1, 2)]
        expected.append(0.0)
        np.testing.assert_allclose(extended, expected, rtol=1e-15, err_msg=spacing)
        assert len(extended) == len(whole) + 2 * sum(0.5 <= s <= 5.0 for s in whole)
    # start_at_sigma: ComfyUI's -1 (or None) means no upper limit; end 12 is the node's default
    assert len(ExtendIntermediateSigmas(karras, steps=2, start_at_sigma=-1.0, end_at_sigma=0.0)(4)) == 9


def test_step_range_is_ksampler_advanced():
    karras = KarrasDiscretization()
    whole = karras(10)
    np.testing.assert_array_equal(StepRange(karras, end_at_step=4)(10), [*whole[:4], 0.0])  # force_full_denoise
    np.testing.assert_array_equal(StepRange(karras, end_at_step=4, return_with_leftover_noise=True)(10), whole[:5])
    np.testing.assert_array_equal(StepRange(karras, start_at_step=4)(10), whole[4:])
    np.testing.assert_array_equal(StepRange(karras, start_at_step=2, end_at_step=6)(10), [*whole[2:6], 0.0])
    np.testing.assert_array_equal(StepRange(karras, end_at_step=10)(10), whole)  # an end at or past the last step


@pytest.mark.parametrize(
    "cls, model, schedule",
    [
        (EulerEDMSampler, GaussianDenoiser(), KarrasDiscretization()),
        (HeunEDMSampler, GaussianDenoiser(sigma_data=0.7), NormalDiscretization(**SD)),
        (EulerEDMSampler, GaussianDenoiser(parametrization="flow"), SimpleDiscretization(shift=3.0)),
        (HeunEDMSampler, GaussianDenoiser(parametrization="flow"), OptimalStepsDiscretization("FLUX")),
    ],
)
def test_two_chained_passes_equal_one_full_pass_exactly(cls, model, schedule):
    """ComfyUI's two KSamplerAdvanced: steps [0, k) with leftover noise, then [k, N) from that state without new
    noise, equal the single N-step pass bit for bit for a one-step method."""
    noise = randn((3, 5), generator=7)
    n, k = 10, 4
    one_pass = cls(num_steps=n, discretization_config=schedule)(model, noise)
    first = cls(num_steps=n, discretization_config=StepRange(schedule, end_at_step=k, return_with_leftover_noise=True))
    middle = first(model, noise)
    second = cls(num_steps=n, discretization_config=StepRange(schedule, start_at_step=k))
    np.testing.assert_array_equal(to_np(second.img2img(model, middle, add_noise=False)), to_np(one_pass))
    # the same with SplitSigmas' high and low parts
    high = cls(num_steps=n, discretization_config=SplitSigmas(schedule, step=k))(model, noise)
    low = cls(num_steps=n, discretization_config=SplitSigmas(schedule, step=k, part="low"))
    np.testing.assert_array_equal(to_np(high), to_np(middle))
    np.testing.assert_array_equal(to_np(low.img2img(model, high, add_noise=False)), to_np(one_pass))


def test_chained_passes_with_vp_latents():
    """init_noise="vp" returns the VP latent x / sqrt(1 + sigma^2); the second sampler's own call rescales it."""
    model, schedule = GaussianDenoiser(), KarrasDiscretization()
    noise = randn((3, 5), generator=8)
    one_pass = EulerEDMSampler(num_steps=10, discretization_config=schedule, init_noise="vp")(model, noise)
    first = StepRange(schedule, end_at_step=4, return_with_leftover_noise=True)
    latent = EulerEDMSampler(num_steps=10, discretization_config=first, init_noise="vp")(model, noise)
    sigma_4 = schedule(10)[4]
    exact_state = to_np(EulerEDMSampler(num_steps=10, discretization_config=first)(model, noise))
    np.testing.assert_allclose(to_np(latent), exact_state / math.sqrt(1 + sigma_4**2), rtol=1e-6)
    second = EulerEDMSampler(num_steps=10, discretization_config=StepRange(schedule, start_at_step=4), init_noise="vp")
    np.testing.assert_allclose(to_np(second(model, latent)), to_np(one_pass), rtol=0, atol=3e-7)


def test_first_pass_stops_at_the_exact_solution_level():
    """The leftover-noise pass returns the ODE state at sigmas[k] (Euler error only), not a denoised one."""
    model, schedule = GaussianDenoiser(), KarrasDiscretization()
    noise = randn((4096, 1), generator=3)
    sigmas = schedule(40)
    first_half = StepRange(schedule, end_at_step=20, return_with_leftover_noise=True)
    out = to_np(HeunEDMSampler(num_steps=40, discretization_config=first_half)(model, noise))
    exact = model.exact_solution(to_np(noise) * math.sqrt(1 + sigmas[0] ** 2), sigmas[0], sigmas[20])
    assert sigmas[20] > 0.5 and np.max(np.abs(out - exact)) < 1e-3 * np.max(np.abs(exact))


@pytest.mark.parametrize(
    "schedule, model",
    [
        (NormalDiscretization(**DDPM_B), GaussianDenoiser()),
        (KLOptimalDiscretization(0.02, 40.0), GaussianDenoiser(sigma_data=0.8)),
        (ComfySchedulerDiscretization("karras", shift=3.0), GaussianDenoiser(parametrization="flow")),
    ],
)
def test_euler_converges_at_first_order_on_the_schedules(schedule, model):
    """Schedules whose lowest level stays put as n grows (``simple`` and ``sgm_uniform`` move theirs down with n, so
    their final jump to 0 is not an O(1/n) step)."""
    noise = randn((8, 4), generator=1)
    errors = []
    for n in (16, 32, 64):
        sampler = EulerEDMSampler(num_steps=n, discretization_config=schedule)
        sigma_0 = float(schedule(n)[0])
        start = to_np(noise) * sampler.initial_scale(sigma_0, getattr(schedule, "parametrization", "ve"))
        exact = model.exact_solution(start, sigma_0, 0.0)
        errors.append(np.max(np.abs(to_np(sampler(model, noise)) - exact)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 0.85) & (orders < 1.2)), (errors, orders)


# ---------------------------------------------------------------------------------------------------------------------
# YAML, the compiled loop
# ---------------------------------------------------------------------------------------------------------------------

YAML = """
sampler:
  target: euler_edm
  params:
    num_steps: 12
    discretization_config:
      target: step_range
      params:
        start_at_step: 2
        end_at_step: 9
        return_with_leftover_noise: true
        discretization_config:
          target: extend_intermediate_sigmas
          params:
            steps: 2
            end_at_sigma: 5.0
            discretization_config:
              target: comfy_scheduler
              params: {scheduler: beta, denoise: 0.8, linear_start: 0.00085, linear_end: 0.012}
"""


def test_composed_schedules_load_from_yaml(tmp_path):
    path = tmp_path / "comfy.yaml"
    path.write_text(YAML)
    sampler = load_sampler(path)
    base = ComfySchedulerDiscretization("beta", denoise=0.8, **SD)
    direct = StepRange(ExtendIntermediateSigmas(base, steps=2, end_at_sigma=5.0), 2, 9, True)
    assert isinstance(sampler.discretization, StepRange) and repr(sampler.discretization) == repr(direct)
    np.testing.assert_array_equal(sampler.get_sigmas(), direct(12))
    assert sampler.get_sigmas()[-1] > 0  # leftover noise: the pass stops above 0


def euler_on(schedule_config: dict) -> dict:
    return {"target": "euler_edm", "params": {"discretization_config": schedule_config}}


@pytest.mark.parametrize(
    "target, params",
    [
        ("simple", {"shift": 3.0}),
        ("sgm_uniform", SD),
        ("normal", DDPM_B),
        ("ddim_uniform", SD),
        ("beta", {"alpha": 0.5, "beta": 0.5, "shift": 2.0}),
        ("karras", {}),
        ("kl_optimal", {"sigma_max": 80.0}),
        ("laplace", {"mu": 0.2}),
        ("comfy_scheduler", {"scheduler": "karras", "shift": 3.0}),
        ("gits", {"coeff": 1.05}),
        ("align_your_steps_comfy", {"model": "SD1"}),
        ("optimal_steps", {"model": "Chroma"}),
        ("split_sigmas", {"step": 3, "discretization_config": {"target": "karras"}}),
        ("flip_sigmas", {"discretization_config": {"target": "karras"}}),
        ("set_first_sigma", {"sigma": 20.0, "discretization_config": {"target": "karras"}}),
        ("extend_intermediate_sigmas", {"discretization_config": {"target": "karras"}}),
        ("step_range", {"end_at_step": 3, "discretization_config": {"target": "gits"}}),
    ],
)
def test_every_name_builds_from_a_config(target, params):
    sampler = load_sampler(euler_on({"target": target, "params": params}))
    assert len(sampler.discretization(8)) >= 2


def test_compiled_loop_on_a_real_network_equals_eager_for_a_split_schedule():
    from realnets import SHAPE, B, small_net

    from edm_sampler import Denoiser, EDMScaling

    denoiser = Denoiser(EDMScaling()).bind(small_net())
    x = randn((B, *SHAPE), generator=2)
    schedule = StepRange(KarrasDiscretization(), end_at_step=4, return_with_leftover_noise=True)
    eager = EulerEDMSampler(num_steps=7, discretization_config=schedule)(denoiser, x)
    compiled = EulerEDMSampler(num_steps=7, discretization_config=schedule, graph_loop=True)(denoiser, x)
    np.testing.assert_allclose(to_np(compiled), to_np(eager), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, error, words",
    [
        (lambda: NormalDiscretization(), ValueError, r"pass linear_start and linear_end .* or shift"),
        (lambda: SimpleDiscretization(linear_start=0.00085), ValueError, "needs both linear_start and linear_end"),
        (lambda: BetaDiscretization(shift=3.0, **SD), ValueError, "not both"),
        (lambda: SimpleDiscretization(shift=0.0), ValueError, "shift must be > 0"),
        (lambda: SimpleDiscretization(linear_start=0.02, linear_end=0.01), ValueError, "linear_start <= linear_end"),
        (lambda: ComfySchedulerDiscretization("karas", **SD), ValueError, "did you mean 'karras'"),
        (lambda: ComfySchedulerDiscretization("normal", denoise=0.0, **SD), ValueError, r"denoise must be in \(0, 1\]"),
        (lambda: OptimalStepsDiscretization("flx"), ValueError, "did you mean 'FLUX'"),
        (lambda: AlignYourStepsComfyDiscretization("sd2"), ValueError, "'SD1', 'SDXL', 'SVD'"),
        (lambda: GITSDiscretization(coeff=1.23), ValueError, "coeff must be one of 0.80, 0.85"),
        (lambda: GITSDiscretization()(1), ValueError, "num_steps must be >= 2"),
        (lambda: GITSDiscretization(denoise=0.04)(10), ValueError, "keeps round"),
        (lambda: SimpleDiscretization(**SD)(1001), ValueError, "num_steps must be <= num_timesteps=1000"),
        (lambda: LaplaceDiscretization(mu=3.0)(20), ValueError, "clamp several"),
        (lambda: KLOptimalDiscretization(1.0, 0.5), ValueError, "sigma_min must be < sigma_max"),
        (lambda: SplitSigmas(KarrasDiscretization()), ValueError, "give step or denoise"),
        (lambda: SplitSigmas(KarrasDiscretization(), step=0)(5), ValueError, "part='high' .* without a step"),
        (lambda: SplitSigmas(KarrasDiscretization(), step=5, part="low")(5), ValueError, "without a step"),
        (lambda: SplitSigmas(KarrasDiscretization(), step=1, part="lo"), ValueError, "did you mean 'low'"),
        (lambda: SetFirstSigma(KarrasDiscretization(), sigma=0.5)(5), ValueError, "must be > the schedule's second"),
        (lambda: ExtendIntermediateSigmas(KarrasDiscretization(), spacing="cos"), ValueError, "'cosine'"),
        (lambda: StepRange(KarrasDiscretization(), start_at_step=5)(5), ValueError, "leaves no step"),
        (lambda: StepRange(KarrasDiscretization(), return_with_leftover_noise="yes"), TypeError, "True or False"),
        (lambda: StepRange("karras"), TypeError, "must build a discretization"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(build, error, words):
    with pytest.raises(error, match=words):
        build()


def test_config_errors_name_the_parameters():
    with pytest.raises(ConfigError, match="unknown parameter.*shfit.*valid parameters: .*shift"):
        load_sampler(euler_on({"target": "normal", "params": {"shfit": 3.0}}))
    with pytest.raises(ValueError, match="NormalDiscretization walks the model's training noise levels"):
        load_sampler(euler_on({"target": "normal"}))
    # a flipped (ascending) schedule is for code that walks the list itself; the samplers refuse it
    with pytest.raises(ValueError, match="strictly decreasing"):
        EulerEDMSampler(num_steps=4, discretization_config=FlipSigmas(KarrasDiscretization()))(
            GaussianDenoiser(), randn((1, 2), generator=0)
        )
