"""DPM-Solver++ SDE samplers (Lu et al. 2022, "DPM-Solver++"; k-diffusion ``sample_dpmpp_sde``, ``sample_dpmpp_2m_sde``,
``sample_dpmpp_3m_sde``), in the half-log-SNR ``lambda = log(alpha / sigma)`` with step ``h = lambda_{i+1} -
lambda_i`` (``log(sigma_i / sigma_{i+1})`` for VE models, alpha = 1). For a flow model (alpha = 1 - sigma) every
data-estimate term carries ``alpha_{i+1}`` and the state keeps the weight ``(sigma_{i+1} / sigma_i) exp(-eta h)``;
a step from sigma = 1 (lambda = -inf, ``h = inf``) is first order and leaves no history for the next steps.

Their noise is Brownian: by default each call draws the increments of one seeded Brownian path in sigma
(:class:`edm_sampler.brownian.BrownianNoise`, on the schedule's smallest positive and largest sigma, resolved finely
enough that every point the sampler queries is exact), so that refining the schedule refines one noise path instead
of drawing new noise. A ``noise_sampler`` passed to the call replaces it. ``eta = 0`` gives the ODE solver and draws
nothing; the last step, to sigma = 0, returns the denoised estimate.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from mindspore import Tensor

from .. import parametrization
from ..brownian import BrownianNoise, brownian_tol
from ..functional import axmy, axpy, euler_to, lincomb, renoise, scaled
from ..noise import GeneratorLike, NoiseSampler
from ..parametrization import Parametrization
from . import coefficients, options
from .ancestral import AncestralSampler
from .base import NOT_EVALUATED, BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

SOLVER_TYPES = ("midpoint", "heun")


class BrownianSDESampler:
    """Mixin: the call's noise source is a Brownian path (unless the caller passes ``noise_sampler``)."""

    def noise_points(self, sigmas: np.ndarray, param: Parametrization | str = "ve") -> np.ndarray:
        """The sigmas at which the sampler evaluates the path: the positive sigmas of the schedule."""
        return sigmas[sigmas > 0]

    def make_noise(
        self,
        shape: tuple[int, ...],
        generator: GeneratorLike,
        noise_sampler: NoiseSampler | None,
        sigmas: np.ndarray,
        param: Parametrization | str = "ve",
    ) -> Callable[[float, float], Tensor]:
        """Brownian increments ``(W(sigma_next) - W(sigma)) / sqrt(|sigma_next - sigma|)`` of one seeded path on
        ``[min positive sigma, max sigma]`` (one path per sample with a list of generators), or the caller's
        ``noise_sampler``."""
        if noise_sampler is not None:  # (a mixin: the sampler class after it in the MRO defines make_noise)
            return super().make_noise(shape, generator, noise_sampler, sigmas, param)  # type: ignore[misc]
        points = self.noise_points(sigmas, parametrization.get(param))
        return BrownianNoise(shape, generator, float(points.min()), float(points.max()), tol=brownian_tol(points))


def first_order_step(x: Tensor, denoised: Tensor, c: dict) -> Tensor:
    """A first-order (DPM-Solver++(1)) step with ancestral noise (coefficients: :meth:`DPMPPSDESampler.first_order`)."""
    if c["euler"]:
        x = euler_to(x, denoised, c["down"])
    else:
        x = axmy(scaled(x, c["x_weight"]), denoised, c["d_weight"])
    return renoise(x, c["up"])


class DPMPPSDESampler(BrownianSDESampler, AncestralSampler):
    """DPM-Solver++ (stochastic) (k-diffusion ``sample_dpmpp_sde``): two stages per step, NFE = 2N - 1.

    Stage 1 goes from ``sigma`` to ``sigma_s``, the fraction ``r`` of the step in lambda (``sigma^(1-r)
    sigma_next^r`` for VE), first-order with the ancestral split of ``eta``: ``x_s = (s_d / sigma) x - alpha(s_d)
    expm1(-h_d) D`` to ``s_d``, plus noise of std ``s_noise * s_u``. Stage 2 goes from ``sigma`` to ``sigma_next``
    the same way with the data estimate ``(1 - 1/(2r)) D + 1/(2r) D(x_s, sigma_s)``. Its noise is the Brownian
    increment over the whole step, which contains stage 1's. The last step, to sigma = 0, returns ``D``; a flow
    model's step from sigma = 1 (lambda = -inf) is stage 2 alone with ``D`` (one evaluation).
    """

    r = options.real(0.5, positive=True, maximum=1.0, doc="the fraction of the step for the first stage")

    def sigma_s(self, sigma: float, sigma_next: float, param: Parametrization | str = "ve") -> float:
        """The first stage's target: the fraction ``r`` of the step in lambda (``exp(-(t + r h))`` for VE)."""
        return parametrization.get(param).lambda_fraction(sigma, sigma_next, self.r)

    def noise_points(self, sigmas: np.ndarray, param: Parametrization | str = "ve") -> np.ndarray:
        stages = [
            self.sigma_s(float(s), float(s_next), param) for s, s_next in zip(sigmas[:-1], sigmas[1:]) if s_next > 0
        ]
        return np.concatenate([sigmas[sigmas > 0], stages])

    def first_order(self, p: Parametrization, sigma: float, sigma_to: float, noise: NoiseFn) -> dict:
        """The coefficients of ``x`` moved from ``sigma`` to ``sigma_to`` with a data estimate, ancestral noise
        included (see :func:`first_order_step`)."""
        sigma_down, up = self.ancestral(p, sigma, sigma_to, noise)
        h = p.lambda_step(sigma, sigma_down) if sigma_down > 0.0 else math.inf
        finite = not math.isinf(h)  # else: to sigma = 0, or a flow model's step from sigma = 1: the Euler (DDIM) step
        return {
            "euler": not finite,
            "down": coefficients.euler(sigma, sigma_down),
            "x_weight": sigma_down / sigma,
            "d_weight": math.expm1(-h) * p.alpha(sigma_down) if finite else 0.0,
            "up": up,
        }

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        fac = 1.0 / (2.0 * self.r)
        for sigma, sigma_next in pairs(sigmas):
            last = sigma_next == 0.0
            two_stages = not last and p.alpha(sigma) != 0.0
            sigma_s = self.sigma_s(sigma, sigma_next, p) if two_stages else sigma
            stage_1 = self.first_order(p, sigma, sigma_s if two_stages else sigma_next, noise)
            yield {
                "at": Level(sigma),
                "last": last,
                "two_stages": two_stages,
                "stage_1": stage_1,
                "at_s": Level(sigma_s) if two_stages else NOT_EVALUATED,
                "w_d": 1.0 - fac,
                "w_s": fac,
                "stage_2": self.first_order(p, sigma, sigma_next, noise) if two_stages else stage_1,
            }

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        if c["last"]:
            x = denoised
        elif c["two_stages"]:
            x_s = first_order_step(x, denoised, c["stage_1"])
            denoised_d = lincomb((denoised, c["w_d"]), (m.denoise(x_s, c["at_s"]), c["w_s"]))
            x = first_order_step(x, denoised_d, c["stage_2"])
        else:
            x = first_order_step(x, denoised, c["stage_1"])
        return x, state


class MultistepSDESampler(BrownianSDESampler, BaseDiffusionSampler):
    """Shared by the DPM-Solver++ multistep SDE samplers: ``eta``, ``s_noise`` and the SDE noise term."""

    eta = options.real(1.0, nonnegative=True)
    s_noise = options.real(1.0, nonnegative=True)

    def decay(self, param: Parametrization, sigma: float, sigma_next: float, h: float) -> float:
        """The weight of x in a step, ``(sigma_next / sigma) exp(-eta h)``: computed as ``(alpha_next / alpha)
        exp(-(1 + eta) h)`` (k-diffusion's VE floats) where ``alpha > 0``, its limit at ``alpha = 0``."""
        alpha = param.alpha(sigma)
        if alpha == 0.0:  # h = inf
            return sigma_next / sigma if self.eta == 0.0 else 0.0
        return param.alpha(sigma_next) / alpha * math.exp(-h * (1.0 + self.eta))

    def sde_noise(self, sigma: float, sigma_next: float, h: float, noise: NoiseFn) -> dict:
        """The noise of the exact SDE step: std ``sigma_next * sqrt(1 - exp(-2 eta h))`` (times ``s_noise``)."""
        if self.eta == 0.0 or self.s_noise == 0.0:
            return coefficients.no_renoising()
        std = sigma_next * math.sqrt(-math.expm1(-2.0 * self.eta * h)) * self.s_noise
        return coefficients.renoising(1.0, std, True, noise, sigma, sigma_next)


class DPMPP2MSDESampler(MultistepSDESampler):
    """DPM-Solver++(2M) SDE (k-diffusion ``sample_dpmpp_2m_sde``). NFE = N.

    With ``h_eta = (1 + eta) h``: ``x <- exp(-h_eta) x + (1 - exp(-h_eta)) D`` plus, from the second step on, the
    correction ``c (D - D_prev) h / h_prev`` with ``c = (1 - exp(-h_eta)) / 2`` (``solver_type="midpoint"``) or
    ``c = 1 - (1 - exp(-h_eta)) / h_eta`` (``"heun"``), plus noise of std ``sigma_next sqrt(1 - exp(-2 eta h))``.
    (Flow: the weight of x is :meth:`decay`, and the D terms are multiplied by ``alpha_next``.)
    """

    solver_type = options.choice("midpoint", SOLVER_TYPES)
    history = 1  # the previous data estimate

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        h_last: float | None = None
        for sigma, sigma_next in pairs(sigmas):
            last = sigma_next == 0.0
            c: dict[str, Any] = {
                "at": Level(sigma),
                "last": last,
                "correct": False,
                "x_weight": 1.0,
                "d_weight": 0.0,
                "w_corr": 0.0,
            }
            if last:
                c["noise"] = coefficients.no_renoising()
                yield c
                continue
            h = p.lambda_step(sigma, sigma_next)
            h_eta = h * (1.0 + self.eta)
            alpha_next = p.alpha(sigma_next)
            phi_1 = -math.expm1(-h_eta)  # 1 - exp(-h_eta)
            c["x_weight"] = self.decay(p, sigma, sigma_next, h)
            c["d_weight"] = phi_1 * alpha_next
            if h_last is not None:
                k = 0.5 * phi_1 if self.solver_type == "midpoint" else 1.0 - phi_1 / h_eta
                c["correct"], c["w_corr"] = True, k * alpha_next * h / h_last
            c["noise"] = self.sde_noise(sigma, sigma_next, h, noise)
            yield c
            h_last = None if math.isinf(h) else h

    @staticmethod
    def step(m, x, state, c):
        (old_denoised,) = state
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        if c["last"]:
            x = denoised
        else:
            x = lincomb((x, c["x_weight"]), (denoised, c["d_weight"]))
            if c["correct"]:
                x = axpy(x, denoised - old_denoised, c["w_corr"])
            x = renoise(x, c["noise"])
        return x, (denoised,)


class DPMPP3MSDESampler(MultistepSDESampler):
    """DPM-Solver++(3M) SDE (k-diffusion ``sample_dpmpp_3m_sde``). NFE = N.

    With ``h_eta = (1 + eta) h``: ``x <- exp(-h_eta) x + (1 - exp(-h_eta)) D + phi_2 D1 - phi_3 D2`` where ``D1``,
    ``D2`` are the first and second divided differences of the last three data estimates (in units of ``h``;
    only ``D1`` on the second step, neither on the first), ``phi_2 = 1 - (1 - exp(-h_eta)) / h_eta`` and
    ``phi_3 = phi_2 / h_eta - 1/2``; plus noise of std ``sigma_next sqrt(1 - exp(-2 eta h))``. (Flow: the weight
    of x is :meth:`decay`, and the D terms are multiplied by ``alpha_next``.)
    """

    history = 2  # the previous two data estimates, newest first

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        h_1: float | None = None  # the previous two steps' h, newest first
        h_2: float | None = None
        for sigma, sigma_next in pairs(sigmas):
            last = sigma_next == 0.0
            c: dict[str, Any] = {"at": Level(sigma), "last": last, "order": 1, "x_weight": 1.0, "d_weight": 0.0}
            c.update(r0_inv=0.0, r1_inv=0.0, w_d1_1=0.0, r_sum_inv=0.0, w_d1=0.0, w_d2=0.0, w_corr=0.0)
            if last:
                c["noise"] = coefficients.no_renoising()
                yield c
                continue
            h = p.lambda_step(sigma, sigma_next)
            h_eta = h * (1.0 + self.eta)
            alpha_next = p.alpha(sigma_next)
            phi_2 = 1.0 + math.expm1(-h_eta) / h_eta
            c["x_weight"] = self.decay(p, sigma, sigma_next, h)
            c["d_weight"] = math.expm1(-h_eta) * alpha_next
            if h_2 is not None:
                assert h_1 is not None  # h_2 is the h_1 of the step before
                r0, r1 = h_1 / h, h_2 / h
                phi_3 = phi_2 / h_eta - 0.5
                c.update(order=3, r0_inv=1.0 / r0, r1_inv=1.0 / r1, w_d1_1=r0 / (r0 + r1), r_sum_inv=1.0 / (r0 + r1))
                c.update(w_d1=phi_2 * alpha_next, w_d2=phi_3 * alpha_next)
            elif h_1 is not None:
                c.update(order=2, w_corr=phi_2 * alpha_next * h / h_1)
            c["noise"] = self.sde_noise(sigma, sigma_next, h, noise)
            yield c
            h_1, h_2 = (None, None) if math.isinf(h) else (h, h_1)

    @staticmethod
    def step(m, x, state, c):
        denoised_1, denoised_2 = state
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        if c["last"]:
            x = denoised
        else:
            x = axmy(scaled(x, c["x_weight"]), denoised, c["d_weight"])
            if c["order"] == 3:
                d1_0 = scaled(denoised - denoised_1, c["r0_inv"])
                d1_1 = scaled(denoised_1 - denoised_2, c["r1_inv"])
                d1 = axpy(d1_0, d1_0 - d1_1, c["w_d1_1"])
                d2 = scaled(d1_0 - d1_1, c["r_sum_inv"])
                x = axmy(axpy(x, d1, c["w_d1"]), d2, c["w_d2"])
            elif c["order"] == 2:
                x = axpy(x, denoised - denoised_1, c["w_corr"])
            x = renoise(x, c["noise"])
        return x, (denoised, denoised_1)
