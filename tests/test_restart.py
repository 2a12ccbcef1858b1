"""Restart sampling (Xu et al. 2023, Algorithm 1): against an independent float64 reference written from the paper
(VE and flow, two intervals, K >= 2, s_noise != 1, injected noise), the exact NFE, the inner sampler alone when there
is nothing to restart, each segment a fresh run of a multistep inner sampler, the measured order of the whole
algorithm on the exact Gaussian ODE (the restart noise fixed), the marginal it preserves, the compiled loop on a real
network, the callback's steps, names, config and the errors of bad restart lists and inner samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ve_ref
import reference_flow as rf
from conftest import to_np
from numerics import MEANS, STDS, WEIGHTS, queue_sampler, rel
from realnets import SHAPE, TRACES, B, TracedNet, conditioning, small_net

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    DDIMSampler,
    Denoiser,
    DPMPP2MSampler,
    EDMScaling,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    HeunEDMSampler,
    RestartSampler,
    VanillaCFG,
    load_sampler,
    randn,
    resolve,
)
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser

# ---------------------------------------------------------------------------------------------------------------------
# The float64 reference (Algorithm 1 of the paper, Heun as its ODE solver)
# ---------------------------------------------------------------------------------------------------------------------


def alpha(param, sigma):
    return 1.0 - sigma if param == "flow" else 1.0


def restart_levels(t_max, t_min, n, rho=7.0):
    """The paper's restart schedule: n + 1 levels from t_max to t_min with Karras et al.'s rho spacing."""
    return [(t_max ** (1 / rho) + k / n * (t_min ** (1 / rho) - t_max ** (1 / rho))) ** rho for k in range(n + 1)]


def heun_ode(denoise, x, levels, count):
    """EDM's Heun (Algorithm 2 without churn) over ``levels``; no correction on a step to 0. dx/dsigma = (x - D) /
    sigma for VE and flow alike."""
    for s, s1 in zip(levels[:-1], levels[1:]):
        d = (x - denoise(x, s)) / s
        count[0] += 1
        x_next = x + (s1 - s) * d
        if s1 > 0:
            d1 = (x_next - denoise(x_next, s1)) / s1
            count[0] += 1
            x_next = x + (s1 - s) * 0.5 * (d + d1)
        x = x_next
    return x


def restart_reference(denoise, x, sigmas, intervals, *, s_noise, noises, param, ode=heun_ode, rho=7.0):
    """Algorithm 1: the main ODE step by step; after the step that reaches sigmas[j] of an interval (j, t_max, K, n),
    K times: x <- alpha(t_max) / alpha(t_min) x + s_noise sqrt(t_max^2 - (a t_min)^2) z (the forward transition of
    x = alpha x0 + sigma eps; VE: x + s_noise sqrt(t_max^2 - t_min^2) z), then the ODE from t_max back to t_min in n
    steps. Returns (x, nfe, the (t_min, t_max) of every draw)."""
    noises, count, draws = iter(noises), [0], []
    x = np.asarray(x, np.float64)
    by_level = {j: (t_max, k, n) for j, t_max, k, n in intervals}
    for i in range(len(sigmas) - 1):
        x = ode(denoise, x, [float(sigmas[i]), float(sigmas[i + 1])], count)
        if i + 1 in by_level:
            t_max, k, n = by_level[i + 1]
            t_min = float(sigmas[i + 1])
            for _ in range(k):
                a = alpha(param, t_max) / alpha(param, t_min)
                x = a * x + s_noise * math.sqrt(t_max**2 - (a * t_min) ** 2) * np.asarray(next(noises), np.float64)
                draws.append((t_min, t_max))
                x = ode(denoise, x, restart_levels(t_max, t_min, n, rho), count)
    return x, count[0], draws


def model_pair(param):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization=param)
    denoise = ve_ref.gmm_denoiser(MEANS, STDS, WEIGHTS) if param == "ve" else rf.flow_gmm_denoiser(MEANS, STDS, WEIGHTS)
    return model, denoise


VE_SIGMAS = ve_ref.karras_sigmas(8, sigma_max=20.0)  # 8 steps, 20 -> 0.002, then 0
FLOW_SIGMAS = np.append(np.linspace(1.0, 0.1, 7), 0.0)

# (param, sigmas, restart_list, s_noise, the intervals as (index of t_min, t_max, K, steps))
CASES = [
    (
        "ve",
        VE_SIGMAS,
        [
            {"index": 3, "t_max": 6.0, "restarts": 2, "steps": 3},
            {"t_min": float(VE_SIGMAS[6]) * 1.05, "t_max": float(VE_SIGMAS[4]), "restarts": 3, "steps": 2},
        ],
        0.9,
        [(3, 6.0, 2, 3), (6, float(VE_SIGMAS[4]), 3, 2)],
    ),
    (  # t_min = the final 0 (t_min is snapped to it): restart from the sample itself, Euler on the step to 0
        "ve",
        VE_SIGMAS,
        [[4, 2, 0.0001, 0.5]],  # the paper code's form: N_restart = 4 levels (3 steps), K = 2, t_min, t_max
        1.1,
        [(8, 0.5, 2, 3)],
    ),
    (
        "flow",
        FLOW_SIGMAS,
        [
            {"index": 2, "t_max": 0.95, "restarts": 2, "steps": 2},
            {"t_min": 0.27, "t_max": 0.6, "restarts": 2, "steps": 3},
        ],
        1.1,
        [(2, 0.95, 2, 2), (5, 0.6, 2, 3)],
    ),
]


@pytest.mark.parametrize("param, sigmas, restarts, s_noise, intervals", CASES, ids=["ve", "ve-to-zero", "flow"])
def test_restart_heun_matches_float64_reference(param, sigmas, restarts, s_noise, intervals, rng):
    model, denoise = model_pair(param)
    x = rng.standard_normal((6, 2)).astype(np.float32) * sigmas[0]
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(sum(i[2] for i in intervals))]
    calls = []
    sampler = RestartSampler(restart_list=restarts, s_noise=s_noise, init_noise="prescaled")
    out = to_np(sampler(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises, calls)))
    ref, nfe, draws = restart_reference(denoise, x, sigmas, intervals, s_noise=s_noise, noises=noises, param=param)
    # the paper's count: 2 N - 1 on the main path, 2 K steps per interval (one fewer per restart that ends at 0)
    to_zero = sum(k for j, _, k, _ in intervals if sigmas[j] == 0)
    expected_nfe = 2 * (len(sigmas) - 1) - 1 + sum(2 * k * n for _, _, k, n in intervals) - to_zero
    assert sampler.last_nfe == nfe == expected_nfe
    np.testing.assert_allclose(calls, draws, rtol=1e-12)  # every draw, in order, from t_min to t_max
    assert rel(out, ref) <= 1e-5, rel(out, ref)


def test_segments_start_fresh_for_a_multistep_inner_sampler(rng):
    """DPM-Solver++(2M) inside: the main pieces and every restart segment are separate runs (its history starts
    again), checked against the float64 DPM++(2M) reference run segment by segment."""
    model, denoise = model_pair("ve")
    sigmas = VE_SIGMAS
    x = rng.standard_normal((6, 2)).astype(np.float32) * sigmas[0]
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(2)]
    sampler = RestartSampler(
        restart_list=[{"index": 5, "t_max": 3.0, "restarts": 2, "steps": 3}],
        sampler_config="dpmpp_2m",
        s_noise=0.8,
        init_noise="prescaled",
    )
    out = to_np(sampler(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises)))
    ref = np.asarray(x, np.float64)
    ref = rf.dpmpp_2m_reference(denoise, ref, sigmas[:6], param="ve")[0]
    t_min = float(sigmas[5])
    for z in noises:
        ref = ref + 0.8 * math.sqrt(3.0**2 - t_min**2) * z
        ref = rf.dpmpp_2m_reference(denoise, ref, np.array(restart_levels(3.0, t_min, 3)), param="ve")[0]
    ref = rf.dpmpp_2m_reference(denoise, ref, sigmas[5:], param="ve")[0]
    assert sampler.last_nfe == 8 + 2 * 3
    assert rel(out, ref) <= 1e-5, rel(out, ref)


@pytest.mark.parametrize("inner", ["diffusers_ipndm", "unipc", "lms"])
def test_each_segment_is_a_fresh_run_of_the_inner_sampler(inner, rng):
    """Restart equals the inner sampler called on each segment in turn with the jumps in between (diffusers' iPNDM
    reads its zero history on a run's first step: a history carried over from the last segment would change it)."""
    model, _ = model_pair("ve")
    sigmas = VE_SIGMAS
    x = rng.standard_normal((6, 2)).astype(np.float32) * sigmas[0]
    noises = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(2)]
    interval = {"index": 4, "t_max": 4.0, "restarts": 2, "steps": 3}
    restart = RestartSampler(restart_list=[interval], sampler_config=inner, init_noise="prescaled")
    out = to_np(restart(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises)))

    def alone(x, levels):
        return resolve(inner)(init_noise="prescaled")(model, Tensor(np.asarray(x, np.float32)), sigmas=levels)

    t_min = float(sigmas[4])
    y = alone(x, sigmas[:5])
    for z in noises:
        y = alone(to_np(y) + math.sqrt(4.0**2 - t_min**2) * z, restart_levels(4.0, t_min, 3))
    expected = to_np(alone(to_np(y), sigmas[4:]))
    assert rel(out, expected) <= 1e-6, rel(out, expected)


@pytest.mark.parametrize("inner", ["heun_edm", "dpmpp_2m", "lms"])
@pytest.mark.parametrize("param", ["ve", "flow"])
def test_without_intervals_it_is_the_inner_sampler_bitwise(inner, param):
    model, _ = model_pair(param)
    schedule = FlowMatchDiscretization() if param == "flow" else None
    x = randn((5, 2), generator=3)
    alone = resolve(inner)(num_steps=6, discretization_config=schedule)
    restart = RestartSampler(restart_list=[], sampler_config=inner, num_steps=6, discretization_config=schedule)
    expected, got = to_np(alone(model, x, generator=1)), to_np(restart(model, x, generator=1))
    assert np.array_equal(got, expected)
    assert restart.last_nfe == alone.last_nfe


def test_restart_noise_comes_from_the_generator():
    """The jumps draw from the call's generator: the same seed gives the same sample, another seed another one."""
    model, _ = model_pair("ve")
    x = randn((5, 2), generator=3)
    sampler = RestartSampler(num_steps=10)
    a, b, c = (to_np(sampler(model, x, generator=g)) for g in (7, 7, 8))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_the_callback_and_steps_follow_the_plan():
    """One step per plan step: the callback's i counts them and its sigma is where each starts (t_max after a
    jump); the main schedule's levels come back after the restarts."""
    model, _ = model_pair("ve")
    sigmas = [10.0, 4.0, 1.0, 0.3, 0.0]
    infos = []
    sampler = RestartSampler(restart_list=[{"index": 2, "t_max": 2.0, "restarts": 2, "steps": 2}], init_noise="edm")
    sampler(model, randn((3, 2), generator=0), sigmas=sigmas, callback=infos.append, generator=0)
    mid = restart_levels(2.0, 1.0, 2)[1]
    walk = [10.0, 4.0, 2.0, mid, 2.0, mid, 1.0, 0.3]  # main to 1, twice 2 -> 1 in two steps, then the main path on
    starts = [info["sigma"] for info in infos if info["sigma"] == info["sigma_hat"]]  # each step's first evaluation
    np.testing.assert_allclose(starts, walk, rtol=1e-12)
    assert sorted({info["i"] for info in infos}) == list(range(len(walk)))
    assert len(infos) == len(walk) and sampler.last_nfe == 2 * 4 - 1 + 2 * 2 * 2  # Heun reports once a step


# ---------------------------------------------------------------------------------------------------------------------
# Convergence and the marginal on the exact Gaussian model
# ---------------------------------------------------------------------------------------------------------------------

SD = 0.5


def gaussian_flow_solution(param, x, s0, s1):
    """The probability-flow ODE of N(0, SD^2) data is linear: x(s1) = x(s0) sqrt(v(s1) / v(s0)), v the marginal
    variance alpha^2 SD^2 + sigma^2."""

    def v(s):
        return alpha(param, s) ** 2 * SD**2 + s**2

    return x * math.sqrt(v(s1) / v(s0))


def exact_restart(param, x, sigmas, j, t_max, noises, s_noise):
    """The exact solution of Algorithm 1 with these jumps: the exact ODE between the jumps."""
    t_min = float(sigmas[j])
    x = gaussian_flow_solution(param, np.asarray(x, np.float64), float(sigmas[0]), t_min)
    for z in noises:
        a = alpha(param, t_max) / alpha(param, t_min)
        x = a * x + s_noise * math.sqrt(t_max**2 - (a * t_min) ** 2) * z
        x = gaussian_flow_solution(param, x, t_max, t_min)
    return gaussian_flow_solution(param, x, t_min, float(sigmas[-1]))


# VE: 20 -> 0.5 -> 0.05 with a restart from 0.5 to 2; flow: 0.98 -> 0.2 -> 0.02, from 0.2 to 0.5; both ends above 0
ORDER = {"ve": (20.0, 0.5, 0.05, 2.0), "flow": (0.98, 0.2, 0.02, 0.5)}


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_order_two_with_heun_on_the_gaussian_ode(param):
    """With the restart noise fixed, the result is a function of the discretization: main path and restart segments
    refined together (n steps each), its error against the exact composition falls as n^-2 (Heun). Measured slopes
    (n = 8, 16, 32): VE -2.10, flow -1.98; local orders to n = 64: VE 2.12, 2.08, 2.04, flow 1.98, 1.99, 1.99."""
    top, t_min, bottom, t_max = ORDER[param]
    model = GaussianDenoiser(SD, parametrization=param)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 9)).astype(np.float32)
    noises = [rng.standard_normal((4, 9)).astype(np.float32) for _ in range(2)]
    errors = []
    for n in (8, 16, 32):
        sigmas = np.concatenate([restart_levels(top, t_min, n, 2.0), restart_levels(t_min, bottom, n, 2.0)[1:]])
        sampler = RestartSampler(
            restart_list=[{"index": n, "t_max": t_max, "restarts": 2, "steps": n}], s_noise=0.9, init_noise="edm"
        )
        out = to_np(sampler(model, Tensor(x), sigmas=sigmas, noise_sampler=queue_sampler(noises)))
        exact = exact_restart(param, x * sigmas[0], sigmas, n, t_max, noises, 0.9)
        errors.append(rel(out, exact))
    slope = np.polyfit(np.log([8, 16, 32]), np.log(errors), 1)[0]
    assert -2.25 <= slope <= -1.85, (slope, errors)


@pytest.mark.parametrize("param", ["ve", "flow"])
def test_the_jumps_keep_the_marginal(param):
    """On N(0, 0.25 I) data the exact marginal at t_min is preserved by the forward jump and the ODE back: the samples
    end with variance 0.25 (the sampling error of 16000 values is about 1%); restart noise 1.5 times too large does
    not keep it."""
    model = GaussianDenoiser(SD, parametrization=param)
    schedule = FlowMatchDiscretization() if param == "flow" else None
    t_max = 0.8 if param == "flow" else 2.0
    sampler = RestartSampler(
        restart_list=[{"t_min": 0.2, "t_max": t_max, "restarts": 3, "steps": 12}],
        num_steps=24,
        discretization_config=schedule,
    )
    out = to_np(sampler(model, randn((4000, 4), generator=0), generator=1))
    assert abs(out.var() / SD**2 - 1.0) < 0.03, out.var()
    # the same with the restart noise scaled by 1.5: the marginal is no longer the data's
    noisy = RestartSampler(**{**sampler_kwargs(sampler), "s_noise": 1.5})
    assert abs(to_np(noisy(model, randn((4000, 4), generator=0), generator=1)).var() / SD**2 - 1.0) > 0.05


def sampler_kwargs(sampler):
    return dict(
        restart_list=sampler.restart_list,
        num_steps=sampler.num_steps,
        discretization_config=sampler.discretization,
        s_noise=sampler.s_noise,
    )


# ---------------------------------------------------------------------------------------------------------------------
# graph_loop=True and graph mode on a real network
# ---------------------------------------------------------------------------------------------------------------------

GRAPH = [
    ("ve", "heun_edm", [{"index": 2, "t_max": 5.0, "restarts": 2, "steps": 2}, [3, 2, 0.06, 0.3]], 25),
    ("flow", "dpmpp_2m", [{"index": 2, "t_max": 0.9, "restarts": 2, "steps": 2}, [3, 2, 0.06, 0.3]], 13),
]


@pytest.mark.parametrize("param, inner, restarts, nfe", GRAPH, ids=["ve-heun", "flow-dpmpp_2m"])
def test_graph_loop_equals_eager_and_compiles_once(param, inner, restarts, nfe):
    denoiser = Denoiser(EDMScaling() if param == "ve" else FlowVelocityScaling()).bind(small_net(TracedNet))
    kwargs = dict(num_steps=5, guider_config=VanillaCFG(2.0), sampler_config=inner, s_noise=0.95, restart_list=restarts)
    if param == "flow":
        kwargs["discretization_config"] = FlowMatchDiscretization(shift=3.0)
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    eager, loop = RestartSampler(**kwargs), RestartSampler(graph_loop=True, **kwargs)
    expected = to_np(eager(denoiser, noise, cond, uc, generator=5))
    got = to_np(loop(denoiser, noise, cond, uc, generator=5))
    assert loop.last_nfe == eager.last_nfe == nfe
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    del TRACES[:]
    cond, uc = conditioning(1)
    again = to_np(loop(denoiser, noise, cond, uc, generator=6))  # new noise and conditioning: the same graph
    assert TRACES == [] and not np.array_equal(again, got)


def test_graph_mode_step_by_step_equals_eager():
    """Graph mode without graph_loop: each plan step is one compiled step graph, its count the plan's."""
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    kwargs = dict(num_steps=3, guider_config=VanillaCFG(2.0), restart_list=[[3, 2, 0.5, 3.0]])
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    expected = to_np(RestartSampler(**kwargs)(denoiser, noise, cond, uc, generator=5))
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        sampler = RestartSampler(**kwargs)
        got = to_np(sampler(denoiser, noise, cond, uc, generator=5))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert sampler.last_nfe == 5 + 2 * 2 * 2
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------------------
# Names, config, errors
# ---------------------------------------------------------------------------------------------------------------------


def test_short_name_config_and_list_forms():
    assert resolve("restart") is RestartSampler
    shipped = load_sampler("restart.yaml")
    assert shipped.num_steps == 18 and isinstance(shipped.sampler_config, HeunEDMSampler)
    (interval,) = shipped.restart_list
    assert (interval.t_min, interval.t_max, interval.restarts, interval.steps) == (0.06, 0.30, 2, 2)
    # the reference code's [N_restart, K, t_min, t_max] is the same interval (N_restart counts levels)
    assert RestartSampler(restart_list=[[3, 2, 0.06, 0.30]]).restart_list == shipped.restart_list
    inner = RestartSampler(sampler_config={"target": "dpmpp_2m"}).sampler_config
    assert isinstance(inner, DPMPP2MSampler)
    assert isinstance(RestartSampler(sampler_config=DDIMSampler(eta=0.0)).sampler_config, DDIMSampler)
    ode = RestartSampler(sampler_config={"target": "euler_ancestral", "params": {"eta": 0.0}})  # eta 0: an ODE
    assert ode.sampler_config.eta == 0.0 and ode.history == 0


GOOD = {"t_min": 0.1, "t_max": 1.0, "restarts": 2, "steps": 2}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(restart_list=[{**GOOD, "t_max": 0.1}]), ValueError, r"restart_list\[0\]: t_max must be > t_min"),
        (dict(restart_list=[{**GOOD, "restarts": 0}]), ValueError, r"restart_list\[0\].restarts must be >= 1"),
        (dict(restart_list=[{**GOOD, "steps": 0}]), ValueError, r"restart_list\[0\].steps must be >= 1"),
        (dict(restart_list=[{**GOOD, "index": 3}]), ValueError, r"exactly one of t_min .* or index"),
        (dict(restart_list=[{"t_min": 0.1, "restarts": 1, "steps": 1}]), ValueError, r"needs t_max, restarts, steps"),
        (dict(restart_list=[{**GOOD, "K": 2}]), ValueError, r"unknown key\(s\) K; allowed: t_min, index, t_max"),
        (dict(restart_list=[{**GOOD, "t_min": None}]), TypeError, r"restart_list\[0\].t_min must be a real number"),
        (dict(restart_list=[GOOD, {**GOOD, "t_max": -1.0}]), ValueError, r"restart_list\[1\].t_max must be > 0"),
        (dict(restart_list=[[1, 2, 0.1, 1.0]]), ValueError, r"N_restart, the restart segment's levels\) must be >= 2"),
        (dict(restart_list=[[3, 2, 0.1]]), ValueError, r"paper's \[N_restart, K, t_min, t_max\]"),
        (dict(restart_list=GOOD), TypeError, r"restart_list must be a list of restart intervals"),
        (dict(restart_list=["0.1"]), TypeError, r"restart_list\[0\] must be a mapping"),
        (dict(rho=0.0), ValueError, r"rho must be > 0"),
        (dict(s_noise=-1.0), ValueError, r"s_noise must be >= 0"),
        (dict(sampler_config="euler_ancestral"), ValueError, r"EulerAncestralSampler.* draws noise.*must be determin"),
        (dict(sampler_config={"target": "heun_edm", "params": {"s_churn": 5.0}}), ValueError, r"draws noise"),
        (dict(sampler_config="dpmpp_sde"), ValueError, r"draws noise"),
        (dict(sampler_config="dpm_adaptive"), ValueError, r"DPMSolverAdaptiveSampler has no host plan"),
        (dict(sampler_config="edm"), TypeError, r"sampler_config must build a sampler"),
        (dict(sampler_config="restart"), ValueError, r"cannot be a RestartSampler"),
        (dict(sampler_config=HeunEDMSampler(num_steps=4)), ValueError, r"sets num_steps, which Restart does not use"),
        (dict(sampler_config=HeunEDMSampler(guider_config=VanillaCFG(2.0))), ValueError, r"sets guider_config"),
    ],
)
def test_bad_restart_lists_and_inner_samplers_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        RestartSampler(**kwargs)


@pytest.mark.parametrize(
    "param, restarts, match",
    [
        ("ve", [{"index": 7, "t_max": 5.0, "restarts": 1, "steps": 1}], r"index=7 is off the schedule: its 6 steps"),
        ("ve", [{"index": 2, "t_max": 1.0, "restarts": 1, "steps": 1}], r"t_max=1 must be above t_min = sigmas\[2\]"),
        ("ve", [{"t_min": 70.0, "t_max": 90.0, "restarts": 1, "steps": 1}], r"t_min=70 is nearest to the .* first"),
        ("ve", [{"t_min": 0.1, "t_max": 1.0, "restarts": 1, "steps": 1}, {**GOOD, "t_min": 0.09}], r"restarts at"),
        ("flow", [{"index": 2, "t_max": 1.5, "restarts": 1, "steps": 1}], r"t_max=1.5 is above the flow model's"),
    ],
)
def test_schedule_dependent_errors_come_before_any_model_call(param, restarts, match):
    calls = []

    class Counting(GaussianDenoiser):
        def __call__(self, *args, **kwargs):
            calls.append(1)
            return super().__call__(*args, **kwargs)

    schedule = FlowMatchDiscretization() if param == "flow" else None
    sampler = RestartSampler(restart_list=restarts, num_steps=6, discretization_config=schedule)
    with pytest.raises(ValueError, match=match):
        sampler(Counting(SD, parametrization=param), randn((2, 2), generator=0), generator=0)
    assert calls == []
    RestartSampler(restart_list=[], num_steps=6, discretization_config=schedule)(
        Counting(SD, parametrization=param), randn((2, 2), generator=0)
    )
    assert len(calls) > 0  # the counter sees the model calls of a good call


def test_an_inner_sampler_that_draws_only_on_this_schedule_is_refused_at_the_call():
    """EDM churn limited to s_tmin <= sigma <= s_tmax: no draw on the probe schedule, a draw on the restart segment."""
    inner = HeunEDMSampler(s_churn=2.0, s_tmin=3.0, s_tmax=3.5)
    sampler = RestartSampler(sampler_config=inner, restart_list=[{"index": 3, "t_max": 3.2, "restarts": 1, "steps": 2}])
    with pytest.raises(ValueError, match=r"draws noise, so it is not an ODE sampler"):
        sampler(GaussianDenoiser(SD), randn((2, 2), generator=0), sigmas=[10.0, 5.0, 2.0, 1.0, 0.0], generator=0)
