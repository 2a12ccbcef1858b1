"""Round-robin timing: all variants of a section in one process, interleaved, each with a (timed) first call.

Timings on a shared 2-core machine drift; timing one call of every variant per round, with the starting variant
rotating from round to round, makes drift hit all variants alike. The GC is paused inside timed regions (and the
heap present at the start is frozen, since a full collection with torch and MindSpore loaded takes ~0.15 s), and a
call's result is synced (MindSpore ``.asnumpy()``) inside the timed region, so queued kernels are counted.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


@dataclass
class Variant:
    """One thing to time. ``fn()`` is one call; ``prepare()`` (untimed) runs before every call."""

    name: str
    fn: Callable[[], Any]
    prepare: Callable[[], None] | None = None


@dataclass
class Timings:
    """Seconds of the first call (warm-up: kernel creation, graph compiles) and of each later call.

    A variant that raises is reported, not fatal: ``error`` holds the exception and it is not called again.
    """

    first_s: float | None
    raw_s: list[float] = field(default_factory=list)
    first_probe: float | None = None  # probe delta during the first call (e.g. graph compiles)
    probe: list[float] = field(default_factory=list)  # probe delta of each later call
    error: str | None = None

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.raw_s) if self.raw_s else None

    @property
    def min_s(self) -> float | None:
        return min(self.raw_s) if self.raw_s else None

    @property
    def probe_later(self) -> float | None:
        return None if self.first_probe is None else sum(self.probe)


def sync(result: Any) -> None:
    """Wait for a result: MindSpore Tensors compute asynchronously; torch CPU tensors are ready."""
    if hasattr(result, "asnumpy"):
        result.asnumpy()


def timed_call(variant: Variant, probe: Callable[[], float] | None = None) -> tuple[float, float | None]:
    """Wall seconds of one call (including the sync of its result), and the probe's change over it."""
    if variant.prepare is not None:
        variant.prepare()
    before = probe() if probe is not None else None
    gc.disable()
    try:
        t0 = time.perf_counter()
        sync(variant.fn())
        seconds = time.perf_counter() - t0
    finally:
        gc.enable()
    return seconds, (None if probe is None else probe() - before)


def _failed(name: str, err: Exception) -> str:
    print(f"{name} failed (reported as an error, the run goes on):", file=sys.stderr)
    traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"


def round_robin(
    variants: Sequence[Variant], repeats: int, probe: Callable[[], float] | None = None
) -> dict[str, Timings]:
    """One timed first call of each variant (in order), then ``repeats`` rounds of one call each, order rotating."""
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique: {names}")
    gc.collect()
    gc.freeze()  # later automatic collections (between calls, never inside one) skip the long-lived heap
    try:
        return _round_robin(variants, repeats, probe)
    finally:
        gc.unfreeze()


def _round_robin(variants: Sequence[Variant], repeats: int, probe: Callable[[], float] | None) -> dict[str, Timings]:
    out: dict[str, Timings] = {}
    for v in variants:
        try:
            seconds, delta = timed_call(v, probe)
            out[v.name] = Timings(first_s=seconds, first_probe=delta)
        except Exception as err:  # report it with the others' results instead of losing the whole run
            out[v.name] = Timings(first_s=None, error=_failed(v.name, err))
    n = len(variants)
    for r in range(repeats):
        start = (r * n) // repeats  # spread the starting points over the whole list
        for v in list(variants[start:]) + list(variants[:start]):
            t = out[v.name]
            if t.error is not None:
                continue
            try:
                seconds, delta = timed_call(v, probe)
            except Exception as err:
                t.error = _failed(v.name, err)
                continue
            t.raw_s.append(seconds)
            if delta is not None:
                t.probe.append(delta)
    return out


def attempt(label: str, fn: Callable[[], Any]) -> tuple[Any, str | None]:
    """``(fn(), None)``, or ``(None, error)`` with the traceback on stderr: a failed check must not lose a run."""
    try:
        return fn(), None
    except Exception as err:
        return None, _failed(label, err)


def errors(timings: dict[str, Timings]) -> dict[str, str]:
    return {name: t.error for name, t in timings.items() if t.error is not None}
