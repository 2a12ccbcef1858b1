"""Consistency-model sampling: jump to the model's data estimate, then re-noise it to the next level."""

from __future__ import annotations

import numpy as np

from ..functional import renoise
from ..parametrization import Parametrization
from . import coefficients
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs


class LCMSampler(BaseDiffusionSampler):
    """Latent Consistency Model multistep sampling (Luo et al. 2023; mindone's ``LCMSampler``). NFE = N.

    ``x <- alpha_{i+1} D(x, sigma_i) + sigma_{i+1} * eps``: each step takes the consistency model's estimate of the
    data and re-noises it to the next level (``alpha = 1`` for VE, ``1 - sigma`` for flow models); the last step
    returns the estimate itself.
    """

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for sigma, sigma_next in pairs(sigmas):
            up = (
                coefficients.no_renoising()
                if sigma_next == 0.0
                else coefficients.renoising(p.alpha(sigma_next), sigma_next, True, noise, sigma, sigma_next)
            )
            yield {"at": Level(sigma), "renoise": up}

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        return renoise(denoised, c["renoise"]), state
