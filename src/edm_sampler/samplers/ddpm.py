"""DDPM's ancestral sampling (Ho et al. 2020) with a choice of variance, as diffusers' ``DDPMScheduler`` runs it."""

from __future__ import annotations

import math

import numpy as np

from ..functional import euler_to, renoise
from ..parametrization import Parametrization
from . import coefficients, options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

VARIANCE_TYPES = ("fixed_small", "fixed_large")


class DDPMSampler(BaseDiffusionSampler):
    """DDPM ancestral sampling between any two noise levels of a VP-trained (eps, v or x0) model. NFE = N. VE only.

    Each step moves to the posterior mean of ``q(x_s | x_t, x0 = D)`` and adds noise. In the VE state (``a = 1 / (1 +
    sigma^2)`` is the VP ``alphas_cumprod``) the mean is the deterministic step to ``sigma_down = sqrt(sigma_next^2 -
    u^2)`` with ``u = sigma_next sqrt(1 - sigma_next^2 / sigma^2)``; the noise std is ``u`` (the posterior variance,
    ``variance_type="fixed_small"``: then this is Euler ancestral with ``eta = 1``) or ``sqrt(beta / a_next)`` with
    ``beta = 1 - a / a_next`` (``"fixed_large"``, DDPM's other choice), which adds noise on the last step too.

    ``noiseless_from`` is the level at and below which a step adds no noise: diffusers adds none on the step from the
    training table's first timestep (``t = 0``), so its config translation sets the table's smallest sigma here.
    """

    variance_type = options.choice("fixed_small", VARIANCE_TYPES, "the posterior variance, or beta_t (DDPM's two)")
    noiseless_from = options.real(0.0, nonnegative=True, doc="steps from this level or below add no noise")
    parametrizations = ("ve",)  # the VP variances

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for sigma, sigma_next in pairs(sigmas):
            small = sigma_next * math.sqrt(max(1.0 - (sigma_next / sigma) ** 2, 0.0))
            sigma_down = math.sqrt(max(sigma_next**2 - small**2, 0.0))
            if self.variance_type == "fixed_small":
                std = small
            else:  # sqrt(beta / a_next), beta = 1 - a / a_next, in VE sigmas
                std = math.sqrt((sigma**2 - sigma_next**2) * (1.0 + sigma_next**2) / (1.0 + sigma**2))
            draw = std > 0.0 and sigma > self.noiseless_from
            up = coefficients.renoising(1.0, std if draw else 0.0, draw, noise, sigma, sigma_next)
            yield {"at": Level(sigma), "down": coefficients.euler(sigma, sigma_down), "up": up}

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        return renoise(euler_to(x, denoised, c["down"]), c["up"]), state
