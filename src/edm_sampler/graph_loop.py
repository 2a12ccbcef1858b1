"""``graph_loop=True``: the whole sampling call as one compiled MindSpore graph, for every sampler.

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
``model_kwargs`` and ``check_finite`` other than ``"step"``; anything else is refused with the reason. The compiled
loop is cached on the bound denoiser, per step function, guider and dict layout; MindSpore compiles it once per input
shapes (step count included), so later calls with new values do not compile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from .denoisers import BoundDenoiser, c_noise_tensor
from .guiders import Guider
from .model_path import GuidedNetwork, ModelOutputError, describe, first_line
from .samplers.base import Level

# the kinds of a plan entry, and how many arrays each becomes
LEVEL, NOISE, NUMBER, NUMBERS, DICT = "level", "noise", "number", "numbers", "dict"
LEVEL_ARRAYS = 5  # c_in, c_skip, c_out, c_noise, guidance scale


class WholeLoop(nn.Cell):
    """The sampling loop around one guided network; ``construct`` takes the host-prepared per-step arrays."""

    def __init__(self, guided: GuidedNetwork, step, layout: tuple):
        super().__init__()
        self.guided = guided
        self.step_fn = step
        self.layout = layout

    def denoise(self, x, level):
        """One guided evaluation at a level's preconditioning: ``m.denoise`` of a compiled step."""
        c_in, c_skip, c_out, c_noise, scale, cond = level
        return self.guided(x, c_in, c_skip, c_out, c_noise, cond, scale)

    def report(self, x, denoised):
        """No callback runs inside the graph (calls with one are refused)."""

    def entries(self, layout, arrays, j, i, cond):
        """Step ``i``'s dict for ``layout`` from ``arrays[j:]``; returns it and the index of the next array."""
        c = {}
        for key, kind, inner in layout:
            if kind == DICT:
                value, j = self.entries(inner, arrays, j, i, cond)
            elif kind == LEVEL:
                value = (arrays[j][i], arrays[j + 1][i], arrays[j + 2][i], arrays[j + 3][i], arrays[j + 4][i], cond)
                j = j + LEVEL_ARRAYS
            else:
                value = arrays[j][i]
                j = j + 1
            c[key] = value
        return c, j

    @ms.jit
    def construct(self, x, state, arrays, cond):
        i = ops.zeros((), ms.int32)
        n = arrays[0].shape[0]
        while i < n:
            c, _ = self.entries(self.layout, arrays, 0, i, cond)
            x, state = self.step_fn(self, x, state, c)
            i = i + 1
        return x


def check_supported(denoiser, guider, callback, model_kwargs, check_finite) -> None:
    """Raise a ValueError naming what keeps a call from running as one graph."""
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
    if problems:
        raise ValueError("graph_loop=True: " + "; ".join(problems))


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


class Packer:
    """Turns a call's per-step plan dicts into the loop's layout and arrays (host side, numpy)."""

    def __init__(self, denoiser: BoundDenoiser, guider: Guider, x_shape: tuple, model_batch: int):
        self.denoiser, self.guider, self.x_shape, self.model_batch = denoiser, guider, x_shape, model_batch
        self.arrays: list[Tensor] = []
        self.nfe = 0

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
            if kind == LEVEL:
                self.levels(values)
            elif kind == NOISE:
                self.noise(values)
            elif kind in (NUMBER, NUMBERS):
                self.arrays.append(Tensor(np.array(values, dtype=np.float64).astype(np.float32)))
            layout.append((key, kind, inner))
        return tuple(layout)

    def levels(self, values: list) -> None:
        """The preconditioning and guidance scale at each step's level (placeholders where it is not evaluated)."""
        evaluated = [not np.isnan(v) for v in values]  # NOT_EVALUATED: a placeholder level
        self.nfe += sum(evaluated)
        # rounded to float32 first, as the step-by-step path rounds sigma
        sigma = np.array([float(v) if e else 1.0 for v, e in zip(values, evaluated)], np.float32).astype(np.float64)
        c_skip, c_out, c_in, c_noise = self.denoiser.denoiser.host_scalings(sigma)
        self.arrays += [Tensor(c.astype(np.float32)) for c in (c_in, c_skip, c_out)]
        self.arrays.append(c_noise_tensor(np.repeat(c_noise[:, None], self.model_batch, axis=1), self.denoiser.dtype))
        scales = [self.guider.scale_at(float(s), self.x_shape) for s in sigma]
        self.arrays.append(Tensor(np.array(scales, dtype=np.float64).astype(np.float32)))

    def noise(self, values: list) -> None:
        if all(v is None for v in values):  # no step draws: a placeholder that broadcasts against x
            self.arrays.append(Tensor(np.zeros((len(values),) + (1,) * len(self.x_shape), np.float32)))
            return
        zeros = np.zeros(self.x_shape, np.float32)
        self.arrays.append(Tensor(np.stack([zeros if v is None else v.asnumpy() for v in values])))


def loop_cell(step, layout: tuple, denoiser: BoundDenoiser, guider: Guider) -> WholeLoop:
    """The compiled loop for this step function, guider type, layout and network, cached on the bound denoiser."""
    key = (step, type(guider).expand, guider.combine, layout)
    cells = denoiser.__dict__.setdefault("_loop_cells", {})
    if key not in cells:
        cells[key] = WholeLoop(GuidedNetwork(denoiser.network, guider, denoiser.dtype), step, layout)
    return cells[key]


def sample_loop(sampler: Any, run: Any, x: Tensor) -> Tensor:
    """Run the whole schedule of ``run`` as one graph with ``sampler``'s plan and step."""
    denoiser, guider, path = run.denoiser, run.guider, run.model
    check_supported(denoiser, guider, run.callback, run.model_kwargs, run.check_finite)
    plans = list(sampler.plan(run.param, run.sigmas, run.noise))  # the same draws, in the same order
    packer = Packer(denoiser, guider, tuple(x.shape), path.model_batch)
    layout = packer.pack(plans)
    run.nfe += packer.nfe
    loop = loop_cell(type(sampler).step, layout, denoiser, guider)
    try:
        # ms.mutable: the tuples are graph inputs, not constants (new values would recompile)
        state = sampler.initial_state(x)
        return loop(x, ms.mutable(state) if state else state, ms.mutable(tuple(packer.arrays)), path.model_cond)
    except Exception as err:
        net_in = describe(denoiser.network_input(guider.expand(x), 1.0))
        raise ModelOutputError(
            f"the compiled sampling loop (graph_loop=True) failed: {type(err).__name__}: {first_line(err)}\n"
            f"  the network is called as network {type(denoiser.network).__name__}({net_in}, "
            f"<c_noise>, {describe(path.model_cond)})"
        ) from err
