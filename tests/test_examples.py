"""Every script in examples/ runs (at a small size) and produces what it says."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import mindspore as ms

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # MindSpore's graph compiler looks a jitted method's module up by name
    spec.loader.exec_module(module)
    return module


def test_every_example_is_tested():
    tested = {
        "quickstart",
        "yaml_config",
        "real_network",
        "mindone_engine",
        "video_guider",
        "custom_plugins",
        "img2img",
        "train_glyphs",
        "plot_sampling",
    }
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_quickstart():
    assert example("quickstart").main(["--steps", "18", "--batch", "256"]) == pytest.approx(0.5, abs=0.05)


def test_yaml_config():
    stds = example("yaml_config").main([])
    assert len(stds) == 4 and all(0.35 < s < 0.65 for s in stds.values())


@pytest.mark.parametrize("flags", [[], ["--graph"], ["--graph-loop"]], ids=["pynative", "graph", "graph-loop"])
def test_real_network(flags):
    try:
        edm, sdxl = example("real_network").main([*flags, "--steps", "3", "--size", "8"])
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert edm.shape == sdxl.shape == (4, 4, 8, 8) and np.isfinite(edm).all() and np.isfinite(sdxl).all()


def test_mindone_engine():
    out = example("mindone_engine").main(["--steps", "4"])
    assert out.shape == (2, 4, 16, 16) and np.isfinite(out).all()


def test_video_guider_frames_follow_their_scales():
    means = example("video_guider").main(["--frames", "6", "--steps", "25"])
    np.testing.assert_allclose(means, np.linspace(1.0, 2.5, 6), atol=0.1)


def test_custom_plugins():
    out = example("custom_plugins").main(["--steps", "6"])
    assert np.abs(out).max() <= 1.0  # the clamped guider


@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_img2img_keeps_the_requested_class(strength):
    out, label = example("img2img").main(["--strength", str(strength), "--steps", "10"])
    assert out.shape == (1, 1, 24, 24) and label == 0


def test_train_glyphs_writes_a_checkpoint_that_samples(tmp_path):
    from edm_sampler.models.trained_glyphs import TrainedGlyphModel

    args = ["--steps", "4", "--batch", "8", "--channels", "8", "--eval-samples", "2", "--no-progress"]
    report = example("train_glyphs").main([*args, "--outdir", str(tmp_path)])
    assert len(report["losses"]) == 4 and np.isfinite(report["losses"]).all()
    assert (tmp_path / "loss.csv").read_text().splitlines()[0] == "step,loss"
    assert len((tmp_path / "loss.csv").read_text().splitlines()) == 5
    names = [row[0] for row in report["quality"]]
    assert names == ["fresh renderings (real data, not trained on)", "exact denoiser", "trained UNet"]
    assert report["quality"][1][1] == 1.0 and report["quality"][1][3] < 1e-3  # the exact model copies its data
    model = TrainedGlyphModel(report["checkpoint"])
    assert model.network.channels == 8


def test_train_glyphs_evaluates_the_packaged_checkpoint():
    rows = example("train_glyphs").main(["--evaluate", "packaged", "--eval-samples", "10"])["quality"]
    _, match_train, match_fresh, distance = rows[2]
    assert match_train >= 0.8 and match_fresh >= 0.8 and distance > 0.05  # the requested digits, not copies


def test_plot_sampling(tmp_path):
    samples, trajectory, sigmas = example("plot_sampling").main(
        ["--steps", "4", "--digits", "2", "--outdir", str(tmp_path)]
    )
    assert samples.shape == (2, 1, 24, 24) and len(trajectory) == 4
    assert set(sigmas) == {"EDM rho=7", "EDM rho=3", "exponential", "VP", "AYS (SD 1.5)"}
    assert all(len(s) == 4 for s in sigmas.values())
    from edm_sampler import EDMDiscretization

    np.testing.assert_allclose(sigmas["EDM rho=7"], EDMDiscretization().get_sigmas(4), rtol=1e-12)
    np.testing.assert_allclose(trajectory.sigmas, EDMDiscretization().get_sigmas(4), rtol=1e-12)  # the Heun run
    assert (tmp_path / "trajectory.png").is_file()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "schedules.png").is_file()
