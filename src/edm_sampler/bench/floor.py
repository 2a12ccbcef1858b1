"""The memory-traffic floor: the time just to stream the bytes a sampler step must touch.

A step of the EDM Euler sampler reads x and D(x) and writes the new x (3 x-sized float32 arrays); Heun's corrected
step does that twice (6), except on its last step, which has no correction. With churn, each step also reads the
noise array (+1; drawing it is not counted). The bandwidth is measured with ``np.add(a, b, out=c)`` (3 arrays of
traffic per call) on arrays of the step's own size, so cache-resident sizes get their cache bandwidth; the best of
several runs is used, as a floor should be optimistic. A large (DRAM-sized) copy is measured too, for reference.
"""

from __future__ import annotations

import time

import numpy as np

LARGE_ELEMENTS = 16 * 1024 * 1024  # 64 MB per float32 array: far beyond the caches


def add_bandwidth(elements: int, rounds: int = 7, min_seconds: float = 0.002) -> dict:
    """GB/s of ``np.add(a, b, out=c)`` on float32 arrays of ``elements`` (best and median of ``rounds``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal(elements, dtype=np.float32)
    b = rng.standard_normal(elements, dtype=np.float32)
    c = np.empty_like(a)
    np.add(a, b, out=c)
    calls = 1
    while True:  # enough calls per round to be well above the timer's resolution
        t0 = time.perf_counter()
        for _ in range(calls):
            np.add(a, b, out=c)
        if time.perf_counter() - t0 >= min_seconds or calls >= 1 << 16:
            break
        calls *= 4
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            np.add(a, b, out=c)
        seconds = (time.perf_counter() - t0) / calls
        rates.append(3 * a.nbytes / seconds / 1e9)
    return {"elements": elements, "best_gb_s": max(rates), "median_gb_s": float(np.median(rates))}


def arrays_per_call(heun: bool, steps: int, churn: bool) -> int:
    """x-sized arrays one sampler call must stream, by the model in the module docstring."""
    arrays = 3 * steps if not heun else 6 * (steps - 1) + 3
    return arrays + (steps if churn else 0)


def floor_ms_per_step(x_bytes: int, heun: bool, steps: int, churn: bool, gb_s: float) -> tuple[int, float]:
    """``(bytes per step, ms per step)`` at ``gb_s``."""
    per_step = arrays_per_call(heun, steps, churn) * x_bytes / steps
    return int(round(per_step)), per_step / (gb_s * 1e9) * 1e3
