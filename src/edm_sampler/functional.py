"""The sampler tensor math, in one place. Sigmas and coefficients are Python floats (0-d tensors inside the compiled
whole loop); only x-shaped data is a Tensor. Every function here runs eagerly and inside the compiled loop.

The ``c`` dicts are the step coefficients a sampler's ``plan`` builds with :mod:`edm_sampler.samplers.coefficients`.
"""

from __future__ import annotations

from mindspore import Tensor


def to_d(x: Tensor, sigma: float, denoised: Tensor) -> Tensor:
    """The probability-flow ODE derivative ``dx/dsigma = (x - D(x, sigma)) / sigma`` (Karras et al. eq. 3; for a
    flow model it is the velocity)."""
    return (x - denoised) * (1.0 / sigma)


def euler_step(x: Tensor, d: Tensor, dt: float) -> Tensor:
    """One explicit Euler step ``x + dt * d``."""
    return x + d * dt


def add_noise(x: Tensor, noise: Tensor, std: float) -> Tensor:
    """``x + std * noise``: raise the noise level of x (EDM churn, ancestral steps)."""
    return x + noise * std


def renoise(x: Tensor, c: dict) -> Tensor:
    """``a x + std z`` (churn, ancestral noise): ``c`` from :func:`~edm_sampler.samplers.coefficients.renoising`."""
    if c["rescale"]:
        x = x * c["a"]
    if c["add"]:
        x = x + c["noise"] * c["std"]
    return x


def euler_to(x: Tensor, denoised: Tensor, c: dict) -> Tensor:
    """The Euler step ``x + (sigma_to - sigma) (x - D) / sigma``; to sigma 0 it is ``D`` itself (computed, it would lose
    D's low bits to cancellation against x). ``c`` from :func:`~edm_sampler.samplers.coefficients.euler`."""
    if c["to_denoised"]:
        x = denoised
    else:
        x = x + (x - denoised) * c["inv_sigma"] * c["dt"]
    return x
