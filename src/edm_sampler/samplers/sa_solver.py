"""SA-Solver: the stochastic Adams predictor-corrector (Xue et al. 2023, "SA-Solver: Stochastic Adams Solver for Fast
Sampling of Diffusion Models", arXiv:2309.05019), as diffusers' ``SASolverScheduler`` runs it.

Notation: ``lambda = log(alpha / sigma)``, a step from ``s`` to ``t`` has ``h = lambda_t - lambda_s``, ``tau`` is the
step's stochasticity and ``c = 1 + tau^2``. The solver integrates the SDE family whose ``tau = 0`` member is the
probability-flow ODE, holding the last model outputs ``m_k`` (data estimates ``D``, or noise estimates ``eps = (x -
alpha D) / sigma``) at ``lambda_k`` and interpolating them by the Lagrange polynomial ``sum_k l_k(lambda) m_k``:

* data prediction::

      x_t = exp(-tau^2 h) (sigma_t / sigma_s) x_s + sum_k w_k m_k + sigma_t sqrt(1 - exp(-2 tau^2 h)) z
      w_k = c sigma_t exp(-tau^2 lambda_t) int_{lambda_s}^{lambda_t} exp(c lambda) l_k(lambda) dlambda

* noise prediction::

      x_t = (alpha_t / alpha_s) x_s + sum_k w_k m_k + tau sigma_t sqrt(exp(2 h) - 1) z
      w_k = -c alpha_t int_{lambda_s}^{lambda_t} exp(-lambda) l_k(lambda) dlambda

The SA-Predictor interpolates the outputs at ``lambda_s`` and before it; the SA-Corrector, once the model has been
evaluated at the predicted ``x_t``, redoes the same step from the same ``x_s`` with the same ``z``, with ``m_t`` as one
more node. Written in ``v = (lambda_t - lambda) / h`` (1 at ``s``, 0 at ``t``), the weights are ``w_k = c alpha_t h
int_0^1 exp(-c h v) l_k(v) dv`` (data) and ``-c sigma_t h int_0^1 exp(h v) l_k(v) dv`` (noise), integrals of a cubic
at most times an exponential, computed exactly (:func:`lagrange_exponential_integrals`).

At order 2 the data-prediction form adds, as the official code and diffusers do ("similar to UniPC", an ``O(h^3)``
change), ``delta (m_0 - m_1)`` with ``delta = c alpha_t h^2 (1/2 - phi_2(-c h)) / (lambda_0 - lambda_1)``,
``phi_2(-x) = (x - 1 + exp(-x)) / x^2``, over its first two nodes (``m_0``: the newest). ``second_order`` chooses
it (``"official"``), the plain Lagrange weights (``"lagrange"``, the paper's; ComfyUI's default) or the paper's
simplified order-2 weights (``"simple"``, its Appendix D; ComfyUI's ``simple_order_2``): with ``b = alpha_t (1 -
exp(-c h))`` the first-order weight, the corrector puts ``alpha_t c h / 2`` on ``m_t`` and the rest of ``b`` on
``m_s``, the predictor ``alpha_t c h^2 / (2 (lambda_prev - lambda_s))`` on ``m_prev`` and the rest on ``m_s``.

``convention="comfyui"`` runs the step as ComfyUI's ``sample_sa_solver`` does, and :class:`SASolverPECESampler` has
its defaults (``sa_solver_pece``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .. import checks
from ..discretization import ddpm_betas
from ..functional import axmy, axpy, lincomb, scaled
from ..parametrization import Parametrization
from . import options
from .base import NOT_EVALUATED, BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

ALGORITHM_TYPES = ("data_prediction", "noise_prediction")
SECOND_ORDER_FORMS = ("official", "lagrange", "simple")
CONVENTIONS = ("diffusers", "comfyui")
MAX_ORDER = 4
# ComfyUI's default tau interval: sampling percents 0.2 to 0.8 of the model's schedule (percent_to_sigma)
COMFYUI_TAU_PERCENTS = (0.2, 0.8)


def _order(name: str, value: Any) -> int:
    value = checks.integer(name, value, minimum=1)
    if value > MAX_ORDER:
        raise ValueError(f"{name} must be 1, 2, 3 or 4, got {value}")
    return value


def _tau_interval(name: str, value: Any) -> tuple[float, float] | str | None:
    if value is None or value == "comfyui":
        return value
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(
            f"{name} must be None or a pair (sigma_low, sigma_high), or 'comfyui' (ComfyUI's interval for the model's "
            f"parametrization), got {value!r}"
        )
    low = checks.real(f"{name}[0]", value[0], nonnegative=True)
    high = checks.real(f"{name}[1]", value[1], nonnegative=True, finite=False)
    if high < low:
        raise ValueError(f"{name} must be (sigma_low, sigma_high) with sigma_low <= sigma_high, got {value!r}")
    return (low, high)


@functools.lru_cache(maxsize=None)
def comfyui_tau_interval(parametrization: str) -> tuple[float, float]:
    """ComfyUI's default stochastic interval, ``percent_to_sigma(0.8) <= sigma <= percent_to_sigma(0.2)``
    (:data:`COMFYUI_TAU_PERCENTS`), for the models of a parametrization. VE: the SD 1.x / SDXL table (ComfyUI's
    ``ModelSamplingDiscrete``: scaled-linear betas 0.00085 to 0.012 over 1000 steps, log sigma interpolated at
    timesteps ``(1 - percent) 999``), about (0.5712, 5.0924). Flow: an unshifted flow model
    (``ModelSamplingDiscreteFlow``, shift 1), (0.2, 0.8). Other models (a shifted flow model, a continuous EDM one)
    have their own: pass ``tau_interval`` for them."""
    low, high = COMFYUI_TAU_PERCENTS
    if parametrization == "flow":
        return (1.0 - high, 1.0 - low)
    betas = ddpm_betas("scaled_linear", 0.00085, 0.012, 1000)
    alphas_cumprod = np.cumprod(1.0 - betas)
    log_sigmas = np.log(np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod))

    def sigma_at(t: float) -> float:
        w = t - math.floor(t)
        return math.exp((1.0 - w) * log_sigmas[math.floor(t)] + w * log_sigmas[math.ceil(t)])

    return (sigma_at((1.0 - high) * 999.0), sigma_at((1.0 - low) * 999.0))


def exponential_moments(z: float, count: int) -> list[float]:
    """``g_n(z) = int_0^1 exp(-z v) v^n dv`` for ``n = 0 .. count - 1``: the series near 0 (where the recursion loses
    digits), else the recursion ``g_n = (n g_{n-1} - exp(-z)) / z`` from ``g_0 = -expm1(-z) / z``."""
    if abs(z) < 1.0:
        moments = []
        for n in range(count):
            term, total = 1.0, 0.0
            for k in range(40):  # sum_k (-z)^k / (k! (n + k + 1))
                total += term / (n + k + 1)
                term *= -z / (k + 1)
            moments.append(total)
        return moments
    moments = [-math.expm1(-z) / z]
    for n in range(1, count):
        moments.append((n * moments[-1] - math.exp(-z)) / z)
    return moments


def lagrange_exponential_integrals(nodes: list[float], z: float) -> list[float]:
    """``int_0^1 exp(-z v) l_k(v) dv`` for the Lagrange basis ``l_k`` on ``nodes`` (``l_k(nodes[j]) = [j == k]``)."""
    moments = exponential_moments(z, len(nodes))
    integrals = []
    for k, node in enumerate(nodes):
        others = [v for j, v in enumerate(nodes) if j != k]
        monomials = np.polynomial.polynomial.polyfromroots(others) if others else np.array([1.0])
        scale = float(np.prod([node - v for v in others]))
        integrals.append(sum(float(a) * g for a, g in zip(monomials, moments)) / scale)
    return integrals


class SASolverSampler(BaseDiffusionSampler):
    """SA-Solver (diffusers ``SASolverScheduler``: ``predictor_order``, ``corrector_order``, ``algorithm_type``,
    ``tau_func``, ``lower_order_final``, ``use_flow_sigmas``). NFE = N: the corrector of step ``i`` uses the model
    output at its result, which step ``i + 1`` evaluates anyway. See the module docstring for the equations; in the VE
    state ``x = x_t / alpha_t`` (``sigma = sigma_t / alpha_t``) and the flow state (``alpha = 1 - sigma``) they give
    diffusers' numbers, since ``lambda`` is the same in both and the VP scaling cancels.

    Step ``i`` evaluates the model at ``x_i`` (the predictor's result), corrects ``x_i`` (from step ``i - 1``'s
    start, with its noise and its ``tau``), then predicts ``x_{i+1}`` from the corrected ``x_i`` with a fresh draw
    ``z_i``. Orders: the predictor of step ``i`` uses ``min(predictor_order, i + 1)`` outputs, the corrector that redoes
    it ``min(corrector_order, i + 2)``; ``lower_order_final`` also caps them at ``N - i`` and ``N - i + 1``.

    ``tau``: diffusers' ``tau_func(t)`` of the step's start timestep, here a constant ``tau`` that applies where the
    step's start ``sigma_i`` lies in the closed interval ``tau_interval = (sigma_low, sigma_high)`` (everywhere when
    None), 0 elsewhere. diffusers' default, ``tau = 1`` for ``200 <= t <= 800``, is ``tau=1.0, tau_interval=(sigma at
    t = 200, sigma at t = 800)`` for its timestep ``t`` of each level (for the VP tables ``sqrt((1 - alphas_cumprod[t])
    / alphas_cumprod[t])``; for ``use_flow_sigmas`` the timestep is ``int(1000 sigma)``). ``tau = 0`` everywhere is the
    ODE solver; noise is still drawn every step (N draws), as diffusers draws it.

    ``repeated_last_sigma``: diffusers' schedules with ``use_karras_sigmas``, ``use_exponential_sigmas``,
    ``use_beta_sigmas`` or ``use_flow_sigmas`` end with their last sigma twice, ``(..., s_last, s_last)``: the last
    step evaluates the model at ``s_last`` for the corrector and then predicts nothing (a step of length 0). Pass the
    schedule without the repeat and set ``repeated_last_sigma=True``: the last step then evaluates the model once more
    at ``s_last`` and applies the corrector (NFE = len(sigmas), diffusers' N); ``lower_order_final`` counts that step.
    The other diffusers schedules end at the table's first level (``sigma(t = 0) > 0``), with the last predictor.

    Where diffusers has no finite formula (it never reaches these levels): a step to sigma = 0 is first order (data
    form: ``D``; noise form: the limit ``(x - c sigma_s eps + tau sigma_s z) / alpha_s``); a flow step from sigma = 1
    (``alpha = 0``, ``h = inf``) is the first-order limit of the data form (``alpha_t D``, plus ``sigma_t x`` when the
    step's tau is 0, plus ``sigma_t z`` otherwise) in both forms, is not corrected (nor, when it is the only step,
    followed by the repeated last sigma's evaluation), and leaves no history.

    ``s_noise`` scales the noise; ``pece=True`` evaluates the model again at the corrected state and uses that output
    in place of the predicted state's (Predict-Evaluate-Correct-Evaluate: NFE 2N - 1); ``second_order`` is described
    in the module docstring. ``convention="comfyui"`` follows ComfyUI's ``sample_sa_solver``: a step's tau is that of
    its end level ``sigma_{i+1}`` (diffusers: its start), noise is drawn only for steps that add it, and with
    ``lower_order_final`` the orders are lowered only on a schedule ending at 0, to at most ``N - 1 - i`` (predictor)
    and ``N - i`` (the corrector evaluated at step ``i``). ``tau_interval="comfyui"`` is ComfyUI's default interval
    (:func:`comfyui_tau_interval`).

    Not covered here: ``thresholding``, ``variance_type`` (learned-variance outputs), a ``tau_func`` other than a
    constant on an interval, and the schedules and model conversions (the lead's loader gives them).
    """

    predictor_order = options.Option(2, _order, "the SA-Predictor's number of outputs: 1 to 4")
    corrector_order = options.Option(2, _order, "the SA-Corrector's number of outputs (the new one included): 1 to 4")
    algorithm_type = options.choice("data_prediction", ALGORITHM_TYPES, "interpolate D or eps")
    tau = options.real(1.0, nonnegative=True, doc="the stochasticity where it applies (0: the ODE)")
    tau_interval = options.Option(None, _tau_interval, "(sigma_low, sigma_high) where tau applies, or None")
    lower_order_final = options.flag(True, "orders at most N - i (predictor) and N - i + 1 (corrector) at step i")
    repeated_last_sigma = options.flag(False, "diffusers' schedule repeats its last sigma (see the class docstring)")
    s_noise = options.real(1.0, nonnegative=True, doc="the noise's scale")
    pece = options.flag(False, "evaluate the model at the corrected state too (PECE)")
    second_order = options.choice("official", SECOND_ORDER_FORMS, "the order-2 weights (see the module docstring)")
    convention = options.choice("diffusers", CONVENTIONS, "whose step rules: diffusers' or ComfyUI's")

    def validate(self) -> None:
        if self.second_order == "simple" and not self.predict_x0:
            raise ValueError(
                "second_order='simple' has data-prediction weights only; use algorithm_type='data_prediction'"
            )
        if self.repeated_last_sigma and (self.pece or self.convention == "comfyui"):
            raise ValueError(
                "repeated_last_sigma=True is diffusers' schedule shape; it cannot be combined with pece=True or "
                "convention='comfyui'"
            )

    @property
    def width(self) -> int:
        """How many outputs an update can use (its weight tuples' length)."""
        return max(self.predictor_order, self.corrector_order)

    @property
    def history(self) -> int:  # the last corrected state and noise draw, then the older outputs, newest first
        return 2 + self.width - 1

    @property
    def predict_x0(self) -> bool:
        return self.algorithm_type == "data_prediction"

    def tau_at(self, sigma: float, parametrization: str = "ve") -> float:
        """The stochasticity of a step whose tau is read at ``sigma`` (``tau_interval="comfyui"``: ComfyUI's interval
        for the models of ``parametrization``)."""
        interval = self.tau_interval
        if interval == "comfyui":
            interval = comfyui_tau_interval(parametrization)
        return self.tau if interval is None or interval[0] <= sigma <= interval[1] else 0.0

    # -- host side -------------------------------------------------------------------------------------------------

    def update(
        self, p: Parametrization, sigma_s: float, sigma_t: float, nodes: list, tau: float, corrector: bool = False
    ) -> dict:
        """The coefficients of ``x_t = x_weight x_s + sum_k weights[k] m_k + std z`` with ``m_k`` the outputs at the
        noise levels ``nodes`` (newest first: ``sigma_t`` then ``sigma_s`` for the corrector, ``sigma_s`` for the
        predictor); ``std`` includes ``s_noise``. Weight tuples padded to :attr:`width`."""
        alpha_s, alpha_t = p.alpha(sigma_s), p.alpha(sigma_t)
        c = 1.0 + tau * tau
        scale = self.s_noise
        if alpha_s == 0.0:  # lambda_s = -inf (flow, sigma = 1): the data form's first-order limit
            std = sigma_t if tau > 0.0 else 0.0
            return self._padded(0.0 if tau > 0.0 else sigma_t / sigma_s, [alpha_t], std * scale)
        if sigma_t == 0.0:  # lambda_t = inf: first order
            if self.predict_x0:
                return self._padded(0.0, [1.0], 0.0)
            return self._padded(1.0 / alpha_s, [-c * sigma_s / alpha_s], tau * sigma_s / alpha_s * scale)
        h = p.lambda_step(sigma_s, sigma_t)
        v = [p.lambda_step(sigma, sigma_t) / h for sigma in nodes]  # (lambda_t - lambda_k) / h
        if self.predict_x0:
            integrals = lagrange_exponential_integrals(v, c * h)
            weights = [c * alpha_t * h * w for w in integrals]
            if len(nodes) == 2 and self.second_order == "official":  # the official code's order-2 modification
                g0, g1 = exponential_moments(c * h, 2)
                delta = c * alpha_t * h * h * (0.5 - (g0 - g1)) / (h * (v[1] - v[0]))
                weights = [weights[0] + delta, weights[1] - delta]
            elif len(nodes) == 2 and self.second_order == "simple":  # the paper's simplified order-2 weights
                first = -alpha_t * math.expm1(-c * h)
                if corrector:  # nodes (t, s): the newest output gets alpha_t c h / 2
                    weights = [0.5 * alpha_t * c * h, first - 0.5 * alpha_t * c * h]
                else:  # nodes (s, prev): lambda_prev - lambda_s = -(lambda_s - lambda_prev)
                    older = 0.5 * alpha_t * c * h * h / -p.lambda_step(nodes[1], sigma_s)
                    weights = [first - older, older]
            x_weight = math.exp(-tau * tau * h) * sigma_t / sigma_s
            std = sigma_t * math.sqrt(-math.expm1(-2.0 * tau * tau * h))
        else:
            integrals = lagrange_exponential_integrals(v, -h)
            weights = [-c * sigma_t * h * w for w in integrals]
            x_weight = alpha_t / alpha_s
            std = tau * sigma_t * math.sqrt(math.expm1(2.0 * h))
        return self._padded(x_weight, weights, std * scale)

    def _padded(self, x_weight: float, weights: list[float], std: float) -> dict:
        unused = self.width - len(weights)
        return {
            "x": x_weight,
            "weights": tuple(weights) + (0.0,) * unused,
            "uses": (True,) * len(weights) + (False,) * unused,
            "std": std,
        }

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        n = len(sigmas) - 1
        if self.repeated_last_sigma and sigmas[-1] == 0.0:
            raise ValueError(
                "SASolverSampler: repeated_last_sigma=True evaluates the model at the schedule's last sigma, which is "
                "0 here; diffusers' repeated schedules end above 0"
            )
        comfy = self.convention == "comfyui"
        counted = n + int(self.repeated_last_sigma)  # diffusers' number of steps
        lower = self.lower_order_final and (not comfy or sigmas[-1] == 0.0)
        usable = 0  # earlier outputs usable as history (diffusers' lower_order_nums)
        previous = None  # the last step's (sigma_s, sigma_t, corrector order, tau): what this step's corrector redoes
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            p_order = min(self.predictor_order, usable + 1)
            c_order = min(self.corrector_order, usable + 2)  # of the corrector that step i + 1 evaluates
            if lower and comfy:
                p_order, c_order = max(min(p_order, n - 1 - i), 1), max(min(c_order, n - 1 - i), 1)
            elif lower:
                p_order, c_order = min(p_order, counted - i), min(c_order, counted - i + 1)
            tau = self.tau_at(sigma_next if comfy else sigma, p.name)
            predictor = self.update(p, sigma, sigma_next, [float(sigmas[i - k]) for k in range(p_order)], tau)
            draw = not comfy or predictor["std"] > 0.0  # diffusers draws on every step
            correct = previous is not None
            c = {
                "at": Level(sigma),
                "eps": not self.predict_x0,
                "alpha": p.alpha(sigma),
                "inv_sigma": 1.0 / sigma,
                "correct": correct,
                "corrector": self._corrector(p, sigmas, i, previous),
                "pece": correct and self.pece,
                "at_corrected": Level(sigma) if correct and self.pece else NOT_EVALUATED,
                "draw": draw,
                "noise": noise(sigma, sigma_next) if draw else None,
                "predictor": predictor,
                "final": False,
                "at_final": NOT_EVALUATED,
                "alpha_final": 1.0,
                "inv_sigma_final": 1.0,
                "final_corrector": self._padded(0.0, [], 0.0),
            }
            if p.alpha(sigma) == 0.0:  # lambda = -inf: nothing to correct or interpolate from
                usable, previous = 0, None
            else:
                usable, previous = min(usable + 1, self.width), (sigma, sigma_next, c_order, tau)
            if self.repeated_last_sigma and i == n - 1 and previous is not None:  # diffusers' zero-length last step
                c.update(final=True, at_final=Level(sigma_next), alpha_final=p.alpha(sigma_next))
                c.update(inv_sigma_final=1.0 / sigma_next, final_corrector=self._corrector(p, sigmas, n, previous))
                noise(sigma_next, sigma_next)  # diffusers draws on that step too (its noise meets a zero weight)
            yield c

    def _corrector(self, p: Parametrization, sigmas: np.ndarray, i: int, previous: tuple | None) -> dict:
        """The corrector, at step ``i``, of the step before it (``previous``), with the output at ``sigmas[i]``."""
        if previous is None:
            return self._padded(0.0, [], 0.0)
        sigma_s, sigma_t, order, tau = previous
        return self.update(p, sigma_s, sigma_t, [float(sigmas[i - k]) for k in range(order)], tau, corrector=True)

    # -- tensor side -----------------------------------------------------------------------------------------------

    @staticmethod
    def output(m, x, level, eps, alpha, inv_sigma, report=True):
        """One evaluation: the model output the solver interpolates (``D``, or ``eps = (x - alpha D) / sigma``)."""
        denoised = m.denoise(x, level)
        if report:
            m.report(x, denoised)
        if eps:
            return scaled(axmy(x, denoised, alpha), inv_sigma)
        return denoised

    @staticmethod
    def combine(x, noise, outputs, k):
        """``k["x"] x + sum_k k["weights"][j] outputs[j] + k["std"] noise`` over the outputs the update uses."""
        x = lincomb((x, k["x"]), (noise, k["std"]))
        for j in range(len(outputs)):  # as many as the weights
            if k["uses"][j]:
                x = axpy(x, outputs[j], k["weights"][j])
        return x

    @staticmethod
    def step(m, x, state, c):
        x_prev, z_prev, older = state[0], state[1], state[2:]  # older: m_{i-1}, m_{i-2}, ...
        new = SASolverSampler.output(m, x, c["at"], c["eps"], c["alpha"], c["inv_sigma"])
        outputs = (new,) + older
        if c["correct"]:  # SA-Corrector: redo the last step from x_prev with its noise, m_i as one more node
            x = SASolverSampler.combine(x_prev, z_prev, outputs, c["corrector"])
            if c["pece"]:  # PECE: the output at the corrected state replaces the predicted state's
                new = SASolverSampler.output(m, x, c["at_corrected"], c["eps"], c["alpha"], c["inv_sigma"], False)
                outputs = (new,) + older
        z = z_prev  # a step that adds no noise draws none (ComfyUI's convention); its noise weight is 0
        if c["draw"]:
            z = c["noise"]
        x_next = SASolverSampler.combine(x, z, outputs, c["predictor"])  # SA-Predictor from the corrected x
        if c["final"]:  # the repeated last sigma: evaluate at x_next and correct it (diffusers' zero-length last step)
            last = SASolverSampler.output(m, x_next, c["at_final"], c["eps"], c["alpha_final"], c["inv_sigma_final"])
            x_next = SASolverSampler.combine(x, z, (last,) + outputs[:-1], c["final_corrector"])
        return x_next, (x, z) + outputs[:-1]


class SASolverPECESampler(SASolverSampler):
    """SA-Solver as ComfyUI's ``sa_solver_pece`` runs it (``sample_sa_solver_pece``; ``SamplerSASolver`` with its
    defaults): :class:`SASolverSampler` with predictor order 3, corrector order 4, ``pece=True`` (NFE 2N - 1),
    ``convention="comfyui"``, the paper's Lagrange weights at order 2 (``second_order="lagrange"``; ``"simple"`` is
    ComfyUI's ``simple_order_2``), ``tau = 1`` (ComfyUI's ``eta``) in ComfyUI's default interval (``tau_interval=
    "comfyui"``: sampling percents 0.2 to 0.8, :func:`comfyui_tau_interval`). ``pece=False`` is ComfyUI's
    ``sa_solver`` (NFE N); the short name ``sa_solver`` is diffusers' :class:`SASolverSampler`.

    Deviations from ComfyUI: a flow model's step from sigma = 1 is :class:`SASolverSampler`'s first-order limit
    (ComfyUI moves the first sigma to ``percent_to_sigma(1e-4)`` and treats the noise as the state there), and the
    ``"comfyui"`` interval of a VE model is SD 1.x / SDXL's whatever the model (ComfyUI reads the model's own table).
    """

    predictor_order = options.Option(3, _order, "the SA-Predictor's number of outputs: 1 to 4")
    corrector_order = options.Option(4, _order, "the SA-Corrector's number of outputs (the new one included): 1 to 4")
    algorithm_type = options.choice("data_prediction", ALGORITHM_TYPES, "interpolate D or eps")
    tau = options.real(1.0, nonnegative=True, doc="the stochasticity where it applies (ComfyUI's eta; 0: the ODE)")
    tau_interval = options.Option("comfyui", _tau_interval, "(sigma_low, sigma_high), None or 'comfyui'")
    lower_order_final = options.flag(True, "ComfyUI's lower orders at the end of a schedule ending at 0")
    repeated_last_sigma = options.flag(False, "diffusers' schedule shape (refused with ComfyUI's convention)")
    s_noise = options.real(1.0, nonnegative=True, doc="the noise's scale")
    pece = options.flag(True, "evaluate the model at the corrected state too (PECE); False: ComfyUI's sa_solver")
    second_order = options.choice("lagrange", SECOND_ORDER_FORMS, "the order-2 weights (see the module docstring)")
    convention = options.choice("comfyui", CONVENTIONS, "whose step rules: diffusers' or ComfyUI's")
