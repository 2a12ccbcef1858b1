"""Ancestral samplers: a deterministic step down to ``sigma_down``, then fresh noise back up to ``sigma_next``.

The split follows k-diffusion's ``get_ancestral_step`` for VE models: with ``eta = 1`` the added noise has the
variance a DDPM ancestral step would add, with ``eta = 0`` the sampler is deterministic. Flow models use the
rectified-flow split (ComfyUI's behaviour for ``euler_ancestral`` on a CONST model): ``sigma_down = sigma_next (1 +
(sigma_next / sigma - 1) eta)``, then the state is scaled by ``alpha_next / alpha_down`` and noise tops it up to the
flow marginal at ``sigma_next`` (see :meth:`edm_sampler.parametrization.Parametrization.ancestral_step`). Both agree
at ``eta = 1`` on ``sigma_down = sigma_next^2 / sigma``. Noise is drawn only when it is added (``sigma_up > 0``), so
``eta = 0`` and the last step to sigma = 0 consume no randomness (sgm draws on every step).
"""

from __future__ import annotations

import math
from typing import Any

from mindspore import Tensor

from .. import checks
from ..functional import add_noise, euler_step, to_d
from ..parametrization import VE
from ..run import SamplingRun
from .base import SingleStepDiffusionSampler

_VE = VE()


def get_ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """``(sigma_down, sigma_up)`` with ``sigma_down**2 + sigma_up**2 == sigma_to**2``.

    ``sigma_up = min(sigma_to, eta * sqrt(sigma_to**2 (sigma_from**2 - sigma_to**2) / sigma_from**2))``.
    """
    sigma_down, _, sigma_up = _VE.ancestral_step(sigma_from, sigma_to, eta)
    return sigma_down, sigma_up


def land_on(x: Tensor, denoised: Tensor, sigma: float, sigma_down: float) -> Tensor:
    """The Euler step from ``sigma`` to ``sigma_down``; to 0 it is the denoised estimate itself (computed as
    ``x + (0 - sigma)(x - D)/sigma`` it would lose D's low bits to cancellation against x)."""
    if sigma_down == 0.0:
        return denoised
    return euler_step(x, to_d(x, sigma, denoised), sigma_down - sigma)


class AncestralSampler(SingleStepDiffusionSampler):
    """sgm's and mindone's ancestral base: ``eta`` scales the noise added back, ``s_noise`` its std.

    Its own step is the Euler ancestral step, so mindone configs that name ``AncestralSampler`` sample as
    :class:`EulerAncestralSampler` does. (mindone's own ``AncestralSampler``, used directly, runs its base class's
    plain Euler step and never adds the ancestral noise, which looks like an oversight.)
    """

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

    def noise_up(
        self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float, a: float, sigma_up: float
    ) -> Tensor:
        """``a x`` plus fresh noise of std ``s_noise * sigma_up`` (no draw when that is 0); ``a = 1`` for VE."""
        if a != 1.0:
            x = x * a
        if sigma_up == 0.0 or self.s_noise == 0.0:
            return x
        return add_noise(x, run.noise(sigma, sigma_next), self.s_noise * sigma_up)

    def step(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        sigma_down, a, sigma_up = run.param.ancestral_step(sigma, sigma_next, self.eta)
        denoised = run.denoise(x, sigma)
        run.report(x, sigma, sigma, denoised)
        x = land_on(x, denoised, sigma, sigma_down)
        return self.noise_up(run, x, sigma, sigma_next, a, sigma_up)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(eta={self.eta}, s_noise={self.s_noise}, num_steps={self.num_steps}, "
            f"init_noise={self.init_noise!r})"
        )


class EulerAncestralSampler(AncestralSampler):
    """Euler ancestral (k-diffusion ``sample_euler_ancestral``; sgm/mindone ``EulerAncestralSampler``, with ``eta``
    honoured). NFE = N."""


class DPMPP2SAncestralSampler(AncestralSampler):
    """DPM-Solver++(2S) ancestral (Lu et al. 2022; k-diffusion ``sample_dpmpp_2s_ancestral``). NFE = 2N - 1.

    In the half-log-SNR ``lambda = log(alpha / sigma)`` (``-log(sigma)`` for VE), the step to ``sigma_down`` with
    ``h = lambda_down - lambda`` evaluates the model once more at the lambda midpoint ``sigma_mid``:
    ``x_mid = (sigma_mid / sigma) x - alpha_mid expm1(-h/2) D``, ``x <- (sigma_down / sigma) x - alpha_down
    expm1(-h) D(x_mid)``. The last step (``sigma_down = 0``) is a plain Euler step, which lands on the denoised
    estimate (returned exactly); so is a flow model's step from sigma = 1 (lambda = -inf, where the midpoint would be
    sigma = 1 again): one evaluation.
    """

    def step(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        p = run.param
        sigma_down, a, sigma_up = p.ancestral_step(sigma, sigma_next, self.eta)
        denoised = run.denoise(x, sigma)
        run.report(x, sigma, sigma, denoised)
        h = p.lambda_step(sigma, sigma_down) if sigma_down > 0.0 else math.inf
        if math.isinf(h):
            x = land_on(x, denoised, sigma, sigma_down)
        else:
            sigma_mid = p.lambda_midpoint(sigma, sigma_down)
            x_mid = x * (sigma_mid / sigma) - denoised * (math.expm1(-h / 2) * p.alpha(sigma_mid))
            denoised_mid = run.denoise(x_mid, sigma_mid)
            x = x * (sigma_down / sigma) - denoised_mid * (math.expm1(-h) * p.alpha(sigma_down))
        return self.noise_up(run, x, sigma, sigma_next, a, sigma_up)
