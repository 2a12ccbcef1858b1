"""Heun++ (ComfyUI's ``sample_heunpp2``, from Carzit/sd-webui-samplers-scheduler): Heun-like steps whose slope
weights depend on the noise level, with a third evaluation one step ahead."""

from __future__ import annotations

import numpy as np

from ..functional import axpy, lincomb, renoise, scaled
from ..parametrization import Parametrization
from .base import NOT_EVALUATED, Level, NoiseFn, Plan, pairs
from .edm import EDMSampler


class HeunPP2Sampler(EDMSampler):
    """Heun++ 2 (ComfyUI ``sample_heunpp2``, Carzit's "improved Heun"; no paper). NFE = 3N - 3 (N = 1: 1).

    With EDM's churn (:class:`EDMSampler`: ``s_churn``, ``s_tmin``, ``s_tmax``, ``s_noise``) each step evaluates
    ``d = (x_hat - D) / sigma_hat``, takes the Euler predictor ``x_2 = x_hat + d dt`` (``dt = sigma_{i+1} -
    sigma_hat``) and averages slopes with weights that fade with the noise level, relative to the schedule's first
    sigma ``sigma_0``:

    * the last step is Euler;
    * the step before it is Heun-like: ``d' = (1 - w) d + w d_2``, ``d_2`` the slope at ``(x_2, sigma_{i+1})``,
      ``w = sigma_{i+1} / (2 sigma_0)``;
    * every other step also takes an Euler step from ``x_2`` to ``sigma_{i+2}``, evaluates the slope ``d_3`` there
      and uses ``d' = (1 - w_2 - w_3) d + w_2 d_2 + w_3 d_3`` with ``w_2 = sigma_{i+1} / (3 sigma_0)``, ``w_3 =
      sigma_{i+2} / (3 sigma_0)``;

    then ``x <- x_hat + d' dt``. The weights are Heun's (1/2) only where sigma is close to ``sigma_0`` and tend to Euler
    below, so the method is first order (the ODE error falls as 1/N). ``d = (x - D) / sigma`` is ``dx/dsigma`` for
    flow models too, so the steps are the same under flow (the churn is the flow re-noising of :class:`EDMSampler`).

    Deviation from ComfyUI: churn noise is drawn only on steps whose ``gamma > 0`` (ComfyUI draws ``randn_like`` on
    every step and discards it when gamma is 0; the results are the same).
    """

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        n = len(sigmas) - 1
        top = float(sigmas[0])
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            sigma_hat, churn = self.churn(p, sigma, sigma_next, n, noise)
            stages = 1 if i == n - 1 else 2 if i == n - 2 else 3
            ahead = float(sigmas[i + 2]) if stages == 3 else 0.0
            w2 = sigma_next / (stages * top) if stages > 1 else 0.0
            w3 = ahead / (3.0 * top) if stages == 3 else 0.0
            yield {
                "churn": churn,
                "at": Level(sigma_hat),
                "inv_sigma": 1.0 / sigma_hat,
                "dt": sigma_next - sigma_hat,
                "second": stages > 1,
                "at_2": Level(sigma_next) if stages > 1 else NOT_EVALUATED,
                "inv_2": 1.0 / sigma_next if stages > 1 else 0.0,
                "third": stages == 3,
                "dt_2": ahead - sigma_next if stages == 3 else 0.0,
                "at_3": Level(ahead) if stages == 3 else NOT_EVALUATED,
                # the third slope (x_3 - D) / ahead enters with w3: one weight, folded here on the host
                "weights": (1.0 - w2 - w3, w2, w3 / ahead if stages == 3 else 0.0),
            }

    @staticmethod
    def step(m, x, state, c):
        x_hat = renoise(x, c["churn"])
        denoised = m.denoise(x_hat, c["at"])
        m.report(x_hat, denoised)
        d = scaled(x_hat - denoised, c["inv_sigma"])
        x = axpy(x_hat, d, c["dt"])  # the Euler predictor x_2 (the result on the last step)
        if c["second"]:
            w = c["weights"]
            d_2 = scaled(x - m.denoise(x, c["at_2"]), c["inv_2"])
            slope = lincomb((d, w[0]), (d_2, w[1]))
            if c["third"]:
                x_3 = axpy(x, d_2, c["dt_2"])
                slope = axpy(slope, x_3 - m.denoise(x_3, c["at_3"]), w[2])
            x = axpy(x_hat, slope, c["dt"])
        return x, state
