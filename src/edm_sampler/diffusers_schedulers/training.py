"""The training noise schedule of a diffusers scheduler config, in float64, and its timestep conventions.

diffusers' DDPM-family schedulers describe the training process by ``num_train_timesteps`` betas
(``beta_schedule``, ``beta_start``, ``beta_end`` or ``trained_betas``, optionally ``rescale_betas_zero_snr``); the
cumulative product ``alphas_cumprod[t]`` gives the VP latent ``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps`` and the VE
noise level ``sigma(t) = sqrt((1 - a_t) / a_t)`` edm_sampler integrates in. diffusers computes these tables in
float32; here they are float64 (the published formulas), so sigmas agree with diffusers' to float32 rounding.

A network is called with diffusers' timestep ``t`` for the noise level it is evaluated at. Schedulers pick ``t`` in
one of a few ways, each a function of sigma given the table (:data:`TIMESTEP_RULES`):

* ``"linear"``: ``t`` such that the linear interpolation of the sigma table at ``t`` is sigma (the inverse of
  ``np.interp(t, arange(T), sigmas)``, which the Euler-type schedulers use to pick sigmas for fractional ``t``; exact
  integers on the table's own levels, as the DDIM-type schedulers use them);
* ``"log"``: diffusers' ``_sigma_to_t``, linear in log sigma between the two table levels around sigma (used for
  Karras, exponential and beta respacing);
* ``"log_round"``: the same, rounded to an integer (the DPM-Solver and UniPC schedulers round Karras timesteps);
* ``"log_floor"``: the same, truncated to an integer (their int64 cast of exponential and beta timesteps);
* ``"continuous"``: ``0.25 log(sigma)`` (EDM, and ``timestep_type="continuous"`` v-prediction Euler).
"""

from __future__ import annotations

import math

import numpy as np

from .. import checks
from ..discretization import ddpm_betas

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
TIMESTEP_RULES = ("linear", "log", "log_round", "log_floor", "continuous")

# The zero-SNR level (alpha = 0, sigma = inf) as the VE state sees it: alpha = 2**-48, sigma = 2**24 (to float64
# rounding). The VE latent there is the VP latent times an exact power of two, and every quantity with a limit at
# SNR 0 (the network input, a v- or x0-prediction's data estimate, DDIM's noise direction (x - D) / sigma) is within
# float32 rounding (6e-8 relative) of it, so samplers reach diffusers' alpha = 0 numbers without a special case.
ZERO_SNR_ALPHA = 2.0**-48


def cosine_betas(num_train_timesteps: int, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal (2021)'s cosine schedule (diffusers' ``betas_for_alpha_bar``, ``squaredcos_cap_v2``)."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    steps = np.arange(num_train_timesteps, dtype=np.float64)
    ratios = [alpha_bar((i + 1) / num_train_timesteps) / alpha_bar(i / num_train_timesteps) for i in steps]
    return np.minimum(1.0 - np.asarray(ratios), max_beta)


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """Lin et al. (2023), Algorithm 1: shift and scale sqrt(alphas_cumprod) so the last timestep has zero SNR."""
    root = np.sqrt(np.cumprod(1.0 - betas))
    first, last = root[0], root[-1]
    root = (root - last) * first / (first - last)
    alphas_cumprod = root**2
    alphas = np.concatenate([alphas_cumprod[:1], alphas_cumprod[1:] / alphas_cumprod[:-1]])
    return 1.0 - alphas


class TrainingSchedule:
    """``num_train_timesteps`` betas and what follows from them: ``alphas_cumprod`` and the VE ``sigmas`` table.

    ``sigmas[t] = sqrt((1 - a_t) / a_t)`` ascends with ``t``. With ``rescale_betas_zero_snr`` the last level has
    ``a = 0`` (sigma = inf); ``terminal_alpha`` replaces it where a scheduler does so (diffusers' Euler uses
    ``2**-24``).
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas=None,
        rescale_betas_zero_snr: bool = False,
        terminal_alpha: float | None = None,
    ):
        self.num_train_timesteps = checks.integer("num_train_timesteps", num_train_timesteps, minimum=2)
        T = self.num_train_timesteps
        if trained_betas is not None:
            betas = np.asarray(list(trained_betas), dtype=np.float64)
            if betas.shape != (T,) or not np.all((betas > 0) & (betas < 1)):
                raise ValueError(
                    f"trained_betas must hold num_train_timesteps={T} values in (0, 1), got {betas.size} values"
                )
        else:
            beta_start = checks.real("beta_start", beta_start, positive=True)
            beta_end = checks.real("beta_end", beta_end, positive=True)
            schedule = checks.choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
            betas = (
                cosine_betas(T) if schedule == "squaredcos_cap_v2" else ddpm_betas(schedule, beta_start, beta_end, T)
            )
            if not np.all((betas > 0) & (betas < 1)):
                raise ValueError(f"beta_start and beta_end must give betas in (0, 1), got {beta_start}, {beta_end}")
        if rescale_betas_zero_snr:
            betas = rescale_zero_terminal_snr(betas)
        self.betas = betas
        alphas_cumprod = np.cumprod(1.0 - betas)
        if rescale_betas_zero_snr:
            alphas_cumprod[-1] = 0.0 if terminal_alpha is None else terminal_alpha
        self.alphas_cumprod = alphas_cumprod
        with np.errstate(divide="ignore"):
            self.sigmas = np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)
        self.log_sigmas = np.log(self.sigmas)

    def sigma_at(self, t) -> np.ndarray:
        """sigma at (possibly fractional) timesteps ``t``: the table, linearly interpolated (as ``np.interp``)."""
        return np.interp(np.asarray(t, np.float64), np.arange(self.num_train_timesteps, dtype=np.float64), self.sigmas)

    def timestep(self, sigma, rule: str) -> np.ndarray:
        """The network's timestep for noise levels ``sigma`` under ``rule`` (see :data:`TIMESTEP_RULES`)."""
        sigma = np.asarray(sigma, dtype=np.float64)
        if rule == "linear":
            return np.interp(sigma, self.sigmas, np.arange(self.num_train_timesteps, dtype=np.float64))
        if rule == "continuous":
            return 0.25 * np.log(sigma)
        t = self._log_interp(sigma)
        if rule == "log_round":
            return np.round(t)
        return np.floor(t) if rule == "log_floor" else t

    def _log_interp(self, sigma: np.ndarray) -> np.ndarray:
        # diffusers' _sigma_to_t: linear in log sigma between the two levels around sigma, clipped to the table
        log_sigma = np.log(np.maximum(sigma, 1e-10))
        table = self.log_sigmas
        low = np.clip(np.searchsorted(table, log_sigma, side="right") - 1, 0, len(table) - 2)
        w = np.clip((table[low] - log_sigma) / (table[low] - table[low + 1]), 0.0, 1.0)
        return low + w
