"""The gradient-estimation sampler of Permenter & Yuan 2024 ("Interpreting and Improving Diffusion Models from an
Optimization Perspective", ICML 2024, arXiv:2306.04848), as ComfyUI's ``sample_gradient_estimation``.

The paper reads DDIM as gradient descent on the distance to the data manifold, ``d_i = (x_i - D_i) / sigma_i`` being
the gradient, and improves the step by estimating the gradient from the last two (its Algorithm 2)::

    x_{i+1} = x_i + (sigma_{i+1} - sigma_i) (gamma d_i + (1 - gamma) d_{i-1})

with ``gamma = 2`` by default (the first step is Euler: there is no ``d_{-1}``; the step to sigma = 0 returns ``D``).
It is first order in general (``gamma = 1.5`` on uniform steps is second-order Adams-Bashforth); the paper's point is
the denoiser's error, not the truncation order. ``d`` is ``dx/dsigma`` for flow models too (the velocity), so the
method is the same for both (ComfyUI's behaviour; the paper states it for VE models).
"""

from __future__ import annotations

import numpy as np

from ..functional import axpy, euler_to, scaled
from ..parametrization import Parametrization
from . import coefficients, options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs


class GradientEstimationSampler(BaseDiffusionSampler):
    """Gradient estimation (Permenter & Yuan 2024; ComfyUI ``sample_gradient_estimation``). NFE = N, deterministic.

    The Euler step ``x + (sigma_{i+1} - sigma_i) d_i`` plus, from the second step on, ``(ge_gamma - 1) (sigma_{i+1} -
    sigma_i) (d_i - d_{i-1})``. The plan's coefficients do not depend on which data estimate makes ``d``, so a CFG++
    variant can reuse it. (ComfyUI's node limits ``gamma`` to [2, 5]; any ``ge_gamma >= 0`` is accepted here.)
    """

    ge_gamma = options.real(2.0, nonnegative=True, doc="the weight of the newest gradient (1: Euler)")
    history = 1  # the previous gradient d

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            correct = i > 0 and sigma_next > 0.0
            yield {
                "at": Level(sigma),
                "inv_sigma": 1.0 / sigma,
                "euler": coefficients.euler(sigma, sigma_next),
                "correct": correct,
                "w_corr": (self.ge_gamma - 1.0) * (sigma_next - sigma) if correct else 0.0,
            }

    @staticmethod
    def step(m, x, state, c):
        (old_d,) = state
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        return gradient_estimation_update(x, denoised, old_d, c)


def gradient_estimation_update(x, denoised, old_d, c):
    """The Euler step with the gradient-estimation correction ``(gamma - 1) (d - d_prev) dt``: ``(x_next, (d,))``
    (also its CFG++ twin's)."""
    d = scaled(x - denoised, c["inv_sigma"])
    x = euler_to(x, denoised, c["euler"])
    if c["correct"]:
        x = axpy(x, d - old_d, c["w_corr"])
    return x, (d,)
