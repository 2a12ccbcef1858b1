"""Each supported diffusers scheduler class's constructor fields with diffusers 0.42's defaults: what a config that
leaves a field out means, and which fields a class takes (see :mod:`.fields`)."""

from __future__ import annotations

import math
from typing import Any

_BETAS = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "trained_betas": None,
}
_SD_BETAS = {**_BETAS, "beta_start": 0.00085, "beta_end": 0.012}
_SPACING = {"timestep_spacing": "linspace", "steps_offset": 0}
_RESPACING = {"use_karras_sigmas": False, "use_exponential_sigmas": False, "use_beta_sigmas": False}
_CLIP = {
    "clip_sample": True,
    "clip_sample_range": 1.0,
    "thresholding": False,
    "dynamic_thresholding_ratio": 0.995,
    "sample_max_value": 1.0,
}

_MULTISTEP = {
    **_BETAS,
    **_SPACING,
    **_RESPACING,
    "solver_order": 2,
    "prediction_type": "epsilon",
    "thresholding": False,
    "dynamic_thresholding_ratio": 0.995,
    "sample_max_value": 1.0,
    "lower_order_final": True,
    "use_flow_sigmas": False,
    "flow_shift": 1.0,
    "final_sigmas_type": "zero",
    "rescale_betas_zero_snr": False,
    "use_dynamic_shifting": False,
    "time_shift_type": "exponential",
}

_NOT_SINGLESTEP = ("timestep_spacing", "steps_offset", "rescale_betas_zero_snr")  # DPMSolverSinglestep lacks them

_CONSISTENCY = {
    **_SD_BETAS,
    **_CLIP,
    "beta_schedule": "scaled_linear",
    "original_inference_steps": 50,
    "clip_sample": False,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
    "timestep_scaling": 10.0,
    "rescale_betas_zero_snr": False,
}

_EDM = {  # the EDM schedulers' schedule and preconditioning
    "sigma_min": 0.002,
    "sigma_max": 80.0,
    "sigma_data": 0.5,
    "sigma_schedule": "karras",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "rho": 7.0,
    "final_sigmas_type": "zero",
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "PNDMScheduler": {
        **_BETAS,
        "skip_prk_steps": False,
        "set_alpha_to_one": False,
        "prediction_type": "epsilon",
        "timestep_spacing": "leading",
        "steps_offset": 0,
    },
    "DEISMultistepScheduler": {**_MULTISTEP, "algorithm_type": "deis", "solver_type": "logrho"},
    "IPNDMScheduler": {"num_train_timesteps": 1000, "trained_betas": None},
    "SASolverScheduler": {
        **_BETAS,
        **_SPACING,
        **_RESPACING,
        "predictor_order": 2,
        "corrector_order": 2,
        "prediction_type": "epsilon",
        "tau_func": None,
        "thresholding": False,
        "dynamic_thresholding_ratio": 0.995,
        "sample_max_value": 1.0,
        "algorithm_type": "data_prediction",
        "lower_order_final": True,
        "use_flow_sigmas": False,
        "flow_shift": 1.0,
        "lambda_min_clipped": -math.inf,
        "variance_type": None,
    },
    "UniPCMultistepScheduler": {
        **_MULTISTEP,
        "predict_x0": True,
        "solver_type": "bh2",
        "disable_corrector": [],
        "solver_p": None,
        "sigma_min": None,
        "sigma_max": None,
        "shift_terminal": None,
    },
    "EulerDiscreteScheduler": {
        **_BETAS,
        **_SPACING,
        **_RESPACING,
        "prediction_type": "epsilon",
        "interpolation_type": "linear",
        "sigma_min": None,
        "sigma_max": None,
        "timestep_type": "discrete",
        "rescale_betas_zero_snr": False,
        "final_sigmas_type": "zero",
    },
    "EulerAncestralDiscreteScheduler": {
        **_BETAS,
        **_SPACING,
        "prediction_type": "epsilon",
        "rescale_betas_zero_snr": False,
    },
    "HeunDiscreteScheduler": {
        **_SD_BETAS,
        **_SPACING,
        **_RESPACING,
        "prediction_type": "epsilon",
        "clip_sample": False,
        "clip_sample_range": 1.0,
    },
    "KDPM2DiscreteScheduler": {**_SD_BETAS, **_SPACING, **_RESPACING, "prediction_type": "epsilon"},
    "KDPM2AncestralDiscreteScheduler": {**_SD_BETAS, **_SPACING, **_RESPACING, "prediction_type": "epsilon"},
    "LMSDiscreteScheduler": {**_BETAS, **_SPACING, **_RESPACING, "prediction_type": "epsilon"},
    "DDIMScheduler": {
        **_BETAS,
        **_CLIP,
        "set_alpha_to_one": True,
        "steps_offset": 0,
        "prediction_type": "epsilon",
        "timestep_spacing": "leading",
        "rescale_betas_zero_snr": False,
    },
    "DDPMScheduler": {
        **_BETAS,
        **_CLIP,
        "variance_type": "fixed_small",
        "prediction_type": "epsilon",
        "timestep_spacing": "leading",
        "steps_offset": 0,
        "rescale_betas_zero_snr": False,
    },
    "LCMScheduler": _CONSISTENCY,
    "TCDScheduler": _CONSISTENCY,  # the same fields and defaults as LCM's
    "EDMEulerScheduler": _EDM,
    "FlowMatchEulerDiscreteScheduler": {
        "num_train_timesteps": 1000,
        "shift": 1.0,
        "use_dynamic_shifting": False,
        "base_shift": 0.5,
        "max_shift": 1.15,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
        "invert_sigmas": False,
        "shift_terminal": None,
        **_RESPACING,
        "time_shift_type": "exponential",
        "stochastic_sampling": False,
    },
    "FlowMatchHeunDiscreteScheduler": {"num_train_timesteps": 1000, "shift": 1.0},
    "DPMSolverMultistepScheduler": {
        **_MULTISTEP,
        "algorithm_type": "dpmsolver++",
        "solver_type": "midpoint",
        "euler_at_final": False,
        "use_lu_lambdas": False,
        "lambda_min_clipped": -math.inf,
        "variance_type": None,
    },
    "DPMSolverSinglestepScheduler": {
        **{k: v for k, v in _MULTISTEP.items() if k not in _NOT_SINGLESTEP},
        "algorithm_type": "dpmsolver++",
        "solver_type": "midpoint",
        "lower_order_final": False,
        "lambda_min_clipped": -math.inf,
        "variance_type": None,
    },
    "EDMDPMSolverMultistepScheduler": {
        **_EDM,
        "solver_order": 2,
        "thresholding": False,
        "dynamic_thresholding_ratio": 0.995,
        "sample_max_value": 1.0,
        "algorithm_type": "dpmsolver++",
        "solver_type": "midpoint",
        "lower_order_final": True,
        "euler_at_final": False,
    },
}
