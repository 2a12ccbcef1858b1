"""RES, the second-order exponential multistep method of Zhang, Song & Chen 2023 ("Improved Order Analysis and Design
of Exponential Integrator for Diffusion Models Sampling", arXiv:2308.02157), as ComfyUI's ``res_multistep`` and
``res_multistep_ancestral`` (``comfy/k_diffusion/sampling.py::res_multistep``), for VE and flow models.

In the half-log-SNR ``lambda = log(alpha / sigma)`` the data-prediction ODE is solved exactly for a data estimate that
is linear in lambda through the current estimate ``D_i`` and the previous one ``D_{i-1}``. With the step ``h =
lambda(sigma_down) - lambda(sigma_i)`` and the previous node at ``c2 = -h_prev / h`` (in units of ``h``)::

    x <- (sigma_down / sigma_i) x + alpha_down h (b1 D_i + b2 D_{i-1}),
    b2 = phi_2(-h) / c2,  b1 = phi_1(-h) - b2,  phi_1(z) = (e^z - 1) / z,  phi_2(z) = (phi_1(z) - 1) / z

(the paper's "RES 2nd-order multistep"; ``alpha = 1`` and ``sigma_down / sigma_i = e^-h`` for VE models). The first
step, and the step to sigma = 0, are Euler steps (the step to 0 returns ``D``); so is a flow model's step from sigma
= 1 (``h = inf``), which leaves no history for the next step. The ancestral variant steps to ``sigma_down`` and adds
noise up to ``sigma_next`` (:meth:`~edm_sampler.parametrization.Parametrization.ancestral_step`).

Deviations from ComfyUI, each in one line:

* flow models step in the flow half-log-SNR ``log((1 - sigma) / sigma)`` with ``alpha_down`` (the paper's exponential
  integrator); ComfyUI's ``res_multistep`` uses ``-log(sigma)`` and ``alpha = 1`` whatever the model (same VE numbers);
* flow models use the rectified-flow ancestral split (as the library's other ancestral samplers and ComfyUI's
  ``euler_ancestral``); ComfyUI's ``res_multistep_ancestral`` uses k-diffusion's VE split on every model;
* noise is drawn only on steps that add it (ComfyUI draws on every step but the last, also with ``eta = 0``).

As in ComfyUI, ``h_prev`` is the previous step's own length (to its ``sigma_down``), so with ``eta > 0`` the previous
node sits at ``-h_prev / h`` rather than at ``lambda(sigma_{i-1})``: a choice of ComfyUI's that the paper (ODE only)
does not make.
"""

from __future__ import annotations

import math

import numpy as np

from ..functional import euler_to, lincomb, renoise
from ..parametrization import Parametrization
from . import coefficients, options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs


def res_weights(h: float, h_prev: float) -> tuple[float, float]:
    """``(h b1, h b2)``: the weights of ``D_i`` and ``D_{i-1}`` in RES's second-order step of length ``h`` whose
    previous node is ``h_prev`` behind (before the factor ``alpha_down``). They sum to ``1 - e^-h``."""
    phi_1 = -math.expm1(-h) / h  # phi_1(-h)
    phi_2 = (1.0 - phi_1) / h  # phi_2(-h) = (phi_1(-h) - 1) / (-h)
    b2 = phi_2 / (-h_prev / h)
    return h * (phi_1 - b2), h * b2


class ResMultistepSampler(BaseDiffusionSampler):
    """RES second-order multistep (arXiv:2308.02157; ComfyUI ``sample_res_multistep``). NFE = N, deterministic.

    See the module docstring for the step. The plan keeps the weights of the data estimates (``w_new``, ``w_old``)
    apart from the choice of estimate, so a CFG++ variant can reuse it with the unconditional one.
    """

    history = 1  # the previous data estimate
    eta = 0.0  # no ancestral noise (:class:`ResMultistepAncestralSampler` declares eta and s_noise)
    s_noise = 1.0

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        h_prev: float | None = None  # the previous step's h; None: no usable previous estimate
        for sigma, sigma_next in pairs(sigmas):
            sigma_down, a, sigma_up = p.ancestral_step(sigma, sigma_next, self.eta)
            draw = sigma_up != 0.0 and self.s_noise != 0.0
            h = p.lambda_step(sigma, sigma_down) if sigma_down > 0.0 else math.inf
            multistep = h_prev is not None and not math.isinf(h)
            c = {
                "at": Level(sigma),
                "multistep": multistep,
                "down": coefficients.euler(sigma, sigma_down),
                "x_weight": sigma_down / sigma,
                "w_new": 0.0,
                "w_old": 0.0,
                "up": coefficients.renoising(a, self.s_noise * sigma_up, draw, noise, sigma, sigma_next),
            }
            if multistep:
                assert h_prev is not None  # multistep needs it
                w_new, w_old = res_weights(h, h_prev)
                alpha_down = p.alpha(sigma_down)
                c["w_new"], c["w_old"] = alpha_down * w_new, alpha_down * w_old
            yield c
            h_prev = None if math.isinf(h) else h

    @staticmethod
    def step(m, x, state, c):
        (old_denoised,) = state
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        return renoise(res_multistep_update(x, denoised, old_denoised, c), c["up"]), (denoised,)


def res_multistep_update(x, denoised, old_denoised, c):
    """The RES multistep update before its ancestral noise (also its CFG++ twins')."""
    if c["multistep"]:
        return lincomb((x, c["x_weight"]), (denoised, c["w_new"]), (old_denoised, c["w_old"]))
    return euler_to(x, denoised, c["down"])


class ResMultistepAncestralSampler(ResMultistepSampler):
    """RES multistep with ancestral noise (ComfyUI ``sample_res_multistep_ancestral``). NFE = N.

    Each step is :class:`ResMultistepSampler`'s to ``sigma_down``, then fresh noise of std ``s_noise * sigma_up``
    brings x to ``sigma_next``; ``eta = 0`` is :class:`ResMultistepSampler` exactly.
    """

    eta = options.real(1.0, nonnegative=True)
    s_noise = options.real(1.0, nonnegative=True)
