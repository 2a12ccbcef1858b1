"""DPM-Solver-fast (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model Sampling in Around
10 Steps", arXiv 2206.00927): single-step DPM-Solver-1, -2 and -3 on a grid uniform in the half-log-SNR, as
k-diffusion's ``DPMSolver.dpm_solver_fast`` and ComfyUI's ``dpm_fast``; and the stage coefficients the adaptive
solver (:mod:`.dpm_adaptive`) shares.

Notation: ``lambda = log(alpha / sigma)`` (VE: ``-log sigma``; flow: ``log((1 - sigma) / sigma)``), a step from ``s``
to ``t`` has ``h = lambda_t - lambda_s`` and intermediate levels ``s_j`` at ``lambda_s + r_j h``; ``eps(x, s) = (x -
alpha_s D) / sigma_s`` is the noise prediction. The paper's Algorithms 1 and 2 (``phi(z) = expm1(z) / z - 1``)::

    DPM-Solver-1:  x_t = (alpha_t / alpha_s) x - sigma_t expm1(h) eps_0
    DPM-Solver-2:  u_1 = (alpha_1 / alpha_s) x - sigma_1 expm1(r_1 h) eps_0
                   x_t = (alpha_t / alpha_s) x - sigma_t expm1(h) eps_0 - sigma_t / (2 r_1) expm1(h) (eps_1 - eps_0)
    DPM-Solver-3:  u_2 = (alpha_2 / alpha_s) x - sigma_2 expm1(r_2 h) eps_0 - sigma_2 (r_2 / r_1) phi(r_2 h) (eps_1 -
                   eps_0)
                   x_t = (alpha_t / alpha_s) x - sigma_t expm1(h) eps_0 - sigma_t / r_2 phi(h) (eps_2 - eps_0)

with ``eps_j = eps(u_j, s_j)`` (``u_0 = x``). With ``alpha = 1`` these are k-diffusion's VE formulas.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..functional import lincomb, renoise
from ..parametrization import Parametrization
from . import coefficients, options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan

logger = logging.getLogger(__name__)


def phi(z: float) -> float:
    """``expm1(z) / z - 1``, with its series near 0 (a zero-length step)."""
    if abs(z) < 1e-4:
        return z / 2.0 + z * z / 6.0 + z**3 / 24.0
    return math.expm1(z) / z - 1.0


@dataclass(frozen=True)
class Stage:
    """One evaluation of a single-step solver, at ``level``; the point after it (the next evaluation's, or the step's
    result) is ``x_weight x_s + sum_j weights[j] m_j`` over the outputs so far: the noise predictions ``eps_j`` as the
    paper writes the solver (:func:`dpm_solver_stages`), the data estimates ``D_j`` after :func:`in_denoised_form`."""

    level: float
    x_weight: float
    weights: tuple[float, ...]


def dpm_solver_stages(p: Parametrization, sigma_s: float, sigma_t: float, order: int, r1: float, r2: float = 2 / 3):
    """The stages of DPM-Solver-``order`` from ``sigma_s`` to ``sigma_t`` (``r1``: the second evaluation's fraction of
    the step in lambda, ``r2`` the third's), per the module docstring. Needs ``alpha(sigma_s) > 0``."""
    h = p.lambda_step(sigma_s, sigma_t)
    ratio_t = p.alpha(sigma_t) / p.alpha(sigma_s)
    first_t = -sigma_t * math.expm1(h)  # DPM-Solver-1's weight on eps_0
    if order == 1:
        return [Stage(sigma_s, ratio_t, (first_t,))]
    sigma_1 = p.lambda_fraction(sigma_s, sigma_t, r1)
    to_1 = Stage(sigma_s, p.alpha(sigma_1) / p.alpha(sigma_s), (-sigma_1 * math.expm1(r1 * h),))
    if order == 2:
        c = sigma_t / (2.0 * r1) * math.expm1(h)
        return [to_1, Stage(sigma_1, ratio_t, (first_t + c, -c))]
    sigma_2 = p.lambda_fraction(sigma_s, sigma_t, r2)
    c2 = sigma_2 * (r2 / r1) * phi(r2 * h)
    to_2 = Stage(sigma_1, p.alpha(sigma_2) / p.alpha(sigma_s), (-sigma_2 * math.expm1(r2 * h) + c2, -c2))
    c3 = sigma_t / r2 * phi(h)
    return [to_1, to_2, Stage(sigma_2, ratio_t, (first_t + c3, 0.0, -c3))]


def in_denoised_form(p: Parametrization, stages: list[Stage]) -> list[Stage]:
    """The same stages with weights on the data estimates ``D_j`` instead of the noise predictions ``eps_j = (u_j -
    alpha_j D_j) / sigma_j`` (``u_j``: the point evaluated). The substitution is done here in float64, so that the
    device never forms ``x_s - sigma_s eps_0``, which cancels to a few float32 digits from a large sigma (VE 20 to 1:
    a factor 20)."""
    point = np.zeros(4)  # the point being evaluated, over (x_s, D_0, D_1, D_2)
    point[0] = 1.0
    outputs, converted = [], []
    for j, stage in enumerate(stages):
        eps = point.copy()
        eps[1 + j] -= p.alpha(stage.level)
        outputs.append(eps / stage.level)
        point = stage.x_weight * np.eye(4)[0] + sum(w * e for w, e in zip(stage.weights, outputs))
        converted.append(Stage(stage.level, float(point[0]), tuple(float(w) for w in point[1 : j + 2])))
    return converted


def endpoints(sigmas: np.ndarray) -> tuple[float, float]:
    """ComfyUI's ``(sigma_max, sigma_min)`` of a schedule: its first sigma and its last above 0."""
    last = float(sigmas[-1]) if sigmas[-1] > 0 or len(sigmas) < 2 else float(sigmas[-2])
    return float(sigmas[0]), last


def fast_orders(nfe: int) -> list[int]:
    """DPM-Solver-fast's orders for ``nfe`` evaluations (the paper, Sec. 3.4): ``floor(nfe / 3) + 1`` steps, third
    order but the last: ``[..., 3, 2, 1]`` when 3 divides ``nfe``, else ``[..., 3, nfe mod 3]``."""
    if nfe <= 0:
        return []
    m = nfe // 3 + 1
    return [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]


def flow_start(p: Parametrization, sigmas: np.ndarray) -> float | None:
    """Where a flow schedule from sigma = 1 (lambda = -inf: no lambda grid starts there) is first taken by DDIM: its
    second sigma (its first when that is 0: nothing to integrate); None when the schedule starts below 1, or is VE."""
    if p.alpha(float(sigmas[0])) > 0.0:
        return None
    return float(sigmas[1]) if sigmas[1] > 0 else float(sigmas[0])


class DPMSolverFastSampler(BaseDiffusionSampler):
    """DPM-Solver-fast (Lu et al. 2022, Sec. 3.4; k-diffusion ``sample_dpm_fast``, ComfyUI ``dpm_fast``). NFE = N.

    The N evaluations of an N-step schedule are spent on a grid uniform in lambda from the schedule's first sigma to
    its last above 0 (ComfyUI's ``sigma_max = sigmas[0]``, ``sigma_min = sigmas[-2]`` when the schedule ends at 0):
    ``floor(N / 3) + 1`` single steps of DPM-Solver-3, the last of order 2 and 1, or ``N mod 3`` (:func:`fast_orders`).
    The schedule's other sigmas are not used. Each evaluation is one of the call's N steps (progress bar, callback).

    As in ComfyUI the result is the state at ``sigma_min`` (still noised by it when the schedule ends at 0), unless
    ``denoise_to_zero`` spends the last evaluation on ``D`` at ``sigma_min`` (DPM-Solver's official option; the solver
    then has N - 1). ``eta > 0`` steps to the ancestral ``sigma_down`` (not below ``sigma_min``) and adds noise back to
    the grid level, ``s_noise`` times (k-diffusion's ancestral DPM-Solver; flow models: the rectified-flow split).

    Flow models step in their own half-log-SNR ``log((1 - sigma) / sigma)`` with ``alpha = 1 - sigma``: the paper's
    method for their noise schedule. ComfyUI runs the VE formulas (``lambda = -log sigma``, ``alpha = 1``) on flow
    models too, which integrates the same ODE but is not DPM-Solver for them. From sigma = 1 (lambda = -inf) the first
    evaluation is a DDIM step to the schedule's second sigma (``x <- sigma_1 x + alpha_1 D``); the grid starts there.

    A schedule whose ``sigma_min`` equals ``sigma_max`` (one step to 0) leaves nothing to integrate: as in ComfyUI the
    evaluations change nothing (logged). Noise is drawn only where it is added (k-diffusion draws on every step).
    """

    eta = options.real(0.0, nonnegative=True, doc="ancestral noise (0: the ODE solver)")
    s_noise = options.real(1.0, nonnegative=True)
    denoise_to_zero = options.flag(False, "spend the last evaluation on D at sigma_min when the schedule ends at 0")

    history = 3  # the solver step's start x_s and its first data estimates D_0, D_1

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        sigma_max, sigma_min = endpoints(sigmas)
        if sigma_min >= sigma_max:
            logger.warning("%s: sigma_min = sigma_max = %g: the steps change nothing", type(self).__name__, sigma_max)
        budget = len(sigmas) - 1
        final = self.denoise_to_zero and sigmas[-1] == 0.0  # the last evaluation: D at sigma_min
        budget -= int(final)
        start = flow_start(p, sigmas)
        if start is not None and budget > 0:  # DDIM from sigma = 1: sigma_1 x + alpha_1 D
            yield self.entry(sigma_max, 0, start / sigma_max, (p.alpha(start),))
            sigma_max, budget = start, budget - 1
        orders = fast_orders(budget)
        grid = [sigma_max] + [p.lambda_fraction(sigma_max, sigma_min, k / len(orders)) for k in range(1, len(orders))]
        grid.append(sigma_min)
        for k, order in enumerate(orders):
            sigma, sigma_next = grid[k], grid[k + 1]
            target, renoising = self.ancestral(p, sigma, sigma_next, sigma_min, noise)
            stages = in_denoised_form(p, dpm_solver_stages(p, sigma, target, order, 0.5 if order == 2 else 1 / 3))
            for j, stage in enumerate(stages):
                last = j == len(stages) - 1
                yield self.entry(stage.level, j, stage.x_weight, stage.weights, renoising if last else None)
        if final:  # D at sigma_min
            yield self.entry(sigma_min, 0, 0.0, (1.0,))

    def ancestral(self, p: Parametrization, sigma: float, sigma_next: float, sigma_min: float, noise: NoiseFn):
        """The level a step from ``sigma`` aims at (``sigma_down``, not below ``sigma_min``) and the re-noising up to
        ``sigma_next`` after it (drawn only when it adds noise)."""
        if not self.eta:
            return sigma_next, coefficients.no_renoising()
        target = max(p.ancestral_step(sigma, sigma_next, self.eta)[0], sigma_min)
        a, std = p.renoise(target, sigma_next)
        std *= self.s_noise
        return target, coefficients.renoising(a, std, std > 0.0, noise, sigma, sigma_next)

    @staticmethod
    def entry(level, stage, x_weight, d_weights, renoising=None) -> dict:
        """The coefficients of one evaluation, stage ``stage`` (0, 1, 2) of a solver step: the next point is
        ``x_weight x_s + w[0] D_0 + w[1] D_1 + w[2] D`` with ``D`` this evaluation's (``d_weights``: one per stage so
        far, this one last), then ``renoising`` (after a step's last stage)."""
        *older, current = d_weights
        return {
            "at": Level(level),
            "first": stage == 0,
            "second": stage == 1,
            "x": x_weight,
            "w": tuple(older) + (0.0,) * (2 - len(older)) + (current,),
            "churn": coefficients.no_renoising() if renoising is None else renoising,
        }

    @staticmethod
    def step(m, x, state, c):
        x_s, d_0, d_1 = state
        if c["first"]:
            x_s = x
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        w = c["w"]
        x = lincomb((x_s, c["x"]), (denoised, w[2]))
        if c["first"]:
            d_0 = denoised
        else:
            x = x + d_0 * w[0]
            if c["second"]:
                d_1 = denoised
            else:
                x = x + d_1 * w[1]
        return renoise(x, c["churn"]), (x_s, d_0, d_1)
