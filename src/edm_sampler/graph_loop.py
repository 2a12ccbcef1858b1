"""Compiled sampling: ``graph_loop=True`` runs the whole call as one MindSpore graph, for every sampler; in graph mode
a step-by-step call runs each step as one graph (:class:`StepGraph`), the sampler's step compiled with its model
evaluations.

A sampler's ``plan`` runs on the host first, for every step, from the same float64 schedule and drawing the same
noise in the same order as the step-by-step call (Brownian increments included). Its per-step dicts are stacked into
arrays: a coefficient becomes an ``(N,)`` array, a tuple of them ``(N, K)``, a noise draw ``(N, *x.shape)`` (zeros
where a step draws nothing), and a :class:`~edm_sampler.samplers.base.Level` the host-computed preconditioning at
that noise level (``c_in, c_skip, c_out`` as ``(N,)``, ``c_noise`` as ``(N, model batch)``) and the guidance scale.
The compiled loop is one ``while`` over a tensor step index (never an unrolled ``for``: compile time does not grow
with the step count) that rebuilds step ``i``'s dict from row ``i`` of every array and calls the sampler's own
``step`` with itself as ``m``: ``m.denoise(x, level)`` is the guided network (network, preconditioning and guider
compiled into the same graph), ``m.report`` does nothing. Results equal the step-by-step call to float32 rounding
(graph kernels may round differently).

It needs a network bound with :meth:`Denoiser.bind` that is an ``nn.Cell``, a built-in guider, no callback, no
``model_kwargs`` and ``check_finite`` other than ``"step"``; ``graph_loop=True`` refuses anything else with the
reason, and graph mode's step-by-step call then runs its steps eagerly. The compiled cells are cached on the bound
denoiser, per step function, guider and dict layout; MindSpore compiles once per input shapes. The per-step arrays
have power-of-two rows (at least 8; 1024 for :class:`StepGraph`, whose noise comes per step), so a new step count
compiles only when it crosses into another size, and later calls with new values do not compile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from .denoisers import BoundDenoiser, c_noise_tensor
from .guided_variants import guided_network, has_variants, packed_scale, variant_signature
from .guiders import Guider
from .model_path import GuidedNetwork, ModelOutputError, describe, first_line
from .samplers.base import Level

# the kinds of a plan entry, and how many arrays each becomes
LEVEL, NOISE, NUMBER, NUMBERS, DICT, FLAG = "level", "noise", "number", "numbers", "dict", "flag"
LEVEL_ARRAYS = 5  # c_in, c_skip, c_out, c_noise, guidance scale


class CompiledSteps(nn.Cell):
    """A sampler's ``step`` around one guided network, fed from the host-prepared per-step arrays: the ``m`` of a
    compiled step. :class:`WholeLoop` runs every step in one launch, :class:`StepGraph` one step per launch."""

    noise_per_step = False  # noise draws: rows of stacked arrays, or the step's own tensors (``noises``)

    def __init__(self, guided: GuidedNetwork, step, layout: tuple, limit: nn.Cell | None = None):
        super().__init__()
        self.guided = guided
        self.step_fn = step
        self.layout = layout
        self.step_limit = nn.Identity() if limit is None else limit

    def limit(self, denoised):
        """The sampler's step limit (``m.limit`` of a compiled step)."""
        return self.step_limit(denoised)

    def denoise(self, x, level):
        """One guided evaluation at a level's preconditioning: ``m.denoise`` of a compiled step."""
        c_in, c_skip, c_out, c_noise, scale, cond = level
        return self.guided(x, c_in, c_skip, c_out, c_noise, cond, scale)

    # ``m.denoise_pp`` of a compiled CFG++ step: the same call, whose guided network (built ``with_uncond``) returns
    # ``(guided, unconditional)``
    denoise_pp = denoise

    def report(self, x, denoised):
        """No callback runs inside the graph (calls with one are refused)."""

    def entries(self, layout, arrays, j, i, cond, noises, k):
        """Step ``i``'s dict for ``layout`` from ``arrays[j:]`` (and ``noises[k:]``); returns it and the indices of
        the next array and noise."""
        c = {}
        for key, kind, inner in layout:
            if kind == DICT:
                value, j, k = self.entries(inner, arrays, j, i, cond, noises, k)
            elif kind == LEVEL:
                value = (arrays[j][i], arrays[j + 1][i], arrays[j + 2][i], arrays[j + 3][i], arrays[j + 4][i], cond)
                j = j + LEVEL_ARRAYS
            elif kind == FLAG:  # the same on every step: a constant, so its branch is decided while compiling
                value = inner
            elif kind == NOISE and self.noise_per_step:
                value = noises[k]
                k = k + 1
            else:
                value = arrays[j][i]
                j = j + 1
            c[key] = value
        return c, j, k


class WholeLoop(CompiledSteps):
    """The whole sampling loop as one graph (``graph_loop=True``)."""

    @ms.jit
    def construct(self, x, state, arrays, cond, n):
        i = ops.zeros((), ms.int32)
        while i < n:
            c, _, _ = self.entries(self.layout, arrays, 0, i, cond, (), 0)
            x, state = self.step_fn(self, x, state, c)
            i = i + 1
        return x


class StepGraph(CompiledSteps):
    """Step ``i`` (its tensor math and its model evaluations) as one graph: graph mode, step by step. Its noise
    comes as the step's own tensors and its coefficient arrays have a fixed number of rows, so no input shape
    depends on the step count."""

    noise_per_step = True

    @ms.jit
    def construct(self, x, state, arrays, cond, noises, i):
        c, _, _ = self.entries(self.layout, arrays, 0, i, cond, noises, 0)
        return self.step_fn(self, x, state, c)


def unsupported(denoiser, guider, callback, model_kwargs, check_finite) -> list[str]:
    """What keeps a call from running its steps as compiled graphs (nothing: an empty list)."""
    problems = []
    if not (isinstance(denoiser, BoundDenoiser) and isinstance(denoiser.network, nn.Cell)):
        problems.append(f"the denoiser must be Denoiser(...).bind(net) with an nn.Cell net, got {denoiser!r}")
    if not isinstance(guider, Guider):
        problems.append(f"the guider must be a built-in Guider, got {type(guider).__name__}")
    if callback is not None:
        problems.append("a callback cannot run inside the graph")
    if model_kwargs:
        problems.append("model_kwargs are not supported")
    if check_finite == "step":
        problems.append("check_finite='step' needs the step-by-step loop")
    if isinstance(guider, Guider) and guider.stateful:
        problems.append(
            f"the guider {guider!r} carries state from one evaluation to the next (APG's momentum), which a compiled "
            "graph does not hold (sample with graph_loop=False: graph mode then runs its steps eagerly)"
        )
    return problems


def check_supported(denoiser, guider, callback, model_kwargs, check_finite) -> None:
    """Raise a ValueError naming what keeps a call from running as one graph."""
    problems = unsupported(denoiser, guider, callback, model_kwargs, check_finite)
    if problems:
        raise ValueError("graph_loop=True: " + "; ".join(problems))


def steps_compile(run) -> bool:
    """Whether a step-by-step call runs each step as one compiled graph: in graph mode, when the call allows it."""
    if ms.get_context("mode") != ms.GRAPH_MODE:
        return False
    return not unsupported(run.denoiser, run.guider, run.callback, run.model_kwargs, run.check_finite)


def _kind(key: str, values: list) -> str:
    if all(isinstance(v, Level) for v in values):
        return LEVEL
    if all(v is None or isinstance(v, Tensor) for v in values):  # None: no draw on that step
        return NOISE
    if all(isinstance(v, dict) for v in values):
        return DICT
    if all(isinstance(v, tuple) for v in values):
        return NUMBERS
    if all(isinstance(v, (bool, int, float)) and not isinstance(v, Level) for v in values):
        return NUMBER
    raise TypeError(f"graph_loop=True: the plan entry {key!r} mixes kinds across steps: {values!r}")


STEP_GRAPH_ROWS = 1024  # StepGraph's coefficient arrays: 1024 rows (a few KiB), so step counts up to it share one graph


def padded_steps(n: int) -> int:
    """The rows the per-step arrays get for ``n`` steps: a power of two, at least 8. A compiled graph depends on its
    input shapes, so a new step count in the same bucket does not compile again (the rows past ``n`` never run)."""
    return max(8, 1 << (n - 1).bit_length())


class Packer:
    """Turns a call's per-step plan dicts into the loop's layout and arrays (host side, numpy), with
    :func:`padded_steps` rows."""

    def __init__(
        self, denoiser: BoundDenoiser, guider: Guider, x_shape: tuple, model_batch: int, steps: int, stack: bool
    ):
        self.denoiser, self.guider, self.x_shape, self.model_batch = denoiser, guider, x_shape, model_batch
        self.stack = stack  # noise as stacked arrays (the whole loop) or kept per step (StepGraph)
        self.rows = padded_steps(steps) if stack else max(STEP_GRAPH_ROWS, padded_steps(steps))
        self.arrays: list[Tensor] = []
        self.noises: list[list] = []  # per noise entry, its per-step tensors (stack=False)
        self.nfe = 0
        self.model_rows = 0  # the rows of every model batch evaluated (CFG: 2 B; a guidance interval's outside: B)

    def add(self, values: np.ndarray, to_tensor=None) -> None:
        """One per-step array, zero rows appended up to ``self.rows``."""
        values = np.asarray(values)
        padding = np.zeros((self.rows - len(values),) + values.shape[1:], values.dtype)
        values = np.concatenate([values, padding])
        self.arrays.append(Tensor(values.astype(np.float32)) if to_tensor is None else to_tensor(values))

    def pack(self, plans: list[dict], where: str = "") -> tuple:
        keys = list(plans[0])
        for i, plan in enumerate(plans):
            if list(plan) != keys:
                raise ValueError(f"graph_loop=True: step {i}'s plan{where} has keys {list(plan)}, step 0's {keys}")
        layout = []
        for key in keys:
            values = [plan[key] for plan in plans]
            kind = _kind(f"{where}{key}", values)
            inner = self.pack(values, f"{where}{key}.") if kind == DICT else None
            if kind == NUMBER and all(isinstance(v, bool) for v in values) and len(set(values)) == 1:
                kind, inner = FLAG, values[0]  # graph control flow costs ~0.5 ms a branch per step on this CPU
            elif kind == LEVEL:
                self.levels(values)
            elif kind == NOISE:
                self.noise(values)
            elif kind in (NUMBER, NUMBERS):
                self.add(np.array(values, dtype=np.float64))
            layout.append((key, kind, inner))
        return tuple(layout)

    def levels(self, values: list) -> None:
        """The preconditioning and guidance scale at each step's level (placeholders where it is not evaluated)."""
        evaluated = [not np.isnan(v) for v in values]  # NOT_EVALUATED: a placeholder level
        levels = [float(v) if e else 1.0 for v, e in zip(values, evaluated)]
        # the model batch of step i's evaluation (its guider variant: 0 rows for one without a model call)
        batch = self.x_shape[0]
        rows = [batch * self.guider.at(v, i).copies if e else 0 for i, (v, e) in enumerate(zip(levels, evaluated))]
        self.nfe += sum(r > 0 for r in rows)
        self.model_rows += sum(rows)
        # rounded to float32 first, as the step-by-step path rounds sigma
        sigma = np.array(levels, np.float32).astype(np.float64)
        c_skip, c_out, c_in, c_noise = self.denoiser.denoiser.host_scalings(sigma)
        for c in (c_in, c_skip, c_out):
            self.add(c)
        dtype = self.denoiser.dtype
        self.add(np.repeat(c_noise[:, None], self.model_batch, axis=1), lambda a: c_noise_tensor(a, dtype))
        if has_variants(self.guider):  # [variant index, its scale], decided from the unrounded level as eagerly
            scales = [packed_scale(self.guider, v, i, self.x_shape) for i, v in enumerate(levels)]
        else:
            scales = [self.guider.scale_at(float(s), self.x_shape) for s in sigma]
        self.add(np.array(scales, dtype=np.float64))

    def noise(self, values: list) -> None:
        if all(v is None for v in values):  # no step draws: a placeholder that broadcasts against x
            if self.stack:
                self.add(np.zeros((len(values),) + (1,) * len(self.x_shape), np.float32))
            else:
                self.noises.append([Tensor(np.zeros((1,) * len(self.x_shape), np.float32))] * len(values))
            return
        zeros = np.zeros(self.x_shape, np.float32)
        if self.stack:
            self.add(np.stack([zeros if v is None else v.asnumpy() for v in values]))
        else:
            placeholder = Tensor(zeros)
            self.noises.append([placeholder if v is None else v for v in values])

    def step_noises(self, i: int) -> tuple:
        """Step ``i``'s noise tensors, in layout order (``stack=False``)."""
        return tuple(column[i] for column in self.noises)


def compiled_cell(kind: type, sampler: Any, layout: tuple, denoiser: BoundDenoiser, guider: Guider) -> CompiledSteps:
    """The compiled loop or step for this sampler's step function and step limit, guider type, layout and network,
    cached on the bound denoiser (so later calls do not compile)."""
    step, limit, with_uncond = sampler.step, sampler.step_limit, sampler.needs_uncond
    uncond = guider.uncond if with_uncond else None
    # a guider with variants (guided_variants): one evaluation per variant, hence its signature
    key = (kind, step, limit, type(guider).expand, guider.combine, uncond, layout, variant_signature(guider))
    cells = denoiser.__dict__.setdefault("_loop_cells", {})
    if key not in cells:
        guided = guided_network(denoiser.network, guider, denoiser.dtype, with_uncond)
        cells[key] = kind(guided, step, layout, limit)
    return cells[key]


def _packed(sampler: Any, run: Any, x: Tensor, stack: bool) -> tuple[tuple, Packer]:
    """The call's layout and its packed arrays; the NFE they hold is added to the run."""
    plans = list(sampler.plan(run.param, run.sigmas, run.noise))  # the same draws, in the same order
    packer = Packer(run.denoiser, run.guider, tuple(x.shape), run.model.model_batch, run.num_steps, stack)
    layout = packer.pack(plans)
    run.nfe += packer.nfe
    run.model_rows += packer.model_rows
    return layout, packer


def _mutable(state: tuple) -> tuple:
    return ms.mutable(state) if state else state


def _failure(err: Exception, what: str, run: Any, x: Tensor) -> ModelOutputError:
    denoiser, guider = run.denoiser, run.guider
    net_in = describe(denoiser.network_input(guider.expand(x), 1.0))
    return ModelOutputError(
        f"{what} failed: {type(err).__name__}: {first_line(err)}\n"
        f"  the network is called as network {type(denoiser.network).__name__}({net_in}, "
        f"<c_noise>, {describe(run.model.model_cond)})"
    )


def sample_loop(sampler: Any, run: Any, x: Tensor) -> Tensor:
    """Run the whole schedule of ``run`` as one graph with ``sampler``'s plan and step."""
    check_supported(run.denoiser, run.guider, run.callback, run.model_kwargs, run.check_finite)
    layout, packer = _packed(sampler, run, x, stack=True)
    # ms.mutable: the tuple is a graph input, not a constant (new values would recompile)
    arrays = ms.mutable(tuple(packer.arrays))
    loop = compiled_cell(WholeLoop, sampler, layout, run.denoiser, run.guider)
    try:
        steps = Tensor(run.num_steps, ms.int32)
        return loop(x, _mutable(sampler.initial_state(x)), arrays, run.model.model_cond, steps)
    except Exception as err:
        raise _failure(err, "the compiled sampling loop (graph_loop=True)", run, x) from err


def sample_steps(sampler: Any, run: Any, x: Tensor) -> Tensor:
    """Graph mode, step by step: one launch per step, of the step's tensor math compiled with its model evaluations
    (so nothing but that launch runs outside the network). The plan is prepared for the whole call first, as for
    the whole loop; the progress bar advances per step."""
    layout, packer = _packed(sampler, run, x, stack=False)
    arrays = ms.mutable(tuple(packer.arrays))
    cell = compiled_cell(StepGraph, sampler, layout, run.denoiser, run.guider)
    state = sampler.initial_state(x)
    cond = run.model.model_cond
    for i, sigma, _ in run.steps():
        try:
            noises = packer.step_noises(i)
            x, state = cell(x, _mutable(state), arrays, cond, _mutable(noises), Tensor(i, ms.int32))
        except Exception as err:
            # the model on its own, step by step: its own errors (wrong output, a missing key...) are named there
            run.model(x, sigma, i)
            raise _failure(err, f"step {i} (sigma={sigma:.6g}) compiled with the network", run, x) from err
    return x
