"""Limits on the guided data estimate: diffusers' ``clip_sample`` and ``thresholding`` (Imagen's dynamic
thresholding), applied where diffusers applies them: to the x0 prediction after classifier-free guidance.

:func:`limit_denoised` returns a copy of a guider whose ``combine`` is followed by the limit. The limits are
``nn.Cell``s of pure tensor math, so the same code runs eagerly, in graph mode and in the compiled whole loop.
"""

from __future__ import annotations

import copy
from typing import Any

from mindspore import nn, ops

from .. import checks
from .base import Guider


class ClipX0(nn.Cell):
    """``clamp(D, -limit, limit)``: diffusers' ``clip_sample`` with ``clip_sample_range = limit``."""

    def __init__(self, limit: float = 1.0):
        super().__init__()
        self.limit = checks.real("clip_sample_range", limit, positive=True)

    def construct(self, denoised):
        return ops.clamp(denoised, -self.limit, self.limit)

    def __repr__(self) -> str:
        return f"ClipX0(limit={self.limit})"


class DynamicThresholdX0(nn.Cell):
    """Dynamic thresholding (Saharia et al. 2022, Imagen; diffusers' ``thresholding=True``): per sample, ``s`` is the
    ``ratio`` quantile of ``|D|`` over all its elements (linear interpolation, as ``torch.quantile``), clamped to
    ``[1, max_value]``, and ``D <- clamp(D, -s, s) / s``."""

    def __init__(self, ratio: float = 0.995, max_value: float = 1.0):
        super().__init__()
        self.ratio = checks.real("dynamic_thresholding_ratio", ratio, nonnegative=True)
        if self.ratio > 1.0:
            raise ValueError(f"dynamic_thresholding_ratio must be in [0, 1], got {ratio!r}")
        self.max_value = checks.real("sample_max_value", max_value, positive=True)
        if self.max_value < 1.0:
            raise ValueError(f"sample_max_value must be >= 1 (the threshold is clamped to [1, it]), got {max_value!r}")

    def construct(self, denoised):
        batch = denoised.shape[0]
        flat = ops.abs(denoised.reshape(batch, -1))
        n = flat.shape[1]
        position = self.ratio * (n - 1)  # shapes are constants: the quantile's two order statistics and weight
        low = int(position)
        high = min(low + 1, n - 1)
        weight = position - low
        ordered = ops.sort(flat, axis=1)[0]
        s = ordered[:, low] * (1 - weight) + ordered[:, high] * weight
        s = ops.clamp(s, 1.0, self.max_value).reshape((batch,) + (1,) * (denoised.ndim - 1))
        return ops.clamp(denoised, -s, s) / s

    def __repr__(self) -> str:
        return f"DynamicThresholdX0(ratio={self.ratio}, max_value={self.max_value})"


class LimitedCombine(nn.Cell):
    """A guider's ``combine`` followed by a limit on its result (a cell, so graph mode compiles both)."""

    def __init__(self, combine, limit: nn.Cell):
        super().__init__()
        self.combine = combine
        self.limit = limit

    def construct(self, denoised, scale):
        return self.limit(self.combine(denoised, scale))


def limit_denoised(guider: Guider, limit: nn.Cell) -> Guider:
    """A copy of ``guider`` whose guided estimate passes through ``limit`` (the guider itself is left as it is)."""
    if not isinstance(guider, Guider):
        raise TypeError(
            f"clip_sample / thresholding need an edm_sampler Guider (they follow its combine step), got "
            f"{type(guider).__name__}"
        )
    if guider.needs_input or len(guider.variants()) > 1:  # its combine reads x, or its variants combine instead
        raise ValueError(
            f"clip_sample / thresholding follow a guider's combine step, which {guider!r} does not have as one piece "
            "(it reads the sample x or changes its evaluation along the schedule); use it without the limit"
        )
    limited: Any = copy.copy(guider)  # (Any: it gets x0_limit, an attribute Guider does not declare)
    limited.combine = LimitedCombine(guider.combine, limit)
    limited.x0_limit = limit
    return limited
