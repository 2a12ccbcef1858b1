"""Pseudo numerical methods (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds", PNDM):
diffusers' ``PNDMScheduler`` (PLMS and PNDM) and ``IPNDMScheduler``, on VE models.

A pseudo method splits a step into a *gradient part*, a classical linear multistep (or Runge-Kutta) combination of
noise predictions ``eps = (x - D) / sigma``, and a *transfer part*, the DDIM step with that combined ``e'``. In
diffusers' VP latent ``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps`` (``a_t = alphas_cumprod[t]``) the transfer is PNDM's
eq. (9), ``PNDMScheduler._get_prev_sample``::

    x_prev = sqrt(a_prev / a_t) x_t - (a_prev - a_t) e' / (a_t sqrt(1 - a_prev) + sqrt(a_t (1 - a_t) a_prev))

which in edm_sampler's VE state (``x = x_t / sqrt(a_t)``, ``sigma = sqrt((1 - a_t) / a_t)``) is exactly the Euler
step ``x_next = x + (sigma_next - sigma) e'`` (multiply through: the VP scaling cancels). The multistep weights are
the uniform-step Adams-Bashforth ones in the step *index*, whatever the spacing of the sigmas: ``e'`` is
``e_i`` (AB1), ``(3 e_i - e_{i-1}) / 2`` (AB2), ``(23 e_i - 16 e_{i-1} + 5 e_{i-2}) / 12`` (AB3), ``(55 e_i - 59 e_{i-1}
+ 37 e_{i-2} - 9 e_{i-3}) / 24`` (AB4). What differs between the samplers here is how the history is started.

diffusers has no flow-matching variant of these schedulers, so neither does this module: a flow model is refused
before any model call. The callback sees one report per step (the step's first evaluation), as for Heun.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import checks
from ..functional import axpy, lincomb, scaled
from ..parametrization import Parametrization
from . import options
from .base import NOT_EVALUATED, BaseDiffusionSampler, Level, NoiseFn, Plan, pairs

# Adams-Bashforth weights on (e_i, e_{i-1}, e_{i-2}, e_{i-3}), by the number of noise predictions combined
AB_WEIGHTS = {
    1: (1.0, 0.0, 0.0, 0.0),
    2: (3.0 / 2.0, -1.0 / 2.0, 0.0, 0.0),
    3: (23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0, 0.0),
    4: (55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0),
}


def ab_step(order: int, dt: float) -> tuple[float, ...]:
    """The Adams-Bashforth weights of ``order`` times the step length ``dt`` (a zero weight stays zero)."""
    return tuple(w * dt for w in AB_WEIGHTS[order])


def ipndm_sigmas(num_steps: int) -> np.ndarray:
    """The VE schedule of diffusers' ``IPNDMScheduler.set_timesteps(num_steps)`` for :class:`IPNDMSampler`: its levels
    ``sigma_vp = sin(pi/2 s)^2``, ``alpha_vp = sqrt(1 - sigma_vp^2)`` at ``s = 1, (N-1)/N, ..., 0``, as ``sigma_vp /
    alpha_vp``, without the first (``s = 1``: pure noise, VE sigma = inf). ``num_steps`` values, the last 0;
    the model's timestep at a VE sigma is diffusers' ``atan2(sigma_vp, alpha_vp) * 2 / pi = atan(sigma) * 2 / pi``."""
    num_steps = checks.integer("num_steps", num_steps, minimum=2)
    s = np.linspace(1.0, 0.0, num_steps + 1)[1:]
    sigma_vp = np.sin(s * math.pi / 2.0) ** 2
    return sigma_vp / np.sqrt(1.0 - sigma_vp**2)


def _sigma_list(name: str, value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of sigmas, got {value!r}")
    return tuple(checks.real(f"{name}[]", v, positive=True) for v in value)


class PLMSSampler(BaseDiffusionSampler):
    """PLMS: diffusers' ``PNDMScheduler`` with ``skip_prk_steps=True`` (Stable Diffusion 1.x's scheduler_config;
    crowsonkb's PLMS; S-PNDM in Liu et al. 2022). VE models only. NFE = N + 1 (N = 1: 1).

    Step 0 is the pseudo improved Euler step: ``e_0 = eps(x_0, sigma_0)``, the Euler (DDIM) step to
    ``x' = x_0 + (sigma_1 - sigma_0) e_0``, ``e' = eps(x', sigma_1)``, then ``x_1 = x_0 + (sigma_1 - sigma_0) (e_0 +
    e') / 2`` (diffusers evaluates ``timesteps[1] == timesteps[2]`` twice: its ``counter == 1`` branch). Step ``i >= 1``
    evaluates ``e_i = eps(x_i, sigma_i)`` once and combines it with the earlier ``e_j`` (``e'`` is not kept) by AB2,
    AB3, then AB4. A single step (N = 1) is one Euler step, as in diffusers.

    diffusers' schedule for N steps is its ``timesteps`` without the repeat, ``t_0 > ... > t_{N-1}``, as VE sigmas
    ``sqrt((1 - a) / a)``, then the final level ``a = final_alpha_cumprod`` (``alphas_cumprod[0]`` with
    ``set_alpha_to_one=False``, so the schedule ends at a sigma > 0; 1, i.e. sigma 0, with ``True``). diffusers steps
    from ``t`` to ``t - num_train_timesteps // N``, which is the next timestep only with ``timestep_spacing="leading"``
    (SD's); with "linspace"/"trailing" spacing it evaluates the model at a timestep the state was not moved to, which
    this sampler (one schedule) does not reproduce.
    """

    history = 3  # the previous noise predictions e_{i-1}, e_{i-2}, e_{i-3}
    parametrizations = ("ve",)  # diffusers' PNDM and IPNDM schedulers have no flow-matching variant

    @staticmethod
    def coefficients(sigma: float, sigma_next: float) -> dict:
        """A plain multistep step from ``sigma`` to ``sigma_next`` (no warm-up stages, no weights yet)."""
        return {
            "at": Level(sigma),
            "inv_sigma": 1.0 / sigma,
            "dt": sigma_next - sigma,
            "seeded": False,  # IPNDM's first step: the start's noise x * seed as the first history entry
            "seed": 0.0,
            "rk": False,
            "heun": False,
            "at_mid": NOT_EVALUATED,
            "at_mid_2": NOT_EVALUATED,  # the same level, evaluated again (one Level per evaluation: the NFE count)
            "inv_mid": 0.0,
            "dt_mid": 0.0,
            "at_next": NOT_EVALUATED,
            "inv_next": 0.0,
            "weights": ab_step(1, sigma_next - sigma),  # times dt: the step is one combination with x
        }

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        n = len(sigmas) - 1
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            c = self.coefficients(sigma, sigma_next)
            if i == 0 and n > 1:  # the pseudo improved Euler warm-up (two evaluations)
                c.update(heun=True, at_next=Level(sigma_next), inv_next=1.0 / sigma_next)
            else:
                c["weights"] = ab_step(min(i + 1, 4), sigma_next - sigma)
            yield c

    @staticmethod
    def step(m, x, state, c):
        e_1, e_2, e_3 = state
        if c["seeded"]:  # a flag, not a zero weight: two elementwise ops saved on every other step
            e_1 = axpy(e_1, x, c["seed"])  # IPNDM: the noise of the start as the first history entry
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        eps = scaled(x - denoised, c["inv_sigma"])
        if c["rk"]:  # the pseudo 4th-order Runge-Kutta warm-up (PNDM eq. 13), each stage transferred from x
            e_mid = _eps(m, axpy(x, eps, c["dt_mid"]), c["at_mid"], c["inv_mid"])
            e_mid_2 = _eps(m, axpy(x, e_mid, c["dt_mid"]), c["at_mid_2"], c["inv_mid"])
            e_end = _eps(m, axpy(x, e_mid_2, c["dt"]), c["at_next"], c["inv_next"])
            x_next = axpy(x, (eps + (e_mid + e_mid_2) * 2.0 + e_end) / 6.0, c["dt"])
        elif c["heun"]:  # the pseudo improved Euler warm-up
            x_next = axpy(x, eps + _eps(m, axpy(x, eps, c["dt"]), c["at_next"], c["inv_next"]), 0.5 * c["dt"])
        else:  # AB2 and AB3 weight the older history by 0: lincomb skips those terms
            w = c["weights"]
            x_next = lincomb((x, 1.0), (eps, w[0]), (e_1, w[1]), (e_2, w[2]), (e_3, w[3]))
        return x_next, (eps, e_1, e_2)


def _eps(m, x, level, inv_sigma):
    """The noise prediction ``(x - D(x, sigma)) / sigma`` of one more evaluation in a step."""
    return scaled(x - m.denoise(x, level), inv_sigma)


class PNDMSampler(PLMSSampler):
    """PNDM (F-PNDM, Liu et al. 2022): diffusers' ``PNDMScheduler`` with ``skip_prk_steps=False`` (its default).
    VE models only. NFE = N + 9 for N >= 3 (4 per Runge-Kutta step).

    The first three steps (all of them when N < 3; diffusers needs N >= 4) are pseudo Runge-Kutta steps (PNDM eq. 13,
    ``step_prk``), every stage transferred from the step's start ``x`` at ``sigma``: ``e_1 = eps(x, sigma)``, ``e_2 =
    eps(x + (m - sigma) e_1, m)``, ``e_3 = eps(x + (m - sigma) e_2, m)``, ``e_4 = eps(x + (sigma_next - sigma) e_3,
    sigma_next)``, ``x_next = x + (sigma_next - sigma) (e_1 + 2 e_2 + 2 e_3 + e_4) / 6``; only ``e_1`` enters the
    history. Then AB4 on every later step (PLMS with a full history).

    ``m`` is the step's midpoint level. diffusers takes it at the timestep ``t - (T // N) // 2`` (``T =
    num_train_timesteps``) of its table, which the schedule alone does not give: pass those levels as
    ``midpoint_sigmas`` (one per Runge-Kutta step, each strictly between its step's sigmas). The default, ``()``, is
    the midpoint in half-log-SNR (``sqrt(sigma sigma_next)``). For odd ``T // N`` (N = 9, 27, ...) diffusers moves the
    first stage to ``t - (T // N) // 2`` but evaluates the model one timestep lower, at ``t - T // N + (T // N) // 2``;
    this sampler moves it to the level it evaluates at. A warm-up step that ends at sigma = 0 (a schedule of 3 steps
    or fewer) is an Euler step: its last stage would evaluate the model at sigma = 0.
    """

    midpoint_sigmas = options.Option((), _sigma_list, "the Runge-Kutta midpoints, one per warm-up step")

    warmup = 3  # Runge-Kutta steps

    def midpoints(self, sigmas: np.ndarray) -> list[float]:
        """The midpoint level of each Runge-Kutta step, checked against the call's schedule (a warm-up step to sigma = 0
        is an Euler step instead: its last stage would evaluate the model at sigma = 0)."""
        steps = min(self.warmup, len(sigmas) - 1)
        if steps and sigmas[steps] == 0.0:
            steps -= 1
        if not self.midpoint_sigmas:
            return [math.sqrt(float(sigmas[i]) * float(sigmas[i + 1])) for i in range(steps)]
        if len(self.midpoint_sigmas) != steps:
            raise ValueError(
                f"midpoint_sigmas: need {steps} values (one per Runge-Kutta step of this {len(sigmas) - 1}-step "
                f"schedule), got {len(self.midpoint_sigmas)}"
            )
        for i, mid in enumerate(self.midpoint_sigmas):
            if not sigmas[i + 1] < mid < sigmas[i]:
                raise ValueError(
                    f"midpoint_sigmas[{i}] = {mid!r} must lie strictly between its step's sigmas {sigmas[i]!r} and "
                    f"{sigmas[i + 1]!r}"
                )
        return list(self.midpoint_sigmas)

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        mids = self.midpoints(sigmas)
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            c = self.coefficients(sigma, sigma_next)
            if i < len(mids):
                mid = mids[i]
                c.update(rk=True, at_mid=Level(mid), at_mid_2=Level(mid), inv_mid=1.0 / mid, dt_mid=mid - sigma)
                c.update(at_next=Level(sigma_next), inv_next=1.0 / sigma_next)
            elif i < self.warmup:  # a short schedule's last step, to sigma = 0: Euler
                c["weights"] = ab_step(1, sigma_next - sigma)
            else:
                c["weights"] = ab_step(4, sigma_next - sigma)
            yield c


class IPNDMSampler(PLMSSampler):
    """diffusers' ``IPNDMScheduler`` ("improved PNDM", 4th-order pseudo linear multistep) on a VE model. NFE = N.

    diffusers' state is a VP latent on its own schedule: ``x_i = alpha_i x0 + sigma_i eps`` with ``sigma_i =
    sin(pi/2 s_i)^2``, ``alpha_i = sqrt(1 - sigma_i^2)``, ``s_i = linspace(1, 0, N + 1)``; the model is a
    v-predictor (``eps = sigma_i x_i + alpha_i v``, its ``ets``) called at ``t_i = atan2(sigma_i, alpha_i) 2 / pi``,
    and a step is AB1..AB4 on ``eps`` followed by the DDIM transfer ``x_{i+1} = alpha_{i+1} (x_i - sigma_i e') /
    alpha_i + sigma_{i+1} e'``. Mapped onto edm_sampler's VE state ``x = x_i / alpha_i`` at ``sigma = sigma_i /
    alpha_i`` that transfer is ``x + (sigma_next - sigma) e'``.

    diffusers' first step starts from pure noise (``alpha_0 = 0``, VE sigma = inf), where ``eps = x_0`` (the noise
    ``z``) and the model output is weighted by ``alpha_0 = 0`` (its data estimate is taken as 0), so that step only
    moves the noise to ``x_1 = sigma_1 z``: in VE terms the state ``sigma_1 z`` at the first finite level. This
    sampler therefore runs diffusers' steps 1..N-1 on the schedule :func:`ipndm_sigmas` ``(sigma_1 / alpha_1, ...,
    0)`` and starts the history with the noise of the start, ``x / sigma_0`` (diffusers' ``ets[0]``), so its first step
    is AB2, its second AB3, then AB4. diffusers' numbers need the start ``x = sigma_0 z``: ``init_noise="edm"``. It
    skips diffusers' first model call, whose output is multiplied by 0 (NFE N - 1 for diffusers' N).
    """

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        for i, (sigma, sigma_next) in enumerate(pairs(sigmas)):
            c = self.coefficients(sigma, sigma_next)
            if i == 0:
                c["seeded"], c["seed"] = True, 1.0 / sigma
            c["weights"] = ab_step(min(i + 2, 4), sigma_next - sigma)
            yield c
