"""Guidance towards several conditions at once, each with its own scale (PanGu-Draw v3's guider, generalised).

One model call on the batch ``[uc; c; c_1; ...; c_k]`` gives ``D_u, D_c, D_1 ... D_k``, combined as

    D = D_u + scale (D_c - D_u) + sum_i other_scale_i (D_i - D_c)

(mindone's ``PanGuVanillaCFG`` with ``PanGuNoDynamicThresholding``, ``examples/pangu_draw_v3/gm/modules/
diffusionmodules/{guiders,sampling_utils}.py``). With no extra condition it is :class:`~edm_sampler.VanillaCFG`.
The extra conditions come with the call (``other_c=[c_1, ..., c_k]``, mindone's keyword), the scales with the
config, so the combination is compiled once per guider and reused by every call.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from mindspore import nn, ops

from .. import checks
from ..checks import ConfigError
from ..registry import instantiate_from_config
from .base import _check_batched, _same_value
from .cfg import VanillaCFG


class MultiConditionCombine(nn.Cell):
    """``D_u + scale (D_c - D_u) + sum_i other_scale_i (D_i - D_c)`` from the model batch ``[D_u; D_c; D_1; ...]``.

    The extra scales are constants of the cell (a new value means a new guider); ``scale`` is a graph input.
    """

    def __init__(self, other_scale: tuple[float, ...]):
        super().__init__()
        self.other_scale = tuple(other_scale)
        self.copies = 2 + len(self.other_scale)

    def construct(self, denoised, scale):
        parts = ops.chunk(denoised, self.copies)
        uncond, cond = parts[0], parts[1]
        out = uncond + (cond - uncond) * scale
        for i in range(len(self.other_scale)):  # a constant count: unrolled when compiled
            out = out + (parts[2 + i] - cond) * self.other_scale[i]
        return out


class RepeatBatch(nn.Cell):
    """``x`` repeated ``copies`` times along the batch axis: the model's batch for ``[uc; c; c_1; ...]``."""

    def __init__(self, copies: int):
        super().__init__()
        self.copies = copies

    def construct(self, x):
        return ops.cat((x,) * self.copies)


class FirstCopy(nn.Cell):
    """The first of ``copies`` equal parts of the batch: the unconditional estimate of ``[D_u; D_c; D_1; ...]``."""

    def __init__(self, copies: int):
        super().__init__()
        self.copies = copies

    def construct(self, denoised):
        return ops.chunk(denoised, self.copies)[0]


_WITH_CONDITIONS: dict[tuple[type, int], type] = {}


def _with_conditions(cls: type, count: int) -> type:
    """``cls`` for ``count`` extra conditions: the model path reads a guider's ``expand`` from its class (a class-level
    function compiles with the network), so each count has its own class, made once."""
    cls = getattr(cls, "unconfigured", cls)
    key = (cls, count)
    if key not in _WITH_CONDITIONS:
        attributes = {"copies": 2 + count, "expand": RepeatBatch(2 + count), "uncond": FirstCopy(2 + count)}
        attributes["unconfigured"] = cls
        attributes["__module__"] = cls.__module__
        _WITH_CONDITIONS[key] = type(cls.__name__, (cls,), attributes)
    return _WITH_CONDITIONS[key]


class MultiConditionCFG(VanillaCFG):
    """Classifier-free guidance plus ``k`` extra conditions with their own scales, in one model call.

    Args:
        scale: the guidance scale of ``cond`` against ``uc``.
        other_scale: one scale per extra condition: ``D += other_scale_i (D_i - D_c)``.

    The call passes the extra conditions, in the order of ``other_scale``: ``sampler(..., other_c=[c_1, ...])``.
    Each is a conditioning dict with ``cond``'s keys; its ``vector``, ``crossattn`` and ``concat`` entries are
    stacked after ``[uc; c]``, and its other entries must equal ``cond``'s. The weights of the ``D_k`` sum to 1, so
    when each ``D_k`` is the exact denoiser of ``N(mu_k, s^2)``, ``D`` is the one of ``N(mu, s^2)``, ``mu`` the same
    combination of the ``mu_k``.
    """

    def __init__(self, scale: float, other_scale: Sequence[float] = ()):
        super().__init__(scale)
        if isinstance(other_scale, (str, bytes)) or not isinstance(other_scale, Sequence):
            raise TypeError(f"other_scale must be a list of numbers (one per extra condition), got {other_scale!r}")
        self.other_scale = tuple(checks.real(f"other_scale[{i}]", s) for i, s in enumerate(other_scale))
        self.other_c: tuple = ()
        # one cell per guider: every call (whatever its conditions) reuses it, so a compiled graph is reused too
        self.combine = (  # type: ignore[method-assign]  # a guider may set its combine per instance (Guider)
            MultiConditionCombine(self.other_scale) if self.other_scale else VanillaCFG.combine
        )

    def for_conditions(self, other_c: Sequence[Mapping]) -> MultiConditionCFG:
        """The guider for one call with the extra conditions ``other_c`` (one per ``other_scale``, in order)."""
        if isinstance(other_c, Mapping) or not isinstance(other_c, Sequence):
            raise TypeError(f"other_c must be a list of conditioning dicts, got {type(other_c).__name__}")
        if len(other_c) != len(self.other_scale):
            raise ValueError(
                f"{type(self).__name__}: other_c has {len(other_c)} condition(s) but other_scale "
                f"{list(self.other_scale)} has {len(self.other_scale)}; pass one condition per scale"
            )
        if not other_c:
            return self
        configured = copy.copy(self)
        configured.__class__ = _with_conditions(type(self), len(other_c))
        configured.other_c = tuple(other_c)
        return configured

    def check_inputs(self, cond, uc, batch_size: int) -> None:
        super().check_inputs(cond, uc, batch_size)
        if len(self.other_c) != len(self.other_scale):
            raise ValueError(
                f"{type(self).__name__}(other_scale={list(self.other_scale)}) needs one extra condition per scale: "
                "pass other_c=[c_1, ...] to the sampler call"
            )
        for i, extra in enumerate(self.other_c):
            name = f"other_c[{i}]"
            if not isinstance(extra, Mapping):
                raise TypeError(f"{name} must be a dict of conditioning tensors, got {type(extra).__name__}")
            if set(extra) != set(cond):
                raise ValueError(f"{name} must have cond's keys {sorted(cond)}, got {sorted(extra)}")
            _check_batched(name, extra, batch_size, self.batched_keys)
            for key in cond:
                if key not in self.batched_keys and not _same_value(cond[key], extra[key]):
                    raise ValueError(
                        f"{name}[{key!r}] and cond[{key!r}] differ, but only {', '.join(self.batched_keys)} may differ"
                    )

    def model_cond(self, cond, uc):
        def stacked(key):
            return ops.cat((uc[key], cond[key], *(extra[key] for extra in self.other_c)))

        return {k: stacked(k) if k in self.batched_keys else cond[k] for k in cond}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale}, other_scale={list(self.other_scale)})"


class PanGuNoDynamicThresholding:
    """mindone's ``PanGuNoDynamicThresholding``: in mindone the combination itself; here a marker that
    :class:`PanGuVanillaCFG` accepts (its combination is :class:`MultiConditionCombine`)."""

    def __repr__(self) -> str:
        return "PanGuNoDynamicThresholding()"


class PanGuVanillaCFG(MultiConditionCFG):
    """mindone's ``PanGuVanillaCFG(scale, dyn_thresh_config=None, other_scale=None)`` (PanGu-Draw v3):
    :class:`MultiConditionCFG` with mindone's signature. ``dyn_thresh_config`` may only name
    ``PanGuNoDynamicThresholding`` (mindone's default, and the only one PanGu ships)."""

    def __init__(self, scale: float, dyn_thresh_config=None, other_scale: Sequence[float] | None = None):
        if dyn_thresh_config is not None:
            thresholding = instantiate_from_config(dyn_thresh_config)
            if not isinstance(thresholding, PanGuNoDynamicThresholding):
                raise ConfigError(
                    f"PanGuVanillaCFG: dyn_thresh_config must be PanGuNoDynamicThresholding, got "
                    f"{type(thresholding).__name__}"
                )
        super().__init__(scale, () if other_scale is None else other_scale)
