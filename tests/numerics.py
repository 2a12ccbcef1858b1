"""Small numerical helpers the sampler tests share: relative error, a noise queue, Gauss-Legendre quadrature and the
Lagrange basis (for float64 references of the exponential integrators)."""

from __future__ import annotations

import numpy as np

from mindspore import Tensor


def rel(out, ref) -> float:
    """Relative error: norm of the difference over the norm of the reference."""
    ref = np.asarray(ref, np.float64)
    return float(np.linalg.norm(np.asarray(out, np.float64) - ref) / np.linalg.norm(ref))


def queue_sampler(noises, calls=None):
    """A noise_sampler handing out ``noises`` in order (and recording its (sigma, sigma_next) calls)."""
    pending = list(noises)

    def noise_sampler(sigma, sigma_next):
        if calls is not None:
            calls.append((sigma, sigma_next))
        return Tensor(np.asarray(pending.pop(0), np.float32))

    return noise_sampler


def gauss_legendre(f, a: float, b: float, nodes: int = 40) -> float:
    """Gauss-Legendre quadrature of a smooth ``f`` over ``[a, b]`` with ``nodes`` points."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    half, mid = 0.5 * (b - a), 0.5 * (b + a)
    return half * float(np.sum(w * f(mid + half * x)))


def lagrange(nodes, j):
    """The Lagrange basis polynomial that is 1 at ``nodes[j]`` and 0 at the other nodes, as a function of an array."""

    def basis(u):
        out = np.ones_like(u)
        for k, node in enumerate(nodes):
            if k != j:
                out = out * (u - node) / (nodes[j] - node)
        return out

    return basis


# The test data the samplers' exact-model tests share: a 2-D Gaussian mixture (means, stds, weights), the Gaussian's
# sigma_data, and Stable Diffusion's and DDPM's training beta schedules (diffusers' fields).
MEANS = [[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8], [0.2, 0.1]]
STDS, WEIGHTS = [0.1, 0.2, 0.15, 0.05], [0.4, 0.3, 0.2, 0.1]
SIGMA_DATA = 0.5
SD = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
LINEAR = dict(beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
