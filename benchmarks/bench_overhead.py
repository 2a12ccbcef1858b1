"""Per-step overhead of the EDM samplers themselves (MindSpore PyNative, CPU), against a bare MindSpore loop.

The denoiser is trivial, so the wall time per step of a full sampler call is (almost) all sampler cost. For each
sampler the script reports, over ``--repeats`` full calls (progress bar off, timing including the final
``.asnumpy()`` of the result):

* median and min ms per step, and ms per model evaluation (``sampler.last_nfe``);
* the trivial denoiser's own cost, timed alone (N calls of D in a loop + a final ``.asnumpy()``), scaled to the
  sampler's evaluations per step, so that ``sampler overhead = per-step time - D time per step``;
* a yardstick from the same run: a bare MindSpore loop doing the minimal arithmetic of the same integrator
  (Euler: ``x = x + (x - D(x)) * c`` with a Python-float ``c``; Heun: its trapezoidal analogue), with the same
  schedule, the same initial scaling, the same churn noise (NumPy ``default_rng`` draws, as the library does) and
  the same number of model evaluations. The table shows sampler / bare-loop ratios.

Variants are timed round-robin (one call of each per round, rotating the order) so that drift on a noisy machine
hits all of them alike; one warm-up call of each precedes the timing; Python's GC is paused inside timed calls.

Run from the repository root::

    /work/venv/bin/python benchmarks/bench_overhead.py                # defaults: (1,4,128,128), 50 steps, 7 repeats
    /work/venv/bin/python benchmarks/bench_overhead.py --churn 40     # also with s_churn=40 (noise every step)
    /work/venv/bin/python benchmarks/bench_overhead.py --json out.json --profile
    /work/venv/bin/python benchmarks/bench_overhead.py --churn 40 --breakdown   # where a step's time goes

Only the public API of ``edm_sampler`` is used (``--breakdown`` re-implements the sampler loop with the same
MindSpore ops as edm_sampler 0.1.0 and checks bit-for-bit that it still matches the real sampler).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Callable

import numpy as np

import mindspore as ms
from mindspore import Tensor

from edm_sampler import EDMDiscretization, EulerEDMSampler, HeunEDMSampler, IdentityGuider, randn

SAMPLERS = {"euler": EulerEDMSampler, "heun": HeunEDMSampler}
DENOISERS = ("identity-like", "zeros")


# -- set-up ----------------------------------------------------------------------------------------------------------


def parse_shape(text: str) -> tuple[int, ...]:
    parts = text.replace("x", ",").replace("(", "").replace(")", "").split(",")
    shape = tuple(int(p) for p in parts if p.strip())
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"bad shape {text!r}; use e.g. 1,4,128,128")
    return shape


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shape", type=parse_shape, default=(1, 4, 128, 128), help="latent shape (default 1,4,128,128)")
    p.add_argument("--steps", type=int, default=50, help="sampler steps per call (default 50)")
    p.add_argument("--repeats", type=int, default=7, help="timed full calls per variant (default 7)")
    p.add_argument(
        "--churn",
        type=float,
        default=None,
        help="s_churn value to report in addition to s_churn=0 (default: only s_churn=0); e.g. 40",
    )
    p.add_argument("--threads", type=int, default=1, help="MindSpore CPU kernel threads (default 1)")
    p.add_argument(
        "--denoiser",
        choices=DENOISERS + ("both",),
        default="both",
        help="trivial denoiser: identity-like (D = x * 0.5, one op), zeros (a precomputed zero tensor), or both",
    )
    p.add_argument("--json", metavar="PATH", help="write all results (incl. raw timings) to PATH")
    p.add_argument("--profile", action="store_true", help="also cProfile one call of each sampler and print the top")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also time pieces of a step and an ablation of a replica of the sampler loop (3x repeats; ~2 min)",
    )
    args = p.parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.threads < 1:
        p.error("--steps, --repeats and --threads must be >= 1")
    if args.churn is not None and args.churn < 0:
        p.error("--churn must be >= 0")
    return args


def setup_mindspore(threads: int) -> None:
    ms.set_device("CPU")
    ms.device_context.cpu.op_tuning.threads_num(threads)
    # On CPU the *first* synchronize() only logs "CPU device is not supported" and returns without waiting;
    # call it once here so later calls (if any) wait. Timings below sync through .asnumpy() anyway.
    ms.runtime.synchronize()
    ms.runtime.synchronize()


def make_denoiser(kind: str, shape: tuple[int, ...]) -> Callable:
    if kind == "identity-like":

        def denoiser(x, sigma, cond=None):  # one elementwise op, like the cheapest real model output
            return x * 0.5

    elif kind == "zeros":
        zeros = Tensor(np.zeros(shape, dtype=np.float32))

        def denoiser(x, sigma, cond=None):  # no op at all
            return zeros

    else:
        raise ValueError(kind)
    return denoiser


def gamma_for(s_churn: float, sigma: float, num_steps: int) -> float:
    """The churn factor EDMSampler uses with its default s_tmin=0, s_tmax=inf."""
    return min(s_churn / num_steps, math.sqrt(2.0) - 1.0) if s_churn > 0 else 0.0


# -- the yardstick: bare MindSpore loops with the minimal arithmetic -------------------------------------------------


def bare_loop(heun: bool, denoiser, x: Tensor, sigmas: np.ndarray, s_churn: float, seed: int = 0) -> Tensor:
    """Minimal PyNative integrator: the same schedule, initial scaling, churn noise and NFE as the samplers."""
    n = len(sigmas) - 1
    shape = tuple(x.shape)
    rng = np.random.default_rng(seed)
    sigma_in = Tensor(np.ones((shape[0],), dtype=np.float32))  # D ignores it; created once
    y = x * math.sqrt(1.0 + float(sigmas[0]) ** 2)  # init_noise="sgm"
    for i in range(n):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        g = gamma_for(s_churn, s, n)
        if g > 0:
            s_hat = s * (1.0 + g)
            noise = Tensor.from_numpy(rng.standard_normal(shape, dtype=np.float32))
            y = y + noise * math.sqrt(s_hat**2 - s**2)
        else:
            s_hat = s
        dt = s_next - s_hat
        e = y - denoiser(y, sigma_in, None)  # sigma_hat * d
        if heun and s_next > 0:
            y_e = y + e * (dt / s_hat)
            e2 = y_e - denoiser(y_e, sigma_in, None)
            y = y + (e * (dt / (2.0 * s_hat)) + e2 * (dt / (2.0 * s_next)))
        else:
            y = y + e * (dt / s_hat)
    return y


def denoiser_alone(denoiser, x: Tensor, calls: int) -> Tensor:
    sigma_in = Tensor(np.ones((x.shape[0],), dtype=np.float32))
    out = x
    for _ in range(calls):
        out = denoiser(x, sigma_in, None)
    return out


def _cpu_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Average number of cores used by *other* processes while the block runs (a noise indicator)."""

    def __enter__(self):
        self.wall, self.busy, self.own = time.perf_counter(), _cpu_busy_s(), sum(os.times()[:2])
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.wall
        busy = _cpu_busy_s()
        own = sum(os.times()[:2]) - self.own
        self.own_cores = own / wall
        self.other_cores = None if busy is None or self.busy is None else max(0.0, (busy - self.busy - own) / wall)
        return False


# -- timing ----------------------------------------------------------------------------------------------------------


def timed(fn: Callable[[], Tensor]) -> float:
    """Wall seconds of fn() including the final .asnumpy() of its result, with the GC paused."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn().asnumpy()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def run_round_robin(variants: dict[str, Callable[[], Tensor]], repeats: int) -> dict[str, list[float]]:
    for fn in variants.values():  # one warm-up call each
        fn().asnumpy()
    names = list(variants)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(timed(variants[name]))
    return times


def bench_case(args, denoiser_kind: str, s_churn: float) -> dict:
    shape, steps = args.shape, args.steps
    x = randn(shape, generator=1234)
    denoiser = make_denoiser(denoiser_kind, shape)
    sigmas = EDMDiscretization()(steps)
    samplers = {name: cls(s_churn=s_churn) for name, cls in SAMPLERS.items()}

    def sampler_call(s):
        return lambda: s(denoiser, x, cond=None, num_steps=steps, generator=0, disable=True)

    # NFE per sampler from one call (also the reference output for the yardstick check).
    nfe, outputs = {}, {}
    for name, s in samplers.items():
        outputs[name] = s(denoiser, x, cond=None, num_steps=steps, generator=0, disable=True).asnumpy()
        nfe[name] = s.last_nfe
    d_calls = max(nfe.values())

    variants = {}
    for name, s in samplers.items():
        variants[name] = sampler_call(s)
        variants[f"bare-{name}"] = lambda h=(name == "heun"): bare_loop(h, denoiser, x, sigmas, s_churn)
    variants["D"] = lambda: denoiser_alone(denoiser, x, d_calls)

    # Sanity: the yardstick integrates the same thing (same noise stream when churning).
    # Differences are float32 rounding; scale them by the starting magnitude (outputs can be exactly 0 with "zeros").
    scale = float(np.max(np.abs(x.asnumpy()))) * math.sqrt(1.0 + float(sigmas[0]) ** 2)
    max_rel_diff = {}
    for name in samplers:
        bare = bare_loop(name == "heun", denoiser, x, sigmas, s_churn).asnumpy()
        max_rel_diff[name] = float(np.max(np.abs(bare - outputs[name]))) / scale

    with OtherLoad() as load:
        times = run_round_robin(variants, args.repeats)

    d_ms_per_call = statistics.median(times["D"]) * 1e3 / d_calls
    d_ms_per_call_min = min(times["D"]) * 1e3 / d_calls
    rows = {}
    for name in samplers:
        per_step = [t * 1e3 / steps for t in times[name]]
        bare_per_step = [t * 1e3 / steps for t in times[f"bare-{name}"]]
        med, bare_med = statistics.median(per_step), statistics.median(bare_per_step)
        d_per_step = d_ms_per_call * nfe[name] / steps
        overhead, bare_overhead = med - d_per_step, bare_med - d_per_step
        rows[name] = {
            "sampler": type(samplers[name]).__name__,
            "nfe": nfe[name],
            "median_ms_per_step": med,
            "min_ms_per_step": min(per_step),
            "median_ms_per_eval": statistics.median(times[name]) * 1e3 / nfe[name],
            "d_ms_per_step": d_per_step,
            "overhead_ms_per_step": overhead,
            "bare_median_ms_per_step": bare_med,
            "bare_min_ms_per_step": min(bare_per_step),
            "bare_overhead_ms_per_step": bare_overhead,
            "ratio_vs_bare": med / bare_med,
            "overhead_ratio_vs_bare": overhead / bare_overhead if bare_overhead > 0 else float("nan"),
            "bare_max_rel_diff": max_rel_diff[name],
            "raw_s": times[name],
            "bare_raw_s": times[f"bare-{name}"],
        }
    return {
        "denoiser": denoiser_kind,
        "s_churn": s_churn,
        "d_calls_timed": d_calls,
        "d_median_ms_per_call": d_ms_per_call,
        "d_min_ms_per_call": d_ms_per_call_min,
        "d_raw_s": times["D"],
        "own_cores": load.own_cores,
        "other_cores": load.other_cores,
        "rows": rows,
    }


# -- breakdown: where does a step's time go? (ablation of a replica of the library's loop) --------------------------
#
# In PyNative the Python thread only enqueues ops; kernels run on a worker thread. Python-side profiles therefore
# show *waits*, not costs, so the breakdown is done by ablation: a replica of the sampler loop built from the same
# MindSpore ops as edm_sampler 0.1.0 (SamplingRun.denoise + functional.py + NoiseSource), timed with one piece
# removed or changed at a time. The real sampler is timed alongside so that any drift of the replica shows.


def replica_loop(
    heun: bool,
    denoiser,
    x: Tensor,
    sigmas: np.ndarray,
    s_churn: float,
    *,
    meta: str = "each",  # "each" | "first" | "none": read out.shape/out.dtype of the model output (run.py)
    check: str = "each",  # "each" | "final" | "none": isfinite().all() per evaluation, on the final x, or never
    sigma_tensor: bool = True,  # build the (B,) sigma Tensor per evaluation
    guider: bool = True,  # call guider.prepare_inputs / guider(...) (IdentityGuider)
    fused: bool = False,  # x + (x - D) * c instead of to_d + euler_step (and the same for Heun's correction)
    from_numpy: bool = False,  # wrap the NumPy noise with Tensor.from_numpy instead of Tensor(array, dtype)
) -> Tensor:
    g = IdentityGuider()
    n = len(sigmas) - 1
    shape = tuple(x.shape)
    rng = np.random.default_rng(0)
    sigma_const = Tensor(np.ones((shape[0],), dtype=np.float32))
    flags: list = []
    seen = [False]

    def denoise(y, sigma):
        st = Tensor(np.full((shape[0],), sigma, dtype=np.float32)) if sigma_tensor else sigma_const
        y_in, s_in, c_in = g.prepare_inputs(y, st, None, None) if guider else (y, st, None)
        out = denoiser(y_in, s_in, c_in)
        if meta == "each" or (meta == "first" and not seen[0]):
            seen[0] = True
            if tuple(out.shape) != tuple(y_in.shape) or out.dtype != ms.float32:
                raise RuntimeError("bad denoiser output")
        if check == "each":
            flags.append(ms.ops.isfinite(out).all())
        return g(out, st) if guider else out

    y = x.astype(ms.float32) * math.sqrt(1.0 + float(sigmas[0]) ** 2)
    for i in range(n):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        gm = gamma_for(s_churn, s, n)
        if gm > 0:
            s_hat = s * (1.0 + gm)
            a = rng.standard_normal(shape, dtype=np.float32)
            noise = Tensor.from_numpy(a) if from_numpy else Tensor(a, dtype=ms.float32)
            y = y + noise * math.sqrt(s_hat**2 - s**2)
        else:
            s_hat = s
        dt = s_next - s_hat
        den = denoise(y, s_hat)
        if fused:
            e = y - den
            y_next = y + e * (dt / s_hat)
            if heun and s_next > 0:
                e2 = y_next - denoise(y_next, s_next)
                y_next = y + (e * (dt / (2.0 * s_hat)) + e2 * (dt / (2.0 * s_next)))
        else:
            d = (y - den) * (1.0 / s_hat)
            y_next = y + d * dt
            if heun and s_next > 0:
                d_next = (y_next - denoise(y_next, s_next)) * (1.0 / s_next)
                y_next = y + ((d + d_next) * 0.5) * dt
        y = y_next
    if check == "each" and not ms.ops.stack(flags).asnumpy().all():
        raise RuntimeError("non-finite")
    if check == "final" and not bool(ms.ops.isfinite(y).all().asnumpy()):
        raise RuntimeError("non-finite")
    return y


ABLATIONS = (  # label, replica_loop keyword arguments (None: the real sampler / the bare loop)
    ("library sampler", None),
    ("replica of the library", {}),
    ("- out.shape/out.dtype reads (run.py:90-92)", {"meta": "none"}),
    ("  ... read on the 1st evaluation only", {"meta": "first"}),
    ("- isfinite().all() per eval (run.py:95)", {"check": "none"}),
    ("- both, one isfinite().all() on final x", {"meta": "first", "check": "final"}),
    ("- sigma Tensor per eval (run.py:83)", {"sigma_tensor": False}),
    ("- guider calls", {"guider": False}),
    ("fused update x + (x - D) * c", {"fused": True}),
    ("Tensor.from_numpy noise (noise.py:54)", {"from_numpy": True}),
    (
        "all of the above (1st-eval meta, final check)",
        {"meta": "first", "check": "final", "sigma_tensor": False, "guider": False, "fused": True, "from_numpy": True},
    ),
    ("bare loop (yardstick)", None),
)


def piece_costs(shape: tuple[int, ...], calls: int = 200, rounds: int = 7) -> list[tuple[str, float]]:
    """Steady-state cost of each piece of a step: `calls` calls queued, then one sync; median us per call."""
    ops = ms.ops
    x = randn(shape, generator=1)
    y = x * 2.0
    rng = np.random.default_rng(0)
    arr = rng.standard_normal(shape, dtype=np.float32)
    flags = [ops.isfinite(x).all() for _ in range(50)]

    def forced_wait():
        out = x * 0.5
        out.shape  # noqa: B018 - the attribute read is the point
        return out

    pieces = [
        ("D = x * 0.5 (identity-like denoiser)", lambda: x * 0.5),
        ("sigma Tensor(np.full((B,), s, float32))", lambda: Tensor(np.full((shape[0],), 3.3, dtype=np.float32))),
        ("isfinite(out)", lambda: ops.isfinite(x)),
        ("isfinite(out).all()", lambda: ops.isfinite(x).all()),
        ("to_d: (x - D) * (1/sigma)  [2 ops]", lambda: (x - y) * 0.3),
        ("euler_step: x + d * dt  [2 ops]", lambda: x + y * 0.3),
        ("fused: x + (x - D) * c  [3 ops]", lambda: x + (x - y) * 0.3),
        ("add_noise: x + noise * std  [2 ops]", lambda: x + y * 0.3),
        ("noise: edm_sampler.randn(shape, Generator)", lambda: randn(shape, rng)),
        ("  of which Tensor(array, dtype=float32)", lambda: Tensor(arr, dtype=ms.float32)),
        ("  vs Tensor.from_numpy(array)", lambda: Tensor.from_numpy(arr)),
        ("x * 0.5 then read .shape (forced wait)", forced_wait),
        ("finish(): ops.stack(50 flags)  [once per call]", lambda: ops.stack(flags)),
    ]
    results = []
    for label, fn in pieces:
        fn()
        x.asnumpy()
        per_call = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            out = None
            for _ in range(calls):
                out = fn()
            if isinstance(out, Tensor):
                out.asnumpy()
            per_call.append((time.perf_counter() - t0) / calls * 1e6)
        results.append((label, statistics.median(per_call)))
    return results


def breakdown(args, s_churn: float) -> dict:
    shape, steps = args.shape, args.steps
    x = randn(shape, generator=1234)
    denoiser = make_denoiser("identity-like", shape)
    sigmas = EDMDiscretization()(steps)
    repeats = 3 * args.repeats
    out = {}
    for name, cls in SAMPLERS.items():
        heun = name == "heun"
        sampler = cls(s_churn=s_churn)
        variants = {}
        for label, kw in ABLATIONS:
            if label == "library sampler":
                variants[label] = lambda s=sampler: s(denoiser, x, num_steps=steps, generator=0, disable=True)
            elif label.startswith("bare loop"):
                variants[label] = lambda h=heun: bare_loop(h, denoiser, x, sigmas, s_churn)
            elif label.startswith("Tensor.from_numpy") and s_churn == 0:
                continue  # no noise is drawn without churn
            else:
                variants[label] = lambda h=heun, kw=kw: replica_loop(h, denoiser, x, sigmas, s_churn, **kw)
        ref = variants["library sampler"]().asnumpy()
        rep = variants["replica of the library"]().asnumpy()
        if not np.array_equal(ref, rep):
            print(f"   WARNING: the replica no longer reproduces {cls.__name__} bit-for-bit; the library changed")
        times = run_round_robin(variants, repeats)
        out[name] = {label: statistics.median(t) * 1e3 / steps for label, t in times.items()}
        print(
            f"\n== breakdown: {cls.__name__}, s_churn={s_churn:g}, identity-like D, shape={shape}, steps={steps}, "
            f"{repeats} repeats round-robin (median ms/step; delta vs the replica)"
        )
        base = out[name]["replica of the library"]
        for label, ms_step in out[name].items():
            print(f"   {label:<48}{ms_step:8.3f}{ms_step - base:+9.3f}")
    return out


# -- output ----------------------------------------------------------------------------------------------------------


def print_case(case: dict, args) -> None:
    print(
        f"\n== s_churn={case['s_churn']:g}, denoiser={case['denoiser']}, shape={args.shape}, steps={args.steps}, "
        f"repeats={args.repeats}, threads={args.threads}"
    )
    other = "n/a" if case["other_cores"] is None else f"{case['other_cores']:.2f}"
    print(f"   CPU use while timing: this process {case['own_cores']:.2f} cores, other processes {other} cores")
    print(
        f"   D alone: {case['d_median_ms_per_call'] * 1e3:.1f} us/call median "
        f"({case['d_min_ms_per_call'] * 1e3:.1f} min), {case['d_calls_timed']} calls + asnumpy"
    )
    header = (
        f"   {'sampler':<16}{'NFE':>5}{'med ms/step':>13}{'min ms/step':>13}{'ms/eval':>9}{'D ms/step':>11}"
        f"{'ovh ms/step':>13}{'bare ms/step':>14}{'bare min':>10}{'x bare':>8}{'ovh x bare':>12}"
    )
    print(header)
    print("   " + "-" * (len(header) - 3))
    for row in case["rows"].values():
        print(
            f"   {row['sampler']:<16}{row['nfe']:>5}{row['median_ms_per_step']:>13.3f}{row['min_ms_per_step']:>13.3f}"
            f"{row['median_ms_per_eval']:>9.3f}{row['d_ms_per_step']:>11.3f}{row['overhead_ms_per_step']:>13.3f}"
            f"{row['bare_median_ms_per_step']:>14.3f}{row['bare_min_ms_per_step']:>10.3f}"
            f"{row['ratio_vs_bare']:>7.2f}x{row['overhead_ratio_vs_bare']:>11.2f}x"
        )
    diffs = ", ".join(f"{r['sampler']} {r['bare_max_rel_diff']:.1e}" for r in case["rows"].values())
    print(f"   (sanity: max |bare loop - sampler output| / max |x_0|: {diffs})")


def print_summary(cases: list[dict]) -> None:
    print("\nSummary (medians, ms/step; 'overhead' = per-step time - D time per step):")
    for case in cases:
        for row in case["rows"].values():
            print(
                f"  churn={case['s_churn']:<4g} {case['denoiser']:<14} {row['sampler']:<16} "
                f"{row['median_ms_per_step']:.3f} ms/step = D {row['d_ms_per_step']:.3f} + overhead "
                f"{row['overhead_ms_per_step']:.3f};  bare loop {row['bare_median_ms_per_step']:.3f} "
                f"-> sampler/bare {row['ratio_vs_bare']:.2f}x (overhead {row['overhead_ratio_vs_bare']:.2f}x)"
            )


def profile_samplers(args, s_churn: float) -> None:
    import cProfile
    import pstats

    x = randn(args.shape, generator=1234)
    denoiser = make_denoiser("identity-like", args.shape)
    for cls in SAMPLERS.values():
        s = cls(s_churn=s_churn)
        s(denoiser, x, num_steps=args.steps, generator=0, disable=True).asnumpy()
        prof = cProfile.Profile()
        prof.enable()
        s(denoiser, x, num_steps=args.steps, generator=0, disable=True).asnumpy()
        prof.disable()
        print(f"\n== cProfile: one {cls.__name__} call, s_churn={s_churn:g}, identity-like D (top 12 by tottime)")
        print("   (time a PyNative call spends waiting for queued kernels shows up in whatever forced the wait)")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(12)


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    setup_mindspore(args.threads)
    churns = [0.0] + ([args.churn] if args.churn is not None and args.churn != 0 else [])
    kinds = DENOISERS if args.denoiser == "both" else (args.denoiser,)
    env = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "mindspore": ms.__version__,
        "numpy": np.__version__,
        "threads_num": args.threads,
    }
    print(
        f"bench_overhead: MindSpore {env['mindspore']} (PyNative, CPU), numpy {env['numpy']}, Python {env['python']}, "
        f"{env['cpu_count']} CPUs, threads_num={args.threads}, {env['date']}"
    )
    cases = [bench_case(args, kind, churn) for churn in churns for kind in kinds]
    for case in cases:
        print_case(case, args)
    print_summary(cases)
    if args.profile:
        for churn in churns:
            profile_samplers(args, churn)
    extra = {}
    if args.breakdown:
        pieces = piece_costs(args.shape)
        print(f"\n== piece costs at {args.shape}: median us per call, 200 calls queued then one sync")
        for label, us in pieces:
            print(f"   {label:<50}{us:9.1f}")
        extra["piece_costs_us"] = dict(pieces)
        extra["breakdown_ms_per_step"] = {f"{churn:g}": breakdown(args, churn) for churn in churns}
    elapsed = time.perf_counter() - t_start
    print(f"\ntotal benchmark time: {elapsed:.1f} s")
    if args.json:
        config = {k: v for k, v in vars(args).items() if k != "json"}
        with open(args.json, "w") as f:
            json.dump({"env": env, "config": config, "cases": cases, **extra, "elapsed_s": elapsed}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
