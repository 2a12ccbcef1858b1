"""A second guidance scale below a noise-level boundary: Wan 2.2's ``guidance_scale`` / ``guidance_scale_2``.

diffusers' ``WanPipeline`` (Wan 2.2 A14B) uses ``guidance_scale`` while the timestep ``t >= boundary_ratio *
num_train_timesteps`` (its high-noise expert's range) and ``guidance_scale_2`` after; with the flow timestep ``t =
1000 sigma`` that is ``sigma >= boundary_ratio``. :class:`ScaleSwitch` keeps the inner guider's scale at or above
``boundary`` (a sigma, the convention of :class:`~edm_sampler.ExpertSwitch` with ``by="sigma"``) and uses ``scale_2``
below it.
"""

from __future__ import annotations

from .. import checks
from .composition import GuiderWrapper, broadcast_scale, built_guider


class ScaleSwitch(GuiderWrapper):
    """The inner guider with its scale at noise levels ``>= boundary`` and ``scale_2`` below.

    Args:
        guider_config: the guider (a config or an instance); its own scale applies at high noise.
        scale_2: the scale below the boundary (Wan 2.2's ``guidance_scale_2``).
        boundary: the sigma at and above which the inner scale applies (Wan 2.2: ``boundary_ratio``, e.g. 0.875).

    Each evaluation is decided by its own noise level. ExpertSwitch decides once per step, from the step's first
    level; with one evaluation per step (Wan's UniPC and Euler) both agree, while a Heun step straddling the boundary
    guides its second evaluation with ``scale_2`` here. A boundary given as a timestep index of a discrete model is
    not supported: pass the sigma of that index (``DiscreteDenoiser.idx_to_sigma``).
    """

    def __init__(self, guider_config, scale_2: float, boundary: float):
        self.scale_2 = checks.real("scale_2", scale_2)
        self.boundary = checks.real("boundary", boundary, nonnegative=True)
        self._adopt(built_guider("scale_switch", guider_config))

    def scale_at(self, sigma: float, x_shape: tuple[int, ...]):
        scale = self.inner.scale_at(sigma, x_shape)
        return scale if sigma >= self.boundary else broadcast_scale(self.scale_2, scale)

    def __repr__(self) -> str:
        return f"ScaleSwitch(scale_2={self.scale_2}, boundary={self.boundary}, guider={self.inner!r})"
