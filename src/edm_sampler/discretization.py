"""Sigma schedules ("discretizations"), computed on the host in float64.

A discretization is a callable ``(n, do_append_zero=True, flip=False) -> numpy.ndarray`` that returns ``n`` noise
levels in descending order, followed by a trailing 0 (sgm's convention). Samplers read them as Python floats, so no
schedule value ever becomes a device tensor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from . import checks
from .registry import instantiate_from_config


class Discretization(ABC):
    """Base class: subclasses implement :meth:`get_sigmas`, returning ``n`` descending sigmas (no trailing zero)."""

    def __call__(self, n: int, do_append_zero: bool = True, flip: bool = False) -> np.ndarray:
        n = checks.integer("num_steps", n, minimum=1)
        sigmas = np.asarray(self.get_sigmas(n), dtype=np.float64)
        if do_append_zero:
            sigmas = np.append(sigmas, 0.0)
        return sigmas[::-1].copy() if flip else sigmas

    @abstractmethod
    def get_sigmas(self, n: int) -> np.ndarray:
        """``n`` noise levels, descending, without the trailing zero."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class EDMDiscretization(Discretization):
    """Karras et al. (2022) eq. 5: ``sigma_i = (smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho``."""

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0):
        self.sigma_min = checks.real("sigma_min", sigma_min, positive=True)
        self.sigma_max = checks.real("sigma_max", sigma_max, positive=True)
        self.rho = checks.real("rho", rho, positive=True)
        if self.sigma_min >= self.sigma_max:
            raise ValueError(f"sigma_min must be < sigma_max, got sigma_min={sigma_min!r}, sigma_max={sigma_max!r}")

    def get_sigmas(self, n: int) -> np.ndarray:
        ramp = np.linspace(0.0, 1.0, n)
        max_inv_rho = self.sigma_max ** (1.0 / self.rho)
        min_inv_rho = self.sigma_min ** (1.0 / self.rho)
        # Interpolate as a convex combination: exact at both ends even when rho < 1 makes max_inv_rho >> min_inv_rho.
        return ((1.0 - ramp) * max_inv_rho + ramp * min_inv_rho) ** self.rho


def ddpm_betas(beta_schedule: str, beta_start: float, beta_end: float, num_timesteps: int) -> np.ndarray:
    """A DDPM training schedule's betas, float64: ``"linear"`` (linear in beta) or ``"scaled_linear"`` (linear in
    sqrt(beta): Stable Diffusion's, sgm's and mindone's ``"linear"``)."""
    if beta_schedule == "scaled_linear":
        return np.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=np.float64) ** 2
    return np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)


class LegacyDDPMDiscretization(Discretization):
    """The Stable Diffusion / SDXL schedule: sqrt-linear betas over ``num_timesteps`` discrete steps.

    ``sigma(t) = sqrt((1 - alpha_bar_t) / alpha_bar_t)``. For ``n < num_timesteps`` steps sgm picks the timesteps
    ``linspace(T - 1, 0, n, endpoint=False).astype(int)`` (so the largest sigma is always used and the smallest is
    only reached for ``n == T``); this class keeps that rule, so its values match sgm and mindone exactly.
    """

    def __init__(self, linear_start: float = 0.00085, linear_end: float = 0.012, num_timesteps: int = 1000):
        self.linear_start = checks.real("linear_start", linear_start, positive=True)
        self.linear_end = checks.real("linear_end", linear_end, positive=True)
        self.num_timesteps = checks.integer("num_timesteps", num_timesteps, minimum=1)
        if not self.linear_start <= self.linear_end < 1.0:
            raise ValueError(
                f"need 0 < linear_start <= linear_end < 1, got linear_start={linear_start!r}, linear_end={linear_end!r}"
            )
        betas = ddpm_betas("scaled_linear", self.linear_start, self.linear_end, self.num_timesteps)
        self._alphas_cumprod = np.cumprod(1.0 - betas)

    @property
    def alphas_cumprod(self) -> np.ndarray:
        return self._alphas_cumprod.copy()

    def get_sigmas(self, n: int) -> np.ndarray:
        if n > self.num_timesteps:
            raise ValueError(
                f"num_steps must be <= num_timesteps={self.num_timesteps} for {type(self).__name__}, got {n}"
            )
        timesteps = np.linspace(self.num_timesteps - 1, 0, n, endpoint=False).astype(int)[::-1]
        alphas_cumprod = self._alphas_cumprod[timesteps]
        return np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)[::-1]


def _wrapped(discretization, n: int, do_append_zero: bool):
    # a plain callable discretization(n) need not take do_append_zero
    return discretization(n) if do_append_zero else discretization(n, do_append_zero=False)


class Img2ImgDiscretizationWrapper:
    """sgm's img2img pruning: keep the last ``max(int(strength * len), 1)`` sigmas of the wrapped schedule.

    ``strength=1`` keeps every sigma; smaller strengths start lower, so an image noised to the first kept sigma is
    only partly regenerated (see :meth:`BaseDiffusionSampler.img2img`); ``strength=0`` keeps only the final 0 (no
    step at all). The rule is sgm's, applied to the list with its trailing 0.
    """

    def __init__(self, discretization, strength: float = 1.0):
        self.discretization = instantiate_from_config(discretization)
        self.strength = checks.real("strength", strength, nonnegative=True)
        if self.strength > 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength!r}")

    def __call__(self, n: int, do_append_zero: bool = True, flip: bool = False) -> np.ndarray:
        sigmas = np.asarray(_wrapped(self.discretization, n, do_append_zero), dtype=np.float64)
        keep = max(int(self.strength * len(sigmas)), 1)
        sigmas = sigmas[len(sigmas) - keep :]
        return sigmas[::-1].copy() if flip else sigmas

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.discretization!r}, strength={self.strength})"


class Txt2NoisyDiscretizationWrapper:
    """sgm's "stop early" pruning (SDXL base before the refiner): drop the smallest sigmas of the wrapped schedule.

    ``prune = max(min(int(strength * steps) - 1, steps - 1), 0)`` sigmas are removed from the low end, with
    ``steps = original_steps + 1`` (or the schedule's length); ``strength=0`` keeps everything.
    """

    def __init__(self, discretization, strength: float = 0.0, original_steps: int | None = None):
        self.discretization = instantiate_from_config(discretization)
        self.strength = checks.real("strength", strength, nonnegative=True)
        if self.strength > 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength!r}")
        self.original_steps = (
            None if original_steps is None else checks.integer("original_steps", original_steps, minimum=1)
        )

    def __call__(self, n: int, do_append_zero: bool = True, flip: bool = False) -> np.ndarray:
        sigmas = np.asarray(_wrapped(self.discretization, n, do_append_zero), dtype=np.float64)
        steps = len(sigmas) if self.original_steps is None else self.original_steps + 1
        prune = max(min(int(self.strength * steps) - 1, steps - 1), 0)
        sigmas = sigmas[: len(sigmas) - prune]
        return sigmas[::-1].copy() if flip else sigmas

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.discretization!r}, strength={self.strength})"
