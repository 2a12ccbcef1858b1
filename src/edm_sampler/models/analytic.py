"""Closed-form ideal denoisers ``D(x, sigma) = E[y | y + sigma n = x]`` for simple data distributions.

They make exact, download-free test models: with Gaussian data the probability-flow ODE has a closed-form
solution, and a Gaussian mixture gives a non-linear denoiser with a known answer.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mindspore import Tensor, ops

from .. import checks
from ..denoisers import append_dims


class GaussianDenoiser:
    """Data ``N(0, sigma_data^2 I)``: ``D(x, sigma) = x sigma_data^2 / (sigma^2 + sigma_data^2)``.

    The probability-flow ODE from ``x(sigma_0)`` is solved exactly by
    ``x(sigma) = x(sigma_0) sqrt((sigma^2 + sigma_data^2) / (sigma_0^2 + sigma_data^2))`` (see :meth:`exact_solution`).
    """

    def __init__(self, sigma_data: float = 0.5):
        self.sigma_data = checks.real("sigma_data", sigma_data, positive=True)

    def __call__(self, x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
        sd2 = self.sigma_data**2
        return x * append_dims(sd2 / (sigma**2 + sd2), x.ndim)

    def exact_solution(self, x0: np.ndarray, sigma_0: float, sigma: float) -> np.ndarray:
        """The ODE solution at ``sigma`` starting from ``x0`` at ``sigma_0`` (float64, host)."""
        sd2 = self.sigma_data**2
        return np.asarray(x0, np.float64) * np.sqrt((sigma**2 + sd2) / (sigma_0**2 + sd2))


class GaussianMixtureDenoiser:
    """Data from an isotropic Gaussian mixture in ``dim`` dimensions (default: 8 modes on the unit circle in 2-D).

    With components ``N(mu_k, s_k^2 I)`` and weights ``pi_k``, the noisy data is ``N(mu_k, (s_k^2 + sigma^2) I)``;
    D is the responsibility-weighted sum of the per-component posterior means
    ``mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)``. x has shape ``(B, dim)``.
    """

    def __init__(
        self,
        means: Sequence[Sequence[float]] | None = None,
        stds: Sequence[float] | float = 0.1,
        weights: Sequence[float] | None = None,
    ):
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
        total_var = self._var[None, :] + (sigma**2)[:, None]  # (B, K)
        diff = x[:, None, :] - self._means[None, :, :]  # (B, K, dim)
        log_r = self._log_w[None, :] - 0.5 * self.dim * ops.log(total_var) - 0.5 * (diff**2).sum(-1) / total_var
        resp = ops.softmax(log_r, axis=1)  # (B, K)
        posterior = self._means[None] + (self._var[None, :] / total_var)[:, :, None] * diff  # (B, K, dim)
        return (resp[:, :, None] * posterior).sum(1)

    def sample(self, n: int, generator: np.random.Generator) -> np.ndarray:
        """``n`` exact draws from the data distribution (float64, host)."""
        k = generator.choice(len(self.weights), size=n, p=self.weights)
        return self.means[k] + self.stds[k, None] * generator.standard_normal((n, self.dim))
