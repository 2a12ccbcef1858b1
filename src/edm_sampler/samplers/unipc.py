"""UniPC: the unified predictor-corrector multistep solver (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector
Framework for Fast Sampling of Diffusion Models", arXiv:2302.04867), as diffusers' ``UniPCMultistepScheduler`` runs it.

Notation (the paper's, with ``lambda = log(alpha / sigma)``, the step ``h = lambda_t - lambda_s`` from ``s`` to ``t``):
the solver keeps the model outputs ``m`` of the last steps, each converted to the data estimate ``D`` (``predict_x0``,
the paper's data-prediction form) or to the noise estimate ``eps = (x - alpha D) / sigma`` (the noise-prediction form).
With ``hh = -h`` (data) or ``hh = h`` (noise), the older outputs ``m_k`` at ``lambda_k`` enter through the scaled
differences ``(m_k - m_0) / r_k``, ``r_k = (lambda_k - lambda_s) / h`` (negative: they lie behind ``s``), and

* UniP-p (the predictor, ``p - 1`` older outputs)::

      data:  x_t = (sigma_t / sigma_s) x_s - alpha_t expm1(-h) m_0 - alpha_t B(h) sum_k rho_k (m_k - m_0) / r_k
      noise: x_t = (alpha_t / alpha_s) x_s - sigma_t expm1(h) m_0 - sigma_t B(h) sum_k rho_k (m_k - m_0) / r_k

* UniC-p (the corrector of the step that produced ``x_t``, once the model has been evaluated there): the same update
  from the same ``x_s``, with one more node ``r = 1`` carrying ``m_t - m_0``.

``B(h) = hh`` (``solver_type="bh1"``) or ``expm1(hh)`` (``"bh2"``). The weights ``rho`` solve the order conditions
``sum_k rho_k r_k^(n-1) = n! hh phi_{n+1}(hh) / B(h)``, ``n = 1..`` the number of nodes (``phi_1(z) = (e^z - 1) / z``,
``phi_{k+1}(z) = (phi_k(z) - 1/k!) / z``); with a single node the official code (and diffusers) takes ``rho = 1/2``,
the limit of that condition as ``h -> 0``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import checks
from ..functional import axmy, axpy, lincomb, scaled
from ..parametrization import Parametrization
from . import options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

SOLVER_TYPES = ("bh1", "bh2")
MAX_ORDER = 3


def _solver_order(name: str, value: Any) -> int:
    value = checks.integer(name, value, minimum=1)
    if value > MAX_ORDER:
        raise ValueError(f"{name} must be 1, 2 or 3 (the UniP order), got {value}")
    return value


def phi(k: int, z: float) -> float:
    """``phi_k(z) = sum_j z^j / (j + k)!`` (``k >= 1``): the series near 0, where the recursion
    ``phi_{k+1}(z) = (phi_k(z) - 1/k!) / z`` loses digits, the recursion from ``phi_1 = expm1(z) / z`` elsewhere."""
    if abs(z) < 0.5:
        term, total = 1.0 / math.factorial(k), 0.0
        for j in range(30):
            total += term
            term *= z / (j + k + 1)
        return total
    value = math.expm1(z) / z
    for n in range(1, k):
        value = (value - 1.0 / math.factorial(n)) / z
    return value


def unipc_rhos(r: list[float], hh: float, b_h: float) -> list[float]:
    """The weights of the nodes ``r``: ``sum_k rho_k r_k^(n-1) = n! hh phi_{n+1}(hh) / B(h)`` for ``n = 1..len(r)``;
    ``[1/2]`` for a single node."""
    if len(r) == 1:
        return [0.5]
    size = len(r)
    b = [math.factorial(n) * hh * phi(n + 1, hh) / b_h for n in range(1, size + 1)]
    vandermonde = np.array([[node ** (n - 1) for node in r] for n in range(1, size + 1)], dtype=np.float64)
    return [float(v) for v in np.linalg.solve(vandermonde, np.array(b, dtype=np.float64))]


class UniPCSampler(BaseDiffusionSampler):
    """UniPC, multistep (diffusers ``UniPCMultistepScheduler``: ``solver_order``, ``solver_type``, ``predict_x0``,
    ``lower_order_final``, ``disable_corrector``). NFE = N: the corrector of step ``i`` uses the model output at its
    result, which step ``i + 1`` evaluates anyway (and keeps as its history), so UniC costs no evaluation.

    Step ``i`` evaluates the model at ``x_i`` (the predictor's result), corrects ``x_i`` with UniC of the previous
    step's order (unless ``i - 1`` is in ``disable_corrector``), then predicts ``x_{i+1}`` with UniP of order
    ``min(solver_order, usable history + 1)``, also capped at ``N - i`` with ``lower_order_final`` (at every step
    count: diffusers' UniPC applies it without the "fewer than 15 steps" rule its docstring states). See the module
    docstring for the equations; the VE state ``x = x_t / alpha_t`` (``sigma = sigma_t / alpha_t``) and the flow
    state (``alpha = 1 - sigma``, diffusers' ``use_flow_sigmas`` / ``prediction_type="flow_prediction"``) give
    diffusers' numbers, because ``h`` and the coefficient ratios do not depend on the VP scaling.

    Not covered: ``solver_p``, ``thresholding``, the schedules themselves (pass diffusers' sigmas, or a
    discretization that gives them), and ``use_flow_sigmas`` with ``final_sigmas_type="sigma_min"``, whose schedule
    repeats its last sigma (a zero-length last step that only evaluates the model for one more correction).
    Deliberate differences, where diffusers returns no finite result:

    * the step to sigma = 0 (``final_sigmas_type="zero"``) is first order whatever ``lower_order_final`` says: data
      form ``x = D``, noise form ``x = (x_s - sigma_s eps) / alpha_s`` (the limit of its first-order update). diffusers
      is finite there only in the data form with bh2 at order 1: bh1 gives NaN (``B(h) = -inf`` times the zero
      correction of order 1), the noise form NaN (``sigma_t * expm1(h) = 0 * inf``), and order >= 2 (with
      ``lower_order_final=False``) inf (``D1 / r`` with ``r = -0``), or a failed ``torch.linalg.solve`` at order 3;
    * a flow model's step from sigma = 1 (alpha = 0, ``h = inf``) is the first-order (DDIM) step
      ``x = (sigma_t / sigma_s) x + alpha_t D``, its result is not corrected and its output is not history (the next
      step starts again at order 1). diffusers never reaches sigma = 1: it moves the first sigma to ``1 - 1e-6``.

    ``disable_corrector`` lists step indices as diffusers does: index ``k`` skips the correction of step ``k``'s
    result (applied at step ``k + 1``).
    """

    solver_order = options.Option(2, _solver_order, "the UniP order: 1, 2 or 3")
    solver_type = options.choice("bh2", SOLVER_TYPES, "B(h) = h (bh1) or expm1(h) (bh2)")
    predict_x0 = options.flag(True, "the data-prediction form (False: the noise-prediction form)")
    lower_order_final = options.flag(True, "order at most N - i at step i")
    disable_corrector = options.steps((), "steps whose result is not corrected")

    @property
    def history(self) -> int:  # the previous (corrected) state, then the last ``solver_order`` outputs, newest first
        return self.solver_order + 1

    # -- host side -------------------------------------------------------------------------------------------------

    def update(
        self, p: Parametrization, sigma_s: float, sigma_t: float, older: list[float], new_node: bool = False
    ) -> dict:
        """The coefficients of one UniP update from ``sigma_s`` to ``sigma_t`` with the older outputs at the noise
        levels ``older`` (newest first), or of UniC (``new_node``: one more node, ``r = 1``, for ``m_t - m_0``).

        ``x``, ``m0``: the weights of ``x_s`` and ``m_0``; ``older[k]``: of ``m_k - m_0`` (``-scale B(h) rho_k / r_k``);
        ``new``: of ``m_t - m_0``; ``uses[k]``: whether ``older[k]`` enters. Tuples padded to ``solver_order - 1``
        entries (at least 1)."""
        alpha_s, alpha_t = p.alpha(sigma_s), p.alpha(sigma_t)
        h = p.lambda_step(sigma_s, sigma_t)
        if self.predict_x0:
            hh, x_weight, scale = -h, sigma_t / sigma_s, alpha_t
        else:
            hh, x_weight, scale = h, alpha_t / alpha_s, sigma_t
        b_h = hh if self.solver_type == "bh1" else math.expm1(hh)
        r = [p.lambda_step(sigma_s, sigma_k) / h for sigma_k in older]
        nodes = r + [1.0] if new_node else r
        rhos = unipc_rhos(nodes, hh, b_h) if nodes else []
        weights = [-scale * b_h * rho / r_k for rho, r_k in zip(rhos, r)]
        coefficients = self._padded(weights)
        coefficients.update(x=x_weight, m0=-scale * math.expm1(hh), on_data=self.predict_x0)
        coefficients["new"] = -scale * b_h * rhos[-1] if new_node else 0.0
        return coefficients

    def first_order(self, p: Parametrization, sigma_s: float, sigma_t: float) -> dict:
        """The first-order update where ``h`` is infinite: from alpha = 0 (flow, sigma = 1), the DDIM step on the data
        estimate, ``x_t = (sigma_t / sigma_s) x_s + alpha_t D``, in both forms; to sigma = 0, the limit of the form's
        own update (data: ``x_t = alpha_t D``; noise: ``x_t = (alpha_t / alpha_s)(x_s - sigma_s eps)``)."""
        alpha_s, alpha_t = p.alpha(sigma_s), p.alpha(sigma_t)
        coefficients = self._padded([])
        if alpha_s == 0.0 or self.predict_x0:
            coefficients.update(x=sigma_t / sigma_s, m0=alpha_t, on_data=True)
        else:
            coefficients.update(x=alpha_t / alpha_s, m0=-alpha_t * sigma_s / alpha_s, on_data=False)
        coefficients["new"] = 0.0
        return coefficients

    def _unused(self) -> dict:
        """The corrector entry of a step that does not correct (every step's dict has the same layout)."""
        coefficients = self._padded([])
        coefficients.update(x=0.0, m0=0.0, on_data=self.predict_x0, new=0.0)
        return coefficients

    def _padded(self, weights: list[float]) -> dict:
        size = max(self.solver_order - 1, 1)
        unused = size - len(weights)
        return {"older": tuple(weights) + (0.0,) * unused, "uses": (True,) * len(weights) + (False,) * unused}

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        n = len(sigmas) - 1
        usable = 0  # previous outputs usable as history (diffusers' lower_order_nums)
        # the last step's UniP (sigma_s, sigma_t, older levels): what this step's UniC repeats
        previous: tuple[float, float, list[float]] | None = None
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            correct = previous is not None and (i - 1) not in self.disable_corrector
            order = min(self.solver_order, n - i) if self.lower_order_final else self.solver_order
            order = min(order, usable + 1)
            older = [float(sigmas[i - k]) for k in range(1, order)]
            if sigma_next == 0.0 or p.alpha(sigma) == 0.0:  # h = inf
                older, predictor = [], self.first_order(p, sigma, sigma_next)
            else:
                predictor = self.update(p, sigma, sigma_next, older)
            yield {
                "at": Level(sigma),
                "eps": not self.predict_x0,
                "alpha": p.alpha(sigma),
                "inv_sigma": 1.0 / sigma,
                "correct": correct,
                "corrector": self.update(p, *previous, new_node=True) if correct and previous else self._unused(),
                "predictor": predictor,
            }
            if p.alpha(sigma) == 0.0:  # lambda = -inf: nothing to correct or extrapolate from
                usable, previous = 0, None
            else:
                usable, previous = min(usable + 1, self.solver_order), (sigma, sigma_next, older)

    # -- tensor side -----------------------------------------------------------------------------------------------

    @staticmethod
    def step(m, x, state, c):
        x_prev, outputs = state[0], state[1:]  # outputs: m_{i-1}, m_{i-2}, ... (newest first)
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        new = denoised
        if c["eps"]:
            new = scaled(axmy(x, denoised, c["alpha"]), c["inv_sigma"])
        if c["correct"]:  # UniC: redo the last step from x_prev with m_t = new as one more node
            k = c["corrector"]
            m0 = outputs[0]
            x = axpy(lincomb((x_prev, k["x"]), (m0, k["m0"])), new - m0, k["new"])
            for j in range(1, len(outputs)):
                if k["uses"][j - 1]:
                    x = axpy(x, outputs[j] - m0, k["older"][j - 1])
        k = c["predictor"]  # UniP from the corrected x, m_0 = new
        x_next = lincomb((x, k["x"]), (denoised if k["on_data"] else new, k["m0"]))
        for j in range(len(outputs) - 1):
            if k["uses"][j]:
                x_next = axpy(x_next, outputs[j] - new, k["older"][j])
        return x_next, (x, new) + outputs[:-1]
