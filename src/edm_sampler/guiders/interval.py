"""Guidance in a limited interval of noise levels (Kynkäänniemi et al. 2024, "Applying Guidance in a Limited Interval
Improves Sample and Distribution Quality in Diffusion Models").

The inner guider guides the evaluations at ``sigma_lo < sigma <= sigma_hi``; every other evaluation runs the
conditional model alone: the unconditional branch is not evaluated, so the model batch there is the sample batch,
not ``[uc; c]`` (``sampler.last_model_rows`` counts the rows the model saw). The paper's SDXL interval is
``(0.28, 5.42]``. ComfyUI has no node for it (its nearest, ``ConditioningSetTimestepRange``, gates one condition);
diffusers' guiders gate by a fraction of the steps (``start``, ``stop``), not by sigma.
"""

from __future__ import annotations

from .. import checks
from .base import Guider
from .composition import ConditionalOnly, GuiderWrapper, built_guider


class GuidanceInterval(GuiderWrapper):
    """``guider_config``'s guidance for ``sigma_lo < sigma <= sigma_hi``, the conditional model alone elsewhere.

    Args:
        sigma_lo: the interval's low end, excluded (``0 <= sigma_lo < sigma_hi``).
        sigma_hi: the interval's high end, included (may be ``inf``).
        guider_config: the guider inside the interval (a config or an instance): ``vanilla_cfg``, ``apg``,
            ``cfg_rescale``, ...

    Each evaluation is decided by its own noise level: a Heun step that straddles an end guides one of its two
    evaluations (a loop that decides once per step, from the step's first level, guides both or neither).
    """

    def __init__(self, sigma_lo: float, sigma_hi: float, guider_config):
        self.sigma_lo = checks.real("sigma_lo", sigma_lo, nonnegative=True)
        self.sigma_hi = checks.real("sigma_hi", sigma_hi, positive=True, finite=False)
        if self.sigma_lo >= self.sigma_hi:
            raise ValueError(f"sigma_lo must be below sigma_hi, got sigma_lo={sigma_lo!r} >= sigma_hi={sigma_hi!r}")
        self._adopt(built_guider("guidance_interval", guider_config))

    def _set_variants(self, inner: Guider) -> None:
        self.outside = ConditionalOnly(inner)
        self._leaves = (*inner.variants(), self.outside)  # the inner guider's variants inside, its cond alone outside

    def inside(self, sigma: float) -> bool:
        """Whether the evaluation at ``sigma`` is guided."""
        return self.sigma_lo < sigma <= self.sigma_hi

    def at(self, sigma: float, step: int) -> Guider:
        return self.inner.at(sigma, step) if self.inside(sigma) else self.outside

    def __repr__(self) -> str:
        return f"GuidanceInterval(sigma_lo={self.sigma_lo}, sigma_hi={self.sigma_hi}, guider={self.inner!r})"
