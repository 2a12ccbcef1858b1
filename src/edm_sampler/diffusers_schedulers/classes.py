"""diffusers scheduler classes as edm_sampler samplers: the class name -> translation table. A translation turns a
config (its fields: :mod:`.defaults`, :mod:`.fields`) into a sampler, its schedule, its initial-noise scaling and its
denoiser (:mod:`.translation`); the families live in :mod:`.sigma_classes`, :mod:`.alpha_classes` and
:mod:`.multistep_classes`.

The equivalences, in edm_sampler's VE state ``x = x_t / alpha_t`` (see :mod:`.model`):

* Euler / Heun / LMS / KDPM2 (ancestral) / Euler ancestral are k-diffusion's samplers on the scheduler's sigmas;
* DDIM with ``eta`` is Euler ancestral with k-diffusion's split (``eta = 0``: Euler), DDPM (``fixed_small``) the same
  with ``eta = 1``: both are the exact DDIM/DDPM posterior steps written in the VE state;
* the EDM schedulers are EDM's Euler on its Karras or exponential schedule with EDM preconditioning;
* FlowMatch Euler / Heun are Euler / Heun on the flow state (``stochastic_sampling``: re-noise to ``(1 - sigma) D +
  sigma eps`` at every step, i.e. :class:`~edm_sampler.LCMSampler`).
"""

from __future__ import annotations

from typing import Callable

from .alpha_classes import ddim, ddpm, ipndm, lcm, pndm, tcd
from .defaults import DEFAULTS
from .fields import Fields
from .multistep_classes import deis, dpm_solver_multistep, dpm_solver_singlestep, edm_dpm_solver, sa_solver, unipc
from .sigma_classes import (
    edm_euler,
    euler,
    euler_ancestral,
    flow_match_euler,
    flow_match_heun,
    heun,
    kdpm2,
    kdpm2_ancestral,
    lms,
)
from .translation import Translation

TRANSLATIONS: dict[str, Callable[[Fields, dict], Translation]] = {
    "EulerDiscreteScheduler": euler,
    "EulerAncestralDiscreteScheduler": euler_ancestral,
    "HeunDiscreteScheduler": heun,
    "KDPM2DiscreteScheduler": kdpm2,
    "KDPM2AncestralDiscreteScheduler": kdpm2_ancestral,
    "LMSDiscreteScheduler": lms,
    "DDIMScheduler": ddim,
    "DDPMScheduler": ddpm,
    "LCMScheduler": lcm,
    "PNDMScheduler": pndm,
    "DEISMultistepScheduler": deis,
    "IPNDMScheduler": ipndm,
    "SASolverScheduler": sa_solver,
    "TCDScheduler": tcd,
    "UniPCMultistepScheduler": unipc,
    "DPMSolverMultistepScheduler": dpm_solver_multistep,
    "DPMSolverSinglestepScheduler": dpm_solver_singlestep,
    "EDMDPMSolverMultistepScheduler": edm_dpm_solver,
    "EDMEulerScheduler": edm_euler,
    "FlowMatchEulerDiscreteScheduler": flow_match_euler,
    "FlowMatchHeunDiscreteScheduler": flow_match_heun,
}


__all__ = ["DEFAULTS", "TRANSLATIONS", "Translation"]
