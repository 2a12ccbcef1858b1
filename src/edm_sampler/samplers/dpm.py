"""DPM-2 (k-diffusion's ``sample_dpm_2`` and ``sample_dpm_2_ancestral``): DPM-Solver-2 (Lu et al. 2022, noise
prediction) in the half-log-SNR ``lambda = log(alpha / sigma)``: a first-order step to the lambda midpoint, then the
whole step with the noise estimate found there. For VE models (alpha = 1) that is k-diffusion's Euler to
``sqrt(sigma sigma_next)`` and the full Euler step with the slope there. Second order on the ODE; two evaluations per
step, one on the last step to sigma = 0.
"""

from __future__ import annotations

from typing import Any

from mindspore import Tensor

from ..functional import euler_step, to_d
from ..run import SamplingRun
from .ancestral import AncestralSampler, land_on
from .edm import EDMSampler


def dpm_solver_2(run: SamplingRun, x: Tensor, sigma: float, denoised: Tensor, sigma_next: float) -> Tensor:
    """One DPM-Solver-2 step on the ODE from ``sigma`` (where ``D(x) = denoised``) to ``sigma_next > 0``.

    Stage 1 is the first-order step to the lambda midpoint ``sigma_mid`` (DDIM, which is the Euler step in sigma for
    both parametrizations). Stage 2 is ``x <- (alpha_next / alpha) x + (sigma_next - alpha_next sigma / alpha) eps_mid``
    with the noise estimate ``eps_mid = (x_mid - alpha_mid D(x_mid)) / sigma_mid``; for VE, the Euler step with the
    slope at the midpoint. A flow model's step from sigma = 1 (alpha = 0, lambda = -inf) has no midpoint and stays
    first order: the Euler (DDIM) step itself, one evaluation.
    """
    p = run.param
    alpha = p.alpha(sigma)
    if alpha == 0.0:
        return euler_step(x, to_d(x, sigma, denoised), sigma_next - sigma)
    sigma_mid = p.lambda_midpoint(sigma, sigma_next)
    x_mid = euler_step(x, to_d(x, sigma, denoised), sigma_mid - sigma)
    alpha_mid = p.alpha(sigma_mid)
    denoised_mid = run.denoise(x_mid, sigma_mid)
    eps_mid = to_d(x_mid, sigma_mid, denoised_mid if alpha_mid == 1.0 else denoised_mid * alpha_mid)
    ratio = p.alpha(sigma_next) / alpha
    return euler_step(x if ratio == 1.0 else x * ratio, eps_mid, sigma_next - ratio * sigma)


class DPM2Sampler(EDMSampler):
    """DPM-2 with EDM churn (k-diffusion ``sample_dpm_2``, "inspired by DPM-Solver-2 and Algorithm 2 from Karras et al.
    (2022)"). NFE = 2N - 1.

    Churn as in :class:`EDMSampler` (``s_churn``, ``s_tmin``, ``s_tmax``, ``s_noise``; noise drawn only when
    ``gamma_i > 0``), then :func:`dpm_solver_2` from ``sigma_hat``. The last step, to sigma = 0, is the Euler step,
    which lands on the denoised estimate (returned exactly).
    """

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
    ):
        super().__init__(
            s_churn,
            s_tmin,
            s_tmax,
            s_noise,
            discretization_config=discretization_config,
            num_steps=num_steps,
            guider_config=guider_config,
            verbose=verbose,
            init_noise=init_noise,
            check_finite=check_finite,
        )

    def step(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        x_hat, sigma_hat = self.churn(run, x, sigma, sigma_next)
        denoised = run.denoise(x_hat, sigma_hat)
        run.report(x_hat, sigma, sigma_hat, denoised)
        if sigma_next == 0.0:
            return land_on(x_hat, denoised, sigma_hat, 0.0)
        return dpm_solver_2(run, x_hat, sigma_hat, denoised, sigma_next)


class DPM2AncestralSampler(AncestralSampler):
    """DPM-2 ancestral (k-diffusion ``sample_dpm_2_ancestral``): :func:`dpm_solver_2` down to ``sigma_down``, then
    fresh noise of std ``s_noise * sigma_up`` (k-diffusion's ``get_ancestral_step`` split, ``eta``). NFE = 2N - 1.

    When ``sigma_down = 0`` the step is the Euler step, which lands on the denoised estimate. With ``eta > 1`` that
    happens before the last step, and the noise ``sigma_up = sigma_next`` is still added (k-diffusion adds none there,
    which leaves the state at sigma_next without noise).
    """

    def step(self, run: SamplingRun, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        sigma_down, a, sigma_up = run.param.ancestral_step(sigma, sigma_next, self.eta)
        denoised = run.denoise(x, sigma)
        run.report(x, sigma, sigma, denoised)
        if sigma_down == 0.0:
            x = land_on(x, denoised, sigma, sigma_down)
        else:
            x = dpm_solver_2(run, x, sigma, denoised, sigma_down)
        return self.noise_up(run, x, sigma, sigma_next, a, sigma_up)
