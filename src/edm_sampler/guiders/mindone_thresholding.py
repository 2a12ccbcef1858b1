"""mindone's dynamic thresholding: Imagen's per-sample clamp, applied to the model's ``[uc; c]`` batch before CFG.

mindone's gm port (``gm/modules/diffusionmodules/sampling_utils.py``, and the sgm copy of its SV3D example) replaced
sgm's early ``DynamicThresholding`` (a rescale of the guided result, :class:`~edm_sampler.guiders.cfg.
DynamicThresholding`) by the dynamic thresholding of Saharia et al. 2022 (Imagen), under the same name, and its
``VanillaCFG.__call__`` thresholds the stacked batch before it combines it: ``x = dyn_thresh(x); x_u, x_c =
x.chunk(2); x_u + scale (x_c - x_u)``. SDXL's ``init_sampling(thresholding=True)`` configures it.
"""

from __future__ import annotations

from mindspore import nn

from .x0_limits import DynamicThresholdX0


class ThresholdThenCombine(nn.Cell):
    """``combine(threshold(denoised), scale)``: a guider's combination after a per-sample threshold of every row of
    the model's batch (a cell, so graph mode compiles both with the network)."""

    def __init__(self, threshold: nn.Cell, combine):
        super().__init__()
        self.threshold = threshold
        self.combine = combine

    def construct(self, denoised, scale):
        return self.combine(self.threshold(denoised), scale)


class ThresholdThenUncond(nn.Cell):
    """``uncond(threshold(denoised))``: the unconditional estimate of a thresholded batch (what CFG combined)."""

    def __init__(self, threshold: nn.Cell, uncond):
        super().__init__()
        self.threshold = threshold
        self.uncond = uncond

    def construct(self, denoised):
        return self.uncond(self.threshold(denoised))


class MindoneDynamicThresholding:
    """mindone's ``DynamicThresholding(dynamic_thresholding_ratio=0.995, sample_max_value=1.0)``, a
    ``dyn_thresh_config`` of :class:`~edm_sampler.VanillaCFG` (named ``gm.modules.diffusionmodules.sampling_utils.
    DynamicThresholding`` in configs; the sgm path keeps sgm's rescale).

    Per sample of the model's batch ``[uc; c]``: ``s`` = the ``dynamic_thresholding_ratio`` quantile of ``|D|`` over
    all its channels and pixels (linear interpolation, as ``numpy.quantile``), clamped to ``[1,
    sample_max_value]``; ``D <- clamp(D, -s, s) / s``. CFG then combines the thresholded estimates; the guided result
    itself is not thresholded (diffusers' ``thresholding=True`` clamps the guided x0 instead: see
    :mod:`edm_sampler.guiders.x0_limits`). mindone computes the quantile on the host with NumPy; here it is a sort on
    the device (float32; the same order statistics and weights), so it compiles with the network.
    """

    def __init__(self, dynamic_thresholding_ratio: float = 0.995, sample_max_value: float = 1.0):
        self.threshold = DynamicThresholdX0(dynamic_thresholding_ratio, sample_max_value)
        self.dynamic_thresholding_ratio = self.threshold.ratio
        self.sample_max_value = self.threshold.max_value

    def before(self, combine) -> ThresholdThenCombine:
        """``combine`` (a guider's ``combine(denoised, scale)``) applied to the thresholded model batch."""
        return ThresholdThenCombine(self.threshold, combine)

    def before_uncond(self, uncond) -> ThresholdThenUncond:
        """``uncond`` (a guider's ``uncond(denoised)``) applied to the thresholded model batch."""
        return ThresholdThenUncond(self.threshold, uncond)

    def __call__(self, denoised):
        """mindone's protocol: the thresholded batch (every row on its own)."""
        return self.threshold(denoised)

    def __repr__(self) -> str:
        return (
            f"MindoneDynamicThresholding(dynamic_thresholding_ratio={self.dynamic_thresholding_ratio}, "
            f"sample_max_value={self.sample_max_value})"
        )
