"""DPM-Solver and DPM-Solver++ as diffusers implements them (Lu et al. 2022, "DPM-Solver" and "DPM-Solver++").

:class:`DPMSolverMultistepSampler` reproduces diffusers' ``DPMSolverMultistepScheduler`` (and, on EDM sigmas,
``EDMDPMSolverMultistepScheduler``, the same solver with ``alpha = 1``); :class:`DPMSolverSinglestepSampler` reproduces
``DPMSolverSinglestepScheduler``. Both step in the half-log-SNR ``lambda = log(alpha / sigma)`` with ``h = lambda_t -
lambda_s`` and the model output ``m`` of the algorithm: the data estimate ``D`` for ``"dpmsolver++"`` and
``"sde-dpmsolver++"``, the noise estimate ``eps = (x - alpha D) / sigma`` for ``"dpmsolver"`` and ``"sde-dpmsolver"``.
Every update is diffusers' formula

    ``x_t = x_weight x_s + c_0 D0 + c_1 D1 + c_2 D2 + std z``

where ``D0, D1, D2`` are the model output and its scaled differences (``D1 ~ h m'``), the weights those of
:class:`Update` (``c_1``: ``midpoint`` or ``phi_2``, ``c_2``: ``phi_3``) and ``z`` one standard normal draw (the SDE
types). In edm_sampler's state (VE: ``x = x_t / alpha_t``;
flow: the latent itself) the formulas written with ``p.alpha(sigma)``, ``sigma`` and ``lambda`` are diffusers' own: the
VP scaling cancels because ``h`` is invariant.

The plan writes each update as weights ``w`` on the current and the two previous model outputs (``D1 = (1/r0) (m0 -
m1)`` becomes ``(1/r0) (e0 - e1)`` on unit vectors), so the step is one weighted sum for every order. The weights of
``D1, D2`` sum to 0, so the step computes ``c_0 m0 + w_1 (m1 - m0) + w_2 (m2 - m0)``: large weights (up to ~20)
multiply the small differences of close outputs.

Where a schedule is one diffusers never makes, the formulas' limits are used. A last sigma of 0 (diffusers'
``final_sigmas_type="zero"``, which it refuses for the noise-prediction types) is a first-order step with ``h = inf``:
``D`` itself, except for ``"sde-dpmsolver"`` (``(x - 2 sigma_s eps + sigma_s z) / alpha_s``). A flow schedule from
sigma = 1 (``alpha = 0``, ``lambda = -inf``; diffusers' flow sigmas start below 1) has a DDIM first step (``x_t =
sigma_t x + alpha_t D``), after which differences against the output at sigma = 1 weigh 0 (multistep) or the
singlestep group restarts; the noise-prediction types cannot start there (``alpha_t / alpha_s`` is infinite) and
refuse such a schedule.

diffusers quirks reproduced here (they are its numbers; tests/test_dpm_solver.py measures them): the multistep
third-order update weighs ``D2 ~ h^2 m''/2`` by ``h phi_3`` where the Taylor expansion needs ``2 h phi_3``, so
``solver_order=3`` converges with order 2; every third-order ``"sde-dpmsolver++"`` update has ``... - 0.5`` where the
expansion of its kernel gives ``+ 0.5``, which leaves an O(1) weight on ``D2``: the multistep one is first order in
distribution, and the singlestep "heun" one does not converge (on Gaussian data its output variance is 24-40 times too
large at 12-48 steps, and grows). diffusers has no third-order ``"sde-dpmsolver"`` update (its step raises
UnboundLocalError, as does EDMDPMSolverMultistepScheduler's third-order ``"sde-dpmsolver++"``): the multistep sampler
refuses ``"sde-dpmsolver"`` with ``solver_order=3``.
"""

from __future__ import annotations

import math

import numpy as np

from ..functional import axmy, axpy, lincomb, nonzero, renoise, scaled
from ..parametrization import Parametrization
from . import coefficients, options
from .base import BaseDiffusionSampler, Level, NoiseFn, Plan

ALGORITHM_TYPES = ("dpmsolver++", "dpmsolver", "sde-dpmsolver++", "sde-dpmsolver")
SINGLESTEP_ALGORITHM_TYPES = ("dpmsolver++", "dpmsolver", "sde-dpmsolver++")
SOLVER_TYPES = ("midpoint", "heun")

# the current and the two previous model outputs, as unit vectors: the update's weights are combinations of them
M0, M1, M2 = np.eye(3)


def lambda_step(p: Parametrization, sigma_s: float, sigma_t: float) -> float:
    """``h = lambda(sigma_t) - lambda(sigma_s)``: ``inf`` to sigma 0 and from a flow model's sigma = 1."""
    return math.inf if sigma_t == 0.0 else p.lambda_step(sigma_s, sigma_t)


def ratio(h: float, h_part: float) -> float:
    """``h / h_part`` (diffusers' ``1 / r``): 0 when ``h_part`` is infinite (a step from a flow model's sigma = 1)."""
    return 0.0 if math.isinf(h_part) else h / h_part


class Update:
    """The coefficients of one DPM-Solver update from ``sigma_s`` to ``sigma_t`` (host floats), as diffusers writes them
    in ``dpm_solver_first_order_update`` and the higher-order updates of both schedulers (``E(z) = e^z - 1``):

    * ``"dpmsolver++"``: ``x_weight = sigma_t / sigma_s``, ``c_0 = -alpha_t E(-h)``, ``phi_2 = alpha_t (E(-h) / h +
      1)``, ``phi_3 = -alpha_t ((E(-h) + h) / h^2 - 1/2)``;
    * ``"sde-dpmsolver++"``: ``x_weight = (sigma_t / sigma_s) e^-h``, ``c_0 = -alpha_t E(-2h)``, ``phi_2 = alpha_t
      (E(-2h) / 2h + 1)``, ``phi_3 = alpha_t ((-E(-2h) - 2h) / (2h)^2 - 1/2)`` (diffusers' ``- 1/2``: the expansion
      of this kernel gives ``+ 1/2``, as in the ODE's ``phi_3``), noise std ``sigma_t sqrt(-E(-2h))``;
    * ``"dpmsolver"``: ``x_weight = alpha_t / alpha_s``, ``c_0 = -sigma_t E(h)``, ``phi_2 = -sigma_t (E(h) / h - 1)``,
      ``phi_3 = -sigma_t ((E(h) - h) / h^2 - 1/2)``;
    * ``"sde-dpmsolver"``: twice the ``"dpmsolver"`` ``c_0`` and ``phi_2`` (no ``phi_3`` in diffusers), noise std
      ``sigma_t sqrt(E(2h))``.

    The "midpoint" second-order weight of ``D1`` is ``c_0 / 2``. To sigma_t = 0 (``h = inf``) the
    first-order coefficients are the limits (``sigma_t e^h = alpha_t sigma_s / alpha_s``); the higher-order ones are
    used only at finite ``h`` (the orders there are 1).
    """

    def __init__(self, p: Parametrization, algorithm_type: str, sigma_s: float, sigma_t: float):
        self.h = h = lambda_step(p, sigma_s, sigma_t)
        alpha_t = p.alpha(sigma_t)
        sde = algorithm_type.startswith("sde-")
        self.phi_2 = self.phi_3 = math.nan
        if algorithm_type.endswith("++"):  # DPM-Solver++: the data estimate, kernel e^-h (e^-2h for the SDE)
            k = 2.0 * h if sde else h
            self.x_weight = sigma_t / sigma_s * (math.exp(-h) if sde else 1.0)
            self.c_0 = -alpha_t * math.expm1(-k)
            if not math.isinf(h):
                self.phi_2 = alpha_t * (math.expm1(-k) / k + 1.0)
                if sde:  # diffusers' "- 0.5" (the ODE's phi_3 below amounts to "+ 0.5")
                    self.phi_3 = alpha_t * ((-math.expm1(-k) - k) / k**2 - 0.5)
                else:
                    self.phi_3 = -alpha_t * ((math.expm1(-h) + h) / h**2 - 0.5)
            self.std = sigma_t * math.sqrt(-math.expm1(-2.0 * h)) if sde else 0.0
        else:  # DPM-Solver: the noise estimate, kernel e^h; the SDE doubles the noise-estimate terms
            alpha_s, factor = p.alpha(sigma_s), 2.0 if sde else 1.0
            self.x_weight = alpha_t / alpha_s
            # sigma_t (e^h - 1), finite at sigma_t = 0 where it is alpha_t sigma_s / alpha_s
            sigma_expm1 = sigma_t * math.expm1(h) if sigma_t > 0.0 else alpha_t * sigma_s / alpha_s
            self.c_0 = -factor * sigma_expm1
            if not math.isinf(h):
                self.phi_2 = -factor * sigma_t * (math.expm1(h) / h - 1.0)
                self.phi_3 = math.nan if sde else -sigma_t * ((math.expm1(h) - h) / h**2 - 0.5)
            if not sde:
                self.std = 0.0
            else:  # sigma_t sqrt(e^2h - 1), alpha_t sigma_s / alpha_s at sigma_t = 0
                self.std = sigma_t * math.sqrt(math.expm1(2.0 * h)) if sigma_t > 0.0 else sigma_expm1
        self.midpoint = 0.5 * self.c_0

    def second(self, solver_type: str) -> float:
        """The weight of ``D1`` in a second-order update: ``solver_type`` "midpoint" or "heun"."""
        return self.midpoint if solver_type == "midpoint" else self.phi_2


class DPMSolverBase(BaseDiffusionSampler):
    """What the multistep and singlestep samplers share: checks, the step's coefficients and noise draws."""

    # declared by each subclass (its own allowed algorithm types): here for the type checker
    algorithm_type: str
    solver_order: int

    def validate(self) -> None:
        if self.solver_order > 3:
            raise ValueError(f"solver_order must be 1, 2 or 3, got {self.solver_order}")

    @property
    def data_prediction(self) -> bool:
        """DPM-Solver++ integrates the data estimate ``D``; DPM-Solver the noise estimate ``eps``."""
        return self.algorithm_type.endswith("++")

    def check_schedule(self, p: Parametrization, sigmas: np.ndarray) -> None:
        if not self.data_prediction and p.alpha(float(sigmas[0])) == 0.0:
            raise ValueError(
                f"algorithm_type={self.algorithm_type!r} cannot start at sigma={float(sigmas[0]):g} of a {p.name} "
                "model (alpha = 0 there, and its update scales x by alpha_t / alpha_s): start the schedule below it "
                "(diffusers' flow sigmas start at 1 - 1/num_train_timesteps, shifted) or use a '++' algorithm_type"
            )

    def coefficients(
        self, p: Parametrization, sigma: float, update: Update, weights: np.ndarray, noise: NoiseFn, sigma_next: float
    ) -> dict:
        """The entries every step of these samplers reads. SDE types draw one noise per step, on every step, where
        diffusers' ``step`` draws it (also on a last step to 0, whose noise weight is 0)."""
        sde = self.algorithm_type.startswith("sde-")
        return {
            "at": Level(sigma),
            "noise_prediction": not self.data_prediction,
            "alpha": p.alpha(sigma),
            "inv_sigma": 1.0 / sigma,
            "x_weight": update.x_weight,
            "c_0": update.c_0,  # the sum of the weights: those of D1 and D2 sum to 0
            "w": (float(weights[1]), float(weights[2])),  # the weights of m1 - m0 and m2 - m0
            "noise": (
                coefficients.renoising(1.0, update.std, True, noise, sigma, sigma_next)
                if sde
                else coefficients.no_renoising()
            ),
        }


def model_output(m, x, c):
    """One evaluation: the data estimate ``D``, or for DPM-Solver the noise estimate ``eps = (x - alpha D) / sigma``."""
    denoised = m.denoise(x, c["at"])
    m.report(x, denoised)
    if c["noise_prediction"]:
        return scaled(axmy(x, denoised, c["alpha"]), c["inv_sigma"])
    return denoised


def solver_update(x_s, m0, m1, m2, c):
    """``x_s x_weight + m0 c_0 + (m1 - m0) w_0 + (m2 - m0) w_1``: the update from the outputs (an order-1 or -2 step
    has zero weights, whose differences are then not formed)."""
    w = c["w"]
    x = lincomb((x_s, c["x_weight"]), (m0, c["c_0"]))
    if nonzero(w[0]):
        x = axpy(x, m1 - m0, w[0])
    if nonzero(w[1]):
        x = axpy(x, m2 - m0, w[1])
    return x


class DPMSolverMultistepSampler(DPMSolverBase):
    """Multistep DPM-Solver / DPM-Solver++ (diffusers ``DPMSolverMultistepScheduler``; on EDM sigmas also
    ``EDMDPMSolverMultistepScheduler``). NFE = N.

    Options as diffusers' config: ``algorithm_type``, ``solver_order`` (1-3), ``solver_type`` ("midpoint" or "heun":
    the second-order update), ``lower_order_final``, ``euler_at_final``. Step ``i`` of ``N`` uses the last
    ``order`` outputs ``m0 = m(x_i)``, ``m1``, ``m2``, where the order is ``min(solver_order, i + 1)`` except: 1 on
    the last step when ``euler_at_final``, or ``lower_order_final`` and ``N < 15``, or the schedule ends at 0
    (diffusers' ``final_sigmas_type="zero"``); at most 2 on the one before when ``lower_order_final`` and ``N < 15``.
    With ``h_0, h_1`` the previous two steps in lambda (``r0 = h_0 / h``, ``r1 = h_1 / h``):

    * order 1: ``D0 = m0``;
    * order 2: ``D1 = (1/r0) (m0 - m1)``, weight ``midpoint`` or ``phi_2`` (``solver_type``);
    * order 3: ``D1_0 = (1/r0) (m0 - m1)``, ``D1_1 = (1/r1) (m1 - m2)``, ``D1 = D1_0 + r0/(r0+r1) (D1_0 - D1_1)``,
      ``D2 = (D1_0 - D1_1) / (r0 + r1)``, weights ``phi_2`` and ``phi_3`` (``solver_type`` plays no part).

    Not covered (the config loader's side): prediction types, thresholding, ``variance_type``, and the timestep /
    sigma spacings (they make the schedule: pass it as sigmas or a discretization).
    """

    algorithm_type = options.choice("dpmsolver++", ALGORITHM_TYPES)
    solver_order = options.integer(2, minimum=1, doc="1, 2 or 3")
    solver_type = options.choice("midpoint", SOLVER_TYPES)
    lower_order_final = options.flag(True, doc="lower orders on the last two steps of calls of fewer than 15 steps")
    euler_at_final = options.flag(False, doc="a first-order last step")
    history = 2  # the previous two model outputs, newest first

    def validate(self) -> None:
        super().validate()
        if self.algorithm_type == "sde-dpmsolver" and self.solver_order == 3:
            raise ValueError(
                "solver_order=3 is not available with algorithm_type='sde-dpmsolver': diffusers has no third-order "
                "update for it (its DPMSolverMultistepScheduler.step fails there); use solver_order <= 2"
            )

    def orders(self, n: int, ends_at_zero: bool) -> list[int]:
        """diffusers' order of each of ``n`` steps (``lower_order_final``/``lower_order_second`` in its ``step``)."""
        short = self.lower_order_final and n < 15
        orders = []
        for i in range(n):
            if self.solver_order == 1 or i == 0 or (i == n - 1 and (self.euler_at_final or short or ends_at_zero)):
                orders.append(1)
            elif self.solver_order == 2 or i == 1 or (i == n - 2 and short):
                orders.append(2)
            else:
                orders.append(3)
        return orders

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        self.check_schedule(p, sigmas)
        n = len(sigmas) - 1
        steps = [lambda_step(p, float(sigmas[i]), float(sigmas[i + 1])) for i in range(n)]
        for i, order in enumerate(self.orders(n, float(sigmas[-1]) == 0.0)):
            sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
            update = Update(p, self.algorithm_type, sigma, sigma_next)
            weights = update.c_0 * M0
            if order == 2:
                d1 = ratio(steps[i], steps[i - 1]) * (M0 - M1)
                weights = weights + update.second(self.solver_type) * d1
            elif order == 3:
                h, h_0, h_1 = steps[i], steps[i - 1], steps[i - 2]
                d1_0 = ratio(h, h_0) * (M0 - M1)
                d1_1 = ratio(h, h_1) * (M1 - M2)
                # r0 / (r0 + r1) = h_0 / (h_0 + h_1) and 1 / (r0 + r1) = h / (h_0 + h_1)
                d1 = d1_0 + ratio(h_0, h_0 + h_1) * (d1_0 - d1_1)
                d2 = ratio(h, h_0 + h_1) * (d1_0 - d1_1)
                weights = weights + update.phi_2 * d1 + update.phi_3 * d2
            yield self.coefficients(p, sigma, update, weights, noise, sigma_next)

    @staticmethod
    def step(m, x, state, c):
        m1, m2 = state
        m0 = model_output(m, x, c)
        return renoise(solver_update(x, m0, m1, m2, c), c["noise"]), (m0, m1)


class DPMSolverSinglestepSampler(DPMSolverBase):
    """Singlestep DPM-Solver / DPM-Solver++ (diffusers ``DPMSolverSinglestepScheduler``). NFE = N.

    diffusers groups the schedule's steps by its order list (``get_order_list``: e.g. ``[1, 2, 3, 1, 2, 3, ..., 1]``
    for ``solver_order=3``): a group of ``k`` steps is one ``k``-th order update from its first state ``x_s``, and
    the schedule's sigmas inside it are the intermediate points. Each step evaluates the model once and goes from
    ``x_s`` to the next sigma: order 1 restarts the group at the current state (``D0 = m0``); order 2 uses ``m1``
    (at ``x_s``) and ``m0``: ``D0 = m1``, ``D1 = (1/r0) (m0 - m1)`` with weight ``midpoint`` or ``phi_2``; order 3
    uses ``m2`` (at ``x_s``), ``m1``, ``m0``: ``D0 = m2``, ``D1_0 = (1/r1) (m1 - m2)``, ``D1_1 = (1/r0) (m0 - m2)``,
    and "midpoint" adds ``phi_2 D1_1``, "heun" ``phi_2 D1 + phi_3 D2`` with ``D1 = (r0 D1_0 - r1 D1_1) / (r0 - r1)``
    and ``D2 = 2 (D1_1 - D1_0) / (r0 - r1)`` (here ``h``, ``r0 h``, ``r1 h`` are the lambda distances from ``x_s`` to
    the next sigma, the current one and the previous one).

    The order list is diffusers' for the call's ``N`` steps, with what its ``set_timesteps`` forces:
    ``lower_order_final`` is taken as True when ``N`` is not a multiple of ``solver_order`` or the schedule ends at
    0, and a schedule ending at 0 has a first-order last step. (diffusers stores that forced value in its config, so
    one such call changes its later calls; here each call is computed on its own.) A group that starts at a flow
    model's sigma = 1 restarts after its first step (the output at ``alpha = 0`` gives no usable differences).
    """

    algorithm_type = options.choice("dpmsolver++", SINGLESTEP_ALGORITHM_TYPES)
    solver_order = options.integer(2, minimum=1, doc="1, 2 or 3")
    solver_type = options.choice("midpoint", SOLVER_TYPES)
    lower_order_final = options.flag(False, doc="end on lower-order groups (diffusers' default: False)")
    history = 3  # the group's first state, and the previous two model outputs, newest first

    def orders(self, n: int, ends_at_zero: bool) -> list[int]:
        """diffusers' ``get_order_list(n)`` with the ``lower_order_final`` that its ``set_timesteps`` forces."""
        k = self.solver_order
        if k == 1:
            orders = [1] * n
        elif not (self.lower_order_final or n % k != 0 or ends_at_zero):
            orders = list(range(1, k + 1)) * (n // k)
        elif k == 2:
            orders = [1, 2] * (n // 2 - 1) + [1, 1] if n % 2 == 0 else [1, 2] * (n // 2) + [1]
        elif n % 3 == 0:
            orders = [1, 2, 3] * (n // 3 - 1) + [1, 2, 1]
        else:
            orders = [1, 2, 3] * (n // 3) + [[1], [1, 2]][n % 3 - 1]
        if ends_at_zero:
            orders[-1] = 1
        return orders

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        self.check_schedule(p, sigmas)
        n = len(sigmas) - 1
        for i, order in enumerate(self.orders(n, float(sigmas[-1]) == 0.0)):
            if order > 1 and p.alpha(float(sigmas[i - order + 1])) == 0.0:
                order -= 1  # the group from alpha = 0 restarts at its second state
            start, sigma, sigma_next = float(sigmas[i - order + 1]), float(sigmas[i]), float(sigmas[i + 1])
            update = Update(p, self.algorithm_type, start, sigma_next)
            h = update.h
            if order == 1:
                weights = update.c_0 * M0
            elif order == 2:
                d1 = ratio(h, lambda_step(p, start, sigma)) * (M0 - M1)
                weights = update.c_0 * M1 + update.second(self.solver_type) * d1
            else:
                inv_r0 = ratio(h, lambda_step(p, start, sigma))
                inv_r1 = ratio(h, lambda_step(p, start, float(sigmas[i - 1])))
                d1_0, d1_1 = inv_r1 * (M1 - M2), inv_r0 * (M0 - M2)
                if self.solver_type == "midpoint":
                    weights = update.c_0 * M2 + update.phi_2 * d1_1
                else:
                    r0, r1 = 1.0 / inv_r0, 1.0 / inv_r1
                    d1 = (r0 * d1_0 - r1 * d1_1) / (r0 - r1)
                    d2 = 2.0 * (d1_1 - d1_0) / (r0 - r1)
                    weights = update.c_0 * M2 + update.phi_2 * d1 + update.phi_3 * d2
            c = self.coefficients(p, sigma, update, weights, noise, sigma_next)
            c["restart"] = order == 1
            yield c

    @staticmethod
    def step(m, x, state, c):
        x_s, m1, m2 = state
        m0 = model_output(m, x, c)
        if c["restart"]:
            x_s = x
        return renoise(solver_update(x_s, m0, m1, m2, c), c["noise"]), (x_s, m0, m1)
