"""Every script in examples/ runs (at a small size) and produces what it says."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name):
    if str(EXAMPLES) not in sys.path:  # as when a script runs: its folder is on the path (examples import each other)
        sys.path.insert(0, str(EXAMPLES))
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
        "flow_model",
        "diffusers_config",
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
    module = example("custom_plugins")
    out = module.main(["--steps", "6"])
    assert np.abs(out).max() <= 1.0  # the clamped guider
    # the midpoint sampler itself is (at least) second order on the exact Gaussian ODE (sigma 80 to 0.002; measured on
    # Karras steps: errors 7.4e-3, 8.7e-4, 1.0e-4 at 16, 32, 64 steps)
    model = module.GaussianDenoiser(0.5)
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32) * 80.0
    sigmas = {n: np.asarray(module.MidpointSampler().discretization(n, do_append_zero=False)) for n in (16, 32)}
    exact = model.exact_solution(x, 80.0, 0.002)
    errors = [
        np.abs(
            module.MidpointSampler(init_noise="prescaled")(model, Tensor(x), sigmas=sigmas[n]).asnumpy() - exact
        ).max()
        for n in (16, 32)
    ]
    assert errors[0] / errors[1] > 3.5, errors


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.py")))
def test_help_keeps_the_usage_lines(name, capsys):
    """`--help` prints the docstring's command lines as written, one per line (not reflowed into a paragraph)."""
    module = example(name)
    usage = [line.strip() for line in module.__doc__.splitlines() if "python examples/" in line]
    assert usage, f"{name}.py: its docstring shows no command"
    with pytest.raises(SystemExit) as err:
        module.main(["--help"])
    assert err.value.code == 0
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    for line in usage:
        assert line in printed


def test_img2img_refuses_a_strength_that_keeps_no_step(capsys):
    """sgm's wrapper keeps int(0.5 * 3) = 1 level of 2 steps (sigma = 0): no step. The script says so (status 2) and
    names the fewest steps that keep one (int(0.5 * 4) = 2 levels: one step), instead of printing "0 steps"."""
    module = example("img2img")
    with pytest.raises(SystemExit) as err:
        module.main(["--strength", "0.5", "--steps", "2"])
    assert err.value.code == 2
    assert "--strength 0.5 keeps no step of --steps 2: use --steps 3 or more" in capsys.readouterr().err
    out, label = module.main(["--strength", "0.5", "--steps", "3"])
    assert "1 steps, NFE 1" in capsys.readouterr().out and label == 0


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


def test_train_glyphs_clean_run_logs_no_third_party_warning(tmp_path):
    """A short training run as a user starts it (a fresh process, output piped) logs no MindSpore warning: nn.Adam's
    "'FusedSparseAdam' is deprecated" is dropped at its construction, and the piped bar is drawn twice, not per step."""
    args = ["--steps", "3", "--batch", "4", "--channels", "8", "--eval-samples", "0", "--outdir", str(tmp_path)]
    script = str(EXAMPLES / "train_glyphs.py")
    result = subprocess.run([sys.executable, script, *args], capture_output=True, timeout=300)
    stderr = result.stderr.decode()  # bytes: text mode would turn the bar's "\r" into newlines
    assert result.returncode == 0, stderr
    assert "WARNING" not in stderr and "deprecated" not in stderr.lower(), stderr
    assert "trained:     3 steps" in result.stdout.decode()
    frames = [f for f in stderr.split("\r") if f.strip()]
    assert len(frames) == 2 and frames[-1].startswith("train: 100%"), frames


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


def test_flow_model_network_equals_the_exact_flow_model_and_compiles_once(tmp_path):
    """The velocity Cell behind FlowVelocityScaling, in graph mode, samples what the exact flow glyph model samples
    directly (D = x - sigma v gives the posterior mean back up to float32 rounding), and calling it again with new
    noise and conditioning compiles nothing."""
    from edm_sampler import EulerEDMSampler, FlowMatchDiscretization, HeunEDMSampler, VanillaCFG
    from edm_sampler.bench.compiles import CompileCounter
    from edm_sampler.models.glyphs import GlyphDenoiser

    flow_model = example("flow_model")
    out = tmp_path / "flow.png"
    with CompileCounter() as first:  # Euler, then Heun: graph mode compiles during the first call
        results, denoiser = flow_model.main(["--out", str(out)])  # 20 samples, 18 steps, shift 3, CFG 2
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exact = GlyphDenoiser(parametrization="flow")
    labels = np.arange(20) % 10
    # Heun lands on training images (measured 1.5e-8 apart); Euler's last step returns D at sigma = 0.0089, where the
    # posterior is still a sharp softmax that float32 rounding (timestep / 1000 against sigma) moves (2.5e-5 measured)
    for cls, atol in ((EulerEDMSampler, 1e-4), (HeunEDMSampler, 1e-5)):
        sampler = cls(
            num_steps=18, discretization_config=FlowMatchDiscretization(shift=3.0), guider_config=VanillaCFG(2.0)
        )
        reference = flow_model.sample_digits(sampler, exact, exact, 20, 0)
        np.testing.assert_allclose(results[cls.__name__], reference, rtol=0, atol=atol)
        nearest, distances = exact.nearest(results[cls.__name__])
        assert (nearest == labels).all() and distances.max() < 1e-4, cls.__name__
    ms.set_context(mode=ms.GRAPH_MODE)
    try:  # new noise and conditioning tensors, another sampler and step count: nothing compiles again
        heun = HeunEDMSampler(
            num_steps=4, discretization_config=FlowMatchDiscretization(shift=3.0), guider_config=VanillaCFG(2.0)
        )
        with CompileCounter() as later:
            flow_model.sample_digits(heun, denoiser, exact, 20, 1)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert first.available and first.count >= 1 and later.count == 0, (first.count, later.count)


def test_diffusers_config_samples_what_the_exact_models_sample(tmp_path):
    """SDXL's and Flux's shipped scheduler configs drive networks called as the pipelines call them; with the exact
    glyph networks the samples equal sampling the exact glyph model directly with the same sampler and schedule."""
    from edm_sampler.models.glyphs import GlyphDenoiser

    results = example("diffusers_config").main(["--steps", "8", "--num-samples", "10", "--out-dir", str(tmp_path)])
    assert (tmp_path / "diffusers_sdxl_base.png").is_file() and (tmp_path / "diffusers_flux_dev.png").is_file()
    flow_model = example("flow_model")
    labels = np.arange(10) % 10
    for name, parametrization in (("sdxl_base", "ve"), ("flux_dev", "flow")):
        samples, sampler = results[name]
        exact = GlyphDenoiser(parametrization=parametrization)
        reference = flow_model.sample_digits(sampler, exact, exact, 10, 0)
        np.testing.assert_allclose(samples, reference, rtol=0, atol=2e-4)
        nearest, distances = exact.nearest(samples)
        assert (nearest == labels).all() and distances.max() < 1e-3, name
