"""Guiders, one module per kind: the protocol and no guidance (:mod:`.base`), classifier-free guidance
(:mod:`.cfg`), the per-frame guidance of the video models (:mod:`.video`), several conditions with their own scales
(:mod:`.multi_condition`), and mindone's thresholding of the ``[uc; c]`` batch (:mod:`.mindone_thresholding`).
Guidance beyond plain CFG: APG (:mod:`.apg`), CFG-Zero* (:mod:`.cfg_zero_star`), and guiders around another one
(:mod:`.composition`): CFG rescale (:mod:`.rescale`), a guidance interval (:mod:`.interval`), a second scale below a
boundary (:mod:`.scale_switch`)."""

from .apg import APG
from .base import BATCHED_KEYS, Guider, IdentityGuider
from .cfg import DynamicThresholding, NoDynamicThresholding, VanillaCFG
from .cfg_zero_star import CFGZeroStar
from .composition import ConditionalOnly, GuiderWrapper, SampleItself
from .interval import GuidanceInterval
from .mindone_thresholding import MindoneDynamicThresholding
from .multi_condition import MultiConditionCFG, PanGuNoDynamicThresholding, PanGuVanillaCFG
from .rescale import CFGRescale
from .scale_switch import ScaleSwitch
from .video import (
    LinearPredictionGuider,
    SpatiotemporalPredictionGuider,
    TrapezoidPredictionGuider,
    TrianglePredictionGuider,
)
from .x0_limits import ClipX0, DynamicThresholdX0

__all__ = [
    "APG",
    "BATCHED_KEYS",
    "CFGRescale",
    "CFGZeroStar",
    "ConditionalOnly",
    "GuidanceInterval",
    "GuiderWrapper",
    "SampleItself",
    "ScaleSwitch",
    "ClipX0",
    "DynamicThresholdX0",
    "DynamicThresholding",
    "Guider",
    "IdentityGuider",
    "LinearPredictionGuider",
    "MindoneDynamicThresholding",
    "MultiConditionCFG",
    "NoDynamicThresholding",
    "PanGuNoDynamicThresholding",
    "PanGuVanillaCFG",
    "SpatiotemporalPredictionGuider",
    "TrapezoidPredictionGuider",
    "TrianglePredictionGuider",
    "VanillaCFG",
]
