"""ComfyUI's schedulers as discretizations.

* Walkers of the model's training noise levels (``comfy/samplers.py``): ``simple``, ``sgm_uniform``, ``normal``,
  ``ddim_uniform`` and ``beta``.
* Range schedules, which need only ``sigma_min`` and ``sigma_max``: ``karras``, ``kl_optimal`` and ``laplace``
  (``exponential`` is :class:`~edm_sampler.schedules.ExponentialDiscretization`).
* ``comfy_scheduler``: ComfyUI's ``BasicScheduler`` node. It takes any scheduler name of ComfyUI's KSampler, the model's
  training schedule and ``denoise``.

ComfyUI reads the model's noise levels from its ``model_sampling`` (``comfy/model_sampling.py``). Here they are
parameters, in one of two forms (:class:`ModelSampling`):

* a DDPM model (SD1.x, SD2.x, SDXL; eps or v prediction): ``linear_start`` and ``linear_end``, and optionally
  ``num_timesteps`` (default 1000), exactly as :class:`~edm_sampler.LegacyDDPMDiscretization` takes them. The levels are
  ``sqrt((1 - abar_t) / abar_t)`` of sqrt-linear betas, ComfyUI's ``ModelSamplingDiscrete`` (its ``"linear"``);
* a flow model (SD3, Wan...: ``ModelSamplingDiscreteFlow``): ``shift``, and optionally ``multiplier`` (default 1000) and
  ``num_timesteps`` (default 1000). The levels are ``shift(k / T)`` for ``k = 1 .. T``. Flux's ``ModelSamplingFlux``
  (``shift = mu``, 10000 levels, ``timestep = sigma``) is ``shift=exp(mu), multiplier=1, num_timesteps=10000``.

Everything is float64; ComfyUI stores the table and does the arithmetic in float32 torch, so values agree to float32
rounding (about 1e-7 relative). The index arithmetic (``int(x * T / n)``, ``rint``) is the same in both.
"""

from __future__ import annotations

import difflib
import math

import numpy as np

from . import checks
from .discretization import Discretization, EDMDiscretization, ddpm_betas
from .flow_schedules import LinearQuadraticDiscretization, beta_ppf, time_shift
from .schedules import ExponentialDiscretization

# comfy/samplers.py SCHEDULER_NAMES, in ComfyUI's order
SCHEDULER_NAMES = (
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
)

# The defaults of ComfyUI's KarrasScheduler / LaplaceScheduler nodes: SD1's float32 sigma range.
SD1_SIGMA_MIN = 0.0291675
SD1_SIGMA_MAX = 14.614642


def close_choice(name: str, value, allowed) -> str:
    """``value`` if it is one of ``allowed``; else a ValueError listing them and the close matches."""
    if isinstance(value, str) and value in allowed:
        return value
    by_lower = {choice.lower(): choice for choice in allowed}  # "flx" is close to "FLUX"
    hint = [by_lower[m] for m in difflib.get_close_matches(str(value).lower(), list(by_lower), n=3, cutoff=0.5)]
    did_you_mean = f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else ""
    raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}{did_you_mean}")


class ModelSampling:
    """A model's training noise levels, as ComfyUI's ``model_sampling`` holds them (see the module docstring).

    ``sigmas`` is the ascending table (``sigma_min = sigmas[0]``, ``sigma_max = sigmas[-1]``); :meth:`timestep` and
    :meth:`sigma` are ComfyUI's maps between a noise level and the model's timestep.
    """

    def __init__(
        self,
        linear_start: float | None = None,
        linear_end: float | None = None,
        num_timesteps: int = 1000,
        shift: float | None = None,
        multiplier: float = 1000.0,
        owner: str = "this schedule",
    ):
        ddpm = linear_start is not None or linear_end is not None
        if ddpm and shift is not None:
            raise ValueError(
                f"{owner}: give the DDPM training schedule (linear_start, linear_end) or the flow shift, not both; "
                f"got linear_start={linear_start!r}, linear_end={linear_end!r}, shift={shift!r}"
            )
        if not ddpm and shift is None:
            raise ValueError(
                f"{owner} walks the model's training noise levels: pass linear_start and linear_end for a DDPM model "
                "(SD1.x/SD2.x/SDXL: 0.00085 and 0.012) or shift for a flow model (SD3: 3.0; 1.0 for no shift), and "
                "optionally num_timesteps (default 1000)"
            )
        self.num_timesteps = checks.integer("num_timesteps", num_timesteps, minimum=2)
        self.multiplier = checks.real("multiplier", multiplier, positive=True)
        if ddpm:
            if linear_start is None or linear_end is None:
                raise ValueError(
                    f"{owner}: a DDPM training schedule needs both linear_start and linear_end, got "
                    f"linear_start={linear_start!r}, linear_end={linear_end!r}"
                )
            start = checks.real("linear_start", linear_start, positive=True)
            end = checks.real("linear_end", linear_end, positive=True)
            if not start <= end < 1.0:
                raise ValueError(
                    f"need 0 < linear_start <= linear_end < 1, got linear_start={linear_start!r}, "
                    f"linear_end={linear_end!r}"
                )
            alphas_cumprod = np.cumprod(1.0 - ddpm_betas("scaled_linear", start, end, self.num_timesteps))
            self.sigmas = np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)
            self.shift = None
            self.parametrization = "ve"
        else:
            self.shift = checks.real("shift", shift, positive=True)
            ramp = np.arange(1, self.num_timesteps + 1, dtype=np.float64) / self.num_timesteps
            self.sigmas = time_shift(ramp, self.shift)
            self.parametrization = "flow"
        self._log_sigmas = np.log(self.sigmas)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: float) -> float:
        """DDPM: the index of the table level nearest to ``sigma`` in log (an integer); flow: ``sigma * multiplier``."""
        if self.parametrization == "flow":
            return sigma * self.multiplier
        return float(np.argmin(np.abs(math.log(sigma) - self._log_sigmas)))

    def sigma(self, t) -> np.ndarray:
        """DDPM: the table at (fractional) ``t``, linear in log sigma between levels, ``t`` clamped to the table;
        flow: ``shift(t / multiplier)``."""
        t = np.asarray(t, dtype=np.float64)
        if self.parametrization == "flow":
            assert self.shift is not None  # a flow model's (constructor)
            return time_shift(t / self.multiplier, self.shift)
        t = np.clip(t, 0.0, self.num_timesteps - 1)
        low = np.floor(t).astype(np.int64)
        high = np.ceil(t).astype(np.int64)
        w = t - low
        return np.exp((1.0 - w) * self._log_sigmas[low] + w * self._log_sigmas[high])


# ---------------------------------------------------------------------------------------------------------------------
# The schedules, as functions of (model sampling, n): descending levels without the final 0
# ---------------------------------------------------------------------------------------------------------------------


def simple_levels(ms: ModelSampling, n: int) -> np.ndarray:
    """ComfyUI's ``simple_scheduler``: every ``T / n``-th level from the top, ``table[-(1 + int(x * T / n))]``."""
    size = len(ms.sigmas)
    if n > size:
        raise ValueError(
            f"num_steps must be <= num_timesteps={size} for the 'simple' scheduler (it would repeat levels), got {n}"
        )
    stride = size / n
    return ms.sigmas[[size - 1 - int(x * stride) for x in range(n)]]


def normal_levels(ms: ModelSampling, n: int, sgm: bool = False) -> np.ndarray:
    """ComfyUI's ``normal_scheduler``: ``n`` timesteps evenly spaced from ``timestep(sigma_max)`` to
    ``timestep(sigma_min)`` (``sgm=True``, ``sgm_uniform``: ``n + 1`` of them, the last dropped), mapped to sigmas.

    When the lowest level is already (close to) 0, ComfyUI takes ``n + 1`` timesteps and appends no 0; here that last
    level becomes the final 0 (it is below 1e-5)."""
    start, end = ms.timestep(ms.sigma_max), ms.timestep(ms.sigma_min)
    if sgm:
        return ms.sigma(np.linspace(start, end, n + 1)[:-1])
    if math.isclose(float(ms.sigma(end)), 0.0, abs_tol=1e-5):
        return ms.sigma(np.linspace(start, end, n + 1))[:-1]
    return ms.sigma(np.linspace(start, end, n))


def ddim_uniform_levels(ms: ModelSampling, n: int) -> np.ndarray:
    """ComfyUI's ``ddim_scheduler``: the levels ``1, 1 + s, 1 + 2 s, ...`` with the integer stride ``s = T // n``,
    top first. That is ``ceil((T - 1) / s)`` levels, which can be more than ``n`` (8 for ``n = 7``, ``T = 1000``), as
    in ComfyUI. When level 1 is (close to) 0, ComfyUI takes ``n + 1`` and ends on it; here it becomes the final 0."""
    near_zero = math.isclose(float(ms.sigmas[1]), 0.0, abs_tol=1e-5)
    stride = max(len(ms.sigmas) // (n + 1 if near_zero else n), 1)
    levels = ms.sigmas[1::stride][::-1]
    return (levels[:-1] if near_zero else levels).copy()


def beta_levels(ms: ModelSampling, n: int, alpha: float, beta: float) -> np.ndarray:
    """ComfyUI's ``beta_scheduler`` (Lee et al. 2024, arXiv:2407.12173): timesteps at the Beta(alpha, beta) quantiles
    ``rint(ppf(1 - i / n) (T - 1))``, ``i = 0 .. n - 1``; a timestep equal to the one before is dropped, so fewer
    than ``n`` levels can come back (as in ComfyUI)."""
    total = len(ms.sigmas) - 1
    quantiles = 1.0 - np.linspace(0.0, 1.0, n, endpoint=False)
    timesteps = np.rint(beta_ppf(quantiles, alpha, beta) * total)
    keep = np.concatenate([[True], timesteps[1:] != timesteps[:-1]])
    return ms.sigmas[timesteps[keep].astype(np.int64)]


def kl_optimal_levels(n: int, sigma_min: float, sigma_max: float) -> np.ndarray:
    """``tan((1 - u) atan(sigma_max) + u atan(sigma_min))`` for ``u = i / (n - 1)``: ComfyUI's ``kl_optimal_scheduler``
    ("referenced from AUTOMATIC1111/stable-diffusion-webui pull 15608"), uniform steps in ``atan(sigma)``."""
    if n == 1:
        return np.array([sigma_max])
    u = np.arange(n, dtype=np.float64) / (n - 1)
    return np.tan(u * math.atan(sigma_min) + (1.0 - u) * math.atan(sigma_max))


def _levels(scheduler: str, ms: ModelSampling, n: int) -> np.ndarray:
    """ComfyUI's ``calculate_sigmas(model_sampling, scheduler, n)``, without the final 0."""
    if scheduler == "simple":
        return simple_levels(ms, n)
    if scheduler in ("normal", "sgm_uniform"):
        return normal_levels(ms, n, sgm=scheduler == "sgm_uniform")
    if scheduler == "ddim_uniform":
        return ddim_uniform_levels(ms, n)
    if scheduler == "beta":
        return beta_levels(ms, n, 0.6, 0.6)
    if scheduler == "karras":
        return EDMDiscretization(ms.sigma_min, ms.sigma_max, 7.0).get_sigmas(n)
    if scheduler == "exponential":
        return ExponentialDiscretization(ms.sigma_min, ms.sigma_max).get_sigmas(n)
    if scheduler == "linear_quadratic":  # Mochi's shape times the model's sigma_max (1 for flow)
        return LinearQuadraticDiscretization().get_sigmas(n) * ms.sigma_max
    return kl_optimal_levels(n, ms.sigma_min, ms.sigma_max)


# ---------------------------------------------------------------------------------------------------------------------
# Discretizations
# ---------------------------------------------------------------------------------------------------------------------


class _ModelLevelsDiscretization(Discretization):
    """Base of the schedules that read the model's training noise levels (parameters: see the module docstring)."""

    def __init__(
        self,
        linear_start: float | None = None,
        linear_end: float | None = None,
        num_timesteps: int = 1000,
        shift: float | None = None,
        multiplier: float = 1000.0,
    ):
        self._model = ModelSampling(linear_start, linear_end, num_timesteps, shift, multiplier, type(self).__name__)
        if shift is None:
            self._model_params = {"linear_start": linear_start, "linear_end": linear_end}
        else:
            self._model_params = {"shift": self._model.shift, "multiplier": self._model.multiplier}
        self._model_params["num_timesteps"] = self._model.num_timesteps

    @property
    def parametrization(self) -> str:
        """``"flow"`` for a flow model's levels (``shift``), ``"ve"`` for a DDPM model's."""
        return self._model.parametrization

    @property
    def model_sampling(self) -> ModelSampling:
        return self._model

    def _own_params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        params = {**self._own_params(), **self._model_params}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


class SimpleDiscretization(_ModelLevelsDiscretization):
    """ComfyUI's ``simple`` scheduler: every ``T / n``-th training level from the top (:func:`simple_levels`).

    For a flow model it is :class:`~edm_sampler.DiscreteFlowDiscretization`. ``num_steps`` must be <= the number of
    training levels.
    """

    def get_sigmas(self, n: int) -> np.ndarray:
        return simple_levels(self._model, n)


class SGMUniformDiscretization(_ModelLevelsDiscretization):
    """ComfyUI's ``sgm_uniform``: ``n`` of ``n + 1`` timesteps evenly spaced from the top level to the bottom one, as
    sgm's uniform timestep spacing (:func:`normal_levels` with ``sgm=True``)."""

    def get_sigmas(self, n: int) -> np.ndarray:
        return normal_levels(self._model, n, sgm=True)


class NormalDiscretization(_ModelLevelsDiscretization):
    """ComfyUI's ``normal``: ``n`` timesteps evenly spaced from the top level to the bottom one, both included
    (:func:`normal_levels`).

    For a flow model, ComfyUI's timestep is ``sigma * multiplier`` while ``sigma(t)`` shifts ``t / multiplier``, so
    with ``shift != 1`` the levels between the ends are shifted twice; this is kept (it is what ComfyUI samples).
    """

    def get_sigmas(self, n: int) -> np.ndarray:
        return normal_levels(self._model, n)


class DDIMUniformDiscretization(_ModelLevelsDiscretization):
    """ComfyUI's ``ddim_uniform``: an integer stride ``T // n`` over the training levels from level 1
    (:func:`ddim_uniform_levels`). The number of steps can exceed ``n`` (ComfyUI's rule)."""

    def get_sigmas(self, n: int) -> np.ndarray:
        return ddim_uniform_levels(self._model, n)


class BetaDiscretization(_ModelLevelsDiscretization):
    """ComfyUI's ``beta`` scheduler (``BetaSamplingScheduler``; Lee et al. 2024, "Beta Sampling is All You Need",
    arXiv:2407.12173): training levels at the Beta(alpha, beta) quantiles (:func:`beta_levels`). Repeated timesteps
    are dropped as in ComfyUI, so large ``n`` or skewed ``alpha``/``beta`` can give fewer than ``n`` steps.

    The quantiles come from :func:`~edm_sampler.flow_schedules.beta_ppf` (NumPy), not SciPy. Where ``ppf * (T - 1)``
    is exactly a half-integer, ``rint`` rounds to even here. SciPy's ppf can be one ulp off there, and ComfyUI then
    rounds the other way. Example: the middle quantile ``ppf(0.5, 0.6, 0.6)`` (used when ``n`` is even) with
    ``T = 30``. With ComfyUI's ``T = 1000`` both round to the same level.
    """

    def __init__(
        self,
        alpha: float = 0.6,
        beta: float = 0.6,
        linear_start: float | None = None,
        linear_end: float | None = None,
        num_timesteps: int = 1000,
        shift: float | None = None,
        multiplier: float = 1000.0,
    ):
        self.alpha = checks.real("alpha", alpha, positive=True)
        self.beta = checks.real("beta", beta, positive=True)
        super().__init__(linear_start, linear_end, num_timesteps, shift, multiplier)

    def _own_params(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta}

    def get_sigmas(self, n: int) -> np.ndarray:
        return beta_levels(self._model, n, self.alpha, self.beta)


def _range(sigma_min, sigma_max) -> tuple[float, float]:
    sigma_min = checks.real("sigma_min", sigma_min, positive=True)
    sigma_max = checks.real("sigma_max", sigma_max, positive=True)
    if sigma_min >= sigma_max:
        raise ValueError(f"sigma_min must be < sigma_max, got sigma_min={sigma_min!r}, sigma_max={sigma_max!r}")
    return sigma_min, sigma_max


class KarrasDiscretization(EDMDiscretization):
    """ComfyUI's ``karras`` (``KarrasScheduler``, k-diffusion ``get_sigmas_karras``): Karras et al. (2022) eq. 5, as
    :class:`~edm_sampler.EDMDiscretization`, with the node's defaults (SD1's range, ``rho = 7``)."""

    def __init__(self, sigma_min: float = SD1_SIGMA_MIN, sigma_max: float = SD1_SIGMA_MAX, rho: float = 7.0):
        super().__init__(sigma_min, sigma_max, rho)


class KLOptimalDiscretization(Discretization):
    """ComfyUI's ``kl_optimal`` (:func:`kl_optimal_levels`), uniform in ``atan(sigma)``; defaults are SD1's range.

    ``n = 1`` gives ``[sigma_max]`` (ComfyUI divides by ``n - 1 = 0`` there and returns NaN).
    """

    def __init__(self, sigma_min: float = SD1_SIGMA_MIN, sigma_max: float = SD1_SIGMA_MAX):
        self.sigma_min, self.sigma_max = _range(sigma_min, sigma_max)

    def get_sigmas(self, n: int) -> np.ndarray:
        return kl_optimal_levels(n, self.sigma_min, self.sigma_max)


class LaplaceDiscretization(Discretization):
    """ComfyUI's ``LaplaceScheduler`` (k-diffusion-in-ComfyUI ``get_sigmas_laplace``; Tiankai et al. 2024, "Improved
    Noise Schedule for Diffusion Training", arXiv:2407.03297): ``log sigma`` follows the quantiles of a Laplace(mu,
    beta) distribution, ``lambda = mu - beta sign(1/2 - x) log(1 - 2 |1/2 - x| + 1e-5)`` for ``x = linspace(0, 1, n)``,
    clamped to ``[sigma_min, sigma_max]``.

    ComfyUI returns these ``n`` levels without a final 0, so its sampling stops at ``sigma_min``; here the 0 is
    appended as for every schedule (``do_append_zero=False`` gives ComfyUI's list). Parameters whose clamping makes
    two levels equal are refused (the samplers need a strictly decreasing schedule).
    """

    EPSILON = 1e-5  # ComfyUI's "avoid log(0)"

    def __init__(
        self, sigma_min: float = SD1_SIGMA_MIN, sigma_max: float = SD1_SIGMA_MAX, mu: float = 0.0, beta: float = 0.5
    ):
        self.sigma_min, self.sigma_max = _range(sigma_min, sigma_max)
        self.mu = checks.real("mu", mu)
        self.beta = checks.real("beta", beta, positive=True)

    def get_sigmas(self, n: int) -> np.ndarray:
        x = np.linspace(0.0, 1.0, n)
        lam = self.mu - self.beta * np.sign(0.5 - x) * np.log(1.0 - 2.0 * np.abs(0.5 - x) + self.EPSILON)
        sigmas = np.clip(np.exp(lam), self.sigma_min, self.sigma_max)
        if np.any(np.diff(sigmas) >= 0.0):
            raise ValueError(
                f"mu={self.mu!r}, beta={self.beta!r} clamp several of the {n} levels to sigma_min={self.sigma_min!r} "
                f"or sigma_max={self.sigma_max!r}: use fewer steps, a mu nearer log of the range's middle, or a "
                "smaller beta"
            )
        return sigmas


class ComfySchedulerDiscretization(_ModelLevelsDiscretization):
    """ComfyUI's ``BasicScheduler`` node (and the KSampler's ``scheduler`` + ``denoise``): the schedule named
    ``scheduler`` (one of :data:`SCHEDULER_NAMES`) on the model's training schedule.

    ``karras``, ``exponential`` and ``kl_optimal`` take the model's ``sigma_min``/``sigma_max``, ``linear_quadratic`` is
    scaled by its ``sigma_max``, ``beta`` uses alpha = beta = 0.6. With ``denoise < 1`` it computes
    ``int(n / denoise)`` steps and keeps the last ``n``, as the node does. ComfyUI's KSampler also adds a step and drops
    the penultimate sigma for ``dpm_2``, ``dpm_2_ancestral`` and ``uni_pc``; that depends on the sampler and is not
    done here.
    """

    def __init__(
        self,
        scheduler: str,
        denoise: float = 1.0,
        linear_start: float | None = None,
        linear_end: float | None = None,
        num_timesteps: int = 1000,
        shift: float | None = None,
        multiplier: float = 1000.0,
    ):
        self.scheduler = close_choice("scheduler", scheduler, SCHEDULER_NAMES)
        self.denoise = checks.real("denoise", denoise)
        if not 0.0 < self.denoise <= 1.0:
            raise ValueError(f"denoise must be in (0, 1] (0 would leave no step), got {denoise!r}")
        super().__init__(linear_start, linear_end, num_timesteps, shift, multiplier)

    def _own_params(self) -> dict:
        return {"scheduler": self.scheduler, "denoise": self.denoise}

    def get_sigmas(self, n: int) -> np.ndarray:
        total = n if self.denoise >= 1.0 else int(n / self.denoise)
        return _levels(self.scheduler, self._model, total)[-n:].copy()
