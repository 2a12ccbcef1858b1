"""The sampler tensor math, in one place. Sigmas and coefficients are Python floats (0-d tensors inside the compiled
whole loop); only x-shaped data is a Tensor. Every function here runs eagerly and inside the compiled loop.

The ``c`` dicts are the step coefficients a sampler's ``plan`` builds with :mod:`edm_sampler.samplers.coefficients`.
"""

from __future__ import annotations

from mindspore import Tensor


def renoise(x: Tensor, c: dict) -> Tensor:
    """``a x + std z`` (churn, ancestral noise): ``c`` from :func:`~edm_sampler.samplers.coefficients.renoising`."""
    if c["rescale"]:
        x = x * c["a"]
    if c["add"]:
        x = x + c["noise"] * c["std"]
    return x


def euler_to(x: Tensor, denoised: Tensor, c: dict) -> Tensor:
    """The Euler step ``x + (sigma_to - sigma) (x - D) / sigma``, written as the blend ``r x + (1 - r) D`` with
    ``r = sigma_to / sigma`` (one op fewer, and no cancellation of x against D: from a huge sigma, such as a zero-SNR
    level, ``x - D`` would lose D to x's rounding); to sigma 0 it is ``D`` itself. ``c`` from
    :func:`~edm_sampler.samplers.coefficients.euler`."""
    if c["to_denoised"]:
        x = denoised
    else:
        x = x * c["x_weight"] + denoised * c["d_weight"]
    return x
