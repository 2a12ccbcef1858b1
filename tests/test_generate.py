"""`edm-sampler generate`: per-seed files that do not depend on the batch or the worker count, resume, msrun."""

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edm_sampler import load_sampler
from edm_sampler.commands import check_image_model
from edm_sampler.generate import (
    _build,
    format_seeds,
    generate,
    main,
    parse_seeds,
    seed_paths,
    split_batches,
)

STEPS = 4  # enough to exercise the Heun + CFG loop; the contract does not depend on the step count
SEEDS = list(range(8))


@pytest.fixture(scope="module")
def job():
    """The default config's sampler and glyph model, built once."""
    return _build(None)


@pytest.fixture(scope="module")
def reference(job, tmp_path_factory):
    """Seeds 0-7 with batch 4, in-process, one worker: the files every other run must reproduce byte for byte."""
    out = tmp_path_factory.mktemp("reference")
    summary = generate(*job, SEEDS, out, batch=4, steps=STEPS)
    assert (summary.done, summary.skipped, summary.failed) == (8, 0, [])
    return out


def files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------------------------------------- seeds


@pytest.mark.parametrize(
    "text, seeds",
    [
        ("0-3", [0, 1, 2, 3]),
        ("1,5,7", [1, 5, 7]),
        ("0-2,20-21", [0, 1, 2, 20, 21]),
        ("7", [7]),
        (" 3 , 1-2,2 ", [1, 2, 3]),  # spaces around tokens, duplicates merged, sorted
        ("5-5", [5]),
    ],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    "text, token",
    [("0-3,x", "'x'"), ("9-2", "'9-2'"), ("1,,2", "empty"), ("-3", "'-3'"), ("1-2-3", "'1-2-3'"), ("", "no seeds")],
)
def test_parse_seeds_names_the_bad_token(text, token):
    with pytest.raises(ValueError, match=re.escape(token)):
        parse_seeds(text)


def test_bad_seeds_on_the_command_line_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as err:
        main(["--seeds", "0-4,a", "--outdir", "unused"])
    assert err.value.code == 2
    assert "'a'" in capsys.readouterr().err


def test_add_generate_parser_registers_the_command():
    import argparse

    from edm_sampler.generate import add_generate_parser, run_generate

    parser = argparse.ArgumentParser()
    add_generate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["generate", "--seeds", "0-2,9", "--outdir", "d", "--steps", "5"])
    assert (args.seeds, args.outdir, args.batch, args.steps, args.threads, args.config) == (
        [0, 1, 2, 9],
        "d",
        16,
        5,
        1,
        None,
    )
    assert args.func is run_generate


def test_format_seeds():
    assert format_seeds([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert format_seeds([]) == "none"
    assert format_seeds(range(0, 40, 2), limit=3) == "0,2,4,..."


# ---------------------------------------------------------------------------------------------------- in-process


def test_files_are_identical_for_any_batch_and_a_seed_alone(job, reference, tmp_path):
    ref = files(reference)
    assert sorted(ref) == [f"seed{s:06d}.{ext}" for s in SEEDS for ext in ("npy", "png")]
    summary = generate(*job, SEEDS[:6], tmp_path / "b1", batch=1, steps=STEPS)
    assert summary.done == 6
    got = files(tmp_path / "b1")
    assert got == {name: ref[name] for name in got}  # batch 1 == batch 4, byte for byte, .npy and .png
    generate(*job, [3], tmp_path / "alone", steps=STEPS)
    assert files(tmp_path / "alone") == {n: ref[n] for n in ("seed000003.npy", "seed000003.png")}

    png, npy = seed_paths(reference, 3)
    sample = np.load(npy)
    assert sample.dtype == np.float32 and sample.shape == (1, 24, 24)
    pixels = np.asarray(Image.open(png))
    assert pixels.shape == (24, 24) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.clip(np.rint((sample[0] + 1) * 127.5), 0, 255).astype(np.uint8))
    # The class label is seed % 10: the sample is (almost exactly) a training image of that digit.
    labels, distances = job[1].nearest(np.stack([np.load(seed_paths(reference, s)[1]) for s in SEEDS]))
    assert labels.tolist() == [s % 10 for s in SEEDS]


def test_resume_regenerates_only_missing_seeds_and_cleans_temp_files(job, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    for path in seed_paths(out, 2):
        path.unlink()
    seed_paths(out, 5)[0].unlink()  # only the .png of seed 5: a seed needs both files to count as done
    stray = [out / ".seed000002.npy.tmp-999999", out / ".seed000006.png.tmp-1"]
    for path in stray:
        path.write_bytes(b"partial")
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("seed*") if not p.name.startswith("seed000005")}

    summary = generate(*job, SEEDS, out, batch=4, steps=STEPS)

    assert (summary.done, summary.skipped, summary.failed, summary.written) == (2, 6, [], [2, 5])
    assert "2 done, 6 skipped, 0 failed" in summary.line()
    assert files(out) == files(reference)  # the stray temp files are gone, the regenerated seeds identical
    untouched = {p.name: p.stat().st_mtime_ns for p in out.glob("seed*") if p.name in before}
    assert untouched == before  # finished seeds are not rewritten
    again = generate(*job, SEEDS, out, batch=4, steps=STEPS)
    assert (again.done, again.skipped) == (0, 8)


def test_seeds_keep_their_batch_across_workers_and_interruptions(tmp_path):
    """A real network rounds differently for a different batch, so a seed is always sampled with the same batch of
    --batch consecutive seeds: two ranks, or a run resumed after an interruption, write the same bytes as one run."""
    from edm_sampler.models.trained_glyphs import TrainedGlyphModel

    job = (load_sampler("glyphs_unet_heun_cfg.yaml"), TrainedGlyphModel())
    seeds = list(range(6))
    one = generate(*job, seeds, tmp_path / "one", batch=4, steps=2)
    # Rank 1 first: in one process there is no barrier, and rank 0's files would change the list rank 1 splits.
    assert split_batches(seeds, tmp_path / "two", 4, 1, 2) == ([[4, 5]], 0)
    for rank in (1, 0):
        part = generate(*job, seeds, tmp_path / "two", batch=4, steps=2, rank=rank, world=2)
        assert part.written == ([0, 1, 2, 3] if rank == 0 else [4, 5])
    assert one.written == seeds and files(tmp_path / "two") == files(tmp_path / "one")

    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "one", resumed)
    for seed in (1, 4):
        seed_paths(resumed, seed)[1].unlink()
    again = generate(*job, seeds, resumed, batch=4, steps=2)  # both batches partly done: sampled whole
    assert (again.done, again.skipped, again.written) == (2, 4, [1, 4])
    assert files(resumed) == files(tmp_path / "one")


def test_a_failing_seed_is_reported_and_the_others_are_written(job, tmp_path, caplog):
    sampler, model = job

    class FailsOnThree:
        def __init__(self):
            self.shape, self.class_vectors, self.unconditional_vectors = (
                model.shape,
                model.class_vectors,
                model.unconditional_vectors,
            )

        def __call__(self, x, sigma, cond=None):
            if cond is not None and float(cond["vector"].asnumpy()[:, 3].max()) > 0:
                raise RuntimeError("boom")
            return model(x, sigma, cond)

    summary = generate(sampler, FailsOnThree(), [1, 2, 3, 4], tmp_path, batch=4, steps=2)
    assert (summary.done, summary.failed, summary.written) == (3, [3], [1, 2, 4])
    assert "1 failed" in summary.line()
    assert "seed 3 failed" in caplog.text and "boom" in caplog.text
    assert not any(tmp_path.glob("seed000003*"))


def test_non_image_models_are_rejected_clearly():
    with pytest.raises(ValueError, match="needs an image model.*class_vectors"):
        check_image_model(object())

    class Volume:
        shape = (4, 8, 8, 8)
        class_vectors = unconditional_vectors = None

    with pytest.raises(ValueError, match=r"saves \(1 or 3, H, W\)"):
        check_image_model(Volume())


# ---------------------------------------------------------------------------------------------------- msrun


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_msrun_two_workers_match_one_worker(reference, tmp_path):
    bindir = Path(sys.executable).parent
    msrun = bindir / "msrun"
    if not msrun.exists():
        pytest.skip(f"msrun is not installed next to {sys.executable}")
    script = tmp_path / "generate_main.py"
    script.write_text("import sys\nfrom edm_sampler.generate import main\nsys.exit(main())\n")
    out, logs = tmp_path / "out", tmp_path / "logs"
    # msrun starts its workers as `python script`: put this interpreter first on PATH.
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [
        str(msrun),
        "--worker_num=2",
        "--local_worker_num=2",
        f"--master_port={free_port()}",
        f"--log_dir={logs}",
        "--join=True",
        "--cluster_time_out=60",
        str(script),
        *("--seeds", "0-7", "--outdir", str(out), "--batch", "3", "--steps", str(STEPS), "--no-progress"),
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    worker_logs = {r: (logs / f"worker_{r}.log").read_text() for r in (0, 1) if (logs / f"worker_{r}.log").exists()}
    assert result.returncode == 0, textwrap.shorten(result.stderr, 2000) + "\n".join(worker_logs.values())[-3000:]

    assert files(out) == files(reference)  # two workers, batch 3 == one worker, batch 4, byte for byte
    written = {}
    for rank, log in worker_logs.items():
        match = re.search(rf"rank {rank}/2: (\d+) done, 0 skipped, 0 failed, .*wrote seeds (\S+)", log)
        assert match, log[-2000:]
        written[rank] = parse_seeds(match.group(2))
        assert int(match.group(1)) == len(written[rank])
    assert written == {0: [0, 1, 2, 6, 7], 1: [3, 4, 5]}  # batches of 3 seeds, round-robin: disjoint, all seeds
    assert "total (2 ranks): 8 done, 0 skipped, 0 failed" in worker_logs[0]
