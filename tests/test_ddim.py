"""DDIMSampler: DDIM's eq. 12 with a limit on its x0 term, against a float64 reference (VE and flow), the same
sampler as Euler ancestral without a limit, the limit inside the compiled loop and graph mode, and its checks.
(diffusers' DDIMScheduler with clip_sample / thresholding: tests/test_diffusers_parity.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from numerics import queue_sampler, rel
from realnets import SHAPE, B, TracedNet, conditioning, small_net
from reference_flow import Param, flow_gaussian

import mindspore as ms

from edm_sampler import (
    Denoiser,
    EDMScaling,
    EulerAncestralSampler,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    VanillaCFG,
    randn,
)
from edm_sampler.guiders.x0_limits import ClipX0, DynamicThresholdX0
from edm_sampler.models import GaussianDenoiser
from edm_sampler.samplers.ddim import DDIMSampler


def ddim_reference(denoise, x, sigmas, *, eta, s_noise, limit, noises, param):
    """Song et al. (2021) eq. 12 in the state ``x = alpha x0 + sigma eps`` (float64): ``x_down = alpha_down limit(D)
    + sigma_down eps_hat``, ``eps_hat = (x - alpha D) / sigma`` from the unlimited D, then ``a x_down + s_noise
    sigma_up z`` with the ancestral split of eta (k-diffusion's for VE, the rectified-flow one for flow)."""
    p = Param(param)
    noises = list(noises)
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        d = denoise(x, sigma)
        down, a, up = p.split(sigma, sigma_next, eta)
        eps = (x - p.alpha(sigma) * d) / sigma
        x = p.alpha(down) * limit(d) + down * eps
        if up > 0:
            x = a * x + s_noise * up * noises.pop(0)
    return x


def clip(d):
    return np.clip(d, -0.6, 0.6)


@pytest.mark.parametrize("param", ["ve", "flow"])
@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_matches_the_float64_reference(param, eta):
    rng = np.random.default_rng(0)
    sigmas = np.array([12.0, 4.0, 1.5, 0.4, 0.0]) if param == "ve" else np.array([1.0, 0.8, 0.5, 0.25, 0.0])
    denoiser = GaussianDenoiser(sigma_data=1.3, parametrization=param)
    if param == "ve":

        def reference_denoise(x, sigma):  # the exact posterior mean of N(0, 1.3^2)
            return x * 1.3**2 / (1.3**2 + sigma**2)

    else:
        reference_denoise = flow_gaussian(1.3)
    x0 = rng.standard_normal((2, 3, 4, 4)) * sigmas[0]
    noises = [rng.standard_normal(x0.shape) for _ in range(4)]
    sampler = DDIMSampler(eta=eta, s_noise=0.9, x0_limit=ClipX0(0.6), init_noise="prescaled")
    got = sampler(
        denoiser, ms.Tensor(x0.astype(np.float32)), sigmas=sigmas, noise_sampler=queue_sampler(noises)
    ).asnumpy()
    expected = ddim_reference(
        reference_denoise, x0, sigmas, eta=eta, s_noise=0.9, limit=clip, noises=noises, param=param
    )
    unlimited = ddim_reference(
        reference_denoise, x0, sigmas, eta=eta, s_noise=0.9, limit=lambda d: d, noises=noises, param=param
    )
    assert rel(got, expected) < 2e-6 and rel(unlimited, expected) > 1e-2  # the limit acts, and only on x0's term


def test_without_a_limit_it_is_euler_ancestral():
    noise = randn((2, 3, 8, 8), generator=1)
    kwargs = dict(eta=0.6, s_noise=1.1, num_steps=6)
    a = DDIMSampler(**kwargs)(GaussianDenoiser(), noise, generator=3).asnumpy()
    b = EulerAncestralSampler(**kwargs)(GaussianDenoiser(), noise, generator=3).asnumpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
@pytest.mark.parametrize("param", ["ve", "flow"])
def test_the_limit_runs_in_the_compiled_loop(mode, param):
    """A real nn.Cell with CFG: graph_loop=True (and graph mode step by step) equal the eager loop; a second call with
    new noise compiles nothing."""
    from realnets import TRACES

    scaling, schedule = (EDMScaling(), None) if param == "ve" else (FlowVelocityScaling(), FlowMatchDiscretization())
    denoiser = Denoiser(scaling).bind(small_net(TracedNet))
    kwargs = dict(eta=0.5, num_steps=4, guider_config=VanillaCFG(2.0), x0_limit=DynamicThresholdX0(0.9, 1.5))
    if schedule is not None:
        kwargs["discretization_config"] = schedule
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    eager = DDIMSampler(**kwargs)(denoiser, noise, cond, uc, generator=5).asnumpy()
    ms.set_context(mode=mode)
    try:
        compiled = DDIMSampler(graph_loop=True, **kwargs)
        got = compiled(denoiser, noise, cond, uc, generator=5).asnumpy()
        del TRACES[:]
        compiled(denoiser, randn((B, *SHAPE), generator=1), cond, uc, generator=6)
        assert TRACES == []
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(got, eager, rtol=1e-5, atol=1e-5 * np.abs(eager).max())


def test_bad_limit_is_refused_by_name():
    with pytest.raises(TypeError, match="x0_limit must be None or an nn.Cell"):
        DDIMSampler(x0_limit=1.0)
