"""``edm-sampler generate``: one PNG and one ``.npy`` per seed, resumable, split across ``msrun`` workers.

Each seed ``s`` owns a generator, ``numpy.random.default_rng(s)``, which draws that sample's starting noise and every
noise the sampler adds; its class label is ``s % 10``. The seeds are cut into batches of ``--batch`` consecutive
seeds, and a seed is always sampled with the same batch, whatever the number of workers and however often the run was
interrupted: a real network's kernels may round differently for a different batch (the glyph UNet: up to 7e-6 between
batch 1 and 16), so the batch is part of a seed's recipe. A model that is batch-invariant (the exact glyph model) gives
the same files for any ``--batch`` too. Files are written to a temporary name in the output directory and renamed into
place, so a file that exists is complete; seeds whose ``.png`` and ``.npy`` both exist are skipped on the next run (a
batch that is partly done is sampled whole again, and only its missing seeds are written).

Under ``msrun`` (detected from its ``MS_ROLE`` environment variable) the command initialises communication, lists the
batches with unfinished seeds, and gives rank ``r`` of ``K`` the batches ``pending[r::K]``. Each rank writes its own
files and prints its own summary; rank 0 also prints the total. Outside ``msrun`` nothing touches communication.

Importing this module is cheap: MindSpore, the model and the sampler are imported when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .commands import (
    DEFAULT_CONFIG,
    CommandError,
    check_image_model,
    exit_on_command_error,
    load_job,
    positive_int,
    tune_cpu_process,
    video_frames,
)

logger = logging.getLogger(__name__)

TMP_MARK = ".tmp-"  # temporary files are ".<final name>.tmp-<pid>" in the output directory


# ---------------------------------------------------------------------------------------------------- seeds


def parse_seeds(text: str) -> list[int]:
    """Parse ``"0-999"``, ``"1,5,7"`` or ``"0-9,20-29"`` into a sorted list of distinct non-negative seeds.

    Raises ``ValueError`` naming the offending token.
    """
    seeds: set[int] = set()
    tokens = [t.strip() for t in str(text).split(",")]
    if not any(tokens):
        raise ValueError(f"no seeds in {text!r}; use e.g. 0-999, 1,5,7 or 0-9,20-29")
    for token in tokens:
        if not token:
            raise ValueError(f"empty seed token in {text!r}")
        first, sep, last = token.partition("-")
        try:
            lo = int(first)
            hi = int(last) if sep else lo
        except ValueError:
            raise ValueError(f"bad seed token {token!r} in {text!r}; use N or N-M with integers >= 0") from None
        if first.strip() != first or (sep and last.strip() != last) or lo < 0 or hi < 0:
            raise ValueError(f"bad seed token {token!r} in {text!r}; use N or N-M with integers >= 0")
        if hi < lo:
            raise ValueError(f"bad seed range {token!r} in {text!r}: the end is before the start")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def format_seeds(seeds: Sequence[int], limit: int = 12) -> str:
    """``[0, 1, 2, 5]`` as ``"0-2,5"`` (sorted; at most ``limit`` tokens, then ``",..."``); ``"none"`` if empty."""
    tokens: list[str] = []
    run: list[int] = []
    for s in sorted(seeds):
        if run and s == run[-1] + 1:
            run.append(s)
            continue
        if run:
            tokens.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [s]
    if run:
        tokens.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    if not tokens:
        return "none"
    return ",".join(tokens[:limit]) + (",..." if len(tokens) > limit else "")


def _seeds_arg(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# ---------------------------------------------------------------------------------------------------- files


def seed_stem(seed: int) -> str:
    return f"seed{seed:06d}"


def seed_paths(outdir: Path, seed: int) -> tuple[Path, Path]:
    """The ``(png, npy)`` paths of ``seed``."""
    stem = seed_stem(seed)
    return outdir / f"{stem}.png", outdir / f"{stem}.npy"


def is_done(outdir: Path, seed: int) -> bool:
    return all(p.is_file() for p in seed_paths(outdir, seed))


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(file)`` to a temporary name next to ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_temps(outdir: Path, seeds: Sequence[int]) -> int:
    """Delete the temporary files an interrupted run left for ``seeds``."""
    prefixes = tuple(f".{seed_stem(s)}." for s in seeds)
    removed = 0
    for path in outdir.glob(f".seed*{TMP_MARK}*"):
        if path.name.startswith(prefixes):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def save_seed(outdir: Path, seed: int, sample: np.ndarray) -> None:
    """Write ``sample`` (float32, ``(C, H, W)``) as ``seedNNNNNN.npy`` and ``.png``, each atomically."""
    from PIL import Image

    from .plots import to_uint8

    png, npy = seed_paths(outdir, seed)
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    _atomic_write(npy, lambda f: np.save(f, sample))
    _atomic_write(png, lambda f: Image.fromarray(to_uint8(sample)).save(f, format="PNG"))


# ---------------------------------------------------------------------------------------------------- sampling


def sample_seeds(sampler: Any, model: Any, seeds: Sequence[int], steps: int | None = None) -> np.ndarray:
    """Sample one batch: item ``k`` uses ``default_rng(seeds[k])`` for all of its noise and class ``seeds[k] % 10``."""
    from .noise import randn

    shape = check_image_model(model, "the model")
    seeds = [int(s) for s in seeds]
    generators = [np.random.default_rng(s) for s in seeds]
    labels = np.asarray(seeds, dtype=np.int64) % 10
    noise = randn((len(seeds), *shape), generators)
    cond = {"vector": model.class_vectors(labels)}
    uc = {"vector": model.unconditional_vectors(len(seeds))}
    out = sampler(model, noise, cond, uc, num_steps=steps, generator=generators, disable=True)
    return out.asnumpy().astype(np.float32, copy=False)


@dataclass
class Summary:
    """What one rank did: seeds generated, skipped (already complete) and failed, and the sampling wall time."""

    rank: int = 0
    world: int = 1
    done: int = 0
    skipped: int = 0
    failed: list[int] = field(default_factory=list)
    seconds: float = 0.0
    written: list[int] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"rank {self.rank}/{self.world}: {self.done} done, {self.skipped} skipped, {len(self.failed)} failed, "
            f"{self.seconds:.2f} s, {self.images_per_second:.2f} images/s; wrote seeds {format_seeds(self.written)}"
        )


def split_batches(
    seeds: Sequence[int], outdir: Path, batch: int, rank: int = 0, world: int = 1
) -> tuple[list[list[int]], int]:
    """``(mine, skipped)``: rank ``rank``'s share ``pending[rank::world]`` of the batches (``batch`` consecutive
    seeds each) that hold an unfinished seed, and how many finished seeds this rank accounts for (those of every
    ``world``-th batch, so that the ranks' skips add up)."""
    batches = [list(seeds[i : i + batch]) for i in range(0, len(seeds), batch)]
    done = [[s for s in b if is_done(outdir, s)] for b in batches]
    pending = [b for b, d in zip(batches, done) if len(d) < len(b)]
    return pending[rank::world], sum(len(d) for d in done[rank::world])


def generate(
    sampler: Any,
    model: Any,
    seeds: Sequence[int],
    outdir: str | os.PathLike,
    *,
    batch: int = 16,
    steps: int | None = None,
    rank: int = 0,
    world: int = 1,
    progress: bool = False,
    barrier: Callable[[], None] | None = None,
) -> Summary:
    """Generate the unfinished ``seeds`` of this rank into ``outdir``; see the module docstring for the contract.

    ``barrier`` is called after every rank has listed the finished seeds (and rank 0 has removed stale temporary
    files), before any rank writes, so that under ``msrun`` all ranks split the same list of unfinished seeds. A
    batch that raises is retried seed by seed; a seed that still fails is logged with its traceback and listed in
    ``Summary.failed``.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, {world}), got {rank}")
    check_image_model(model)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    mine, skipped = split_batches(seeds, outdir, batch, rank, world)
    if rank == 0:
        _remove_stale_temps(outdir, seeds)  # before the barrier: no rank is writing yet
    if barrier is not None:
        barrier()
    summary = Summary(rank=rank, world=world, skipped=skipped)

    from .progress import progress_bar

    # A partly done batch is sampled whole (its seeds keep their batch), and only its missing seeds are written.
    plan = [(chunk, [seed for seed in chunk if not is_done(outdir, seed)]) for chunk in mine]
    bar = progress_bar(
        total=sum(len(todo) for _, todo in plan),
        desc=f"rank {rank}/{world}",
        unit="img",
        file=sys.stderr,
        disable=not progress,
    )
    start = time.perf_counter()
    try:
        for chunk, todo in plan:
            for seed, sample in _sample_chunk(sampler, model, chunk, steps, summary, todo):
                try:
                    save_seed(outdir, seed, sample)
                    summary.done += 1
                    summary.written.append(seed)
                except Exception:
                    logger.exception("rank %d: writing seed %d failed", rank, seed)
                    summary.failed.append(seed)
            bar.update(len(todo))
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
    return summary


def _sample_chunk(sampler, model, chunk, steps, summary, todo):
    """``(seed, sample)`` for the seeds of ``todo``, sampled as the whole ``chunk``; if that raises, each seed of
    ``todo`` alone (a seed that still fails is logged and listed in ``summary.failed``)."""
    try:
        return [(s, x) for s, x in zip(chunk, sample_seeds(sampler, model, chunk, steps)) if s in todo]
    except Exception:
        if len(chunk) == 1:
            logger.exception("rank %d: seed %d failed", summary.rank, chunk[0])
            summary.failed.append(chunk[0])
            return []
        logger.warning("rank %d: batch of seeds %s failed; retrying one seed at a time", summary.rank, chunk)
    results = []
    for seed in todo:
        results.extend(_sample_chunk(sampler, model, [seed], steps, summary, [seed]))
    return results


# ---------------------------------------------------------------------------------------------------- msrun


def under_msrun() -> bool:
    """True in a worker (or the scheduler) that ``msrun`` started: it exports ``MS_ROLE``."""
    return bool(os.environ.get("MS_ROLE"))


class _Cluster:
    """Rank and world size; under ``msrun`` initialises communication and gathers small arrays with AllGather."""

    def __init__(self):
        self.rank, self.world, self._gather = 0, 1, None
        if not under_msrun():
            return
        from mindspore.communication import get_group_size, get_rank, init

        init()  # the msrun scheduler process serves the cluster here and exits; workers return
        self.rank, self.world = int(get_rank()), int(get_group_size())
        if self.world > 1:
            from mindspore import ops

            self._gather = ops.AllGather()

    def allgather(self, row: np.ndarray) -> np.ndarray:
        """``(world, n)``: every rank's float64 ``row`` (an identity outside ``msrun``)."""
        row = np.asarray(row, dtype=np.float64).reshape(1, -1)
        if self._gather is None:
            return row
        from mindspore import Tensor

        return self._gather(Tensor(row.astype(np.float32))).asnumpy().astype(np.float64)

    def barrier(self) -> None:
        self.allgather(np.zeros(1))


# ---------------------------------------------------------------------------------------------------- CLI


DESCRIPTION = """\
Generate one PNG and one float32 .npy per seed (seedNNNNNN.png / .npy) with a sampler config and the built-in glyph
model. Seed s uses numpy.random.default_rng(s) for all of its noise and class label s % 10. The seeds are cut into
batches of --batch consecutive seeds, and a seed is always sampled with its batch: the batch is part of a seed's
recipe (a real network's kernels may round differently for another --batch), so its files are the same for any
number of workers and however often the run was interrupted, for the same --batch. Finished seeds are skipped, so
an interrupted run resumes. Run it under msrun to split the seeds across workers (each worker prints its summary to
its log, rank 0 also the total), e.g.
  msrun --worker_num=2 --local_worker_num=2 --master_port=8118 --log_dir=logs --join=True \\
      "$(command -v edm-sampler)" generate --seeds 0-999 --outdir out"""


def add_generate_parser(subcommands) -> argparse.ArgumentParser:
    """Register ``generate`` on an argparse subcommand group (importing nothing heavy)."""
    p = subcommands.add_parser(
        "generate",
        help="one PNG and .npy per seed, resumable, split across msrun workers",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help=f"YAML with a sampler and a model block (default: the packaged {DEFAULT_CONFIG})")
    p.add_argument("--seeds", type=_seeds_arg, required=True, help="seeds: 0-999, 1,5,7 or 0-9,20-29")
    p.add_argument("--outdir", required=True, help="output directory")
    p.add_argument("--batch", type=positive_int, default=16, help="seeds per sampler call (default: 16)")
    p.add_argument("--steps", type=positive_int, default=None, help="number of steps (default: from the config)")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="MindSpore CPU kernel threads per worker (default: 1, one core per msrun worker)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_generate)
    return p


def _build(config_arg: str | None):
    source, sampler, model = load_job(config_arg)
    try:
        check_image_model(model, str(source))
    except ValueError as err:
        raise CommandError(str(err)) from None
    frames = video_frames(sampler, str(source), "generate")
    if frames > 1:  # a per-frame video guider (SVD's) guides whole videos, which single seeds are not
        raise CommandError(
            f"{source} guides whole videos of num_frames={frames} frames ({type(sampler.guider).__name__}); "
            f"edm-sampler generate samples one image per seed: use an image config (e.g. {DEFAULT_CONFIG}), or "
            f"edm-sampler sample --config {source} for one video"
        )
    return sampler, model


def run_generate(args: argparse.Namespace) -> int:
    """The ``generate`` command; returns 1 if any seed failed on this rank (or, on rank 0, on any rank)."""
    cluster = _Cluster()  # before anything else: under msrun the scheduler process exits inside init()
    import mindspore as ms  # the CLI is an application: it may set process-wide options, the library never does

    try:
        ms.device_context.cpu.op_tuning.threads_num(args.threads)
    except AttributeError as err:
        raise CommandError(f"--threads needs a MindSpore with ms.device_context ({ms.__version__}): {err}") from err
    except RuntimeError as err:  # MindSpore allows one setting per process: a second run in-process keeps the first
        logger.info("--threads %d ignored: %s", args.threads, err)
    sampler, model = _build(args.config)
    summary = generate(
        sampler,
        model,
        args.seeds,
        args.outdir,
        batch=args.batch,
        steps=args.steps,
        rank=cluster.rank,
        world=cluster.world,
        progress=not args.no_progress,
        barrier=cluster.barrier,
    )
    print(summary.line(), flush=True)
    if summary.failed:
        print(f"rank {summary.rank}/{summary.world}: failed seeds {summary.failed}", file=sys.stderr, flush=True)
    rows = cluster.allgather(np.array([summary.done, summary.skipped, len(summary.failed), summary.seconds]))
    failed_anywhere = int(rows[:, 2].sum())
    if cluster.rank == 0 and cluster.world > 1:
        done, skipped, seconds = int(rows[:, 0].sum()), int(rows[:, 1].sum()), float(rows[:, 3].max())
        rate = done / seconds if seconds > 0 else 0.0
        print(
            f"total ({cluster.world} ranks): {done} done, {skipped} skipped, {failed_anywhere} failed, "
            f"{seconds:.2f} s (slowest rank), {rate:.2f} images/s",
            flush=True,
        )
    return 1 if summary.failed or failed_anywhere else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``generate`` as a standalone program (``edm-sampler generate`` is the same command)."""
    parser = argparse.ArgumentParser(prog="edm-sampler")
    add_generate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["generate", *(sys.argv[1:] if argv is None else argv)])
    tune_cpu_process()
    return exit_on_command_error("edm-sampler generate", args.func, args)


if __name__ == "__main__":  # python -m edm_sampler.generate --seeds ... --outdir ...
    sys.exit(main())
