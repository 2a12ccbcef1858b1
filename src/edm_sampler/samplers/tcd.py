"""Trajectory Consistency Distillation sampling (Zheng et al. 2024, "Trajectory Consistency Distillation: Improved
Latent Consistency Distillation by Semi-Linear Consistency Function with Trajectory Mapping", arXiv:2402.19159),
the update rule of diffusers' ``TCDScheduler.step``.

A TCD model is distilled to map ``x_t`` to any earlier point ``x_s`` of its trajectory. Its "strategic stochastic
sampling" (the paper's Algorithm 4) steps from ``sigma_i`` towards ``sigma_{i+1}`` in two moves:

1. the trajectory mapping, down past the next level to ``sigma_s`` (the first-order DDIM step, with the model's data
   estimate ``D`` and noise estimate ``eps = (x - alpha_i D) / sigma_i``)::

       x_s = alpha_s D + sigma_s eps

2. forward noise from ``sigma_s`` back up to ``sigma_{i+1}`` (the exact transition of the noising process)::

       x_{i+1} = a x_s + sqrt(sigma_{i+1}^2 - (a sigma_s)^2) z,   a = alpha_{i+1} / alpha_s

where ``s`` is the fraction ``1 - gamma`` of the next time: ``gamma = 0`` is deterministic (DDIM), ``gamma = 1``
jumps to the data and re-noises fully (multistep consistency sampling, :class:`~edm_sampler.LCMSampler`). ``alpha = 1``
for VE states, ``1 - sigma`` for flow states; both moves are exact in either (diffusers has no flow TCD).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..functional import lincomb, renoise
from ..parametrization import Parametrization
from . import coefficients, options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

LEVEL_MATCH = 1e-6  # relative tolerance of a schedule sigma against its timestep's level in ``timestep_sigmas``


class TimestepLevels:
    """The noise level of every integer training timestep ``t = 0 .. T - 1`` (increasing in ``t``), as
    :class:`TCDSampler`'s ``timestep_sigmas`` holds them (its repr stays one line)."""

    def __init__(self, sigmas: np.ndarray):
        self.sigmas = sigmas

    def timestep(self, sigma: float) -> int:
        """The timestep whose level is ``sigma`` (within :data:`LEVEL_MATCH`), or a ValueError."""
        t = int(np.argmin(np.abs(self.sigmas - sigma)))
        if abs(self.sigmas[t] - sigma) > LEVEL_MATCH * sigma:
            raise ValueError(
                f"TCDSampler: the schedule's sigma {sigma:.8g} is not one of timestep_sigmas' levels (nearest: "
                f"{self.sigmas[t]:.8g} at t = {t}); with timestep_sigmas, every level the sampler steps to must be a "
                "training timestep's, as in diffusers' TCDScheduler"
            )
        return t

    def __repr__(self) -> str:
        return f"<{len(self.sigmas)} levels, {self.sigmas[0]:.6g} .. {self.sigmas[-1]:.6g}>"


def _timestep_levels(name: str, value: Any) -> TimestepLevels | None:
    if value is None or isinstance(value, TimestepLevels):
        return value
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a list of noise levels (one per training timestep) or None, got {value!r}")
    try:
        sigmas = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a list of numbers, got {type(value).__name__}") from err
    if sigmas.ndim != 1 or len(sigmas) < 2 or not np.all(np.isfinite(sigmas)):
        raise ValueError(f"{name} must be a 1-d list of at least 2 finite noise levels, got shape {sigmas.shape}")
    if sigmas[0] <= 0 or np.any(np.diff(sigmas) <= 0):
        raise ValueError(f"{name} must be positive and strictly increasing with the timestep (t = 0, 1, ...)")
    return TimestepLevels(sigmas)


class TCDSampler(BaseDiffusionSampler):
    """TCD's strategic stochastic sampling (diffusers ``TCDScheduler.step``; its ``eta`` argument is ``gamma`` here,
    the paper's name; 0.3 as the TCD pipelines' examples use). NFE = N. See the module docstring for the two moves.

    The intermediate level ``sigma_s`` of the step from ``sigma_i`` to ``sigma_{i+1}``:

    * with ``timestep_sigmas`` (the level of every training timestep ``t = 0 .. T - 1``, e.g. ``sqrt((1 -
      alphas_cumprod) / alphas_cumprod)`` for a VP table): diffusers' discrete rule: ``sigma_{i+1}`` must be the level
      of a timestep ``t'`` and ``sigma_s`` is the level of ``floor((1 - gamma) t')``, the product taken in float32 as
      diffusers takes it (``(1 - eta) * prev_timestep`` of a long tensor), which floors ``0.7 * 90`` to 63 where
      float64 gives 62;
    * without it: the same fraction of the next level itself, ``sigma_s = (1 - gamma) sigma_{i+1}``: the paper's ``s =
      (1 - gamma) t`` in the time ``t = sigma`` of EDM's VE formulation and of rectified flow (where diffusers'
      timestep is ``sigma`` times the number of training steps).

    The last step is the deterministic step to the end of the schedule, with no noise: diffusers' last step maps to
    ``floor((1 - gamma) * 0) = 0``, the level its schedule ends at (``sigmas[-1]`` must then be ``timestep_sigmas[0]``
    for diffusers' numbers; a schedule ending at 0 returns ``D``). Noise is drawn on every other step when ``gamma >
    0`` (N - 1 draws, as diffusers draws), none when ``gamma = 0``.

    Not covered here: diffusers' timesteps (``original_inference_steps``, ``strength``, custom timesteps: the
    schedule's job) and the model-output conversion (``prediction_type``: the denoiser's). ``clip_sample`` and
    ``thresholding`` are parameters diffusers' TCD ``step`` never reads; ``set_alpha_to_one`` (``final_alpha_cumprod``)
    is never reached either, since the last step's target timestep is 0, not -1.
    """

    gamma = options.real(0.3, nonnegative=True, maximum=1.0, doc="the stochasticity, 0 (DDIM) to 1 (consistency)")
    timestep_sigmas = options.Option(None, _timestep_levels, "the noise level of every training timestep, or None")

    def intermediate(self, sigma_next: float) -> float:
        """``sigma_s`` for a step (not the last one) to ``sigma_next``."""
        if sigma_next == 0.0:
            return 0.0
        if self.timestep_sigmas is None:
            return (1.0 - self.gamma) * sigma_next
        t_next = self.timestep_sigmas.timestep(sigma_next)
        t_s = math.floor(float(np.float32(1.0 - self.gamma) * np.float32(t_next)))  # diffusers' float32 product
        return float(self.timestep_sigmas.sigmas[t_s])

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        n = len(sigmas) - 1
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            last = i == n - 1
            sigma_s = sigma_next if last else self.intermediate(sigma_next)
            ratio = sigma_s / sigma  # x_s = alpha_s D + sigma_s eps = ratio x + (alpha_s - ratio alpha) D
            if last or self.gamma == 0.0:
                up = coefficients.no_renoising()
            else:
                a, std = p.renoise(sigma_s, sigma_next)
                up = coefficients.renoising(a, std, True, noise, sigma, sigma_next)
            yield {
                "at": Level(sigma),
                "x_weight": ratio,
                "d_weight": p.alpha(sigma_s) - ratio * p.alpha(sigma),
                "renoise": up,
            }

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        x_s = lincomb((x, c["x_weight"]), (denoised, c["d_weight"]))
        return renoise(x_s, c["renoise"]), state
