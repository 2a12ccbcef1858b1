"""``edm-sampler``: the command-line front end. ``edm-sampler sample`` runs the main job on the built-in glyph model
(or, with ``--config glyphs_unet_heun_cfg.yaml``, on the packaged trained network)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import __version__
from .bench import add_bench_parser
from .commands import (
    DEFAULT_CONFIG,
    IMAGE_MODEL,
    CommandError,
    check_image_model,
    config_errors,
    exit_on_command_error,
    load_job,
    positive_int,
    tune_cpu_process,
    video_frames,
)
from .evaluation import add_eval_parser
from .generate import add_generate_parser
from .models.glyphs import NUM_CLASSES
from .noise import per_sample_generators, randn
from .plots import to_uint8

DEFAULT_SAMPLES = 20  # two per class


def save_grid(samples: np.ndarray, path: Path, columns: int = NUM_CLASSES, zoom: int = 3) -> None:
    """Write ``(N, 1, H, W)`` samples in [-1, 1] as one grayscale PNG, ``columns`` per row."""
    n, _, h, w = samples.shape
    rows = -(-n // columns)
    pixels = np.stack([to_uint8(s) for s in samples])
    grid = np.zeros((rows * h, columns * w), dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, columns)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = pixels[k]
    grid = grid.repeat(zoom, axis=0).repeat(zoom, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, format="PNG")


def sample(args: argparse.Namespace) -> int:
    config_path, sampler, model = load_job(args.config)
    try:
        shape = check_image_model(model, str(config_path), "sample", (*IMAGE_MODEL, "nearest"))
    except ValueError as err:
        raise CommandError(str(err)) from err
    n = sample_count(args.num_samples, video_frames(sampler, str(config_path), "sample"), str(config_path), sampler)
    if args.threads is not None:
        import mindspore as ms  # the CLI is an application: it may set process-wide options, the library never does

        try:
            ms.device_context.cpu.op_tuning.threads_num(args.threads)
        except AttributeError as err:
            raise CommandError(f"--threads needs a MindSpore with ms.device_context ({ms.__version__}): {err}") from err

    labels = np.arange(n) % NUM_CLASSES
    # One generator per sample, derived from (seed, index): sample k is the same whatever --num-samples is.
    generators = per_sample_generators(args.seed, n)
    noise = randn((n, *shape), generators)
    cond = {"vector": model.class_vectors(labels)}
    uc = {"vector": model.unconditional_vectors(n)}

    start = time.perf_counter()
    with config_errors(str(config_path)):  # what the sampler refuses before its first model call names the field
        out = sampler(model, noise, cond, uc, num_steps=args.steps, generator=generators, disable=args.no_progress)
    samples = out.asnumpy()
    seconds = time.perf_counter() - start

    nearest_labels, distances = model.nearest(samples)
    matches = int((nearest_labels == labels).sum())
    out_path = Path(args.out)
    save_grid(samples, out_path)
    steps = args.steps if args.steps is not None else sampler.num_steps
    print(f"config:        {config_path}")
    print(f"sampler:       {sampler!r}")
    print(f"guider:        {sampler.guider!r}")
    print(f"discretization:{sampler.discretization!r}")
    print(f"samples:       {n} (classes 0-9 in turn, seed {args.seed})")
    print(f"steps:         {steps}")
    print(f"NFE:           {sampler.last_nfe}")
    print(f"wall time:     {seconds:.3f} s")
    print(f"class match:   {matches}/{n} = {matches / n:.3f} (nearest training image has the requested class)")
    print(f"mean distance: {distances.mean():.3g} (RMS per pixel to the nearest training image, pixels in [-1, 1])")
    print(f"wrote:         {out_path}")
    return 0


def sample_count(requested: int | None, frames: int, source: str, sampler: Any) -> int:
    """``--num-samples``, or its default: 20 images, or one whole video for a per-frame video guider (SVD's)."""
    if requested is None:
        return DEFAULT_SAMPLES if frames == 1 else frames
    if requested % frames:
        raise CommandError(
            f"--num-samples {requested}: {source} guides whole videos of num_frames={frames} frames "
            f"({type(sampler.guider).__name__}); pass a multiple of {frames}, or leave --num-samples out for one video"
        )
    return requested


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edm-sampler", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("sample", help="sample a glyph model (exact or trained) and write a PNG grid")
    p.add_argument("--config", help=f"YAML with a sampler block (default: the packaged {DEFAULT_CONFIG})")
    p.add_argument("--out", default="samples.png", help="output PNG path (default: samples.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-sample generators (default: 0)")
    p.add_argument(
        "--num-samples",
        type=positive_int,
        default=None,
        help=f"number of samples (default: {DEFAULT_SAMPLES}; with a per-frame video guider: one video)",
    )
    p.add_argument("--steps", type=positive_int, default=None, help="number of steps (default: from the config)")
    p.add_argument("--threads", type=positive_int, default=None, help="MindSpore CPU kernel threads")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=sample)
    add_bench_parser(commands)  # `edm-sampler bench`: imports the benchmark (and torch) only when it runs
    add_generate_parser(commands)  # `edm-sampler generate`: one file per seed, seeds split across msrun workers
    add_eval_parser(commands)  # `edm-sampler eval`: quality versus NFE on models with exact answers
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``edm-sampler`` program: a bad argument or config exits with status 2 and a one-line error."""
    args = build_parser().parse_args(argv)
    if args.command != "bench":  # the bench has its own --dnnl-isa option and reports its choice
        tune_cpu_process()
    return exit_on_command_error(f"edm-sampler {args.command}", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
