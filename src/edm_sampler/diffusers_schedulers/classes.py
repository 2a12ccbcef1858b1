"""diffusers scheduler classes as edm_sampler samplers: each class's fields (with diffusers 0.42's defaults) and the
translation of a config into a sampler, its schedule, its initial-noise scaling and its denoiser.

The equivalences, in edm_sampler's VE state ``x = x_t / alpha_t`` (see :mod:`.model`):

* Euler / Heun / LMS / KDPM2 (ancestral) / Euler ancestral are k-diffusion's samplers on the scheduler's sigmas;
* DDIM with ``eta`` is Euler ancestral with k-diffusion's split (``eta = 0``: Euler), DDPM (``fixed_small``) the same
  with ``eta = 1``: both are the exact DDIM/DDPM posterior steps written in the VE state;
* the EDM schedulers are EDM's Euler on its Karras or exponential schedule with EDM preconditioning;
* FlowMatch Euler / Heun are Euler / Heun on the flow state (``stochastic_sampling``: re-noise to ``(1 - sigma) D +
  sigma eps`` at every step, i.e. :class:`~edm_sampler.LCMSampler`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..checks import ConfigError
from ..denoisers import Denoiser
from ..discretization import EDMDiscretization
from ..flow_schedules import FlowMatchDiscretization
from ..guiders.x0_limits import ClipX0, DynamicThresholdX0, limit_denoised
from ..scalings import FlowVelocityScaling
from ..schedules import ExponentialDiscretization
from .fields import Fields
from .model import (
    EDM_PREDICTIONS,
    VP_PREDICTIONS,
    EDMSchedulerScaling,
    IntegerFlowEpsScaling,
    IntegerFlowVelocityScaling,
    IPNDMScaling,
    LCMSchedulerScaling,
    SchedulerDenoiser,
    SchedulerScaling,
)
from .schedule import (
    FINAL_SIGMAS,
    TIMESTEP_SPACINGS,
    SchedulerDiscretization,
    alpha_family_levels,
    alpha_family_timesteps,
    flow_family_levels,
    multistep_family_levels,
    respace,
    reversed_flow_sigmas,
    sigma_family_levels,
)
from .training import TrainingSchedule

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
    "LCMScheduler": {
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
    },
    "TCDScheduler": {
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
    },
    "EDMEulerScheduler": {
        "sigma_min": 0.002,
        "sigma_max": 80.0,
        "sigma_data": 0.5,
        "sigma_schedule": "karras",
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "rho": 7.0,
        "final_sigmas_type": "zero",
    },
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
        **{
            k: v
            for k, v in _MULTISTEP.items()
            if k not in ("timestep_spacing", "steps_offset", "rescale_betas_zero_snr")
        },
        "algorithm_type": "dpmsolver++",
        "solver_type": "midpoint",
        "lower_order_final": False,
        "lambda_min_clipped": -math.inf,
        "variance_type": None,
    },
    "EDMDPMSolverMultistepScheduler": {
        "sigma_min": 0.002,
        "sigma_max": 80.0,
        "sigma_data": 0.5,
        "sigma_schedule": "karras",
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "rho": 7.0,
        "solver_order": 2,
        "thresholding": False,
        "dynamic_thresholding_ratio": 0.995,
        "sample_max_value": 1.0,
        "algorithm_type": "dpmsolver++",
        "solver_type": "midpoint",
        "lower_order_final": True,
        "euler_at_final": False,
        "final_sigmas_type": "zero",
    },
}


@dataclass
class Translation:
    """What a scheduler config becomes: a sampler class with its parameters, the schedule, the initial-noise scaling
    (``init_noise``) and the denoiser (the model half)."""

    class_name: str
    sampler: type
    denoiser: Denoiser
    schedule: Callable[[], Any]  # builds the discretization (deferred: a dynamic flow shift needs mu first)
    init_noise: str
    params: dict | Callable[[dict], dict] = field(default_factory=dict)  # or built from the sampler's options
    x0_limit: Any = None  # clip_sample / thresholding: applied to the guided estimate (see guiders.x0_limits)

    def build_sampler(self, **options):
        own = self.params(options) if callable(self.params) else self.params
        params = {"discretization_config": self.schedule(), "init_noise": self.init_noise, **own}
        params.update(options)
        sampler = self.sampler(**params)
        if self.x0_limit is not None:
            sampler.guider = limit_denoised(sampler.guider, self.x0_limit)
        return sampler


def _training(f: Fields, terminal_alpha: float | None = None) -> TrainingSchedule:
    rescale = f.flag("rescale_betas_zero_snr") if "rescale_betas_zero_snr" in f.defaults else False
    return TrainingSchedule(
        num_train_timesteps=f.take("num_train_timesteps"),
        beta_start=f.take("beta_start"),
        beta_end=f.take("beta_end"),
        beta_schedule=f.choice("beta_schedule", ("linear", "scaled_linear", "squaredcos_cap_v2")),
        trained_betas=f.take("trained_betas"),
        rescale_betas_zero_snr=rescale,
        terminal_alpha=terminal_alpha,
    )


def _respacing(f: Fields) -> str | None:
    chosen = [kind for kind in ("karras", "exponential", "beta") if f.flag(f"use_{kind}_sigmas")]
    if len(chosen) > 1:
        raise ConfigError(
            f"{f.origin}: {f.class_name}: only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas may "
            f"be true (as diffusers requires); got {', '.join(f'use_{k}_sigmas' for k in chosen)}"
        )
    return chosen[0] if chosen else None


_LIMIT_FIELDS = ("clip_sample", "clip_sample_range", "thresholding", "dynamic_thresholding_ratio", "sample_max_value")


def _x0_limit(f: Fields):
    """diffusers' ``thresholding`` (which wins) or ``clip_sample`` as a limit on the guided x0 estimate, or None."""
    values = {name: f.take(name) for name in _LIMIT_FIELDS if name in f.defaults}
    if values.get("thresholding"):
        return DynamicThresholdX0(values["dynamic_thresholding_ratio"], values["sample_max_value"])
    if values.get("clip_sample"):
        return ClipX0(values["clip_sample_range"])
    return None


def _no_limit(f: Fields, why: str) -> None:
    """Refuse clip_sample / thresholding where diffusers applies them other than to the guided x0 estimate."""
    for name in ("clip_sample", "thresholding"):
        if f.config.get(name, f.defaults.get(name)):
            f.refuse(name, f"{why}; not implemented, set it to false")
    for name in _LIMIT_FIELDS:
        if name in f.defaults:
            f.take(name)


def _vp_denoiser(f: Fields, table: TrainingSchedule, rule: str) -> SchedulerDenoiser:
    prediction = f.choice("prediction_type", VP_PREDICTIONS)
    # a continuous-timestep network is not tied to the table's levels
    sigma_range = None if rule == "continuous" else (float(table.sigmas[0]), float(table.sigmas[-1]))
    return SchedulerDenoiser(SchedulerScaling(prediction, table, rule), f.class_name, sigma_range)


def _sigma_family(
    f: Fields,
    sampler: type,
    params: dict,
    *,
    respacing_allowed: bool = True,
    terminal_alpha: float | None = None,
    rule: str | None = None,
) -> Translation:
    """Euler, Euler ancestral, Heun, KDPM2 (ancestral), LMS. ``rule`` overrides the timestep rule."""
    table = _training(f, terminal_alpha=terminal_alpha)
    if table.alphas_cumprod[-1] == 0.0:
        f.refuse("rescale_betas_zero_snr", f"{f.class_name} has no finite sigma at the last timestep with it")
    spacing = f.choice("timestep_spacing", TIMESTEP_SPACINGS)
    offset = f.take("steps_offset")
    respacing = _respacing(f) if respacing_allowed else None
    sigma_min = f.take("sigma_min") if "sigma_min" in f.defaults else None
    sigma_max = f.take("sigma_max") if "sigma_max" in f.defaults else None
    final = f.choice("final_sigmas_type", FINAL_SIGMAS) if "final_sigmas_type" in f.defaults else "zero"
    if "interpolation_type" in f.defaults:
        f.choice("interpolation_type", ("linear",))
    rule = rule or ("log" if respacing else "linear")
    if "timestep_type" in f.defaults:
        kind = f.choice("timestep_type", ("discrete", "continuous"))
        if kind == "continuous" and f.config.get("prediction_type") == "v_prediction":
            rule = "continuous"
    denoiser = _vp_denoiser(f, table, rule)
    levels = sigma_family_levels(table, spacing, offset, respacing, sigma_min, sigma_max, final)
    init_noise = "edm" if spacing in ("linspace", "trailing") else "sgm"  # diffusers' init_noise_sigma
    describe = _describe(f)
    return Translation(
        f.class_name, sampler, denoiser, lambda: SchedulerDiscretization(levels, describe), init_noise, params
    )


def _describe(f: Fields) -> str:
    changed = {k: v for k, v in f.config.items() if k in f.defaults and v != f.defaults[k] and k != "trained_betas"}
    return f.class_name + "".join(f", {k}={v!r}" for k, v in changed.items())


def euler(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerEDMSampler

    return _sigma_family(f, EulerEDMSampler, {}, terminal_alpha=2.0**-24)


def euler_ancestral(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerAncestralSampler

    return _sigma_family(f, EulerAncestralSampler, {"eta": 1.0}, respacing_allowed=False, terminal_alpha=2.0**-24)


def heun(f: Fields, options: dict) -> Translation:
    from ..samplers import HeunEDMSampler

    limit = _x0_limit(f)
    translation = _sigma_family(f, HeunEDMSampler, {})
    translation.x0_limit = limit
    return translation


# KDPM2 (ancestral) evaluate their midpoints at the log-sigma timestep (diffusers' _sigma_to_t), and that rule is used
# for every call: exact at integer timesteps (leading/trailing spacing), within about 1e-5 of a timestep of diffusers'
# fractional linspace timesteps, and unrounded where diffusers rounds the Karras main timesteps (its midpoints are not)
def kdpm2(f: Fields, options: dict) -> Translation:
    from ..samplers import DPM2Sampler

    return _sigma_family(f, DPM2Sampler, {}, rule="log")


def kdpm2_ancestral(f: Fields, options: dict) -> Translation:
    from ..samplers import DPM2AncestralSampler

    return _sigma_family(f, DPM2AncestralSampler, {"eta": 1.0}, rule="log")


def lms(f: Fields, options: dict) -> Translation:
    from ..samplers import LinearMultistepSampler

    return _sigma_family(f, LinearMultistepSampler, {"order": 4})


def _alpha_family(f: Fields, sampler: type, params: dict, final_alpha_is_one: bool) -> Translation:
    """DDIM and DDPM: integer timesteps on the table, the VP latent in and out (``init_noise="vp"``)."""
    table = _training(f)
    spacing = f.choice("timestep_spacing", TIMESTEP_SPACINGS)
    offset = f.take("steps_offset")
    T = table.num_train_timesteps
    if table.alphas_cumprod[-1] == 0.0:
        f.refuse("rescale_betas_zero_snr", "a zero-SNR top level (sigma = inf) is not supported by these samplers yet")

    def timesteps(n: int):
        return alpha_family_timesteps(spacing, n, T, offset)

    denoiser = _vp_denoiser(f, table, "linear")
    levels, describe = alpha_family_levels(table, timesteps, final_alpha_is_one), _describe(f)
    return Translation(f.class_name, sampler, denoiser, lambda: SchedulerDiscretization(levels, describe), "vp", params)


def ddim(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerAncestralSampler

    _no_limit(f, "DDIM combines the clipped x0 with the unclipped noise prediction (not a limit on the estimate)")
    return _alpha_family(f, EulerAncestralSampler, {"eta": 0.0}, f.flag("set_alpha_to_one"))


def ddpm(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerAncestralSampler

    limit = _x0_limit(f)
    f.choice("variance_type", ("fixed_small", "fixed_small_log"))
    translation = _alpha_family(f, EulerAncestralSampler, {"eta": 1.0}, True)
    translation.x0_limit = limit
    return translation


def _optional(f: Fields, name: str, default=None):
    return f.take(name) if name in f.defaults else default


def _multistep_family(f: Fields, options: dict, sampler: type, params: dict, dpm: bool = False) -> Translation:
    """DPM-Solver, UniPC, SA-Solver: the DPM-Solver family's ``set_timesteps`` (VE, or flow sigmas), VP latents in and
    out, the timestep as the scheduler's int64 (rounded or truncated where diffusers does). ``dpm``: the DPM-Solver
    schedulers' variant (``lambda_min_clipped``, ``use_lu_lambdas``, ``variance_type``, their flow sigmas)."""
    limit = _x0_limit(f)
    table = _training(f, terminal_alpha=2.0**-24)
    respacing = _respacing(f)
    lu = f.flag("use_lu_lambdas") if "use_lu_lambdas" in f.defaults else False
    if lu and respacing:
        raise ConfigError(f"{f.origin}: use_lu_lambdas and use_{respacing}_sigmas are both set; diffusers uses one")
    final = f.choice("final_sigmas_type", FINAL_SIGMAS)
    spacing = f.choice("timestep_spacing", TIMESTEP_SPACINGS) if "timestep_spacing" in f.defaults else "linspace"
    offset = _optional(f, "steps_offset", 0)
    dynamic = f.flag("use_dynamic_shifting") if "use_dynamic_shifting" in f.defaults else False
    shift_type = _optional(f, "time_shift_type", "exponential")
    if "variance_type" in f.defaults:
        f.choice("variance_type", (None,))  # "learned" / "learned_range": the network's extra variance channels
    T = table.num_train_timesteps
    describe = _describe(f)
    if f.flag("use_flow_sigmas"):
        if respacing or lu:
            f.refuse(f"use_{respacing or 'lu_lambdas'}", "respaced flow sigmas are not implemented yet")
        mu = options.pop("mu", None)
        if dynamic and mu is None:
            raise ConfigError(
                f"{f.origin}: use_dynamic_shifting=true: pass mu=... to load_sampler, as the pipeline "
                "passes it to set_timesteps"
            )
        shift = f.take("flow_shift")
        if dpm:
            if dynamic:
                f.refuse("use_dynamic_shifting", "the DPM-Solver schedulers' flow sigmas do not read it")
            _optional(f, "lambda_min_clipped")
            last = float(table.sigmas[0]) if final == "sigma_min" else 0.0  # diffusers: the VP table's, even here

            def levels(n: int):
                return np.append(reversed_flow_sigmas(T, shift, n), last)

        else:
            levels = flow_family_levels(
                T, shift, mu if dynamic else None, shift_type, _optional(f, "shift_terminal"), final
            )
        prediction = f.choice("prediction_type", ("flow_prediction", "epsilon"))
        scaling = (IntegerFlowVelocityScaling if prediction == "flow_prediction" else IntegerFlowEpsScaling)(float(T))
        denoiser = SchedulerDenoiser(scaling, f.class_name)
    else:
        if dynamic:
            f.refuse("use_dynamic_shifting", "dynamic shifting applies to flow sigmas (use_flow_sigmas=true)")
        f.take("flow_shift")  # no effect without flow sigmas
        last_timestep = None
        clip = _optional(f, "lambda_min_clipped", -math.inf)
        if clip != -math.inf:  # drop the top timesteps whose half-log-SNR -log(sigma) is below the clip
            last_timestep = T - int(np.searchsorted(-table.log_sigmas[::-1], clip))
        levels = multistep_family_levels(
            table,
            spacing,
            offset,
            "exponential" if lu else respacing,
            final,
            _optional(f, "sigma_min"),
            _optional(f, "sigma_max"),
            last_timestep,
            "table" if dpm else "last",
        )
        cosine = f.config.get("beta_schedule") == "squaredcos_cap_v2"
        rounded = (respacing == "karras" and not (dpm and cosine)) or (lu and not cosine)
        rule = "linear" if not (respacing or lu) else ("log_round" if rounded else "log_floor")
        denoiser = _vp_denoiser(f, table, rule)
    schedule = lambda: SchedulerDiscretization(levels, describe)  # noqa: E731
    return Translation(f.class_name, sampler, denoiser, schedule, "vp", params, x0_limit=limit)


def _dpm_solver(f: Fields, options: dict, sampler: type, algorithms: tuple, euler_at_final: bool) -> Translation:
    algorithm = f.choice("algorithm_type", algorithms + ("deis",))
    if algorithm in ("dpmsolver", "sde-dpmsolver") and f.config.get("final_sigmas_type", "zero") == "zero":
        raise ConfigError(
            f"{f.origin}: {f.class_name}: algorithm_type={algorithm!r} with final_sigmas_type='zero' is refused (as "
            "diffusers refuses it: the noise-prediction update divides by alpha = 0 there); use 'sigma_min'"
        )
    solver_type = f.choice("solver_type", ("midpoint", "heun", "logrho", "bh1", "bh2"))
    params = {
        "algorithm_type": "dpmsolver++" if algorithm == "deis" else algorithm,  # diffusers' own substitutions
        "solver_order": f.take("solver_order"),
        "solver_type": solver_type if solver_type in ("midpoint", "heun") else "midpoint",
        "lower_order_final": f.flag("lower_order_final"),
    }
    if euler_at_final:
        params["euler_at_final"] = f.flag("euler_at_final")
    return _multistep_family(f, options, sampler, params, dpm=True)


def dpm_solver_multistep(f: Fields, options: dict) -> Translation:
    """DPMSolverMultistepScheduler: :class:`~edm_sampler.samplers.dpm_solver.DPMSolverMultistepSampler`."""
    from ..samplers import DPMSolverMultistepSampler

    algorithms = ("dpmsolver++", "dpmsolver", "sde-dpmsolver++", "sde-dpmsolver")
    return _dpm_solver(f, options, DPMSolverMultistepSampler, algorithms, True)


def dpm_solver_singlestep(f: Fields, options: dict) -> Translation:
    """DPMSolverSinglestepScheduler: :class:`~edm_sampler.samplers.dpm_solver.DPMSolverSinglestepSampler`."""
    from ..samplers import DPMSolverSinglestepSampler

    return _dpm_solver(f, options, DPMSolverSinglestepSampler, ("dpmsolver++", "dpmsolver", "sde-dpmsolver++"), False)


def edm_dpm_solver(f: Fields, options: dict) -> Translation:
    """EDMDPMSolverMultistepScheduler: the DPM-Solver multistep sampler on EDM's schedule and preconditioning."""
    from ..samplers import DPMSolverMultistepSampler

    translation = edm_euler(f, options)
    translation.x0_limit = _x0_limit(f)
    algorithm = f.choice("algorithm_type", ("dpmsolver++", "sde-dpmsolver++"))
    translation.sampler = DPMSolverMultistepSampler
    translation.params = {
        "algorithm_type": algorithm,
        "solver_order": f.take("solver_order"),
        "solver_type": f.choice("solver_type", ("midpoint", "heun")),
        "lower_order_final": f.flag("lower_order_final"),
        "euler_at_final": f.flag("euler_at_final"),
    }
    return translation


def unipc(f: Fields, options: dict) -> Translation:
    """UniPCMultistepScheduler: :class:`~edm_sampler.samplers.unipc.UniPCSampler`. diffusers turns the DPM-Solver
    solver types (midpoint, heun, logrho) into bh2, and so does this translation."""
    from ..samplers import UniPCSampler

    solver_type = f.choice("solver_type", ("bh1", "bh2", "midpoint", "heun", "logrho"))
    f.only_default("solver_p", "a separate predictor solver object cannot come from a config file")
    params = {
        "solver_order": f.take("solver_order"),
        "solver_type": solver_type if solver_type == "bh1" else "bh2",
        "predict_x0": f.flag("predict_x0"),
        "lower_order_final": f.flag("lower_order_final"),
        "disable_corrector": tuple(f.take("disable_corrector") or ()),
    }
    respaced = any(f.config.get(f"use_{kind}_sigmas") for kind in ("karras", "exponential", "beta"))
    if f.config.get("final_sigmas_type") == "sigma_min" and (respaced or f.config.get("use_flow_sigmas")):
        # diffusers then repeats the last sigma: a zero-length last step whose corrector still changes the result
        f.refuse(
            "final_sigmas_type",
            "with respaced or flow sigmas diffusers repeats the last sigma (a zero-length "
            "step that only applies one more correction); use 'zero'",
        )
    return _multistep_family(f, options, UniPCSampler, params)


def pndm(f: Fields, options: dict) -> Translation:
    """PNDMScheduler: PLMS (``skip_prk_steps``, as SD 1.x ships it) or PNDM with its Runge-Kutta warm-up, whose
    midpoints sit at diffusers' timesteps ``t - (T // N) // 2`` (so the step count is fixed when the sampler is
    built). diffusers steps to ``t - T // N``: the next timestep with leading spacing; other spacings step to the next
    timestep (the method as published)."""
    from ..samplers.pndm import PLMSSampler, PNDMSampler

    table = _training(f)
    spacing, offset = f.choice("timestep_spacing", TIMESTEP_SPACINGS), f.take("steps_offset")
    T = table.num_train_timesteps

    def timesteps(n: int):
        return alpha_family_timesteps(spacing, n, T, offset)

    denoiser = _vp_denoiser(f, table, "linear")
    levels, describe = alpha_family_levels(table, timesteps, f.flag("set_alpha_to_one")), _describe(f)
    if f.flag("skip_prk_steps"):
        sampler, params = PLMSSampler, {}
    else:

        def params(options: dict) -> dict:
            n = options.get("num_steps")
            if n is None:
                raise ConfigError(
                    f"{f.origin}: PNDMScheduler with skip_prk_steps=false places its Runge-Kutta midpoints by the "
                    "step count: pass num_steps=... to load_sampler"
                )
            warmup = timesteps(n)[: min(3, n)]
            return {"midpoint_sigmas": tuple(float(table.sigmas[t - (T // n) // 2]) for t in warmup)}

        sampler = PNDMSampler
    return Translation(f.class_name, sampler, denoiser, lambda: SchedulerDiscretization(levels, describe), "vp", params)


def _repeating_family(f: Fields, sampler: type, params: dict) -> Translation:
    """DEIS and SA-Solver: their schedules end at the table's smallest sigma; respaced and flow schedules end with
    their last sigma repeated (a zero-length last step): the repeat is left out and ``repeated_last_sigma`` tells the
    sampler, which keeps diffusers' order rule (and SA-Solver its last correction)."""
    limit = _x0_limit(f)
    table = _training(f, terminal_alpha=2.0**-24)
    respacing = _respacing(f)
    spacing, offset = f.choice("timestep_spacing", TIMESTEP_SPACINGS), f.take("steps_offset")
    if "variance_type" in f.defaults:
        f.choice("variance_type", (None,))
    T = table.num_train_timesteps
    clip = _optional(f, "lambda_min_clipped", -math.inf)
    last_timestep = None if clip == -math.inf else T - int(np.searchsorted(-table.log_sigmas[::-1], clip))
    shift = f.take("flow_shift")
    flow = f.flag("use_flow_sigmas")
    if flow:
        if respacing:
            f.refuse(f"use_{respacing}_sigmas", "respaced flow sigmas are not implemented yet")

        def levels(n: int):
            return reversed_flow_sigmas(T, shift, n)

        prediction = f.choice("prediction_type", ("flow_prediction", "epsilon"))
        scaling = (IntegerFlowVelocityScaling if prediction == "flow_prediction" else IntegerFlowEpsScaling)(float(T))
        denoiser = SchedulerDenoiser(scaling, f.class_name)
    elif respacing:

        def levels(n: int):
            return respace(respacing, float(table.sigmas[0]), float(table.sigmas[-1]), n)

        denoiser = _vp_denoiser(f, table, "log_round" if respacing == "karras" else "log_floor")
    else:
        levels = multistep_family_levels(table, spacing, offset, None, "sigma_min", last_timestep=last_timestep)
        denoiser = _vp_denoiser(f, table, "linear")
    params = {**params, "repeated_last_sigma": flow or respacing is not None}
    describe = _describe(f)
    schedule = lambda: SchedulerDiscretization(levels, describe)  # noqa: E731
    return Translation(f.class_name, sampler, denoiser, schedule, "vp", params, x0_limit=limit)


def deis(f: Fields, options: dict) -> Translation:
    """DEISMultistepScheduler: :class:`~edm_sampler.samplers.deis.DEISSampler`."""
    from ..samplers import DEISSampler

    f.choice("algorithm_type", ("deis", "dpmsolver", "dpmsolver++"))  # diffusers runs the others as deis
    f.choice("solver_type", ("logrho", "midpoint", "heun", "bh1", "bh2"))
    for name in ("use_dynamic_shifting", "final_sigmas_type"):
        f.only_default(name, "DEISMultistepScheduler's set_timesteps does not read it")
    f.take("time_shift_type")
    params = {"solver_order": f.take("solver_order"), "lower_order_final": f.flag("lower_order_final")}
    return _repeating_family(f, DEISSampler, params)


def sa_solver(f: Fields, options: dict) -> Translation:
    """SASolverScheduler: :class:`~edm_sampler.samplers.sa_solver.SASolverSampler`, with diffusers' default tau (1
    for timesteps 200..800, else 0) as the noise-level interval those timesteps cover."""
    from ..samplers import SASolverSampler

    f.only_default(
        "tau_func",
        "a Python function cannot come from a config file (tau=... and tau_interval=... can be passed to load_sampler)",
    )
    params = {
        "predictor_order": f.take("predictor_order"),
        "corrector_order": f.take("corrector_order"),
        "algorithm_type": f.choice("algorithm_type", ("data_prediction", "noise_prediction")),
        "lower_order_final": f.flag("lower_order_final"),
        "tau": 1.0,
    }
    translation = _repeating_family(f, SASolverSampler, params)
    if f.config.get("use_flow_sigmas"):  # the timestep is int64(1000 sigma): 200 <= t <= 800 for sigma in [0.2, 0.801)
        T = f.take("num_train_timesteps")
        translation.params["tau_interval"] = (200 / T, np.nextafter(801 / T, 0.0))
    else:
        sigmas = translation.denoiser.scaling.table.sigmas
        translation.params["tau_interval"] = (float(sigmas[200]), float(sigmas[800]))
    return translation


def tcd(f: Fields, options: dict) -> Translation:
    """TCDScheduler: :class:`~edm_sampler.samplers.tcd.TCDSampler` on the LCM timesteps, ending at the table's first
    level (diffusers' last step targets timestep 0). ``gamma`` (the pipelines' ``eta``, 0.3 by default) is a
    sampler option."""
    from ..samplers import TCDSampler

    for name in _LIMIT_FIELDS:
        f.take(name)  # TCDScheduler.step does not read them
    table = _training(f)
    if table.alphas_cumprod[-1] == 0.0:
        f.refuse("rescale_betas_zero_snr", "a zero-SNR top level (sigma = inf) is not supported by these samplers yet")
    original = f.take("original_inference_steps")
    for name in ("timestep_spacing", "steps_offset", "set_alpha_to_one", "timestep_scaling"):
        f.take(name)  # TCDScheduler.set_timesteps/step do not use them
    T = table.num_train_timesteps

    def levels(n: int):
        return np.append(table.sigmas[lcm_timesteps(n, T, original)], table.sigmas[0])

    denoiser = _vp_denoiser(f, table, "linear")
    params = {"gamma": 0.3, "timestep_sigmas": tuple(float(v) for v in table.sigmas)}
    describe = _describe(f)
    return Translation(
        f.class_name, TCDSampler, denoiser, lambda: SchedulerDiscretization(levels, describe), "vp", params
    )


def ipndm(f: Fields, options: dict) -> Translation:
    """IPNDMScheduler: :class:`~edm_sampler.samplers.pndm.IPNDMSampler` on its own sin/cos schedule (no training
    table: ``num_train_timesteps`` and ``trained_betas`` do not enter its numbers). diffusers' first call, from pure
    noise, is multiplied by 0 and left out here (NFE N - 1)."""
    from ..samplers.pndm import IPNDMSampler, ipndm_sigmas

    f.take("num_train_timesteps")
    f.only_default("trained_betas", "IPNDMScheduler's own schedule ignores it in diffusers too, so it is refused")
    denoiser = SchedulerDenoiser(IPNDMScaling(), f.class_name)
    return Translation(
        f.class_name, IPNDMSampler, denoiser, lambda: SchedulerDiscretization(ipndm_sigmas, _describe(f)), "edm"
    )


def lcm_timesteps(n: int, T: int, original_steps: int):
    """LCMScheduler's timesteps: ``n`` of the distillation schedule ``k, 2k, ..., original_steps k`` (minus one, with
    ``k = T // original_steps``), picked at ``floor(linspace(0, original_steps, n, endpoint=False))`` from the top."""
    if n > original_steps:
        raise ValueError(f"num_steps={n} exceeds the LCM's original_inference_steps={original_steps}")
    origin = (np.arange(1, original_steps + 1) * (T // original_steps) - 1)[::-1]
    return origin[np.floor(np.linspace(0, original_steps, n, endpoint=False)).astype(np.int64)]


def lcm(f: Fields, options: dict) -> Translation:
    """LCMScheduler: the consistency step (re-noise the boundary-conditioned estimate to the next timestep; the last
    step returns it), :class:`~edm_sampler.LCMSampler` in the VE state."""
    from ..samplers import LCMSampler

    _no_limit(f, "LCM limits its x0 prediction before the consistency boundary condition, inside the estimate")
    table = _training(f)
    if table.alphas_cumprod[-1] == 0.0:
        f.refuse("rescale_betas_zero_snr", "a zero-SNR top level (sigma = inf) is not supported by these samplers yet")
    original = f.take("original_inference_steps")
    for name in ("timestep_spacing", "steps_offset", "set_alpha_to_one"):
        f.take(name)  # LCMScheduler.set_timesteps/step do not use them (the last step returns the estimate)
    T = table.num_train_timesteps

    def levels(n: int):
        return np.append(table.sigmas[lcm_timesteps(n, T, original)], 0.0)

    scaling = LCMSchedulerScaling(f.choice("prediction_type", VP_PREDICTIONS), table, f.take("timestep_scaling"))
    denoiser = SchedulerDenoiser(scaling, f.class_name, (float(table.sigmas[0]), float(table.sigmas[-1])))
    describe = _describe(f)
    return Translation(f.class_name, LCMSampler, denoiser, lambda: SchedulerDiscretization(levels, describe), "vp")


def edm_euler(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerEDMSampler

    sigma_min, sigma_max = f.take("sigma_min"), f.take("sigma_max")
    kind = f.choice("sigma_schedule", ("karras", "exponential"))
    rho = f.take("rho")
    if kind == "karras":
        discretization = EDMDiscretization(sigma_min, sigma_max, rho)
    else:
        discretization = ExponentialDiscretization(sigma_min, sigma_max)
    f.choice("final_sigmas_type", ("zero",))  # "sigma_min" repeats sigma_min: a zero-length last step
    f.take("num_train_timesteps")  # unused by the EDM schedulers' numbers
    scaling = EDMSchedulerScaling(f.choice("prediction_type", EDM_PREDICTIONS), f.take("sigma_data"))
    denoiser = SchedulerDenoiser(scaling, f.class_name)
    return Translation(f.class_name, EulerEDMSampler, denoiser, lambda: discretization, "sgm")


def _flow_denoiser(f: Fields) -> SchedulerDenoiser:
    return SchedulerDenoiser(FlowVelocityScaling(multiplier=float(f.take("num_train_timesteps"))), f.class_name)


def flow_match_euler(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerEDMSampler, LCMSampler

    f.choice("invert_sigmas", (False,))
    params = {
        name: f.take(name)
        for name in (
            "num_train_timesteps",
            "shift",
            "use_dynamic_shifting",
            "base_shift",
            "max_shift",
            "base_image_seq_len",
            "max_image_seq_len",
            "shift_terminal",
            "use_karras_sigmas",
            "use_exponential_sigmas",
            "use_beta_sigmas",
            "time_shift_type",
        )
    }
    for name in ("mu", "image_seq_len", "pipeline_sigmas"):
        if name in options:
            params[name] = options.pop(name)
    sampler = LCMSampler if f.flag("stochastic_sampling") else EulerEDMSampler

    def schedule():
        if params["use_dynamic_shifting"] and "mu" not in params and "image_seq_len" not in params:
            raise ConfigError(
                f"{f.origin}: use_dynamic_shifting=true: the schedule depends on the image size, as in the diffusers "
                "pipeline; pass mu=... or image_seq_len=... (and pipeline_sigmas=True for the Flux-type pipelines) "
                "to load_sampler"
            )
        return FlowMatchDiscretization(**params)

    return Translation(f.class_name, sampler, _flow_denoiser(f), schedule, "prescaled")


def flow_match_heun(f: Fields, options: dict) -> Translation:
    from ..samplers import HeunEDMSampler

    schedule = FlowMatchDiscretization(num_train_timesteps=f.take("num_train_timesteps"), shift=f.take("shift"))
    return Translation(f.class_name, HeunEDMSampler, _flow_denoiser(f), lambda: schedule, "prescaled")


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
