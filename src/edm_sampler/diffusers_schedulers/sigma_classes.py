"""The sigma schedulers (Euler, Euler ancestral, Heun, KDPM2 and its ancestral form, LMS), the EDM Euler scheduler and
the FlowMatch schedulers: k-diffusion-style samplers on the scheduler's sigmas, in the VE or the flow state."""

from __future__ import annotations

from ..checks import ConfigError
from ..discretization import EDMDiscretization
from ..flow_schedules import FlowMatchDiscretization
from ..scalings import FlowVelocityScaling
from ..schedules import ExponentialDiscretization
from .fields import Fields
from .model import (
    EDM_PREDICTIONS,
    EDMSchedulerScaling,
    SchedulerDenoiser,
)
from .schedule import (
    FINAL_SIGMAS,
    TIMESTEP_SPACINGS,
    SchedulerDiscretization,
    sigma_family_levels,
)
from .translation import (
    Translation,
    describe,
    respacing_of,
    training_table,
    vp_denoiser,
    x0_limit,
)


def sigma_family(
    f: Fields,
    sampler: type,
    params: dict,
    *,
    respacing_allowed: bool = True,
    terminal_alpha: float | None = None,
    rule: str | None = None,
) -> Translation:
    """Euler, Euler ancestral, Heun, KDPM2 (ancestral), LMS. ``rule`` overrides the timestep rule."""
    table = training_table(f, terminal_alpha=terminal_alpha)
    if table.alphas_cumprod[-1] == 0.0:
        f.refuse("rescale_betas_zero_snr", f"{f.class_name} has no finite sigma at the last timestep with it")
    spacing = f.choice("timestep_spacing", TIMESTEP_SPACINGS)
    offset = f.take("steps_offset")
    respacing = respacing_of(f) if respacing_allowed else None
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
    denoiser = vp_denoiser(f, table, rule)
    levels = sigma_family_levels(table, spacing, offset, respacing, sigma_min, sigma_max, final)
    init_noise = "edm" if spacing in ("linspace", "trailing") else "sgm"  # diffusers' init_noise_sigma
    label = describe(f)
    return Translation(
        f.class_name, sampler, denoiser, lambda: SchedulerDiscretization(levels, label), init_noise, params
    )


def euler(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerEDMSampler

    return sigma_family(f, EulerEDMSampler, {}, terminal_alpha=2.0**-24)


def euler_ancestral(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerAncestralSampler

    return sigma_family(f, EulerAncestralSampler, {"eta": 1.0}, respacing_allowed=False, terminal_alpha=2.0**-24)


def heun(f: Fields, options: dict) -> Translation:
    from ..samplers import HeunEDMSampler

    limit = x0_limit(f)
    translation = sigma_family(f, HeunEDMSampler, {})
    translation.x0_limit = limit
    return translation


# KDPM2 (ancestral) evaluate their midpoints at the log-sigma timestep (diffusers' _sigma_to_t), and that rule is used
# for every call: exact at integer timesteps (leading/trailing spacing), within 0.003 of a timestep of diffusers'
# fractional linspace timesteps, and unrounded where diffusers rounds the Karras main timesteps (its midpoints are not)
def kdpm2(f: Fields, options: dict) -> Translation:
    from ..samplers import DPM2Sampler

    return sigma_family(f, DPM2Sampler, {}, rule="log")


def kdpm2_ancestral(f: Fields, options: dict) -> Translation:
    from ..samplers import DPM2AncestralSampler

    return sigma_family(f, DPM2AncestralSampler, {"eta": 1.0}, rule="log")


def lms(f: Fields, options: dict) -> Translation:
    from ..samplers import LinearMultistepSampler

    return sigma_family(f, LinearMultistepSampler, {"order": 4})


def edm_euler(f: Fields, options: dict) -> Translation:
    from ..samplers import EulerEDMSampler

    sigma_min, sigma_max = f.take("sigma_min"), f.take("sigma_max")
    kind = f.choice("sigma_schedule", ("karras", "exponential"))
    rho = f.take("rho")
    discretization: EDMDiscretization | ExponentialDiscretization
    if kind == "karras":
        discretization = EDMDiscretization(sigma_min, sigma_max, rho)
    else:
        discretization = ExponentialDiscretization(sigma_min, sigma_max)
    f.choice("final_sigmas_type", ("zero",))  # "sigma_min" repeats sigma_min: a zero-length last step
    f.take("num_train_timesteps")  # unused by the EDM schedulers' numbers
    scaling = EDMSchedulerScaling(f.choice("prediction_type", EDM_PREDICTIONS), f.take("sigma_data"))
    denoiser = SchedulerDenoiser(scaling, f.class_name)
    return Translation(f.class_name, EulerEDMSampler, denoiser, lambda: discretization, "sgm")


def flow_denoiser(f: Fields) -> SchedulerDenoiser:
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

    return Translation(f.class_name, sampler, flow_denoiser(f), schedule, "prescaled")


def flow_match_heun(f: Fields, options: dict) -> Translation:
    from ..samplers import HeunEDMSampler

    schedule = FlowMatchDiscretization(num_train_timesteps=f.take("num_train_timesteps"), shift=f.take("shift"))
    return Translation(f.class_name, HeunEDMSampler, flow_denoiser(f), lambda: schedule, "prescaled")
