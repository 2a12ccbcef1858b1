"""Adams-Bashforth on the probability-flow ODE ``dx/dsigma = (x - D) / sigma``: ComfyUI's ``ipndm`` (fixed-step
weights) and ``ipndm_v`` (variable-step weights), both from zju-pi/diff-sampler."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import checks
from ..functional import axpy, nonzero, scaled
from ..parametrization import Parametrization
from . import options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs
from .multistep import lms_coefficients
from .pndm import AB_WEIGHTS

MAX_ORDER = 4


def _max_order(name: str, value: Any) -> int:
    value = checks.integer(name, value, minimum=1)
    if value > MAX_ORDER:
        raise ValueError(f"{name} must be 1, 2, 3 or 4, got {value}")
    return value


@functools.lru_cache(maxsize=32)
def _variable_step_table(sigmas: tuple[float, ...], order: int) -> tuple[tuple[float, ...], ...]:
    """Every step's variable-step Adams-Bashforth weights (:func:`lms_coefficients`), cached per schedule."""
    array = np.asarray(sigmas, dtype=np.float64)
    return tuple(tuple(float(w) for w in lms_coefficients(array, i, order)) for i in range(len(sigmas) - 1))


class _AdamsSampler(BaseDiffusionSampler):
    """One evaluation per step: ``d_i = (x_i - D_i) / sigma_i``, then ``x_{i+1} = x_i + sum_j w_j d_{i-j}`` over the
    last ``min(max_order, i + 1)`` slopes (the warm-up uses what it has, so its first, Euler, step bounds the order in
    the end: that shows under flow from sigma near 1, where the trajectory is curved, not from VE's sigma 20 or 80);
    the step to sigma = 0 returns ``D_i`` (ComfyUI's denoising step). NFE = N. The same steps for VE and flow models:
    ``(x - D) / sigma`` is ``dx/dsigma`` of both."""

    max_order = options.Option(4, _max_order, "the most slopes a step combines: 1 to 4")

    @property
    def history(self) -> int:  # the previous slopes, newest first
        return self.max_order - 1

    def weights(self, sigmas: np.ndarray, i: int, order: int) -> list[float]:
        """Step ``i``'s weights on ``d_i, d_{i-1}, ...`` (``order`` of them), the step length included."""
        raise NotImplementedError

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            last = sigma_next == 0.0
            order = min(self.max_order, i + 1)
            weights = [0.0] * MAX_ORDER if last else self.weights(sigmas, i, order) + [0.0] * (MAX_ORDER - order)
            yield {"at": Level(sigma), "inv_sigma": 1.0 / sigma, "last": last, "weights": tuple(weights)}

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        d = scaled(x - denoised, c["inv_sigma"])
        w = c["weights"]
        if c["last"]:
            x = denoised
        else:
            x = axpy(x, d, w[0])
            for j in range(len(state)):
                if nonzero(w[j + 1]):  # a start-up step's unused history
                    x = axpy(x, state[j], w[j + 1])
        return x, ((d,) + state)[: len(state)]


class IPNDMFixedStepSampler(_AdamsSampler):
    """iPNDM (ComfyUI ``sample_ipndm``; zju-pi/diff-sampler's ``ipndm_sampler``; Zhang & Chen 2022, arXiv 2204.13902,
    "improved PNDM"): Adams-Bashforth with the uniform-step weights, ``(3 d_i - d_{i-1}) / 2``, ``(23 d_i - 16 d_{i-1}
    + 5 d_{i-2}) / 12``, ``(55 d_i - 59 d_{i-1} + 37 d_{i-2} - 9 d_{i-3}) / 24``, times ``sigma_{i+1} - sigma_i``,
    whatever the spacing. Order up to ``max_order`` on steps uniform in sigma, 2 on other smooth schedules (the weights
    ignore the step ratios). NFE = N.

    This is not diffusers' ``IPNDMScheduler`` (``diffusers_ipndm``, :class:`~edm_sampler.IPNDMSampler`), which steps
    on its own sin/cos schedule. ComfyUI's ``max_order=1`` fails on its history buffer; here it is Euler."""

    def weights(self, sigmas: np.ndarray, i: int, order: int) -> list[float]:
        dt = float(sigmas[i + 1]) - float(sigmas[i])
        return [w * dt for w in AB_WEIGHTS[order][:order]]


class IPNDMVariableStepSampler(_AdamsSampler):
    """iPNDM-v, the variable-step Adams-Bashforth method (ComfyUI ``sample_ipndm_v``; zju-pi/diff-sampler's
    ``ipndm_v_sampler``): weight ``j`` is the exact integral over ``[sigma_i, sigma_{i+1}]`` of the Lagrange basis
    polynomial through the last ``min(max_order, i + 1)`` sigmas (:func:`~edm_sampler.samplers.multistep.
    lms_coefficients`, k-diffusion's LMS weights), so the order is up to ``max_order`` on any smooth schedule. NFE = N.

    Deviation from ComfyUI (this follows the method zju-pi's docstring names, the variable-step Adams-Bashforth):
    zju-pi's closed-form weights, which ComfyUI copies, are these at orders 1 and 2 and, at order 3, on uniform steps
    only; at order 4 they are ``(57, -65, 43, -11) / 24`` on uniform steps (third order; Adams-Bashforth's are ``(55,
    -59, 37, -9) / 24``) and elsewhere sum to the step only when the step ratio is constant, so on the Karras schedule
    ``max_order=4`` is at best second order there (measured 1.6 at 128-256 steps, 3.8 here). With ``max_order <= 2``,
    or 3 on uniform steps, the numbers are ComfyUI's.
    """

    def weights(self, sigmas: np.ndarray, i: int, order: int) -> list[float]:
        return list(_variable_step_table(tuple(float(s) for s in sigmas), self.max_order)[i])
