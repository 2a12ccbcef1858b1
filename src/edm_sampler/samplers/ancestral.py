"""Ancestral samplers: a deterministic step down to ``sigma_down``, then fresh noise back up to ``sigma_next``.

The split follows k-diffusion's ``get_ancestral_step`` for VE models: with ``eta = 1`` the added noise has the
variance a DDPM ancestral step would add, with ``eta = 0`` the sampler is deterministic. Flow models use the
rectified-flow split (ComfyUI's behaviour for ``euler_ancestral`` on a CONST model): ``sigma_down = sigma_next (1 +
(sigma_next / sigma - 1) eta)``, then the state is scaled by ``alpha_next / alpha_down`` and noise tops it up to the
flow marginal at ``sigma_next`` (see :meth:`edm_sampler.parametrization.Parametrization.ancestral_step`). Both agree
at ``eta = 1`` on ``sigma_down = sigma_next^2 / sigma``. Noise is drawn only when it is added (``sigma_up > 0``), so
``eta = 0`` and the last step to sigma = 0 consume no randomness (sgm draws on every step).
"""

from __future__ import annotations

import math

import numpy as np

from ..functional import axmy, euler_to, renoise, scaled
from ..parametrization import VE, Parametrization
from . import coefficients, options
from .base import NOT_EVALUATED, BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

_VE = VE()


def get_ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """``(sigma_down, sigma_up)`` with ``sigma_down**2 + sigma_up**2 == sigma_to**2`` (VE; k-diffusion's split).

    ``sigma_up = min(sigma_to, eta * sqrt(sigma_to**2 (sigma_from**2 - sigma_to**2) / sigma_from**2))``.
    """
    sigma_down, _, sigma_up = _VE.ancestral_step(sigma_from, sigma_to, eta)
    return sigma_down, sigma_up


class AncestralSampler(BaseDiffusionSampler):
    """sgm's and mindone's ancestral base: ``eta`` scales the noise added back, ``s_noise`` its std.

    Its own step is the Euler ancestral step, so mindone configs that name ``AncestralSampler`` sample as
    :class:`EulerAncestralSampler` does. (mindone's own ``AncestralSampler``, used directly, runs its base class's
    plain Euler step and never adds the ancestral noise, which looks like an oversight.) NFE = N.
    """

    eta = options.real(1.0, nonnegative=True)
    s_noise = options.real(1.0, nonnegative=True)

    def ancestral(self, p: Parametrization, sigma: float, sigma_next: float, noise: NoiseFn) -> tuple[float, dict]:
        """``sigma_down`` and the coefficients of the noise that brings x from there to ``sigma_next``: ``a x`` plus
        fresh noise of std ``s_noise * sigma_up`` (no draw when that is 0); ``a = 1`` for VE."""
        sigma_down, a, sigma_up = p.ancestral_step(sigma, sigma_next, self.eta)
        draw = sigma_up != 0.0 and self.s_noise != 0.0
        return sigma_down, coefficients.renoising(a, self.s_noise * sigma_up, draw, noise, sigma, sigma_next)

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for sigma, sigma_next in pairs(sigmas):
            sigma_down, up = self.ancestral(p, sigma, sigma_next, noise)
            yield {"at": Level(sigma), "down": coefficients.euler(sigma, sigma_down), "up": up}

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        x = euler_to(x, denoised, c["down"])
        return renoise(x, c["up"]), state


class EulerAncestralSampler(AncestralSampler):
    """Euler ancestral (k-diffusion ``sample_euler_ancestral``; sgm/mindone ``EulerAncestralSampler``, with ``eta``
    honoured). NFE = N."""


class DPMPP2SAncestralSampler(AncestralSampler):
    """DPM-Solver++(2S) ancestral (Lu et al. 2022; k-diffusion ``sample_dpmpp_2s_ancestral``). NFE = 2N - 1.

    In the half-log-SNR ``lambda = log(alpha / sigma)`` (``-log(sigma)`` for VE), the step to ``sigma_down`` with
    ``h = lambda_down - lambda`` evaluates the model once more at the lambda midpoint ``sigma_mid``:
    ``x_mid = (sigma_mid / sigma) x - alpha_mid expm1(-h/2) D``, ``x <- (sigma_down / sigma) x - alpha_down
    expm1(-h) D(x_mid)``. The last step (``sigma_down = 0``) is a plain Euler step, which lands on the denoised
    estimate (returned exactly); so is a flow model's step from sigma = 1 (lambda = -inf, where the midpoint would be
    sigma = 1 again): one evaluation.
    """

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for sigma, sigma_next in pairs(sigmas):
            sigma_down, up = self.ancestral(p, sigma, sigma_next, noise)
            h = p.lambda_step(sigma, sigma_down) if sigma_down > 0.0 else math.inf
            c = {"at": Level(sigma), "euler": math.isinf(h), "down": coefficients.euler(sigma, sigma_down), "up": up}
            sigma_mid = None if c["euler"] else p.lambda_midpoint(sigma, sigma_down)
            c["at_mid"] = NOT_EVALUATED if sigma_mid is None else Level(sigma_mid)
            c["x_mid"] = 0.0 if sigma_mid is None else sigma_mid / sigma
            c["d_mid"] = 0.0 if sigma_mid is None else math.expm1(-h / 2) * p.alpha(sigma_mid)
            c["x_down"] = sigma_down / sigma
            c["d_down"] = 0.0 if sigma_mid is None else math.expm1(-h) * p.alpha(sigma_down)
            yield c

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        if c["euler"]:
            x = euler_to(x, denoised, c["down"])
        else:
            x_mid = axmy(scaled(x, c["x_mid"]), denoised, c["d_mid"])
            x = axmy(scaled(x, c["x_down"]), m.denoise(x_mid, c["at_mid"]), c["d_down"])
        return renoise(x, c["up"]), state
