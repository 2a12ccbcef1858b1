"""Denoiser preconditionings: ``sigma -> (c_skip, c_out, c_in, c_noise)``.

``D(x, sigma) = c_skip * x + c_out * F(c_in * x, c_noise)``. The coefficients depend on sigma alone, and sigma is
known on the host, so they are computed there in float64 with NumPy: no device ops per model call, and the same bits
on every call (MindSpore CPU's ``log``/``rsqrt`` kernels were seen to return different float32 results for the same
input). Each scaling takes a Python float or NumPy array and returns four float64 arrays of its shape; given a
MindSpore Tensor (sgm's and mindone's calling convention) it returns four float32 Tensors instead.

A scaling's ``parametrization`` class attribute names the state its network works in (see
:mod:`edm_sampler.parametrization`): ``"ve"`` (``x = x0 + sigma eps``) for EDM, eps and v models, ``"flow"``
(``x = (1 - sigma) x0 + sigma eps``, sigma in (0, 1]) for the rectified-flow adapters (SD3, Flux, Wan), whose network
is called as ``net(x, sigma * multiplier, cond)`` (diffusers' and ComfyUI's timestep convention, multiplier 1000).
"""

from __future__ import annotations

import numpy as np

from mindspore import Tensor

from . import checks


class Scaling:
    """Base class: subclasses implement :meth:`coefficients` on float64 NumPy sigmas."""

    parametrization = "ve"  # the state the network works in; "flow" for the rectified-flow scalings

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


class FlowScaling(Scaling):
    """Base of the rectified-flow adapters: ``x = (1 - sigma) x0 + sigma eps``, the network called as
    ``net(x, sigma * multiplier, cond)`` (``c_in = 1``, ``c_noise = sigma * multiplier``)."""

    parametrization = "flow"

    def __init__(self, multiplier: float = 1000.0):
        self.multiplier = checks.real("multiplier", multiplier, positive=True)

    def timestep(self, sigma: np.ndarray) -> np.ndarray:
        """The network's timestep input, ``c_noise = sigma * multiplier``."""
        return sigma * self.multiplier


class FlowVelocityScaling(FlowScaling):
    """Velocity prediction ``v = eps - x0`` (SD3, Flux, Wan): ``D = x - sigma v``, i.e. ``c_skip = 1``,
    ``c_out = -sigma``, ``c_in = 1``, ``c_noise = sigma * multiplier``."""

    def coefficients(self, sigma):
        return np.ones_like(sigma), -sigma, np.ones_like(sigma), self.timestep(sigma)


class FlowX0Scaling(FlowScaling):
    """Data prediction in the flow state: ``D = net(x, sigma * multiplier)``, i.e. ``c_skip = 0``, ``c_out = 1``,
    ``c_in = 1``."""

    def coefficients(self, sigma):
        return np.zeros_like(sigma), np.ones_like(sigma), np.ones_like(sigma), self.timestep(sigma)


class FlowEpsScaling(FlowScaling):
    """Noise prediction in the flow state: ``D = (x - sigma eps) / (1 - sigma)``, i.e. ``c_skip = 1 / (1 - sigma)``,
    ``c_out = -sigma / (1 - sigma)``, ``c_in = 1``.

    At sigma = 1 the state is pure noise and carries nothing about x0, so an eps prediction cannot give D there:
    :meth:`coefficients` raises a ``ValueError`` for any sigma >= 1 (start the schedule below 1, e.g. at 0.999).
    """

    def coefficients(self, sigma):
        if np.any(sigma >= 1.0):
            raise ValueError(
                f"FlowEpsScaling: D = (x - sigma eps) / (1 - sigma) is undefined at sigma >= 1 (got sigma = "
                f"{float(np.max(sigma)):g}); an eps-prediction flow model cannot denoise pure noise, so start the "
                "schedule below 1 (e.g. sigma_max = 0.999) or use FlowVelocityScaling / FlowX0Scaling"
            )
        alpha = 1.0 - sigma
        return 1.0 / alpha, -sigma / alpha, np.ones_like(sigma), self.timestep(sigma)
