"""Karras et al. (2022) Algorithm 2: the EDM Euler and Heun samplers with churn (sgm's ``EDMSampler`` family)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mindspore import Tensor

from .. import checks
from ..functional import add_noise, euler_step, to_d
from ..graph_loop import check_supported, sample_loop
from ..parametrization import Parametrization
from ..run import SamplingRun
from .base import SingleStepDiffusionSampler


class EDMSampler(SingleStepDiffusionSampler):
    """Karras et al. (2022) Algorithm 2 with "churn", first order (Euler); sgm's numerics.

    At each step the noise level is first raised from ``sigma_i`` to ``sigma_hat = sigma_i (1 + gamma_i)`` with
    ``gamma_i = min(s_churn / N, sqrt(2) - 1)`` if ``s_tmin <= sigma_i <= s_tmax`` else 0, by adding fresh noise of
    std ``s_noise * sqrt(sigma_hat^2 - sigma_i^2)``; noise is drawn only when ``gamma_i > 0``.

    For a flow model the VE-equivalent level ``sigma / (1 - sigma)`` is raised by ``1 + gamma_i`` (so ``sigma_hat =
    sigma (1 + gamma) / (1 + gamma sigma) <= 1``) and the state is re-noised to the flow marginal there:
    ``x_hat = a x + s_noise sqrt(sigma_hat^2 - (a sigma)^2) z`` with ``a = (1 - sigma_hat) / (1 - sigma)``; at
    sigma = 1 there is nothing to add and no noise is drawn.

    ``graph_loop=True`` runs the whole loop as one compiled graph (see :mod:`edm_sampler.graph_loop`).
    """

    loop_kind = "euler"

    def __init__(
        self,
        s_churn: float = 0.0,
        s_tmin: float = 0.0,
        s_tmax: float = float("inf"),
        s_noise: float = 1.0,
        *,
        discretization_config: Any = None,
        num_steps: int | None = None,
        guider_config: Any = None,
        verbose: bool = False,
        init_noise: str = "sgm",
        check_finite: str = "call",
        graph_loop: bool = False,
    ):
        super().__init__(
            discretization_config, num_steps, guider_config, verbose, init_noise=init_noise, check_finite=check_finite
        )
        if not isinstance(graph_loop, bool):
            raise TypeError(f"graph_loop must be True or False, got {graph_loop!r}")
        self.graph_loop = graph_loop
        self.s_churn = checks.real("s_churn", s_churn, nonnegative=True)
        self.s_tmin = checks.real("s_tmin", s_tmin, nonnegative=True)
        self.s_tmax = checks.real("s_tmax", s_tmax, nonnegative=True, finite=False)
        self.s_noise = checks.real("s_noise", s_noise, nonnegative=True)
        if self.s_tmin > self.s_tmax:
            raise ValueError(f"s_tmin must be <= s_tmax, got s_tmin={s_tmin!r}, s_tmax={s_tmax!r}")

    def gamma(self, sigma: float, num_steps: int) -> float:
        """The churn factor for a step starting at ``sigma`` in a schedule of ``num_steps`` steps."""
        if self.s_churn > 0 and self.s_tmin <= sigma <= self.s_tmax:
            return min(self.s_churn / num_steps, math.sqrt(2.0) - 1.0)
        return 0.0

    def max_model_sigma(self, sigmas: np.ndarray, param: Parametrization) -> float:
        n = len(sigmas) - 1
        return max((param.churn_level(float(s), self.gamma(float(s), n)) for s in sigmas[:-1]), default=0.0)

    def sample(self, run: SamplingRun, x: Tensor) -> Tensor:
        if not self.graph_loop:
            return super().sample(run, x)
        check_supported(self, run.denoiser, run.guider, run.callback, run.model_kwargs, run.check_finite)
        return sample_loop(self.loop_kind, self, run, x)

    def churn_plan(self, param: Parametrization, sigma: float, num_steps: int) -> tuple[float, float, float]:
        """``(sigma_hat, a, std)``: the churn of a step from ``sigma`` is ``x_hat = a x + std z`` (no churn, and no
        draw, when ``sigma_hat == sigma``)."""
        gamma = self.gamma(sigma, num_steps)
        if gamma == 0.0:
            return sigma, 1.0, 0.0
        sigma_hat = param.churn_level(sigma, gamma)
        if sigma_hat == sigma:  # a flow model at sigma = 1
            return sigma, 1.0, 0.0
        a, std = param.renoise(sigma, sigma_hat)
        return sigma_hat, a, self.s_noise * std

    def churn(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> tuple[Tensor, float]:
        """Algorithm 2, lines 4-6: temporarily increase the noise level to ``sigma_hat``."""
        sigma_hat, a, std = self.churn_plan(run.param, sigma, run.num_steps)
        if sigma_hat == sigma:
            return x, sigma
        noise = run.noise(sigma, sigma_next)
        return add_noise(x if a == 1.0 else x * a, noise, std), sigma_hat

    def step(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        x_hat, sigma_hat = self.churn(run, x, sigma, sigma_next)
        denoised = run.denoise(x_hat, sigma_hat)
        run.report(x_hat, sigma, sigma_hat, denoised)
        d = to_d(x_hat, sigma_hat, denoised)
        return euler_step(x_hat, d, sigma_next - sigma_hat)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(s_churn={self.s_churn}, s_tmin={self.s_tmin}, s_tmax={self.s_tmax}, "
            f"s_noise={self.s_noise}, num_steps={self.num_steps}, init_noise={self.init_noise!r}"
            + (", graph_loop=True)" if self.graph_loop else ")")
        )


class EulerEDMSampler(EDMSampler):
    """EDM sampler with the Euler step (NFE = N). Same as :class:`EDMSampler`; the name sgm configs use."""


class HeunEDMSampler(EDMSampler):
    """EDM sampler with Heun's 2nd-order correction (Algorithm 2 in full; NFE = 2N - 1).

    The correction is skipped on the final step to ``sigma = 0``, where ``d'`` is undefined.
    """

    loop_kind = "heun"

    def step(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        x_hat, sigma_hat = self.churn(run, x, sigma, sigma_next)
        denoised = run.denoise(x_hat, sigma_hat)
        run.report(x_hat, sigma, sigma_hat, denoised)
        d = to_d(x_hat, sigma_hat, denoised)
        dt = sigma_next - sigma_hat
        x_next = euler_step(x_hat, d, dt)
        if sigma_next > 0:  # Algorithm 2, lines 9-11: the trapezoidal correction
            d_next = to_d(x_next, sigma_next, run.denoise(x_next, sigma_next))
            x_next = euler_step(x_hat, d + d_next, 0.5 * dt)  # the mean slope (d + d') / 2 over dt
        return x_next
