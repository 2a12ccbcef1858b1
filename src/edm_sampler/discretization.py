"""Sigma schedules ("discretizations"), computed on the host in float64.

A discretization is a callable ``(n, do_append_zero=True, flip=False) -> numpy.ndarray`` that returns ``n`` noise
levels in descending order, followed by a trailing 0 (sgm's convention). Samplers read them as Python floats, so no
schedule value ever becomes a device tensor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from . import checks


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
        betas = np.linspace(self.linear_start**0.5, self.linear_end**0.5, self.num_timesteps, dtype=np.float64) ** 2
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
