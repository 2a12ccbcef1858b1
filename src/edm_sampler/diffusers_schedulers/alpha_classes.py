"""The DDPM-family schedulers that step between the training table's own timesteps (DDIM, DDPM, PNDM, LCM, TCD) and
IPNDM's own sin/cos schedule: VP latents in and out."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..checks import ConfigError
from .fields import Fields
from .model import (
    VP_PREDICTIONS,
    IPNDMScaling,
    LCMSchedulerScaling,
    SchedulerDenoiser,
)
from .schedule import (
    TIMESTEP_SPACINGS,
    SchedulerDiscretization,
    alpha_family_levels,
    alpha_family_timesteps,
)
from .training import ZERO_SNR_ALPHA, TrainingSchedule
from .translation import (
    LIMIT_FIELDS,
    Translation,
    describe,
    refuse_limits,
    training_table,
    vp_denoiser,
    x0_limit,
)


def zero_snr_guard(f: Fields, table: TrainingSchedule, levels):
    """With ``rescale_betas_zero_snr`` the table's top level is the zero-SNR one (held at
    :data:`~edm_sampler.diffusers_schedulers.training.ZERO_SNR_ALPHA`). A noise prediction gives no data estimate
    there (diffusers divides by alpha = 0 and returns NaN), so an epsilon model's schedule may not start on it."""
    prediction = f.config.get("prediction_type", f.defaults.get("prediction_type"))
    if table.alphas_cumprod[-1] != ZERO_SNR_ALPHA or prediction != "epsilon":
        return levels
    top = float(table.sigmas[-1])

    def checked(n: int) -> np.ndarray:
        out = levels(n)
        if out[0] >= top:
            raise ValueError(
                f"{f.origin}: {f.class_name}: with rescale_betas_zero_snr=true, {n} steps start at the zero-SNR "
                f"timestep {table.num_train_timesteps - 1}, where prediction_type='epsilon' gives no data estimate "
                "(diffusers divides by alpha = 0 there); use prediction_type 'v_prediction' or 'sample' (what "
                "zero-SNR training needs), or a timestep_spacing that starts below the top"
            )
        return out

    return checked


def alpha_family(f: Fields, sampler: type, params: dict, final_alpha_is_one: bool) -> Translation:
    """DDIM and DDPM: integer timesteps on the table, the VP latent in and out (``init_noise="vp"``)."""
    table = training_table(f, terminal_alpha=ZERO_SNR_ALPHA)
    spacing = f.choice("timestep_spacing", TIMESTEP_SPACINGS)
    offset = f.take("steps_offset")
    T = table.num_train_timesteps

    def timesteps(n: int):
        return alpha_family_timesteps(spacing, n, T, offset)

    denoiser = vp_denoiser(f, table, "linear")
    levels = zero_snr_guard(f, table, alpha_family_levels(table, timesteps, final_alpha_is_one))
    label = describe(f)
    return Translation(f.class_name, sampler, denoiser, lambda: SchedulerDiscretization(levels, label), "vp", params)


def ddim(f: Fields, options: dict) -> Translation:
    """DDIMScheduler: :class:`~edm_sampler.samplers.ddim.DDIMSampler`; clip_sample / thresholding limit its x0 term
    (the noise direction keeps the unlimited estimate, as diffusers' step does)."""
    from ..samplers.ddim import DDIMSampler

    limit = x0_limit(f)
    return alpha_family(f, DDIMSampler, {"eta": 0.0, "x0_limit": limit}, f.flag("set_alpha_to_one"))


def ddpm(f: Fields, options: dict) -> Translation:
    """DDPMScheduler: :class:`~edm_sampler.samplers.ddpm.DDPMSampler` (the ``_log`` variance types give the same
    numbers; ``learned`` / ``learned_range`` need the network's variance channels and are refused)."""
    from ..samplers import DDPMSampler

    limit = x0_limit(f)
    variance = f.choice("variance_type", ("fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log"))
    translation = alpha_family(f, DDPMSampler, {"variance_type": variance.removesuffix("_log")}, True)
    assert isinstance(translation.params, dict)  # alpha_family's own parameters
    # diffusers adds no noise on the step from t = 0, the table's first level
    translation.params["noiseless_from"] = float(translation.denoiser.scaling.table.sigmas[0])
    translation.x0_limit = limit
    return translation


def pndm(f: Fields, options: dict) -> Translation:
    """PNDMScheduler: PLMS (``skip_prk_steps``, as SD 1.x ships it) or PNDM with its Runge-Kutta warm-up, whose
    midpoints sit at diffusers' timesteps ``t - (T // N) // 2`` (so the step count is fixed when the sampler is
    built). diffusers steps to ``t - T // N``: the next timestep with leading spacing; other spacings step to the next
    timestep (the method as published)."""
    from ..samplers.pndm import PLMSSampler, PNDMSampler

    table = training_table(f)
    spacing, offset = f.choice("timestep_spacing", TIMESTEP_SPACINGS), f.take("steps_offset")
    T = table.num_train_timesteps

    def timesteps(n: int):
        return alpha_family_timesteps(spacing, n, T, offset)

    denoiser = vp_denoiser(f, table, "linear")
    levels, label = alpha_family_levels(table, timesteps, f.flag("set_alpha_to_one")), describe(f)
    params: dict | Callable[[dict], dict]
    if f.flag("skip_prk_steps"):
        sampler, params = PLMSSampler, {}
    else:

        def midpoints(options: dict) -> dict:
            n = options.get("num_steps")
            if n is None:
                raise ConfigError(
                    f"{f.origin}: PNDMScheduler with skip_prk_steps=false places its Runge-Kutta midpoints by the "
                    "step count: pass num_steps=... to load_sampler"
                )
            warmup = timesteps(n)[: min(3, n)]
            return {"midpoint_sigmas": tuple(float(table.sigmas[t - (T // n) // 2]) for t in warmup)}

        sampler, params = PNDMSampler, midpoints
    return Translation(f.class_name, sampler, denoiser, lambda: SchedulerDiscretization(levels, label), "vp", params)


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

    refuse_limits(f, "LCM limits its x0 prediction before the consistency boundary condition, inside the estimate")
    table = training_table(f, terminal_alpha=ZERO_SNR_ALPHA)
    original = f.take("original_inference_steps")
    for name in ("timestep_spacing", "steps_offset", "set_alpha_to_one"):
        f.take(name)  # LCMScheduler.set_timesteps/step do not use them (the last step returns the estimate)
    T = table.num_train_timesteps

    def levels(n: int):
        return np.append(table.sigmas[lcm_timesteps(n, T, original)], 0.0)

    levels = zero_snr_guard(f, table, levels)

    scaling = LCMSchedulerScaling(f.choice("prediction_type", VP_PREDICTIONS), table, f.take("timestep_scaling"))
    denoiser = SchedulerDenoiser(scaling, f.class_name, (float(table.sigmas[0]), float(table.sigmas[-1])))
    label = describe(f)
    return Translation(f.class_name, LCMSampler, denoiser, lambda: SchedulerDiscretization(levels, label), "vp")


def tcd(f: Fields, options: dict) -> Translation:
    """TCDScheduler: :class:`~edm_sampler.samplers.tcd.TCDSampler` on the LCM timesteps, ending at the table's first
    level (diffusers' last step targets timestep 0). ``gamma`` (the pipelines' ``eta``, 0.3 by default) is a
    sampler option."""
    from ..samplers import TCDSampler

    for name in LIMIT_FIELDS:
        f.take(name)  # TCDScheduler.step does not read them
    table = training_table(f, terminal_alpha=ZERO_SNR_ALPHA)
    original = f.take("original_inference_steps")
    for name in ("timestep_spacing", "steps_offset", "set_alpha_to_one", "timestep_scaling"):
        f.take(name)  # TCDScheduler.set_timesteps/step do not use them
    T = table.num_train_timesteps

    def levels(n: int):
        return np.append(table.sigmas[lcm_timesteps(n, T, original)], table.sigmas[0])

    levels = zero_snr_guard(f, table, levels)

    denoiser = vp_denoiser(f, table, "linear")
    params = {"gamma": 0.3, "timestep_sigmas": tuple(float(v) for v in table.sigmas)}
    label = describe(f)
    return Translation(f.class_name, TCDSampler, denoiser, lambda: SchedulerDiscretization(levels, label), "vp", params)


def ipndm(f: Fields, options: dict) -> Translation:
    """IPNDMScheduler: :class:`~edm_sampler.samplers.pndm.IPNDMSampler` on its own sin/cos schedule (no training
    table: ``num_train_timesteps`` and ``trained_betas`` do not enter its numbers). diffusers' first call, from pure
    noise, is multiplied by 0 and left out here (NFE N - 1)."""
    from ..samplers.pndm import IPNDMSampler, ipndm_sigmas

    f.take("num_train_timesteps")
    f.only_default("trained_betas", "IPNDMScheduler's own schedule ignores it in diffusers too, so it is refused")
    denoiser = SchedulerDenoiser(IPNDMScaling(), f.class_name)
    return Translation(
        f.class_name, IPNDMSampler, denoiser, lambda: SchedulerDiscretization(ipndm_sigmas, describe(f)), "edm"
    )
