"""Section "per-step": what a sampler step costs beyond the model, against three baselines.

The denoiser is one op, ``D(x, sigma, cond) = x * 0.5``, in every framework. Each call is a full sampling run
(``sampler(D, x, cond=None, num_steps=N, generator=0, disable=True)`` and ``.asnumpy()``), and the same D alone is
timed for the same number of evaluations in the same framework, so that

    own ms/step = (median call - median D-alone) / steps.

Baselines in the same round-robin: a mindone-style loop (MindSpore PyNative), k-diffusion's ``sample_euler`` /
``sample_heun`` on PyTorch CPU (when importable), and the memory-traffic floor. The host noise draw edm_sampler
makes on a churned step (NumPy ``standard_normal``, float32) is timed alone too: it bounds the churn rows.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from mindspore import Tensor

from edm_sampler import EDMDiscretization, EulerEDMSampler, HeunEDMSampler, randn

from . import floor
from .machine import CpuLoad
from .mindone_style import MindoneStyleEDMSampler
from .timing import Variant, attempt, errors, round_robin
from .torch_baselines import TorchBaselines, with_noise

SAMPLERS = {"euler": EulerEDMSampler, "heun": HeunEDMSampler}
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
SANITY_SHAPE = (2, 3, 8, 8)


def one_op(x, sigma, cond=None):
    return x * 0.5


def shape_name(shape) -> str:
    return "x".join(str(s) for s in shape)


def expected_nfe(sampler: str, steps: int) -> int:
    return steps if sampler == "euler" else 2 * steps - 1


def _feeder(arrays):
    """``noise_sampler(sigma, sigma_next)`` and ``randn(shape)`` stand-ins that hand out ``arrays`` in order."""
    it = iter(arrays)
    return (lambda sigma, sigma_next: next(it)), (lambda shape: next(it))


class _Torch:
    """The PyTorch half of a shape's variants (built only when torch and k-diffusion load)."""

    def __init__(self, tb: TorchBaselines, x_np: np.ndarray, steps: int):
        torch = tb.torch
        self.tb = tb
        self.x = torch.from_numpy(x_np.copy())
        self.sigmas = tb.sampling.get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX, RHO)
        self.scale = math.sqrt(1.0 + SIGMA_MAX**2)  # edm_sampler's default init_noise="sgm"
        self.sigma_in = torch.ones(x_np.shape[0])

    @staticmethod
    def model(x, sigma):
        return x * 0.5

    def sample(self, sampler: str, s_churn: float):
        fn = self.tb.sampling.sample_euler if sampler == "euler" else self.tb.sampling.sample_heun
        return fn(self.model, self.x * self.scale, self.sigmas, disable=True, s_churn=s_churn)

    def d_alone(self, calls: int):
        with self.tb.torch.no_grad():
            out = None
            for _ in range(calls):
                out = self.model(self.x, self.sigma_in)
            return out


def _d_alone_ms(x: Tensor, calls: int):
    sigma = Tensor(np.ones((x.shape[0],), dtype=np.float32))
    out = None
    for _ in range(calls):
        out = one_op(x, sigma, None)
    return out


def _draws(shape, calls: int):
    """The churn noise edm_sampler draws per step: NumPy float32 normals, wrapped without a copy."""
    generator = np.random.default_rng(0)
    out = None
    for _ in range(calls):
        out = Tensor.from_numpy(generator.standard_normal(shape, dtype=np.float32))
    return out


def _per_step(seconds: float | None, steps: int) -> float | None:
    return None if seconds is None else seconds * 1e3 / steps


def _stats(timings, steps: int, d_ms_per_step: float | None) -> dict:
    total = _per_step(timings.median_s, steps)
    return {
        "total_ms_per_step": total,
        "min_ms_per_step": _per_step(timings.min_s, steps),
        "d_ms_per_step": d_ms_per_step,
        "own_ms_per_step": None if total is None or d_ms_per_step is None else total - d_ms_per_step,
        "first_call_s": timings.first_s,
        "raw_s": list(timings.raw_s),
        "error": timings.error,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def build_variants(args, tb: TorchBaselines | None):
    """All variants of the section, and what each shape's rows need to read them back."""
    steps = args.steps
    churns = sorted({0.0, float(args.churn)})
    variants, cases = [], []
    for shape in args.shapes:
        key = shape_name(shape)
        x = randn(shape, generator=1234)
        x_np = x.asnumpy()
        torch_side = _Torch(tb, x_np, steps) if tb is not None else None
        for sampler, cls in SAMPLERS.items():
            for churn in churns:
                prefix = f"{key}/{sampler}/churn={churn:g}"
                edm = cls(s_churn=churn)
                mindone = MindoneStyleEDMSampler(heun=sampler == "heun", s_churn=churn)
                variants.append(
                    Variant(
                        f"{prefix}/edm_sampler",
                        lambda s=edm, x=x: s(one_op, x, cond=None, num_steps=steps, generator=0, disable=True),
                    )
                )
                variants.append(
                    Variant(f"{prefix}/mindone_style", lambda m=mindone, x=x: m(one_op, x, None, num_steps=steps))
                )
                if torch_side is not None:
                    variants.append(
                        Variant(f"{prefix}/k_diffusion", lambda t=torch_side, s=sampler, c=churn: t.sample(s, c))
                    )
                cases.append({"shape": shape, "sampler": sampler, "s_churn": churn, "prefix": prefix})
        variants.append(Variant(f"{key}/noise_draw", lambda shape=shape: _draws(shape, steps)))
        for nfe in sorted({expected_nfe(s, steps) for s in SAMPLERS}):
            variants.append(Variant(f"{key}/D/mindspore/nfe={nfe}", lambda x=x, n=nfe: _d_alone_ms(x, n)))
            if torch_side is not None:
                variants.append(Variant(f"{key}/D/torch/nfe={nfe}", lambda t=torch_side, n=nfe: t.d_alone(n)))
    return variants, cases


def sanity(steps: int, s_churn: float, tb: TorchBaselines | None) -> dict:
    """The baselines integrate the same thing: outputs with identical injected noise, relative to edm_sampler."""
    x = randn(SANITY_SHAPE, generator=99)
    x_np = x.asnumpy()
    rng = np.random.default_rng(7)
    noises = [rng.standard_normal(SANITY_SHAPE, dtype=np.float32) for _ in range(steps)]
    torch_side = _Torch(tb, x_np, steps) if tb is not None else None
    out = {"shape": list(SANITY_SHAPE), "steps": steps, "nfe": {}, "mindone_style": {}, "k_diffusion": None}
    if torch_side is not None:
        out["k_diffusion"] = {}
        edm_sigmas = EDMDiscretization(SIGMA_MIN, SIGMA_MAX, RHO)(steps)
        kd_sigmas = torch_side.sigmas.numpy().astype(np.float64)
        out["k_diffusion_sigmas_max_rel_diff"] = float(np.max(np.abs(kd_sigmas - edm_sigmas)) / SIGMA_MAX)
    for sampler, cls in SAMPLERS.items():
        for churn in sorted({0.0, float(s_churn)}):
            label = f"{sampler}/churn={churn:g}"
            noise_sampler, _ = _feeder(noises)
            edm = cls(s_churn=churn)
            ref = edm(one_op, x, None, num_steps=steps, noise_sampler=noise_sampler, disable=True).asnumpy()
            out["nfe"][label] = edm.last_nfe
            scale = float(np.max(np.abs(ref)))
            mindone = MindoneStyleEDMSampler(heun=sampler == "heun", s_churn=churn)
            _, mindone.randn = _feeder(noises)
            got = mindone(one_op, x, None, num_steps=steps).asnumpy()
            out["mindone_style"][label] = float(np.max(np.abs(got - ref)) / scale)
            if torch_side is not None:
                with with_noise(tb, noises):  # k-diffusion draws randn_like on every step, used when gamma > 0
                    got = torch_side.sample(sampler, churn).numpy()
                out["k_diffusion"][label] = float(np.max(np.abs(got - ref)) / scale)
    out["mindone_style_input_unchanged"] = bool(np.array_equal(x.asnumpy(), x_np))
    diffs = list(out["mindone_style"].values()) + list((out["k_diffusion"] or {}).values())
    out["max_rel_diff"] = max(diffs)
    out["nfe_as_expected"] = all(n == expected_nfe(k.split("/")[0], steps) for k, n in out["nfe"].items())
    return out


def run(args, tb: TorchBaselines | None) -> dict:
    np.random.seed(0)  # the mindone-style loop's global RNG, seeded once as mindone's seed_everything does
    if tb is not None:
        tb.torch.manual_seed(0)
    steps = args.steps
    variants, cases = build_variants(args, tb)
    print(f"per-step: {len(variants)} variants, {args.repeats} rounds after a first call each", file=sys.stderr)
    with CpuLoad() as load:
        timings = round_robin(variants, args.repeats)
    bandwidth = {shape_name(s): floor.add_bandwidth(int(np.prod(s))) for s in args.shapes}
    large = floor.add_bandwidth(floor.LARGE_ELEMENTS, rounds=3)

    rows = []
    for case in cases:
        shape, sampler, churn, prefix = case["shape"], case["sampler"], case["s_churn"], case["prefix"]
        key = shape_name(shape)
        nfe = expected_nfe(sampler, steps)  # what edm_sampler's last_nfe reports (checked in the sanity run)
        d_ms = _per_step(timings[f"{key}/D/mindspore/nfe={nfe}"].median_s, steps)
        row = {
            "shape": list(shape),
            "sampler": sampler,
            "s_churn": churn,
            "steps": steps,
            "nfe": nfe,
            "x_bytes": int(np.prod(shape)) * 4,
            "edm_sampler": _stats(timings[f"{prefix}/edm_sampler"], steps, d_ms),
            "mindone_style": _stats(timings[f"{prefix}/mindone_style"], steps, d_ms),
            "k_diffusion": None,
        }
        if f"{prefix}/k_diffusion" in timings:
            d_torch = _per_step(timings[f"{key}/D/torch/nfe={nfe}"].median_s, steps)
            row["k_diffusion"] = _stats(timings[f"{prefix}/k_diffusion"], steps, d_torch)
        gb_s = bandwidth[key]["best_gb_s"]
        nbytes, floor_ms = floor.floor_ms_per_step(row["x_bytes"], sampler == "heun", steps, churn > 0, gb_s)
        row["floor"] = {"bytes_per_step": nbytes, "gb_s": gb_s, "ms_per_step": floor_ms}
        draw = _per_step(timings[f"{key}/noise_draw"].median_s, steps) if churn > 0 else 0.0
        row["noise_draw_ms_per_step"] = draw
        edm, kd = row["edm_sampler"], row["k_diffusion"]
        row["ratios"] = {
            "edm_own_over_kdiff_own": _ratio(edm["own_ms_per_step"], kd and kd["own_ms_per_step"]),
            "mindone_total_over_edm_total": _ratio(row["mindone_style"]["total_ms_per_step"], edm["total_ms_per_step"]),
            "edm_own_over_floor": _ratio(edm["own_ms_per_step"], floor_ms),
            "edm_own_without_draw_over_kdiff_own": _ratio(
                None if edm["own_ms_per_step"] is None or draw is None else edm["own_ms_per_step"] - draw,
                kd and kd["own_ms_per_step"],
            ),
        }
        rows.append(row)

    checks, check_error = attempt("per-step sanity check", lambda: sanity(steps, args.churn, tb))
    d_alone = {
        name: {"median_s": t.median_s, "min_s": t.min_s, "raw_s": list(t.raw_s), "error": t.error}
        for name, t in timings.items()
        if "/D/" in name
    }
    return {
        "steps": steps,
        "repeats": args.repeats,
        "shapes": [list(s) for s in args.shapes],
        "s_churn_values": sorted({0.0, float(args.churn)}),
        "denoiser": "D(x, sigma, cond) = x * 0.5",
        "variants": len(variants),
        "load": load.as_dict(),
        "bandwidth": {"per_shape": bandwidth, "large_array": large},
        "d_alone": d_alone,
        "rows": rows,
        "errors": {**errors(timings), **({"sanity": check_error} if check_error else {})},
        "sanity": checks,
    }
