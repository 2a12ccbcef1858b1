"""Denoiser preconditionings: ``sigma -> (c_skip, c_out, c_in, c_noise)``.

``D(x, sigma) = c_skip * x + c_out * F(c_in * x, c_noise)``. The coefficients depend on sigma alone, and sigma is
known on the host, so they are computed there in float64 with NumPy: no device ops per model call, and the same bits
on every call (MindSpore CPU's ``log``/``rsqrt`` kernels were seen to return different float32 results for the same
input). Each scaling takes a Python float or NumPy array and returns four float64 arrays of its shape; given a
MindSpore Tensor (sgm's and mindone's calling convention) it returns four float32 Tensors instead.
"""

from __future__ import annotations

import numpy as np

from mindspore import Tensor

from . import checks


class Scaling:
    """Base class: subclasses implement :meth:`coefficients` on float64 NumPy sigmas."""

    def coefficients(self, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(self, sigma):
        if isinstance(sigma, Tensor):
            host = sigma.asnumpy().astype(np.float64)
            return tuple(Tensor(c.astype(np.float32)) for c in self.coefficients(host))
        return self.coefficients(np.asarray(sigma, dtype=np.float64))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class EDMScaling(Scaling):
    """Karras et al. (2022) Table 1, with ``c_noise = ln(sigma) / 4``."""

    def __init__(self, sigma_data: float = 0.5):
        self.sigma_data = checks.real("sigma_data", sigma_data, positive=True)

    def coefficients(self, sigma):
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / np.sqrt(sigma**2 + sd2)
        c_in = 1.0 / np.sqrt(sigma**2 + sd2)
        c_noise = 0.25 * np.log(sigma)
        return c_skip, c_out, c_in, c_noise


class EpsScaling(Scaling):
    """Epsilon prediction (DDPM / Stable Diffusion): ``c_noise = sigma``, to be quantised by a DiscreteDenoiser."""

    def coefficients(self, sigma):
        return np.ones_like(sigma), -sigma, 1.0 / np.sqrt(sigma**2 + 1.0), sigma.copy()


class VScaling(Scaling):
    """v prediction (SD 2.x-768): ``c_skip = 1/(sigma^2+1)``, ``c_out = -sigma/sqrt(sigma^2+1)``."""

    def coefficients(self, sigma):
        c_skip = 1.0 / (sigma**2 + 1.0)
        c_out = -sigma / np.sqrt(sigma**2 + 1.0)
        c_in = 1.0 / np.sqrt(sigma**2 + 1.0)
        return c_skip, c_out, c_in, sigma.copy()


class VScalingWithEDMcNoise(VScaling):
    """v prediction with EDM's continuous ``c_noise = ln(sigma) / 4`` (Stable Video Diffusion)."""

    def coefficients(self, sigma):
        c_skip, c_out, c_in, _ = super().coefficients(sigma)
        return c_skip, c_out, c_in, 0.25 * np.log(sigma)
