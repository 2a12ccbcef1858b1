"""Brownian noise for SDE samplers: normalised increments of one seeded Brownian path ``W(sigma)``.

An SDE sampler that adds noise over ``[sigma_next, sigma]`` wants ``(W(sigma_next) - W(sigma)) / sqrt(|sigma_next -
sigma|)`` for a single path ``W`` (k-diffusion's ``BrownianTreeNoiseSampler``, whose time is ``sigma`` itself), so
that the noise of a step is the sum of the noises of any finer steps over the same interval.

``W`` is a Brownian tree (Lévy's construction): on ``[sigma_min, sigma_max]`` with ``W(sigma_min) = 0`` and
``W(sigma_max) ~ N(0, sigma_max - sigma_min)``, each cell is split at its geometric midpoint (bisection in
``log sigma``, so the resolution is relative) and ``W`` there is drawn from the Brownian bridge between the cell's
ends, from a generator seeded by ``(seed, level, index)``. After ``depth`` levels (cells at most ``tol`` wide in
``log sigma``) ``W(t)`` is drawn from the bridge of its cell, seeded by ``(seed, cell, t)``. So:

* ``W(t)`` is a function of the seed and ``t``: the same seed gives the same path whatever was asked before, and the
  increment over ``(a, c)`` is the sum of the increments over ``(a, b)`` and ``(b, c)`` (to float32 rounding);
* ``W`` has exactly the Brownian law at any set of points that lie in distinct cells (the bridges of disjoint cells
  are independent given the cell ends), that is at points at least ``tol`` apart in ``log sigma``. An increment
  between two points of one cell is refused. Samplers set ``tol`` from the points they will query.
* With one generator per sample, sample ``k`` has its own path from its own seed, so it is the same alone or in any
  batch. With one generator, one path covers the whole batch.

Cost: the nodes of recent queries are cached, so a sampler stepping down the schedule draws about ``log2(step /
tol) + 2`` new x-shaped Gaussians per call (the cells between the previous point and the new one, and the new
point's bridge), two to four for the samplers' ``tol``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import numpy as np

from mindspore import Tensor

from . import checks
from .noise import GeneratorLike, as_generators

MAX_DEPTH = 52  # cells of 2**-52 of the log-sigma range: float64 resolution


class BrownianNoise:
    """``noise(sigma, sigma_next) = (W(sigma_next) - W(sigma)) / sqrt(|sigma_next - sigma|)`` for a seeded Brownian
    path ``W`` on ``[sigma_min, sigma_max]`` (float32 Tensor shaped like x).

    Args:
        shape: the shape of x (batch first).
        generator: int seed, ``numpy.random.Generator``, a list of them (one path per batch item) or ``None``. One
            integer is drawn from each generator here, as the path's seed; the path never touches them again.
        sigma_min: the low end of the interval on which ``W`` is defined (``W(sigma_min) = 0``).
        sigma_max: the high end of that interval.
        tol: the resolution, in ``log sigma``: points at least ``tol`` apart are exactly Brownian; an increment
            between closer points (in one cell of the tree) raises ``ValueError``.
    """

    def __init__(
        self,
        shape: Sequence[int],
        generator: GeneratorLike,
        sigma_min: float,
        sigma_max: float,
        *,
        tol: float = 1e-3,
    ):
        self.shape = tuple(int(s) for s in shape)
        self.sigma_min = checks.real("sigma_min", sigma_min, positive=True)
        self.sigma_max = checks.real("sigma_max", sigma_max, positive=True)
        if self.sigma_max < self.sigma_min:
            raise ValueError(f"sigma_max must be >= sigma_min, got sigma_min={sigma_min!r}, sigma_max={sigma_max!r}")
        self.tol = checks.real("tol", tol, positive=True)
        gens = as_generators(generator, self.shape[0])
        self.per_sample = isinstance(gens, list)
        self.seeds = [int(g.integers(2**63)) for g in gens] if isinstance(gens, list) else [int(gens.integers(2**63))]
        self.u_min, self.span = math.log(self.sigma_min), math.log(self.sigma_max / self.sigma_min)
        # the smallest depth whose cells are at most tol wide (1% margin for the rounding of log/exp)
        self.depth = 0 if self.span == 0 else min(MAX_DEPTH, max(0, math.ceil(math.log2(1.01 * self.span / self.tol))))
        self._nodes: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()  # W at tree nodes, LRU
        self._cache_size = 3 * (self.depth + 2)
        self._points: OrderedDict[float, np.ndarray] = OrderedDict()  # W at recent query points

    # -- randomness ----------------------------------------------------------------------------------------------

    def _normal(self, key: tuple[int, ...]) -> np.ndarray:
        """Standard normal float32 noise shaped like x, from generators seeded by ``(seed, *key)`` alone."""

        def draw(seed: int, shape: tuple[int, ...]) -> np.ndarray:
            bits = np.random.SFC64(np.random.SeedSequence(seed, spawn_key=key))
            return np.random.Generator(bits).standard_normal(shape, dtype=np.float32)

        if self.per_sample:
            return np.stack([draw(seed, self.shape[1:]) for seed in self.seeds])
        return draw(self.seeds[0], self.shape)

    def _bridge(self, t: float, a: float, w_a: np.ndarray, b: float, w_b: np.ndarray, key) -> np.ndarray:
        """W(t) given W(a) and W(b), a < t < b: the Brownian bridge, mean on the chord, variance (t-a)(b-t)/(b-a)."""
        mean = w_a + (w_b - w_a) * ((t - a) / (b - a))
        return mean + self._normal(key) * math.sqrt((t - a) * (b - t) / (b - a))

    # -- the tree ------------------------------------------------------------------------------------------------

    def _sigma(self, level: int, index: int) -> float:
        """The node ``index / 2**level`` of the way from sigma_min to sigma_max in log sigma."""
        if index == 0:
            return self.sigma_min
        if index == 1 << level:
            return self.sigma_max
        return math.exp(self.u_min + self.span * (index / (1 << level)))

    def _node(self, key: tuple[int, int], make) -> np.ndarray:
        value = self._nodes.get(key)
        if value is None:
            value = self._nodes[key] = make()
            if len(self._nodes) > self._cache_size:
                self._nodes.popitem(last=False)
        else:
            self._nodes.move_to_end(key)
        return value

    def _cell(self, t: float):
        """Descend to the leaf cell holding t: ``(index, a, W(a), b, W(b))`` at depth ``self.depth``."""
        a, b = self.sigma_min, self.sigma_max
        w_a = np.zeros(self.shape, np.float32)
        w_b = self._node((0, 1), lambda: self._normal((0, 0, 1)) * math.sqrt(b - a))
        index = 0
        for level in range(1, self.depth + 1):
            mid_index = 2 * index + 1  # the midpoint of cell `index` of the previous level
            m = self._sigma(level, mid_index)
            w_m = self._node(
                (level, mid_index),
                lambda: self._bridge(m, a, w_a, b, w_b, (0, level, mid_index)),  # noqa: B023
            )
            if t < m:
                index, b, w_b = 2 * index, m, w_m
            else:
                index, a, w_a = mid_index, m, w_m
        return index, a, w_a, b, w_b

    def _check(self, name: str, sigma) -> float:
        sigma = checks.real(name, sigma, nonnegative=True)
        slack = 1e-9 * self.sigma_max
        if not self.sigma_min - slack <= sigma <= self.sigma_max + slack:
            raise ValueError(
                f"{name}={sigma!r} is outside the Brownian path's interval [{self.sigma_min}, {self.sigma_max}]"
            )
        return min(max(sigma, self.sigma_min), self.sigma_max)

    def path(self, sigma: float) -> np.ndarray:
        """``W(sigma)``: float32, shaped like x (``W(sigma_min) = 0``)."""
        t = self._check("sigma", sigma)
        value = self._points.get(t)
        if value is not None:
            return value
        index, a, w_a, b, w_b = self._cell(t)
        if t == a or t == b:
            value = w_a if t == a else w_b
        else:
            t_bits = int(np.float64(t).view(np.uint64))
            value = self._bridge(t, a, w_a, b, w_b, (1, self.depth, index, t_bits >> 32, t_bits & 0xFFFFFFFF))
        self._points[t] = value
        if len(self._points) > 8:
            self._points.popitem(last=False)
        return value

    def increment(self, sigma: float, sigma_next: float) -> np.ndarray:
        """``W(sigma_next) - W(sigma)`` (float32, not normalised)."""
        s, s_next = self._check("sigma", sigma), self._check("sigma_next", sigma_next)
        if s == s_next:
            raise ValueError(f"sigma and sigma_next must differ, got {sigma!r} twice")
        if self.depth and self._leaf_index(s) == self._leaf_index(s_next):
            raise ValueError(
                f"sigma={sigma!r} and sigma_next={sigma_next!r} are closer than the Brownian path's resolution "
                f"(tol={self.tol} in log sigma); build it with a smaller tol"
            )
        return self.path(s_next) - self.path(s)

    def _leaf_index(self, t: float) -> int:
        index = 0
        for level in range(1, self.depth + 1):
            index = 2 * index + (t >= self._sigma(level, 2 * index + 1))
        return index

    def __call__(self, sigma: float, sigma_next: float) -> Tensor:
        """The increment from ``sigma`` to ``sigma_next`` divided by ``sqrt(|sigma_next - sigma|)``: unit variance."""
        dw = self.increment(sigma, sigma_next)
        return Tensor.from_numpy(dw * np.float32(1.0 / math.sqrt(abs(float(sigma_next) - float(sigma)))))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(shape={self.shape}, sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, "
            f"tol={self.tol}, depth={self.depth}, per_sample={self.per_sample})"
        )


def brownian_tol(points: np.ndarray) -> float:
    """The resolution that puts every one of ``points`` (the sigmas a sampler queries) in its own cell: their
    smallest spacing in log sigma (1e-3 if there are fewer than two)."""
    u = np.unique(np.log(np.asarray(points, np.float64)))
    return float(np.min(np.diff(u))) if len(u) > 1 else 1e-3
