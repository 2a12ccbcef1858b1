"""The model half of a diffusers scheduler config: how the network is called and what its output means.

A diffusers pipeline calls its UNet or transformer as ``network(scale_model_input(latents, t), t, cond)``. In
edm_sampler's VE state ``x = x_t / alpha_t`` (sigma = ``sigma_t / alpha_t``) every DDPM-family scheduler's model
input is the VP latent ``x_t = x / sqrt(1 + sigma^2)`` (the Euler-type schedulers divide their latents by
``sqrt(1 + sigma^2)``; the DDIM-type ones hold ``x_t`` itself), so one :class:`SchedulerScaling` serves them all:

* ``c_in = 1 / sqrt(1 + sigma^2)`` and ``c_noise = t(sigma)`` by the scheduler's timestep rule
  (:data:`~edm_sampler.diffusers_schedulers.training.TIMESTEP_RULES`);
* ``prediction_type`` gives ``c_skip, c_out``: ``epsilon`` (``D = x - sigma eps``), ``v_prediction``
  (``D = x / (1 + sigma^2) - sigma v / sqrt(1 + sigma^2)``), ``sample`` (``D = out``).

The EDM schedulers use EDM's preconditioning instead (``c_in = 1 / sqrt(sigma^2 + sigma_data^2)``, ``c_noise =
log(sigma) / 4``); the flow schedulers the flow state with ``c_in = 1`` and ``t = sigma * num_train_timesteps``, the
network predicting the velocity (``D = x - sigma v``).
"""

from __future__ import annotations

import numpy as np

from ..denoisers import Denoiser
from ..scalings import FlowEpsScaling, FlowVelocityScaling, Scaling
from .training import TrainingSchedule

VP_PREDICTIONS = ("epsilon", "v_prediction", "sample")
EDM_PREDICTIONS = ("epsilon", "v_prediction")


class SchedulerScaling(Scaling):
    """``sigma -> (c_skip, c_out, c_in, c_noise)`` for a network trained on a diffusers DDPM schedule (see the module
    docstring). ``rule`` picks the timestep convention."""

    def __init__(self, prediction_type: str, table: TrainingSchedule, rule: str):
        self.prediction_type = prediction_type
        self.table = table
        self.rule = rule

    def coefficients(self, sigma):
        ones = np.ones_like(sigma)
        c_in = 1.0 / np.sqrt(1.0 + sigma**2)
        if self.prediction_type == "epsilon":
            c_skip, c_out = ones, -sigma
        elif self.prediction_type == "v_prediction":
            c_skip, c_out = c_in**2, -sigma * c_in
        else:
            c_skip, c_out = np.zeros_like(sigma), ones
        return c_skip, c_out, c_in, self.table.timestep(sigma, self.rule)

    def __repr__(self) -> str:
        return f"SchedulerScaling(prediction_type={self.prediction_type!r}, timesteps={self.rule!r})"


class LCMSchedulerScaling(SchedulerScaling):
    """A latent consistency model (LCMScheduler): the x0 prediction of :class:`SchedulerScaling` mixed with the VP
    latent by the consistency boundary condition at ``s = t * timestep_scaling``: ``denoised = c_out(s) x0 +
    c_skip(s) x_t`` with ``c_skip = 0.25 / (s^2 + 0.25)``, ``c_out = s / sqrt(s^2 + 0.25)`` (sigma_data = 0.5), and
    ``x_t = x / sqrt(1 + sigma^2)``."""

    def __init__(self, prediction_type: str, table: TrainingSchedule, timestep_scaling: float):
        super().__init__(prediction_type, table, "linear")
        self.timestep_scaling = timestep_scaling

    def coefficients(self, sigma):
        c_skip, c_out, c_in, t = super().coefficients(sigma)
        s = t * self.timestep_scaling
        boundary_skip, boundary_out = 0.25 / (s**2 + 0.25), s / np.sqrt(s**2 + 0.25)
        return boundary_out * c_skip + boundary_skip * c_in, boundary_out * c_out, c_in, t

    def __repr__(self) -> str:
        return (
            f"LCMSchedulerScaling(prediction_type={self.prediction_type!r}, timestep_scaling={self.timestep_scaling})"
        )


class IPNDMScaling(Scaling):
    """IPNDMScheduler's network: v-prediction (``eps = sigma_vp x_t + alpha_vp v``) called with the VP latent at
    ``t = atan2(sigma_vp, alpha_vp) 2 / pi = atan(sigma) 2 / pi`` (its own schedule, no training table)."""

    def coefficients(self, sigma):
        c_in = 1.0 / np.sqrt(1.0 + sigma**2)
        return c_in**2, -sigma * c_in, c_in, np.arctan(sigma) * 2.0 / np.pi


class EDMSchedulerScaling(Scaling):
    """diffusers' EDM schedulers' ``precondition_inputs/noise/outputs`` (Karras et al. 2022, Table 1), for epsilon and
    (with the sign of ``c_out`` flipped, as diffusers does) v-prediction networks."""

    def __init__(self, prediction_type: str, sigma_data: float):
        self.prediction_type = prediction_type
        self.sigma_data = sigma_data

    def coefficients(self, sigma):
        sd2 = self.sigma_data**2
        c_out = sigma * self.sigma_data / np.sqrt(sigma**2 + sd2)
        if self.prediction_type == "v_prediction":
            c_out = -c_out
        return sd2 / (sigma**2 + sd2), c_out, 1.0 / np.sqrt(sigma**2 + sd2), 0.25 * np.log(sigma)


class IntegerTimestep:
    """Mixin for the flow scalings: the timestep truncated to an integer, ``floor(sigma * multiplier)``, as the
    DPM-Solver / UniPC / DEIS / SA-Solver schedulers' int64 timesteps with ``use_flow_sigmas`` are (the FlowMatch
    schedulers pass the float)."""

    multiplier: float  # the flow scaling's, the class after this mixin (declared for the type checker)

    def timestep(self, sigma):
        return np.floor(sigma * self.multiplier)


class IntegerFlowVelocityScaling(IntegerTimestep, FlowVelocityScaling):
    """:class:`~edm_sampler.FlowVelocityScaling` with the integer timestep."""


class IntegerFlowEpsScaling(IntegerTimestep, FlowEpsScaling):
    """:class:`~edm_sampler.FlowEpsScaling` with the integer timestep."""


class SchedulerDenoiser(Denoiser):
    """The denoiser of a diffusers scheduler config: ``load_denoiser(config).bind(network)`` calls ``network(x_in,
    timestep, cond, **model_kwargs)`` as the diffusers pipeline does (``timestep`` a float32 Tensor of shape (B,)).

    ``sigma_range`` (the training table's levels, for DDPM-family configs) makes a schedule that starts above the
    network's highest level an error instead of a silent clamp.
    """

    def __init__(self, scaling: Scaling, source: str, sigma_range: tuple[float, float] | None = None):
        super().__init__(scaling)
        self.source = source
        self.sigma_range = sigma_range

    def __repr__(self) -> str:
        return f"SchedulerDenoiser({self.source}: {self.scaling!r})"
