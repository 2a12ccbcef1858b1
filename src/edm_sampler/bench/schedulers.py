"""Section ``schedulers``: each diffusers scheduler class, run by mindone.diffusers' own scheduler loop (MindSpore,
PyNative: the framework edm_sampler runs on) and by edm_sampler's sampler loaded from the same config.

Both loops drive the same one-op network (``0.5 * x_in``) on the same latent shape for the same number of steps, so
the per-step times are the samplers' own cost. The baseline is the optional ``mindone`` package (mindone 0.5.0 on
PyPI: ``pip install mindone==0.5.0``, which keeps mindspore 2.10 and pins numpy 1.26); without it the section says so
and times edm_sampler alone. A class mindone.diffusers cannot run on this machine is reported with its error.
"""

from __future__ import annotations

import importlib
import json
from importlib import resources

import mindspore as ms
from mindspore import Tensor

from ..config import load_denoiser, load_sampler
from ..noise import randn
from .timing import Variant, errors, round_robin

SD = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}


def _shipped(name: str) -> dict:
    return json.loads((resources.files("edm_sampler") / "configs" / "diffusers" / f"{name}.json").read_text())


# one config per class: the shipped model config where there is one, else the class on SD's betas
CONFIGS = {
    "EulerDiscreteScheduler": lambda: _shipped("sdxl_base"),
    "EulerAncestralDiscreteScheduler": lambda: {"_class_name": "EulerAncestralDiscreteScheduler", **SD},
    "HeunDiscreteScheduler": lambda: {"_class_name": "HeunDiscreteScheduler", **SD},
    "KDPM2DiscreteScheduler": lambda: {"_class_name": "KDPM2DiscreteScheduler", **SD},
    "KDPM2AncestralDiscreteScheduler": lambda: {"_class_name": "KDPM2AncestralDiscreteScheduler", **SD},
    "LMSDiscreteScheduler": lambda: {"_class_name": "LMSDiscreteScheduler", **SD},
    "DDIMScheduler": lambda: _shipped("sd21"),
    "DDPMScheduler": lambda: {"_class_name": "DDPMScheduler", **SD, "clip_sample": False},
    "PNDMScheduler": lambda: _shipped("sd15"),
    "DPMSolverMultistepScheduler": lambda: {"_class_name": "DPMSolverMultistepScheduler", **SD},
    "DPMSolverSinglestepScheduler": lambda: {"_class_name": "DPMSolverSinglestepScheduler", **SD},
    "UniPCMultistepScheduler": lambda: {"_class_name": "UniPCMultistepScheduler", **SD},
    "DEISMultistepScheduler": lambda: {"_class_name": "DEISMultistepScheduler", **SD},
    "SASolverScheduler": lambda: {"_class_name": "SASolverScheduler", **SD},
    "LCMScheduler": lambda: {"_class_name": "LCMScheduler"},
    "TCDScheduler": lambda: {"_class_name": "TCDScheduler"},
    "EDMEulerScheduler": lambda: {"_class_name": "EDMEulerScheduler"},
    "EDMDPMSolverMultistepScheduler": lambda: {"_class_name": "EDMDPMSolverMultistepScheduler"},
    "IPNDMScheduler": lambda: {"_class_name": "IPNDMScheduler"},
    "FlowMatchEulerDiscreteScheduler": lambda: _shipped("sd3_medium"),
    "FlowMatchHeunDiscreteScheduler": lambda: {"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": 3.0},
}
QUICK_CLASSES = ("EulerDiscreteScheduler", "DPMSolverMultistepScheduler", "FlowMatchEulerDiscreteScheduler")
SHAPE = (1, 4, 128, 128)


def one_op(x_in, timestep, cond=None):
    return x_in * 0.5


def load_mindone():
    """``(mindone.diffusers, version)`` or ``(None, reason)``."""
    try:
        module = importlib.import_module("mindone.diffusers")
    except Exception as err:  # ImportError, or a broken install
        return None, f"mindone.diffusers not importable ({type(err).__name__}: {err}); pip install mindone==0.5.0"
    return module, getattr(importlib.import_module("mindone"), "__version__", "?")


def mindone_loop(scheduler, x: Tensor, steps: int) -> Tensor:
    """The pipelines' loop: ``set_timesteps``, ``init_noise_sigma``, then ``scale_model_input``, the network and
    ``step`` for every timestep."""
    scheduler.set_timesteps(steps)
    latents = x * float(getattr(scheduler, "init_noise_sigma", 1.0))
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(latents, t) if hasattr(scheduler, "scale_model_input") else latents
        latents = scheduler.step(one_op(x_in, t), t, latents, return_dict=False)[0]
    return latents


def run(args, tb=None) -> dict:
    steps = args.steps
    shape = SHAPE if not args.quick else (1, 4, 16, 16)
    classes = QUICK_CLASSES if args.quick else tuple(CONFIGS)
    mindone, version = load_mindone()
    x = randn(shape, generator=1234)
    variants, errors_out = [], {}
    for name in classes:
        config = CONFIGS[name]()
        options = {"num_steps": steps}
        sampler = load_sampler(config, **options)
        denoiser = load_denoiser(config).bind(one_op, dtype=ms.float32)
        variants.append(
            Variant(f"{name}/edm_sampler", lambda s=sampler, d=denoiser: s(d, x, generator=0, disable=True))
        )
        if mindone is not None:
            try:
                scheduler = getattr(mindone, name).from_config(config)
            except Exception as err:
                errors_out[f"{name}/mindone"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
                continue
            variants.append(Variant(f"{name}/mindone", lambda s=scheduler: mindone_loop(s, x, steps)))
    timings = round_robin(variants, args.repeats)
    errors_out.update(errors(timings))
    rows = []
    for name in classes:
        ours = timings.get(f"{name}/edm_sampler")
        theirs = timings.get(f"{name}/mindone")
        ours_ms = None if ours is None or ours.median_s is None else 1e3 * ours.median_s / steps
        theirs_ms = None if theirs is None or theirs.median_s is None else 1e3 * theirs.median_s / steps
        rows.append(
            {
                "class": name,
                "edm_sampler_ms_per_step": ours_ms,
                "mindone_ms_per_step": theirs_ms,
                "ratio": None if not (ours_ms and theirs_ms) else theirs_ms / ours_ms,
            }
        )
    return {
        "shape": list(shape),
        "steps": steps,
        "baseline": f"mindone {version}" if mindone is not None else version,
        "rows": rows,
        "errors": errors_out,
    }
