"""The keyword arguments mindone's pipelines pass to a sampler call, and where each one goes.

mindone's samplers take ``**kwargs`` and hand them to the model (its SVD sampler also hands ``num_frames`` to the
guider, and its ancestral sampler reads ``init_noise_scheduler`` itself), so its pipelines call for example
``sampler(engine, noise, cond=c, uc=uc, num_frames=N)`` (SVD, ``examples/svd/image_to_video.py``), with
``image_only_indicator=`` too (SV3D, ``examples/sv3d/simple_video_sample.py``), ``adapter_states=, control=,
init_noise_scheduler=`` (SDXL, ``gm/models/diffusion.py do_sample``) and ``other_c=`` (PanGu-Draw v3). A sampler
here takes exactly these names, routed as mindone routes them; any other keyword is refused with the list, so a
typo is not silently handed to the network. A ``None`` value is the same as leaving the keyword out (mindone's
``do_sample`` passes all three of its keywords on every call, ``None`` when unused).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import numpy as np

from mindspore import Tensor

from . import checks
from .experts import ExpertSwitch
from .guiders import LinearPredictionGuider
from .noise import NoiseSampler

# name -> where it goes
CALL_KEYWORDS = {
    "num_frames": "the video guider's frame count and the model's num_frames keyword (SVD, SV3D)",
    "image_only_indicator": "the model's keyword argument (SV3D)",
    "adapter_states": "the model's keyword argument (T2I-Adapter)",
    "control": "the model's keyword argument (ControlNet)",
    "init_noise_scheduler": "the noise of each step: step i's draw is init_noise_scheduler[i] (mindone#458)",
    "other_c": "the guider's extra conditions (MultiConditionCFG, PanGu-Draw v3)",
}
MODEL_KEYWORDS = ("num_frames", "image_only_indicator", "adapter_states", "control")
CALL_OPTIONS = ("generator", "noise_sampler", "callback", "model_kwargs", "disable", "sigmas")


@dataclass(frozen=True)
class RoutedCall:
    """What a call's keywords change: the guider for this call, the model's keyword arguments, the noise source."""

    guider: Any
    model_kwargs: dict | None
    noise_sampler: NoiseSampler | None


class StepNoise:
    """``init_noise_scheduler`` as a ``noise_sampler``: the draw a sampler makes in step ``i`` (at that step's
    ``(sigma, sigma_next)``) is ``table[i]``, as in mindone's ``AncestralSampler.__call__``. One draw per step."""

    def __init__(self, table: Any, sigmas: np.ndarray, x_shape: tuple[int, ...]):
        steps = len(sigmas) - 1
        if isinstance(table, (list, tuple)):
            rows = [t.asnumpy() if isinstance(t, Tensor) else np.asarray(t) for t in table]
            bad = [i for i, row in enumerate(rows) if tuple(row.shape) != tuple(x_shape)]
            if bad:
                raise ValueError(
                    f"init_noise_scheduler[{bad[0]}] has shape {tuple(rows[bad[0]].shape)}; every step's noise must "
                    f"be shaped like x {tuple(x_shape)}"
                )
            table = np.stack(rows) if rows else np.zeros((0, *x_shape))
        elif isinstance(table, Tensor):
            table = table.asnumpy()
        elif not isinstance(table, np.ndarray):
            raise TypeError(
                f"init_noise_scheduler must be a Tensor, an array or a list of them, got {type(table).__name__}"
            )
        if table.ndim != len(x_shape) + 1 or tuple(table.shape[1:]) != tuple(x_shape) or len(table) < steps:
            raise ValueError(
                f"init_noise_scheduler must hold one noise shaped like x {tuple(x_shape)} per step ({steps} steps), "
                f"got shape {tuple(np.shape(table))}"
            )
        self.table = np.asarray(table, np.float32)
        self.steps = {(float(sigmas[i]), float(sigmas[i + 1])): i for i in range(steps)}
        self.drawn: set[int] = set()

    def __call__(self, sigma: float, sigma_next: float) -> np.ndarray:
        i = self.steps.get((sigma, sigma_next))
        if i is None:
            raise ValueError(
                f"init_noise_scheduler holds one noise per step, but the sampler draws noise between sigma={sigma:.6g} "
                f"and {sigma_next:.6g}, which is not a step of the schedule"
            )
        if i in self.drawn:
            raise ValueError(f"init_noise_scheduler holds one noise per step, but the sampler draws twice in step {i}")
        self.drawn.add(i)
        return self.table[i]


def route(
    sampler: Any,
    denoiser: Any,
    x_shape: tuple[int, ...],
    sigmas: np.ndarray,
    keywords: dict,
    model_kwargs: dict | None,
    noise_sampler: NoiseSampler | None,
) -> RoutedCall:
    """Check a call's mindone keywords and apply them (see the module docstring); refuses what ``graph_loop=True``
    cannot run, with the reason."""
    name = type(sampler).__name__
    unknown = sorted(set(keywords) - set(CALL_KEYWORDS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], [*CALL_OPTIONS, *CALL_KEYWORDS], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(
            f"{name}() got an unexpected keyword argument {unknown[0]!r}{hint}; it takes {', '.join(CALL_OPTIONS)} "
            f"and mindone's {', '.join(CALL_KEYWORDS)} (pass other model inputs as model_kwargs={{...}})"
        )
    given = {k: v for k, v in keywords.items() if v is not None}
    guider = sampler.guider
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise TypeError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
    to_model = {k: given[k] for k in MODEL_KEYWORDS if k in given}
    clash = sorted(set(to_model) & set(model_kwargs or {}))
    if clash:
        raise ValueError(f"{clash[0]} was passed twice: as a call keyword and in model_kwargs; pass it once")
    if "num_frames" in given:
        to_model["num_frames"] = frames = checks.integer("num_frames", given["num_frames"], minimum=1)
        guider = _with_frames(guider, frames, model_kwargs)
    if "other_c" in given:
        for_conditions = getattr(guider, "for_conditions", None)
        if for_conditions is None:
            raise TypeError(
                f"other_c (extra conditions) needs a guider that takes them (MultiConditionCFG, PanGuVanillaCFG); "
                f"{name}'s guider is {guider!r}"
            )
        guider = for_conditions(given["other_c"])
    if "init_noise_scheduler" in given:
        noise_sampler = _step_noise(sampler, given["init_noise_scheduler"], noise_sampler, sigmas, x_shape)
    if getattr(sampler, "graph_loop", False):
        _refuse_in_graph_loop(denoiser, to_model)
    merged = {**(model_kwargs or {}), **to_model} if to_model else model_kwargs
    return RoutedCall(guider, merged, noise_sampler)


def _with_frames(guider: Any, frames: int, model_kwargs: dict | None) -> Any:
    """The video guider set to ``frames`` frames (mindone's SVD guider takes them from the call); other guiders are
    left as they are (``num_frames`` then only reaches the model)."""
    video_frames = (model_kwargs or {}).get("num_video_frames")
    if video_frames is not None and video_frames != frames:
        raise ValueError(f"num_frames={frames} and model_kwargs['num_video_frames']={video_frames} disagree")
    video = guider
    while not isinstance(video, LinearPredictionGuider) and hasattr(video, "inner"):  # a wrapper: its inner guider
        video = video.inner
    if not isinstance(video, LinearPredictionGuider):
        return guider
    if video.num_frames is None:
        return guider.for_call({"num_video_frames": frames})  # a wrapper passes it on to its inner guider
    if video.num_frames != frames:
        raise ValueError(f"num_frames={frames}, but the guider is configured for num_frames={video.num_frames}")
    return guider


def _step_noise(sampler, table, noise_sampler, sigmas, x_shape) -> StepNoise:
    from .samplers.base import BaseDiffusionSampler  # the samplers import this module

    if noise_sampler is not None:
        raise ValueError("pass either noise_sampler or init_noise_scheduler, not both (both set the sampler's noise)")
    if type(sampler).make_noise is not BaseDiffusionSampler.make_noise:
        raise ValueError(
            f"init_noise_scheduler holds one Gaussian noise per step; {type(sampler).__name__} makes its own noise "
            "(Brownian increments), which a per-step table cannot give"
        )
    return StepNoise(table, sigmas, x_shape)


def _refuse_in_graph_loop(denoiser: Any, to_model: dict) -> None:
    problems = []
    if to_model:
        problems.append(
            f"{', '.join(to_model)} reach the model as keyword arguments, which the compiled loop does not pass"
        )
    if isinstance(denoiser, ExpertSwitch):
        problems.append(
            "an ExpertSwitch holds two networks and the compiled loop one (graph mode runs it step by step, each "
            "expert compiled once)"
        )
    if problems:
        raise ValueError("graph_loop=True: " + "; ".join(problems) + "; sample with graph_loop=False")
