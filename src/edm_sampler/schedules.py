"""More sigma schedules: k-diffusion's exponential, polyexponential and VP; explicit lists; Align Your Steps; and
the diffusers-style discrete DDPM schedule that mindone's gm port ships as ``DiffusersDDPMDiscretization``.

Every class is a :class:`~edm_sampler.discretization.Discretization`: ``get_sigmas(n)`` returns ``n`` descending
float64 sigmas computed on the host, and the base class appends the trailing 0 and flips on request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from . import checks
from .discretization import Discretization, ddpm_betas


def _check_range(sigma_min: float, sigma_max: float) -> tuple[float, float]:
    sigma_min = checks.real("sigma_min", sigma_min, positive=True)
    sigma_max = checks.real("sigma_max", sigma_max, positive=True)
    if sigma_min >= sigma_max:
        raise ValueError(f"sigma_min must be < sigma_max, got sigma_min={sigma_min!r}, sigma_max={sigma_max!r}")
    return sigma_min, sigma_max


def _log_interp(ramp: np.ndarray, sigma_min: float, sigma_max: float) -> np.ndarray:
    """``exp((1 - ramp) log sigma_max + ramp log sigma_min)``, exact where ``ramp`` is exactly 0 or 1."""
    sigmas = np.exp((1.0 - ramp) * math.log(sigma_max) + ramp * math.log(sigma_min))
    sigmas[ramp == 0.0] = sigma_max
    sigmas[ramp == 1.0] = sigma_min
    return sigmas


def loglinear_interp(sigmas: np.ndarray, n: int) -> np.ndarray:
    """Resample a descending positive schedule to ``n`` points, linearly in ``log(sigma)`` over a uniform grid.

    This is the Align-Your-Steps rule (ComfyUI's ``loglinear_interp``): both lists are placed on ``linspace(0, 1)``
    and ``log(sigma)`` is interpolated piecewise linearly, so the first and last values are kept exactly. For
    ``n == 1`` the result is the first (largest) sigma, as every other schedule here starts at its largest level.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if n == len(sigmas):
        return sigmas.copy()
    if n == 1:
        return sigmas[:1].copy()
    xs = np.linspace(0.0, 1.0, len(sigmas))
    out = np.exp(np.interp(np.linspace(0.0, 1.0, n), xs, np.log(sigmas)))
    out[0], out[-1] = sigmas[0], sigmas[-1]
    return out


class ExponentialDiscretization(Discretization):
    """Log-linear from ``sigma_max`` to ``sigma_min`` (k-diffusion ``get_sigmas_exponential``)."""

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0):
        self.sigma_min, self.sigma_max = _check_range(sigma_min, sigma_max)

    def get_sigmas(self, n: int) -> np.ndarray:
        return _log_interp(np.linspace(0.0, 1.0, n), self.sigma_min, self.sigma_max)


class PolyExponentialDiscretization(Discretization):
    """k-diffusion ``get_sigmas_polyexponential``: ``log(sigma)`` follows ``linspace(1, 0, n) ** rho``.

    ``sigma_i = exp(ramp_i (log smax - log smin) + log smin)`` with ``ramp = linspace(1, 0, n) ** rho``; ``rho = 1``
    is :class:`ExponentialDiscretization`, larger ``rho`` spends more steps at small sigmas.
    """

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 1.0):
        self.sigma_min, self.sigma_max = _check_range(sigma_min, sigma_max)
        self.rho = checks.real("rho", rho, positive=True)

    def get_sigmas(self, n: int) -> np.ndarray:
        ramp = np.linspace(1.0, 0.0, n) ** self.rho
        return _log_interp(1.0 - ramp, self.sigma_min, self.sigma_max)


class VPDiscretization(Discretization):
    """k-diffusion ``get_sigmas_vp``: the continuous VP-SDE at ``t = linspace(1, eps_s, n)``.

    ``sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1)`` (computed with ``expm1`` for accuracy near 0).
    """

    def __init__(self, beta_d: float = 19.9, beta_min: float = 0.1, eps_s: float = 1e-3):
        self.beta_d = checks.real("beta_d", beta_d, nonnegative=True)
        self.beta_min = checks.real("beta_min", beta_min, nonnegative=True)
        if self.beta_d + self.beta_min <= 0:
            raise ValueError(f"beta_d + beta_min must be > 0, got beta_d={beta_d!r}, beta_min={beta_min!r}")
        self.eps_s = checks.real("eps_s", eps_s, positive=True)
        if not self.eps_s < 1.0:
            raise ValueError(f"eps_s must be < 1 (the schedule runs from t=1 down to eps_s), got {eps_s!r}")

    def get_sigmas(self, n: int) -> np.ndarray:
        t = np.linspace(1.0, self.eps_s, n)
        return np.sqrt(np.expm1(self.beta_d * t**2 / 2.0 + self.beta_min * t))


def _sigma_list(name: str, values) -> np.ndarray:
    """Validate a descending list of sigmas (finite, > 0, an optional final 0 is dropped) as a float64 array."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Iterable, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r} ({type(values).__name__})")
    values = [checks.real(f"{name}[{i}]", v, nonnegative=True) for i, v in enumerate(values)]
    if values and values[-1] == 0.0:
        values = values[:-1]
    if not values:
        raise ValueError(f"{name} must hold at least one sigma > 0 (a final 0 is optional and dropped)")
    for i, v in enumerate(values):
        if v <= 0.0:
            raise ValueError(f"{name}[{i}] must be > 0 (only the last entry may be 0), got {v!r}")
    sigmas = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(np.diff(sigmas) >= 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name} must be strictly decreasing, got {name}[{i}]={sigmas[i]!r} <= {name}[{i + 1}]={sigmas[i + 1]!r}"
        )
    return sigmas


class ListDiscretization(Discretization):
    """An explicit schedule: descending sigmas, finite and > 0; a final 0, if given, is dropped (it is re-appended).

    By default ``get_sigmas(n)`` requires ``n == len(sigmas)`` (the list *is* the schedule). With
    ``interpolate=True`` any ``n`` is accepted and the list is resampled log-linearly as Align Your Steps does
    (see :func:`loglinear_interp`); ``n == len(sigmas)`` still returns the list unchanged.
    """

    def __init__(self, sigmas, interpolate: bool = False):
        self.sigmas = _sigma_list("sigmas", sigmas)
        if not isinstance(interpolate, (bool, np.bool_)):
            raise TypeError(f"interpolate must be a bool, got {interpolate!r} ({type(interpolate).__name__})")
        self.interpolate = bool(interpolate)

    def get_sigmas(self, n: int) -> np.ndarray:
        if self.interpolate:
            return loglinear_interp(self.sigmas, n)
        if n != len(self.sigmas):
            raise ValueError(
                f"num_steps must equal the number of non-zero sigmas ({len(self.sigmas)}) for "
                f"{type(self).__name__}, got {n}; pass interpolate=True to resample the list"
            )
        return self.sigmas.copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigmas={self.sigmas.tolist()!r}, interpolate={self.interpolate!r})"


# Align Your Steps 10-step schedules (Sabour, Fidler, Kreis, ICML 2024), as published in diffusers' ``AysSchedules``
# (identical in mindone.diffusers); the trailing 0.0 is the appended final level. ComfyUI's NOISE_LEVELS differ in
# the third or fourth decimal for SD1/SDXL and keep sigma_min instead of 0; these are the diffusers numbers.
AYS_SIGMAS: dict[str, tuple[float, ...]] = {
    "sd15": (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.0),
    "sdxl": (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.0),
    "svd": (700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.0),
}


class AlignYourStepsDiscretization(ListDiscretization):
    """The published Align-Your-Steps schedules (``model`` = ``"sdxl"``, ``"sd15"`` or ``"svd"``).

    ``n = 10`` returns the published 10 values exactly; any other ``n`` resamples their ``log(sigma)`` linearly over a
    uniform grid (the AYS paper's / ComfyUI's ``loglinear_interp``), keeping the first and last published values.
    """

    def __init__(self, model: str = "sdxl"):
        self.model = checks.choice("model", model, tuple(AYS_SIGMAS))
        super().__init__(AYS_SIGMAS[self.model], interpolate=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


TIMESTEP_SPACINGS = ("linspace", "leading", "trailing")
INTERPOLATION_TYPES = ("linear", "log_linear")
BETA_SCHEDULES = ("scaled_linear", "linear")


def diffusers_timesteps(spacing: str, n: int, T: int, steps_offset: int) -> np.ndarray:
    """The ``n`` descending (possibly fractional) timesteps of diffusers' Euler-type ``set_timesteps(n)`` for
    ``timestep_spacing`` ``"linspace"`` (float32 values, as diffusers'), ``"leading"`` (plus ``steps_offset``) or
    ``"trailing"``."""
    if spacing == "linspace":
        return np.linspace(0, T - 1, n, dtype=np.float32)[::-1].astype(np.float64)
    if spacing == "leading":
        return (np.arange(n) * (T // n)).round()[::-1].astype(np.float64) + steps_offset
    return np.round(T - np.arange(n) * (T / n)) - 1.0  # trailing: round(arange(T, 0, -T / n)) - 1, n of them


class DiffusersDDPMDiscretization(Discretization):
    """The discrete DDPM schedule as diffusers' ``EulerDiscreteScheduler.set_timesteps`` builds it.

    Mirrors mindone's ``gm.modules.diffusionmodules.discretizer.DiffusersDDPMDiscretization`` (same parameter names
    and defaults: ``linear_start=0.00085, linear_end=0.012, num_timesteps=1000, interpolation_type="linear",
    timestep_spacing="leading", steps_offset=1``, i.e. the SDXL scheduler config) and adds diffusers' ``"trailing"``
    spacing, which mindone lacks.

    The sigma table is ``sqrt((1 - alpha_bar_t) / alpha_bar_t)`` for ``t = 0 .. num_timesteps - 1`` with betas
    ``beta_schedule="scaled_linear"`` (sqrt-linear, sgm's and mindone's ``"linear"``, as
    :class:`~edm_sampler.discretization.LegacyDDPMDiscretization`) or ``"linear"`` (betas linear in ``beta``). The
    ``n`` timesteps come from ``timestep_spacing``:

    - ``"linspace"``: ``linspace(0, T - 1, n)`` (float32, as diffusers), descending;
    - ``"leading"``: ``arange(n) * (T // n) + steps_offset``, descending;
    - ``"trailing"``: ``round(arange(T, 0, -T / n)) - 1``;

    and ``sigma`` is read off the table by ``np.interp`` (``interpolation_type="linear"``). For ``n == T`` the whole
    table is returned, as mindone does. ``interpolation_type="log_linear"`` returns ``n`` sigmas log-linearly spaced
    from ``sigma(T - 1)`` to ``sigma(0)``; diffusers and mindone return ``n + 1`` there (one extra step), which would
    break the ``n``-step contract, so this is the one deliberate difference.
    """

    def __init__(
        self,
        linear_start: float = 0.00085,
        linear_end: float = 0.012,
        num_timesteps: int = 1000,
        interpolation_type: str = "linear",
        timestep_spacing: str = "leading",
        steps_offset: int = 1,
        beta_schedule: str = "scaled_linear",
    ):
        self.linear_start = checks.real("linear_start", linear_start, positive=True)
        self.linear_end = checks.real("linear_end", linear_end, positive=True)
        self.num_timesteps = checks.integer("num_timesteps", num_timesteps, minimum=2)
        self.interpolation_type = checks.choice("interpolation_type", interpolation_type, INTERPOLATION_TYPES)
        self.timestep_spacing = checks.choice("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
        self.steps_offset = checks.integer("steps_offset", steps_offset, minimum=0)
        if self.steps_offset >= self.num_timesteps:
            raise ValueError(f"steps_offset must be < num_timesteps={self.num_timesteps}, got {steps_offset!r}")
        self.beta_schedule = checks.choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
        if not self.linear_start <= self.linear_end < 1.0:
            raise ValueError(
                f"need 0 < linear_start <= linear_end < 1, got linear_start={linear_start!r}, linear_end={linear_end!r}"
            )
        betas = ddpm_betas(self.beta_schedule, self.linear_start, self.linear_end, self.num_timesteps)
        alphas_cumprod = np.cumprod(1.0 - betas)
        self._table = np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)  # ascending in t

    @property
    def sigma_table(self) -> np.ndarray:
        """``sigma(t)`` for ``t = 0 .. num_timesteps - 1`` (ascending)."""
        return self._table.copy()

    def timesteps(self, n: int) -> np.ndarray:
        """The ``n`` (descending, possibly fractional) timesteps ``timestep_spacing`` picks, as diffusers does."""
        n = checks.integer("num_steps", n, minimum=1)
        T = self.num_timesteps
        if n > T:
            raise ValueError(f"num_steps must be <= num_timesteps={T} for {type(self).__name__}, got {n}")
        steps = diffusers_timesteps(self.timestep_spacing, n, T, self.steps_offset)
        if steps[0] > T - 1:  # leading spacing with an offset
            raise ValueError(
                f"num_steps={n} with timestep_spacing='leading' and steps_offset={self.steps_offset} would need "
                f"timestep {steps[0]:.0f} > num_timesteps - 1 = {T - 1}"
            )
        return steps

    def get_sigmas(self, n: int) -> np.ndarray:
        T = self.num_timesteps
        if n == T:
            return self._table[::-1].copy()
        if self.interpolation_type == "log_linear":
            self.timesteps(n)  # same num_steps checks as the linear path
            return _log_interp(np.linspace(0.0, 1.0, n), float(self._table[0]), float(self._table[-1]))
        return np.interp(self.timesteps(n), np.arange(T, dtype=np.float64), self._table)
