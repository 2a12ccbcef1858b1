"""DEIS (Zhang & Chen 2022, "Fast Sampling of Diffusion Models with Exponential Integrator"): diffusers'
``DEISMultistepScheduler`` (``algorithm_type="deis"``, ``solver_type="logrho"``), VE and flow models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..functional import axmy, axpy, lincomb, nonzero, scaled
from ..parametrization import Parametrization
from . import options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

MAX_ORDER = 3  # diffusers' DEIS has orders 1, 2 and 3
LOWER_ORDER_FINAL_STEPS = 15  # diffusers lowers the final orders only for fewer steps than this


def logrho_weights(rhos: list[float], rho_next: float) -> list[float]:
    """``C_j = integral from rhos[0] to rho_next of L_j(log rho) d rho``, newest node first (float64, host).

    ``L_j`` is the Lagrange basis polynomial in ``u = log rho`` that is 1 at ``log rhos[j]`` and 0 at the other nodes.
    With ``rho = e^u`` the integrand is ``L_j(u) e^u``, whose antiderivative is ``e^u R_j(u)``, ``R_j = L_j - L_j' +
    L_j'' - ...`` (diffusers' ``ind_fn`` for orders 2 and 3); at ``rho_next = 0`` that term vanishes.
    """
    nodes = np.log(np.asarray(rhos, dtype=np.float64))
    weights = []
    for j, node in enumerate(nodes):
        others = np.delete(nodes, j)
        basis = np.polynomial.Polynomial.fromroots(others) if len(others) else np.polynomial.Polynomial([1.0])
        basis = basis / np.prod(node - others)
        antiderivative = sum((basis.deriv(k) * (-1) ** k for k in range(1, len(nodes))), basis)
        ends = [0.0 if rho == 0.0 else rho * antiderivative(math.log(rho)) for rho in (rho_next, rhos[0])]
        weights.append(ends[0] - ends[1])
    return weights


class DEISSampler(BaseDiffusionSampler):
    """DEIS multistep, log-rho variant (diffusers' ``DEISMultistepScheduler``: ``solver_order``,
    ``lower_order_final``; ``algorithm_type="deis"``, ``solver_type="logrho"``). NFE = N.

    In ``y = x / alpha`` and ``rho = sigma / alpha`` (the VE-equivalent level; ``y = x``, ``rho = sigma`` for VE
    models) the probability-flow ODE is ``dy/drho = eps`` with the noise prediction ``eps = (x - alpha D) / sigma``. A
    step of order ``k`` integrates the polynomial in ``log rho`` through the last ``k`` noise predictions exactly::

        x_next = alpha_next (x / alpha + sum_j C_j eps_{i-j}),   C_j = integral_rho^rho_next L_j(log r) dr

    (:func:`logrho_weights`); order 1 is DDIM. This is diffusers' ``x_t = alpha_t (sample / alpha_s0 + coef1 m0 +
    ...)`` with its ``_sigma_to_alpha_sigma_t``: for VE models its VP latent is ``alpha x`` with ``alpha = 1 /
    sqrt(1 + sigma^2)`` and the scaling cancels, for flow models (``use_flow_sigmas``) the state is the same. The step
    computes it as ``x_next = alpha_next D + sigma_next eps_i + alpha_next sum_{j >= 1} C_j (eps_{i-j} - eps_i)``, the
    same number (``x / alpha = D + rho eps_i`` and ``sum_j C_j = rho_next - rho``) without cancelling ``x / alpha``
    against ``rho eps_i``, which costs float32 digits at large rho (VE sigma 14.6, flow sigma 0.9997: rho 3300).

    The order of step ``i`` is ``min(solver_order, i + 1)`` (the history it has), and with ``lower_order_final`` on a
    schedule of fewer than 15 steps the last step is first order and the one before at most second order (diffusers'
    rule). The last step may go to sigma = 0 (DDIM then lands on ``D``); diffusers' own schedules end above 0.

    ``repeated_last_sigma``: diffusers' schedules with ``use_karras_sigmas``, ``use_exponential_sigmas``,
    ``use_beta_sigmas`` or ``use_flow_sigmas`` end with their last sigma twice, ``(..., s_last, s_last)``: its final
    step goes from ``s_last`` to itself, an exact no-op that still costs a model call and counts in its step number.
    Pass such a schedule without the repeat and set ``repeated_last_sigma=True``: the sampler skips that call (NFE
    N - 1 for diffusers' N) and counts the no-op step in ``lower_order_final`` as diffusers does (the real last step
    is then at most second order, and the rule holds below 14 real steps).

    A flow model's step from sigma = 1 (alpha = 0, rho = inf; diffusers' flow schedules start below 1) is the DDIM
    step ``x_next = alpha_next D + sigma_next eps`` (``eps = x`` there) and leaves no usable history: the next step
    starts again at order 1.
    """

    solver_order = options.integer(2, minimum=1, doc="DEIS order, 1 to 3")
    lower_order_final = options.flag(True)
    repeated_last_sigma = options.flag(False)

    @property
    def history(self) -> int:  # the previous noise predictions, newest first
        return self.solver_order - 1

    def validate(self) -> None:
        if self.solver_order > MAX_ORDER:
            raise ValueError(f"solver_order must be 1, 2 or 3 (diffusers' DEIS orders), got {self.solver_order}")

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        counted = len(sigmas) - 1 + (1 if self.repeated_last_sigma else 0)  # diffusers' number of steps
        lower_final = self.lower_order_final and counted < LOWER_ORDER_FINAL_STEPS
        rhos: list[float] = []  # the levels of the usable history, newest first
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            alpha, alpha_next = p.alpha(sigma), p.alpha(sigma_next)
            c: dict[str, Any] = {"at": Level(sigma), "alpha": alpha, "inv_sigma": 1.0 / sigma, "d_weight": alpha_next}
            weights = [0.0] * self.solver_order
            weights[0] = sigma_next
            if alpha == 0.0:  # a flow model at sigma = 1: DDIM (x = eps there), no usable history after it
                rhos = []
            else:
                order = min(self.solver_order, len(rhos) + 1, counted - i if lower_final else MAX_ORDER)
                rhos = [sigma / alpha] + rhos[: self.solver_order - 1]
                coefficients = logrho_weights(rhos[:order], sigma_next / alpha_next)
                weights[1:order] = [alpha_next * w for w in coefficients[1:]]
            c["weights"] = tuple(weights)
            yield c

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        eps = scaled(axmy(x, denoised, c["alpha"]), c["inv_sigma"])
        w = c["weights"]
        x = lincomb((denoised, c["d_weight"]), (eps, w[0]))
        for j in range(len(state)):
            if nonzero(w[j + 1]):  # a start-up step's unused history
                x = axpy(x, state[j] - eps, w[j + 1])
        return x, ((eps,) + state)[: len(state)]
