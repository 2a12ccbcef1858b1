"""`edm-sampler bench` runs and reports sane numbers. A benchmark is not a test: no timing is asserted."""

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

from edm_sampler import bench
from edm_sampler.bench import family, floor, options, torch_baselines
from edm_sampler.bench.compiles import CompileCounter

TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("k_diffusion") is not None


def positive(value):
    return isinstance(value, float) and math.isfinite(value) and value > 0


def check_per_step(section, with_torch):
    assert section["steps"] == 3 and section["repeats"] == 1 and section["shapes"] == [[2, 4, 16, 16]]
    rows = section["rows"]
    assert {(r["sampler"], r["s_churn"]) for r in rows} == {
        ("euler", 0.0),
        ("euler", 10.0),
        ("heun", 0.0),
        ("heun", 10.0),
    }
    for r in rows:
        assert r["nfe"] == (3 if r["sampler"] == "euler" else 5)
        frameworks = ("edm_sampler", "mindone_style") + (("k_diffusion",) if with_torch else ())
        for name in frameworks:
            stats = r[name]
            assert positive(stats["total_ms_per_step"]) and positive(stats["d_ms_per_step"])
            assert math.isfinite(stats["own_ms_per_step"]) and len(stats["raw_s"]) == 1
        assert (r["k_diffusion"] is None) == (not with_torch)
        assert positive(r["floor"]["ms_per_step"]) and r["floor"]["bytes_per_step"] > 0
        assert positive(r["ratios"]["mindone_total_over_edm_total"])
        assert (r["ratios"]["edm_own_over_kdiff_own"] is None) == (not with_torch)
        assert positive(r["noise_draw_ms_per_step"]) if r["s_churn"] > 0 else r["noise_draw_ms_per_step"] == 0.0
    assert all(positive(b["best_gb_s"]) for b in section["bandwidth"]["per_shape"].values())
    sanity = section["sanity"]
    assert len(sanity["mindone_style"]) == 4 and max(sanity["mindone_style"].values()) < 1e-5
    assert sanity["mindone_style_input_unchanged"] is True
    if with_torch:
        assert len(sanity["k_diffusion"]) == 4 and max(sanity["k_diffusion"].values()) < 1e-5
    else:
        assert sanity["k_diffusion"] is None


def check_real_net(section, with_torch):
    rows = section["rows"]
    keys = {(r["framework"], r["mode"], r["guidance"]) for r in rows}
    modes = ("pynative", "graph", "pynative+graph_loop", "graph+graph_loop")
    expected = {("edm_sampler", m, g) for m in modes for g in ("none", "cfg")}
    if with_torch:
        expected |= {("k_diffusion", "torch", "none"), ("k_diffusion", "torch", "cfg")}
    assert keys == expected
    for r in rows:
        assert r["nfe"] == 3 and r["net_batch"] == (4 if r["guidance"] == "cfg" else 2)
        assert positive(r["first_call_s"]) and positive(r["median_s"]) and positive(r["net_alone_median_s"])
        assert 0.0 <= r["share_outside_net"] <= 1.0
        if r["framework"] == "edm_sampler":  # a count, not a timing: no call after the first may compile
            assert r["compiles_first_call"] >= 0 and r["compiles_later"] == 0
        else:
            assert r["compiles_first_call"] is None
    if with_torch:
        assert section["sanity"]["twin_max_rel_diff"] < 1e-5
        assert max(section["sanity"]["sampler_max_rel_diff"].values()) < 1e-3
    else:
        assert section["sanity"]["twin_max_rel_diff"] is None
    check_family(section["family"], rows, with_torch)


def check_family(section, real_net_rows, with_torch):
    assert section["samplers"] == list(options.QUICK["samplers"]) == ["euler", "dpmpp_sde", "lcm"]
    rows = {r["name"]: r for r in section["rows"]}
    assert list(rows) == section["samplers"]
    assert rows["euler"]["sampler"] == "EulerEDMSampler" and rows["euler"]["options"] == {"s_churn": 10.0}
    assert rows["dpmpp_sde"]["noise"]["kind"] == "brownian" and rows["lcm"]["noise"]["kind"] == "ancestral"
    for name, r in rows.items():
        assert r["nfe"] == (5 if name == "dpmpp_sde" else 3) and r["net_batch"] == 4
        loop = r["graph_loop"]
        assert positive(loop["first_call_s"]) and positive(loop["median_s"]) and loop["share_outside_net"] is None
        assert loop["compiles_first_call"] >= 0 and loop["compiles_later"] == 0
        for mode in ("pynative", "graph"):
            stats = r[mode]
            assert positive(stats["median_s"]) and positive(stats["net_alone_median_s"])
            assert 0.0 <= stats["share_outside_net"] <= 1.0 and stats["compiles_later"] == 0
        if with_torch:
            assert positive(r["k_diffusion"]["median_s"]) and positive(r["graph_loop_over_k_diffusion"])
            assert r["k_diffusion"]["compiles_first_call"] is None
        else:
            assert r["k_diffusion"] is None and r["graph_loop_over_k_diffusion"] is None
    # the Euler row is the first table's Euler CFG rows
    first = {(r["framework"], r["mode"], r["guidance"]): r for r in real_net_rows}
    assert rows["euler"]["graph_loop"]["raw_s"] == first["edm_sampler", "pynative+graph_loop", "cfg"]["raw_s"]
    assert rows["euler"]["graph"]["raw_s"] == first["edm_sampler", "graph", "cfg"]["raw_s"]
    summary = section["summary"]
    assert 0.0 <= summary["graph_share_outside_net"]["min"] <= summary["graph_share_outside_net"]["max"] <= 1.0
    if with_torch:
        assert rows["dpmpp_sde"]["k_diffusion_function"] == "k_diffusion.sampling.sample_dpmpp_sde"
        assert rows["lcm"]["k_diffusion_function"]  # k-diffusion's, or the reproduction where it has none
        checks = section["sanity"]
        assert set(checks) == set(rows)
        for name, c in checks.items():
            assert c["max_rel_diff"] < 1e-3, (name, c)
            assert c["nfe"]["edm_sampler"] == c["nfe"]["k_diffusion"] == c["nfe"]["expected"] == rows[name]["nfe"]
            assert c["draws"]["k_diffusion"] in (None, c["draws"]["edm_sampler"])
            assert c["draws"]["edm_sampler"] == rows[name]["noise"]["draws_per_call"]["edm_sampler"]
    else:
        assert section["sanity"] is None and summary["graph_loop_over_k_diffusion"] is None


def check_schedulers(section):
    """Quick run: three classes, edm_sampler timed; mindone.diffusers' loop timed too where mindone is installed."""
    from edm_sampler.bench.schedulers import QUICK_CLASSES

    assert section["steps"] == 3 and [r["class"] for r in section["rows"]] == list(QUICK_CLASSES)
    with_mindone = section["baseline"].startswith("mindone ")
    if not with_mindone:
        assert "pip install mindone==0.5.0" in section["baseline"]
    for r in section["rows"]:
        assert positive(r["edm_sampler_ms_per_step"])
        if with_mindone and f"{r['class']}/mindone" not in section["errors"]:
            assert positive(r["mindone_ms_per_step"]) and positive(r["ratio"])
        else:
            assert r["mindone_ms_per_step"] is None and r["ratio"] is None


def test_quick_run_writes_every_number(tmp_path):
    path = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "edm_sampler.bench", "--quick", "--json", str(path)]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(path.read_text())
    env = data["env"]
    assert env["mindspore"] == ms.__version__ and env["threads"] == 1 and env["cpu_count"] >= 1
    assert env["dnnl"]["value"] and env["dnnl"]["option"] == "auto"
    assert data["load"]["other_cores"] is None or data["load"]["other_cores"] >= 0
    assert data["baselines"]["torch"] == ("ok" if TORCH else data["baselines"]["torch"])
    check_per_step(data["sections"]["per_step"], with_torch=TORCH)
    check_real_net(data["sections"]["real_net"], with_torch=TORCH)
    check_schedulers(data["sections"]["schedulers"])
    assert "| class | edm_sampler ms/step | mindone.diffusers ms/step |" in result.stdout
    assert "| shape | sampler | churn |" in result.stdout and "| framework | mode | guidance |" in result.stdout
    assert "| sampler | NFE | noise draws edm / k-diff | graph_loop |" in result.stdout
    assert f"DNNL_MAX_CPU_ISA: {env['dnnl']['value']}" in result.stdout


def test_runs_without_torch_and_restores_pynative(tmp_path, capsys):
    path = tmp_path / "bench.json"
    # --dnnl-isa native leaves DNNL_MAX_CPU_ISA as conftest set it: oneDNN latches the ISA at its first use, so a
    # change here would change the kernels of every later test in this process (and not those of its subprocesses)
    assert bench.main(["--quick", "--no-torch", "--dnnl-isa", "native", "--json", str(path)]) == 0
    assert ms.get_context("mode") == ms.PYNATIVE_MODE
    data = json.loads(path.read_text())
    assert data["baselines"]["torch"].startswith("disabled")
    check_per_step(data["sections"]["per_step"], with_torch=False)
    check_real_net(data["sections"]["real_net"], with_torch=False)
    check_schedulers(data["sections"]["schedulers"])
    assert "not installed" in capsys.readouterr().out


def test_loader_reports_missing_k_diffusion(monkeypatch):
    if importlib.util.find_spec("torch") is None:
        tb, reason = torch_baselines.load(threads=1)
        assert tb is None and "torch" in reason
        return
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "k_diffusion" else real(name, *a))
    tb, reason = torch_baselines.load(threads=1)
    assert tb is None and "k-diffusion" in reason


def test_compile_counter_counts_new_graphs_only():
    @ms.jit
    def double(a):
        return a * 2

    x = Tensor(np.ones(3, dtype=np.float32))
    with CompileCounter() as counter:
        double(x)
        first = counter.count
        double(x)
    assert counter.available and first == 1 and counter.count == 1


def test_floor_counts_arrays_per_step():
    assert floor.arrays_per_call(heun=False, steps=10, churn=False) == 30
    assert floor.arrays_per_call(heun=True, steps=10, churn=False) == 6 * 9 + 3
    assert floor.arrays_per_call(heun=False, steps=10, churn=True) == 40
    nbytes, ms_per_step = floor.floor_ms_per_step(4000, heun=False, steps=10, churn=False, gb_s=12.0)
    assert nbytes == 12000 and ms_per_step == pytest.approx(1e-3)


def test_quick_fills_only_unset_options():
    args = options.resolve(options.build_parser().parse_args(["--quick", "--steps", "5"]))
    assert args.steps == 5 and args.repeats == 1 and args.shapes == ((2, 4, 16, 16),)
    args = options.resolve(options.build_parser().parse_args(["--shapes", "1x4x8x8", "2,3,4,4"]))
    assert args.shapes == [(1, 4, 8, 8), (2, 3, 4, 4)] and args.steps == 20


def test_samplers_option_names_the_family_in_table_order():
    parse = options.build_parser().parse_args
    assert options.resolve(parse([])).samplers == options.FAMILY == tuple(family.CASES)
    assert parse(["--samplers", "lms, heun"]).samplers == ("heun", "lms")
    assert parse(["--samplers", "all"]).samplers == options.FAMILY
    with pytest.raises(SystemExit):
        parse(["--samplers", "euler,ddim"])


def test_family_cases_count_their_evaluations_and_draws():
    assert family.CASES["heun"].nfe(20) == 39 and family.CASES["dpmpp_2m"].nfe(20) == 20
    assert family.CASES["euler"].draws(20) == (20, 20)  # s_churn=10 churns every step; k-diffusion draws on all
    assert family.CASES["dpmpp_sde"].draws(20) == (38, 38)  # two increments per step, none on the step to 0
    assert family.CASES["lms"].draws(20) == (0, 0)


@pytest.mark.skipif(not TORCH, reason="needs torch and k-diffusion (the bench extra)")
def test_lcm_baseline_matches_edm_sampler():
    """The LCM baseline (k-diffusion's sample_lcm, or the bench's reproduction of ComfyUI's) samples what LCMSampler
    samples, given the same noise."""
    from edm_sampler import LCMSampler

    tb, reason = torch_baselines.load(threads=1)
    assert tb is not None, reason
    fn, _ = family.kdiffusion_sampler(tb, "lcm")
    torch = tb.torch
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 4), dtype=np.float32)
    noises = [rng.standard_normal(x.shape, dtype=np.float32) for _ in range(4)]
    sigmas = tb.sampling.get_sigmas_karras(5, 0.002, 80.0, 7.0)

    def model(x, sigma, cond=None):
        return x * 0.5

    it = iter(noises)
    got = fn(
        lambda x, s: model(x, s), torch.from_numpy(x), sigmas, noise_sampler=lambda s, t: torch.from_numpy(next(it))
    )
    it = iter(noises)
    ref = LCMSampler(init_noise="prescaled")(
        model, Tensor(x), sigmas=sigmas.numpy(), noise_sampler=lambda s, t: next(it), disable=True
    )
    assert np.allclose(got.numpy(), ref.asnumpy(), rtol=1e-5, atol=1e-5)


def test_sample_command_does_not_load_the_benchmark():
    code = (
        "import sys; from edm_sampler.cli import build_parser; build_parser(); "
        "assert 'torch' not in sys.modules and 'edm_sampler.bench.app' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
