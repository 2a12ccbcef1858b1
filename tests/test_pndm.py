"""PLMSSampler, PNDMSampler and IPNDMSampler against diffusers' PNDMScheduler (skip_prk_steps True and False) and
IPNDMScheduler (float64 tables, the pipeline loop), against independent float64 references written from Liu et al.
2022 (PNDM: the transfer of eq. 9 in diffusers' VP latent, the pseudo Runge-Kutta warm-up of eq. 13, S-PNDM's pseudo
improved Euler start, the linear multistep of eq. 12), their measured orders on the exact Gaussian ODE, the compiled
loop, and their parameter checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
from conftest import to_np
from numerics import MEANS, SIGMA_DATA, STDS, WEIGHTS, rel
from realnets import SHAPE, B, conditioning, small_net

from mindspore import Tensor, ops

from edm_sampler import Denoiser, EDMScaling, VanillaCFG, as_denoiser, randn
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser
from edm_sampler.samplers.pndm import IPNDMSampler, PLMSSampler, PNDMSampler, ipndm_sigmas

# ---------------------------------------------------------------------------------------------------------------------
# The float64 references (Liu et al. 2022), in the VP latent x_vp = sqrt(abar) x_ve, abar = 1 / (1 + sigma^2)
# ---------------------------------------------------------------------------------------------------------------------

LINEAR_MULTISTEP = {  # PNDM eq. 12 and its lower-order start (crowsonkb's PLMS)
    1: lambda e: e[0],
    2: lambda e: (3 * e[0] - e[1]) / 2,
    3: lambda e: (23 * e[0] - 16 * e[1] + 5 * e[2]) / 12,
    4: lambda e: (55 * e[0] - 59 * e[1] + 37 * e[2] - 9 * e[3]) / 24,
}


def abar(sigma):
    return 1.0 / (1.0 + sigma * sigma)


def transfer(x, e, sigma, sigma_next):
    """PNDM eq. (9): phi(x_t, e, t, t - delta) in the VP latent."""
    a, a_next = abar(sigma), abar(sigma_next)
    denominator = a * math.sqrt(1.0 - a_next) + math.sqrt(a * (1.0 - a) * a_next)
    return math.sqrt(a_next / a) * x - (a_next - a) * e / denominator


def pndm_reference(denoise, x_ve, sigmas, *, method="plms", midpoints=None):
    """S-PNDM (``"plms"``: pseudo improved Euler, then the linear multistep of growing order) or F-PNDM (``"pndm"``:
    three pseudo Runge-Kutta steps, eq. 13, midpoints default sqrt(sigma sigma_next)). Returns (x_ve, nfe)."""
    n = len(sigmas) - 1
    x = np.asarray(x_ve, np.float64) * math.sqrt(abar(sigmas[0]))
    nfe = 0

    def eps(x_vp, sigma):
        nonlocal nfe
        nfe += 1
        x_ve = x_vp / math.sqrt(abar(sigma))
        return (x_ve - denoise(x_ve, sigma)) / sigma

    history = []
    for i in range(n):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        e = eps(x, s)
        if method == "pndm" and i < 3:
            mid = midpoints[i] if midpoints is not None else math.sqrt(s * s_next)
            e_2 = eps(transfer(x, e, s, mid), mid)
            e_3 = eps(transfer(x, e_2, s, mid), mid)
            e_4 = eps(transfer(x, e_3, s, s_next), s_next)
            combined = (e + 2 * e_2 + 2 * e_3 + e_4) / 6
        elif method == "plms" and i == 0 and n > 1:
            combined = (e + eps(transfer(x, e, s, s_next), s_next)) / 2
        else:
            combined = LINEAR_MULTISTEP[min(len(history) + 1, 4)]([e] + history)
        history = [e] + history[:2]
        x = transfer(x, combined, s, s_next)
    return x / math.sqrt(abar(sigmas[-1])), nfe


def ipndm_reference(denoise, z, n):
    """iPNDM on IPNDMScheduler's schedule sigma_i = sin(pi/2 s_i)^2, alpha_i = sqrt(1 - sigma_i^2), s_i = linspace(1,
    0, n + 1), from pure noise z: the linear multistep of growing order on eps, DDIM transfer. At alpha = 0 the state
    is its noise (eps = x) and the data estimate is taken as 0, as diffusers does. Returns (x at sigma = 0, nfe)."""
    s = np.linspace(1.0, 0.0, n + 1)
    sig = np.sin(s * math.pi / 2.0) ** 2
    alp = np.sqrt(1.0 - sig**2)
    x = np.asarray(z, np.float64)
    history = []
    for i in range(n):
        if alp[i] == 0.0:
            e = x
        else:
            level = sig[i] / alp[i]
            x_ve = x / alp[i]
            e = (x_ve - denoise(x_ve, level)) / level
        combined = LINEAR_MULTISTEP[min(len(history) + 1, 4)]([e] + history)
        history = [e] + history[:2]
        x0 = (x - sig[i] * combined) / alp[i] if alp[i] > 0.0 else 0.0 * x
        x = alp[i + 1] * x0 + sig[i + 1] * combined
    return x, n


# ---------------------------------------------------------------------------------------------------------------------
# 1. diffusers' PNDMScheduler and IPNDMScheduler, float64, on the same eps / v model
# ---------------------------------------------------------------------------------------------------------------------

SD = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)  # SD 1.x: with the two below
SD_PNDM = dict(SD, set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
LINEAR = dict(beta_schedule="linear", beta_start=0.0001, beta_end=0.02, set_alpha_to_one=True)


# The model on both sides: a tanh-like squashing written with sqrt (MindSpore's CPU tanh is an approximation with
# absolute errors up to 1e-4, which would dominate the comparison).
def model_torch(x, t, freq=1.0 / 300.0):
    torch = pytest.importorskip("torch")
    y = 0.7 * x
    return y / torch.sqrt(1.0 + y * y) * math.cos(float(t) * freq) + 0.05 * x


def model_ms(x, t, freq=1.0 / 300.0):
    y = 0.7 * x
    return y / ops.sqrt(1.0 + y * y) * math.cos(float(t) * freq) + 0.05 * x


def pndm_scheduler(config, n):
    """diffusers' PNDMScheduler with float64 betas, alphas, alphas_cumprod and final_alpha_cumprod, after
    set_timesteps(n); returns it and the float64 sigma table."""
    diffusers = pytest.importorskip("diffusers")
    pytest.importorskip("torch")
    scheduler = diffusers.PNDMScheduler(**config)
    from diffusers_oracle import float64_tables  # imports torch: only once diffusers is there

    alphas_cumprod = float64_tables(scheduler)
    final = float(scheduler.final_alpha_cumprod)
    scheduler.set_timesteps(n)
    return scheduler, np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod), math.sqrt((1.0 - final) / final)


def diffusers_loop(scheduler, noise, model):
    """The pipeline loop in float64, recording (x_in, t) at every model call."""
    torch = pytest.importorskip("torch")
    latents = torch.from_numpy(noise.astype(np.float64)) * scheduler.init_noise_sigma
    calls = []
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(latents, t)
        calls.append((x_in.numpy().copy(), t.item()))
        latents = scheduler.step(model(x_in, t), t, latents).prev_sample
    return latents.numpy(), calls


def table_denoiser(levels, v_model=False, freq=1.0 / 300.0):
    """A plain-callable VE denoiser on the eps (``v_model``: v) model: the model input is ``x / sqrt(1 + sigma^2)``, the
    timestep of a sigma is looked up in ``levels`` (float64 sigma -> diffusers' timestep); records (input, t)."""
    sigmas = np.array([s for s, _ in levels])
    calls = []

    def denoise(x, sigma, cond):
        s32 = float(sigma.asnumpy()[0])
        k = int(np.argmin(np.abs(sigmas - s32)))
        s, t = levels[k]
        assert abs(s - s32) <= 1e-6 * s
        alpha = 1.0 / math.sqrt(1.0 + s * s)
        x_in = x * alpha
        calls.append((x_in.asnumpy().astype(np.float64), t))
        out = model_ms(x_in, t, freq)
        eps = x_in * (s * alpha) + out * alpha if v_model else out  # v -> eps: sigma_vp x_t + alpha_vp v
        return x - eps * s

    denoise.calls = calls
    return as_denoiser(denoise), calls


def check_calls(calls, expected_calls):
    assert len(calls) == len(expected_calls)
    for (x_in, t), (x_ref, t_ref) in zip(calls, expected_calls):
        assert t == t_ref
        assert rel(x_in, x_ref) <= 1e-5


PNDM_PARITY = [
    # id, sampler class, scheduler config, steps
    ("plms-sd-5", PLMSSampler, dict(SD_PNDM, skip_prk_steps=True), 5),
    ("plms-sd-12", PLMSSampler, dict(SD_PNDM, skip_prk_steps=True), 12),
    ("plms-sd-1", PLMSSampler, dict(SD_PNDM, skip_prk_steps=True), 1),
    ("plms-sd-2", PLMSSampler, dict(SD_PNDM, skip_prk_steps=True), 2),
    ("plms-linear-to-0", PLMSSampler, dict(LINEAR, skip_prk_steps=True), 7),
    ("pndm-sd-6", PNDMSampler, dict(SD_PNDM), 6),
    ("pndm-linear-to-0", PNDMSampler, dict(LINEAR), 10),
]


@pytest.mark.parametrize("name, cls, config, n", PNDM_PARITY, ids=[p[0] for p in PNDM_PARITY])
def test_matches_diffusers_pndm(name, cls, config, n):
    scheduler, table, sigma_final = pndm_scheduler(config, n)
    noise = np.random.default_rng(7).standard_normal((2, 3, 8, 8))
    expected, expected_calls = diffusers_loop(scheduler, noise, model_torch)

    timesteps = scheduler._timesteps[::-1]  # t_0 > ... > t_{N-1}, each once
    sigmas = np.append(table[timesteps], sigma_final)
    levels = list(zip(table[timesteps], timesteps))
    params = {}
    if cls is PNDMSampler:  # the Runge-Kutta midpoints: timesteps[4k + 1] = t_k - (T // N) // 2
        mid_timesteps = scheduler.prk_timesteps[1:12:4]
        params["midpoint_sigmas"] = list(table[mid_timesteps])
        levels += list(zip(table[mid_timesteps], mid_timesteps))
    denoiser, calls = table_denoiser(levels)
    sampler = cls(**params)
    out = to_np(sampler(denoiser, Tensor(noise.astype(np.float32)), sigmas=sigmas))

    nfe = n + 9 if cls is PNDMSampler else n + 1 if n > 1 else 1
    assert sampler.last_nfe == len(expected_calls) == nfe
    check_calls(calls, expected_calls)
    alpha_last = 1.0 / math.sqrt(1.0 + sigma_final**2)
    assert rel(alpha_last * out, expected) <= 1e-5


@pytest.mark.parametrize("n", [6, 11])
def test_matches_diffusers_ipndm(n):
    diffusers = pytest.importorskip("diffusers")
    torch = pytest.importorskip("torch")
    scheduler = diffusers.IPNDMScheduler()
    scheduler.set_timesteps(n)
    levels_s = np.linspace(1.0, 0.0, n + 1)
    scheduler.betas = torch.from_numpy(np.sin(levels_s * math.pi / 2.0) ** 2)  # float64 tables (sigma_vp, alpha_vp)
    scheduler.alphas = torch.sqrt(1.0 - scheduler.betas**2)
    noise = np.random.default_rng(8).standard_normal((2, 3, 8, 8))
    expected, expected_calls = diffusers_loop(scheduler, noise, lambda x, t: model_torch(x, t, freq=3.0))

    sigmas = ipndm_sigmas(n)  # diffusers' levels 1..N as VE sigmas, the last 0
    timesteps = [float(t) for t in scheduler.timesteps[1:]]
    np.testing.assert_allclose(timesteps, np.arctan(sigmas[:-1]) * 2.0 / math.pi, rtol=1e-6)
    denoiser, calls = table_denoiser(list(zip(sigmas[:-1], timesteps)), v_model=True, freq=3.0)
    sampler = IPNDMSampler(init_noise="edm")  # x = sigma_0 z: where diffusers' first step puts the noise z
    out = to_np(sampler(denoiser, Tensor(noise.astype(np.float32)), sigmas=sigmas))

    assert sampler.last_nfe == n - 1  # diffusers' first call (at pure noise) has weight alpha_0 = 0
    check_calls(calls, expected_calls[1:])
    assert rel(out, expected) <= 1e-5


def test_diffusers_prk_midpoint_quirk_for_odd_step_ratios():
    """For odd T // N diffusers transfers a Runge-Kutta step's first stage to t - (T // N) // 2 but evaluates the model
    at t - T // N + (T // N) // 2, one timestep lower (N = 9: 889 -> 834, evaluated at 833); PNDMSampler uses one level
    for both (documented). With even T // N (SD's N = 50, 25, 20, 10, ...) the two agree."""
    scheduler, _, _ = pndm_scheduler(dict(SD_PNDM), 9)
    ratio = 1000 // 9
    t_0 = scheduler.prk_timesteps[0]
    assert scheduler.prk_timesteps[1] == t_0 - ratio + ratio // 2 == t_0 - ratio // 2 - 1
    scheduler, _, _ = pndm_scheduler(dict(SD_PNDM), 10)
    assert scheduler.prk_timesteps[1] == scheduler.prk_timesteps[0] - 100 // 2


# ---------------------------------------------------------------------------------------------------------------------
# 2. The float64 references, Gaussian mixture data
# ---------------------------------------------------------------------------------------------------------------------

REFERENCE_CASES = [
    ("plms", PLMSSampler, {}, ve_ref.karras_sigmas(8, sigma_max=20.0)),  # ends at 0
    ("plms", PLMSSampler, {}, np.geomspace(15.0, 0.05, 4)),
    ("pndm", PNDMSampler, {}, np.geomspace(15.0, 0.05, 9)),  # default midpoints
    ("pndm", PNDMSampler, dict(midpoint_sigmas=[10.0, 4.0, 1.5]), np.append(np.geomspace(15.0, 0.05, 7), 0.0)),
    ("pndm", PNDMSampler, {}, np.geomspace(15.0, 0.05, 3)),  # two steps, both Runge-Kutta
]


@pytest.mark.parametrize(
    "method, cls, params, sigmas", REFERENCE_CASES, ids=[f"{c[0]}-{c[2]}" for c in REFERENCE_CASES]
)
def test_matches_float64_reference(method, cls, params, sigmas, rng):
    x = rng.standard_normal((6, 2)).astype(np.float32)
    infos = []
    sampler = cls(**params)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    out = to_np(sampler(model, Tensor(x), sigmas=sigmas, callback=infos.append))
    start = x.astype(np.float64) * math.sqrt(1.0 + sigmas[0] ** 2)
    midpoints = params.get("midpoint_sigmas")
    ref, nfe = pndm_reference(
        ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS), start, sigmas, method=method, midpoints=midpoints
    )
    assert rel(out, ref) <= 1e-5
    assert sampler.last_nfe == nfe
    assert [info["i"] for info in infos] == list(range(len(sigmas) - 1))  # one report per step


@pytest.mark.parametrize("n", [2, 5, 12])
def test_ipndm_matches_float64_reference(n, rng):
    z = rng.standard_normal((6, 2)).astype(np.float32)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    out = to_np(IPNDMSampler(init_noise="edm")(model, Tensor(z), sigmas=ipndm_sigmas(n)))
    ref, _ = ipndm_reference(ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS), z.astype(np.float64), n)
    assert rel(out, ref) <= 1e-5


def test_ve_transfer_is_pndm_equation_9():
    """The Euler step x + (sigma_next - sigma) e in the VE state is eq. (9) in the VP latent, for any e."""
    rng = np.random.default_rng(0)
    for sigma, sigma_next in [(14.6, 8.3), (0.7, 0.03), (3.0, 0.0)]:
        x, e = rng.standard_normal(5), rng.standard_normal(5)
        vp = transfer(x * math.sqrt(abar(sigma)), e, sigma, sigma_next) / math.sqrt(abar(sigma_next))
        np.testing.assert_allclose(vp, x + (sigma_next - sigma) * e, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# 3. Convergence order on the exact Gaussian ODE (data N(0, 0.5^2): x(sigma) = x(sigma_0) sqrt(s^2 + sigma^2) /
# sqrt(s^2 + sigma_0^2))
# ---------------------------------------------------------------------------------------------------------------------

# Measured (fitted slopes of the library's errors, which equal the float64 reference's to 2%):
# * geometric schedules (geomspace(10, 0.1), 8-64 steps): PLMS -2.08, PNDM -2.17 (local slopes -> -2.01): second
#   order, because the multistep weights are those of uniform steps in the step index, which is what the pseudo
#   methods take whatever the spacing of the sigmas, and that leaves an O(h^3) local error;
# * uniform steps in sigma (linspace(0.8, 0.05), 8-24 steps): PNDM with the midpoints at the middle of each step
#   -3.37 (local slopes -3.0, -3.4, -3.7, then -3.8, -3.9 up to 64 steps: 4th order); PLMS there has an error that
#   changes sign, nothing to fit;
# * IPNDM on its own sin^2 schedule (8-64 steps): -1.90 (local slopes between -2.3 and -1.65): second order.
ORDERS = [
    ("plms", np.geomspace, (10.0, 0.1), [8, 16, 32, 64], (-2.2, -1.9)),
    ("pndm", np.geomspace, (10.0, 0.1), [8, 16, 32, 64], (-2.25, -1.9)),
    ("pndm-mid", np.linspace, (0.8, 0.05), [8, 12, 16, 24], (-4.1, -3.15)),
]


def gaussian_posterior_mean(x, sigma):
    return x * SIGMA_DATA**2 / (SIGMA_DATA**2 + sigma * sigma)


@pytest.mark.parametrize("method, spacing, ends, steps, bounds", ORDERS, ids=[o[0] for o in ORDERS])
def test_convergence_order_on_the_gaussian_ode(method, spacing, ends, steps, bounds):
    model = GaussianDenoiser(SIGMA_DATA)
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    errors, ref_errors = [], []
    for n in steps:
        sigmas = spacing(*ends, n + 1)
        params = {}
        if method == "pndm-mid":
            params["midpoint_sigmas"] = list((sigmas[:3] + sigmas[1:4]) / 2.0)
        cls = PLMSSampler if method == "plms" else PNDMSampler
        start = x.astype(np.float64) * sigmas[0]
        exact = model.exact_solution(start, sigmas[0], sigmas[-1])
        errors.append(rel(to_np(cls(**params, init_noise="edm")(model, Tensor(x), sigmas=sigmas)), exact))
        ref, _ = pndm_reference(
            gaussian_posterior_mean, start, sigmas, method=method[:4], midpoints=params.get("midpoint_sigmas")
        )
        ref_errors.append(rel(ref, exact))
    slope = np.polyfit(np.log(steps), np.log(ref_errors), 1)[0]
    assert bounds[0] <= slope <= bounds[1], f"slope {slope:.3f}, errors {ref_errors}"
    np.testing.assert_allclose(errors, ref_errors, rtol=0.02)  # the library's errors: the same discretization
    if errors[-1] > 1e-4:  # well above float32 rounding: the library's own slope
        assert bounds[0] <= np.polyfit(np.log(steps), np.log(errors), 1)[0] <= bounds[1]


def test_ipndm_convergence_order():
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    steps = [8, 16, 32, 64]
    errors = []
    for n in steps:  # from pure noise z the exact solution at sigma = 0 is 0.5 z
        out = IPNDMSampler(init_noise="edm")(GaussianDenoiser(SIGMA_DATA), Tensor(x), sigmas=ipndm_sigmas(n))
        errors.append(rel(to_np(out), 0.5 * x))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 1e-4 and -2.3 <= slope <= -1.6, (slope, errors)


# ---------------------------------------------------------------------------------------------------------------------
# 4. graph_loop=True equals the step-by-step call
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [PLMSSampler, PNDMSampler, IPNDMSampler], ids=lambda c: c.__name__)
def test_graph_loop_equals_step_by_step(cls):
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    kwargs = dict(num_steps=6, guider_config=VanillaCFG(2.0))
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    steps = cls(**kwargs)
    expected = steps(denoiser, noise, cond, uc).asnumpy()
    loop = cls(graph_loop=True, **kwargs)
    got = loop(denoiser, noise, cond, uc).asnumpy()
    assert loop.last_nfe == steps.last_nfe == {PLMSSampler: 7, PNDMSampler: 15, IPNDMSampler: 6}[cls]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# 5. Parameters and contract
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [PLMSSampler, PNDMSampler, IPNDMSampler], ids=lambda c: c.__name__)
def test_flow_models_are_refused_before_any_call(cls):
    calls = []
    model = as_denoiser(lambda x, sigma, cond: calls.append(1) or x, parametrization="flow")
    with pytest.raises(ValueError, match=rf"{cls.__name__} samples ve models only, but the denoiser .* a flow model"):
        cls()(model, Tensor(np.ones((2, 2), np.float32)), sigmas=[1.0, 0.5, 0.2, 0.1, 0.05, 0.0])
    assert not calls


@pytest.mark.parametrize(
    "midpoints, error, match",
    [
        ([8.0, 4.0], ValueError, r"midpoint_sigmas: need 3 values"),
        ([8.0, 4.0, 5.0], ValueError, r"midpoint_sigmas\[2\] = 5.0 must lie strictly between"),
        ([8.0, -2.0, 1.0], ValueError, r"midpoint_sigmas\[\] must be > 0"),
        (3.0, TypeError, r"midpoint_sigmas must be a list of sigmas"),
        (["a"], TypeError, r"midpoint_sigmas\[\] must be a real number"),
    ],
)
def test_bad_midpoints_are_refused_by_name(midpoints, error, match):
    sigmas = [10.0, 6.0, 3.0, 1.0, 0.0]
    model = GaussianDenoiser(SIGMA_DATA)
    with pytest.raises(error, match=match):
        PNDMSampler(midpoint_sigmas=midpoints)(model, Tensor(np.ones((2, 2), np.float32)), sigmas=sigmas)


def test_runge_kutta_step_to_zero_is_an_euler_step():
    """A warm-up step ending at sigma = 0 (its last stage would evaluate the model there) is Euler: it lands on D."""
    model = GaussianDenoiser(SIGMA_DATA)
    x = Tensor(np.full((2, 2), 3.0, np.float32))
    sampler = PNDMSampler(init_noise="prescaled")
    out = sampler(model, x, sigmas=[10.0, 1.0, 0.0]).asnumpy()
    assert sampler.last_nfe == 4 + 1  # one Runge-Kutta step (4 evaluations), then one Euler step
    one_rk = PNDMSampler(init_noise="prescaled")(model, x, sigmas=[10.0, 1.0]).asnumpy()
    s2 = SIGMA_DATA**2
    np.testing.assert_allclose(out, one_rk * s2 / (s2 + 1.0), rtol=1e-6)  # D(x, 1) of the Gaussian data model


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(TypeError, match=r"PLMSSampler: .*skip_prk_steps"):
        PLMSSampler(skip_prk_steps=True)
    with pytest.raises(ValueError, match=r"num_steps must be >= 2"):
        ipndm_sigmas(1)


def test_repr_and_callers_x_untouched(rng):
    assert repr(PNDMSampler(midpoint_sigmas=[2.0])).startswith("PNDMSampler(midpoint_sigmas=(2.0,), num_steps=None")
    x_np = rng.standard_normal((3, 2)).astype(np.float32)
    for cls in (PLMSSampler, PNDMSampler, IPNDMSampler):
        x = Tensor(x_np)
        out = cls()(GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS), x, sigmas=ve_ref.karras_sigmas(5))
        assert out is not x
        np.testing.assert_array_equal(x.asnumpy(), x_np)
