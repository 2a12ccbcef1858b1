"""Consistency-model sampling: jump to the model's data estimate, then re-noise it to the next level."""

from __future__ import annotations

from mindspore import Tensor

from ..functional import add_noise
from ..run import SamplingRun
from .base import SingleStepDiffusionSampler


class LCMSampler(SingleStepDiffusionSampler):
    """Latent Consistency Model multistep sampling (Luo et al. 2023; mindone's ``LCMSampler``). NFE = N.

    ``x <- alpha_{i+1} D(x, sigma_i) + sigma_{i+1} * eps``: each step takes the consistency model's estimate of the
    data and re-noises it to the next level (``alpha = 1`` for VE, ``1 - sigma`` for flow models); the last step
    returns the estimate itself.
    """

    def step(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        denoised = run.denoise(x, sigma)
        run.report(x, sigma, sigma, denoised)
        if sigma_next == 0.0:
            return denoised
        alpha_next = run.param.alpha(sigma_next)
        noise = run.noise(sigma, sigma_next)
        return add_noise(denoised if alpha_next == 1.0 else denoised * alpha_next, noise, sigma_next)
