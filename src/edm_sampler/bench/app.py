"""``edm-sampler bench``: process set-up (threads, oneDNN ISA), the sections, the report.

This is an application, so unlike the library it sets process-wide state: kernel threads, the NumPy/torch global
seeds of the baselines, and ``DNNL_MAX_CPU_ISA``. MindSpore 2.10's bundled oneDNN picks its AVX-512 convolution
code on AMD EPYC CPUs, which is ~70x slower there than its AVX2 code (measured: a 3x3 32->32 conv at 8x32x32x32
takes ~270 ms vs 3.8 ms); oneDNN reads the variable at its first convolution, so setting it here is early enough.
"""

from __future__ import annotations

import argparse
import os
import time

import mindspore as ms

from ..commands import DNNL_VAR
from . import machine, overhead, realnet, report, schedulers, torch_baselines
from .timing import attempt


def configure_dnnl(option: str) -> dict:
    """Apply ``--dnnl-isa`` and return the value in effect with where it came from."""
    preset = os.environ.get(DNNL_VAR)
    if option == "auto":
        if preset is None:
            os.environ[DNNL_VAR] = "AVX2"
            source = "set by the bench (--dnnl-isa auto)"
        else:
            source = "from the environment"
    elif option == "native":
        source = "from the environment" if preset is not None else "unset: oneDNN picks (--dnnl-isa native)"
    else:
        os.environ[DNNL_VAR] = option.upper()
        source = "set by --dnnl-isa"
    return {"option": option, "value": os.environ.get(DNNL_VAR), "source": source}


def set_threads(threads: int) -> str:
    try:
        ms.device_context.cpu.op_tuning.threads_num(threads)
    except RuntimeError:  # MindSpore allows one setting per process; a host (e.g. pytest) may have made it
        return "already set in this process (kept)"
    except AttributeError:
        return f"not settable in MindSpore {ms.__version__} (default kept)"
    return str(threads)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    dnnl = configure_dnnl(args.dnnl_isa)  # before the first convolution of the process
    ms_threads = set_threads(args.threads)
    tb, reason = torch_baselines.load(args.threads, disabled=args.no_torch)
    env = machine.describe(
        tb.torch_version if tb else machine.package_version("torch"),
        tb.kdiffusion_version if tb else machine.package_version("k-diffusion"),
    )
    env.update(threads=args.threads, mindspore_threads=ms_threads, dnnl=dnnl)
    config = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    results = {
        "schema": "edm_sampler.bench/1",
        "env": env,
        "config": config,
        "baselines": {"torch": "ok" if tb is not None else reason},
        "sections": {},
    }
    sections = {
        "per-step": ("per_step", overhead.run),
        "real-net": ("real_net", realnet.run),
        "schedulers": ("schedulers", schedulers.run),
    }
    with machine.CpuLoad() as load:
        for name in args.sections:
            key, section = sections[name]
            result, error = attempt(f"section {name}", lambda section=section: section(args, tb))
            results["sections"][key] = result if error is None else {"errors": {"section": error}}
    results["load"] = load.as_dict()
    results["errors"] = {
        f"{key}/{name}": error for key, s in results["sections"].items() for name, error in s["errors"].items()
    }
    results["elapsed_s"] = time.perf_counter() - start
    print(report.text(results))
    if args.json:
        report.write_json(results, args.json)
        print(f"\nwrote {args.json}")
    return 1 if results["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    from .options import build_parser, resolve

    return run(resolve(build_parser().parse_args(argv)))
