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

from .. import checks, parametrization
from ..brownian import BrownianNoise, brownian_tol
from ..functional import add_noise
from ..noise import GeneratorLike, NoiseSampler
from ..parametrization import Parametrization
from ..run import SamplingRun
from .ancestral import AncestralSampler, land_on
from .base import BaseDiffusionSampler

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
        if noise_sampler is not None:
            return super().make_noise(shape, generator, noise_sampler, sigmas, param)
        points = self.noise_points(sigmas, parametrization.get(param))
        return BrownianNoise(shape, generator, float(points.min()), float(points.max()), tol=brownian_tol(points))


class DPMPPSDESampler(BrownianSDESampler, AncestralSampler):
    """DPM-Solver++ (stochastic) (k-diffusion ``sample_dpmpp_sde``): two stages per step, NFE = 2N - 1.

    Stage 1 goes from ``sigma`` to ``sigma_s = sigma^(1-r) sigma_next^r`` (the fraction ``r`` of the step in ``t``),
    first-order with the ancestral split of ``eta``: ``x_s = (s_d / sigma) x - expm1(-h_d) D`` to
    ``s_d``, plus noise of std ``s_noise * s_u``. Stage 2 goes from ``sigma`` to ``sigma_next`` the same way with the
    data estimate ``(1 - 1/(2r)) D + 1/(2r) D(x_s, sigma_s)``. Its noise is the Brownian increment over the whole step,
    which contains stage 1's. The last step, to sigma = 0, returns ``D``.
    """

    def __init__(
        self,
        eta: float = 1.0,
        s_noise: float = 1.0,
        r: float = 0.5,
        *,
        discretization_config: Any = None,
        num_steps: int | None = None,
        guider_config: Any = None,
        verbose: bool = False,
        init_noise: str = "sgm",
        check_finite: str = "call",
    ):
        super().__init__(
            eta,
            s_noise,
            discretization_config=discretization_config,
            num_steps=num_steps,
            guider_config=guider_config,
            verbose=verbose,
            init_noise=init_noise,
            check_finite=check_finite,
        )
        self.r = checks.real("r", r, positive=True)
        if self.r > 1.0:
            raise ValueError(f"r must be in (0, 1] (the fraction of the step for the first stage), got {r!r}")

    def sigma_s(self, sigma: float, sigma_next: float, param: Parametrization | str = "ve") -> float:
        """The first stage's target: the fraction ``r`` of the step in lambda (``exp(-(t + r h))`` for VE)."""
        return parametrization.get(param).lambda_fraction(sigma, sigma_next, self.r)

    def noise_points(self, sigmas: np.ndarray, param: Parametrization | str = "ve") -> np.ndarray:
        stages = [
            self.sigma_s(float(s), float(s_next), param) for s, s_next in zip(sigmas[:-1], sigmas[1:]) if s_next > 0
        ]
        return np.concatenate([sigmas[sigmas > 0], stages])

    def first_order(self, run, x, sigma, denoised, sigma_to) -> Tensor:
        """``x`` moved from ``sigma`` to ``sigma_to`` with data estimate ``denoised``, ancestral noise included."""
        p = run.param
        sigma_down, a, sigma_up = p.ancestral_step(sigma, sigma_to, self.eta)
        h = p.lambda_step(sigma, sigma_down) if sigma_down > 0.0 else math.inf
        if math.isinf(h):  # to sigma = 0, or a flow model's step from sigma = 1: the Euler (DDIM) step
            x = land_on(x, denoised, sigma, sigma_down)
        else:
            x = x * (sigma_down / sigma) - denoised * (math.expm1(-h) * p.alpha(sigma_down))
        return self.noise_up(run, x, sigma, sigma_to, a, sigma_up)

    def step(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        denoised = run.denoise(x, sigma)
        run.report(x, sigma, sigma, denoised)
        if sigma_next == 0.0:
            return land_on(x, denoised, sigma, sigma_next)
        if run.param.alpha(sigma) == 0.0:  # a flow model at sigma = 1: no first stage to take
            return self.first_order(run, x, sigma, denoised, sigma_next)
        sigma_s = self.sigma_s(sigma, sigma_next, run.param)
        x_s = self.first_order(run, x, sigma, denoised, sigma_s)
        fac = 1.0 / (2.0 * self.r)
        denoised_d = denoised * (1.0 - fac) + run.denoise(x_s, sigma_s) * fac
        return self.first_order(run, x, sigma, denoised_d, sigma_next)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(eta={self.eta}, s_noise={self.s_noise}, r={self.r}, num_steps={self.num_steps}, "
            f"init_noise={self.init_noise!r})"
        )


class MultistepSDESampler(BrownianSDESampler, BaseDiffusionSampler):
    """Shared by the DPM-Solver++ multistep SDE samplers: ``eta``, ``s_noise`` and the SDE noise term."""

    def __init__(
        self,
        eta: float = 1.0,
        s_noise: float = 1.0,
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
        self.eta = checks.real("eta", eta, nonnegative=True)
        self.s_noise = checks.real("s_noise", s_noise, nonnegative=True)

    def decay(self, param: Parametrization, sigma: float, sigma_next: float, h: float) -> float:
        """The weight of x in a step, ``(sigma_next / sigma) exp(-eta h)``: computed as ``(alpha_next / alpha)
        exp(-(1 + eta) h)`` (k-diffusion's VE floats) where ``alpha > 0``, its limit at ``alpha = 0``."""
        alpha = param.alpha(sigma)
        if alpha == 0.0:  # h = inf
            return sigma_next / sigma if self.eta == 0.0 else 0.0
        return param.alpha(sigma_next) / alpha * math.exp(-h * (1.0 + self.eta))

    def sde_noise(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float, h: float) -> Tensor:
        """The noise of the exact SDE step: std ``sigma_next * sqrt(1 - exp(-2 eta h))`` (times ``s_noise``)."""
        if self.eta == 0.0 or self.s_noise == 0.0:
            return x
        std = sigma_next * math.sqrt(-math.expm1(-2.0 * self.eta * h)) * self.s_noise
        return add_noise(x, run.noise(sigma, sigma_next), std)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(eta={self.eta}, s_noise={self.s_noise}, num_steps={self.num_steps}, "
            f"init_noise={self.init_noise!r})"
        )


class DPMPP2MSDESampler(MultistepSDESampler):
    """DPM-Solver++(2M) SDE (k-diffusion ``sample_dpmpp_2m_sde``). NFE = N.

    With ``h_eta = (1 + eta) h``: ``x <- exp(-h_eta) x + (1 - exp(-h_eta)) D`` plus, from the second step on, the
    correction ``c (D - D_prev) h / h_prev`` with ``c = (1 - exp(-h_eta)) / 2`` (``solver_type="midpoint"``) or
    ``c = 1 - (1 - exp(-h_eta)) / h_eta`` (``"heun"``), plus noise of std ``sigma_next sqrt(1 - exp(-2 eta h))``.
    (Flow: the weight of x is :meth:`decay`, and the D terms are multiplied by ``alpha_next``.)
    """

    def __init__(
        self,
        eta: float = 1.0,
        s_noise: float = 1.0,
        solver_type: str = "midpoint",
        *,
        discretization_config: Any = None,
        num_steps: int | None = None,
        guider_config: Any = None,
        verbose: bool = False,
        init_noise: str = "sgm",
        check_finite: str = "call",
    ):
        super().__init__(
            eta,
            s_noise,
            discretization_config=discretization_config,
            num_steps=num_steps,
            guider_config=guider_config,
            verbose=verbose,
            init_noise=init_noise,
            check_finite=check_finite,
        )
        self.solver_type = checks.choice("solver_type", solver_type, SOLVER_TYPES)

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
            h_eta = h * (1.0 + self.eta)
            alpha_next = p.alpha(sigma_next)
            phi_1 = -math.expm1(-h_eta)  # 1 - exp(-h_eta)
            x = x * self.decay(p, sigma, sigma_next, h) + denoised * (phi_1 * alpha_next)
            if old_denoised is not None:
                c = 0.5 * phi_1 if self.solver_type == "midpoint" else 1.0 - phi_1 / h_eta
                x = x + (denoised - old_denoised) * (c * alpha_next * h / h_last)
            x = self.sde_noise(run, x, sigma, sigma_next, h)
            old_denoised, h_last = (None, None) if math.isinf(h) else (denoised, h)
        return x

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", solver_type={self.solver_type!r})"


class DPMPP3MSDESampler(MultistepSDESampler):
    """DPM-Solver++(3M) SDE (k-diffusion ``sample_dpmpp_3m_sde``). NFE = N.

    With ``h_eta = (1 + eta) h``: ``x <- exp(-h_eta) x + (1 - exp(-h_eta)) D + phi_2 D1 - phi_3 D2`` where ``D1``,
    ``D2`` are the first and second divided differences of the last three data estimates (in units of ``h``;
    only ``D1`` on the second step, neither on the first), ``phi_2 = 1 - (1 - exp(-h_eta)) / h_eta`` and
    ``phi_3 = phi_2 / h_eta - 1/2``; plus noise of std ``sigma_next sqrt(1 - exp(-2 eta h))``. (Flow: the weight
    of x is :meth:`decay`, and the D terms are multiplied by ``alpha_next``.)
    """

    def sample(self, run: SamplingRun, x: Tensor) -> Tensor:
        p = run.param
        denoised_1 = denoised_2 = h_1 = h_2 = None  # the previous two steps, newest first
        for _, sigma, sigma_next in run.steps():
            denoised = run.denoise(x, sigma)
            run.report(x, sigma, sigma, denoised)
            if sigma_next == 0.0:
                x = denoised
                continue
            h = p.lambda_step(sigma, sigma_next)
            h_eta = h * (1.0 + self.eta)
            alpha_next = p.alpha(sigma_next)
            phi_2 = 1.0 + math.expm1(-h_eta) / h_eta
            x = x * self.decay(p, sigma, sigma_next, h) - denoised * (math.expm1(-h_eta) * alpha_next)
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) * (1.0 / r0)
                d1_1 = (denoised_1 - denoised_2) * (1.0 / r1)
                d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1))
                d2 = (d1_0 - d1_1) * (1.0 / (r0 + r1))
                phi_3 = phi_2 / h_eta - 0.5
                x = x + d1 * (phi_2 * alpha_next) - d2 * (phi_3 * alpha_next)
            elif h_1 is not None:
                x = x + (denoised - denoised_1) * (phi_2 * alpha_next * h / h_1)
            x = self.sde_noise(run, x, sigma, sigma_next, h)
            if math.isinf(h):  # a step from lambda = -inf leaves nothing to extrapolate from
                denoised_1 = denoised_2 = h_1 = h_2 = None
            else:
                denoised_1, denoised_2, h_1, h_2 = denoised, denoised_1, h, h_1
        return x
