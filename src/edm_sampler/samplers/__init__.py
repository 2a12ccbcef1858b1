"""The sampler family, one module per kind.

* :mod:`.base`: ``BaseDiffusionSampler`` (configuration, plugins, checks, the call, the loop that runs a step);
* :mod:`.options` and :mod:`.coefficients`: a sampler's declared parameters, and step coefficients several share;
* :mod:`.edm`: Karras et al.'s Algorithm 2, Euler and Heun with churn;
* :mod:`.ancestral`: ancestral samplers (Euler ancestral, DPM-Solver++(2S) ancestral);
* :mod:`.multistep`: multistep samplers (DPM-Solver++(2M), linear multistep);
* :mod:`.consistency`: latent-consistency-model sampling;
* :mod:`.dpm`: DPM-Solver-2 and its ancestral form (k-diffusion);
* :mod:`.sde`: DPM-Solver++ SDE samplers on Brownian noise (k-diffusion);
* :mod:`.unipc`: the UniPC predictor-corrector (diffusers' ``UniPCMultistepScheduler``);
* :mod:`.pndm`: PLMS, PNDM and iPNDM (diffusers' ``PNDMScheduler`` and ``IPNDMScheduler``);
* :mod:`.ddim`: DDIM with a limit on its x0 term (diffusers' ``DDIMScheduler`` with ``clip_sample`` / ``thresholding``);
* :mod:`.ddpm`: DDPM ancestral sampling with diffusers' variance choices;
* :mod:`.deis`: DEIS multistep (diffusers' ``DEISMultistepScheduler``);
* :mod:`.dpm_solver`: DPM-Solver(++) multistep and singlestep, ODE and SDE (diffusers' ``DPMSolver*Scheduler``);
* :mod:`.sa_solver`: SA-Solver, the stochastic Adams predictor-corrector (diffusers' ``SASolverScheduler``);
* :mod:`.tcd`: trajectory consistency distillation's sampling (diffusers' ``TCDScheduler``);
* :mod:`.res_multistep`: RES second-order exponential multistep and its ancestral form (ComfyUI);
* :mod:`.gradient_estimation`: Permenter & Yuan's gradient-estimation sampler (ComfyUI);
* :mod:`.er_sde`: ER-SDE-Solver-3 (ComfyUI's ``er_sde``);
* :mod:`.seeds`: SEEDS-2 and SEEDS-3 exponential SDE solvers (ComfyUI).
* :mod:`.heunpp`: Heun++ (ComfyUI's ``heunpp2``);
* :mod:`.adams`: fixed- and variable-step Adams-Bashforth on dx/dsigma (ComfyUI's ``ipndm`` and ``ipndm_v``);
* :mod:`.dpm_fast` and :mod:`.dpm_adaptive`: DPM-Solver-fast and adaptive DPM-Solver-12/23 (k-diffusion, ComfyUI);
* :mod:`.cfg_pp`: the CFG++ samplers (ComfyUI's ``*_cfg_pp``), which renoise with the unconditional estimate.
* :mod:`.restart`: Restart sampling (Xu et al. 2023) around any ODE sampler.
"""

from .adams import IPNDMFixedStepSampler, IPNDMVariableStepSampler
from .ancestral import AncestralSampler, DPMPP2SAncestralSampler, EulerAncestralSampler, get_ancestral_step
from .base import NOT_EVALUATED, BaseDiffusionSampler, Level
from .cfg_pp import (
    DPMPP2MCFGPPSampler,
    DPMPP2SAncestralCFGPPSampler,
    EulerAncestralCFGPPSampler,
    EulerCFGPPSampler,
    GradientEstimationCFGPPSampler,
    ResMultistepAncestralCFGPPSampler,
    ResMultistepCFGPPSampler,
)
from .consistency import LCMSampler
from .ddim import DDIMSampler
from .ddpm import DDPMSampler
from .deis import DEISSampler
from .dpm import DPM2AncestralSampler, DPM2Sampler
from .dpm_adaptive import DPMSolverAdaptiveSampler
from .dpm_fast import DPMSolverFastSampler
from .dpm_solver import DPMSolverMultistepSampler, DPMSolverSinglestepSampler
from .edm import EDMSampler, EulerEDMSampler, HeunEDMSampler
from .er_sde import ERSDESampler
from .gradient_estimation import GradientEstimationSampler
from .heunpp import HeunPP2Sampler
from .multistep import DPMPP2MSampler, LinearMultistepSampler, lms_coefficients
from .pndm import IPNDMSampler, PLMSSampler, PNDMSampler
from .res_multistep import ResMultistepAncestralSampler, ResMultistepSampler
from .restart import RestartSampler
from .sa_solver import SASolverPECESampler, SASolverSampler
from .sde import DPMPP2MSDESampler, DPMPP3MSDESampler, DPMPPSDESampler
from .seeds import SEEDS2Sampler, SEEDS3Sampler
from .tcd import TCDSampler
from .unipc import UniPCSampler

__all__ = [
    "AncestralSampler",
    "BaseDiffusionSampler",
    "DPM2AncestralSampler",
    "DPM2Sampler",
    "DPMPP2MSDESampler",
    "DPMPP2MSampler",
    "DPMPP3MSDESampler",
    "DPMPPSDESampler",
    "DPMPP2SAncestralSampler",
    "EDMSampler",
    "EulerAncestralSampler",
    "EulerEDMSampler",
    "HeunEDMSampler",
    "LCMSampler",
    "Level",
    "NOT_EVALUATED",
    "LinearMultistepSampler",
    "UniPCSampler",
    "DDPMSampler",
    "DEISSampler",
    "DPMSolverMultistepSampler",
    "DPMSolverSinglestepSampler",
    "IPNDMSampler",
    "PLMSSampler",
    "PNDMSampler",
    "SASolverSampler",
    "TCDSampler",
    "DDIMSampler",
    "ERSDESampler",
    "GradientEstimationSampler",
    "ResMultistepAncestralSampler",
    "ResMultistepSampler",
    "SEEDS2Sampler",
    "SEEDS3Sampler",
    "DPMSolverAdaptiveSampler",
    "DPMSolverFastSampler",
    "HeunPP2Sampler",
    "IPNDMFixedStepSampler",
    "IPNDMVariableStepSampler",
    "SASolverPECESampler",
    "RestartSampler",
    "DPMPP2MCFGPPSampler",
    "DPMPP2SAncestralCFGPPSampler",
    "EulerAncestralCFGPPSampler",
    "EulerCFGPPSampler",
    "GradientEstimationCFGPPSampler",
    "ResMultistepAncestralCFGPPSampler",
    "ResMultistepCFGPPSampler",
    "get_ancestral_step",
    "lms_coefficients",
]
