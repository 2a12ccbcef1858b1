"""Guiders, one module per kind: the protocol and no guidance (:mod:`.base`), classifier-free guidance
(:mod:`.cfg`), the per-frame guidance of the video models (:mod:`.video`), several conditions with their own scales
(:mod:`.multi_condition`), and mindone's thresholding of the ``[uc; c]`` batch (:mod:`.mindone_thresholding`)."""

from .base import BATCHED_KEYS, Guider, IdentityGuider
from .cfg import DynamicThresholding, NoDynamicThresholding, VanillaCFG
from .mindone_thresholding import MindoneDynamicThresholding
from .multi_condition import MultiConditionCFG, PanGuNoDynamicThresholding, PanGuVanillaCFG
from .video import (
    LinearPredictionGuider,
    SpatiotemporalPredictionGuider,
    TrapezoidPredictionGuider,
    TrianglePredictionGuider,
)
from .x0_limits import ClipX0, DynamicThresholdX0

__all__ = [
    "BATCHED_KEYS",
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
