"""The sampler tensor math, in one place. Sigmas and coefficients are Python floats (0-d tensors inside the compiled
whole loop); only x-shaped data is a Tensor. Every function here runs eagerly and inside the compiled loop.

The ``c`` dicts are the step coefficients a sampler's ``plan`` builds with :mod:`edm_sampler.samplers.coefficients`.
"""

from __future__ import annotations

from mindspore import Tensor, mint

# The linear combinations use MindSpore's scalar-weighted kernels: ``mint.add(x, y, alpha=a)`` is one kernel where
# ``x + y * a`` is two (eagerly also a scalar tensor made per call: about a third of the cost in PyNative here), and it
# rounds once. They take the coefficient as a Python float eagerly and as a 0-d tensor inside the compiled loop, and
# give the same bits both ways. A per-sample coefficient (a ``(B, 1, ...)`` tensor) takes the plain expression.


def _scalar(a) -> bool:
    return not isinstance(a, Tensor) or a.ndim == 0


def scaled(x: Tensor, a) -> Tensor:
    """``a x``."""
    return mint.mul(x, a) if _scalar(a) else x * a


def axpy(x: Tensor, y: Tensor, a) -> Tensor:
    """``x + a y``."""
    return mint.add(x, y, alpha=a) if _scalar(a) else x + y * a


def axmy(x: Tensor, y: Tensor, a) -> Tensor:
    """``x - a y``."""
    return mint.sub(x, y, alpha=a) if _scalar(a) else x - y * a


def nonzero(a) -> bool:
    """False only for a Python float 0.0 (eagerly, a term it weights can be skipped); a 0-d tensor inside the
    compiled loop may be anything, so its term is always computed."""
    return not (isinstance(a, float) and a == 0.0)


def lincomb(*terms: tuple) -> Tensor:
    """``t_1 a_1 + t_2 a_2 + ...`` from ``(t, a)`` pairs: one kernel per term eagerly, where a term weighted by a
    Python float 0.0 is skipped (an Adams-Bashforth step's unused history) and a weight of 1.0 costs no product."""
    total = None
    for t, a in terms:
        if not nonzero(a):
            continue
        if total is None:
            total = t if isinstance(a, float) and a == 1.0 else scaled(t, a)
        else:
            total = axpy(total, t, a)
    return scaled(terms[0][0], 0.0) if total is None else total


def renoise(x: Tensor, c: dict) -> Tensor:
    """``a x + std z`` (churn, ancestral noise): ``c`` from :func:`~edm_sampler.samplers.coefficients.renoising`."""
    if c["rescale"]:
        x = scaled(x, c["a"])
    if c["add"]:
        x = axpy(x, c["noise"], c["std"])
    return x


def euler_to(x: Tensor, denoised: Tensor, c: dict) -> Tensor:
    """The Euler step ``x + (sigma_to - sigma) (x - D) / sigma``, written as the blend ``r x + (1 - r) D`` with
    ``r = sigma_to / sigma`` (one op fewer, and no cancellation of x against D: from a huge sigma, such as a zero-SNR
    level, ``x - D`` would lose D to x's rounding); to sigma 0 it is ``D`` itself. ``c`` from
    :func:`~edm_sampler.samplers.coefficients.euler`."""
    if c["to_denoised"]:
        x = denoised
    else:
        x = lincomb((x, c["x_weight"]), (denoised, c["d_weight"]))
    return x
