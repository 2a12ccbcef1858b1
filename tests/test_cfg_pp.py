"""The CFG++ samplers (Chung et al. 2024; ComfyUI's ``*_cfg_pp``): against float64 references written from the
paper's update ``x' = alpha' D + sigma' eps_u`` and ComfyUI's formulas (VE and flow, CFG scale 1.7, injected noise,
non-default eta / s_noise / gamma), their plain twins when guidance is off, the guider's unconditional estimate
through every model path (eager, graph mode step by step, graph_loop) on a real nn.Cell, and the errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_flow as rf
from numerics import queue_sampler, rel
from realnets import SHAPE, TRACES, B, TracedNet, conditioning, small_net
from test_res_multistep import interpolant_weights

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    DPMPP2MCFGPPSampler,
    DPMPP2MSampler,
    DPMPP2SAncestralCFGPPSampler,
    DPMPP2SAncestralSampler,
    EDMDiscretization,
    EDMScaling,
    EulerAncestralCFGPPSampler,
    EulerAncestralSampler,
    EulerCFGPPSampler,
    EulerEDMSampler,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    GradientEstimationCFGPPSampler,
    GradientEstimationSampler,
    MultiConditionCFG,
    ResMultistepAncestralCFGPPSampler,
    ResMultistepAncestralSampler,
    ResMultistepCFGPPSampler,
    ResMultistepSampler,
    VanillaCFG,
    randn,
    resolve,
)

SCALE, SD2, DIM, N = 1.7, 0.3, 3, 7
FLOW3 = FlowMatchDiscretization(shift=3.0)
MU_C = np.array([[1.0, -0.5, 0.3], [-0.8, 0.2, 0.9]])
MU_U = np.array([[0.2, 0.1, -0.1], [0.0, -0.3, 0.4]])


class ConditionalGaussian:
    """Data ``N(mu, SD2 I)`` with ``mu = cond["vector"]`` per sample: an exact denoiser whose conditional and
    unconditional estimates differ (VE or flow)."""

    def __init__(self, parametrization):
        self.parametrization = parametrization

    def __call__(self, x, sigma, cond):
        mu, s = cond["vector"], sigma.reshape(-1, 1)
        a = 1.0 - s if self.parametrization == "flow" else 1.0
        return mu + (x - mu * a) * (a * SD2 / (a * a * SD2 + s * s))


def exact(x, sigma, mu, param):
    a = 1.0 - sigma if param.flow else 1.0
    return mu + (x - a * mu) * (a * SD2 / (a * a * SD2 + sigma**2))


def pair(param, scale=SCALE):
    """The guided and unconditional float64 estimates."""

    def denoise(x, sigma):
        cond, uncond = exact(x, sigma, MU_C, param), exact(x, sigma, MU_U, param)
        return uncond + scale * (cond - uncond), uncond

    return denoise


def setup(param):
    p = rf.as_param(param)
    schedule = EDMDiscretization() if param == "ve" else FlowMatchDiscretization(shift=3.0)
    sigmas = np.asarray(schedule(N), np.float64)
    x0 = np.random.default_rng(3).standard_normal((2, DIM)) * (sigmas[0] if param == "ve" else 1.0)
    noises = list(np.random.default_rng(4).standard_normal((2 * N, 2, DIM)))
    return p, schedule, sigmas, x0, noises


def run(cls, param, schedule, x0, noises=(), scale=SCALE, **params):
    sampler = cls(discretization_config=schedule, guider_config=VanillaCFG(scale), init_noise="prescaled", **params)
    cond = {"vector": Tensor(MU_C.astype(np.float32))}
    uc = {"vector": Tensor(MU_U.astype(np.float32))}
    out = sampler(
        ConditionalGaussian(param), Tensor(x0.astype(np.float32)), cond, uc, num_steps=N,
        noise_sampler=queue_sampler(noises),
    )  # fmt: skip
    return out.asnumpy(), sampler.last_nfe


# ---------------------------------------------------------------------------------------------------------------------
# float64 references
# ---------------------------------------------------------------------------------------------------------------------


def eps(x, sigma, uncond, p):
    return (x - p.alpha(sigma) * uncond) / sigma


def euler_ancestral_cfg_pp_ref(denoise, x, sigmas, p, *, eta=0.0, s_noise=1.0, noises=()):
    """The paper's Algorithm 1 (DDIM with CFG++): ``x' = alpha' D + sigma' eps_u``, to ``sigma_down`` and then noise
    (ComfyUI ``euler_ancestral_cfg_pp``; ``eta = 0`` is ``euler_cfg_pp``)."""
    noises, nfe = iter(noises), 0
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        guided, uncond = denoise(x, sigma)
        nfe += 1
        down, a, up = p.split(sigma, sigma_next, eta)
        x = guided if down == 0 else p.alpha(down) * guided + down * eps(x, sigma, uncond, p)
        if up > 0 and s_noise > 0:
            x = a * x + s_noise * up * next(noises)
    return x, nfe


def dpmpp_2m_cfg_pp_ref(denoise, x, sigmas, p):
    """ComfyUI's ``dpmpp_2m_cfg_pp`` written in lambda = log(alpha / sigma): ``x' = (sigma'/sigma) (x - alpha D_u) +
    alpha' D + alpha' (1 - e^-h) (D - D_u,prev) / (2 r)``, ``r = h_prev / h``."""
    previous = None
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        guided, uncond = denoise(x, sigma)
        if sigma_next == 0:
            x = guided
            continue
        h = p.lam_step(sigma, sigma_next)
        new = (sigma_next / sigma) * (x - p.alpha(sigma) * uncond) + p.alpha(sigma_next) * guided
        if previous is not None and not math.isinf(h):
            old_uncond, h_prev = previous
            new = new + p.alpha(sigma_next) * -math.expm1(-h) * (guided - old_uncond) / (2 * h_prev / h)
        x = new
        previous = None if math.isinf(h) else (uncond, h)
    return x


def dpmpp_2s_ancestral_cfg_pp_ref(denoise, x, sigmas, p, *, eta=1.0, s_noise=1.0, noises=()):
    """ComfyUI's ``dpmpp_2s_ancestral_cfg_pp`` in lambda: both moves start from ``x + alpha (D - D_u)``, the midpoint
    at half the lambda step to ``sigma_down``."""
    noises, nfe = iter(noises), 0
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        guided, uncond = denoise(x, sigma)
        nfe += 1
        down, a, up = p.split(sigma, sigma_next, eta)
        shifted = x + p.alpha(sigma) * (guided - uncond)
        h = p.lam_step(sigma, down) if down > 0 else math.inf
        if math.isinf(h):
            x = guided if down == 0 else shifted + (down - sigma) * (shifted - guided) / sigma
        else:
            mid = p.lam_fraction(sigma, down, 0.5)
            x_mid = (mid / sigma) * shifted - p.alpha(mid) * math.expm1(-h / 2) * guided
            guided_mid, _ = denoise(x_mid, mid)
            nfe += 1
            x = (down / sigma) * shifted - p.alpha(down) * math.expm1(-h) * guided_mid
        if up > 0 and s_noise > 0:
            x = a * x + s_noise * up * next(noises)
    return x, nfe


def res_cfg_pp_ref(denoise, x, sigmas, p, *, eta=0.0, s_noise=1.0, noises=()):
    """RES (arXiv:2308.02157, integrated by quadrature) from ``x + alpha (D - D_u)`` with the guided estimate as the
    newest node and the previous unconditional one as the older node."""
    noises, previous = iter(noises), None
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        guided, uncond = denoise(x, sigma)
        down, a, up = p.split(sigma, sigma_next, eta)
        shifted = x + p.alpha(sigma) * (guided - uncond)
        h = p.lam_step(sigma, down) if down > 0 else math.inf
        if previous is None or math.isinf(h):
            x = guided if down == 0 else p.alpha(down) * guided + down * eps(x, sigma, uncond, p)
        else:
            old_uncond, h_prev = previous
            w_new, w_old = interpolant_weights(h, h_prev)
            x = (down / sigma) * shifted + p.alpha(down) * (w_new * guided + w_old * old_uncond)
        if up > 0 and s_noise > 0:
            x = a * x + s_noise * up * next(noises)
        previous = None if math.isinf(h) else (uncond, h)
    return x


def gradient_estimation_cfg_pp_ref(denoise, x, sigmas, p, *, gamma=2.0):
    """ComfyUI's ``gradient_estimation_cfg_pp`` with the rectified-flow data weight: the gradient is ``eps_u - (1 -
    alpha) D / sigma`` (``(x - D_u) / sigma`` for VE), ``x' = alpha' D + sigma' eps_u`` plus ``(gamma - 1)
    (sigma' - sigma) (d - d_prev)`` from the second step on."""
    d_prev = None
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        guided, uncond = denoise(x, sigma)
        e = eps(x, sigma, uncond, p)
        d = e - (1 - p.alpha(sigma)) * guided / sigma
        if sigma_next == 0:
            x = guided
        else:
            x = p.alpha(sigma_next) * guided + sigma_next * e
            if i > 0:
                x = x + (gamma - 1) * (sigma_next - sigma) * (d - d_prev)
        d_prev = d
    return x


# ---------------------------------------------------------------------------------------------------------------------
# against the references
# ---------------------------------------------------------------------------------------------------------------------

PARAMS = ["ve", "flow"]


@pytest.mark.parametrize("param", PARAMS)
def test_euler_cfg_pp_is_the_papers_ddim_update(param):
    p, schedule, sigmas, x0, _ = setup(param)
    got, nfe = run(EulerCFGPPSampler, param, schedule, x0)
    ref, ref_nfe = euler_ancestral_cfg_pp_ref(pair(p), x0, sigmas, p)
    assert rel(got, ref) < 2e-5 and nfe == ref_nfe == N


@pytest.mark.parametrize("param", PARAMS)
def test_euler_ancestral_cfg_pp(param):
    p, schedule, sigmas, x0, noises = setup(param)
    got, nfe = run(EulerAncestralCFGPPSampler, param, schedule, x0, noises, eta=0.7, s_noise=0.8)
    ref, _ = euler_ancestral_cfg_pp_ref(pair(p), x0, sigmas, p, eta=0.7, s_noise=0.8, noises=noises)
    assert rel(got, ref) < 2e-5 and nfe == N


@pytest.mark.parametrize("param", PARAMS)
def test_dpmpp_2s_ancestral_cfg_pp(param):
    p, schedule, sigmas, x0, noises = setup(param)
    got, nfe = run(DPMPP2SAncestralCFGPPSampler, param, schedule, x0, noises, eta=0.6, s_noise=1.2)
    ref, ref_nfe = dpmpp_2s_ancestral_cfg_pp_ref(pair(p), x0, sigmas, p, eta=0.6, s_noise=1.2, noises=noises)
    assert rel(got, ref) < 2e-5 and nfe == ref_nfe


@pytest.mark.parametrize("param", PARAMS)
def test_dpmpp_2m_cfg_pp_is_comfyuis_formula(param):
    p, schedule, sigmas, x0, _ = setup(param)
    got, nfe = run(DPMPP2MCFGPPSampler, param, schedule, x0)
    assert rel(got, dpmpp_2m_cfg_pp_ref(pair(p), x0, sigmas, p)) < 2e-5 and nfe == N


@pytest.mark.parametrize("param", PARAMS)
@pytest.mark.parametrize("cls, eta", [(ResMultistepCFGPPSampler, 0.0), (ResMultistepAncestralCFGPPSampler, 0.5)])
def test_res_multistep_cfg_pp(param, cls, eta):
    p, schedule, sigmas, x0, noises = setup(param)
    params = {} if eta == 0 else dict(eta=eta, s_noise=0.9)
    got, _ = run(cls, param, schedule, x0, noises, **params)
    ref = res_cfg_pp_ref(pair(p), x0, sigmas, p, eta=eta, s_noise=0.9, noises=noises)
    assert rel(got, ref) < 2e-5


@pytest.mark.parametrize("param", PARAMS)
def test_gradient_estimation_cfg_pp(param):
    p, schedule, sigmas, x0, _ = setup(param)
    got, _ = run(GradientEstimationCFGPPSampler, param, schedule, x0, ge_gamma=2.5)
    assert rel(got, gradient_estimation_cfg_pp_ref(pair(p), x0, sigmas, p, gamma=2.5)) < 2e-5


def test_comfyuis_ve_numbers_by_hand():
    """One VE step of each, worked out from ComfyUI's code with D = 1.5, D_u = 0.5, x = 3 at sigma 2 -> 1:
    euler_cfg_pp ``D + (x - D_u) sigma'/sigma`` = 1.5 + 2.5 / 2 = 2.75; the plain Euler step would give 2.25."""
    denoise = lambda x, sigma: (np.full_like(x, 1.5), np.full_like(x, 0.5))  # noqa: E731
    x, _ = euler_ancestral_cfg_pp_ref(denoise, np.array([3.0]), [2.0, 1.0], rf.as_param("ve"))
    assert x == pytest.approx([2.75])
    assert dpmpp_2m_cfg_pp_ref(denoise, np.array([3.0]), [2.0, 1.0], rf.as_param("ve")) == pytest.approx([2.75])


# ---------------------------------------------------------------------------------------------------------------------
# structure: no guidance is the plain twin; the unconditional estimate through every path
# ---------------------------------------------------------------------------------------------------------------------

TWINS = [
    (EulerCFGPPSampler, EulerEDMSampler, {}),
    (EulerAncestralCFGPPSampler, EulerAncestralSampler, dict(eta=0.5)),
    (DPMPP2SAncestralCFGPPSampler, DPMPP2SAncestralSampler, dict(eta=0.5)),
    (DPMPP2MCFGPPSampler, DPMPP2MSampler, {}),
    (ResMultistepCFGPPSampler, ResMultistepSampler, {}),
    (ResMultistepAncestralCFGPPSampler, ResMultistepAncestralSampler, dict(eta=0.5)),
    (GradientEstimationCFGPPSampler, GradientEstimationSampler, {}),
]


@pytest.mark.parametrize("param", PARAMS)
@pytest.mark.parametrize("cls, twin, params", TWINS, ids=[t[0].__name__ for t in TWINS])
def test_without_an_unconditional_difference_it_is_the_plain_twin(param, cls, twin, params):
    """CFG scale 1 (the guided estimate is the conditional one, D - D_u != 0) differs from the twin; with uc = cond
    there is nothing to swap and the CFG++ sampler is its twin to float32 rounding."""
    _, schedule, _, x0, noises = setup(param)
    sampler_kwargs = dict(discretization_config=schedule, guider_config=VanillaCFG(1.0), init_noise="prescaled")
    cond = {"vector": Tensor(MU_C.astype(np.float32))}
    x = Tensor(x0.astype(np.float32))
    outs = [
        c(**sampler_kwargs, **params)(ConditionalGaussian(param), x, cond, cond, num_steps=N,
                                      noise_sampler=queue_sampler(noises)).asnumpy()
        for c in (cls, twin)
    ]  # fmt: skip
    assert rel(outs[0], outs[1]) < 1e-6
    assert rel(run(cls, param, schedule, x0, noises, scale=1.0, **params)[0], outs[1]) > 1e-3


@pytest.mark.parametrize(
    "name, cls",
    [
        ("euler_cfg_pp", EulerCFGPPSampler),
        ("euler_ancestral_cfg_pp", EulerAncestralCFGPPSampler),
        ("dpmpp_2s_ancestral_cfg_pp", DPMPP2SAncestralCFGPPSampler),
        ("dpmpp_2m_cfg_pp", DPMPP2MCFGPPSampler),
        ("res_multistep_cfg_pp", ResMultistepCFGPPSampler),
        ("res_multistep_ancestral_cfg_pp", ResMultistepAncestralCFGPPSampler),
        ("gradient_estimation_cfg_pp", GradientEstimationCFGPPSampler),
    ],
)
def test_registered_under_comfyuis_names(name, cls):
    assert resolve(name) is cls
    defaults = {"euler_ancestral_cfg_pp": 1.0, "dpmpp_2s_ancestral_cfg_pp": 1.0, "res_multistep_ancestral_cfg_pp": 1.0}
    if name in defaults:
        assert cls().eta == defaults[name] and cls().s_noise == 1.0  # ComfyUI's defaults


@pytest.mark.parametrize("cls", [t[0] for t in TWINS], ids=[t[0].__name__ for t in TWINS])
@pytest.mark.parametrize("param", PARAMS)
def test_graph_loop_equals_eager_on_a_real_network(cls, param):
    """CFG 2 on a real nn.Cell (EDM VE, or a flow velocity net on shift 3): the whole loop as one graph equals the
    step-by-step call (same NFE), and a second call with new noise and conditioning compiles nothing."""
    scaling, schedule = (EDMScaling(), EDMDiscretization()) if param == "ve" else (FlowVelocityScaling(), FLOW3)
    denoiser = Denoiser(scaling).bind(small_net(TracedNet))
    kwargs = dict(num_steps=4, discretization_config=schedule, guider_config=VanillaCFG(2.0))
    if "eta" in cls.__signature__.parameters:
        kwargs.update(eta=0.6, s_noise=0.9)
    cond, uc = conditioning(0)
    eager, loop = cls(**kwargs), cls(graph_loop=True, **kwargs)
    expected = eager(denoiser, randn((B, *SHAPE), generator=0), cond, uc, generator=5).asnumpy()
    got = loop(denoiser, randn((B, *SHAPE), generator=0), cond, uc, generator=5).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    assert loop.last_nfe == eager.last_nfe
    del TRACES[:]
    cond, uc = conditioning(1)
    again = loop(denoiser, randn((B, *SHAPE), generator=1), cond, uc, generator=6).asnumpy()
    assert TRACES == [] and not np.array_equal(again, got)


@pytest.mark.parametrize("graph_loop", [False, True])
def test_graph_mode_uses_the_guiders_uncond_and_does_not_recompile(graph_loop):
    """GRAPH_MODE step by step (StepGraph) and the whole loop: equal to PyNative, the unconditional estimate of a
    three-copy guider ([uc; c; c_1]) is its first part, and a second call compiles nothing."""
    denoiser = Denoiser(EDMScaling()).bind(small_net(TracedNet))
    cond, uc = conditioning(0)
    other = conditioning(1)[0]
    guider = MultiConditionCFG(1.5, other_scale=[0.5]).for_conditions([other])
    kwargs = dict(num_steps=4, guider_config=guider, eta=0.5)
    noise = randn((B, *SHAPE), generator=0)
    eager = DPMPP2SAncestralCFGPPSampler(**kwargs)(denoiser, noise, cond, uc, generator=5).asnumpy()
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        sampler = DPMPP2SAncestralCFGPPSampler(graph_loop=graph_loop, **kwargs)
        got = sampler(denoiser, noise, cond, uc, generator=5).asnumpy()
        del TRACES[:]
        sampler(denoiser, randn((B, *SHAPE), generator=1), cond, uc, generator=6)
        assert TRACES == []
        # a callback keeps the step-by-step loop outside the compiled step: the fused network path returns both too
        seen = []
        with_callback = DPMPP2SAncestralCFGPPSampler(**kwargs)(
            denoiser, noise, cond, uc, generator=5, callback=lambda d: seen.append(d["i"])
        ).asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(got, eager, rtol=1e-4, atol=1e-5 * np.abs(eager).max())
    np.testing.assert_allclose(with_callback, eager, rtol=1e-4, atol=1e-5 * np.abs(eager).max())
    assert seen == [0, 1, 2, 3]  # one report per step


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_unguided_on_a_real_network_is_the_plain_twin(mode):
    """No guidance (IdentityGuider: the unconditional estimate is the estimate itself): on a real nn.Cell, step by
    step and as one compiled loop, Euler CFG++ is Euler, and a second compiled call compiles nothing."""
    denoiser = Denoiser(EDMScaling()).bind(small_net(TracedNet))
    cond = conditioning(0)[0]
    noise = randn((B, *SHAPE), generator=0)
    expected = EulerEDMSampler(num_steps=4)(denoiser, noise, cond).asnumpy()
    ms.set_context(mode=mode)
    try:
        steps = EulerCFGPPSampler(num_steps=4)(denoiser, noise, cond).asnumpy()
        loop = EulerCFGPPSampler(num_steps=4, graph_loop=True)
        compiled = loop(denoiser, noise, cond).asnumpy()
        del TRACES[:]
        loop(denoiser, randn((B, *SHAPE), generator=1), cond)
        assert TRACES == []
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    for got in (steps, compiled):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_the_uncond_of_each_guider():
    batch = Tensor(np.arange(12, dtype=np.float32).reshape(6, 2))
    assert VanillaCFG(2.0).uncond(batch[:4]).asnumpy().tolist() == [[0, 1], [2, 3]]
    three = MultiConditionCFG(2.0, other_scale=[1.0]).for_conditions([{"vector": Tensor(np.zeros((2, 1)))}])
    assert three.uncond(batch).asnumpy().tolist() == [[0, 1], [2, 3]]


def test_a_third_party_guider_is_refused_before_any_model_call():
    class SgmStyleGuider:  # sgm's protocol only: no unconditional estimate to read
        def prepare_inputs(self, x, sigma, cond, uc):
            return x, sigma, cond

        def __call__(self, denoised, sigma):
            return denoised

    calls = []

    def model(x, sigma, cond):
        calls.append(1)
        return x

    sampler = EulerCFGPPSampler(num_steps=3, guider_config=SgmStyleGuider())
    with pytest.raises(TypeError, match="unconditional estimate.*built-in guiders"):
        sampler(model, randn((1, 2), generator=0))
    assert calls == []
