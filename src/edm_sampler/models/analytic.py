"""Closed-form ideal denoisers ``D(x, sigma) = E[y | x]`` for simple data distributions.

They make exact, download-free test models: with Gaussian data the probability-flow ODE has a closed-form
solution, and a Gaussian mixture gives a non-linear denoiser with a known answer.

Each takes ``parametrization="ve"`` (the default: ``x = y + sigma n``) or ``"flow"`` (``x = (1 - sigma) y + sigma n``,
sigma in (0, 1], see :mod:`edm_sampler.parametrization`); either way it returns the exact posterior mean of the data.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mindspore import Tensor, ops

from .. import checks
from ..denoisers import append_dims
from ..parametrization import get as get_parametrization


def model_repr(obj: Any, **params: Any) -> str:
    """``Name(k=v, ...)``, with ``parametrization`` appended when it is not the default ``"ve"``."""
    if obj.parametrization != "ve":
        params["parametrization"] = obj.parametrization
    return f"{type(obj).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


class GaussianDenoiser:
    """Data ``N(0, sigma_data^2 I)``: ``D(x, sigma) = x sigma_data^2 / (sigma^2 + sigma_data^2)``.

    The probability-flow ODE from ``x(sigma_0)`` is solved exactly by
    ``x(sigma) = x(sigma_0) sqrt((sigma^2 + sigma_data^2) / (sigma_0^2 + sigma_data^2))`` (see :meth:`exact_solution`).

    Flow (``x = a y + sigma n``, ``a = 1 - sigma``): x is ``N(0, v(sigma) I)`` with ``v = a^2 sigma_data^2 + sigma^2``,
    ``D(x, sigma) = a sigma_data^2 x / v(sigma)`` (0 at sigma = 1), and the ODE ``dx/dsigma = (x - D) / sigma``
    scales the state: ``x(sigma) = x(sigma_0) sqrt(v(sigma) / v(sigma_0))``.
    """

    def __init__(self, sigma_data: float = 0.5, parametrization: str = "ve"):
        self.sigma_data = checks.real("sigma_data", sigma_data, positive=True)
        self.parametrization = get_parametrization(parametrization).name

    def __call__(self, x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
        sd2 = self.sigma_data**2
        if self.parametrization == "flow":
            alpha = 1.0 - sigma
            return x * append_dims(alpha * sd2 / (alpha**2 * sd2 + sigma**2), x.ndim)
        return x * append_dims(sd2 / (sigma**2 + sd2), x.ndim)

    def marginal_variance(self, sigma: float) -> float:
        """The per-coordinate variance of the noisy data at ``sigma`` (float64, host)."""
        sd2 = self.sigma_data**2
        if self.parametrization == "flow":
            return (1.0 - sigma) ** 2 * sd2 + sigma**2
        return sigma**2 + sd2

    def exact_solution(self, x0: np.ndarray, sigma_0: float, sigma: float) -> np.ndarray:
        """The ODE solution at ``sigma`` starting from ``x0`` at ``sigma_0`` (float64, host)."""
        if self.parametrization == "flow":
            return np.asarray(x0, np.float64) * np.sqrt(self.marginal_variance(sigma) / self.marginal_variance(sigma_0))
        sd2 = self.sigma_data**2
        return np.asarray(x0, np.float64) * np.sqrt((sigma**2 + sd2) / (sigma_0**2 + sd2))

    def __repr__(self) -> str:
        return model_repr(self, sigma_data=self.sigma_data)


class GaussianMixtureDenoiser:
    """Data from an isotropic Gaussian mixture in ``dim`` dimensions (default: 8 modes on the unit circle in 2-D).

    With components ``N(mu_k, s_k^2 I)`` and weights ``pi_k``, the noisy data is ``N(mu_k, (s_k^2 + sigma^2) I)``;
    D is the responsibility-weighted sum of the per-component posterior means
    ``mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)``. x has shape ``(B, dim)``.

    Flow (``a = 1 - sigma``): given k, x is ``N(a mu_k, v_k I)`` with ``v_k = a^2 s_k^2 + sigma^2``, which gives the
    responsibilities, and the per-component posterior mean is ``mu_k + a s_k^2 / v_k (x - a mu_k)``. At sigma = 1
    every ``v_k`` is 1 and ``x - a mu_k = x``, so D is the mixture mean.
    """

    def __init__(
        self,
        means: Sequence[Sequence[float]] | None = None,
        stds: Sequence[float] | float = 0.1,
        weights: Sequence[float] | None = None,
        parametrization: str = "ve",
    ):
        self.parametrization = get_parametrization(parametrization).name
        if means is None:
            angles = np.arange(8) * (2 * np.pi / 8)
            means = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        self.means = np.asarray(means, dtype=np.float64)
        if self.means.ndim != 2 or len(self.means) < 1:
            raise ValueError(f"means must be a non-empty (K, dim) list, got shape {self.means.shape}")
        k = len(self.means)
        self.stds = np.broadcast_to(np.asarray(stds, dtype=np.float64), (k,)).copy()
        if np.any(self.stds <= 0):
            raise ValueError(f"stds must be > 0, got {self.stds}")
        self.weights = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
        if self.weights.shape != (k,) or np.any(self.weights <= 0):
            raise ValueError(f"weights must be {k} positive numbers, got {weights!r}")
        self.weights = self.weights / self.weights.sum()
        self._means = Tensor(self.means.astype(np.float32))  # (K, dim)
        self._var = Tensor((self.stds**2).astype(np.float32))  # (K,)
        self._log_w = Tensor(np.log(self.weights).astype(np.float32))  # (K,)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def __call__(self, x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"GaussianMixtureDenoiser expects x of shape (B, {self.dim}), got {tuple(x.shape)}")
        if self.parametrization == "flow":
            return self._flow(x, sigma)
        total_var = self._var[None, :] + (sigma**2)[:, None]  # (B, K)
        diff = x[:, None, :] - self._means[None, :, :]  # (B, K, dim)
        log_r = self._log_w[None, :] - 0.5 * self.dim * ops.log(total_var) - 0.5 * (diff**2).sum(-1) / total_var
        resp = ops.softmax(log_r, axis=1)  # (B, K)
        posterior = self._means[None] + (self._var[None, :] / total_var)[:, :, None] * diff  # (B, K, dim)
        return (resp[:, :, None] * posterior).sum(1)

    def _flow(self, x: Tensor, sigma: Tensor) -> Tensor:
        alpha = (1.0 - sigma)[:, None]  # (B, 1)
        scaled_var = alpha**2 * self._var[None, :]  # (B, K): a^2 s_k^2
        total_var = scaled_var + (sigma**2)[:, None]  # (B, K): v_k, >= sigma^2 > 0
        diff = x[:, None, :] - alpha[:, :, None] * self._means[None, :, :]  # (B, K, dim): x - a mu_k
        log_r = self._log_w[None, :] - 0.5 * self.dim * ops.log(total_var) - 0.5 * (diff**2).sum(-1) / total_var
        resp = ops.softmax(log_r, axis=1)  # (B, K)
        gain = alpha * self._var[None, :] / total_var  # (B, K): a s_k^2 / v_k
        posterior = self._means[None] + gain[:, :, None] * diff  # (B, K, dim)
        return (resp[:, :, None] * posterior).sum(1)

    def sample(self, n: int, generator: np.random.Generator) -> np.ndarray:
        """``n`` exact draws from the data distribution (float64, host)."""
        k = generator.choice(len(self.weights), size=n, p=self.weights)
        return self.means[k] + self.stds[k, None] * generator.standard_normal((n, self.dim))

    def __repr__(self) -> str:
        return model_repr(self, components=len(self.means), dim=self.dim)
