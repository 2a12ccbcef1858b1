"""Guiders, one module per kind: the protocol and no guidance (:mod:`.base`), classifier-free guidance
(:mod:`.cfg`), and the per-frame guidance of the video models (:mod:`.video`)."""

from .base import BATCHED_KEYS, Guider, IdentityGuider
from .cfg import DynamicThresholding, NoDynamicThresholding, VanillaCFG
from .video import (
    LinearPredictionGuider,
    SpatiotemporalPredictionGuider,
    TrapezoidPredictionGuider,
    TrianglePredictionGuider,
)

__all__ = [
    "BATCHED_KEYS",
    "DynamicThresholding",
    "Guider",
    "IdentityGuider",
    "LinearPredictionGuider",
    "NoDynamicThresholding",
    "SpatiotemporalPredictionGuider",
    "TrapezoidPredictionGuider",
    "TrianglePredictionGuider",
    "VanillaCFG",
]
