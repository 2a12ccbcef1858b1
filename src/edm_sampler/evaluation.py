"""Quality versus NFE: every sampler at several model-evaluation budgets, on models whose answer is known exactly.

``edm-sampler eval`` runs each sampler deterministically, so the errors are ODE (discretization) errors:
``s_churn=0`` for the EDM family, ``eta=0`` for the ancestral and SDE samplers (ER-SDE, SEEDS and DDIM included),
``tau=0`` for SA-Solver and ``gamma=0`` for TCD. Left out: samplers without a deterministic setting (LCM, DDPM,
Restart, whose restarts are noise), ``dpm_adaptive``, whose NFE no step count sets, and the CFG++ samplers, which are
their plain twins without guidance and solve another guided ODE than the references with it. Each method runs once:
a short name that builds the same sampler as another (ComfyUI's ``euler`` is ``euler_edm``, ``dpmpp_sde_gpu`` is
``dpmpp_sde``) is left out, one with its own defaults (``uni_pc``, ``dpmpp_2m_sde_heun``) is in. For each budget it
uses the most steps whose NFE does not exceed it. The models:

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
* ``gaussian_flow``, ``gmm_flow``, ``glyphs_flow``: the same data and metrics as flow-matching models (the exact
  denoisers under ``x = (1 - sigma) x0 + sigma eps``), sampled from sigma = 1, where the state is the unit noise itself.

Each model runs on the schedules of its parametrization: VE models on ``edm`` (sigma 80 down to 0.002), flow models on
``flow_match`` (diffusers' flow-matching sigmas, shift 1: linear from 1 to 0.001), ``flow_match_shift3`` (SD3's shift
3) and ``flow_match_karras`` (Karras rho = 7 spacing over the same range); ``glyphs_flow`` only on
``flow_match_shift3``, the flow main job's schedule (each schedule costs as much as the VE glyphs). ``--schedules``
replaces the defaults of the models whose kind it names. When a VE model and its flow twin are both evaluated, a last
table compares them: the same data and noise, each sampler at the same NFE budgets, as a VE model and as a flow model.

A table after the best samplers asks, for each exact model, how few evaluations reach the error of EDM's Heun at 35 NFE
(Karras et al.'s headline setting, 18 steps; its best schedule when the model runs on several): the fewest NFE from
which some sampler and schedule stays at or below that error (or the model's floor) at every budget up to 35, and which
(the goal is 15 NFE or fewer); and, apart, the fewest NFE at or below it at all, which can be a lucky crossing of an
error through 0.
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
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from mindspore import Tensor

from .discretization import Discretization
from .guiders import VanillaCFG
from .models.analytic import GaussianDenoiser, GaussianMixtureDenoiser
from .models.glyphs import NUM_CLASSES, GlyphDenoiser
from .noise import per_sample_generators, randn
from .registry import describe, instantiate_from_config, known_targets, preset, resolve
from .samplers import BaseDiffusionSampler

if TYPE_CHECKING:  # imported where it is used: loading the trained network is for that task alone
    from .models.trained_glyphs import TrainedGlyphModel

FLOW_SUFFIX = "_flow"  # a VE model's flow-matching twin: the same data under x = (1 - sigma) x0 + sigma eps
VE_MODELS = ("gaussian", "gmm", "glyphs", "glyphs_unet")
FLOW_MODELS = ("gaussian_flow", "gmm_flow", "glyphs_flow")
MODELS = VE_MODELS + FLOW_MODELS
QUICK_MODELS = ("gaussian", "gaussian_flow")
STOCHASTIC_ONLY = ("lcm", "ddpm", "restart")  # their noise is the method: there is no deterministic setting
ADAPTIVE = ("dpm_adaptive",)  # its NFE follows the model's outputs, not a step count: no budget holds it
TWO_MODELS = ("pangu_euler_edm",)  # PanGu-Draw's sampler needs its high-timestep expert as well
# Dense at few NFE, where the fewest-NFE table looks for the first budget that reaches Heun at 35.
DEFAULT_NFE = (3, 4, 5, 6, 8, 10, 12, 15, 20, 35, 80)
QUICK_NFE = (5, 10)
# Schedules with parameters, by the names the eval gives them (any registered discretization that needs no parameters
# is available by its short name too).
SCHEDULE_VARIANTS = {
    "flow_match_shift3": {"target": "flow_match", "params": {"shift": 3.0}},
    "flow_match_karras": {"target": "flow_match", "params": {"use_karras_sigmas": True}},
}
# The schedules each kind of model runs on unless --schedules names some of its kind.
DEFAULT_SCHEDULES = {"ve": ("edm",), "flow": ("flow_match", "flow_match_shift3", "flow_match_karras")}
# Models with their own default: the flow glyphs cost as much per schedule as the VE glyphs (~85 s here) and converge
# to round-off on any of them, so they run on one, the schedule of the flow main job (glyphs_flow_heun_cfg.yaml).
MODEL_SCHEDULES = {"glyphs_flow": ("flow_match_shift3",)}
# The metric of each kind of data used by the plot, "best sampler per NFE budget" and the parametrization comparison
# (lower is better); a flow model uses its VE twin's.
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
# The fewest-NFE table: the error to reach (EDM's Heun at 35 NFE), on the models with exact answers, and the goal.
REFERENCE_SAMPLER, REFERENCE_BUDGET = "heun_edm", 35
EXACT_MODELS = ("gaussian", "gmm", "glyphs", "gaussian_flow", "gmm_flow", "glyphs_flow")
GOAL_NFE = 15


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


def runnable_samplers() -> list[str]:
    """Short names (presets included) of every registered sampler the eval can run: deterministic, with an NFE a step
    count sets, one model, and not CFG++ (see the module docstring)."""
    left_out = STOCHASTIC_ONLY + ADAPTIVE + TWO_MODELS
    return [
        name
        for name in known_targets()
        if _is_sampler(resolve(name)) and name not in left_out and not getattr(resolve(name), "needs_uncond", False)
    ]


def deterministic_samplers() -> list[str]:
    """:func:`runnable_samplers`, each method once: a name that builds the same deterministic sampler as another (a
    preset that only renames a class, such as ComfyUI's ``euler`` or the ``_gpu`` twins) is left out, in favour of
    the built-in short name."""
    names = runnable_samplers()
    first: dict[str, str] = {}  # the deterministic sampler's repr -> the name kept for it
    for name in sorted(names, key=lambda n: preset(n) is not None):  # built-in names before presets
        first.setdefault(repr(build_sampler(name, "edm")), name)
    kept = set(first.values())
    return [name for name in names if name in kept]


def schedule_names() -> list[str]:
    """Short names of every registered discretization that can be built without parameters, and the eval's named
    variants (:data:`SCHEDULE_VARIANTS`)."""
    return [name for name in known_targets() if _is_default_schedule(resolve(name))] + list(SCHEDULE_VARIANTS)


def data_of(model: str) -> str:
    """The data a model samples, named by its VE model: ``gmm_flow`` -> ``gmm``; a VE model is its own."""
    return model[: -len(FLOW_SUFFIX)] if model.endswith(FLOW_SUFFIX) else model


def model_parametrization(model: str) -> str:
    """``"flow"`` for the flow-matching twins (``*_flow``), ``"ve"`` for the others."""
    return "flow" if model.endswith(FLOW_SUFFIX) else "ve"


def primary(model: str) -> str:
    """The metric of ``model`` that the plot, the best-sampler table and the comparison use (lower is better)."""
    return PRIMARY[data_of(model)]


def schedule_config(schedule: str) -> dict:
    """The discretization config of an eval schedule name: a named variant, or a registered short name."""
    return SCHEDULE_VARIANTS.get(schedule, {"target": schedule})


@functools.lru_cache(maxsize=None)
def schedule_parametrization(schedule: str) -> str:
    """``"flow"`` for a flow-matching schedule (sigmas in (0, 1], declared by the discretization), else ``"ve"``."""
    return getattr(instantiate_from_config(schedule_config(schedule)), "parametrization", "ve")


def schedules_for(model: str, schedules: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The schedules ``model`` runs on: those of ``schedules`` of its parametrization, or when there are none (or
    ``schedules`` is None) its default (:data:`MODEL_SCHEDULES`, else its kind's :data:`DEFAULT_SCHEDULES`). A flow
    model cannot use a VE schedule (sigma > 1 is refused) and a VE model started at sigma = 1 is not sampling from
    noise, so each kind keeps to its own."""
    kind = model_parametrization(model)
    fitting = tuple(s for s in schedules or () if schedule_parametrization(s) == kind)
    return fitting or MODEL_SCHEDULES.get(model, DEFAULT_SCHEDULES[kind])


def _is_sampler(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, BaseDiffusionSampler)


def _is_default_schedule(obj: Any) -> bool:
    if not (inspect.isclass(obj) and issubclass(obj, Discretization)):
        return False
    return all(p.default is not p.empty for p in inspect.signature(obj).parameters.values())


def build_sampler(name: str, schedule: str, guider: Any = None) -> BaseDiffusionSampler:
    """The sampler ``name`` (a preset with its defaults) on ``schedule``, its noise switched off (``s_churn``,
    ``eta``, ``tau``, ``gamma`` 0)."""
    ode = {key: 0.0 for key in ("s_churn", "eta", "tau", "gamma") if key in inspect.signature(resolve(name)).parameters}
    params = dict(ode, discretization_config=schedule_config(schedule), guider_config=guider)
    return instantiate_from_config({"target": name, "params": params})


def _probe(x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
    return x * 0.5


def nfe_of(name: str, schedule: str, num_steps: int) -> int:
    """The NFE of one call with ``num_steps`` steps, measured as ``sampler.last_nfe`` on a one-number probe."""
    sampler = build_sampler(name, schedule)
    sampler(_probe, Tensor(np.ones((1, 1), np.float32)), num_steps=num_steps, generator=0, disable=True)
    assert sampler.last_nfe is not None  # set by the call
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
    parametrization = "ve"  # the model's state; the flow twins set "flow"

    def __init__(self, seed: int, sizes: Sizes):
        self.model = GaussianDenoiser(0.5, parametrization=self.parametrization)
        self.seed, self.shape = seed, (sizes.gaussian_batch, sizes.gaussian_dim)
        self.noise = randn(self.shape, per_sample_generators(seed, self.shape[0]))

    def __call__(self, sampler: BaseDiffusionSampler, steps: int) -> dict[str, float]:
        gens = per_sample_generators(self.seed, self.shape[0])
        out = sampler(self.model, self.noise, num_steps=steps, generator=gens, disable=True).asnumpy()
        sigmas = sampler.get_sigmas(steps)
        start = self.noise.asnumpy() * sampler.initial_scale(float(sigmas[0]), self.parametrization)
        exact = self.model.exact_solution(start, float(sigmas[0]), float(sigmas[-1]))
        error, scale = np.abs(out - exact), np.sqrt(np.mean(exact**2))
        return {"max_rel_error": error.max() / scale, "rms_rel_error": np.sqrt(np.mean(error**2)) / scale}


class MixtureTask:
    """Sliced W1 distance between the samples of the 8-mode 2-D mixture and as many exact draws."""

    guider = None
    parametrization = "ve"

    def __init__(self, seed: int, sizes: Sizes):
        self.model = GaussianMixtureDenoiser(parametrization=self.parametrization)
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

    parametrization = "ve"
    model: GlyphDenoiser | TrainedGlyphModel  # the analytic glyph model, or the trained UNet (TrainedGlyphTask)

    def __init__(self, seed: int, sizes: Sizes):
        self.model = GlyphDenoiser(parametrization=self.parametrization)
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


class GaussianFlowTask(GaussianTask):
    """:class:`GaussianTask` on the flow-matching Gaussian: the exact solution starts from the noise at sigma = 1."""

    parametrization = "flow"


class MixtureFlowTask(MixtureTask):
    """:class:`MixtureTask` on the flow-matching mixture (the same exact draws and floor)."""

    parametrization = "flow"


class GlyphFlowTask(GlyphTask):
    """:class:`GlyphTask` on the flow-matching glyph model, with CFG."""

    parametrization = "flow"


TASKS = {
    "gaussian": GaussianTask,
    "gmm": MixtureTask,
    "glyphs": GlyphTask,
    "glyphs_unet": TrainedGlyphTask,
    "gaussian_flow": GaussianFlowTask,
    "gmm_flow": MixtureFlowTask,
    "glyphs_flow": GlyphFlowTask,
}


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
        assert sampler.last_nfe is not None  # set by the call
        rows += [Row(model, name, schedule, budget, steps, sampler.last_nfe, m, float(v)) for m, v in metrics.items()]
    return rows


def evaluate(
    models: tuple[str, ...],
    samplers: tuple[str, ...],
    schedules: tuple[str, ...] | None = None,
    budgets: tuple[int, ...] = DEFAULT_NFE,
    seed: int = 0,
    sizes: Sizes = Sizes(),
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Every (model, sampler, schedule, budget) of the grid, as CSV-ready rows; ``progress`` receives status lines.

    Each model runs on :func:`schedules_for` ``(model, schedules)``: the given schedules of its parametrization, else
    its kind's defaults (``None``: the defaults for every model).
    """
    rows = []
    for model in models:
        if progress:
            progress(f"evaluating {model} ...")
        start = time.perf_counter()
        task = TASKS[model](seed, sizes)
        if hasattr(task, "floor"):
            rows += [Row(model, FLOOR, "-", 0, 0, 0, m, v) for m, v in task.floor().items()]
        for name in samplers:
            if model_parametrization(model) not in resolve(name).parametrizations:
                continue  # a VE-only method (PLMS, PNDM, iPNDM) on a flow model
            for schedule in schedules_for(model, schedules):
                rows += evaluate_sampler(model, task, name, schedule, budgets)
        if progress:
            progress(f"  {model}: {time.perf_counter() - start:.1f} s")
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
            note, average, worst = FLOOR_NOTES[data_of(model)]
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
        if r.metric == primary(r.model):
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


@dataclass(frozen=True)
class Fewest:
    """How few NFE reach the reference (EDM's Heun at 35 NFE) on one model. ``target`` is the reference's row (its
    best schedule). ``reached`` is the row with the fewest NFE from which some sampler and schedule stays at or below
    the target's error (or the model's floor) at every budget of the grid up to the reference's, the lowest such row,
    and ``samplers`` every sampler (schedule) that does so from that NFE. ``first`` is the row with the fewest NFE at
    or below the target at all: it can be a lucky crossing (on the Gaussian each sampler's error is one number whose
    sign can change between two step counts, passing near 0), which ``reached`` does not count. None: no such row."""

    model: str
    target: Row
    reached: Row | None
    samplers: str
    first: Row | None

    @property
    def met_goal(self) -> bool:
        return self.reached is not None and self.reached.nfe <= GOAL_NFE


def fewest_nfe(rows: list[Row], rtol: float = 1e-3) -> list[Fewest]:
    """For each exact model with a :data:`REFERENCE_SAMPLER` row at :data:`REFERENCE_BUDGET` (on several schedules:
    the lowest): the fewest NFE (as measured, at most the budget) from which some sampler and schedule stays at or
    below that error. At or below means at most the target's value (within ``rtol`` and :data:`TIE_ATOL`, as ties are
    judged in :func:`best_per_budget`) or at most the model's floor."""
    out = []
    for model in dict.fromkeys(r.model for r in rows):
        metric = primary(model)
        mine = [r for r in rows if r.model == model and r.metric == metric and r.sampler != FLOOR]
        references = [r for r in mine if (r.sampler, r.budget) == (REFERENCE_SAMPLER, REFERENCE_BUDGET)]
        if model not in EXACT_MODELS or not references:
            continue
        target = min(references, key=lambda r: r.value)
        floor = max([r.value for r in rows if (r.model, r.sampler, r.metric) == (model, FLOOR, metric)] or [0.0])
        limit = max(target.value * (1 + rtol) + TIE_ATOL.get(metric, 0.0), floor)
        series: dict[tuple[str, str], list[Row]] = {}  # (sampler, schedule) -> its rows up to the reference budget
        for r in sorted(mine, key=lambda r: r.budget):
            if r.budget <= REFERENCE_BUDGET:
                series.setdefault((r.sampler, r.schedule), []).append(r)
        starts = []  # per series, the first row from which every row is at or below the limit
        for runs in series.values():
            k = len(runs)
            while k > 0 and runs[k - 1].value <= limit:
                k -= 1
            if k < len(runs):
                starts.append(runs[k])
        first = min((r for r in mine if r.value <= limit), key=lambda r: (r.nfe, r.value), default=None)
        if not starts:  # only when the reference itself is not finite
            out.append(Fewest(model, target, None, "", first))
            continue
        starts.sort(key=lambda r: (r.nfe, r.value))
        fewest = [r for r in starts if r.nfe == starts[0].nfe]
        names = ", ".join(f"{r.sampler} ({r.schedule})" for r in fewest)
        out.append(Fewest(model, target, fewest[0], names, first))
    return out


def fewest_nfe_table(rows: list[Row]) -> str:
    """The Markdown table of :func:`fewest_nfe` (empty when no exact model has the reference's row)."""
    found = fewest_nfe(rows)
    if not found:
        return ""
    header = (
        "model",
        "metric",
        "Heun @35 (schedule)",
        "fewest NFE",
        "sampler (schedule) at or below from there on",
        "value",
        "goal",
        "first NFE at or below (any)",
    )
    lines = [
        f"\n### fewest NFE to reach {REFERENCE_SAMPLER} at {REFERENCE_BUDGET} NFE (goal: {GOAL_NFE} or fewer)\n",
        _md_row(header),
        _md_row(["---"] * len(header)),
    ]
    for f in found:
        metric = f.target.metric
        reference = f"{_fmt(metric, f.target.value)} ({f.target.schedule})"
        first = "-" if f.first is None else f"{f.first.nfe}: {f.first.sampler} ({f.first.schedule})"
        if f.reached is None:
            lines.append(_md_row([f.model, metric, reference, "none", "-", "-", "missed", first]))
            continue
        goal = "met" if f.met_goal else "missed"
        value = _fmt(metric, f.reached.value)
        lines.append(_md_row([f.model, metric, reference, f.reached.nfe, f.samplers, value, goal, first]))
    return "\n".join(lines)


def _md_row(cells) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


# -- VE against flow on the same data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One sampler at one budget on the same data as a VE model (``ve``) and as a flow model (``flow``), each on one
    of its schedules; ``winner`` is ``"ve"``, ``"flow"`` or ``"tie"`` (within ``rtol`` / ``TIE_ATOL``, or both at or
    below the floor)."""

    data: str
    sampler: str
    ve: Row
    flow: Row
    winner: str


def parametrization_pairs(rows: list[Row]) -> list[tuple[str, str]]:
    """``(VE model, flow twin)`` for every twin pair with rows in ``rows``, in the order of the rows."""
    models = dict.fromkeys(r.model for r in rows)
    return [(m, m + FLOW_SUFFIX) for m in models if model_parametrization(m) == "ve" and m + FLOW_SUFFIX in models]


def _winner(ve: float, flow: float, metric: str, floor: float, rtol: float) -> str:
    low, high = sorted((ve, flow))
    if high <= max(low * (1 + rtol) + TIE_ATOL.get(metric, 0.0), floor):
        return "tie"
    return "ve" if ve < flow else "flow"


def compare_parametrizations(rows: list[Row], rtol: float = 1e-3) -> list[Comparison]:
    """Every (sampler, budget, VE schedule, flow schedule) measured for both models of a twin pair, on the pair's
    primary metric; values at or below the higher of the two floors (gmm) count as tied, as in
    :func:`best_per_budget`."""
    out = []
    for ve_model, flow_model in parametrization_pairs(rows):
        metric = primary(ve_model)
        mine = [r for r in rows if r.model in (ve_model, flow_model) and r.metric == metric]
        floor = max([r.value for r in mine if r.sampler == FLOOR] or [0.0])
        ve_rows = [r for r in mine if r.model == ve_model and r.sampler != FLOOR]
        flow_rows = [r for r in mine if r.model == flow_model and r.sampler != FLOOR]
        for v in ve_rows:
            for f in flow_rows:
                if (f.sampler, f.budget) == (v.sampler, v.budget):
                    winner = _winner(v.value, f.value, metric, floor, rtol)
                    out.append(Comparison(ve_model, v.sampler, v, f, winner))
    return out


def _comparison_cell(c: Comparison) -> str:
    ve, flow = _fmt(c.ve.metric, c.ve.value), _fmt(c.flow.metric, c.flow.value)
    if c.winner == "ve":
        ve = f"**{ve}**"
    elif c.winner == "flow":
        flow = f"**{flow}**"
    cell = f"{ve} / {flow} @{c.ve.nfe}"
    return cell + " (tie)" if c.winner == "tie" else cell


def comparison_table(rows: list[Row]) -> str:
    """Markdown: per data, a row per sampler (samplers with identical cells merged) and pair of schedules, a column
    per budget, cells ``ve / flow @nfe`` with the lower in bold; then how often each parametrization wins. Empty when
    no VE model was evaluated with its flow twin."""
    comparisons = compare_parametrizations(rows)
    sections = [
        _comparison_section(data, [c for c in comparisons if c.data == data])
        for data in dict.fromkeys(c.data for c in comparisons)
    ]
    return "\n".join(sections)


def _comparison_section(data: str, comparisons: list[Comparison]) -> str:
    budgets = sorted({c.ve.budget for c in comparisons})
    pairs = list(dict.fromkeys((c.ve.schedule, c.flow.schedule) for c in comparisons))
    cells = {(c.sampler, c.ve.schedule, c.flow.schedule, c.ve.budget): _comparison_cell(c) for c in comparisons}
    lines = {  # (sampler, schedule pair) -> its cells, one per budget
        (name, pair): tuple(cells.get((name, *pair, b), "-") for b in budgets)
        for name in dict.fromkeys(c.sampler for c in comparisons)
        for pair in pairs
    }
    groups: dict[tuple, list[str]] = {}  # samplers whose every cell is the same (Euler and Euler ancestral...)
    for name in dict.fromkeys(c.sampler for c in comparisons):
        groups.setdefault(tuple(lines[name, pair] for pair in pairs), []).append(name)
    out = [
        f"\n### {data} as a VE model vs {data}{FLOW_SUFFIX} (flow): {comparisons[0].ve.metric}, ve / flow at the same "
        "NFE budget (the lower in bold)\n",
        _md_row(["sampler", "ve schedule", "flow schedule", *(f"NFE<={b}" for b in budgets)]),
        _md_row(["---"] * (3 + len(budgets))),
    ]
    for names in groups.values():
        out += [_md_row([", ".join(names), *pair, *lines[names[0], pair]]) for pair in pairs]
    out.append("")
    for pair in pairs:
        winners = [c.winner for c in comparisons if (c.ve.schedule, c.flow.schedule) == pair]
        out.append(
            f"* {pair[0]} vs {pair[1]}: flow lower in {winners.count('flow')}, ve lower in {winners.count('ve')}, "
            f"tied in {winners.count('tie')} of {len(winners)} (sampler, budget) cells"
        )
    return "\n".join(out)


LINE_STYLES = ("-", "--", ":", "-.")  # one per schedule, in the order the rows name them


def plot(rows: list[Row], path: str | Path) -> str:
    """Error vs NFE, log-log: a panel per model, a line per sampler (its colour and marker) and schedule (its line
    style). VE models fill the top row and their flow twins the row below, each under its VE model with the same y
    range, so the two parametrizations of the same data compare by eye. Returns what happened, as a note."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
        from matplotlib.lines import Line2D
        from matplotlib.ticker import NullFormatter, ScalarFormatter
    except ImportError:
        return f"no plot written to {path}: matplotlib is not installed (pip install 'edm_sampler[plot]')"
    models = list(dict.fromkeys(r.model for r in rows))
    columns = list(dict.fromkeys(data_of(m) for m in models))
    kinds = [k for k in ("ve", "flow") if any(model_parametrization(m) == k for m in models)]
    samplers = list(dict.fromkeys(r.sampler for r in rows if r.sampler != FLOOR))
    schedules = list(dict.fromkeys(r.schedule for r in rows if r.sampler != FLOOR))
    colours = {name: f"C{i % 10}" for i, name in enumerate(samplers)}
    markers = {name: "osv^D<>"[i % 7] for i, name in enumerate(samplers)}  # with 10 colours: 70 distinct samplers
    # (Any: matplotlib types a line style as a literal)
    styles: dict[str, Any] = {name: LINE_STYLES[i % len(LINE_STYLES)] for i, name in enumerate(schedules)}
    fig = Figure(figsize=(4.8 * len(columns) + 2.5, 4.2 * len(kinds)), layout="constrained")
    axes = fig.subplots(len(kinds), len(columns), squeeze=False, sharey="col")
    floors = {}  # legend label -> handle
    for (k, kind), (c, data) in ((kr, dc) for kr in enumerate(kinds) for dc in enumerate(columns)):
        ax, model = axes[k][c], data if kind == "ve" else data + FLOW_SUFFIX
        if model not in models:
            ax.set_axis_off()
            continue
        metric = primary(model)
        series = [r for r in rows if r.model == model and r.metric == metric and r.sampler != FLOOR]
        for name, schedule in dict.fromkeys((r.sampler, r.schedule) for r in series):
            points = sorted((r.nfe, r.value) for r in series if (r.sampler, r.schedule) == (name, schedule))
            ax.plot(*zip(*points), color=colours[name], marker=markers[name], linestyle=styles[schedule])
        for r in rows:
            if r.model == model and r.sampler == FLOOR and r.metric == metric:
                label = FLOOR_LEGEND[data_of(model)]
                floors[label] = ax.axhline(r.value, color="gray", linestyle=":", label=label)
        title = model if len(kinds) == 1 else f"{model} ({kind})"
        ax.set(xscale="log", yscale="log", title=title, xlabel="NFE", ylabel=metric)
        ax.set_xticks(sorted({r.budget for r in series}), minor=False)  # the budgets: actual NFEs may be 1 less
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    handles = [Line2D([], [], color=colours[n], marker=markers[n], label=n) for n in samplers]
    if len(schedules) > 1:
        handles += [Line2D([], [], color="black", linestyle=styles[n], label=f"schedule {n}") for n in schedules]
    handles += list(floors.values())
    fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return f"wrote {path}"


# -- command line --------------------------------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def parse_samplers(text: str) -> tuple[str, ...]:
    valid = runnable_samplers()
    bad = [n for n in _names(text) if n not in valid]
    if bad or not _names(text):
        listing = ", ".join(map(describe, valid))  # a preset with its class and defaults
        raise argparse.ArgumentTypeError(
            f"unknown or stochastic-only sampler(s) {', '.join(bad) or text!r}; valid: {listing}"
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
    p.add_argument(
        "--samplers",
        type=parse_samplers,
        help="comma-separated short names, ComfyUI's too (default: every deterministic sampler, each method once)",
    )
    p.add_argument("--nfe", type=parse_budgets, help="NFE budgets (default 5,10,20,35,80; --quick: 5,10)")
    p.add_argument(
        "--models",
        type=parse_models,
        help=f"{','.join(MODELS)} (default: all; --quick: {','.join(QUICK_MODELS)})",
    )
    p.add_argument(
        "--schedules",
        type=parse_schedules,
        help="discretizations; each replaces the defaults of the models of its kind (default: ve models "
        f"{','.join(DEFAULT_SCHEDULES['ve'])}; flow models {','.join(DEFAULT_SCHEDULES['flow'])}; "
        + "; ".join(f"{m}: {','.join(s)}" for m, s in MODEL_SCHEDULES.items())
        + ")",
    )
    p.add_argument("--csv", default="eval.csv", help="CSV output, one row per measurement (default: eval.csv)")
    p.add_argument("--plot", help="PNG output: error vs NFE, log-log (needs matplotlib)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and the exact draws (default: 0)")
    p.add_argument(
        "--quick", action="store_true", help=f"tiny: {' and '.join(QUICK_MODELS)} only, small batches, NFE 5,10"
    )
    p.set_defaults(func=run)
    return p


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """The ``eval`` command: evaluate, print the tables, write the CSV (and the plot)."""
    models = args.models or (QUICK_MODELS if args.quick else MODELS)
    budgets = args.nfe or (QUICK_NFE if args.quick else DEFAULT_NFE)
    samplers = args.samplers or tuple(deterministic_samplers())
    start = time.perf_counter()
    sizes = QUICK_SIZES if args.quick else Sizes()
    rows = evaluate(models, samplers, args.schedules, budgets, args.seed, sizes, progress=_to_stderr)
    seconds = time.perf_counter() - start
    print(markdown_tables(rows))
    print(best_table(rows))
    fewest = fewest_nfe_table(rows)
    if fewest:
        print(fewest)
    comparison = comparison_table(rows)
    if comparison:
        print(comparison)
    print(f"\nsamplers run deterministically (s_churn, eta, tau, gamma = 0); seed {args.seed}; {seconds:.1f} s")
    write_csv(rows, args.csv)
    print(f"wrote {args.csv}")
    if args.plot:
        print(plot(rows, args.plot))
    return 0
