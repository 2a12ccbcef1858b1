"""Karras et al. (2022) Algorithm 2: the EDM Euler and Heun samplers with churn (sgm's ``EDMSampler`` family)."""

from __future__ import annotations

import math

import numpy as np

from ..functional import axpy, euler_to, renoise, scaled
from ..parametrization import Parametrization
from . import coefficients, options
from .base import NOT_EVALUATED, BaseDiffusionSampler, Level, NoiseFn, Plan, pairs


class EDMSampler(BaseDiffusionSampler):
    """Karras et al. (2022) Algorithm 2 with "churn", first order (Euler); sgm's numerics. NFE = N.

    At each step the noise level is first raised from ``sigma_i`` to ``sigma_hat = sigma_i (1 + gamma_i)`` with
    ``gamma_i = min(s_churn / N, sqrt(2) - 1)`` if ``s_tmin <= sigma_i <= s_tmax`` else 0, by adding fresh noise of
    std ``s_noise * sqrt(sigma_hat^2 - sigma_i^2)``; noise is drawn only when ``gamma_i > 0``.

    For a flow model the VE-equivalent level ``sigma / (1 - sigma)`` is raised by ``1 + gamma_i`` (so ``sigma_hat =
    sigma (1 + gamma) / (1 + gamma sigma) <= 1``) and the state is re-noised to the flow marginal there:
    ``x_hat = a x + s_noise sqrt(sigma_hat^2 - (a sigma)^2) z`` with ``a = (1 - sigma_hat) / (1 - sigma)``; at
    sigma = 1 there is nothing to add and no noise is drawn.
    """

    s_churn = options.real(0.0, nonnegative=True)
    s_tmin = options.real(0.0, nonnegative=True)
    s_tmax = options.real(math.inf, nonnegative=True, finite=False)
    s_noise = options.real(1.0, nonnegative=True)

    def validate(self) -> None:
        if self.s_tmin > self.s_tmax:
            raise ValueError(f"s_tmin must be <= s_tmax, got s_tmin={self.s_tmin!r}, s_tmax={self.s_tmax!r}")

    def gamma(self, sigma: float, num_steps: int) -> float:
        """The churn factor for a step starting at ``sigma`` in a schedule of ``num_steps`` steps."""
        if self.s_churn > 0 and self.s_tmin <= sigma <= self.s_tmax:
            return min(self.s_churn / num_steps, math.sqrt(2.0) - 1.0)
        return 0.0

    def max_model_sigma(self, sigmas: np.ndarray, param: Parametrization) -> float:
        n = len(sigmas) - 1
        return max((param.churn_level(float(s), self.gamma(float(s), n)) for s in sigmas[:-1]), default=0.0)

    def churn_plan(self, param: Parametrization, sigma: float, num_steps: int) -> tuple[float, float, float]:
        """``(sigma_hat, a, std)``: the churn of a step from ``sigma`` is ``x_hat = a x + std z`` (no churn, and no
        draw, when ``sigma_hat == sigma``)."""
        gamma = self.gamma(sigma, num_steps)
        if gamma == 0.0:
            return sigma, 1.0, 0.0
        sigma_hat = param.churn_level(sigma, gamma)
        if sigma_hat == sigma:  # a flow model at sigma = 1
            return sigma, 1.0, 0.0
        a, std = param.renoise(sigma, sigma_hat)
        return sigma_hat, a, self.s_noise * std

    def churn(self, p: Parametrization, sigma: float, sigma_next: float, n: int, noise: NoiseFn) -> tuple[float, dict]:
        """Algorithm 2, lines 4-6: ``sigma_hat`` and the coefficients that raise x's noise level to it."""
        sigma_hat, a, std = self.churn_plan(p, sigma, n)
        return sigma_hat, coefficients.renoising(a, std, sigma_hat != sigma, noise, sigma, sigma_next)

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        n = len(sigmas) - 1
        for sigma, sigma_next in pairs(sigmas):
            sigma_hat, churn = self.churn(p, sigma, sigma_next, n, noise)
            yield {"churn": churn, "at": Level(sigma_hat), "euler": coefficients.euler(sigma_hat, sigma_next)}

    @staticmethod
    def step(m, x, state, c):
        x = renoise(x, c["churn"])
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        return euler_to(x, denoised, c["euler"]), state  # x + (sigma_next - sigma_hat) d, d = (x - D) / sigma_hat


class EulerEDMSampler(EDMSampler):
    """EDM sampler with the Euler step (NFE = N). Same as :class:`EDMSampler`; the name sgm configs use."""


class HeunEDMSampler(EDMSampler):
    """EDM sampler with Heun's 2nd-order correction (Algorithm 2 in full; NFE = 2N - 1).

    The correction is skipped on the final step to ``sigma = 0``, where ``d'`` is undefined.
    """

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for (_, sigma_next), c in zip(pairs(sigmas), super().plan(p, sigmas, noise)):
            correct = sigma_next > 0  # Algorithm 2, lines 9-11: the trapezoidal correction
            c["correct"] = correct
            c["at_next"] = Level(sigma_next) if correct else NOT_EVALUATED
            c["inv_next"] = 1.0 / sigma_next if correct else 0.0
            del c["euler"]  # Heun's step keeps the slope d, which it averages with d'
            sigma_hat = float(c["at"])
            c["inv_sigma"], c["dt"] = 1.0 / sigma_hat, sigma_next - sigma_hat
            c["half_dt"] = 0.5 * c["dt"]
            yield c

    @staticmethod
    def step(m, x, state, c):
        x_hat = renoise(x, c["churn"])
        denoised = m.denoise(x_hat, c["at"])
        m.report(x_hat, denoised)
        d = scaled(x_hat - denoised, c["inv_sigma"])
        x = axpy(x_hat, d, c["dt"])
        if c["correct"]:
            d_next = scaled(x - m.denoise(x, c["at_next"]), c["inv_next"])
            x = axpy(x_hat, d + d_next, c["half_dt"])  # the mean slope (d + d') / 2 over dt
        return x, state
