"""Host-side step coefficients shared by several samplers: the ``c`` entries that :mod:`edm_sampler.functional`'s
step helpers read. Python floats throughout; noise draws are made here, in the order the step uses them."""

from __future__ import annotations

from typing import Callable

from mindspore import Tensor

NoiseFn = Callable[[float, float], Tensor]


def renoising(a: float, std: float, draw: bool, noise: NoiseFn, sigma: float, sigma_next: float) -> dict:
    """``x <- a x + std z`` with ``z = noise(sigma, sigma_next)`` drawn only when ``draw`` (see
    :func:`edm_sampler.functional.renoise`)."""
    return {
        "rescale": a != 1.0,
        "a": a,
        "add": bool(draw),
        "noise": noise(sigma, sigma_next) if draw else None,
        "std": std,
    }


def no_renoising() -> dict:
    """:func:`renoising` that leaves x as it is (and draws nothing)."""
    return {"rescale": False, "a": 1.0, "add": False, "noise": None, "std": 0.0}


def euler(sigma: float, sigma_to: float) -> dict:
    """The Euler step from ``sigma`` to ``sigma_to`` (see :func:`edm_sampler.functional.euler_to`)."""
    return {"to_denoised": sigma_to == 0.0, "x_weight": sigma_to / sigma, "d_weight": (sigma - sigma_to) / sigma}
