"""Command-line options of ``edm-sampler bench`` (argparse only: importing this module loads nothing heavy)."""

from __future__ import annotations

import argparse

from ..commands import positive_int

SECTIONS = ("per-step", "real-net", "schedulers")
DEFAULT_SHAPES = ((1, 4, 128, 128), (8, 4, 64, 64), (64, 3, 32, 32))
# The real-net section's sampler family, by k-diffusion's names (sample_<name>); bench.family maps them to samplers.
FAMILY = (
    "euler",
    "heun",
    "euler_ancestral",
    "dpmpp_2s_ancestral",
    "dpmpp_2m",
    "lms",
    "lcm",
    "dpm_2",
    "dpm_2_ancestral",
    "dpmpp_sde",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
)

# Full-size defaults, and what --quick replaces them with (only for options the user did not give).
DEFAULTS = {
    "shapes": DEFAULT_SHAPES,
    "steps": 20,
    "repeats": 7,
    "net_batch": 4,
    "net_size": 32,
    "net_steps": 20,
    "samplers": FAMILY,
}
QUICK = {
    "shapes": ((2, 4, 16, 16),),
    "steps": 3,
    "repeats": 1,
    "net_batch": 2,
    "net_size": 8,
    "net_steps": 3,
    "samplers": ("euler", "dpmpp_sde", "lcm"),  # the churn, Brownian and reproduced-baseline paths
}

DESCRIPTION = """\
Benchmark edm_sampler on MindSpore (CPU) against a mindone-style sampler loop, k-diffusion on PyTorch and a
memory-traffic floor (section per-step), end to end on a real network in PyNative and graph mode (section
real-net), and per diffusers scheduler class against mindone.diffusers' own loop, when mindone is installed (section
schedulers). Every variant of a section is timed in one process, round-robin; medians are reported."""


def parse_shape(text: str) -> tuple[int, ...]:
    parts = text.lower().replace("x", ",").replace("(", "").replace(")", "").split(",")
    shape = tuple(int(p) for p in parts if p.strip())
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"bad shape {text!r}; use e.g. 8x4x64x64 (batch first)")
    return shape


def nonnegative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def parse_sections(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in SECTIONS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"sections are {', '.join(SECTIONS)} (comma-separated), got {text!r}")
    return names


def parse_samplers(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return FAMILY
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in FAMILY]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"samplers are all, or some of {', '.join(FAMILY)}; got {text!r}")
    return tuple(s for s in FAMILY if s in names)  # table order


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument(
        "--sections",
        type=parse_sections,
        default=SECTIONS,
        help="comma-separated sections to run: per-step, real-net, schedulers (default: all three)",
    )
    p.add_argument(
        "--shapes",
        type=parse_shape,
        nargs="+",
        default=None,
        metavar="BxCxHxW",
        help="per-step section: latent shapes (default: 1x4x128x128 8x4x64x64 64x3x32x32)",
    )
    p.add_argument("--steps", type=positive_int, default=None, help="per-step section: sampler steps (default 20)")
    p.add_argument(
        "--churn",
        type=nonnegative_float,
        default=10.0,
        help="per-step section: the s_churn of the churn-on rows (default 10: gamma > 0 on every step)",
    )
    p.add_argument("--repeats", type=positive_int, default=None, help="timed calls per variant (default 7)")
    p.add_argument("--net-batch", type=positive_int, default=None, help="real-net section: batch (default 4)")
    p.add_argument("--net-size", type=positive_int, default=None, help="real-net section: image side (default 32)")
    p.add_argument("--net-steps", type=positive_int, default=None, help="real-net section: Euler steps (default 20)")
    p.add_argument(
        "--samplers",
        type=parse_samplers,
        default=None,
        metavar="NAMES",
        help="real-net section: the samplers of its family table, by k-diffusion name (euler, heun, euler_ancestral, "
        "dpmpp_2s_ancestral, dpmpp_2m, lms, lcm, dpm_2, dpm_2_ancestral, dpmpp_sde, dpmpp_2m_sde, dpmpp_3m_sde), "
        "comma-separated, or all (default all; --quick: euler,dpmpp_sde,lcm)",
    )
    p.add_argument("--threads", type=positive_int, default=1, help="MindSpore and torch CPU threads (default 1)")
    p.add_argument(
        "--dnnl-isa",
        default="auto",
        metavar="ISA",
        help="DNNL_MAX_CPU_ISA for MindSpore's oneDNN: auto (AVX2 unless the environment sets it), native (leave "
        "the environment alone), or a oneDNN ISA name such as AVX2 or AVX512_CORE (default auto)",
    )
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch baselines (as if torch were missing)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 3 steps, 1 repeat: a smoke test in seconds")
    p.add_argument("--json", metavar="PATH", help="write every number, with the raw timings, to PATH")
    return p


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options left unset from the full-size defaults, or from the --quick sizes."""
    table = QUICK if args.quick else DEFAULTS
    for key, value in table.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def build_parser(prog: str = "python -m edm_sampler.bench") -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(
            prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    )


def add_bench_parser(subcommands) -> argparse.ArgumentParser:
    """Register ``bench`` on an argparse subcommand group; its handler imports the benchmark only when it runs."""
    p = subcommands.add_parser(
        "bench",
        help="benchmark the samplers against baselines",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from .app import run

    return run(resolve(args))
