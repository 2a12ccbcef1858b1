"""Per-frame classifier-free guidance for video models (Stable Video Diffusion, SV3D, SV4D; sgm's guiders).

The sample batch holds ``b * num_frames`` frames, video after video. Frame ``t`` of every video is guided with
``scale[t]``, a profile over the frames computed once on the host: a ramp (SVD), a triangle wave (SV3D), a
trapezoid, or a ramp over time plus a triangle over views (SV4D). Everything else is :class:`VanillaCFG`.

``num_frames`` comes from the config, or, when the config leaves it out (``None``), from the call: the
``num_video_frames`` model keyword argument SVD's network takes anyway.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

from .. import checks
from .base import BATCHED_KEYS
from .cfg import VanillaCFG


def triangle_wave(values: np.ndarray, period: float = 1.0) -> np.ndarray:
    """0 at multiples of ``period``, 1 half-way between them, linear in between."""
    return 2.0 * np.abs(values / period - np.floor(values / period + 0.5))


class LinearPredictionGuider(VanillaCFG):
    """CFG whose scale rises linearly from ``min_scale`` on the first frame to ``max_scale`` on the last (SVD).

    ``additional_cond_keys`` are stacked ``[uc; c]`` like ``vector``, ``crossattn`` and ``concat``.
    """

    # one scale per frame (None until num_frames is known) where VanillaCFG has one number
    scale: np.ndarray | None  # type: ignore[assignment]

    def __init__(
        self,
        max_scale: float,
        num_frames: int | None = None,
        min_scale: float = 1.0,
        additional_cond_keys: str | Sequence[str] | None = None,
    ):
        self.max_scale = checks.real("max_scale", max_scale)
        self.min_scale = checks.real("min_scale", min_scale)
        self.num_frames = None if num_frames is None else checks.integer("num_frames", num_frames, minimum=1)
        if additional_cond_keys is None:
            additional_cond_keys = ()
        elif isinstance(additional_cond_keys, str):
            additional_cond_keys = (additional_cond_keys,)
        if not all(isinstance(k, str) for k in additional_cond_keys):
            raise TypeError(f"additional_cond_keys must be strings, got {additional_cond_keys!r}")
        self.batched_keys = BATCHED_KEYS + tuple(k for k in additional_cond_keys if k not in BATCHED_KEYS)
        self.scale = None if self.num_frames is None else self.frame_scales()

    def for_call(self, model_kwargs: dict) -> LinearPredictionGuider:
        """With ``num_frames=None``, a copy for ``model_kwargs["num_video_frames"]`` frames."""
        if self.num_frames is not None:
            return self
        if "num_video_frames" not in model_kwargs:
            raise ValueError(
                f"{type(self).__name__}: num_frames is needed; set it in the guider config or pass "
                "model_kwargs={'num_video_frames': T}"
            )
        configured = copy.copy(self)
        configured.num_frames = checks.integer("num_video_frames", int(model_kwargs["num_video_frames"]), minimum=1)
        configured.scale = configured.frame_scales()
        return configured

    def frame_scales(self) -> np.ndarray:
        """The scale of each frame, ``(num_frames,)`` float64."""
        assert self.num_frames is not None  # called once num_frames is known (constructor or for_call)
        return np.linspace(self.min_scale, self.max_scale, self.num_frames)

    def check_inputs(self, cond, uc, batch_size: int) -> None:
        if self.num_frames is None:
            raise ValueError(f"{type(self).__name__}: num_frames is not set (see for_call)")
        if batch_size % self.num_frames:
            raise ValueError(
                f"{type(self).__name__}: the batch ({batch_size}) must hold whole videos of num_frames="
                f"{self.num_frames} frames"
            )
        super().check_inputs(cond, uc, batch_size)

    def scale_at(self, sigma: float, x_shape: tuple[int, ...]) -> np.ndarray:
        # set together (constructor or for_call); check_inputs refused the call otherwise
        assert self.num_frames is not None and self.scale is not None
        videos = x_shape[0] // self.num_frames
        return np.tile(self.scale, videos).reshape((-1,) + (1,) * (len(x_shape) - 1))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_scale={self.max_scale}, num_frames={self.num_frames}, "
            f"min_scale={self.min_scale})"
        )


class TrianglePredictionGuider(LinearPredictionGuider):
    """Scale along a triangle wave over the frames (SV3D's orbit): ``min_scale`` at the ends of each period,
    ``max_scale`` in the middle. Several periods are fused by ``"max"`` or ``"mean"``."""

    def __init__(
        self,
        max_scale: float,
        num_frames: int | None = None,
        min_scale: float = 1.0,
        period: float | Sequence[float] = 1.0,
        period_fusing: str = "max",
        additional_cond_keys: str | Sequence[str] | None = None,
    ):
        periods = [period] if not isinstance(period, (list, tuple)) else list(period)
        self.period = [checks.real("period", p, positive=True) for p in periods]
        self.period_fusing = checks.choice("period_fusing", period_fusing, ("max", "mean"))
        super().__init__(max_scale, num_frames, min_scale, additional_cond_keys)

    def frame_scales(self) -> np.ndarray:
        assert self.num_frames is not None  # as in LinearPredictionGuider.frame_scales
        values = np.linspace(0.0, 1.0, self.num_frames)
        waves = np.stack([triangle_wave(values, p) for p in self.period])
        wave = waves.max(axis=0) if self.period_fusing == "max" else waves.mean(axis=0)
        return self.min_scale + wave * (self.max_scale - self.min_scale)


class TrapezoidPredictionGuider(LinearPredictionGuider):
    """Scale rising over the first ``edge_perc`` of the frames, flat, and falling over the last ones.

    The plateau is at ``max_scale``. sgm's version puts it at 1.0 (``torch.ones``), which makes the middle frames
    unguided whatever ``max_scale`` is; that looks like a bug, and this class does not reproduce it.
    """

    def __init__(
        self,
        max_scale: float,
        num_frames: int | None = None,
        min_scale: float = 1.0,
        edge_perc: float = 0.1,
        additional_cond_keys: str | Sequence[str] | None = None,
    ):
        self.edge_perc = checks.real("edge_perc", edge_perc, nonnegative=True)
        if self.edge_perc > 0.5:
            raise ValueError(f"edge_perc must be <= 0.5 (a rise and a fall), got {edge_perc!r}")
        super().__init__(max_scale, num_frames, min_scale, additional_cond_keys)

    def frame_scales(self) -> np.ndarray:
        assert self.num_frames is not None  # as in LinearPredictionGuider.frame_scales
        rise = np.linspace(self.min_scale, self.max_scale, int(self.num_frames * self.edge_perc))
        plateau = np.full(self.num_frames - 2 * len(rise), self.max_scale)
        return np.concatenate([rise, plateau, rise[::-1]])


class SpatiotemporalPredictionGuider(LinearPredictionGuider):
    """SV4D: frames are ``num_frames // num_views`` time steps of ``num_views`` views; half the scale ramps over
    time, half follows a triangle wave over the views. Arguments in sgm's order (``num_views`` third)."""

    def __init__(
        self,
        max_scale: float,
        num_frames: int | None = None,
        num_views: int = 1,
        min_scale: float = 1.0,
        additional_cond_keys: str | Sequence[str] | None = None,
    ):
        self.num_views = checks.integer("num_views", num_views, minimum=1)
        if num_frames is not None and num_frames % self.num_views:
            raise ValueError(f"num_frames ({num_frames}) must be a multiple of num_views ({num_views})")
        super().__init__(max_scale, num_frames, min_scale, additional_cond_keys)

    def frame_scales(self) -> np.ndarray:
        assert self.num_frames is not None  # as in LinearPredictionGuider.frame_scales
        if self.num_frames % self.num_views:
            raise ValueError(f"num_frames ({self.num_frames}) must be a multiple of num_views ({self.num_views})")
        times = self.num_frames // self.num_views
        grid = np.linspace(0.0, 1.0, times)[:, None] * 0.5 + triangle_wave(np.linspace(0.0, 1.0, self.num_views)) * 0.5
        return self.min_scale + grid.reshape(-1) * (self.max_scale - self.min_scale)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_scale={self.max_scale}, num_frames={self.num_frames}, "
            f"num_views={self.num_views}, min_scale={self.min_scale})"
        )
