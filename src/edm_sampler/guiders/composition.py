"""Guiders built around another guider (``guider_config``), and the evaluations a guider makes where it does not
guide.

:class:`GuiderWrapper` is the base of the guiders that modify another one (CFG rescale, the guidance interval, a
second scale below a boundary): the conditioning, the model batch and the checks are the inner guider's, so a
wrapper composes from YAML with any CFG-type guider, including another wrapper::

    {"target": "guidance_interval", "params": {"sigma_lo": 0.28, "sigma_hi": 5.42, "guider_config":
        {"target": "cfg_rescale", "params": {"phi": 0.7, "guider_config": {"target": "vanilla_cfg",
            "params": {"scale": 7.0}}}}}}

A guider whose evaluation changes along the schedule (see :meth:`Guider.at`) has *variants*: the evaluation inside a
guidance interval and :class:`ConditionalOnly` outside it; CFG-Zero*'s guided evaluation and :class:`SampleItself`
on its zero-init steps. A wrapper around such a guider wraps each guided variant and passes the unguided ones
through, so the variants stay a flat, fixed list the model path picks from per evaluation.
"""

from __future__ import annotations

import copy

import numpy as np

from mindspore import Tensor, nn

from ..checks import ConfigError
from ..registry import instantiate_from_config
from .base import BATCHED_KEYS, Guider
from .cfg import VanillaCFG

_EXPANDING: dict[tuple[type, object], type] = {}


def _expanding_like(cls: type[GuiderWrapper], inner: Guider) -> type[GuiderWrapper]:
    """``cls``, or a subclass with the inner guider's ``expand`` where it is not CFG's ``[x; x]`` (MultiConditionCFG's
    extra conditions): the model path reads ``expand`` from a guider's class (so that it compiles with the network),
    and a wrapper's model batch is its inner guider's. One class per pair, made once."""
    cls = getattr(cls, "wrapper_class", cls)
    expand = type(inner).expand
    if expand is cls.expand:
        return cls
    key = (cls, expand)
    if key not in _EXPANDING:
        attribute = expand if isinstance(expand, nn.Cell) else staticmethod(expand)
        attributes = {"expand": attribute, "wrapper_class": cls, "__module__": cls.__module__}
        _EXPANDING[key] = type(cls.__name__, (cls,), attributes)
    return _EXPANDING[key]


def built_guider(name: str, config) -> Guider:
    """The guider a wrapper's ``guider_config`` describes (a config or an instance): a built-in, CFG-type guider."""
    guider = instantiate_from_config(config)
    if not isinstance(guider, Guider):
        raise ConfigError(f"{name}: guider_config must build an edm_sampler Guider, got {type(guider).__name__}")
    if guider.copies < 2 and len(guider.variants()) == 1:
        raise ConfigError(
            f"{name}: guider_config must be a guider with an unconditional and a conditional estimate (vanilla_cfg, "
            f"apg, cfg_zero_star, ...), got {guider!r}"
        )
    return guider


class GuiderWrapper(Guider):
    """A guider around ``inner``: its conditioning, model batch, checks and scale, with :meth:`_build` setting this
    guider's own ``combine`` (a subclass's part)."""

    inner: Guider
    _leaves: tuple[Guider, ...]  # variants(): this guider, or its inner guider's variants, the guided ones wrapped
    _leaf_of: dict[int, Guider] | None  # id(an inner variant) -> this guider's variant for it (None: no variants)
    expand = staticmethod(VanillaCFG.expand)  # the model batch [x; x] of CFG (else a subclass: _expanding_like)

    def _adopt(self, inner: Guider) -> None:
        self.inner = inner
        self.__class__ = _expanding_like(type(self), inner)
        self.copies = inner.copies
        self.batched_keys = getattr(inner, "batched_keys", BATCHED_KEYS)
        self.needs_input = inner.needs_input or type(self).needs_input
        self.stateful = inner.stateful
        self.uncond = inner.uncond  # CFG++ renoises with the inner guider's unconditional estimate
        self._set_variants(inner)
        self._build()

    def _set_variants(self, inner: Guider) -> None:
        """This guider's variants: itself, or, around a guider with variants, each guided one wrapped (the unguided
        ones have nothing to modify and pass through)."""
        leaves = inner.variants()
        if len(leaves) == 1:
            self._leaves, self._leaf_of = (self,), None
        else:
            wrapped = tuple(leaf if getattr(leaf, "unguided", False) else self._around(leaf) for leaf in leaves)
            self._leaves, self._leaf_of = wrapped, {id(a): b for a, b in zip(leaves, wrapped)}

    def _build(self) -> None:
        """Set ``self.combine`` from ``self.inner`` (the inner guider's combination, by default)."""
        self.combine = self.inner.combine

    def _around(self, inner: Guider) -> GuiderWrapper:
        """A copy of this guider around ``inner``."""
        wrapped = copy.copy(self)
        wrapped._adopt(inner)
        return wrapped

    # -- the inner guider's protocol ------------------------------------------------------------------------------

    def check_inputs(self, cond, uc, batch_size: int) -> None:
        self.inner.check_inputs(cond, uc, batch_size)

    def model_cond(self, cond, uc):
        return self.inner.model_cond(cond, uc)

    def scale_at(self, sigma: float, x_shape: tuple[int, ...]):
        return self.inner.scale_at(sigma, x_shape)

    def for_call(self, model_kwargs: dict) -> Guider:
        inner = self.inner.for_call(model_kwargs)
        return self if inner is self.inner else self._around(inner)

    def for_conditions(self, other_c) -> Guider:
        """The guider for a call with extra conditions (``other_c``), when the inner guider takes them."""
        for_conditions = getattr(self.inner, "for_conditions", None)
        if for_conditions is None:
            raise TypeError(
                f"other_c (extra conditions) needs a guider that takes them (MultiConditionCFG, PanGuVanillaCFG); "
                f"{type(self).__name__} wraps {self.inner!r}"
            )
        return self._around(for_conditions(other_c))

    def at(self, sigma: float, step: int) -> Guider:
        return self if self._leaf_of is None else self._leaf_of[id(self.inner.at(sigma, step))]

    def variants(self) -> tuple[Guider, ...]:
        return self._leaves

    # sgm's protocol (prepare_inputs, __call__) has neither x nor the step: only a single-variant guider serves it
    def prepare_inputs(self, x: Tensor, sigma: Tensor, cond, uc):
        _sgm_protocol(self)
        return super().prepare_inputs(x, sigma, cond, uc)

    def __call__(self, denoised: Tensor, sigma) -> Tensor:
        _sgm_protocol(self)
        return super().__call__(denoised, sigma)


def _sgm_protocol(guider: Guider) -> None:
    if guider.needs_input or len(guider.variants()) > 1:
        raise TypeError(
            f"{type(guider).__name__} reads the sample x or chooses its evaluation per step, which sgm's guider "
            "protocol (prepare_inputs, __call__(denoised, sigma)) cannot tell it: sample through an edm_sampler sampler"
        )


class ConditionalOnly(Guider):
    """The evaluation without guidance of a CFG-type guider (``parent``): the conditional batch alone, ``D = D_c``
    (one copy of the sample batch). Outside a guidance interval the unconditional branch is not evaluated."""

    unguided = True
    copies = 1

    def __init__(self, parent: Guider):
        self.parent_copies = parent.copies  # where the conditional rows sit in the parent's batch: the second part
        self.batched_keys = getattr(parent, "batched_keys", BATCHED_KEYS)

    def model_cond(self, cond, uc):
        return cond

    def scale_at(self, sigma: float, x_shape: tuple[int, ...]) -> float:
        return 1.0

    def __repr__(self) -> str:
        return "ConditionalOnly()"


class SampleItself(Guider):
    """No model evaluation: the estimate is the sample itself, ``D = x`` (zero velocity, ``dx/dsigma = (x - D) /
    sigma = 0``): CFG-Zero*'s zero-init steps."""

    unguided = True
    copies = 0
    needs_input = True

    def model_cond(self, cond, uc):
        return cond

    def scale_at(self, sigma: float, x_shape: tuple[int, ...]) -> float:
        return 1.0

    @staticmethod
    def combine(denoised, scale, x):
        return x

    @staticmethod
    def uncond(denoised):
        raise TypeError("SampleItself makes no model evaluation: its unconditional estimate is x (the model path's)")

    def __repr__(self) -> str:
        return "SampleItself()"


def broadcast_scale(value: float, like) -> float | np.ndarray:
    """``value`` shaped like a scale ``like`` (a float, or a per-sample array): the compiled loop stacks one scale per
    step, so a guider's scales keep one shape along the schedule."""
    return np.full(np.shape(like), value) if isinstance(like, np.ndarray) else value
