"""ER-SDE-Solver-3 (Cui et al. 2023, "Elucidating the Solution Space of Extended Reverse-Time SDE for Diffusion
Models", arXiv:2309.06169), VP data prediction, as ComfyUI's ``sample_er_sde`` and its ``SamplerER_SDE`` node.

In the VE-equivalent level ``l = sigma / alpha`` (``sigma`` for VE models, ``sigma / (1 - sigma)`` for flow ones) the
extended reverse-time SDE with noise scale function ``phi`` has the exact solution (data prediction ``D``)::

    x_t = (alpha_t / alpha_s) (phi(l_t) / phi(l_s)) x_s
          + alpha_t phi(l_t) integral_{l_t}^{l_s} phi'(l) / phi(l)^2 D(l) dl
          + alpha_t sqrt(l_t^2 - l_s^2 (phi(l_t) / phi(l_s))^2) z

which the solver expands in a Taylor series of ``D`` in ``l`` around ``l_s`` (integrating by parts)::

    x_t = (alpha_t / alpha_s) r x_s + alpha_t (1 - r) D_s          stage 1, r = phi(l_t) / phi(l_s)
        + alpha_t (l_t - l_s + phi(l_t) S_1) D'                    stage 2
        + alpha_t ((l_t - l_s)^2 / 2 + phi(l_t) S_2) D''           stage 3
        + alpha_t sqrt(l_t^2 - l_s^2 r^2) z,
    S_1 = integral_{l_t}^{l_s} dl / phi(l),   S_2 = integral_{l_t}^{l_s} (l - l_s) / phi(l) dl

with ``D'`` the divided difference of the last two data estimates in ``l`` and ``D''`` the difference of the last two
``D'`` over half the span of their three levels (ComfyUI's and the paper's code's estimates). Stage ``k`` needs ``k -
1`` previous estimates: step ``i`` uses ``min(max_stage, i + 1)`` stages. The step to sigma = 0 returns ``D``.

The noise scale functions, with ComfyUI's node's ``eta`` (``psi(l) = phi(l) / l``):

* ``"er_sde"`` (ComfyUI's default): ``phi(l) = l (e^(l^0.3) + 10)^eta``;
* ``"reverse_time_sde"``: ``phi(l) = l^(1 + eta)``; ``eta = 1`` is the reverse diffusion SDE (its first stage is the
  Euler ancestral step);
* ``"ode"``: ``phi(l) = l``: the probability-flow ODE, which adds no noise (``eta = 0`` gives it for every type).

Deviations from ComfyUI, each in one line:

* ``S_1`` and ``S_2`` are computed to float64 accuracy (Gauss-Legendre in ``log l``); ComfyUI takes a 200-point left
  Riemann sum, which puts its stage-2 weight 0.3-0.4% and its stage-3 weight 1-3% off on Karras schedules of 10-20
  steps (the weights are small corrections: the samples differ far less);
* a flow model's step from sigma = 1 (``l = inf``) is taken as its limit, ``x = alpha_t D + sigma_t sqrt(1 -
  (psi_t / psi_s)^2) z`` with ``psi_s = psi(inf)``, one evaluation, and leaves no history; ComfyUI moves that first
  sigma to ``percent_to_sigma(1e-4)`` (0.9999 for an unshifted model) and evaluates the model there;
* noise is drawn only where it is added (ComfyUI draws whenever ``s_noise > 0``, also when ``phi`` adds none).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..functional import axpy, lincomb, renoise, scaled
from ..parametrization import Parametrization
from . import coefficients, options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

SOLVER_TYPES = ("er_sde", "reverse_time_sde", "ode")
MAX_STAGE = 3
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_PANEL = 0.5  # width of a quadrature panel in log l: 16 nodes on it integrate these integrands to float64 precision


def _integral(f, a: float, b: float) -> float:
    """``integral_a^b f(u) du`` by 16-point Gauss-Legendre on panels of width <= 0.5 (``f`` takes an array)."""
    panels = max(1, math.ceil((b - a) / _PANEL))
    edges = np.linspace(a, b, panels + 1)
    half, mid = 0.5 * np.diff(edges)[:, None], 0.5 * (edges[1:] + edges[:-1])[:, None]
    return float(np.sum(half * _WEIGHTS * f(mid + half * _NODES)))


class ERSDESampler(BaseDiffusionSampler):
    """ER-SDE-Solver-3 (arXiv:2309.06169; ComfyUI ``sample_er_sde``, node ``SamplerER_SDE``). NFE = N.

    ``solver_type``, ``eta``, ``max_stage`` and ``s_noise`` as ComfyUI's node (see the module docstring); the
    defaults are ComfyUI's ``er_sde`` sampler. ``s_noise = 0`` keeps the ER-SDE drift without its noise, which is not
    the ODE unless ``solver_type="ode"`` or ``eta = 0``.
    """

    solver_type = options.choice("er_sde", SOLVER_TYPES, doc="the noise scale function")
    max_stage = options.integer(MAX_STAGE, minimum=1, doc="1 to 3: the Taylor terms used")
    eta = options.real(1.0, nonnegative=True, doc="the stochastic strength (0: the ODE)")
    s_noise = options.real(1.0, nonnegative=True)
    history = 2  # the previous data estimate and the previous divided difference D'

    def validate(self) -> None:
        if self.max_stage > MAX_STAGE:
            raise ValueError(f"max_stage must be 1, 2 or 3 (ER-SDE-Solver-3's stages), got {self.max_stage}")

    @property
    def stochastic(self) -> bool:
        """Whether ``phi`` differs from the ODE's ``phi(l) = l``."""
        return self.solver_type != "ode" and self.eta != 0.0

    def log_psi(self, level):
        """``log psi(l)``, ``psi(l) = phi(l) / l`` (floats or arrays; ``inf`` at ``l = inf`` unless the solver is the
        ODE, whose ``psi`` is 1). In logs: ``e^(l^0.3)`` overflows for flow levels near sigma = 1."""
        if not self.stochastic:
            return level * 0.0 if isinstance(level, np.ndarray) else 0.0
        if self.solver_type == "er_sde":
            return self.eta * np.logaddexp(level**0.3, math.log(10.0))
        return self.eta * np.log(level)

    def stage_weights(self, level: float, level_next: float, alpha_next: float) -> tuple[float, float]:
        """The weights of ``D'`` and ``D''`` (stages 2 and 3) for the step from ``l_s = level`` to ``l_t``."""

        # dl / phi(l) = du / psi(e^u) with u = log l
        def inv_psi(u):
            return np.exp(-self.log_psi(np.exp(u)))

        def offset_over_psi(u):
            return (np.exp(u) - level) * np.exp(-self.log_psi(np.exp(u)))

        lo, hi = math.log(level_next), math.log(level)
        s_1, s_2 = _integral(inv_psi, lo, hi), _integral(offset_over_psi, lo, hi)
        dt = level_next - level
        phi_next = level_next * math.exp(float(self.log_psi(level_next)))
        return alpha_next * (dt + phi_next * s_1), alpha_next * (0.5 * dt * dt + phi_next * s_2)

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        levels: list[float] = []  # the levels l of the usable previous estimates, newest first
        for sigma, sigma_next in pairs(sigmas):
            last = sigma_next == 0.0
            alpha, alpha_next = p.alpha(sigma), p.alpha(sigma_next)
            c: dict[str, Any] = {"at": Level(sigma), "last": last, "x_weight": 0.0, "d_weight": 0.0, "stage_2": False}
            c.update(stage_3=False, inv_dl=0.0, w_2=0.0, w_3=0.0)
            if last:
                c["noise"] = coefficients.no_renoising()
                yield c
                continue
            level_next = sigma_next / alpha_next
            level = sigma / alpha if alpha > 0.0 else math.inf  # a flow model at sigma = 1
            # psi_t / psi_s (<= 1: psi grows); 0 from l = inf when stochastic
            ratio = math.exp(float(self.log_psi(level_next) - self.log_psi(level)))
            c["x_weight"] = sigma_next / sigma * ratio  # (alpha_t / alpha_s) phi(l_t) / phi(l_s)
            c["d_weight"] = alpha_next * (1.0 - level_next / level * ratio)
            stage = min(self.max_stage, len(levels) + 1) if not math.isinf(level) else 1
            if stage >= 2:
                c["stage_2"], c["inv_dl"] = True, 1.0 / (level - levels[0])
                c["w_2"], w_3 = self.stage_weights(level, level_next, alpha_next)
                if stage >= 3:
                    # the third stage's weight over the half span of its difference, folded on the host
                    c["stage_3"], c["w_3"] = True, w_3 * 2.0 / (level - levels[1])
            std = self.s_noise * sigma_next * math.sqrt(max(1.0 - ratio * ratio, 0.0))
            c["noise"] = coefficients.renoising(1.0, std, std > 0.0, noise, sigma, sigma_next)
            yield c
            levels = [] if math.isinf(level) else [level] + levels[:1]

    @staticmethod
    def step(m, x, state, c):
        old_denoised, old_d1 = state
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        d1 = old_d1
        if c["last"]:
            x = denoised
        else:
            x = lincomb((x, c["x_weight"]), (denoised, c["d_weight"]))
            if c["stage_2"]:
                d1 = scaled(denoised - old_denoised, c["inv_dl"])
                x = axpy(x, d1, c["w_2"])
                if c["stage_3"]:
                    x = axpy(x, d1 - old_d1, c["w_3"])
            x = renoise(x, c["noise"])
        return x, (denoised, d1)
