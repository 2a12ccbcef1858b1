"""DPM-2 (k-diffusion's ``sample_dpm_2`` and ``sample_dpm_2_ancestral``): DPM-Solver-2 (Lu et al. 2022, noise
prediction) in the half-log-SNR ``lambda = log(alpha / sigma)``: a first-order step to the lambda midpoint, then the
whole step with the noise estimate found there. For VE models (alpha = 1) that is k-diffusion's Euler to
``sqrt(sigma sigma_next)`` and the full Euler step with the slope there. Second order on the ODE; two evaluations per
step, one on the last step to sigma = 0.
"""

from __future__ import annotations

import numpy as np

from ..functional import axpy, euler_to, renoise, scaled
from ..parametrization import Parametrization
from . import coefficients
from .ancestral import AncestralSampler
from .base import NOT_EVALUATED, Level, NoiseFn, Plan, pairs
from .edm import EDMSampler


def dpm_solver_2(p: Parametrization, sigma: float, sigma_next: float) -> dict:
    """The coefficients of one DPM-Solver-2 step from ``sigma`` to ``sigma_next`` (see :func:`dpm_solver_2_step`).

    Stage 1 is the first-order step to the lambda midpoint ``sigma_mid`` (DDIM, which is the Euler step in sigma for
    both parametrizations). Stage 2 is ``x <- (alpha_next / alpha) x + (sigma_next - alpha_next sigma / alpha) eps_mid``
    with the noise estimate ``eps_mid = (x_mid - alpha_mid D(x_mid)) / sigma_mid``; for VE, the Euler step with the
    slope at the midpoint. A step to sigma = 0 lands on D; a flow model's step from sigma = 1 (alpha = 0,
    lambda = -inf) has no midpoint and stays first order, the Euler (DDIM) step: one evaluation either way.
    """
    alpha = p.alpha(sigma)
    single = sigma_next == 0.0 or alpha == 0.0
    sigma_mid = sigma if single else p.lambda_midpoint(sigma, sigma_next)  # single: no midpoint (not read)
    alpha_mid = 1.0 if single else p.alpha(sigma_mid)
    ratio = 1.0 if single else p.alpha(sigma_next) / alpha
    return {
        "single": single,
        "euler": coefficients.euler(sigma, sigma_next),
        "mid": coefficients.euler(sigma, sigma if single else sigma_mid),
        "at_mid": NOT_EVALUATED if single else Level(sigma_mid),
        "scale_mid": alpha_mid != 1.0,
        "alpha_mid": alpha_mid,
        "inv_mid": 0.0 if single else 1.0 / sigma_mid,
        "rescale": ratio != 1.0,
        "ratio": ratio,
        "dt": sigma_next - ratio * sigma,
    }


def dpm_solver_2_step(m, x, denoised, c):
    """One DPM-Solver-2 step with the coefficients of :func:`dpm_solver_2` (``denoised`` = D(x) at the start)."""
    if c["single"]:
        return euler_to(x, denoised, c["euler"])
    x_mid = euler_to(x, denoised, c["mid"])
    denoised_mid = m.denoise(x_mid, c["at_mid"])
    if c["scale_mid"]:
        denoised_mid = scaled(denoised_mid, c["alpha_mid"])
    eps_mid = scaled(x_mid - denoised_mid, c["inv_mid"])
    if c["rescale"]:
        x = scaled(x, c["ratio"])
    return axpy(x, eps_mid, c["dt"])


class DPM2Sampler(EDMSampler):
    """DPM-2 with EDM churn (k-diffusion ``sample_dpm_2``, "inspired by DPM-Solver-2 and Algorithm 2 from Karras et al.
    (2022)"). NFE = 2N - 1.

    Churn as in :class:`EDMSampler` (``s_churn``, ``s_tmin``, ``s_tmax``, ``s_noise``; noise drawn only when
    ``gamma_i > 0``), then :func:`dpm_solver_2` from ``sigma_hat``. The last step, to sigma = 0, is the Euler step,
    which lands on the denoised estimate (returned exactly).
    """

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        n = len(sigmas) - 1
        for sigma, sigma_next in pairs(sigmas):
            sigma_hat, churn = self.churn(p, sigma, sigma_next, n, noise)
            yield {"churn": churn, "at": Level(sigma_hat), "dpm2": dpm_solver_2(p, sigma_hat, sigma_next)}

    @staticmethod
    def step(m, x, state, c):
        x_hat = renoise(x, c["churn"])
        denoised = m.denoise(x_hat, c["at"])
        m.report(x_hat, denoised)
        return dpm_solver_2_step(m, x_hat, denoised, c["dpm2"]), state


class DPM2AncestralSampler(AncestralSampler):
    """DPM-2 ancestral (k-diffusion ``sample_dpm_2_ancestral``): :func:`dpm_solver_2` down to ``sigma_down``, then
    fresh noise of std ``s_noise * sigma_up`` (the ancestral split of ``eta``). NFE = 2N - 1.

    When ``sigma_down = 0`` the step is the Euler step, which lands on the denoised estimate. With ``eta > 1`` that
    happens before the last step, and the noise ``sigma_up = sigma_next`` is still added (k-diffusion adds none there,
    which leaves the state at sigma_next without noise).
    """

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for sigma, sigma_next in pairs(sigmas):
            sigma_down, up = self.ancestral(p, sigma, sigma_next, noise)
            yield {"at": Level(sigma), "dpm2": dpm_solver_2(p, sigma, sigma_down), "up": up}

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        return renoise(dpm_solver_2_step(m, x, denoised, c["dpm2"]), c["up"]), state
