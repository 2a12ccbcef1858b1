"""The guider protocol: how one guided model evaluation is built from the sample batch and turned back into one
estimate.

A guider splits sgm's two-phase protocol into pieces the model path can use without redoing work per evaluation:

* :meth:`Guider.check_inputs` and :meth:`Guider.model_cond` run once per sampling call (validation, and the
  conditioning batch the model sees, e.g. ``[uc; c]`` for CFG);
* :meth:`Guider.expand` builds the model's x batch and :meth:`Guider.combine` merges the model output back, with
  the guidance strength :meth:`Guider.scale_at` computed on the host; :meth:`Guider.uncond` picks the unconditional
  estimate out of the model's batch (the CFG++ samplers renoise with it). All are static, pure tensor math, so in
  graph mode the model path compiles them into the network's graph.

sgm's ``prepare_inputs(x, sigma, cond, uc)`` and ``__call__(denoised, sigma)`` are kept, built from those pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Callable

import numpy as np

from mindspore import Tensor

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


def _check_batched(name: str, cond, batch_size: int, batched_keys=BATCHED_KEYS) -> None:
    if not isinstance(cond, Mapping):
        return
    for key, value in cond.items():
        if isinstance(value, np.ndarray):
            raise TypeError(
                f"{name}[{key!r}] is a numpy array; conditioning must be MindSpore Tensors "
                f"(wrap it: mindspore.Tensor({name}[{key!r}]))"
            )
    for key in batched_keys:
        if key in cond and _batch_size(cond[key]) not in (None, batch_size):
            raise ValueError(
                f"{name}[{key!r}] has batch size {_batch_size(cond[key])}, but x has batch size {batch_size}"
            )


class Guider:
    """Base guider: one model evaluation per denoise, conditioning passed through unchanged."""

    copies = 1  # how many copies of the sample batch the model sees (0: no model call, the estimate is x itself)
    needs_input = False  # combine(denoised, scale, x) also reads the sample batch x (CFG-Zero*'s optimized scale)
    stateful = False  # combine carries state from one evaluation to the next (APG's momentum): evaluated eagerly

    def check_inputs(self, cond, uc, batch_size: int) -> None:
        """Validate the conditioning once, before sampling starts."""
        _check_batched("cond", cond, batch_size)

    def at(self, sigma: float, step: int) -> Guider:
        """The guider that makes the evaluation at noise level ``sigma`` in step ``step`` (host side): itself, or, for
        a guider whose evaluation changes along the schedule (a guidance interval, CFG-Zero*'s zero-init steps), one
        of its :meth:`variants`."""
        return self

    def variants(self) -> tuple[Guider, ...]:
        """Every guider :meth:`at` may return (the compiled loop builds one evaluation per variant and picks one per
        evaluation from a host-side index)."""
        return (self,)

    def for_call(self, model_kwargs: dict) -> Guider:
        """The guider for one sampling call (a guider configured from the call returns a configured copy)."""
        return self

    def model_cond(self, cond, uc):
        """The conditioning the model sees (built once per sampling call)."""
        return cond

    @staticmethod
    def expand(x: Tensor) -> Tensor:
        """The model's batch for the sample batch ``x`` (also used for the sigma Tensor); pure tensor math."""
        return x

    def scale_at(self, sigma: float, x_shape: tuple[int, ...]) -> float | np.ndarray:
        """The guidance strength at noise level ``sigma`` (host side): a float, or an array that broadcasts against
        the sample batch of shape ``x_shape`` (one value per sample, e.g. per video frame)."""
        return 1.0

    if TYPE_CHECKING:
        # For the type checker, callable attributes: a guider may set its own per instance (a cell that compiles with
        # the network: thresholding, APG, rescale, a wrapper's inner guider's), and ``combine`` takes ``x`` as well
        # when ``needs_input`` is set. At run time the static functions below are the defaults.
        combine: Callable[..., Tensor]
        uncond: Callable[[Tensor], Tensor]
        batched_keys: tuple[str, ...]  # CFG-type guiders (and their conditional-only variants): keys stacked per copy
    else:

        @staticmethod
        def combine(denoised: Tensor, scale) -> Tensor:
            """The guided estimate from the model's denoised batch; pure tensor math."""
            return denoised

        @staticmethod
        def uncond(denoised: Tensor) -> Tensor:
            """The unconditional estimate from the model's denoised batch (without guidance: the estimate itself);
            pure tensor math. The CFG++ samplers read it beside :meth:`combine`'s guided estimate."""
            return denoised

    # sgm's protocol, built from the pieces above
    def prepare_inputs(self, x: Tensor, sigma: Tensor, cond, uc):
        return self.expand(x), self.expand(sigma), self.model_cond(cond, uc)

    def __call__(self, denoised: Tensor, sigma) -> Tensor:
        sigma = float(sigma.asnumpy().reshape(-1)[0]) if isinstance(sigma, Tensor) else float(sigma)
        x_shape = (denoised.shape[0] // self.copies, *denoised.shape[1:])
        scale = self.scale_at(sigma, x_shape)
        return self.combine(denoised, Tensor(scale.astype(np.float32)) if isinstance(scale, np.ndarray) else scale)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class IdentityGuider(Guider):
    """No guidance: the model sees ``(x, sigma, cond)``; ``uc`` is ignored."""
