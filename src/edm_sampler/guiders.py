"""Guiders: sgm's two-phase protocol around one model evaluation.

``prepare_inputs(x, sigma, cond, uc) -> (x, sigma, cond)`` builds the batch the model sees; ``__call__(denoised,
sigma)`` turns the model output back into one denoised estimate per sample. :meth:`Guider.check_inputs` runs once
before sampling so that malformed conditioning fails before the first model call.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mindspore import Tensor, ops

from . import checks
from .checks import ConfigError
from .registry import instantiate_from_config

# sgm's conditioning keys that carry one entry per sample and are stacked [uc; c] for CFG.
BATCHED_KEYS = ("vector", "crossattn", "concat")


def _batch_size(value) -> int | None:
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) > 0 else None


def _same_value(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, (Tensor, np.ndarray)) or isinstance(b, (Tensor, np.ndarray)):
        a = a.asnumpy() if isinstance(a, Tensor) else np.asarray(a)
        b = b.asnumpy() if isinstance(b, Tensor) else np.asarray(b)
        return a.shape == b.shape and np.array_equal(a, b)
    return a == b


def _check_batched(name: str, cond, batch_size: int) -> None:
    if not isinstance(cond, Mapping):
        return
    for key in BATCHED_KEYS:
        if key in cond and _batch_size(cond[key]) not in (None, batch_size):
            raise ValueError(
                f"{name}[{key!r}] has batch size {_batch_size(cond[key])}, but x has batch size {batch_size}"
            )


class Guider:
    """Base guider: one model evaluation per denoise, conditioning passed through unchanged."""

    def check_inputs(self, cond, uc, batch_size: int) -> None:
        """Validate the conditioning once, before sampling starts."""
        _check_batched("cond", cond, batch_size)

    def prepare_inputs(self, x: Tensor, sigma: Tensor, cond, uc):
        return x, sigma, cond

    def __call__(self, denoised: Tensor, sigma: Tensor) -> Tensor:
        return denoised

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class IdentityGuider(Guider):
    """No guidance: the model sees ``(x, sigma, cond)``; ``uc`` is ignored."""


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
            _check_batched(name, value, batch_size)
        if set(cond) != set(uc):
            raise ValueError(f"cond and uc must have the same keys, got {sorted(cond)} and {sorted(uc)}")
        for key in cond:
            if key not in BATCHED_KEYS and not _same_value(cond[key], uc[key]):
                raise ValueError(
                    f"cond[{key!r}] and uc[{key!r}] differ, but only {', '.join(BATCHED_KEYS)} may differ under CFG"
                )

    def prepare_inputs(self, x: Tensor, sigma: Tensor, cond, uc):
        stacked = {k: ops.cat((uc[k], cond[k])) if k in BATCHED_KEYS else cond[k] for k in cond}
        return ops.cat((x, x)), ops.cat((sigma, sigma)), stacked

    def __call__(self, denoised: Tensor, sigma: Tensor) -> Tensor:
        uncond, cond = ops.chunk(denoised, 2)
        return uncond + (cond - uncond) * self.scale

    def __repr__(self) -> str:
        return f"VanillaCFG(scale={self.scale})"
