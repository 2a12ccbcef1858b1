"""DDPMSampler against a float64 NumPy DDPM written in the VP latent from Ho et al. (2020), eq. 6-7, on injected
noise; the posterior variance is Euler ancestral with eta = 1; bad input refused by name."""

import numpy as np
import pytest

from mindspore import Tensor

from edm_sampler import DDPMSampler, EulerAncestralSampler, as_denoiser
from edm_sampler.models.analytic import GaussianDenoiser

SIGMA_DATA = 0.5


def reference(sigmas, x_vp, noises, variance_type, noiseless_from):
    """DDPM in the VP latent: x_s = c0 x0 + ct x_t + std z, x0 from the Gaussian posterior mean, float64 (with
    fixed_large the step to sigma 0 adds noise too, unless it starts at or below ``noiseless_from``)."""
    x = np.asarray(x_vp, np.float64)
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        a, a_next = 1 / (1 + s * s), 1 / (1 + s_next * s_next)
        x_ve = x / np.sqrt(a)
        x0 = x_ve * SIGMA_DATA**2 / (SIGMA_DATA**2 + s * s)
        beta = 1 - a / a_next
        mean = np.sqrt(a_next) * beta / (1 - a) * x0 + np.sqrt(a / a_next) * (1 - a_next) / (1 - a) * x
        var = (1 - a_next) / (1 - a) * beta if variance_type == "fixed_small" else beta
        if s > noiseless_from:
            mean = mean + np.sqrt(var) * noises[i]
        x = mean
    return x / np.sqrt(1 / (1 + sigmas[-1] ** 2))  # back to the VE state (sigma_N = 0 here: no change)


@pytest.mark.parametrize(
    "variance_type, noiseless_from", [("fixed_small", 0.0), ("fixed_large", 0.0), ("fixed_large", 0.5)]
)
def test_matches_the_vp_reference(variance_type, noiseless_from):
    sigmas = [14.6, 6.0, 2.5, 1.0, 0.5, 0.1, 0.0]
    rng = np.random.default_rng(0)
    x_vp = rng.standard_normal((3, 4))
    noises = [rng.standard_normal((3, 4)) for _ in sigmas]
    sampler = DDPMSampler(variance_type, noiseless_from, init_noise="vp")

    def noise_sampler(sigma, sigma_next):
        return Tensor(noises[sigmas.index(sigma)].astype(np.float32))

    out = sampler(
        GaussianDenoiser(SIGMA_DATA), Tensor(x_vp.astype(np.float32)), sigmas=sigmas, noise_sampler=noise_sampler
    ).asnumpy()
    expected = reference(sigmas, x_vp, noises, variance_type, noiseless_from)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_posterior_variance_is_euler_ancestral():
    x = Tensor(np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32))
    model = GaussianDenoiser(SIGMA_DATA)
    ddpm = DDPMSampler(num_steps=8)(model, x, generator=3).asnumpy()
    ancestral = EulerAncestralSampler(eta=1.0, num_steps=8)(model, x, generator=3).asnumpy()
    np.testing.assert_allclose(ddpm, ancestral, rtol=1e-6, atol=1e-6)


def test_refused():
    with pytest.raises(ValueError, match=r"variance_type must be one of 'fixed_small', 'fixed_large'"):
        DDPMSampler("learned_range")
    flow = as_denoiser(lambda x, sigma, cond: x, parametrization="flow")
    with pytest.raises(ValueError, match=r"DDPMSampler samples ve models only"):
        DDPMSampler()(flow, Tensor(np.ones((1, 2), np.float32)), sigmas=[1.0, 0.5, 0.0])


def test_graph_loop_equals_step_by_step_and_compiles_once():
    """A real nn.Cell network: the whole loop as one graph equals the eager loop on the same draws, and a second call
    with new noise compiles nothing."""
    from realnets import SHAPE, B, small_net

    from edm_sampler import Denoiser, EpsScaling, LegacyDDPMDiscretization
    from edm_sampler.bench.compiles import CompileCounter

    net = small_net()
    denoiser = Denoiser(EpsScaling()).bind(net)
    x = Tensor(np.random.default_rng(2).standard_normal((B, *SHAPE)).astype(np.float32))
    common = dict(num_steps=6, discretization_config=LegacyDDPMDiscretization(), variance_type="fixed_large")
    eager = DDPMSampler(**common)(denoiser, x, generator=5).asnumpy()
    compiled_sampler = DDPMSampler(**common, graph_loop=True)
    compiled = compiled_sampler(denoiser, x, generator=5).asnumpy()
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-6)
    with CompileCounter() as later:
        compiled_sampler(denoiser, x, generator=6)
    assert later.available and later.count == 0
