"""Restart sampling (Xu, Deng, Cheng, Tian, Liu, Jaakkola, "Restart Sampling for Improving Generative Processes",
NeurIPS 2023, arXiv 2306.14878; reference code Newbeeer/diffusion_restart_sampling, A1111's "Restart" sampler).

The main backward ODE runs over the schedule; on reaching ``t_min`` of a restart interval ``[t_min, t_max]`` the
sample is sent forward to ``t_max`` with fresh noise (the exact forward transition) and brought back to ``t_min`` by
the ODE, ``K`` times, before the main path goes on. The forward jumps contract the errors the ODE accumulated; the
ODE keeps the discretization error small.

The plan is the inner ODE sampler's own plans, one per segment (the main schedule split at the restart levels, and
every restart segment), concatenated; each step dict wraps the inner one with the restart jump that comes before it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from mindspore import Tensor, ops

from .. import checks, parametrization
from ..discretization import EDMDiscretization
from ..functional import renoise
from ..guiders import IdentityGuider
from ..parametrization import Parametrization
from ..registry import instantiate_from_config
from . import coefficients
from .base import BaseDiffusionSampler, NoiseFn, Plan
from .options import Option

# Restart intervals as YAML writes them: {t_min or index, t_max, restarts, steps}
INTERVAL_KEYS = ("t_min", "index", "t_max", "restarts", "steps")


@dataclass(frozen=True)
class RestartInterval:
    """One restart interval: from the main-schedule level ``t_min`` (a sigma, snapped to the nearest level of the
    call's schedule, or that level's ``index``) up to ``t_max`` and back in ``steps`` inner steps, ``restarts`` times.
    """

    t_max: float
    restarts: int
    steps: int
    t_min: float | None = None
    index: int | None = None

    def at(self) -> str:
        return f"index={self.index}" if self.index is not None else f"t_min={self.t_min:g}"


def _interval(k: int, value: Any) -> RestartInterval:
    name = f"restart_list[{k}]"
    if isinstance(value, RestartInterval):
        return value
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        # the reference code's restart_info entry [N_Restart, K, t_min, t_max]; N_Restart counts the levels
        if len(value) != 4:
            raise ValueError(f"{name}: a list entry is the paper's [N_restart, K, t_min, t_max], got {value!r}")
        levels = checks.integer(f"{name}[0] (N_restart, the restart segment's levels)", value[0], minimum=2)
        value = {"restarts": value[1], "steps": levels - 1, "t_min": value[2], "t_max": value[3]}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name} must be a mapping {{t_min or index, t_max, restarts, steps}} or the paper's list [N_restart, K, "
            f"t_min, t_max], got {value!r}"
        )
    unknown = sorted(set(map(str, value)) - set(INTERVAL_KEYS))
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(INTERVAL_KEYS)}")
    missing = [key for key in ("t_max", "restarts", "steps") if key not in value]
    if missing or ("t_min" in value) == ("index" in value):
        raise ValueError(
            f"{name} needs t_max, restarts, steps and exactly one of t_min (a sigma) or index (a level of the main "
            f"schedule), got {dict(value)!r}"
        )
    t_max = checks.real(f"{name}.t_max", value["t_max"], positive=True)
    restarts = checks.integer(f"{name}.restarts", value["restarts"], minimum=1)
    steps = checks.integer(f"{name}.steps", value["steps"], minimum=1)
    if "index" in value:
        index = checks.integer(f"{name}.index", value["index"], minimum=1)
        return RestartInterval(t_max, restarts, steps, index=index)
    t_min = checks.real(f"{name}.t_min", value["t_min"], nonnegative=True)
    if not t_max > t_min:
        raise ValueError(f"{name}: t_max must be > t_min, got t_min={t_min:g}, t_max={t_max:g}")
    return RestartInterval(t_max, restarts, steps, t_min=t_min)


def restart_list(name: str, value: Any) -> tuple[RestartInterval, ...]:
    """The checked restart intervals (``None`` or an empty list: none, the inner sampler alone)."""
    if value is None:
        return ()
    if isinstance(value, Mapping) or isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of restart intervals, got {value!r}")
    return tuple(_interval(k, v) for k, v in enumerate(value))


def inner_sampler(name: str, value: Any) -> BaseDiffusionSampler:
    """The inner ODE sampler: a registry name, a ``{"target", "params"}`` config or a sampler."""
    sampler = instantiate_from_config({"target": value} if isinstance(value, str) else value)
    if not isinstance(sampler, BaseDiffusionSampler):
        raise TypeError(f"{name} must build a sampler (a registry name such as 'heun_edm', or a config): {sampler!r}")
    return sampler


def karras_levels(t_max: float, t_min: float, steps: int, rho: float) -> np.ndarray:
    """``steps + 1`` levels from ``t_max`` down to ``t_min`` with Karras et al.'s spacing (eq. 5): the restart
    segment's schedule, as the reference code's ``get_steps`` builds it (its ends exactly ``t_max`` and ``t_min``)."""
    ramp = np.arange(steps + 1, dtype=np.float64) / steps
    levels = (t_max ** (1 / rho) + ramp * (t_min ** (1 / rho) - t_max ** (1 / rho))) ** rho
    levels[0], levels[-1] = t_max, t_min
    return levels


@dataclass(frozen=True)
class Segment:
    """A stretch the inner sampler integrates with a fresh plan; a restart segment first jumps from ``t_min``."""

    levels: np.ndarray
    t_min: float | None = None  # set on restart segments: the level the jump starts from


class InnerNoiseError(ValueError):
    """The inner sampler drew noise: it is not an ODE sampler."""


def _stochastic(inner: BaseDiffusionSampler) -> str:
    return (
        f"sampler_config: {inner!r} draws noise, so it is not an ODE sampler; Restart's inner solver must be "
        "deterministic (set its stochasticity to 0: s_churn, eta, tau or gamma, or use an ODE sampler such as "
        "heun_edm, euler_edm, dpmpp_2m, unipc)"
    )


def _refusing_noise(inner: BaseDiffusionSampler) -> NoiseFn:
    def noise(sigma: float, sigma_next: float) -> Tensor:
        raise InnerNoiseError(_stochastic(inner))

    return noise


@functools.lru_cache(maxsize=None)
def restart_step(inner_step: Callable, history: int) -> Callable:
    """Restart's step around the inner sampler's static step (one function per inner step and history length, so
    the compiled loop's cache finds it again): the restart jump, a fresh history at the start of a segment (for an
    inner sampler that carries one), then the inner step."""

    if history == 0:

        def step(m, x, state, c):
            x = renoise(x, c["restart"])  # x <- a x + s_noise std z on the first step of a restart segment
            return inner_step(m, x, state, c["inner"])

        return step

    def step_with_history(m, x, state, c):
        x = renoise(x, c["restart"])
        if c["fresh"]:  # each segment is a new call of the inner sampler: no history from the last one
            state = tuple([ops.zeros_like(state[k]) for k in range(history)])  # a constant length in the graph
        return inner_step(m, x, state, c["inner"])

    return step_with_history


class RestartSampler(BaseDiffusionSampler):
    """Restart sampling (Xu et al. 2023, Algorithm 1) around any ODE sampler of the library. NFE: the inner sampler's
    on the main schedule plus, per interval, ``restarts`` times its NFE over the restart segment (Heun: ``2 N - 1 +
    sum 2 K steps``; ``last_nfe`` counts every evaluation).

    Main path: the inner sampler over the call's schedule. At each restart interval, when the main path reaches
    ``t_min`` (a level of the schedule, given as a sigma, which is snapped to the nearest level as the reference code
    and A1111 do, or as its index 1..N), ``restarts`` (K) times: jump forward to ``t_max`` with fresh noise, ``x <- x +
    s_noise sqrt(t_max^2 - t_min^2) z`` (a flow model: ``x <- a x + s_noise sqrt(t_max^2 - (a t_min)^2) z`` with ``a =
    (1 - t_max) / (1 - t_min)``, the exact forward transition of ``x = (1 - s) x0 + s eps``), then run the inner
    sampler from ``t_max`` back to ``t_min`` over ``steps`` steps spaced as Karras et al. (``rho``, 7 as the paper).
    Then the main path goes on from ``t_min``. Each segment (a piece of the main schedule between restart levels, a
    restart segment) is a fresh run of the inner sampler: a multistep method starts its history again.

    Args:
        restart_list: the intervals, each ``{t_min: sigma, t_max, restarts: K, steps: N}`` (or ``index: i`` for
            ``t_min = sigmas[i]``), or the reference code's ``[N_restart, K, t_min, t_max]`` whose ``N_restart``
            counts the segment's levels (``steps + 1``). Empty: the inner sampler alone. Default: one interval,
            ``t_min = 0.06, t_max = 0.30, K = 2, 2 steps``: the paper's CIFAR-10 setting ``[3, 2, 0.06, 0.30]`` (its
            Table 3 sweeps K up to 20; ImageNet-64 uses five intervals, e.g. ``[6, 6, 0.06, 0.30]`` lowest). A1111's
            automatic list is ``{0.1: [restart_steps + 1, 1 or 2, 2]}`` on a re-spaced shorter main schedule.
        sampler_config: the inner ODE sampler (a registry name, a config or a sampler; default ``heun_edm``, the
            paper's). Stochastic samplers (any that draws noise) are refused, and so are samplers without a host plan
            (``dpm_adaptive``). Its own schedule, steps and guider are not used: set them on the RestartSampler.
        rho: the spacing of the restart segments' levels (Karras et al.'s rho).
        s_noise: scales the restart noise (the reference code's ``S_noise``; 1.003 in its ImageNet runs).

    Deviations: the reference code also churns inside restart segments (``restart_gamma = 0.05``, noise in
    ``[S_min, S_max]``); the paper's Algorithm 1 does not, and neither does this sampler. A1111 snaps ``t_max`` to
    the main schedule; here it is used as given, as the reference code does. Two intervals at the same level are
    refused (the reference code keeps the last one silently).
    """

    restart_list = Option(
        ({"t_min": 0.06, "t_max": 0.30, "restarts": 2, "steps": 2},),
        restart_list,
        "the restart intervals: {t_min or index, t_max, restarts, steps}",
    )
    sampler_config = Option("heun_edm", inner_sampler, "the inner ODE sampler")
    rho = Option(7.0, lambda name, value: checks.real(name, value, positive=True))
    s_noise = Option(1.0, lambda name, value: checks.real(name, value, nonnegative=True))

    def validate(self) -> None:
        inner = self.sampler_config
        kind = type(inner).__name__
        if isinstance(inner, RestartSampler):
            raise ValueError("sampler_config: the inner sampler of a RestartSampler cannot be a RestartSampler")
        if type(inner).plan is BaseDiffusionSampler.plan or type(inner).sample is not BaseDiffusionSampler.sample:
            raise ValueError(
                f"sampler_config: {kind} has no host plan and static step (its steps follow the model's outputs, "
                "and graph_loop=True refuses it), so Restart cannot run it segment by segment; use an ODE sampler "
                "written as plan + step (heun_edm, euler_edm, dpmpp_2m, unipc, ...)"
            )
        own = {
            "guider_config": not isinstance(inner.guider, IdentityGuider),
            "num_steps": inner.num_steps is not None,
            "graph_loop": inner.graph_loop,
            "discretization_config": repr(inner.discretization) != repr(EDMDiscretization()),
        }
        if any(own.values()):
            raise ValueError(
                f"sampler_config: {kind} sets {', '.join(k for k, v in own.items() if v)}, which Restart does not "
                "use: set them on the RestartSampler (its discretization_config is the main schedule; the restart "
                "segments are spaced by rho)"
            )
        self._probe(inner)
        # the step, per instance: Restart's own around the inner sampler's (graph_loop compiles sampler.step)
        self.step = restart_step(inner.step, inner.history)  # type: ignore[method-assign]  # see BaseDiffusionSampler.step

    @staticmethod
    def _probe(inner: BaseDiffusionSampler) -> None:
        """Refuse an inner sampler whose plan draws noise on a typical schedule (the call checks its own again)."""
        param = parametrization.get("ve" if "ve" in inner.parametrizations else "flow")
        sigmas = karras_levels(80.0, 0.002, 8, 7.0) if param.name == "ve" else np.linspace(1.0, 0.02, 9)
        for levels in (sigmas, np.append(sigmas, 0.0)):
            try:
                list(inner.plan(param, levels, _refusing_noise(inner)))
            except InnerNoiseError:
                raise ValueError(_stochastic(inner)) from None
            except Exception:  # a plan that refuses this probe schedule: the call's own segments are checked
                continue

    # -- the inner sampler's properties ---------------------------------------------------------------------------

    @property
    def history(self) -> int:
        return self.sampler_config.history

    @property
    def parametrizations(self) -> tuple[str, ...]:
        return self.sampler_config.parametrizations

    @property
    def needs_uncond(self) -> bool:
        return bool(getattr(self.sampler_config, "needs_uncond", False))

    @property
    def step_limit(self) -> Any:
        return self.sampler_config.step_limit

    def initial_state(self, x: Tensor) -> tuple:
        return self.sampler_config.initial_state(x)

    # -- the segments ---------------------------------------------------------------------------------------------

    def restart_levels(self, sigmas: np.ndarray) -> dict[int, RestartInterval]:
        """Each interval by the index ``j`` of its ``t_min = sigmas[j]`` in this call's schedule (checked)."""
        n = len(sigmas) - 1
        found: dict[int, RestartInterval] = {}
        for k, interval in enumerate(self.restart_list):
            if interval.index is not None:
                j = interval.index
                if j > n:
                    raise ValueError(
                        f"restart_list[{k}]: index={j} is off the schedule: its {n} steps reach levels 1..{n} "
                        "(t_min = sigmas[index] is reached after main step index - 1)"
                    )
            else:
                j = int(np.argmin(np.abs(sigmas - interval.t_min)))  # the nearest level (the first on a tie)
                if j == 0:
                    raise ValueError(
                        f"restart_list[{k}]: t_min={interval.t_min:g} is nearest to the schedule's first level "
                        f"{sigmas[0]:g}; a restart starts from a level the main path reaches (indices 1..{n})"
                    )
            if not interval.t_max > sigmas[j]:
                raise ValueError(
                    f"restart_list[{k}] ({interval.at()}): t_max={interval.t_max:g} must be above t_min = sigmas[{j}] "
                    f"= {sigmas[j]:g}"
                )
            if j in found:
                raise ValueError(f"restart_list[{k}] ({interval.at()}): another interval restarts at sigmas[{j}] too")
            found[j] = interval
        return found

    def segments(self, sigmas: np.ndarray) -> list[Segment]:
        """The stretches the inner sampler runs, in order: main pieces and, after each restart level, K restarts."""
        out, start = [], 0
        for j, interval in sorted(self.restart_levels(sigmas).items()):
            out.append(Segment(sigmas[start : j + 1]))
            t_min = float(sigmas[j])
            levels = karras_levels(interval.t_max, t_min, interval.steps, self.rho)
            out += [Segment(levels, t_min)] * interval.restarts
            start = j
        if start < len(sigmas) - 1:
            out.append(Segment(sigmas[start:]))
        return out

    def step_sigmas(self, sigmas: np.ndarray) -> np.ndarray:
        """``(sigma, sigma_next)`` of every step: each segment's own (a restart segment's first step starts at
        ``t_max``)."""
        pairs = [np.stack([s.levels[:-1], s.levels[1:]], axis=1) for s in self.segments(sigmas)]
        return np.concatenate(pairs) if pairs else np.zeros((0, 2))

    def max_model_sigma(self, sigmas: np.ndarray, param: Parametrization) -> float:
        top = self.sampler_config.max_model_sigma(sigmas, param)
        for interval in self.restart_levels(sigmas).values():
            if interval.t_max > param.max_sigma:
                raise ValueError(
                    f"restart_list ({interval.at()}): t_max={interval.t_max:g} is above the {param.name} model's "
                    f"highest noise level {param.max_sigma:g}"
                )
            top = max(top, interval.t_max)
        return top

    # -- the plan ---------------------------------------------------------------------------------------------------

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        inner = self.sampler_config
        refuse = _refusing_noise(inner)  # the inner sampler must draw nothing on this call's segments either
        for segment in self.segments(sigmas):
            t_max = float(segment.levels[0])
            for k, c in enumerate(inner.plan(p, segment.levels, refuse)):
                jump = coefficients.no_renoising()
                if k == 0 and segment.t_min is not None:  # forward from t_min to t_max: a x + std z
                    a, std = p.renoise(segment.t_min, t_max)
                    std *= self.s_noise
                    jump = coefficients.renoising(a, std, std > 0.0, noise, segment.t_min, t_max)
                yield {"restart": jump, "fresh": k == 0, "inner": c}


__all__ = ["RestartInterval", "RestartSampler", "karras_levels", "restart_list"]
