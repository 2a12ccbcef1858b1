"""The inference schedule of a diffusers scheduler: which timesteps ``set_timesteps(n)`` picks, and the noise levels
edm_sampler integrates through, as a :class:`~edm_sampler.discretization.Discretization`.

Two families pick timesteps differently:

* the *sigma* schedulers (Euler, Euler ancestral, Heun, KDPM2, KDPM2 ancestral, LMS) take float timesteps and read
  sigma off the training table by linear interpolation, optionally respace them (Karras, exponential, beta), and end
  at 0 (or at the table's smallest sigma with ``final_sigmas_type="sigma_min"``);
* the *alpha* schedulers (DDIM, DDPM, PNDM, DPM-Solver, UniPC, DEIS...) take integer timesteps and step between the
  table's own levels, to a final level that is 0 (``alpha = 1``) or the table's first level.

The spacing rules (``linspace``, ``leading`` with ``steps_offset``, ``trailing``) are transcribed per family from
diffusers 0.42; they differ in rounding (float32 linspace for the sigma family, rounded integers for the alpha one).
"""

from __future__ import annotations

import math

import numpy as np

from .. import checks
from ..discretization import Discretization
from ..flow_schedules import beta_ppf, exponential_time_shift, linear_time_shift, stretch_to_terminal, time_shift
from ..schedules import diffusers_timesteps
from .training import TrainingSchedule

TIMESTEP_SPACINGS = ("linspace", "leading", "trailing")
RESPACINGS = ("karras", "exponential", "beta")
FINAL_SIGMAS = ("zero", "sigma_min")


def alpha_family_timesteps(spacing: str, n: int, T: int, steps_offset: int) -> np.ndarray:
    """The descending integer timesteps of DDIM/DDPM-type ``set_timesteps(n)``."""
    if spacing == "linspace":
        return np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)
    if spacing == "leading":
        return (np.arange(n) * (T // n)).round()[::-1].astype(np.int64) + steps_offset
    return (np.round(T - np.arange(n) * (T / n)) - 1).astype(np.int64)


def respace(kind: str, sigma_min: float, sigma_max: float, n: int) -> np.ndarray:
    """``n`` descending sigmas from ``sigma_max`` to ``sigma_min``: Karras (rho = 7), log-linear, or Beta(0.6, 0.6)."""
    if kind == "karras":
        ramp = np.linspace(0.0, 1.0, n)
        hi, lo = sigma_max ** (1 / 7.0), sigma_min ** (1 / 7.0)
        return (hi + ramp * (lo - hi)) ** 7.0
    if kind == "exponential":
        return np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), n))
    quantiles = beta_ppf(1.0 - np.linspace(0.0, 1.0, n), 0.6, 0.6)
    return sigma_min + quantiles * (sigma_max - sigma_min)


class SchedulerDiscretization(Discretization):
    """The noise levels a diffusers scheduler steps through for ``n`` steps, final level included.

    ``__call__(n)`` returns ``n + 1`` descending levels: the ``n`` the model is evaluated at (VE sigmas, or flow sigmas
    for the flow schedulers) and the final one (0, or a small sigma where the scheduler ends above 0). Built by
    :func:`edm_sampler.diffusers_schedulers.load_scheduler` from a scheduler config; ``describe`` names the config.
    """

    def __init__(self, levels, describe: str, parametrization: str = "ve"):
        self._levels = levels  # n -> n + 1 levels (float64)
        self.describe = describe
        self.parametrization = parametrization

    def __call__(self, n: int, do_append_zero: bool = True, flip: bool = False) -> np.ndarray:
        n = checks.integer("num_steps", n, minimum=1)
        sigmas = np.asarray(self._levels(n), dtype=np.float64)
        if len(sigmas) > 2 and sigmas[-1] == sigmas[-2]:
            # final_sigmas_type="sigma_min" on a schedule that already ends there: diffusers' last step has length 0
            # (one network call that changes nothing), so it is left out
            sigmas = sigmas[:-1]
        if not do_append_zero:
            sigmas = sigmas[:-1]
        return sigmas[::-1].copy() if flip else sigmas

    def get_sigmas(self, n: int) -> np.ndarray:
        return self(n, do_append_zero=False)

    def __repr__(self) -> str:
        return f"SchedulerDiscretization({self.describe})"


def sigma_family_levels(
    table: TrainingSchedule,
    spacing: str,
    steps_offset: int,
    respacing: str | None,
    sigma_min: float | None,
    sigma_max: float | None,
    final: str,
):
    """``n -> levels`` for the Euler-type schedulers (see the module docstring)."""
    T = table.num_train_timesteps

    def levels(n: int) -> np.ndarray:
        t = diffusers_timesteps(spacing, n, T, steps_offset)
        _check_range(t, T, spacing, steps_offset)
        sigmas = table.sigma_at(t)
        if respacing is not None:
            lo = float(sigmas[-1]) if sigma_min is None else sigma_min
            hi = float(sigmas[0]) if sigma_max is None else sigma_max
            sigmas = respace(respacing, lo, hi, n)
        last = float(table.sigmas[0]) if final == "sigma_min" else 0.0
        return np.append(sigmas, last)

    return levels


def alpha_family_levels(table: TrainingSchedule, timesteps, final_alpha_is_one: bool):
    """``n -> levels`` for the DDIM-type schedulers: the table's levels at ``timesteps(n)``, then the final level."""

    def levels(n: int) -> np.ndarray:
        t = timesteps(n)
        _check_range(t, table.num_train_timesteps)
        last = 0.0 if final_alpha_is_one else float(table.sigmas[0])
        return np.append(table.sigmas[t], last)

    return levels


def _check_range(t: np.ndarray, T: int, spacing: str = "", steps_offset: int = 0) -> None:
    if len(t) and (t.max() > T - 1 or t.min() < 0):
        detail = f" with timestep_spacing={spacing!r} and steps_offset={steps_offset}" if spacing else ""
        raise ValueError(
            f"{len(t)} steps{detail} need timesteps {t.min():g}..{t.max():g}, outside the training range "
            f"0..{T - 1}; use fewer steps"
        )


def multistep_family_timesteps(spacing: str, n: int, T: int, steps_offset: int, last: int | None = None) -> np.ndarray:
    """The integer timesteps of the DPM-Solver / UniPC / DEIS schedulers (``n + 1`` points, the last dropped), below
    ``last`` (``T`` unless ``lambda_min_clipped`` cuts the top of the table)."""
    last = T if last is None else last
    if spacing == "linspace":
        return np.linspace(0, last - 1, n + 1).round()[::-1][:-1].astype(np.int64)
    if spacing == "leading":
        return (np.arange(n + 1) * (last // (n + 1))).round()[::-1][:-1].astype(np.int64) + steps_offset
    return (np.arange(last, 0, -T / n).round() - 1).astype(np.int64)


def multistep_family_levels(
    table: TrainingSchedule,
    spacing: str,
    steps_offset: int,
    respacing: str | None,
    final: str,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    last_timestep: int | None = None,
    respaced_final: str = "last",
):
    """``n -> levels`` (VE sigmas) for the DPM-Solver / UniPC / DEIS schedulers' ``set_timesteps`` without flow sigmas:
    the table at the spacing's integer timesteps, or a respacing of the whole table's range. The final level is 0 or,
    with ``final_sigmas_type="sigma_min"``, the table's smallest sigma; after a respacing, ``respaced_final="last"``
    (UniPC) repeats the respaced schedule's last sigma instead."""
    T = table.num_train_timesteps

    def levels(n: int) -> np.ndarray:
        last = float(table.sigmas[0])
        if respacing is None:
            t = multistep_family_timesteps(spacing, n, T, steps_offset, last_timestep)
            _check_range(t, T, spacing, steps_offset)
            sigmas = table.sigma_at(t)
        else:
            lo = float(table.sigmas[0]) if sigma_min is None else sigma_min
            hi = float(table.sigmas[-1]) if sigma_max is None else sigma_max
            sigmas = respace(respacing, lo, hi, n)
            if respaced_final == "last":
                last = float(sigmas[-1])
        return np.append(sigmas, last if final == "sigma_min" else 0.0)

    return levels


def reversed_flow_sigmas(T: int, flow_shift: float, n: int) -> np.ndarray:
    """The ``n`` flow sigmas of DPM-Solver's and DEIS's ``use_flow_sigmas``: ``1 - linspace(1, 1/T, n + 1)`` shifted by
    ``flow_shift``, reversed, without its last point (0): from ``shift(1 - 1/T)`` down."""
    rising = time_shift(1.0 - np.linspace(1.0, 1.0 / T, n + 1), flow_shift)
    return rising[::-1][:-1].copy()


def flow_family_levels(
    T: int,
    flow_shift: float,
    mu: float | None,
    time_shift_type: str,
    shift_terminal: float | None,
    final: str,
):
    """``n -> levels`` (flow sigmas) for the DPM-Solver / UniPC schedulers with ``use_flow_sigmas``:
    ``linspace(1, 1/T, n + 1)[:-1]``, shifted (statically by ``flow_shift``, or dynamically by ``mu``), stretched to
    ``shift_terminal``, and the first sigma moved from 1 to ``1 - 1e-6`` as diffusers does."""

    def levels(n: int) -> np.ndarray:
        sigmas = np.linspace(1.0, 1.0 / T, n + 1)[:-1]
        if mu is None:
            sigmas = time_shift(sigmas, flow_shift)
        elif time_shift_type == "exponential":
            sigmas = exponential_time_shift(sigmas, mu)
        else:
            sigmas = linear_time_shift(sigmas, mu)
        if shift_terminal:
            sigmas = stretch_to_terminal(sigmas, shift_terminal)
        if abs(sigmas[0] - 1.0) < 1e-6:
            sigmas[0] -= 1e-6
        return np.append(sigmas, float(sigmas[-1]) if final == "sigma_min" else 0.0)

    return levels
