"""One guided model evaluation, built once per sampling call and called once per NFE.

Everything that depends only on the call (the conditioning batch, its ``ms.mutable`` marking, the checks) is done
when the path is built; everything that depends only on sigma (the preconditioning, the sigma and ``c_noise``
tensors, the guidance scale) is computed on the host once per noise level. Per evaluation what is left is the
network and a handful of elementwise ops: ``expand(x) * c_in`` before it, ``combine(c_out * out + c_skip * x_in)``
after it.

Three kinds of model are served:

* a preconditioned network (``Denoiser.bind(net)``, a mindone engine) with a built-in guider. In graph mode a
  bound ``nn.Cell`` network is evaluated inside one :class:`GuidedNetwork` cell, so the glue compiles into the
  network's graph (one graph launch per evaluation; cached on the bound denoiser, so later calls do not compile);
* a plain callable ``D(x, sigma, cond)`` with a built-in guider;
* anything with a third-party sgm-style guider (only ``prepare_inputs``/``__call__``): sgm's protocol as is.

Failures inside the model are re-raised as :class:`ModelOutputError` naming the step, sigma and what the model
was given, instead of a MindSpore stack trace from deep inside a step. The first evaluation of every call runs
the network on its own so its output's type and shape can be checked.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

from .denoisers import BoundDenoiser, PreconditionedNetwork, graph_input, is_unit
from .functional import axpy, scaled
from .guiders import Guider

FLOAT_DTYPES = (ms.float16, ms.bfloat16, ms.float32, ms.float64)


class ModelOutputError(ValueError):
    """The model failed, or returned something a sampler cannot use (wrong type, wrong shape, NaN/Inf)."""


def where(step: int, sigma: float) -> str:
    return f"at step {step} (sigma={sigma:.6g})"


class GuidedNetwork(nn.Cell):
    """``combine(c_out * net(expand(x) * c_in, c_noise, cond) + c_skip * expand(x), scale)`` as one cell.

    Used in graph mode, where calling it compiles the glue together with the network (scalars are 0-d tensors, so
    new values do not recompile).
    """

    def __init__(self, network: nn.Cell, guider: Guider, dtype=None, with_uncond: bool = False):
        super().__init__()
        self.network = network
        self.expand = type(guider).expand
        # a static function (or a thresholding's), never a bound method; combine(denoised, scale[, x])
        self.combine: Callable[..., Tensor] = guider.combine
        self.uncond = guider.uncond
        self.with_uncond = with_uncond  # also return the unconditional estimate (CFG++ samplers)
        self.dtype = ms.float32 if dtype is None else dtype
        self.with_input = guider.needs_input  # combine(denoised, scale, x): the combination reads x (CFG-Zero*)

    def construct(self, x, c_in, c_skip, c_out, c_noise, cond, scale):
        x_in = self.expand(x)
        out = self.network((x_in * c_in).astype(self.dtype), c_noise, cond)
        if out.shape != x_in.shape:  # shapes are constants here: this raises while compiling, not per call
            raise ValueError(f"the network returned shape {out.shape}; expected {x_in.shape} (the shape of its input)")
        denoised = axpy(scaled(x_in, c_skip), out.astype(ms.float32), c_out)  # the eager path's kernels
        if self.with_input:
            guided = self.combine(denoised, scale, x)
        else:
            guided = self.combine(denoised, scale)
        if self.with_uncond:
            return guided, self.uncond(denoised)
        return guided


def guided_cell(denoiser: BoundDenoiser, guider: Guider, with_uncond: bool = False) -> GuidedNetwork:
    """The :class:`GuidedNetwork` of a bound network and guider, cached on the bound denoiser (later calls, and later
    guiders of the same kind, reuse its compiled graph)."""
    key = (type(guider).expand, guider.combine, guider.uncond if with_uncond else None)
    cells = denoiser.__dict__.setdefault("_guided_cells", {})
    if key not in cells:
        cells[key] = GuidedNetwork(denoiser.network, guider, denoiser.dtype, with_uncond)
    return cells[key]


def _tensor(value) -> Tensor:
    """A float as a 0-d float32 graph input (``Tensor.from_numpy``: a tenth of ``Tensor(value)``'s host cost)."""
    return value if isinstance(value, Tensor) else Tensor.from_numpy(np.array(value, np.float32))


def describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"Tensor{tuple(value.shape)} {value.dtype}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "(" + ", ".join(describe(v) for v in value) + ")"
    return type(value).__name__


def first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return text if len(text) <= 300 else text[:297] + "..."


def _name(fn: Callable) -> str:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, BoundDenoiser):
        return f"network {type(owner.network).__name__}"
    if owner is not None and hasattr(owner, "engine"):
        return "engine.model"
    return getattr(fn, "__name__", type(fn).__name__)


class ModelPath:
    """``path(x, sigma, step) -> denoised`` for one sampling call. Built by ``SamplingRun``."""

    def __init__(
        self,
        denoiser: Any,
        guider: Any,
        cond: Any,
        uc: Any,
        x_shape: tuple[int, ...],
        model_kwargs: dict,
        max_sigma: float,
    ):
        self.denoiser = denoiser
        self.guider = guider
        self.model_kwargs = model_kwargs
        self.x_shape = tuple(x_shape)
        self.batch_size = int(x_shape[0])
        self.ndim = len(x_shape)
        self.builtin_guider = isinstance(guider, Guider)
        self.preconditioned = isinstance(denoiser, PreconditionedNetwork) and self.builtin_guider
        self.model_batch = self.batch_size * (guider.copies if self.builtin_guider else 1)
        self.cond, self.uc = cond, uc
        self._check_sigma_range(max_sigma)
        # a guider that picks its evaluation per noise level and step (guidance interval, CFG-Zero*): one path each
        self.variant_paths = self._variant_paths(max_sigma) if self.builtin_guider else None
        if self.builtin_guider:
            model_cond = guider.model_cond(cond, uc)
            self.model_cond = denoiser.model_cond(model_cond) if self.preconditioned else graph_input(model_cond)
        self.fused = self._fused_network(with_uncond=False)
        # the fused cell that also returns the unconditional estimate, made on first use
        self.fused_pair: GuidedNetwork | None = None
        self._per_sigma: dict[float, tuple] = {}
        self.checked = False  # the first evaluation checks the output's type and shape
        self.float32_output = False  # the network returns float32 (read once, by that check): no astype after it

    def _check_sigma_range(self, max_sigma: float) -> None:
        sigma_range = getattr(self.denoiser, "sigma_range", None)
        if sigma_range is not None and max_sigma > sigma_range[1] * (1.0 + 1e-4):
            raise ValueError(
                f"the schedule reaches sigma={max_sigma:.6g}, but the discrete denoiser's noise levels end at "
                f"sigma={sigma_range[1]:.6g}: the network would be told sigma={sigma_range[1]:.6g} while the sample "
                "is noisier. Use a discretization within the denoiser's range (e.g. LegacyDDPMDiscretization, or "
                f"EDMDiscretization(sigma_max<={sigma_range[1]:.4g})), and keep churn off at the top level"
            )

    def _variant_paths(self, max_sigma: float) -> dict[int, ModelPath | None] | None:
        """A path per variant of the guider (None for a variant without model evaluation), or None."""
        variants = self.guider.variants()
        if len(variants) == 1:
            return None
        args = (self.cond, self.uc, self.x_shape, self.model_kwargs, max_sigma)
        return {id(v): ModelPath(self.denoiser, v, *args) if v.copies else None for v in variants}

    def rows_at(self, sigma: float, step: int) -> int:
        """How many rows the model batch of the evaluation at ``sigma`` in step ``step`` has (0: no model call)."""
        return self.batch_size * self.guider.at(sigma, step).copies if self.builtin_guider else self.model_batch

    def _fused_network(self, with_uncond: bool) -> GuidedNetwork | None:
        """The graph-mode cell for a bound ``nn.Cell`` network (keyword arguments keep the unfused path)."""
        if self.builtin_guider and (self.guider.stateful or self.variant_paths):
            return None  # a stateful combination runs eagerly; a guider with variants runs its variants' paths
        den = self.denoiser
        if not (self.preconditioned and isinstance(den, BoundDenoiser) and isinstance(den.network, nn.Cell)):
            return None
        if self.model_kwargs or ms.get_context("mode") != ms.GRAPH_MODE:
            return None
        return guided_cell(den, self.guider, with_uncond)

    # -- per noise level, on the host -----------------------------------------------------------------------------

    def _at(self, sigma: float) -> tuple:
        """Everything that depends only on sigma, computed once per noise level of the call."""
        cached = self._per_sigma.get(sigma)
        if cached is None:
            scale = self.guider.scale_at(sigma, self.x_shape) if self.builtin_guider else None
            if isinstance(scale, np.ndarray):  # per-sample scales (video guiders): one small tensor
                scale = Tensor.from_numpy(scale.astype(np.float32))
            if self.preconditioned:
                p = self.denoiser.preconditioning(np.full(self.model_batch, np.float32(sigma), np.float64), self.ndim)
                tensors = None
                if self.fused is not None:  # graph inputs: 0-d tensors, so new values do not recompile
                    tensors = (*(_tensor(v) for v in (p.c_in, p.c_skip, p.c_out)), _tensor(scale))
                cached = (p, scale, tensors)
            else:
                sigma_t = Tensor.from_numpy(np.full((self.batch_size,), sigma, dtype=np.float32))
                sigma_in = self.guider.expand(sigma_t) if self.builtin_guider else None
                cached = (sigma_t, sigma_in, scale)
            self._per_sigma[sigma] = cached
        return cached

    # -- one evaluation -----------------------------------------------------------------------------------------

    def __call__(self, x: Tensor, sigma: float, step: int, with_uncond: bool = False) -> Tensor | tuple:
        """The guided estimate at ``sigma``; with ``with_uncond``, ``(guided, unconditional)`` from the same model
        call (CFG++ samplers; built-in guiders only)."""
        if self.variant_paths is not None:  # the guider's variant for this evaluation (host side)
            path = self.variant_paths[id(self.guider.at(sigma, step))]
            if path is None:  # no model evaluation: the estimate is the sample itself (zero velocity)
                return (x, x) if with_uncond else x
            return path(x, sigma, step, with_uncond)
        if self.preconditioned:
            p, scale, tensors = self._at(sigma)
            if self.checked and self.fused is not None and tensors is not None:
                c_in, c_skip, c_out, scale_t = tensors
                args = (x, c_in, c_skip, c_out, p.c_noise, self.model_cond, scale_t)
                if with_uncond and self.fused_pair is None:
                    self.fused_pair = self._fused_network(with_uncond=True)
                fused = self.fused_pair if with_uncond else self.fused
                assert fused is not None  # fused_pair is made under the conditions that made fused
                return self._call(fused, args, step, sigma)
            x_in = self.guider.expand(x)
            net_in = self.denoiser.network_input(x_in, p.c_in)
            out = self._call(self.denoiser.call_network, (net_in, p.c_noise, self.model_cond), step, sigma, net_in)
            skip = x_in if is_unit(p.c_skip) else scaled(x_in, p.c_skip)  # eps and velocity models: c_skip = 1
            return self._guided(axpy(skip, self._float32(out), p.c_out), scale, with_uncond, x)
        sigma_t, sigma_in, scale = self._at(sigma)
        if self.builtin_guider:
            x_in = self.guider.expand(x)
            out = self._call(self.denoiser, (x_in, sigma_in, self.model_cond), step, sigma, x_in)
            return self._guided(self._float32(out), scale, with_uncond, x)
        if with_uncond:  # refused before sampling starts (BaseDiffusionSampler._integrate); a last guard
            raise TypeError(f"the unconditional estimate needs a built-in guider, got {type(self.guider).__name__}")
        x_in, sigma_in, cond_in = self.guider.prepare_inputs(x, sigma_t, self.cond, self.uc)
        out = self._call(self.denoiser, (x_in, sigma_in, cond_in), step, sigma, x_in)
        return self.guider(self._float32(out), sigma_t)

    def _float32(self, out: Tensor) -> Tensor:
        # an astype to its own dtype still costs a dispatch (~27 us here), but reading out.dtype would wait for the
        # network to finish (~0.4 ms of stalled host work per evaluation): the first evaluation's check reads it once
        return out if self.float32_output else out.astype(ms.float32)

    def _guided(self, denoised: Tensor, scale, with_uncond: bool, x: Tensor) -> Tensor | tuple:
        if self.guider.needs_input:  # the combination reads the sample itself (CFG-Zero*)
            guided = self.guider.combine(denoised, scale, x)
        else:
            guided = self.guider.combine(denoised, scale)
        return (guided, self.guider.uncond(denoised)) if with_uncond else guided

    def _call(self, fn: Callable, args: tuple, step: int, sigma: float, model_input: Tensor | None = None) -> Tensor:
        kwargs = {} if fn is self.fused or fn is self.fused_pair else self.model_kwargs
        try:
            out = fn(*args, **kwargs)
        except ModelOutputError:
            raise
        except Exception as err:
            given = ", ".join(describe(a) for a in args) + (f", **{describe(kwargs)}" if kwargs else "")
            raise ModelOutputError(
                f"the model raised {type(err).__name__} {where(step, sigma)}: {first_line(err)}\n"
                f"  it was called as {_name(fn)}({given})"
            ) from err
        if not self.checked and model_input is not None:
            self._check_output(out, step, sigma, tuple(model_input.shape))
        return out

    def _check_output(self, out: Any, step: int, sigma: float, expected_shape: tuple) -> None:
        # Reading .shape waits for the model to finish, which would stall the host-side work queued behind it, so
        # only the first evaluation of a call is checked (a network's output shape depends only on its input shape).
        if not isinstance(out, Tensor):
            raise ModelOutputError(
                f"the model returned {describe(out)} {where(step, sigma)}; expected a Tensor of shape {expected_shape}"
            )
        if tuple(out.shape) != expected_shape:
            raise ModelOutputError(
                f"the model returned shape {tuple(out.shape)} {where(step, sigma)}; expected {expected_shape} "
                "(the shape of its input)"
            )
        if out.dtype not in FLOAT_DTYPES:
            raise ModelOutputError(
                f"the model returned a {out.dtype} Tensor {where(step, sigma)}; expected a floating-point Tensor"
            )
        self.float32_output = out.dtype == ms.float32
        self.checked = True
