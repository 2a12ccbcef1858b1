"""Denoiser preconditionings: ``sigma -> (c_skip, c_out, c_in, c_noise)``.

``D(x, sigma) = c_skip * x + c_out * F(c_in * x, c_noise)``. Each scaling maps a float32 sigma Tensor to four Tensors
of the same shape, using only elementwise ops that exist on CPU, GPU and Ascend.
"""

from __future__ import annotations

from mindspore import Tensor, ops

from . import checks


class EDMScaling:
    """Karras et al. (2022) Table 1, with ``c_noise = ln(sigma) / 4``."""

    def __init__(self, sigma_data: float = 0.5):
        self.sigma_data = checks.real("sigma_data", sigma_data, positive=True)

    def __call__(self, sigma: Tensor):
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data * ops.rsqrt(sigma**2 + sd2)
        c_in = ops.rsqrt(sigma**2 + sd2)
        c_noise = 0.25 * ops.log(sigma)
        return c_skip, c_out, c_in, c_noise


class EpsScaling:
    """Epsilon prediction (DDPM / Stable Diffusion): ``c_noise = sigma``, to be quantised by a DiscreteDenoiser."""

    def __call__(self, sigma: Tensor):
        c_skip = ops.ones_like(sigma)
        c_out = -sigma
        c_in = ops.rsqrt(sigma**2 + 1.0)
        c_noise = sigma.copy()
        return c_skip, c_out, c_in, c_noise


class VScaling:
    """v prediction (SD 2.x-768): ``c_skip = 1/(sigma^2+1)``, ``c_out = -sigma/sqrt(sigma^2+1)``."""

    def __call__(self, sigma: Tensor):
        c_skip = 1.0 / (sigma**2 + 1.0)
        c_out = -sigma * ops.rsqrt(sigma**2 + 1.0)
        c_in = ops.rsqrt(sigma**2 + 1.0)
        c_noise = sigma.copy()
        return c_skip, c_out, c_in, c_noise


class VScalingWithEDMcNoise(VScaling):
    """v prediction with EDM's continuous ``c_noise = ln(sigma) / 4`` (Stable Video Diffusion)."""

    def __call__(self, sigma: Tensor):
        c_skip, c_out, c_in, _ = super().__call__(sigma)
        return c_skip, c_out, c_in, 0.25 * ops.log(sigma)
