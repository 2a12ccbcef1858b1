"""TCDSampler against diffusers' TCDScheduler (float64 tables, the pipeline loop, injected noise), against an
independent float64 reference of TCD's strategic stochastic sampling (Zheng et al. 2024, Algorithm 4), its order on
the exact Gaussian ODE at gamma = 0, the compiled loop, and its parameter checks."""

from __future__ import annotations

import importlib
import math
from fractions import Fraction

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import LINEAR, MEANS, SD, SIGMA_DATA, STDS, WEIGHTS, queue_sampler, rel
from realnets import SHAPE, B, conditioning, small_net

from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    EDMScaling,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    LCMSampler,
    VanillaCFG,
    as_denoiser,
    randn,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser
from edm_sampler.samplers.tcd import TCDSampler

# ---------------------------------------------------------------------------------------------------------------------
# The float64 reference: the paper's Algorithm 4 (strategic stochastic sampling), written with eps
# ---------------------------------------------------------------------------------------------------------------------


def tcd_reference(denoise, x, sigmas, *, gamma=0.3, levels=None, noises=(), param="ve"):
    """``x_s = alpha_s x0 + sigma_s eps`` at ``s = (1 - gamma) t_next`` (the level of timestep ``floor((1 - gamma)
    t_next)``, exact rational arithmetic, with a level table), then ``x_next = (alpha_next / alpha_s) x_s + sqrt(
    sigma_next^2 - (alpha_next sigma_s / alpha_s)^2) z``; the last step lands on the schedule's end without noise.
    Returns (x, nfe, draws)."""
    alpha = (lambda s: 1.0) if param == "ve" else (lambda s: 1.0 - s)
    x = np.asarray(x, np.float64)
    n, draws = len(sigmas) - 1, 0
    for i in range(n):
        s, t = float(sigmas[i]), float(sigmas[i + 1])
        x0 = denoise(x, s)
        eps = (x - alpha(s) * x0) / s
        if i == n - 1 or t == 0.0:
            s_s = t
        elif levels is None:
            s_s = (1 - gamma) * t
        else:
            t_next = int(np.argmin(np.abs(levels - t)))
            s_s = float(levels[math.floor((1 - Fraction(str(gamma))) * t_next)])
        x = alpha(s_s) * x0 + s_s * eps
        if i < n - 1 and gamma > 0:
            a = alpha(t) / alpha(s_s)
            x = a * x + math.sqrt(t * t - (a * s_s) ** 2) * np.asarray(noises[draws], np.float64)
            draws += 1
    return x, n, draws


# ---------------------------------------------------------------------------------------------------------------------
# 1. diffusers' TCDScheduler, float64, on the same eps model
# ---------------------------------------------------------------------------------------------------------------------


# The test network: smooth, nonlinear, in the timestep too, and made of correctly rounded operations only: MindSpore's
# CPU float32 tanh is off by up to 1.5e-5 (|x| in [2, 4]) and 1e-4 (|x| in [4, 9]) relative.
def eps_model_torch(x, t):
    return x * (1.0 + 0.1 * x * x) / (1.0 + 0.3 * x * x) * math.cos(float(t) / 300.0) + 0.05 * x


def eps_model_ms(x, t):
    return x * (1.0 + 0.1 * x * x) / (1.0 + 0.3 * x * x) * math.cos(float(t) / 300.0) + 0.05 * x


def float64_scheduler(config, n=None, timesteps=None):
    """diffusers' TCDScheduler with its tables recomputed in float64 (betas, alphas, alphas_cumprod, and
    final_alpha_cumprod, which TCD never reads), after set_timesteps; returns it and the VE level of every timestep."""
    diffusers = pytest.importorskip("diffusers")
    pytest.importorskip("torch")
    scheduler = diffusers.TCDScheduler(**config)
    from diffusers_oracle import float64_tables  # imports torch: only once diffusers is there

    alphas_cumprod = float64_tables(scheduler)
    if timesteps is None:
        scheduler.set_timesteps(n)
    else:
        scheduler.set_timesteps(timesteps=timesteps)
    return scheduler, np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)


def diffusers_loop(scheduler, noise, noises, gamma):
    """The pipeline loop in float64 with ``randn_tensor`` popping ``noises``: (result, calls [(x_in, t)], draws)."""
    torch = pytest.importorskip("torch")
    module = importlib.import_module(type(scheduler).__module__)
    pending = [torch.from_numpy(z) for z in noises]
    original = module.randn_tensor
    module.randn_tensor = lambda shape, **kw: pending.pop(0)
    try:
        latents = torch.from_numpy(noise) * scheduler.init_noise_sigma
        calls = []
        for t in scheduler.timesteps:
            x_in = scheduler.scale_model_input(latents, t)
            calls.append((x_in.numpy().copy(), int(t)))
            latents = scheduler.step(eps_model_torch(x_in, t), t, latents, eta=gamma).prev_sample
    finally:
        module.randn_tensor = original
    return latents.numpy(), calls, len(noises) - len(pending)


def table_denoiser(levels):
    """A plain-callable VE denoiser over the eps model: the timestep of a sigma is looked up in ``levels`` [(sigma,
    t)]; records (model input x_t = x / sqrt(1 + sigma^2), t) per call."""
    sigmas = np.array([s for s, _ in levels])
    calls = []

    def denoise(x, sigma, cond):
        s32 = float(sigma.asnumpy()[0])
        k = int(np.argmin(np.abs(sigmas - s32)))
        s, t = float(levels[k][0]), levels[k][1]
        assert abs(s - s32) <= 1e-6 * s
        x_in = x / math.sqrt(1.0 + s * s)
        calls.append((x_in.asnumpy().astype(np.float64), t))
        return x - eps_model_ms(x_in, t) * s

    denoise.calls = calls
    return denoise


PARITY = [
    # id, config, steps or custom timesteps, gamma
    ("sd-4-default-gamma", SD, 4, 0.3),
    ("sd-8-gamma0.7", SD, 8, 0.7),
    ("linear-6-gamma0.5", LINEAR, 6, 0.5),
    ("sd-custom-float32-floor", SD, [999, 700, 340, 90, 30], 0.3),  # 0.7 * 340 and 0.7 * 90 floor differently in f64
    ("linear-custom-gamma0.9", LINEAR, [999, 500, 250, 100, 50, 20], 0.9),  # 0.1 * 100 = 10 (float32), 9 (float64)
    ("sd-5-ddim", SD, 5, 0.0),
    ("sd-5-full", SD, 5, 1.0),
    ("sd-one-step", SD, 1, 0.3),
]


@pytest.mark.parametrize("name, config, steps, gamma", PARITY, ids=[p[0] for p in PARITY])
def test_matches_diffusers(name, config, steps, gamma):
    custom = isinstance(steps, list)
    scheduler, table = float64_scheduler(config, None if custom else steps, steps if custom else None)
    n = len(scheduler.timesteps)
    rng = np.random.default_rng(11)
    noise = rng.standard_normal((2, 3, 8, 8))
    noises = [rng.standard_normal((2, 3, 8, 8)) for _ in range(n)]
    expected, expected_calls, expected_draws = diffusers_loop(scheduler, noise, noises, gamma)

    timesteps = [int(t) for t in scheduler.timesteps]
    sigmas = np.append(table[timesteps], table[0])  # diffusers' last step lands on timestep 0's level
    denoise = table_denoiser(list(zip(table[timesteps], timesteps)))
    calls = []
    sampler = TCDSampler(gamma, timestep_sigmas=table)
    out = sampler(as_denoiser(denoise), Tensor(noise.astype(np.float32)), sigmas=sigmas,
                  noise_sampler=queue_sampler(noises, calls))  # fmt: skip
    out = to_np(out).astype(np.float64)

    assert expected_draws == len(calls) == (n - 1 if gamma > 0 else 0)
    assert len(expected_calls) == len(denoise.calls) == sampler.last_nfe == n
    for (x_in, t), (x_ref, t_ref) in zip(denoise.calls, expected_calls):
        assert t == t_ref
        assert rel(x_in, x_ref) <= 1e-5
    alpha_last = 1.0 / math.sqrt(1.0 + table[0] ** 2)
    err = rel(alpha_last * out, expected)
    assert err <= 1e-5, err


def test_diffusers_intermediate_timestep_is_floored_in_float32():
    """diffusers computes ``floor((1 - eta) * prev_timestep)`` with a long tensor: a float32 product. 0.7 * 90 is
    63 there (and exactly), 62 in float64; the sampler follows diffusers."""
    torch = pytest.importorskip("torch")
    assert int(torch.floor((1 - 0.3) * torch.tensor(90))) == 63
    assert math.floor((1 - 0.3) * 90) == 62
    table = np.geomspace(0.01, 100.0, 1000)
    sampler = TCDSampler(0.3, timestep_sigmas=table)
    assert sampler.intermediate(float(table[90])) == table[63]
    assert sampler.intermediate(float(table[999])) == table[699]
    assert TCDSampler(1.0, timestep_sigmas=table).intermediate(float(table[500])) == table[0]


# ---------------------------------------------------------------------------------------------------------------------
# 2. The float64 reference, both parametrizations, non-default settings
# ---------------------------------------------------------------------------------------------------------------------

VE_TABLE = np.geomspace(0.03, 40.0, 1000)
REFERENCE_CASES = [
    ("ve", dict(gamma=0.3), ve_ref.karras_sigmas(6, sigma_max=20.0)),  # ends at 0
    ("ve", dict(gamma=0.8), np.geomspace(15.0, 0.05, 7)),  # ends above 0
    ("ve", dict(gamma=0.45, timestep_sigmas=VE_TABLE), VE_TABLE[[999, 801, 600, 377, 200, 95, 0]]),
    ("ve", dict(gamma=1.0), np.geomspace(15.0, 0.05, 5)),
    ("flow", dict(gamma=0.3), np.append(np.linspace(1.0, 0.1, 7), 0.0)),  # from sigma = 1
    ("flow", dict(gamma=0.6), np.linspace(0.95, 0.05, 8)),
    ("flow", dict(gamma=0.0), np.linspace(0.95, 0.05, 8)),
]


@pytest.mark.parametrize("param, params, sigmas", REFERENCE_CASES, ids=[f"{c[0]}-{c[1]}" for c in REFERENCE_CASES])
def test_matches_float64_reference(param, params, sigmas, rng):
    n = len(sigmas) - 1
    x = rng.standard_normal((6, 2)).astype(np.float32)
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(n)]
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    calls, infos = [], []
    sampler = TCDSampler(**params, init_noise="prescaled")
    out = sampler(model, Tensor(x * sigmas[0]), sigmas=sigmas, noise_sampler=queue_sampler(noises, calls),
                  callback=infos.append)  # fmt: skip
    table = params.get("timestep_sigmas")
    ref, nfe, draws = tcd_reference(
        denoise,
        x.astype(np.float64) * sigmas[0],
        sigmas,
        gamma=params["gamma"],
        levels=table,
        noises=noises,
        param=param,
    )
    assert rel(to_np(out), ref) <= 1e-5
    assert sampler.last_nfe == nfe == len(infos) == n
    assert len(calls) == draws == (n - 1 if params["gamma"] > 0 else 0)
    assert calls == [(float(sigmas[i]), float(sigmas[i + 1])) for i in range(draws)]


def test_gamma_one_is_multistep_consistency_sampling(rng):
    """gamma = 1 jumps to the data estimate and re-noises it to the next level: LCMSampler on the same noise."""
    sigmas = np.append(np.geomspace(10.0, 0.1, 5), 0.0)
    x = rng.standard_normal((5, 2)).astype(np.float32)
    noises = [rng.standard_normal((5, 2)).astype(np.float32) for _ in range(4)]
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    got = TCDSampler(1.0)(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises))
    expected = LCMSampler()(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises))
    np.testing.assert_allclose(to_np(got), to_np(expected), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_single_step_returns_the_data_estimate(param, rng):
    """One step to 0 is the trajectory mapping to the data: D, no noise (diffusers' one-step sampling draws none)."""

    def no_noise(sigma, sigma_next):
        raise AssertionError("noise drawn on the only step")

    sigma_0 = 1.0 if param == "flow" else 8.0
    x = rng.standard_normal((4, 2)).astype(np.float32)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    out = to_np(TCDSampler(0.5)(model, Tensor(x), sigmas=[sigma_0, 0.0], noise_sampler=no_noise))
    start = x.astype(np.float64) * (sigma_0 if param == "flow" else math.sqrt(1.0 + sigma_0**2))
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    assert rel(out, denoise(start, sigma_0)) <= 1e-5


# ---------------------------------------------------------------------------------------------------------------------
# 3. gamma = 0 is DDIM: first order on the exact Gaussian ODE
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_gamma_zero_is_first_order_on_the_gaussian_ode(param):
    """Fitted slope of the error against the closed-form solution over 8-64 steps (uniform in lambda, no jump to
    0): measured -0.96 (VE) and -0.95 (flow)."""
    model = GaussianDenoiser(SIGMA_DATA, parametrization=param)
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    steps, errors = [8, 16, 32, 64], []
    for n in steps:
        if param == "ve":
            sigmas = np.geomspace(20.0, 0.05, n + 1)
        else:
            lam = np.linspace(math.log(0.02 / 0.98), math.log(0.98 / 0.02), n + 1)
            sigmas = 1.0 / (1.0 + np.exp(lam))
        exact = model.exact_solution(x.astype(np.float64) * sigmas[0], sigmas[0], sigmas[-1])
        out = TCDSampler(0.0, init_noise="edm")(model, Tensor(x), sigmas=sigmas)
        errors.append(rel(to_np(out), exact))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert errors[-1] > 1e-4
    assert -1.1 <= slope <= -0.9, f"slope {slope:.3f}, errors {errors}"


# ---------------------------------------------------------------------------------------------------------------------
# 4. graph_loop=True equals the step-by-step call
# ---------------------------------------------------------------------------------------------------------------------

GRAPH = [
    ("ve", dict(gamma=0.4), None),
    ("flow", dict(gamma=0.7), FlowMatchDiscretization(shift=3.0)),
]


@pytest.mark.parametrize("param, params, schedule", GRAPH, ids=[g[0] for g in GRAPH])
def test_graph_loop_equals_step_by_step(param, params, schedule):
    scaling = EDMScaling() if param == "ve" else FlowVelocityScaling()
    denoiser = Denoiser(scaling).bind(small_net())
    kwargs = dict(params, num_steps=5, guider_config=VanillaCFG(2.0))
    if schedule is not None:
        kwargs["discretization_config"] = schedule
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    expected = TCDSampler(**kwargs)(denoiser, noise, cond, uc, generator=5).asnumpy()
    loop = TCDSampler(graph_loop=True, **kwargs)
    got = loop(denoiser, noise, cond, uc, generator=5).asnumpy()
    assert loop.last_nfe == 5
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# 5. Parameters and contract
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(gamma=1.5), ValueError, r"gamma must be <= 1"),
        (dict(gamma=-0.1), ValueError, r"gamma must be >= 0"),
        (dict(gamma="0.3"), TypeError, r"gamma must be a real number"),
        (dict(timestep_sigmas="table"), TypeError, r"timestep_sigmas must be a list"),
        (
            dict(timestep_sigmas=[0.5, 0.4, 0.3]),
            ValueError,
            r"timestep_sigmas must be positive and strictly increasing",
        ),
        (dict(timestep_sigmas=[[0.1, 0.2]]), ValueError, r"timestep_sigmas must be a 1-d list"),
        (dict(eta=0.3), TypeError, r"TCDSampler: .*eta"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        TCDSampler(**kwargs)


def test_schedule_off_the_timestep_table_is_refused(rng):
    sampler = TCDSampler(0.3, timestep_sigmas=VE_TABLE)
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS)
    with pytest.raises(ValueError, match=r"timestep_sigmas' levels"):
        sampler(model, Tensor(rng.standard_normal((2, 2)).astype(np.float32)), sigmas=[VE_TABLE[900], 3.0, VE_TABLE[0]])


def test_repr_and_defaults():
    sampler = TCDSampler(timestep_sigmas=VE_TABLE)
    assert sampler.gamma == 0.3
    assert "gamma=0.3" in repr(sampler) and "<1000 levels" in repr(sampler)
