"""The main job: `edm-sampler sample` on the built-in glyph model."""

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edm_sampler.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FAST = ["--steps", "6", "--no-progress"]


def run(tmp_path, name, *args):
    out = tmp_path / name
    assert main(["sample", "--out", str(out), *args]) == 0
    return out


def test_same_seed_gives_byte_identical_png_and_reports_quality(tmp_path, capsys):
    a = run(tmp_path, "a.png", "--num-samples", "10", "--seed", "3", *FAST)
    b = run(tmp_path, "b.png", "--num-samples", "10", "--seed", "3", *FAST)
    c = run(tmp_path, "c.png", "--num-samples", "10", "--seed", "4", *FAST)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    printed = capsys.readouterr().out
    assert "HeunEDMSampler" in printed and "VanillaCFG(scale=2.0)" in printed
    # the repr shows the config's 18 as the default; the call's --steps 6 is what steps and NFE report
    assert "num_steps=18 (default)" in printed and "num_steps=18," not in printed
    assert "steps:         6" in printed and "NFE:           11" in printed
    assert "class match:   10/10 = 1.000" in printed
    image = np.asarray(Image.open(a))
    assert image.shape == (24 * 3, 10 * 24 * 3) and image.dtype == np.uint8


def test_samples_do_not_depend_on_num_samples(tmp_path):
    small = np.asarray(Image.open(run(tmp_path, "small.png", "--num-samples", "10", *FAST)))
    large = np.asarray(Image.open(run(tmp_path, "large.png", "--num-samples", "20", *FAST)))
    np.testing.assert_array_equal(large[: small.shape[0]], small)


@pytest.mark.parametrize("config", ["euler_edm.yaml", "heun_edm.yaml"])
def test_sampler_only_configs_run_on_the_glyph_model(tmp_path, capsys, config):
    run(tmp_path, "x.png", "--config", str(CONFIGS / config), "--num-samples", "10", "--no-progress")
    printed = capsys.readouterr().out
    assert "steps:         18" in printed
    assert ("NFE:           18" if config == "euler_edm.yaml" else "NFE:           35") in printed
    assert "class match:   10/10" in printed


def test_bad_arguments_exit_with_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["sample", "--num-samples", "0"])
    assert err.value.code == 2 and "--num-samples: must be >= 1" in capsys.readouterr().err
    missing = tmp_path / "missing.yaml"
    assert main(["sample", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"edm-sampler sample: error: config file not found: {missing} (tried {missing}; shipped")
    assert err.count("\n") == 1


def test_console_entry_point_default_run(tmp_path):
    """The README's main-job command, as a subprocess twice: summary on stdout, progress on stderr, same bytes."""
    outputs = []
    for name in ("first.png", "second.png"):
        result = subprocess.run(
            [sys.executable, "-m", "edm_sampler", "sample", "--out", str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "(18 steps)" in result.stderr and "18/18" in result.stderr
        assert "NFE:           35" in result.stdout
        assert "class match:   20/20 = 1.000" in result.stdout
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]


def test_trained_network_config_samples_the_packaged_checkpoint(tmp_path, capsys):
    """`edm-sampler sample --config glyphs_unet_heun_cfg.yaml`: a shipped config by name, the trained UNet."""
    out = run(tmp_path, "unet.png", "--config", "glyphs_unet_heun_cfg.yaml", "--num-samples", "10", "--no-progress")
    printed = capsys.readouterr().out
    assert "NFE:           35" in printed and "TrainedGlyphModel" not in printed
    matches = int(printed.split("class match:")[1].split("/")[0])
    distance = float(printed.split("mean distance:")[1].split()[0])
    assert matches >= 9 and distance > 0.05  # the right digits, not copies of training images
    assert np.asarray(Image.open(out)).shape == (24 * 3, 10 * 24 * 3)


def test_models_without_the_image_helpers_are_refused(tmp_path, capsys):
    config = tmp_path / "gaussian.yaml"
    config.write_text("sampler: {target: euler_edm}\nmodel: {target: gaussian}\n")
    assert main(["sample", "--config", str(config)]) == 2
    assert re.fullmatch(
        rf"edm-sampler sample: error: {re.escape(str(config))} names GaussianDenoiser, which has no shape, "
        r"class_vectors, unconditional_vectors, nearest: edm-sampler sample needs an image model with .*\n",
        capsys.readouterr().err,
    )


def test_flow_main_job_config_samples_the_flow_glyph_model(tmp_path, capsys):
    """`edm-sampler sample --config glyphs_flow_heun_cfg`: the main job on the exact glyph model under flow matching
    (Heun, 18 steps, CFG 2, flow_match shift 3) lands on training images of the requested classes."""
    from edm_sampler.commands import load_job

    _, sampler, model = load_job("glyphs_flow_heun_cfg")
    assert model.parametrization == "flow" and sampler.discretization.parametrization == "flow"
    assert sampler.get_sigmas()[0] == 1.0  # flow sampling starts at pure noise
    run(tmp_path, "flow.png", "--config", "glyphs_flow_heun_cfg", "--no-progress")
    printed = capsys.readouterr().out
    assert "FlowMatchDiscretization(shift=3.0)" in printed
    assert "steps:         18" in printed and "NFE:           35" in printed
    assert "class match:   20/20 = 1.000" in printed
    assert float(printed.split("mean distance:")[1].split()[0]) < 1e-6  # training images, up to float32 round-off


# ---------------------------------------------------------------------------------------------------- issue 14


def test_version(capsys):
    from edm_sampler import __version__

    with pytest.raises(SystemExit) as err:
        main(["--version"])
    assert err.value.code == 0 and capsys.readouterr().out == f"edm-sampler {__version__}\n"


def test_generate_help_says_the_batch_is_part_of_a_seeds_recipe(capsys):
    """A real network rounds differently for another --batch: the files are the same for any number of workers and
    after a resume, for the same --batch (the README's wording), not for any --batch."""
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "same for any --batch" not in text
    assert "the batch is part of a seed's recipe" in text and "for the same --batch" in text


def test_readme_config_paths_work_from_another_directory(tmp_path, monkeypatch, capsys, caplog):
    """`configs/...` (the repository's folder, which is the package's shipped one) resolves from any directory, by
    the shipped-name fallback, and says so in the log; other missing paths say which paths were tried."""
    from edm_sampler import load_sampler

    monkeypatch.chdir(tmp_path)
    with caplog.at_level("INFO", logger="edm_sampler.config"):
        sampler = load_sampler("configs/heun_edm.yaml")
    assert repr(sampler) == repr(load_sampler("heun_edm"))
    assert "configs/heun_edm.yaml: not found from" in caplog.text and "loading the shipped" in caplog.text
    out = tmp_path / "euler.png"
    args = ["--config", "configs/euler_edm.yaml", "--num-samples", "2", "--steps", "2", "--no-progress"]
    assert main(["sample", *args, "--out", str(out)]) == 0 and out.is_file()
    assert "NFE:           2" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError) as err:
        load_sampler("configs/euler_edmx.yaml")
    tried = f"tried {tmp_path / 'configs' / 'euler_edmx.yaml'}, from the working directory, and the shipped configs/"
    assert tried in str(err.value) and "shipped configs: ddim" in str(err.value)
    (tmp_path / "configs").mkdir()  # a file of the caller's own, where the path points, wins over the shipped one
    (tmp_path / "configs" / "heun_edm.yaml").write_text("sampler: {target: euler_edm, params: {num_steps: 3}}\n")
    assert type(load_sampler("configs/heun_edm.yaml")).__name__ == "EulerEDMSampler"


def test_an_output_that_cannot_be_written_is_one_line_naming_it(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "samples.png"  # its parent is a file
    assert main(["sample", "--num-samples", "1", "--steps", "1", "--no-progress", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edm-sampler sample: error: ") and str(blocker) in err and err.count("\n") == 1


@pytest.fixture
def keep_thread_setting(monkeypatch):
    """`generate` sets MindSpore's CPU threads (once per process): not in the test process, which other tests share."""
    import mindspore as ms

    monkeypatch.setattr(ms.device_context.cpu.op_tuning, "threads_num", lambda n: None)


BAD_CONFIGS = {
    "num_steps_ten.yaml": ("sampler: {target: heun_edm, params: {num_steps: ten}}\n", "sampler block: num_steps"),
    "typo.yaml": ("sampler: {target: heun_edmx}\n", "sampler block: unknown target 'heun_edmx'"),
    "syntax.yaml": ("sampler: [1\n", "line 2, column 1"),
    "schedule.yaml": (
        "sampler: {target: euler_edm, params: {discretization_config: {target: edm, params: {rho: -3}}}}\n",
        "sampler block: rho must be > 0",
    ),
    "model.yaml": ("sampler: {target: euler_edm}\nmodel: {target: glyphs, params: {size: -1}}\n", "model block: size"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("command", ["sample", "generate"])
def test_a_bad_config_is_one_line_naming_file_and_field_with_status_2(
    tmp_path, capsys, keep_thread_setting, command, name
):
    text, field = BAD_CONFIGS[name]
    config = tmp_path / name
    config.write_text(text)
    extra = ["--seeds", "0", "--outdir", str(tmp_path / "out")] if command == "generate" else []
    assert main([command, "--config", str(config), "--no-progress", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"edm-sampler {command}: error: {config}") and field in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_video_config_samples_one_video_or_says_what_to_pass(tmp_path, capsys, keep_thread_setting):
    """svd_euler_linear_cfg guides whole videos of 14 frames: `sample` draws one video by default, refuses a count
    that is not whole videos in one line, and `generate` (one image per seed) refuses the config in one line."""
    out = tmp_path / "svd.png"
    assert main(["sample", "--config", "svd_euler_linear_cfg", "--steps", "3", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "samples:       14 " in printed and "LinearPredictionGuider" in printed and "class match:   14/14" in printed
    assert main(["sample", "--config", "svd_euler_linear_cfg", "--num-samples", "20", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--num-samples 20" in err and "multiple of 14" in err
    args = ["--config", "svd_euler_linear_cfg", "--seeds", "0-3", "--outdir", str(tmp_path / "gen"), "--no-progress"]
    assert main(["generate", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "num_frames=14" in err and "one image per seed" in err


class _SlowModel:
    """A Gaussian's exact denoiser that takes 30 ms per evaluation (so a redrawing bar would redraw)."""

    def __call__(self, x, sigma, cond):
        time.sleep(0.03)
        return x * (0.25 / (sigma**2 + 0.25)).reshape(-1, 1)


def test_progress_bar_draws_twice_when_not_a_terminal(capsys):
    """stderr is not a terminal here (pytest captures it): the bar is drawn when it starts and when it ends, not every
    0.1 s (20 steps of 30 ms drew 7 frames before)."""
    from edm_sampler import EulerEDMSampler, randn

    EulerEDMSampler(num_steps=20)(_SlowModel(), randn((2, 3), generator=0), disable=False)
    err = capsys.readouterr().err
    frames = [f for f in err.split("\r") if f.strip()]
    assert len(frames) == 2, frames
    assert "0/20" in frames[0] and "20/20" in frames[1]


def test_progress_bar_has_no_colour_under_no_color(monkeypatch):
    from edm_sampler.progress import progress_bar

    def draw(**kwargs):
        stream = io.StringIO()
        for _ in progress_bar(range(3), file=stream, colour="red", **kwargs):
            pass
        return stream.getvalue()

    assert "\x1b[" in draw()  # tqdm colours a bar when asked...
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b" not in draw() and "3/3" in draw()  # ...and NO_COLOR wins


def test_the_package_says_it_is_typed():
    """PEP 561: the py.typed marker ships in the package (pyproject's package-data), so type checkers read the hints."""
    from importlib import resources

    assert resources.files("edm_sampler").joinpath("py.typed").is_file()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^edm_sampler = \[.*"py\.typed".*\]$', pyproject, flags=re.M)
