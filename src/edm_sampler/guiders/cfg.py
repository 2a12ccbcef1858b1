"""Classifier-free guidance: one model call on the batch ``[uc; c]``, then ``D_u + scale * (D_c - D_u)``."""

from __future__ import annotations

from collections.abc import Mapping

from mindspore import Tensor, ops

from .. import checks
from ..checks import ConfigError
from ..registry import instantiate_from_config
from .base import BATCHED_KEYS, Guider, _check_batched, _same_value


class NoDynamicThresholding:
    """mindone's no-op thresholding plugin; accepted so mindone ``VanillaCFG`` configs load unchanged."""

    def __call__(self, x: Tensor) -> Tensor:
        return x


class VanillaCFG(Guider):
    """Classifier-free guidance ``D = D_u + scale * (D_c - D_u)`` in one model call on the batch ``[uc; c]``.

    Entries under ``vector``, ``crossattn`` and ``concat`` are stacked; every other key must be equal in ``cond`` and
    ``uc`` (it is passed once). ``dyn_thresh_config`` exists only so mindone configs load: it must name the no-op
    ``NoDynamicThresholding``.
    """

    batched_keys = BATCHED_KEYS

    def __init__(self, scale: float, dyn_thresh_config=None):
        self.scale = checks.real("scale", scale)
        if dyn_thresh_config is not None:
            thresholding = instantiate_from_config(dyn_thresh_config)
            if not isinstance(thresholding, NoDynamicThresholding):
                raise ConfigError(
                    "dyn_thresh_config: only NoDynamicThresholding (a no-op) is supported, "
                    f"got {type(thresholding).__name__}"
                )

    def check_inputs(self, cond, uc, batch_size: int) -> None:
        for name, value in (("cond", cond), ("uc", uc)):
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"VanillaCFG needs {name} to be a dict of conditioning tensors, got {type(value).__name__}"
                )
            _check_batched(name, value, batch_size, self.batched_keys)
        if set(cond) != set(uc):
            raise ValueError(f"cond and uc must have the same keys, got {sorted(cond)} and {sorted(uc)}")
        for key in cond:
            if key not in self.batched_keys and not _same_value(cond[key], uc[key]):
                raise ValueError(
                    f"cond[{key!r}] and uc[{key!r}] differ, but only {', '.join(self.batched_keys)} may differ "
                    "under CFG"
                )

    copies = 2

    def model_cond(self, cond, uc):
        return {k: ops.cat((uc[k], cond[k])) if k in self.batched_keys else cond[k] for k in cond}

    @staticmethod
    def expand(x: Tensor) -> Tensor:
        return ops.cat((x, x))

    def scale_at(self, sigma: float, x_shape: tuple[int, ...]) -> float:
        return self.scale

    @staticmethod
    def combine(denoised: Tensor, scale) -> Tensor:
        uncond, cond = ops.chunk(denoised, 2)
        return uncond + (cond - uncond) * scale

    def __repr__(self) -> str:
        return f"VanillaCFG(scale={self.scale})"
