"""Per-sample reductions over every non-batch axis, shaped to broadcast against the batch (graph-compilable)."""

from __future__ import annotations

from mindspore import ops


def _per_sample(values, reduced):
    return reduced.reshape((values.shape[0],) + (1,) * (values.ndim - 1))


def sample_sum(values):
    """The sum of each sample's elements, shape ``(B, 1, ...)``."""
    return _per_sample(values, values.reshape(values.shape[0], -1).sum(axis=1))


def sample_norm(values):
    """Each sample's L2 norm, shape ``(B, 1, ...)``."""
    return ops.sqrt(sample_sum(values * values))


def sample_std(values):
    """Each sample's standard deviation (the population one; the guiders use ratios of two, where Bessel's factor
    cancels), shape ``(B, 1, ...)``."""
    flat = values.reshape(values.shape[0], -1)
    centered = flat - flat.mean(axis=1, keep_dims=True)
    return _per_sample(values, ops.sqrt((centered * centered).mean(axis=1)))
