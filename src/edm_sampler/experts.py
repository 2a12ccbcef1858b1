"""Expert switching: two denoisers and a boundary, one of them per step.

Some models come as two networks trained on different noise ranges: a high-noise expert for the first steps and a
low-noise one for the rest. PanGu-Draw v3 (mindone's ``PanGuEDMSampler``) runs its "high timestamp" model while the
timestep index is at or above 500; Wan 2.2 (diffusers' ``WanPipeline`` with ``boundary_ratio``) runs
``transformer`` while ``t >= boundary_ratio * 1000`` and ``transformer_2`` after, i.e. a flow sigma boundary.

:class:`ExpertSwitch` is passed to a sampler where a denoiser goes. The choice is made on the host, once per step,
from the step's first noise level (``sigma_hat`` after churn); every evaluation of that step (a Heun correction, a
midpoint) uses the same expert, as both references do. Each expert has its own model path (its graph-mode cell is
compiled once and cached on the bound denoiser), so graph mode runs the call step by step without recompiling;
``graph_loop=True`` (one graph for the whole call) holds one network and refuses an ExpertSwitch.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from mindspore import Tensor

from . import checks, parametrization
from .denoisers import DiscreteDenoiser, as_denoiser, sigma_on_host
from .model_path import ModelPath

BOUNDARY_KINDS = ("sigma", "timestep")
DECIDE_ON = ("current", "previous")


def _timestep_index(denoiser: Any) -> Callable[[float], int] | None:
    """The index of the discrete noise level nearest to a sigma, as the denoiser's own table gives it (a bound
    ``DiscreteDenoiser``, or a mindone engine's ``denoiser.sigma_to_idx``), or None for a continuous denoiser."""
    inner = getattr(denoiser, "denoiser", None)
    if isinstance(inner, DiscreteDenoiser):
        return lambda sigma: int(inner.sigma_to_idx(np.array([sigma], np.float64))[0])
    table = getattr(getattr(getattr(denoiser, "engine", None), "denoiser", None), "sigma_to_idx", None)
    if callable(table):  # mindone's DiscreteDenoiser: a Tensor in, a Tensor out
        return lambda sigma: int(np.asarray(table(Tensor(np.array([sigma], np.float32))).asnumpy()).reshape(-1)[0])
    return None


class ExpertSwitch:
    """The high-noise expert while the step's noise level is at or above ``boundary``, the low-noise one after.

    Args:
        high_noise: the denoiser of the high noise levels (anything a sampler accepts: ``Denoiser(...).bind(net)``, a
            mindone engine, a callable).
        low_noise: the denoiser of the low noise levels; it must declare the same parametrization as ``high_noise``.
        boundary: a sigma (``by="sigma"``; Wan 2.2: ``boundary_ratio`` as a flow sigma) or a discrete timestep index
            (``by="timestep"``; PanGu-Draw v3: 500, the index of the nearest of the denoiser's levels).
        by: ``"sigma"`` or ``"timestep"`` (needs a discrete denoiser: a bound ``DiscreteDenoiser`` or a mindone
            engine; the low-noise expert's table is used, else the high-noise one's).
        decide_on: ``"current"``: step ``i`` is decided by its own level (Wan 2.2, diffusers); ``"previous"``: by
            the level of step ``i - 1``, the first step always taking the high-noise expert (PanGu-Draw v3 in
            mindone, whose sampler computes the index after a step and uses it for the next one).

    Called directly, ``switch(x, sigma, cond)`` decides by the ``sigma`` it is given. One guider serves both experts
    (Wan 2.2's second guidance scale, diffusers' ``guidance_scale_2``, is not modelled).
    """

    def __init__(self, high_noise, low_noise, boundary: float, *, by: str = "sigma", decide_on: str = "current"):
        self.high_noise = as_denoiser(high_noise)
        self.low_noise = as_denoiser(low_noise)
        self.by = checks.choice("by", by, BOUNDARY_KINDS)
        self.decide_on = checks.choice("decide_on", decide_on, DECIDE_ON)
        self.boundary = checks.real("boundary", boundary, nonnegative=True)
        states = {parametrization.of(d).name for d in (self.high_noise, self.low_noise)}
        if len(states) > 1:
            raise ValueError(f"ExpertSwitch: the two experts must share a parametrization, got {sorted(states)}")
        self.parametrization = states.pop()
        self._index = None
        if self.by == "timestep":
            self._index = _timestep_index(self.low_noise) or _timestep_index(self.high_noise)
            if self._index is None:
                raise ValueError(
                    "ExpertSwitch(by='timestep') needs a discrete denoiser to turn sigma into a timestep index (a "
                    "bound DiscreteDenoiser or a mindone engine); give the boundary as a sigma with by='sigma'"
                )

    def is_high(self, level: float) -> bool:
        """Whether noise level ``level`` is at or above the boundary (the high-noise expert's range)."""
        value = level if self._index is None else self._index(level)
        return value >= self.boundary

    def __call__(self, x: Tensor, sigma: Any, cond: Any, **model_kwargs) -> Tensor:
        levels = sigma_on_host(sigma, x.shape[0])
        if np.any(levels != levels[0]):
            raise ValueError("ExpertSwitch: a direct call needs one noise level for the whole batch")
        expert = self.high_noise if self.is_high(float(levels[0])) else self.low_noise
        return expert(x, sigma, cond, **model_kwargs)

    def __repr__(self) -> str:
        return (
            f"ExpertSwitch(boundary={self.boundary:g}, by={self.by!r}, decide_on={self.decide_on!r}, "
            f"high_noise={self.high_noise!r}, low_noise={self.low_noise!r})"
        )


class SwitchingModelPath:
    """A sampling call's model path for an :class:`ExpertSwitch`: one :class:`~edm_sampler.model_path.ModelPath` per
    expert, the expert chosen at the first evaluation of each step. Built by ``SamplingRun``."""

    def __init__(self, switch: ExpertSwitch, guider, cond, uc, x_shape, model_kwargs: dict, max_sigma: float):
        self.switch = switch
        self.paths = {
            high: ModelPath(expert, guider, cond, uc, x_shape, model_kwargs, max_sigma)
            for high, expert in ((True, switch.high_noise), (False, switch.low_noise))
        }
        self.model_batch = self.paths[True].model_batch
        self.rows_at = self.paths[True].rows_at  # the experts share the guider: the same model batch at each level
        self.step: int | None = None
        self.high = True
        self.previous_level: float | None = None  # decide_on="previous": the last step's first level

    def __call__(self, x: Tensor, sigma: float, step: int, with_uncond: bool = False) -> Tensor | tuple:
        if step != self.step:  # the step's first evaluation decides for all of its evaluations
            self.step = step
            self.high = self._decide(sigma)
        return self.paths[self.high](x, sigma, step, with_uncond)

    def _decide(self, level: float) -> bool:
        if self.switch.decide_on == "current":
            return self.switch.is_high(level)
        high = True if self.previous_level is None else self.switch.is_high(self.previous_level)
        self.previous_level = level
        return high
