"""PanGu-Draw v3's sampler as mindone calls it (``examples/pangu_draw_v3``): EDM Euler with two models and extra
conditions.

mindone's ``PanGuEulerEDMSampler`` (``gm/modules/diffusionmodules/sampler.py``) is sgm's ``EulerEDMSampler`` whose
call takes a second model, ``sampler(model, high_timestamp_model, x, cond=c, uc=uc, other_c=[...])``
(``PanGuDiffusionEngine.pangu_do_sample``): the "high timestamp" model runs the first step and every step that
follows a step whose noise level's timestep index was at or above 500; the base model runs the others. Its guider,
``PanGuVanillaCFG``, guides towards the extra conditions ``other_c`` with their own scales
(:class:`~edm_sampler.guiders.multi_condition.PanGuVanillaCFG`). Here the two models become an
:class:`~edm_sampler.experts.ExpertSwitch` and everything else is this package's Euler sampler.
"""

from __future__ import annotations

from typing import Any

from mindspore import Tensor

from .experts import ExpertSwitch
from .samplers.edm import EulerEDMSampler

# mindone's PanGuEDMSampler: ``if high_timestamp_model is not None and step_idx >= 500``, step_idx being the
# previous step's sigma_hat as a timestep index (1000 before the first step)
HIGH_TIMESTEP_BOUNDARY = 500


def pangu_experts(model: Any, high_timestamp_model: Any) -> ExpertSwitch:
    """PanGu-Draw v3's two models as an :class:`ExpertSwitch`: the high-timestep model for the first step and after
    every step whose noise level is at or above timestep index 500, the base model otherwise."""
    return ExpertSwitch(high_timestamp_model, model, HIGH_TIMESTEP_BOUNDARY, by="timestep", decide_on="previous")


class PanGuEulerEDMSampler(EulerEDMSampler):
    """mindone's ``PanGuEulerEDMSampler``: :class:`~edm_sampler.EulerEDMSampler` called as mindone's PanGu-Draw v3
    pipeline calls it, ``sampler(model, high_timestamp_model, x, cond=None, uc=None, other_c=None, num_steps=None,
    **kwargs)`` (``high_timestamp_model=None``: the base model only).

    The other keywords are the base sampler's (``generator``, ``model_kwargs``, mindone's call keywords...).
    ``img2img`` keeps the base signature: pass ``pangu_experts(model, high_timestamp_model)`` as its denoiser.
    Deviations from mindone: the timestep index comes from the base model's discrete levels, where mindone asks the
    model of the step (the two share PanGu's ``DiscreteDenoiser`` config, so the index is the same); and a
    non-None ``adapter_states`` reaches the model, which mindone's PanGu sampler drops (its step ignores ``**kwargs``).
    """

    # mindone's PanGu signature, not the base class's (two models before x): a deliberate override
    def __call__(  # type: ignore[override]
        self,
        model: Any,
        high_timestamp_model: Any,
        x: Tensor,
        cond: Any = None,
        uc: Any = None,
        other_c: Any = None,
        num_steps: int | None = None,
        **kwargs: Any,
    ) -> Tensor:
        denoiser = model if high_timestamp_model is None else pangu_experts(model, high_timestamp_model)
        return super().__call__(denoiser, x, cond, uc, num_steps, other_c=other_c, **kwargs)
