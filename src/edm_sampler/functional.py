"""The sampler tensor math, in one place. Sigmas and coefficients are Python floats; only x-shaped data is a Tensor."""

from __future__ import annotations

from mindspore import Tensor


def to_d(x: Tensor, sigma: float, denoised: Tensor) -> Tensor:
    """The probability-flow ODE derivative ``dx/dsigma = (x - D(x, sigma)) / sigma`` (Karras et al. eq. 3)."""
    return (x - denoised) * (1.0 / sigma)


def euler_step(x: Tensor, d: Tensor, dt: float) -> Tensor:
    """One explicit Euler step ``x + dt * d``."""
    return x + d * dt


def add_noise(x: Tensor, noise: Tensor, std: float) -> Tensor:
    """``x + std * noise``: raise the noise level of x (EDM churn, ancestral steps)."""
    return x + noise * std
