"""Multistep samplers: each step reuses the model outputs of the steps before it (one evaluation per step)."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from mindspore import Tensor

from .. import checks
from ..functional import euler_step, to_d
from ..run import SamplingRun
from .base import BaseDiffusionSampler


class DPMPP2MSampler(BaseDiffusionSampler):
    """DPM-Solver++(2M) (Lu et al. 2022; k-diffusion ``sample_dpmpp_2m``; sgm's ``DPMPP2MSampler``). NFE = N.

    With the step in half-log-SNR ``h = lambda_{i+1} - lambda_i`` (``lambda = log(alpha / sigma)``; ``log(sigma_i /
    sigma_{i+1})`` for VE) the step is ``x <- (sigma_{i+1}/sigma_i) x - alpha_{i+1} expm1(-h) D'`` where ``D'``
    extrapolates the data estimate from the previous one (``r = h_{i-1} / h``):
    ``D' = (1 + 1/(2r)) D_i - (1/(2r)) D_{i-1}``; the first step uses ``D' = D_0``, and so does the step after a flow
    model's step from sigma = 1 (``h = inf`` there, which leaves nothing to extrapolate from). The last step, to
    sigma = 0, returns the data estimate itself (sgm reaches it through ``-log 0 = inf``; here it is explicit).
    """

    def sample(self, run: SamplingRun, x: Tensor) -> Tensor:
        p = run.param
        old_denoised, h_last = None, None
        for _, sigma, sigma_next in run.steps():
            denoised = run.denoise(x, sigma)
            run.report(x, sigma, sigma, denoised)
            if sigma_next == 0.0:
                x = denoised
                continue
            h = p.lambda_step(sigma, sigma_next)
            extrapolated = denoised
            if old_denoised is not None:
                half_inv_r = h / (2.0 * h_last)
                extrapolated = denoised * (1.0 + half_inv_r) - old_denoised * half_inv_r
            x = x * (sigma_next / sigma) - extrapolated * (math.expm1(-h) * p.alpha(sigma_next))
            old_denoised, h_last = (None, None) if math.isinf(h) else (denoised, h)
        return x


def lms_coefficients(sigmas: np.ndarray, i: int, order: int) -> np.ndarray:
    """The linear multistep weights of step ``i``, newest derivative first (float64, host).

    Weight ``j`` is the exact integral over ``[sigma_i, sigma_{i+1}]`` of the Lagrange basis polynomial that is 1 at
    ``sigma_{i-j}`` and 0 at the other ``min(i + 1, order)`` nodes; the weights sum to ``sigma_{i+1} - sigma_i``.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    nodes = sigmas[max(i - order + 1, 0) : i + 1][::-1]  # sigma_i, sigma_{i-1}, ...
    weights = np.empty(len(nodes))
    for j, node in enumerate(nodes):
        others = np.delete(nodes, j)
        basis = np.polynomial.Polynomial.fromroots(others) if len(others) else np.polynomial.Polynomial([1.0])
        antiderivative = (basis / np.prod(node - others)).integ()
        weights[j] = antiderivative(sigmas[i + 1]) - antiderivative(sigmas[i])
    return weights


class LinearMultistepSampler(BaseDiffusionSampler):
    """Linear multistep on the probability-flow ODE (k-diffusion ``sample_lms``; sgm's ``LinearMultistepSampler``).

    Each step moves x along the last ``order`` derivatives ``d = (x - D) / sigma`` with the weights of
    :func:`lms_coefficients`, computed exactly on the host. One update per step (mindone's port applies it twice).
    NFE = N. ``d`` is ``dx/dsigma`` for flow models too (the velocity), so the method is the same for both.
    """

    def __init__(
        self,
        order: int = 4,
        *,
        discretization_config: Any = None,
        num_steps: int | None = None,
        guider_config: Any = None,
        verbose: bool = False,
        init_noise: str = "sgm",
        check_finite: str = "call",
    ):
        super().__init__(
            discretization_config, num_steps, guider_config, verbose, init_noise=init_noise, check_finite=check_finite
        )
        self.order = checks.integer("order", order, minimum=1)

    def sample(self, run: SamplingRun, x: Tensor) -> Tensor:
        derivatives: deque[Tensor] = deque(maxlen=self.order)  # newest first
        for i, sigma, _ in run.steps():
            denoised = run.denoise(x, sigma)
            run.report(x, sigma, sigma, denoised)
            derivatives.appendleft(to_d(x, sigma, denoised))
            for weight, d in zip(lms_coefficients(run.sigmas, i, self.order), derivatives):
                x = euler_step(x, d, float(weight))
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order}, num_steps={self.num_steps}, init_noise={self.init_noise!r})"
