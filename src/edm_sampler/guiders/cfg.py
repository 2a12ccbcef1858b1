"""Classifier-free guidance: one model call on the batch ``[uc; c]``, then ``D_u + scale * (D_c - D_u)``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mindspore import Tensor, ops

from .. import checks
from ..checks import ConfigError
from ..registry import instantiate_from_config
from .base import BATCHED_KEYS, Guider, _check_batched, _same_value
from .mindone_thresholding import MindoneDynamicThresholding


class NoDynamicThresholding:
    """mindone's no-op thresholding plugin; accepted so mindone ``VanillaCFG`` configs load unchanged."""

    def __call__(self, x: Tensor) -> Tensor:
        return x


class DynamicThresholding:
    """sgm's early dynamic thresholding, as a ``dyn_thresh_config`` of :class:`VanillaCFG` (mindone's gm replaced it
    by Imagen's under the same name: :class:`~edm_sampler.guiders.mindone_thresholding.MindoneDynamicThresholding`).

    The guided result is rescaled to the spread of the unconditional estimate:
    ``(r - mean(r)) / std(r) * std(D_u)`` with ``r = D_u + scale (D_c - D_u)``, means and (unbiased) standard
    deviations taken over the whole batch, as sgm does (which also leaves out ``mean(D_u)``).
    """

    @staticmethod
    def combine(denoised: Tensor, scale) -> Tensor:
        uncond, cond = ops.chunk(denoised, 2)
        result = uncond + (cond - uncond) * scale
        count = result.size - 1
        result = result - result.mean()
        uncond = uncond - uncond.mean()
        return result * ops.sqrt((uncond * uncond).sum() / count) / ops.sqrt((result * result).sum() / count)

    def __repr__(self) -> str:
        return "DynamicThresholding()"


class VanillaCFG(Guider):
    """Classifier-free guidance ``D = D_u + scale * (D_c - D_u)`` in one model call on the batch ``[uc; c]``.

    Entries under ``vector``, ``crossattn`` and ``concat`` are stacked; every other key must be equal in ``cond`` and
    ``uc`` (it is passed once). ``dyn_thresh_config`` is mindone's: the no-op ``NoDynamicThresholding``, sgm's early
    :class:`DynamicThresholding`, or mindone's (Imagen's, on the ``[uc; c]`` batch before combining).
    """

    batched_keys: tuple[str, ...] = BATCHED_KEYS

    def __init__(self, scale: float, dyn_thresh_config=None):
        self.scale = checks.real("scale", scale)
        self.dyn_thresh: DynamicThresholding | MindoneDynamicThresholding | None = None
        if dyn_thresh_config is not None:
            thresholding = instantiate_from_config(dyn_thresh_config)
            if not isinstance(thresholding, (NoDynamicThresholding, DynamicThresholding, MindoneDynamicThresholding)):
                raise ConfigError(
                    "dyn_thresh_config: NoDynamicThresholding, DynamicThresholding (sgm's) or mindone's "
                    f"DynamicThresholding are supported, got {type(thresholding).__name__}"
                )
            # (type: ignore[method-assign] below: a guider may set its combine and uncond per instance, see Guider)
            if isinstance(thresholding, DynamicThresholding):
                self.dyn_thresh = thresholding
                self.combine = thresholding.combine  # type: ignore[method-assign]  # the model path reads it
            elif isinstance(thresholding, MindoneDynamicThresholding):  # thresholds [uc; c] before combining
                self.dyn_thresh = thresholding
                self.combine = thresholding.before(VanillaCFG.combine)  # type: ignore[method-assign]
                # the D_u that went into the combination
                self.uncond = thresholding.before_uncond(VanillaCFG.uncond)  # type: ignore[method-assign]

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

    def scale_at(self, sigma: float, x_shape: tuple[int, ...]) -> float | np.ndarray:
        return self.scale

    @staticmethod
    def combine(denoised: Tensor, scale) -> Tensor:
        uncond, cond = ops.chunk(denoised, 2)
        return uncond + (cond - uncond) * scale

    @staticmethod
    def uncond(denoised: Tensor) -> Tensor:
        return ops.chunk(denoised, 2)[0]  # the batch is [uc; c]

    def __repr__(self) -> str:
        thresholding = "" if self.dyn_thresh is None else f", dyn_thresh={self.dyn_thresh!r}"
        return f"VanillaCFG(scale={self.scale}{thresholding})"
