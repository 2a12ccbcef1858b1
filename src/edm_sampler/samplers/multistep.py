"""Multistep samplers: each step reuses the model outputs of the steps before it (one evaluation per step)."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..functional import axmy, axpy, scaled
from ..parametrization import Parametrization
from . import options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs


class DPMPP2MSampler(BaseDiffusionSampler):
    """DPM-Solver++(2M) (Lu et al. 2022; k-diffusion ``sample_dpmpp_2m``; sgm's ``DPMPP2MSampler``). NFE = N.

    With the step in half-log-SNR ``h = lambda_{i+1} - lambda_i`` (``lambda = log(alpha / sigma)``; ``log(sigma_i /
    sigma_{i+1})`` for VE) the step is ``x <- (sigma_{i+1}/sigma_i) x - alpha_{i+1} expm1(-h) D'`` where ``D'``
    extrapolates the data estimate from the previous one (``r = h_{i-1} / h``):
    ``D' = (1 + 1/(2r)) D_i - (1/(2r)) D_{i-1}``; the first step uses ``D' = D_0``, and so does the step after a flow
    model's step from sigma = 1 (``h = inf`` there, which leaves nothing to extrapolate from). The last step, to
    sigma = 0, returns the data estimate itself (sgm reaches it through ``-log 0 = inf``; here it is explicit).
    """

    history = 1  # the previous data estimate

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        h_last = None
        for sigma, sigma_next in pairs(sigmas):
            last = sigma_next == 0.0
            h = math.inf if last else p.lambda_step(sigma, sigma_next)
            half_inv_r = 0.0 if last or h_last is None else h / (2.0 * h_last)
            yield {
                "at": Level(sigma),
                "last": last,
                "extrapolate": not last and h_last is not None,
                "w_new": 1.0 + half_inv_r,
                "w_old": half_inv_r,
                "x_weight": sigma_next / sigma,
                "d_weight": 0.0 if last else math.expm1(-h) * p.alpha(sigma_next),
            }
            h_last = None if math.isinf(h) else h

    @staticmethod
    def step(m, x, state, c):
        (old_denoised,) = state
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        return dpmpp_2m_update(x, denoised, old_denoised, c), (denoised,)


def dpmpp_2m_update(x, denoised, old_denoised, c):
    """DPM-Solver++(2M)'s update from the current and previous data estimates (also its CFG++ twin's)."""
    if c["last"]:
        return denoised
    extrapolated = denoised
    if c["extrapolate"]:
        extrapolated = axmy(scaled(denoised, c["w_new"]), old_denoised, c["w_old"])
    return axmy(scaled(x, c["x_weight"]), extrapolated, c["d_weight"])


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


@functools.lru_cache(maxsize=32)
def _lms_table(sigmas: tuple[float, ...], order: int) -> tuple[tuple[float, ...], ...]:
    """Every step's :func:`lms_coefficients` for a schedule, cached: NumPy's polynomials cost about 0.5 ms a step,
    and a schedule is usually sampled many times."""
    array = np.asarray(sigmas, dtype=np.float64)
    return tuple(tuple(float(w) for w in lms_coefficients(array, i, order)) for i in range(len(sigmas) - 1))


class LinearMultistepSampler(BaseDiffusionSampler):
    """Linear multistep on the probability-flow ODE (k-diffusion ``sample_lms``; sgm's ``LinearMultistepSampler``).

    Each step moves x along the last ``order`` derivatives ``d = (x - D) / sigma`` with the weights of
    :func:`lms_coefficients`, computed exactly on the host. One update per step (mindone's port applies it twice).
    NFE = N. ``d`` is ``dx/dsigma`` for flow models too (the velocity), so the method is the same for both.
    """

    order = options.integer(4, minimum=1)

    @property
    def history(self) -> int:  # the last ``order`` derivatives, newest first
        return self.order

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        table = _lms_table(tuple(float(s) for s in sigmas), self.order)
        for (sigma, _), weights in zip(pairs(sigmas), table):
            unused = self.order - len(weights)
            yield {
                "at": Level(sigma),
                "inv_sigma": 1.0 / sigma,
                "uses": (True,) * len(weights) + (False,) * unused,
                "weights": tuple(weights) + (0.0,) * unused,
            }

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        derivatives = (scaled(x - denoised, c["inv_sigma"]),) + state[:-1]
        for j in range(len(derivatives)):
            if c["uses"][j]:
                x = axpy(x, derivatives[j], c["weights"][j])
        return x, derivatives
