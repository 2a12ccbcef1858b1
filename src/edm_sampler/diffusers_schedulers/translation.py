"""What a scheduler config becomes (:class:`Translation`), and the field readings the class translations share: the
training table, the sigma respacing, clip_sample / thresholding, the VP denoiser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..checks import ConfigError
from ..denoisers import Denoiser
from ..guiders.x0_limits import ClipX0, DynamicThresholdX0, limit_denoised
from .fields import Fields
from .model import (
    VP_PREDICTIONS,
    SchedulerDenoiser,
    SchedulerScaling,
)
from .training import TrainingSchedule


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


def training_table(f: Fields, terminal_alpha: float | None = None) -> TrainingSchedule:
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


def respacing_of(f: Fields) -> str | None:
    chosen = [kind for kind in ("karras", "exponential", "beta") if f.flag(f"use_{kind}_sigmas")]
    if len(chosen) > 1:
        raise ConfigError(
            f"{f.origin}: {f.class_name}: only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas may "
            f"be true (as diffusers requires); got {', '.join(f'use_{k}_sigmas' for k in chosen)}"
        )
    return chosen[0] if chosen else None


LIMIT_FIELDS = ("clip_sample", "clip_sample_range", "thresholding", "dynamic_thresholding_ratio", "sample_max_value")


def x0_limit(f: Fields):
    """diffusers' ``thresholding`` (which wins) or ``clip_sample`` as a limit on the guided x0 estimate, or None."""
    values = {name: f.take(name) for name in LIMIT_FIELDS if name in f.defaults}
    if values.get("thresholding"):
        return DynamicThresholdX0(values["dynamic_thresholding_ratio"], values["sample_max_value"])
    if values.get("clip_sample"):
        return ClipX0(values["clip_sample_range"])
    return None


def refuse_limits(f: Fields, why: str) -> None:
    """Refuse clip_sample / thresholding where diffusers applies them other than to the guided x0 estimate."""
    for name in ("clip_sample", "thresholding"):
        if f.config.get(name, f.defaults.get(name)):
            f.refuse(name, f"{why}; not implemented, set it to false")
    for name in LIMIT_FIELDS:
        if name in f.defaults:
            f.take(name)


def vp_denoiser(f: Fields, table: TrainingSchedule, rule: str) -> SchedulerDenoiser:
    prediction = f.choice("prediction_type", VP_PREDICTIONS)
    # a continuous-timestep network is not tied to the table's levels
    sigma_range = None if rule == "continuous" else (float(table.sigmas[0]), float(table.sigmas[-1]))
    return SchedulerDenoiser(SchedulerScaling(prediction, table, rule), f.class_name, sigma_range)


def describe(f: Fields) -> str:
    changed = {k: v for k, v in f.config.items() if k in f.defaults and v != f.defaults[k] and k != "trained_betas"}
    return f.class_name + "".join(f", {k}={v!r}" for k, v in changed.items())


def optional_field(f: Fields, name: str, default=None):
    return f.take(name) if name in f.defaults else default
