"""What a sampler can call: the denoiser protocol and adapters to it.

A sampler evaluates ``D(x, sigma, cond, **model_kwargs) -> denoised``, where ``sigma`` is a float32 Tensor of shape
``(B,)``. Three kinds of model reach that protocol:

* a plain callable with that signature (an sgm-style closure is one);
* a MindSpore network ``net(x * c_in, c_noise, cond, **kw)`` wrapped by :class:`Denoiser` /
  :class:`DiscreteDenoiser` (sgm's preconditioners) via :meth:`Denoiser.bind`;
* a mindone ``DiffusionEngine`` (``.model``, ``.denoiser`` returning the four scalings,
  ``.openai_input_warpper``), adapted by :class:`MindoneEngineDenoiser`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import mindspore as ms
from mindspore import Tensor, ops

from . import checks
from .registry import instantiate_from_config

DenoiserFn = Callable[..., Tensor]
MINDONE_ATTRIBUTES = ("model", "denoiser", "openai_input_warpper")


def append_dims(t: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton axes to ``t`` until it has ``ndim`` dimensions (for per-sample broadcasting)."""
    if t.ndim > ndim:
        raise ValueError(f"cannot broadcast a {t.ndim}-d tensor to {ndim} dims")
    return t.reshape(t.shape + (1,) * (ndim - t.ndim))


class Denoiser:
    """sgm's ``Denoiser``: ``D(x, sigma) = c_skip x + c_out net(c_in x, c_noise, cond)`` for a given scaling."""

    def __init__(self, scaling_config):
        self.scaling = instantiate_from_config(scaling_config)
        if not callable(self.scaling):
            raise TypeError(f"scaling_config must build a callable scaling, got {type(self.scaling).__name__}")

    def possibly_quantize_sigma(self, sigma: Tensor) -> Tensor:
        return sigma

    def possibly_quantize_c_noise(self, c_noise: Tensor) -> Tensor:
        return c_noise

    def scalings(self, sigma: Tensor, ndim: int):
        """``(c_skip, c_out, c_in, c_noise)`` for a ``(B,)`` sigma; the first three broadcast against ``ndim``-d x."""
        sigma = self.possibly_quantize_sigma(sigma)
        c_skip, c_out, c_in, c_noise = self.scaling(sigma)
        c_noise = self.possibly_quantize_c_noise(c_noise)
        return append_dims(c_skip, ndim), append_dims(c_out, ndim), append_dims(c_in, ndim), c_noise

    def __call__(self, network: Callable, x: Tensor, sigma: Tensor, cond: Any, **model_kwargs) -> Tensor:
        c_skip, c_out, c_in, c_noise = self.scalings(sigma, x.ndim)
        out = network(x * c_in, c_noise, cond, **model_kwargs)
        return out.astype(ms.float32) * c_out + x * c_skip

    def bind(self, network: Callable) -> DenoiserFn:
        """The sampler-facing ``D(x, sigma, cond, **model_kwargs)`` for ``network``."""
        return functools.partial(self, network)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scaling={type(self.scaling).__name__})"


class DiscreteDenoiser(Denoiser):
    """A denoiser for networks trained on ``num_idx`` discrete noise levels (SD, SDXL).

    sigma is snapped to the nearest of the discretization's levels for the scalings, and (with
    ``quantize_c_noise``) ``c_noise`` becomes that level's integer index, as in sgm.
    """

    def __init__(
        self,
        scaling_config,
        num_idx: int,
        discretization_config,
        do_append_zero: bool = False,
        quantize_c_noise: bool = True,
        flip: bool = True,
    ):
        super().__init__(scaling_config)
        self.num_idx = checks.integer("num_idx", num_idx, minimum=1)
        discretization = instantiate_from_config(discretization_config)
        self.sigmas_host = discretization(self.num_idx, do_append_zero=do_append_zero, flip=flip)
        self.sigmas = Tensor(self.sigmas_host, ms.float32)
        self.quantize_c_noise = bool(quantize_c_noise)

    def sigma_to_idx(self, sigma: Tensor) -> Tensor:
        return ops.argmin(ops.abs(sigma[None, :] - self.sigmas[:, None]), axis=0)

    def idx_to_sigma(self, idx: Tensor) -> Tensor:
        return self.sigmas[idx]

    def possibly_quantize_sigma(self, sigma: Tensor) -> Tensor:
        return self.idx_to_sigma(self.sigma_to_idx(sigma))

    def possibly_quantize_c_noise(self, c_noise: Tensor) -> Tensor:
        return self.sigma_to_idx(c_noise) if self.quantize_c_noise else c_noise


class MindoneEngineDenoiser:
    """Adapter for a mindone ``DiffusionEngine``: reproduces mindone's ``BaseDiffusionSampler.denoise`` body."""

    def __init__(self, engine: Any):
        missing = [a for a in MINDONE_ATTRIBUTES if not hasattr(engine, a)]
        if missing:
            raise TypeError(
                f"a mindone engine needs attributes {', '.join(MINDONE_ATTRIBUTES)}; missing {', '.join(missing)}"
            )
        self.engine = engine

    def __call__(self, x: Tensor, sigma: Tensor, cond: Any, **model_kwargs) -> Tensor:
        cond = self.engine.openai_input_warpper(cond)
        c_skip, c_out, c_in, c_noise = self.engine.denoiser(sigma, x.ndim)
        out = self.engine.model(x * c_in, c_noise, **cond, **model_kwargs)
        return out.astype(ms.float32) * c_out + x * c_skip


def as_denoiser(model: Any, kind: str = "auto") -> DenoiserFn:
    """Adapt ``model`` to the sampler's ``D(x, sigma, cond, **model_kwargs)`` protocol.

    ``kind="auto"`` treats an object with ``.model``, ``.denoiser`` and ``.openai_input_warpper`` as a mindone engine
    and any other callable as a plain denoiser; ``"mindone"`` and ``"callable"`` force the choice.
    """
    checks.choice("kind", kind, ("auto", "callable", "mindone"))
    if kind == "mindone" or (kind == "auto" and all(hasattr(model, a) for a in MINDONE_ATTRIBUTES)):
        return MindoneEngineDenoiser(model)
    if not callable(model):
        raise TypeError(
            f"denoiser must be callable as D(x, sigma, cond) or a mindone engine, got {type(model).__name__}"
        )
    return model
