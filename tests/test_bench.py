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
from edm_sampler.bench import floor, options, torch_baselines
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
    assert "| shape | sampler | churn |" in result.stdout and "| framework | mode | guidance |" in result.stdout
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


def test_sample_command_does_not_load_the_benchmark():
    code = (
        "import sys; from edm_sampler.cli import build_parser; build_parser(); "
        "assert 'torch' not in sys.modules and 'edm_sampler.bench.app' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
