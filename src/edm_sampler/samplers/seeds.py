"""SEEDS-2 and SEEDS-3 (Gonzalez et al. 2023, "SEEDS: Exponential SDE Solvers for Fast High-Quality Sampling from
Diffusion Models", NeurIPS 2023, arXiv:2305.14267), VP data prediction, as ComfyUI's ``sample_seeds_2`` and
``sample_seeds_3``, for VE and flow models.

In the half-log-SNR ``lambda = log(alpha / sigma)``, a step ``h = lambda_t - lambda_s`` of the diffusion SDE with
stochastic strength ``eta`` (1: the paper's reverse SDE; 0: the probability-flow ODE) is an exponential Runge-Kutta
method in ``H = (1 + eta) h``. Each move goes from ``s`` to the level at the fraction ``r`` of the step::

    x_r = (sigma_r / sigma_s) e^(-eta r h) x_s + alpha_r (phi_1(r H) D_s + phi_2(r H) r H D') + noise

where ``phi_1(z) = 1 - e^-z``, ``phi_2(z) = (z - 1 + e^-z) / z`` and ``D'`` is the slope of the data estimate (per
unit of ``H``) taken from the stages already evaluated: SEEDS-2 moves to ``r`` with ``D' = 0``, evaluates ``D_1``
there and takes the full step with ``D_s + (D_1 - D_s) / (2r)`` in place of ``D_s`` (``solver_type="phi_1"``) or
with ``D' = (D_1 - D_s) / (r H)`` (``"phi_2"``); SEEDS-3 moves to ``r_1`` (``D' = 0``), to ``r_2`` with ``D' = (D_1 -
D_s) / (r_1 H)`` and takes the full step with ``D' = (D_2 - D_s) / (r_2 H)`` (DPM-Solver-3's stages, third order
for the ODE with ComfyUI's ``r_1 = 1/3``, ``r_2 = 2/3``).

The noise of each move is the exact SDE noise over its interval, and the later moves reuse the earlier draws (the
paper's correlated noise): the noise at fraction ``r_k`` is ``sum_j e^(-eta (r_k - r_j) h) sqrt(1 - e^(-2 eta (r_j -
r_{j-1}) h)) z_j``, one Brownian path seen at every stage, of variance ``1 - e^(-2 eta r_k h)``, times ``sigma_k
s_noise``. Draws are made in ComfyUI's order, ``noise(sigma_s, sigma_1)``, ``noise(sigma_1, sigma_2)``, ...

The step to sigma = 0 returns ``D``. Deviations from ComfyUI, each in one line:

* a flow model's step from sigma = 1 (``h = inf``) is the exact first-order step, ``x = alpha_t D + s_noise sigma_t
  z`` (``x = sigma_t x + alpha_t D`` with ``eta = 0``), one evaluation; ComfyUI moves that first sigma to
  ``percent_to_sigma(1e-4)`` (0.9999 for an unshifted model) and takes the full multi-stage step from there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..functional import axpy, lincomb
from ..parametrization import Parametrization
from . import options
from .base import NOT_EVALUATED, BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

SOLVER_TYPES = ("phi_1", "phi_2")


def phi_1(z: float) -> float:
    """``1 - e^-z``: the weight of a constant data estimate over an exponential step of length ``z``."""
    return -math.expm1(-z)


def phi_2(z: float) -> float:
    """``(z - 1 + e^-z) / z``: the weight of the estimate's slope over the same step (per unit of ``z``, times
    ``z``)."""
    return (z + math.expm1(-z)) / z


def noise_weights(fractions: tuple[float, ...], levels: list[float], eta: float, h: float, s_noise: float) -> list:
    """Row ``k``: the weight of draw ``z_j`` (``j <= k``) in move ``k``'s noise (see the module docstring)."""
    rows = []
    for k, (r_k, level) in enumerate(zip(fractions, levels)):
        row = []
        for j in range(k + 1):
            start = fractions[j - 1] if j > 0 else 0.0
            std = math.sqrt(-math.expm1(-2.0 * eta * (fractions[j] - start) * h))
            row.append(level * s_noise * math.exp(-eta * (r_k - fractions[j]) * h) * std)
        rows.append(row)
    return rows


class SEEDSSampler(BaseDiffusionSampler):
    """Shared by SEEDS-2 and SEEDS-3: ``eta``, ``s_noise``, and the host math of the moves of a step."""

    eta = options.real(1.0, nonnegative=True, doc="the stochastic strength (0: the ODE)")
    s_noise = options.real(1.0, nonnegative=True)

    def fractions(self) -> tuple[float, ...]:
        """The moves' fractions of the step in lambda, increasing, ending at 1."""
        raise NotImplementedError

    def moves(self, p: Parametrization, sigma: float, sigma_next: float, noise: NoiseFn) -> dict:
        """For every move of the step: its level, the weight of ``x`` and the factor ``alpha_r`` of its data terms,
        its ``phi`` values, and the noise weights and draws."""
        fractions = self.fractions()
        h = p.lambda_step(sigma, sigma_next)
        big_h = h * (1.0 + self.eta)
        levels = [p.lambda_fraction(sigma, sigma_next, r) for r in fractions[:-1]] + [sigma_next]
        noisy = self.eta > 0.0 and self.s_noise > 0.0
        draws, start = [], sigma
        for level in levels:
            draws.append(noise(start, level) if noisy else None)
            start = level
        return {
            "levels": levels,
            "x": [level / sigma * math.exp(-self.eta * r * h) for r, level in zip(fractions, levels)],
            "alpha": [p.alpha(level) for level in levels],
            "phi_1": [phi_1(r * big_h) for r in fractions],
            "phi_2": [phi_2(r * big_h) for r in fractions],
            "noise": noise_weights(fractions, levels, self.eta, h, self.s_noise) if noisy else None,
            "draws": draws,
            "noisy": noisy,
        }

    def first_order(self, p: Parametrization, sigma: float, sigma_next: float, noise: NoiseFn) -> dict:
        """The exact first-order step from a flow model's sigma = 1 (``h = inf``): ``x_weight``, ``d_weight`` and its
        noise (weight, draw)."""
        noisy = self.eta > 0.0 and self.s_noise > 0.0
        return {
            "x_weight": 0.0 if self.eta > 0.0 else sigma_next / sigma,
            "d_weight": p.alpha(sigma_next),
            "n_weight": sigma_next * self.s_noise if noisy else 0.0,
            "draw": noise(sigma, sigma_next) if noisy else None,
            "noisy": noisy,
        }


class SEEDS2Sampler(SEEDSSampler):
    """SEEDS-2 (arXiv:2305.14267; ComfyUI ``sample_seeds_2``). NFE = 2N - 1 (the step to 0 evaluates once).

    ``r`` is the stage's fraction of the step in lambda; ``solver_type`` as ComfyUI's (see the module docstring).
    With ``eta = 0`` it is the deterministic DPM-Solver++(2S) step (second order).
    """

    r = options.real(0.5, positive=True, maximum=1.0, doc="the stage's fraction of the step")
    solver_type = options.choice("phi_1", SOLVER_TYPES)

    def fractions(self) -> tuple[float, ...]:
        return (self.r, 1.0)

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for sigma, sigma_next in pairs(sigmas):
            c: dict[str, Any] = {
                "at": Level(sigma),
                "last": sigma_next == 0.0,
                "single": False,
                "noisy": False,
                "at_1": NOT_EVALUATED,
            }
            c.update(x_1=0.0, d_1=0.0, n_11=0.0, x_t=0.0, d_t=0.0, d_t1=0.0, n_t1=0.0, n_t2=0.0, z_1=None, z_2=None)
            if c["last"]:
                pass
            elif math.isinf(p.lambda_step(sigma, sigma_next)):  # a flow model at sigma = 1
                one = self.first_order(p, sigma, sigma_next, noise)
                c.update(single=True, noisy=one["noisy"], x_t=one["x_weight"], d_t=one["d_weight"])
                c.update(n_t2=one["n_weight"], z_2=one["draw"])
            else:
                mv = self.moves(p, sigma, sigma_next, noise)
                c.update(at_1=Level(mv["levels"][0]), x_1=mv["x"][0], d_1=mv["alpha"][0] * mv["phi_1"][0])
                c.update(x_t=mv["x"][1], noisy=mv["noisy"], z_1=mv["draws"][0], z_2=mv["draws"][1])
                if self.solver_type == "phi_1":  # D_s + (D_1 - D_s) / (2r) over the whole step
                    w_1 = 1.0 / (2.0 * self.r)
                    c["d_t"], c["d_t1"] = (mv["alpha"][1] * mv["phi_1"][1] * w for w in (1.0 - w_1, w_1))
                else:  # phi_1 D_s + phi_2 (D_1 - D_s) / r
                    slope = mv["alpha"][1] * mv["phi_2"][1] / self.r
                    c["d_t"], c["d_t1"] = mv["alpha"][1] * mv["phi_1"][1] - slope, slope
                if mv["noisy"]:
                    (c["n_11"],), (c["n_t1"], c["n_t2"]) = mv["noise"]
            yield c

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        if c["last"]:
            x = denoised
        elif c["single"]:
            x = lincomb((x, c["x_t"]), (denoised, c["d_t"]))
            if c["noisy"]:
                x = axpy(x, c["z_2"], c["n_t2"])
        else:
            x_1 = lincomb((x, c["x_1"]), (denoised, c["d_1"]))
            if c["noisy"]:
                x_1 = axpy(x_1, c["z_1"], c["n_11"])
            denoised_1 = m.denoise(x_1, c["at_1"])
            x = lincomb((x, c["x_t"]), (denoised, c["d_t"]), (denoised_1, c["d_t1"]))
            if c["noisy"]:
                x = axpy(axpy(x, c["z_1"], c["n_t1"]), c["z_2"], c["n_t2"])
        return x, state


class SEEDS3Sampler(SEEDSSampler):
    """SEEDS-3 (arXiv:2305.14267; ComfyUI ``sample_seeds_3``). NFE = 3N - 2 (the step to 0 evaluates once).

    ``r_1 < r_2`` are the stages' fractions of the step in lambda (see the module docstring). With ``eta = 0`` it is
    the deterministic DPM-Solver-3 step in data prediction (third order).
    """

    r_1 = options.real(1.0 / 3.0, positive=True, maximum=1.0, doc="the first stage's fraction of the step")
    r_2 = options.real(2.0 / 3.0, positive=True, maximum=1.0, doc="the second stage's fraction of the step")

    def validate(self) -> None:
        if not self.r_1 < self.r_2:
            raise ValueError(f"r_1 must be < r_2 (the stages in order), got r_1={self.r_1!r}, r_2={self.r_2!r}")

    def fractions(self) -> tuple[float, ...]:
        return (self.r_1, self.r_2, 1.0)

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for sigma, sigma_next in pairs(sigmas):
            c: dict[str, Any] = {"at": Level(sigma), "last": sigma_next == 0.0, "single": False, "noisy": False}
            c.update(at_1=NOT_EVALUATED, at_2=NOT_EVALUATED, x_1=0.0, d_1=0.0, n_11=0.0)
            c.update(x_2=0.0, d_2=0.0, d_21=0.0, n_21=0.0, n_22=0.0)
            c.update(x_t=0.0, d_t=0.0, d_t2=0.0, n_t1=0.0, n_t2=0.0, n_t3=0.0, z_1=None, z_2=None, z_3=None)
            if c["last"]:
                pass
            elif math.isinf(p.lambda_step(sigma, sigma_next)):  # a flow model at sigma = 1
                one = self.first_order(p, sigma, sigma_next, noise)
                c.update(single=True, noisy=one["noisy"], x_t=one["x_weight"], d_t=one["d_weight"])
                c.update(n_t3=one["n_weight"], z_3=one["draw"])
            else:
                mv = self.moves(p, sigma, sigma_next, noise)
                alpha, p1, p2 = mv["alpha"], mv["phi_1"], mv["phi_2"]
                c.update(at_1=Level(mv["levels"][0]), at_2=Level(mv["levels"][1]), noisy=mv["noisy"])
                c.update(x_1=mv["x"][0], x_2=mv["x"][1], x_t=mv["x"][2])
                c.update(z_1=mv["draws"][0], z_2=mv["draws"][1], z_3=mv["draws"][2])
                c["d_1"] = alpha[0] * p1[0]
                slope_2 = alpha[1] * p2[1] * self.r_2 / self.r_1  # phi_2(r_2 H) r_2 H (D_1 - D_s) / (r_1 H)
                c["d_2"], c["d_21"] = alpha[1] * p1[1] - slope_2, slope_2
                slope_t = alpha[2] * p2[2] / self.r_2  # phi_2(H) H (D_2 - D_s) / (r_2 H)
                c["d_t"], c["d_t2"] = alpha[2] * p1[2] - slope_t, slope_t
                if mv["noisy"]:
                    (c["n_11"],), (c["n_21"], c["n_22"]), (c["n_t1"], c["n_t2"], c["n_t3"]) = mv["noise"]
            yield c

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        if c["last"]:
            x = denoised
        elif c["single"]:
            x = lincomb((x, c["x_t"]), (denoised, c["d_t"]))
            if c["noisy"]:
                x = axpy(x, c["z_3"], c["n_t3"])
        else:
            x_1 = lincomb((x, c["x_1"]), (denoised, c["d_1"]))
            if c["noisy"]:
                x_1 = axpy(x_1, c["z_1"], c["n_11"])
            denoised_1 = m.denoise(x_1, c["at_1"])
            x_2 = lincomb((x, c["x_2"]), (denoised, c["d_2"]), (denoised_1, c["d_21"]))
            if c["noisy"]:
                x_2 = axpy(axpy(x_2, c["z_1"], c["n_21"]), c["z_2"], c["n_22"])
            denoised_2 = m.denoise(x_2, c["at_2"])
            x = lincomb((x, c["x_t"]), (denoised, c["d_t"]), (denoised_2, c["d_t2"]))
            if c["noisy"]:
                x = axpy(axpy(axpy(x, c["z_1"], c["n_t1"]), c["z_2"], c["n_t2"]), c["z_3"], c["n_t3"])
        return x, state
