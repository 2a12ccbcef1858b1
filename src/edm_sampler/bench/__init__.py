"""``edm-sampler bench`` / ``python -m edm_sampler.bench``: the samplers' cost against baselines.

Importing this package loads only the option parser; the benchmark (and torch, for the baselines) is imported when
it runs. See ``benchmarks/README.md`` for the method, the columns and the JSON fields.
"""

from __future__ import annotations

from .options import add_bench_parser, build_parser


def main(argv: list[str] | None = None) -> int:
    from .app import main as run_main

    return run_main(argv)


__all__ = ["add_bench_parser", "build_parser", "main"]
