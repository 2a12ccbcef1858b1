"""DPM-Solver-12 and -23 with adaptive step size (Lu et al. 2022, arXiv 2206.00927, Sec. 3.4), as
k-diffusion's ``DPMSolver.dpm_solver_adaptive`` and ComfyUI's ``dpm_adaptive``: each step is taken by a pair of
single-step DPM-Solvers of consecutive orders sharing their evaluations; their difference is the error estimate a PID
controller turns into the next step size. The step sizes, and so the number of model evaluations, depend on the model's
outputs: there is no host-side plan, and the loop runs eagerly."""

from __future__ import annotations

import math
from typing import Any

from mindspore import Tensor, ops

from .. import checks
from ..model_path import ModelOutputError
from ..progress import progress_bar
from ..run import SamplingRun
from . import options
from .base import BaseDiffusionSampler
from .dpm_fast import Stage, dpm_solver_stages, endpoints, flow_start, in_denoised_form

ORDERS = (2, 3)


def _order(name: str, value: Any) -> int:
    value = checks.integer(name, value)
    if value not in ORDERS:
        raise ValueError(f"{name} must be 2 (DPM-Solver-12) or 3 (DPM-Solver-23), got {value}")
    return value


class PIDStepSizeController:
    """Step-size control by a PID rule (Söderlind 2003), as k-diffusion's ``PIDStepSizeController``: with ``e_n`` the
    inverse of step ``n``'s error, ``1 / (error + eps)``, the step is scaled by ``limit(e_n^b1 e_{n-1}^b2 e_{n-2}^b3)``
    with ``b1 = (kP + kI + kD) / k``, ``b2 = -(kP + 2 kD) / k``, ``b3 = kD / k`` (``k``: the order the error scales
    with) and ``limit(f) = 1 + atan(f - 1)``. The attempt is accepted when that factor is at least ``accept_safety``,
    and only accepted errors enter the history. With the defaults (``kI = 1``, ``kP = kD = 0``) the factor is
    ``limit(error^(-1/k))``, the DPM-Solver paper's rule. Host floats throughout."""

    def __init__(self, h: float, pcoeff: float, icoeff: float, dcoeff: float, order: float, accept_safety: float):
        self.h = h
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2.0 * dcoeff) / order
        self.b3 = dcoeff / order
        self.accept_safety = accept_safety
        self.inverse_errors: list[float] = []

    def propose(self, error: float, eps: float = 1e-8) -> bool:
        """Update the step size ``h`` from this attempt's ``error``; True if the attempt is accepted."""
        inverse = 1.0 / (error + eps)
        if not self.inverse_errors:
            self.inverse_errors = [inverse] * 3
        self.inverse_errors[0] = inverse
        e0, e1, e2 = self.inverse_errors
        factor = 1.0 + math.atan(e0**self.b1 * e1**self.b2 * e2**self.b3 - 1.0)
        accept = factor >= self.accept_safety
        if accept:
            self.inverse_errors = [e0, e0, e1]
        self.h *= factor
        return accept


class DPMSolverAdaptiveSampler(BaseDiffusionSampler):
    """DPM-Solver-12 / -23, adaptive (k-diffusion ``sample_dpm_adaptive``, ComfyUI ``dpm_adaptive``, with their
    defaults). NFE: data-dependent, ``order`` per attempted step; ``last_nfe`` is the count of model calls made and
    ``last_info`` has k-diffusion's ``steps``, ``nfe``, ``n_accept`` and ``n_reject``.

    It integrates in lambda from the schedule's first sigma to its last above 0 (ComfyUI: ``sigmas[0]`` and
    ``sigmas[-2]`` when the schedule ends at 0; the other sigmas and ``num_steps`` only set those ends), starting with
    the step ``h_init``. From ``x`` at ``s`` an attempt to ``t = s + h`` evaluates the model at ``s``, ``s + h / 3`` and
    ``s + 2 h / 3`` (order 3) and compares DPM-Solver-2 (``r1 = 1/3``) with DPM-Solver-3, or (order 2) DPM-Solver-1
    with DPM-Solver-2 (``r1 = 1/2``): ``error = RMS((x_low - x_high) / max(atol, rtol max(|x_low|, |x_prev|)))`` over
    the whole batch (one step size for the batch, so a sample depends on the batch it is in), ``x_prev`` the previous
    accepted ``x_low``. :class:`PIDStepSizeController` (``order``, or 1.5 with ``eta > 0``) rescales ``h`` and accepts
    or rejects; an accepted attempt keeps ``x_high``. The loop ends within 1e-5 of the end in lambda. The result is the
    state at ``sigma_min``, as in ComfyUI.

    ``eta > 0`` aims each attempt at its ancestral ``sigma_down`` (not below ``sigma_min``) and, when accepted, adds
    noise back up to ``t``'s level, ``s_noise`` times. Flow models step in their own half-log-SNR with ``alpha = 1 -
    sigma`` (ComfyUI uses the VE formulas for them); a flow schedule from sigma = 1 is first taken to its second sigma
    by DDIM (one evaluation). Noise is drawn only where it is added.

    The number of evaluations is not known before the model runs, so ``graph_loop=True`` is refused; in graph mode
    each model call still runs compiled. Each error estimate costs one host sync.
    """

    order = options.Option(3, _order, "2 (DPM-Solver-12) or 3 (DPM-Solver-23)")
    rtol = options.real(0.05, positive=True)
    atol = options.real(0.0078, positive=True)
    h_init = options.real(0.05, positive=True, doc="the first step's length in lambda")
    pcoeff = options.real(0.0)
    icoeff = options.real(1.0)
    dcoeff = options.real(0.0)
    accept_safety = options.real(0.81, positive=True)
    eta = options.real(0.0, nonnegative=True, doc="ancestral noise (0: the ODE solver)")
    s_noise = options.real(1.0, nonnegative=True)

    last_info: dict | None = None  # the last call's steps, nfe, n_accept, n_reject

    def validate(self) -> None:
        if self.graph_loop:
            raise ValueError(
                "DPMSolverAdaptiveSampler cannot run with graph_loop=True: its step sizes, and so its number of model "
                "evaluations, depend on the model's outputs (an error estimate per step), so the loop cannot be "
                "planned on the host and compiled; use graph_loop=False (in graph mode each model call still runs "
                "compiled)"
            )

    def sample(self, run: SamplingRun, x: Tensor) -> Tensor:
        p = run.param
        sigma_max, sigma_min = endpoints(run.sigmas)
        info = {"steps": 0, "n_accept": 0, "n_reject": 0}
        bar = progress_bar(desc=f"{run.label} (adaptive)", unit="eval", disable=not run.progress)

        def denoise(u: Tensor, sigma: float) -> Tensor:
            bar.update(1)
            return run.denoise(u, sigma)

        start = flow_start(p, run.sigmas)
        if start is not None and start < sigma_max:  # DDIM from sigma = 1 (lambda = -inf) to the second sigma
            denoised = denoise(x, sigma_max)
            run.report(x, sigma_max, sigma_max, denoised)
            x = x * (start / sigma_max) + denoised * p.alpha(start)
            sigma_max = start
        span = p.lambda_step(sigma_max, sigma_min) if sigma_min < sigma_max else 0.0

        def level(position: float) -> float:  # the noise level ``position`` into the lambda span
            return sigma_min if position >= span else p.lambda_fraction(sigma_max, sigma_min, position / span)

        pid = PIDStepSizeController(
            self.h_init, self.pcoeff, self.icoeff, self.dcoeff, 1.5 if self.eta else self.order, self.accept_safety
        )
        position, x_prev = 0.0, x
        while position < span - 1e-5:
            run.i = info["steps"]
            end = min(span, position + pid.h)
            sigma_s, sigma_t = level(position), level(end)
            target = max(p.ancestral_step(sigma_s, sigma_t, self.eta)[0], sigma_min) if self.eta else sigma_t
            low, high = self._pair(p, sigma_s, target)
            outputs = [denoise(x, sigma_s)]
            run.report(x, sigma_s, sigma_s, outputs[0])
            for k in range(1, len(high)):  # the later evaluations, shared by the pair
                outputs.append(denoise(_combine(x, outputs, high[k - 1]), high[k].level))
            x_low, x_high = _combine(x, outputs, low[-1]), _combine(x, outputs, high[-1])
            delta = ops.clamp(ops.maximum(ops.abs(x_low), ops.abs(x_prev)) * self.rtol, min=self.atol)
            error = float(ops.sqrt(ops.mean((_combine(x, outputs, _difference(low[-1], high[-1])) / delta) ** 2)))
            if not math.isfinite(error):
                raise ModelOutputError(
                    f"DPMSolverAdaptiveSampler: the error estimate at sigma={sigma_s:.6g} is {error} (a NaN/Inf model "
                    "output?)"
                )
            if pid.propose(error):
                x_prev, x, position = x_low, x_high, end
                if self.eta:  # back up to t's level
                    a, std = p.renoise(target, sigma_t)
                    if a != 1.0:
                        x = x * a
                    if std * self.s_noise > 0.0:
                        x = x + run.noise(sigma_s, sigma_t) * (std * self.s_noise)
                info["n_accept"] += 1
            else:
                info["n_reject"] += 1
            info["steps"] += 1
        bar.close()
        self.last_info = dict(info, nfe=run.nfe)
        return x

    def _pair(self, p, sigma_s: float, sigma_t: float) -> tuple[list[Stage], list[Stage]]:
        """The lower- and higher-order solver of an attempt (sharing their evaluation levels), weights on ``D_j``."""
        r1 = 0.5 if self.order == 2 else 1.0 / 3.0
        low, high = (dpm_solver_stages(p, sigma_s, sigma_t, k, r1) for k in (self.order - 1, self.order))
        return in_denoised_form(p, low), in_denoised_form(p, high)


def _combine(x_s: Tensor, outputs: list, stage: Stage) -> Tensor:
    """``x_weight x_s + sum_j weights[j] D_j`` (the point after ``stage``, in :func:`in_denoised_form`)."""
    x = x_s * stage.x_weight
    for weight, eps in zip(stage.weights, outputs):
        if weight:
            x = x + eps * weight
    return x


def _difference(low: Stage, high: Stage) -> Stage:
    """``x_low - x_high`` as one combination, its weights subtracted in float64: subtracting the two float32 results
    would keep only a few digits of a difference that is small beside them (the error estimate)."""
    padded = low.weights + (0.0,) * (len(high.weights) - len(low.weights))
    weights = tuple(a - b for a, b in zip(padded, high.weights))
    return Stage(high.level, low.x_weight - high.x_weight, weights)
