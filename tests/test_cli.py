"""The main job: `edm-sampler sample` on the built-in glyph model."""

import subprocess
import sys
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


def test_bad_arguments_exit_with_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        main(["sample", "--num-samples", "0"])
    with pytest.raises(FileNotFoundError):
        main(["sample", "--config", str(tmp_path / "missing.yaml")])


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


def test_models_without_the_image_helpers_are_refused(tmp_path):
    config = tmp_path / "gaussian.yaml"
    config.write_text("sampler: {target: euler_edm}\nmodel: {target: gaussian}\n")
    with pytest.raises(SystemExit, match="sample needs an image model.*GaussianDenoiser, which has no shape"):
        main(["sample", "--config", str(config)])


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
