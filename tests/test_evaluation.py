"""``edm-sampler eval``: quality versus NFE on models with exact answers."""

import argparse
import csv
import dataclasses
import sys

import numpy as np
import pytest

from edm_sampler import evaluation as ev

BUDGETS = (10, 20, 35, 80)


@pytest.fixture(scope="module")
def gaussian_errors():
    """RMS relative error against the exact ODE solution, per sampler, at each budget (quick sizes)."""
    rows = ev.evaluate(("gaussian",), ("euler_edm", "heun_edm"), ("edm",), BUDGETS, 0, ev.QUICK_SIZES)
    return {
        name: np.array([r.value for r in rows if r.sampler == name and r.metric == "rms_rel_error"])
        for name in ("euler_edm", "heun_edm")
    }


def parser():
    p = argparse.ArgumentParser(prog="edm-sampler")
    ev.add_eval_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_gaussian_error_falls_with_nfe(gaussian_errors):
    for name, errors in gaussian_errors.items():
        assert np.all(np.diff(errors) < 0), (name, errors)


def test_heun_is_second_order_and_euler_first(gaussian_errors):
    euler, heun = gaussian_errors["euler_edm"], gaussian_errors["heun_edm"]
    # Heun at NFE 35 is 18 steps, at NFE 80 40 steps; Euler 35 and 80 steps.
    order_euler = -np.log(euler[3] / euler[2]) / np.log(80 / 35)
    order_heun = -np.log(heun[3] / heun[2]) / np.log(40 / 18)
    assert 0.8 < order_euler < 1.3
    assert 1.8 < order_heun < 2.6
    assert heun[2] < euler[2]
    assert heun[3] < euler[3] / 3


def test_sliced_wasserstein_of_a_shift_is_the_shift():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(5000), rng.standard_normal(5000)
    assert ev.sliced_wasserstein(a, a + 0.7) == pytest.approx(0.7, rel=1e-12)  # 1-D: every projection is +-1
    assert ev.sliced_wasserstein(a, b + 0.7) == pytest.approx(0.7, abs=0.05)
    assert ev.sliced_wasserstein(a, b) < 0.05
    # 2-D shift by v: the mean of |v . u| over unit directions u is 2 |v| / pi
    x, y = rng.standard_normal((4000, 2)), rng.standard_normal((4000, 2))
    shift = np.array([0.6, 0.8])
    assert ev.sliced_wasserstein(x, y, projections=2000) < 0.05
    assert ev.sliced_wasserstein(x, y + shift, projections=2000) == pytest.approx(2 / np.pi, abs=0.05)
    with pytest.raises(ValueError, match="same shape"):
        ev.sliced_wasserstein(x, y[:10])


def test_mixture_floor_is_small_and_the_samplers_approach_it():
    task = ev.MixtureTask(0, ev.QUICK_SIZES)
    floor = task.floor()
    assert floor["sliced_w1"] <= floor["sliced_w1_max"] < 0.2  # 256 samples: the floor is well above 0
    coarse = task(ev.build_sampler("heun_edm", "edm"), 2)["sliced_w1"]
    fine = task(ev.build_sampler("heun_edm", "edm"), 40)["sliced_w1"]
    assert fine < coarse / 5
    assert fine < 1.5 * floor["sliced_w1_max"]


def test_budget_to_steps():
    assert ev.nfe_formula("euler_edm", "edm") == (1, 1)
    assert ev.nfe_formula("heun_edm", "edm") == (1, 2)
    assert [ev.steps_for_budget("euler_edm", "edm", b) for b in (1, 5, 10, 35, 80)] == [1, 5, 10, 35, 80]
    assert [ev.steps_for_budget("heun_edm", "edm", b) for b in (1, 5, 10, 35, 80)] == [1, 3, 5, 18, 40]
    assert ev.steps_for_budget("dpm_2", "edm", 20) == 10
    assert ev.steps_for_budget("dpmpp_2m", "edm", 20) == 20
    for name, steps in (("euler_edm", 10), ("heun_edm", 5), ("heun_edm", 18)):
        assert ev.nfe_of(name, "edm", steps) == (steps if name == "euler_edm" else 2 * steps - 1)


def test_default_samplers_are_the_deterministic_ones():
    names = ev.deterministic_samplers()
    assert {"euler_edm", "heun_edm", "dpmpp_2m", "lms", "dpm_2", "dpmpp_2m_sde"} <= set(names)
    # issue 13's solvers, with their noise off (er_sde's ODE, SEEDS and DDIM at eta 0, SA-Solver PECE at tau 0)
    new = {"res_multistep", "res_multistep_ancestral", "gradient_estimation", "er_sde", "seeds_2", "seeds_3"}
    new |= {"heunpp2", "ipndm", "ipndm_v", "dpm_fast", "sa_solver_pece", "ddim"}
    assert new <= set(names)
    assert "lcm" not in names and "ddpm" not in names and "restart" not in names  # noise is the method
    assert "dpm_adaptive" not in names  # no step count sets its NFE
    assert not [name for name in names if name.endswith("_cfg_pp")]  # CFG++: another guided ODE than the references
    assert "edm" not in names  # a discretization, not a sampler
    assert ev.build_sampler("euler_ancestral", "edm").eta == 0.0
    assert ev.build_sampler("heun_edm", "exponential").s_churn == 0.0
    for name in ("er_sde", "seeds_2", "seeds_3", "ddim", "res_multistep_ancestral"):
        assert ev.build_sampler(name, "edm").eta == 0.0
    assert ev.build_sampler("sa_solver_pece", "edm").tau == 0.0


def test_presets_run_with_their_defaults_and_each_method_once():
    """ComfyUI's names: a preset with its own defaults is a method of its own (uni_pc: UniPC bh1 at order 3), a
    preset that renames a class (euler, heun, the _gpu twins) is its twin and runs once, under the built-in name."""
    names = ev.deterministic_samplers()
    assert {"uni_pc", "uni_pc_bh2", "dpmpp_2m_sde_heun"} <= set(names)
    twins = {"euler", "heun", "dpmpp_sde_gpu", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde_gpu"}
    assert not twins & set(names) and twins <= set(ev.runnable_samplers())
    uni_pc = ev.build_sampler("uni_pc", "edm")
    assert (uni_pc.solver_order, uni_pc.solver_type) == (3, "bh1")
    heun_sde = ev.build_sampler("dpmpp_2m_sde_heun", "flow_match")
    assert (heun_sde.eta, heun_sde.solver_type) == (0.0, "heun")  # the preset's default, the noise still off
    assert repr(ev.build_sampler("euler", "edm")) == repr(ev.build_sampler("euler_edm", "edm"))
    assert parser().parse_args(["eval", "--samplers", "euler,uni_pc"]).samplers == ("euler", "uni_pc")


@pytest.mark.parametrize(
    "option, value",
    [("--samplers", "heun_edm,nope"), ("--samplers", "lcm"), ("--samplers", "euler_cfg_pp"), ("--schedules", "karas")],
)
def test_bad_names_list_the_valid_ones(option, value, capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["eval", option, value])
    err = capsys.readouterr().err
    assert "valid:" in err and ("euler_edm" in err or "exponential" in err)
    if option == "--samplers":  # presets show their class and defaults
        assert "uni_pc (UniPCSampler, solver_order=3, solver_type='bh1')" in err


def test_cli_quick_writes_csv_and_tables(tmp_path, capsys):
    out = tmp_path / "eval.csv"
    args = parser().parse_args(["eval", "--quick", "--samplers", "euler_edm,heun_edm", "--csv", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "### gaussian: rms_rel_error" in printed and "best sampler per NFE budget" in printed
    assert "### gaussian_flow: rms_rel_error" in printed
    assert "### gaussian as a VE model vs gaussian_flow (flow)" in printed  # --quick has both parametrizations
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert (
        tuple(rows[0])
        == ev.CSV_COLUMNS
        == ("model", "sampler", "schedule", "budget", "steps", "nfe", "metric", "value")
    )
    # 2 samplers x 2 budgets (5, 10) x 2 metrics, for gaussian on edm and gaussian_flow on its 3 schedules
    assert len(rows) == 8 * 4
    assert {r["schedule"] for r in rows if r["model"] == "gaussian_flow"} == set(ev.DEFAULT_SCHEDULES["flow"])
    heun = {(r["budget"], r["metric"]): r for r in rows if r["sampler"] == "heun_edm" and r["model"] == "gaussian"}
    assert (heun["10", "rms_rel_error"]["steps"], heun["10", "rms_rel_error"]["nfe"]) == ("5", "9")
    assert all(float(r["value"]) > 0 for r in rows)


def test_cli_quick_default_samplers_runs(tmp_path, capsys):
    args = parser().parse_args(["eval", "--quick", "--csv", str(tmp_path / "q.csv")])
    assert args.func(args) == 0
    with (tmp_path / "q.csv").open() as f:
        samplers = {r["sampler"] for r in csv.DictReader(f)}
    assert samplers == set(ev.deterministic_samplers())


def test_all_models_tiny_grid(tmp_path):
    sizes = ev.Sizes(gaussian_batch=4, gmm_samples=64, projections=8, glyph_samples=4, unet_samples=2)
    sizes = dataclasses.replace(sizes, reference_steps=40)
    rows = ev.evaluate(ev.VE_MODELS, ("heun_edm",), ("edm",), (20,), 0, sizes)
    metrics = {(r.model, r.sampler, r.metric) for r in rows}
    assert metrics == {
        ("gaussian", "heun_edm", "max_rel_error"),
        ("gaussian", "heun_edm", "rms_rel_error"),
        ("gmm", ev.FLOOR, "sliced_w1"),
        ("gmm", ev.FLOOR, "sliced_w1_max"),
        ("gmm", "heun_edm", "sliced_w1"),
        ("glyphs", "heun_edm", "class_match"),
        ("glyphs", "heun_edm", "mean_distance"),
        ("glyphs_unet", ev.FLOOR, "rms_vs_reference"),
        ("glyphs_unet", ev.FLOOR, "rms_vs_reference_max"),
        ("glyphs_unet", "heun_edm", "rms_vs_reference"),
        ("glyphs_unet", "heun_edm", "class_match"),
    }
    glyphs = {r.metric: r.value for r in rows if r.model == "glyphs"}
    assert glyphs["class_match"] == 1.0  # 10 Heun steps with CFG land on training images of the requested class
    assert glyphs["mean_distance"] < 0.05
    unet = {r.metric: r.value for r in rows if r.model == "glyphs_unet"}
    assert 0.0 < unet["rms_vs_reference"] < 0.05  # Heun at 19 NFE is close to its own 79-NFE solution
    best = ev.best_per_budget(rows)
    assert {r.model for r in best} == set(ev.VE_MODELS)
    tables = ev.markdown_tables(rows)
    assert "noise floor (sliced_w1" in tables and "solver floor (rms_vs_reference" in tables


def test_best_per_budget_names_ties_together():
    rows = [
        ev.Row("glyphs", "euler_edm", "edm", 10, 10, 10, "mean_distance", 3.01e-8),
        ev.Row("glyphs", "heun_edm", "edm", 10, 5, 9, "mean_distance", 3.08e-8),  # both at round-off: tied
        ev.Row("glyphs", "lms", "edm", 10, 10, 10, "mean_distance", 1.6e-5),
        ev.Row("gaussian", "euler_edm", "edm", 10, 10, 10, "rms_rel_error", 0.27),
        ev.Row("gaussian", "heun_edm", "edm", 10, 5, 9, "rms_rel_error", 1.52),
    ]
    best = {r.model: r for r in ev.best_per_budget(rows)}
    assert best["glyphs"].sampler == "euler_edm, heun_edm"
    assert best["gaussian"].sampler == "euler_edm" and best["gaussian"].value == 0.27


def test_samplers_at_or_below_the_floor_are_tied():
    rows = [
        ev.Row("gmm", ev.FLOOR, "-", 0, 0, 0, "sliced_w1", 0.025),
        ev.Row("gmm", ev.FLOOR, "-", 0, 0, 0, "sliced_w1_max", 0.03),
        ev.Row("gmm", "lms", "edm", 35, 35, 35, "sliced_w1", 0.021),
        ev.Row("gmm", "dpmpp_2m", "edm", 35, 35, 35, "sliced_w1", 0.024),  # below the floor: converged too
        ev.Row("gmm", "euler_edm", "edm", 35, 35, 35, "sliced_w1", 0.04),
    ]
    (best,) = ev.best_per_budget(rows)
    assert best.sampler == "lms, dpmpp_2m" and best.value == 0.021


def test_plot_is_written_when_matplotlib_imports(tmp_path):
    pytest.importorskip("matplotlib")
    rows = ev.evaluate(("gaussian",), ("euler_edm", "heun_edm"), ("edm",), (5, 10), 0, ev.QUICK_SIZES)
    path = tmp_path / "eval.png"
    assert ev.plot(rows, path) == f"wrote {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    path = tmp_path / "eval.png"
    note = ev.plot([ev.Row("gaussian", "euler_edm", "edm", 5, 5, 5, "rms_rel_error", 0.5)], path)
    assert "matplotlib is not installed" in note
    assert not path.exists()


def test_trained_net_error_is_measured_against_a_fine_solution_of_the_same_schedule():
    """The reference is Heun with many steps on the sampler's own schedule: Heun with that many steps scores 0, and
    error falls as the budget grows."""
    sizes = dataclasses.replace(ev.QUICK_SIZES, unet_samples=2, reference_steps=12)
    task = ev.TrainedGlyphTask(0, sizes)
    heun = ev.build_sampler("heun_edm", "edm", task.guider)
    assert task(heun, 12)["rms_vs_reference"] == 0.0
    euler = ev.build_sampler("euler_edm", "edm", task.guider)
    errors = [task(euler, steps)["rms_vs_reference"] for steps in (3, 6, 12)]
    assert errors[0] > errors[1] > errors[2] > 0.0
    vp = ev.build_sampler("heun_edm", "vp", task.guider)
    assert task(vp, 12)["rms_vs_reference"] == 0.0 and len(task._references) == 2  # one reference per schedule


# -- flow-matching models -------------------------------------------------------------------------------------------


def test_each_model_runs_on_schedules_of_its_parametrization():
    assert ev.model_parametrization("gmm_flow") == "flow" and ev.data_of("gmm_flow") == "gmm"
    assert ev.model_parametrization("glyphs_unet") == "ve" and ev.data_of("glyphs_unet") == "glyphs_unet"
    assert ev.primary("gaussian_flow") == ev.primary("gaussian") == "rms_rel_error"
    assert [ev.schedule_parametrization(s) for s in ("edm", "vp", "flow_match", "flow_match_shift3")] == [
        "ve",
        "ve",
        "flow",
        "flow",
    ]
    assert ev.schedules_for("gaussian") == ("edm",)
    assert ev.schedules_for("gaussian_flow") == ev.DEFAULT_SCHEDULES["flow"]
    # --schedules replaces the defaults of the models of its kind only
    assert ev.schedules_for("gaussian", ("edm", "vp", "flow_match")) == ("edm", "vp")
    assert ev.schedules_for("gaussian_flow", ("edm", "vp", "flow_match")) == ("flow_match",)
    assert ev.schedules_for("gaussian_flow", ("edm",)) == ev.DEFAULT_SCHEDULES["flow"]
    shift3 = ev.build_sampler("euler_edm", "flow_match_shift3").discretization
    assert shift3.shift == 3.0 and shift3.get_sigmas(28)[-1] == pytest.approx(0.00893, abs=1e-5)
    karras = ev.build_sampler("heun_edm", "flow_match_karras").discretization.get_sigmas(10)
    assert karras[0] == 1.0 and karras[-1] == pytest.approx(0.001) and karras[1] < 0.8  # rho = 7: fast fall from 1
    assert "flow_match_karras" in parser().parse_args(["eval", "--schedules", "flow_match_karras"]).schedules


def test_flow_gaussian_is_measured_against_its_exact_solution():
    """The flow Gaussian starts at sigma = 1 from the noise itself; Heun's error against the closed form falls at
    second order and Euler's at first."""
    task = ev.GaussianFlowTask(0, ev.QUICK_SIZES)
    assert task.model.parametrization == "flow"
    errors = {
        name: [task(ev.build_sampler(name, "flow_match"), steps)["rms_rel_error"] for steps in (20, 40)]
        for name in ("euler_edm", "heun_edm")
    }
    order = {name: np.log2(e[0] / e[1]) for name, e in errors.items()}
    assert 0.8 < order["euler_edm"] < 1.3 and 1.7 < order["heun_edm"] < 2.6, order
    assert errors["heun_edm"][1] < 1e-3


def test_flow_models_tiny_grid_and_the_parametrization_comparison(tmp_path):
    sizes = ev.Sizes(gaussian_batch=4, gmm_samples=64, projections=8, glyph_samples=4)
    models = ("gaussian", "gaussian_flow", "gmm", "gmm_flow", "glyphs", "glyphs_flow")
    rows = ev.evaluate(models, ("euler_edm", "euler_ancestral", "heun_edm"), None, (10, 20), 0, sizes)
    flow = [r for r in rows if ev.model_parametrization(r.model) == "flow" and r.sampler != ev.FLOOR]
    for model in ("gaussian_flow", "gmm_flow", "glyphs_flow"):
        assert {r.schedule for r in flow if r.model == model} == set(ev.schedules_for(model))
    glyphs = [r.value for r in flow if r.model == "glyphs_flow" and r.metric == "class_match"]
    assert glyphs and min(glyphs) == 1.0  # CFG 2 lands on the requested digits
    floors = {r.model: r.value for r in rows if r.sampler == ev.FLOOR and r.metric == "sliced_w1"}
    assert floors["gmm"] == floors["gmm_flow"]  # the same exact draws: the same floor
    assert ev.parametrization_pairs(rows) == [
        ("gaussian", "gaussian_flow"),
        ("gmm", "gmm_flow"),
        ("glyphs", "glyphs_flow"),
    ]
    comparisons = ev.compare_parametrizations(rows)
    assert {c.data for c in comparisons} == {"gaussian", "gmm", "glyphs"}
    assert all(c.ve.budget == c.flow.budget and c.ve.nfe == c.flow.nfe for c in comparisons)
    table = ev.comparison_table(rows)
    assert "### gaussian as a VE model vs gaussian_flow (flow): rms_rel_error" in table
    assert "| euler_edm, euler_ancestral | edm | flow_match |" in table  # identical with eta = 0: merged
    assert "* edm vs flow_match: flow lower in" in table
    assert ev.comparison_table([r for r in rows if r.model == "gaussian"]) == ""  # no twin: no comparison
    pytest.importorskip("matplotlib")
    path = tmp_path / "eval.png"
    assert ev.plot(rows, path) == f"wrote {path}"  # VE row over the flow row
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_comparison_winner_respects_ties_and_the_floor():
    def row(model, sampler, value, metric="sliced_w1", schedule=None):
        schedule = schedule or ("flow_match" if model.endswith("_flow") else "edm")
        return ev.Row(model, sampler, schedule, 10, 10, 10, metric, value)

    rows = [
        ev.Row("gmm", ev.FLOOR, "-", 0, 0, 0, "sliced_w1", 0.02),
        ev.Row("gmm_flow", ev.FLOOR, "-", 0, 0, 0, "sliced_w1", 0.025),
        row("gmm", "euler_edm", 0.5),
        row("gmm_flow", "euler_edm", 0.1),  # flow lower
        row("gmm", "heun_edm", 0.05),
        row("gmm_flow", "heun_edm", 0.2),  # ve lower
        row("gmm", "lms", 0.024),
        row("gmm_flow", "lms", 0.021),  # both at or below the higher floor: converged, tied
        row("glyphs", "lms", 3.0e-8, "mean_distance"),
        row("glyphs_flow", "lms", 3.1e-8, "mean_distance"),  # float32 round-off of a training image: tied
    ]
    winners = {(c.data, c.sampler): c.winner for c in ev.compare_parametrizations(rows)}
    assert winners == {
        ("gmm", "euler_edm"): "flow",
        ("gmm", "heun_edm"): "ve",
        ("gmm", "lms"): "tie",
        ("glyphs", "lms"): "tie",
    }
    table = ev.comparison_table(rows)
    assert "5.00e-01 / **1.00e-01** @10" in table and "**5.00e-02** / 2.00e-01 @10" in table
    assert "2.40e-02 / 2.10e-02 @10 (tie)" in table
    assert "flow lower in 1, ve lower in 1, tied in 1 of 3" in table


# -- how few NFE reach EDM's Heun at 35 ----------------------------------------------------------------------------


def fewest_rows():
    row = ev.Row
    return [
        # gaussian: Heun at 35 NFE is the target (0.05); lms stays below it from 10 NFE, deis (tied at 10, above at
        # 12) from 15; gradient_estimation dips below at 4 (a lucky crossing) and comes back above
        row("gaussian", "heun_edm", "edm", 35, 18, 35, "rms_rel_error", 0.05),
        row("gaussian", "heun_edm", "edm", 10, 5, 9, "rms_rel_error", 0.9),
        row("gaussian", "heun_edm", "edm", 35, 18, 35, "max_rel_error", 0.001),  # not the primary metric
        row("gaussian", "lms", "edm", 8, 8, 8, "rms_rel_error", 0.07),
        row("gaussian", "lms", "edm", 10, 10, 10, "rms_rel_error", 0.04),
        row("gaussian", "lms", "edm", 15, 15, 15, "rms_rel_error", 0.02),
        row("gaussian", "lms", "edm", 35, 35, 35, "rms_rel_error", 0.006),
        row("gaussian", "lms", "edm", 80, 80, 80, "rms_rel_error", 0.09),  # past the reference budget: not looked at
        row("gaussian", "deis", "edm", 10, 10, 10, "rms_rel_error", 0.0500001),  # tied with the target
        row("gaussian", "deis", "edm", 15, 15, 15, "rms_rel_error", 0.06),
        row("gaussian", "deis", "edm", 35, 35, 35, "rms_rel_error", 0.007),
        row("gaussian", "gradient_estimation", "edm", 4, 4, 4, "rms_rel_error", 0.001),
        row("gaussian", "gradient_estimation", "edm", 5, 5, 5, "rms_rel_error", 0.2),
        row("gaussian", "gradient_estimation", "edm", 35, 35, 35, "rms_rel_error", 0.06),
        row("gaussian", "dpm_2", "edm", 10, 5, 9, "rms_rel_error", 0.06),
        row("gaussian", "dpm_2", "edm", 35, 18, 35, "rms_rel_error", 0.03),
        # gaussian_flow: the target is Heun's best schedule; only lms on karras at 35 NFE and Heun itself reach it
        row("gaussian_flow", "heun_edm", "flow_match", 35, 18, 35, "rms_rel_error", 0.002),
        row("gaussian_flow", "heun_edm", "flow_match_karras", 35, 18, 35, "rms_rel_error", 0.004),
        row("gaussian_flow", "lms", "flow_match_karras", 20, 20, 20, "rms_rel_error", 0.003),
        row("gaussian_flow", "lms", "flow_match_karras", 35, 35, 35, "rms_rel_error", 0.0001),
        # gmm: Heun at 35 is below the noise floor; any value at the floor counts (converged)
        row("gmm", ev.FLOOR, "-", 0, 0, 0, "sliced_w1", 0.025),
        row("gmm", ev.FLOOR, "-", 0, 0, 0, "sliced_w1_max", 0.04),
        row("gmm", "heun_edm", "edm", 35, 18, 35, "sliced_w1", 0.021),
        row("gmm", "deis", "edm", 5, 5, 5, "sliced_w1", 0.03),
        row("gmm", "deis", "edm", 6, 6, 6, "sliced_w1", 0.0249),
        row("gmm", "deis", "edm", 35, 35, 35, "sliced_w1", 0.0246),
        row("gmm", "ipndm", "edm", 6, 6, 6, "sliced_w1", 0.0245),
        row("gmm", "ipndm", "edm", 35, 35, 35, "sliced_w1", 0.0246),
        # not exact, or without the reference: no line
        row("glyphs_unet", "heun_edm", "edm", 35, 18, 35, "rms_vs_reference", 0.01),
        row("glyphs_unet", "lms", "edm", 5, 5, 5, "rms_vs_reference", 0.001),
        row("gmm_flow", "lms", "flow_match", 5, 5, 5, "sliced_w1", 0.02),
    ]


def test_fewest_nfe_to_reach_heun_at_35():
    found = {f.model: f for f in ev.fewest_nfe(fewest_rows())}
    assert list(found) == ["gaussian", "gaussian_flow", "gmm"]
    gaussian = found["gaussian"]
    assert (gaussian.target.value, gaussian.reached.nfe, gaussian.reached.sampler) == (0.05, 10, "lms")
    assert gaussian.samplers == "lms (edm)" and gaussian.met_goal  # deis goes back above at 15; dpm_2 from 35 only
    assert (gaussian.first.nfe, gaussian.first.sampler) == (4, "gradient_estimation")  # the lucky crossing
    flow = found["gaussian_flow"]
    assert (flow.target.schedule, flow.target.value) == ("flow_match", 0.002)  # Heun's best schedule
    assert flow.reached.nfe == 35 and not flow.met_goal
    assert flow.samplers == "lms (flow_match_karras), heun_edm (flow_match)"
    gmm = found["gmm"]
    assert gmm.reached.nfe == 6 and gmm.samplers == "ipndm (edm), deis (edm)"  # at or below the floor mean


def test_fewest_nfe_counts_the_nfe_used_not_the_budget():
    row = ev.Row
    rows = [
        row("gaussian", "heun_edm", "edm", 35, 18, 35, "rms_rel_error", 0.05),
        row("gaussian", "lms", "edm", 10, 10, 10, "rms_rel_error", 0.01),
        row("gaussian", "lms", "edm", 35, 35, 35, "rms_rel_error", 0.001),
        row("gaussian", "dpm_2", "edm", 10, 5, 9, "rms_rel_error", 0.04),  # budget 10, 9 evaluations
        row("gaussian", "dpm_2", "edm", 12, 5, 9, "rms_rel_error", 0.04),  # the same run again at budget 12
        row("gaussian", "dpm_2", "edm", 35, 18, 35, "rms_rel_error", 0.002),
    ]
    (found,) = ev.fewest_nfe(rows)
    assert (found.reached.nfe, found.samplers, found.first.nfe) == (9, "dpm_2 (edm)", 9)


def test_fewest_nfe_table_says_met_and_missed():
    table = ev.fewest_nfe_table(fewest_rows())
    assert "### fewest NFE to reach heun_edm at 35 NFE (goal: 15 or fewer)" in table
    gaussian = "| gaussian | rms_rel_error | 5.00e-02 (edm) | 10 | lms (edm) | 4.00e-02 | met | 4: gradient_estimation"
    assert gaussian in table
    assert "| gaussian_flow | rms_rel_error | 2.00e-03 (flow_match) | 35 |" in table
    assert "| 1.00e-04 | missed | 35: lms (flow_match_karras) |" in table  # lms at 35 NFE is the lowest, and misses
    assert table.endswith("| met | 6: ipndm (edm) |")
    assert ev.fewest_nfe_table([r for r in fewest_rows() if r.sampler != "heun_edm"]) == ""


def test_cli_prints_the_fewest_nfe_table(tmp_path, capsys):
    csv_path = str(tmp_path / "eval.csv")
    args = parser().parse_args(
        ["eval", "--quick", "--models", "gaussian", "--samplers", "heun_edm,lms", "--nfe", "5,35", "--csv", csv_path]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    fewest = printed.split("### fewest NFE to reach heun_edm at 35 NFE")[1]
    line = next(x for x in fewest.splitlines() if x.startswith("| gaussian | rms_rel_error | "))
    # Heun's 35-NFE error on the Gaussian (the same at any batch size: every result is a multiple of its noise), which
    # LMS stays under only at 35 NFE of these two budgets
    expected = "| gaussian | rms_rel_error | 5.53e-02 (edm) | 35 | lms (edm), heun_edm (edm) | 6.13e-03 | missed |"
    assert line == expected + " 35: lms (edm) |"
