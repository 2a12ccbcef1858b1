"""LCMSampler against its equation: x <- D(x, sigma_i) + sigma_{i+1} eps, the last step returning D."""

from __future__ import annotations

import numpy as np
from conftest import to_np
from reference import karras_sigmas

from mindspore import Tensor

from edm_sampler import LCMSampler, load_sampler
from edm_sampler.models import GaussianMixtureDenoiser


def lcm_reference(denoise, x, sigmas, noises):
    """float64 NumPy: the published update, noise consumed only where it is added."""
    noises, draws = list(noises), []
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        x = denoise(x, sigma)
        if sigma_next > 0:
            draws.append((sigma, sigma_next))
            x = x + sigma_next * noises.pop(0)
    return x, draws


def gmm_numpy(model):
    means, var, w = model.means, model.stds**2, model.weights

    def denoise(x, sigma):
        total = var[None, :] + sigma**2
        diff = x[:, None, :] - means[None]
        log_r = np.log(w)[None] - 0.5 * means.shape[1] * np.log(total) - 0.5 * (diff**2).sum(-1) / total
        r = np.exp(log_r - log_r.max(1, keepdims=True))
        r /= r.sum(1, keepdims=True)
        return (r[:, :, None] * (means[None] + (var[None, :] / total)[:, :, None] * diff)).sum(1)

    return denoise


def test_lcm_matches_the_float64_reference():
    model = GaussianMixtureDenoiser()
    rng = np.random.default_rng(3)
    steps = 4
    sigmas = karras_sigmas(steps)
    x0 = rng.standard_normal((16, 2)) * sigmas[0]
    noises = [rng.standard_normal((16, 2)).astype(np.float32) for _ in range(steps)]
    expected, draws = lcm_reference(gmm_numpy(model), x0, sigmas, noises)
    calls, fed = [], iter(noises)

    def noise_sampler(sigma, sigma_next):
        calls.append((sigma, sigma_next))
        return next(fed)

    sampler = LCMSampler(num_steps=steps, init_noise="prescaled")
    got = to_np(sampler(model, Tensor(x0.astype(np.float32)), noise_sampler=noise_sampler))
    assert sampler.last_nfe == steps
    assert np.allclose(calls, draws) and len(calls) == steps - 1
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-5


def test_lcm_last_step_is_the_denoised_estimate_exactly():
    infos = []
    sampler = LCMSampler(num_steps=3, init_noise="prescaled")
    out = sampler(GaussianMixtureDenoiser(), Tensor(np.ones((4, 2), np.float32)), generator=0, callback=infos.append)
    np.testing.assert_array_equal(to_np(out), to_np(infos[-1]["denoised"]))


def test_lcm_loads_by_its_mindone_name():
    config = {"target": "gm.modules.diffusionmodules.sampler.LCMSampler", "params": {"num_steps": 4}}
    assert type(load_sampler(config)) is LCMSampler
