"""Quality versus NFE: every sampler at several model-evaluation budgets, on models whose answer is known exactly.

``edm-sampler eval`` runs each sampler deterministically, so the errors are ODE (discretization) errors:
``s_churn=0`` for the EDM family and ``eta=0`` for the ancestral and SDE samplers; samplers without a deterministic
setting (LCM) are left out. For each budget it uses the most steps whose NFE does not exceed it. The models:

* ``gaussian``: N(0, 0.5^2 I) data in 16-D. The probability-flow ODE has a closed-form solution, so the error is the
  max and RMS difference from the exact solution of the same starting noise, relative to the solution's RMS.
* ``gmm``: 8 Gaussian modes on the unit circle in 2-D. The error is the sliced Wasserstein-1 distance between the
  samples and as many exact draws. The noise floor beside it is the same distance from the exact draws to other,
  independent exact samples (mean and max over 8): a converged sampler lands in that range, not at 0.
* ``glyphs``: the digit dataset with classifier-free guidance (scale 2): the fraction of samples whose nearest
  training image has the requested class, and the mean RMS distance to that image.
* ``glyphs_unet``: the packaged trained network (:class:`~edm_sampler.models.trained_glyphs.TrainedGlyphModel`),
  with CFG 2. A learned model has no closed form, so the error is the RMS per-pixel difference from the same noise's
  solution by Heun with 256 steps on the same schedule (the sampler's own discretization error), beside the class
  match by nearest training image. Its floor is the same distance between two fine solutions (Heun 256 steps and
  DPM++2M 512 steps, edm schedule): float32 round-off amplified by the guided ODE; errors below it are ties.
"""

from __future__ import annotations

import argparse
import csv
import functools
import inspect
import sys
import time
from dataclasses import astuple, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mindspore import Tensor

from .discretization import Discretization
from .guiders import VanillaCFG
from .models.analytic import GaussianDenoiser, GaussianMixtureDenoiser
from .models.glyphs import NUM_CLASSES, GlyphDenoiser
from .noise import per_sample_generators, randn
from .registry import known_targets, resolve
from .samplers import BaseDiffusionSampler

MODELS = ("gaussian", "gmm", "glyphs", "glyphs_unet")
STOCHASTIC_ONLY = ("lcm",)  # its noise is the method: there is no deterministic setting to compare
DEFAULT_NFE = (5, 10, 20, 35, 80)
QUICK_NFE = (5, 10)
# The metric of each model used by the plot and "best sampler per NFE budget" (lower is better).
PRIMARY = {
    "gaussian": "rms_rel_error",
    "gmm": "sliced_w1",
    "glyphs": "mean_distance",
    "glyphs_unet": "rms_vs_reference",
}
REFERENCE_STEPS = 256  # Heun steps of the glyphs_unet reference solution
FLOOR = "floor"  # the sampler column of the floor rows (budget, steps and nfe are 0): what "converged" measures
FLOOR_DRAWS = 8
# What each model's floor is, for the tables ({metric}) and the plot legend.
FLOOR_NOTES = {
    "gmm": (f"noise floor ({{metric}} from the exact draws to {FLOOR_DRAWS} independent exact samples)", "mean", "max"),
    "glyphs_unet": (
        "solver floor ({metric} from the reference to DPM++2M with twice its steps: two fine solutions of the same "
        "guided ODE on the edm schedule)",
        "all samples",
        "worst sample",
    ),
}
FLOOR_LEGEND = {"gmm": "noise floor (exact vs exact)", "glyphs_unet": "solver floor (fine vs fine)"}
# Values this close to the best count as tied for "best sampler" (glyphs: every converged sampler sits at the
# float32 round-off of a training image, about 3e-8).
TIE_ATOL = {"mean_distance": 1e-6}


@dataclass(frozen=True)
class Sizes:
    gaussian_batch: int = 256
    gaussian_dim: int = 16
    gmm_samples: int = 4096
    projections: int = 64
    glyph_samples: int = 50
    unet_samples: int = 20
    cfg_scale: float = 2.0
    reference_steps: int = REFERENCE_STEPS


QUICK_SIZES = Sizes(gaussian_batch=32, gmm_samples=256, projections=16, glyph_samples=10, unet_samples=4)


@dataclass(frozen=True)
class Row:
    model: str
    sampler: str
    schedule: str
    budget: int
    steps: int
    nfe: int
    metric: str
    value: float


CSV_COLUMNS = tuple(f.name for f in fields(Row))


# -- samplers, schedules and step counts ---------------------------------------------------------------------------


def deterministic_samplers() -> list[str]:
    """Short names of every registered sampler that can run deterministically."""
    return [name for name in known_targets() if _is_sampler(resolve(name)) and name not in STOCHASTIC_ONLY]


def schedule_names() -> list[str]:
    """Short names of every registered discretization that can be built without parameters."""
    return [name for name in known_targets() if _is_default_schedule(resolve(name))]


def _is_sampler(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, BaseDiffusionSampler)


def _is_default_schedule(obj: Any) -> bool:
    if not (inspect.isclass(obj) and issubclass(obj, Discretization)):
        return False
    return all(p.default is not p.empty for p in inspect.signature(obj).parameters.values())


def build_sampler(name: str, schedule: str, guider: Any = None) -> BaseDiffusionSampler:
    """The sampler ``name`` on ``schedule``, with its noise switched off (``s_churn=0``, ``eta=0``)."""
    cls = resolve(name)
    ode = {key: 0.0 for key in ("s_churn", "eta") if key in inspect.signature(cls).parameters}
    return cls(discretization_config={"target": schedule}, guider_config=guider, **ode)


def _probe(x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
    return x * 0.5


def nfe_of(name: str, schedule: str, num_steps: int) -> int:
    """The NFE of one call with ``num_steps`` steps, measured as ``sampler.last_nfe`` on a one-number probe."""
    sampler = build_sampler(name, schedule)
    sampler(_probe, Tensor(np.ones((1, 1), np.float32)), num_steps=num_steps, generator=0, disable=True)
    return sampler.last_nfe


@functools.lru_cache(maxsize=None)
def nfe_formula(name: str, schedule: str) -> tuple[int, int]:
    """``(a, b)`` with NFE = a + b (N - 1) for N steps (Euler-type: (1, 1); Heun, DPM2, 2S-a, DPM++SDE: (1, 2))."""
    two, three = nfe_of(name, schedule, 2), nfe_of(name, schedule, 3)
    return 2 * two - three, three - two


def steps_for_budget(name: str, schedule: str, budget: int) -> int | None:
    """The most steps whose NFE does not exceed ``budget``; None when one step already does."""
    first, per_step = nfe_formula(name, schedule)
    if first > budget:
        return None
    return 1 + (budget - first) // per_step


# -- metrics and models --------------------------------------------------------------------------------------------


def sliced_wasserstein(a: Any, b: Any, projections: int = 64, generator: Any = 0) -> float:
    """Sliced Wasserstein-1 distance of two equal-size samples ``(n, dim)`` (or ``(n,)``).

    Both are projected on ``projections`` random unit directions; the W1 distance of two 1-D samples of equal size
    is the mean absolute difference of their sorted values. The result is the mean over the directions.
    """
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        raise ValueError(f"samples must have the same shape, got {a.shape} and {b.shape}")
    directions = np.random.default_rng(generator).standard_normal((a.shape[1], projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    return float(np.abs(np.sort(a @ directions, axis=0) - np.sort(b @ directions, axis=0)).mean())


class GaussianTask:
    """Relative error against the closed-form ODE solution for N(0, 0.5^2 I) data, from the same starting noise."""

    guider = None

    def __init__(self, seed: int, sizes: Sizes):
        self.model = GaussianDenoiser(0.5)
        self.seed, self.shape = seed, (sizes.gaussian_batch, sizes.gaussian_dim)
        self.noise = randn(self.shape, per_sample_generators(seed, self.shape[0]))

    def __call__(self, sampler: BaseDiffusionSampler, steps: int) -> dict[str, float]:
        gens = per_sample_generators(self.seed, self.shape[0])
        out = sampler(self.model, self.noise, num_steps=steps, generator=gens, disable=True).asnumpy()
        sigmas = sampler.get_sigmas(steps)
        start = self.noise.asnumpy() * sampler.initial_scale(float(sigmas[0]))
        exact = self.model.exact_solution(start, float(sigmas[0]), float(sigmas[-1]))
        error, scale = np.abs(out - exact), np.sqrt(np.mean(exact**2))
        return {"max_rel_error": error.max() / scale, "rms_rel_error": np.sqrt(np.mean(error**2)) / scale}


class MixtureTask:
    """Sliced W1 distance between the samples of the 8-mode 2-D mixture and as many exact draws."""

    guider = None

    def __init__(self, seed: int, sizes: Sizes):
        self.model = GaussianMixtureDenoiser()
        self.seed, self.n, self.projections = seed, sizes.gmm_samples, sizes.projections
        self.noise = randn((self.n, self.model.dim), per_sample_generators(seed, self.n))
        self.exact = self.model.sample(self.n, np.random.default_rng([seed, 1]))

    def floor(self) -> dict[str, float]:
        """The distance from the exact draws to independent exact samples: what 'converged' looks like."""
        others = [self.model.sample(self.n, np.random.default_rng([self.seed, 2, k])) for k in range(FLOOR_DRAWS)]
        distances = [sliced_wasserstein(self.exact, x, self.projections, generator=self.seed) for x in others]
        return {"sliced_w1": float(np.mean(distances)), "sliced_w1_max": float(np.max(distances))}

    def __call__(self, sampler: BaseDiffusionSampler, steps: int) -> dict[str, float]:
        gens = per_sample_generators(self.seed, self.n)
        out = sampler(self.model, self.noise, num_steps=steps, generator=gens, disable=True).asnumpy()
        return {"sliced_w1": sliced_wasserstein(out, self.exact, self.projections, generator=self.seed)}


class GlyphTask:
    """Class match and distance to the nearest training image for class-conditional glyphs with CFG."""

    def __init__(self, seed: int, sizes: Sizes):
        self.model = GlyphDenoiser()
        self._setup(seed, sizes.glyph_samples, sizes.cfg_scale)

    def _setup(self, seed: int, n: int, cfg_scale: float) -> None:
        self.seed = seed
        self.labels = np.arange(n) % NUM_CLASSES
        self.guider = VanillaCFG(cfg_scale)
        self.cond = {"vector": self.model.class_vectors(self.labels)}
        self.uc = {"vector": self.model.unconditional_vectors(n)}
        self.noise = randn((n, *self.model.shape), per_sample_generators(seed, n))

    def sample(self, sampler: BaseDiffusionSampler, steps: int) -> np.ndarray:
        gens = per_sample_generators(self.seed, len(self.labels))
        out = sampler(self.model, self.noise, self.cond, self.uc, num_steps=steps, generator=gens, disable=True)
        return out.asnumpy()

    def __call__(self, sampler: BaseDiffusionSampler, steps: int) -> dict[str, float]:
        labels, distances = self.model.nearest(self.sample(sampler, steps))
        return {"class_match": float(np.mean(labels == self.labels)), "mean_distance": float(distances.mean())}


class TrainedGlyphTask(GlyphTask):
    """The trained glyph UNet with CFG: RMS difference from a fine Heun solution of the same guided ODE, per schedule
    (its sigma_max sets the starting point), and the class match."""

    def __init__(self, seed: int, sizes: Sizes):
        from .models.trained_glyphs import TrainedGlyphModel

        self.model = TrainedGlyphModel()
        self.reference_steps = sizes.reference_steps
        self._setup(seed, sizes.unet_samples, sizes.cfg_scale)
        self._references: dict[str, np.ndarray] = {}

    def reference(self, sampler: BaseDiffusionSampler) -> np.ndarray:
        key = repr(sampler.discretization)
        if key not in self._references:
            heun = resolve("heun_edm")(discretization_config=sampler.discretization, guider_config=self.guider)
            self._references[key] = self.sample(heun, self.reference_steps)
        return self._references[key]

    def floor(self) -> dict[str, float]:
        """How far apart two fine solutions are: float32 round-off, amplified by the guided ODE, sets this floor
        (measured here: Heun 80/160/320 steps and DPM++2M 640 steps disagree by 4-8e-3). Errors below it are ties."""
        heun = resolve("heun_edm")(guider_config=self.guider)
        fine = resolve("dpmpp_2m")(guider_config=self.guider)
        per_sample = self._rms(self.sample(fine, 2 * self.reference_steps), self.reference(heun), axis=1)
        return {"rms_vs_reference": float(np.sqrt(np.mean(per_sample**2))), "rms_vs_reference_max": per_sample.max()}

    @staticmethod
    def _rms(a: np.ndarray, b: np.ndarray, axis=None):
        d = (a.astype(np.float64) - b).reshape(len(a), -1)
        return np.sqrt(np.mean(d**2, axis=axis))

    def __call__(self, sampler: BaseDiffusionSampler, steps: int) -> dict[str, float]:
        out = self.sample(sampler, steps)
        labels, _ = self.model.nearest(out)
        rms = self._rms(out, self.reference(sampler))
        return {"rms_vs_reference": float(rms), "class_match": float(np.mean(labels == self.labels))}


TASKS = {"gaussian": GaussianTask, "gmm": MixtureTask, "glyphs": GlyphTask, "glyphs_unet": TrainedGlyphTask}


# -- the evaluation ------------------------------------------------------------------------------------------------


def evaluate_sampler(model: str, task: Any, name: str, schedule: str, budgets: tuple[int, ...]) -> list[Row]:
    """One sampler on one schedule at every budget it can meet; ``nfe`` is the measured ``last_nfe``."""
    sampler = build_sampler(name, schedule, task.guider)
    rows = []
    for budget in budgets:
        steps = steps_for_budget(name, schedule, budget)
        if steps is None:
            continue
        metrics = task(sampler, steps)
        rows += [Row(model, name, schedule, budget, steps, sampler.last_nfe, m, float(v)) for m, v in metrics.items()]
    return rows


def evaluate(
    models: tuple[str, ...],
    samplers: tuple[str, ...],
    schedules: tuple[str, ...] = ("edm",),
    budgets: tuple[int, ...] = DEFAULT_NFE,
    seed: int = 0,
    sizes: Sizes = Sizes(),
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Every (model, sampler, schedule, budget) of the grid, as CSV-ready rows; ``progress`` receives status lines."""
    rows = []
    for model in models:
        if progress:
            progress(f"evaluating {model} ...")
        task = TASKS[model](seed, sizes)
        if hasattr(task, "floor"):
            rows += [Row(model, FLOOR, "-", 0, 0, 0, m, v) for m, v in task.floor().items()]
        for name in samplers:
            for schedule in schedules:
                rows += evaluate_sampler(model, task, name, schedule, budgets)
    return rows


# -- output --------------------------------------------------------------------------------------------------------


def write_csv(rows: list[Row], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(astuple(row) for row in rows)


def _fmt(metric: str, value: float) -> str:
    return f"{value:.2f}" if metric == "class_match" else f"{value:.2e}"


def markdown_tables(rows: list[Row]) -> str:
    """One table per (model, metric): a row per sampler and schedule, a column per budget, cells 'value @nfe'."""
    out = []
    for model, metric in dict.fromkeys((r.model, r.metric) for r in rows if r.sampler != FLOOR):
        cells = [r for r in rows if (r.model, r.metric) == (model, metric) and r.sampler != FLOOR]
        budgets = sorted({r.budget for r in cells})
        out.append(f"\n### {model}: {metric} (value @ actual NFE)\n")
        out.append(_md_row(["sampler", "schedule", *(f"NFE<={b}" for b in budgets)]))
        out.append(_md_row(["---"] * (2 + len(budgets))))
        for name, schedule in dict.fromkeys((r.sampler, r.schedule) for r in cells):
            by_budget = {r.budget: r for r in cells if (r.sampler, r.schedule) == (name, schedule)}
            values = [
                f"{_fmt(metric, by_budget[b].value)} @{by_budget[b].nfe}" if b in by_budget else "-" for b in budgets
            ]
            out.append(_md_row([name, schedule, *values]))
        floor = {r.metric: r.value for r in rows if r.model == model and r.sampler == FLOOR}
        if metric in floor:
            note, average, worst = FLOOR_NOTES[model]
            out.append(
                f"\n{note.format(metric=metric)}: {average} {_fmt(metric, floor[metric])}, "
                f"{worst} {_fmt(metric, floor[metric + '_max'])}"
            )
    return "\n".join(out)


def best_per_budget(rows: list[Row], rtol: float = 1e-3) -> list[Row]:
    """For each model and budget, the row with the lowest primary metric. Samplers within ``rtol`` (and
    ``TIE_ATOL``) of it, e.g. Euler and Euler ancestral with eta=0, are named together in its ``sampler`` field, and
    so are all samplers at or below the model's floor (converged: the metric cannot tell them apart)."""
    groups: dict[tuple[str, int], list[Row]] = {}
    floors = {}
    for r in rows:
        if r.metric == PRIMARY[r.model]:
            if r.sampler == FLOOR:
                floors[r.model] = r.value
            else:
                groups.setdefault((r.model, r.budget), []).append(r)
    best = []
    for (model, _), group in groups.items():
        top = min(group, key=lambda r: r.value)
        limit = max(top.value * (1 + rtol) + TIE_ATOL.get(top.metric, 0.0), floors.get(model, 0.0))
        tied = [
            r.sampler if r.schedule == top.schedule else f"{r.sampler} ({r.schedule})"
            for r in group
            if r.value <= limit
        ]
        best.append(replace(top, sampler=", ".join(dict.fromkeys([top.sampler, *tied]))))
    return best


def best_table(rows: list[Row]) -> str:
    """The Markdown table of :func:`best_per_budget`."""
    header = ("model", "metric", "budget", "sampler", "schedule", "steps", "NFE", "value")
    lines = ["\n### best sampler per NFE budget (lowest primary metric)\n", _md_row(header), _md_row(["---"] * 8)]
    for r in best_per_budget(rows):
        lines.append(
            _md_row([r.model, r.metric, r.budget, r.sampler, r.schedule, r.steps, r.nfe, _fmt(r.metric, r.value)])
        )
    return "\n".join(lines)


def _md_row(cells) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def plot(rows: list[Row], path: str | Path) -> str:
    """Error vs NFE, log-log, one panel per model and one line per sampler; returns what happened, as a note."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
        from matplotlib.ticker import NullFormatter, ScalarFormatter
    except ImportError:
        return f"no plot written to {path}: matplotlib is not installed (pip install 'edm_sampler[plot]')"
    models = list(dict.fromkeys(r.model for r in rows))
    fig = Figure(figsize=(4.8 * len(models) + 2.5, 4.2), layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    for ax, model in zip(axes, models):
        metric = PRIMARY[model]
        series = [r for r in rows if r.model == model and r.metric == metric and r.sampler != FLOOR]
        for i, key in enumerate(dict.fromkeys((r.sampler, r.schedule) for r in series)):
            points = sorted((r.nfe, r.value) for r in series if (r.sampler, r.schedule) == key)
            # 10 colours cycle; 7 markers and 3 line styles keep every line distinct
            style = {"marker": "osv^D<>"[i % 7], "linestyle": ("-", "--", ":")[i // 10 % 3]}
            ax.plot(*zip(*points), label=key[0] if key[1] == "edm" else "/".join(key), **style)
        for r in rows:
            if r.model == model and r.sampler == FLOOR and r.metric == metric:
                ax.axhline(r.value, color="gray", linestyle=":", label=FLOOR_LEGEND[model])
        ax.set(xscale="log", yscale="log", title=model, xlabel="NFE", ylabel=metric)
        ax.set_xticks(sorted({r.budget for r in series}), minor=False)  # the budgets: actual NFEs may be 1 less
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    legend = {}  # label -> handle, over every panel (each floor is drawn in its own model's panel only)
    for ax in axes:
        legend.update((label, handle) for handle, label in zip(*ax.get_legend_handles_labels()))
    fig.legend(list(legend.values()), list(legend), loc="outside right upper", fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return f"wrote {path}"


# -- command line --------------------------------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def parse_samplers(text: str) -> tuple[str, ...]:
    valid = deterministic_samplers()
    bad = [n for n in _names(text) if n not in valid]
    if bad or not _names(text):
        raise argparse.ArgumentTypeError(
            f"unknown or stochastic-only sampler(s) {', '.join(bad) or text!r}; valid: {', '.join(valid)}"
        )
    return _names(text)


def parse_schedules(text: str) -> tuple[str, ...]:
    valid = schedule_names()
    bad = [n for n in _names(text) if n not in valid]
    if bad or not _names(text):
        raise argparse.ArgumentTypeError(f"unknown schedule(s) {', '.join(bad) or text!r}; valid: {', '.join(valid)}")
    return _names(text)


def parse_models(text: str) -> tuple[str, ...]:
    bad = [n for n in _names(text) if n not in MODELS]
    if bad or not _names(text):
        raise argparse.ArgumentTypeError(f"unknown model(s) {', '.join(bad) or text!r}; valid: {', '.join(MODELS)}")
    return _names(text)


def parse_budgets(text: str) -> tuple[int, ...]:
    try:
        budgets = tuple(int(s) for s in _names(text))
    except ValueError:
        budgets = ()
    if not budgets or min(budgets) < 1:
        raise argparse.ArgumentTypeError(f"--nfe takes positive integers, comma-separated (e.g. 5,10,20), got {text!r}")
    return tuple(sorted(set(budgets)))


def add_eval_parser(commands) -> argparse.ArgumentParser:
    """Register ``eval`` on an argparse subcommand group (``parser.add_subparsers()``)."""
    p = commands.add_parser(
        "eval",
        help="quality versus NFE of every sampler on models with exact answers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--samplers", type=parse_samplers, help="comma-separated (default: every deterministic sampler)")
    p.add_argument("--nfe", type=parse_budgets, help="NFE budgets (default 5,10,20,35,80; --quick: 5,10)")
    p.add_argument(
        "--models", type=parse_models, help="gaussian,gmm,glyphs,glyphs_unet (default: all; --quick: gaussian)"
    )
    p.add_argument("--schedules", type=parse_schedules, default=("edm",), help="discretizations (default: edm)")
    p.add_argument("--csv", default="eval.csv", help="CSV output, one row per measurement (default: eval.csv)")
    p.add_argument("--plot", help="PNG output: error vs NFE, log-log (needs matplotlib)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and the exact draws (default: 0)")
    p.add_argument("--quick", action="store_true", help="tiny: gaussian only, small batches, NFE 5,10")
    p.set_defaults(func=run)
    return p


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """The ``eval`` command: evaluate, print the tables, write the CSV (and the plot)."""
    models = args.models or (("gaussian",) if args.quick else MODELS)
    budgets = args.nfe or (QUICK_NFE if args.quick else DEFAULT_NFE)
    samplers = args.samplers or tuple(deterministic_samplers())
    start = time.perf_counter()
    sizes = QUICK_SIZES if args.quick else Sizes()
    rows = evaluate(models, samplers, args.schedules, budgets, args.seed, sizes, progress=_to_stderr)
    seconds = time.perf_counter() - start
    print(markdown_tables(rows))
    print(best_table(rows))
    print(f"\nsamplers run deterministically (s_churn=0, eta=0); seed {args.seed}; {seconds:.1f} s")
    write_csv(rows, args.csv)
    print(f"wrote {args.csv}")
    if args.plot:
        print(plot(rows, args.plot))
    return 0
