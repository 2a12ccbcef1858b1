"""The sampler base class: configuration, plugins, input checks, the call, and the loop that runs a sampler's step.

A sampler is one small class (see "Writing a plugin" in the docs, docs/plugins.md):

* its own parameters, declared once in the class body (``eta = options.real(1.0, nonnegative=True)``): they become
  constructor parameters, checked, stored and shown in the repr, ahead of the options every sampler shares;
* ``plan(p, sigmas, noise)``: a generator, run on the host, of one dict of coefficients per step. All the scalar
  math of the paper lives here, as Python floats: the noise levels at which the step evaluates the model
  (:class:`Level`), its weights and flags, and its noise draws (``noise(sigma, sigma_next)``, a Tensor);
* ``step(m, x, state, c) -> (x, state)``: a static function with the tensor math of one step. ``m.denoise(x, level)``
  is one guided model evaluation (``m.denoise_pp(x, level)`` the same evaluation's guided and unconditional
  estimates, for a sampler that sets ``needs_uncond``) and ``m.report(x, denoised)`` feeds the callback; ``state``
  is a tuple of x-shaped tensors the step carries to the next one (multistep history).

The same ``step`` runs eagerly, one call per step with ``c`` holding Python floats, and, with ``graph_loop=True``,
inside one compiled MindSpore graph for the whole call, where ``c`` holds the step's 0-d tensors (see
:mod:`edm_sampler.graph_loop`). It may branch on ``c``'s flags with plain ``if`` (Python control flow eagerly,
graph control flow when compiled); it must not call back into Python objects other than ``m``.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

import mindspore as ms
from mindspore import Tensor, ops

from .. import call_keywords, checks, parametrization
from ..denoisers import as_denoiser
from ..discretization import EDMDiscretization
from ..guiders import Guider, IdentityGuider
from ..noise import GeneratorLike, NoiseSampler, NoiseSource, as_generators, randn
from ..parametrization import PARAMETRIZATIONS, Parametrization
from ..registry import instantiate_from_config
from ..run import CHECK_FINITE, SamplingRun
from .options import declared

logger = logging.getLogger(__name__)

INIT_NOISE = ("sgm", "edm", "prescaled", "vp")
FLOAT_DTYPES = (ms.float16, ms.bfloat16, ms.float32, ms.float64)
Plan = Iterator[dict[str, Any]]  # one dict of step coefficients per step: floats, Levels, flags, noise tensors
NoiseFn = Callable[[float, float], Tensor]


class Level(float):
    """A noise level at which a step evaluates the model: ``m.denoise(x, c["at"])`` with ``c["at"] = Level(sigma)``."""


# the Level of an evaluation a step does not make (it sits in a branch the step does not take)
NOT_EVALUATED = Level(math.nan)


def pairs(sigmas: np.ndarray) -> Iterator[tuple[float, float]]:
    """``(sigma_i, sigma_{i+1})`` for every step, as Python floats."""
    for i in range(len(sigmas) - 1):
        yield float(sigmas[i]), float(sigmas[i + 1])


def _checked_schedule(sigmas: np.ndarray, name: str, minimum_length: int = 1) -> np.ndarray:
    if sigmas.ndim != 1 or len(sigmas) < minimum_length or not np.all(np.isfinite(sigmas)):
        raise ValueError(f"{name}: need a 1-d list of at least {minimum_length} finite sigmas, got {sigmas!r}")
    if np.any(sigmas[:-1] <= 0) or sigmas[-1] < 0 or np.any(np.diff(sigmas) >= 0):
        raise ValueError(f"{name} must be strictly decreasing sigmas > 0 (the last may be 0), got {sigmas}")
    return sigmas


def _common_parameters() -> list[inspect.Parameter]:
    """The options every sampler shares, keyword-only, after its own (the signature of ``_configure``)."""
    params = list(inspect.signature(BaseDiffusionSampler._configure).parameters.values())[1:]
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]


def _signature(cls: type) -> inspect.Signature:
    own = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option.default)
        for name, option in declared(cls).items()
    ]
    return inspect.Signature(own + _common_parameters())


class BaseDiffusionSampler:
    """Common machinery: parameters, plugins from configs, sigma schedule, input checks, initial noise, the loop.

    Shared options (keyword-only, after a sampler's own parameters):

    Other Parameters:
        discretization_config: a discretization, or its ``{"target", "params"}`` config. Default: EDM (Karras).
        num_steps: default number of steps (overridable per call).
        guider_config: a guider or its config. Default: :class:`IdentityGuider` (no guidance).
        verbose: log the setup and show a progress bar (unless ``disable`` is given to the call).
        init_noise: how the incoming ``x`` is scaled to the first noise level ``sigma_0``: ``"sgm"`` (default,
            ``x`` is unit noise, scaled by ``sqrt(1 + sigma_0**2)`` as sgm/mindone do), ``"edm"`` (unit noise
            scaled by ``sigma_0`` as NVlabs/edm does) or ``"prescaled"`` (k-diffusion: ``x`` is used as given).
            For a flow model (``parametrization="flow"``) unit noise is scaled by ``sigma_0`` under ``"sgm"`` and
            ``"edm"`` (the flow state at ``sigma_0`` is ``sigma_0 * noise``; 1 at the usual start). ``"vp"``
            (diffusers' DDIM-type schedulers) takes and returns variance-preserving latents ``x_t = x /
            sqrt(1 + sigma^2)``: ``x`` is scaled as under ``"sgm"`` and the result by ``1 / sqrt(1 + sigma_N^2)``
            (1 when the schedule ends at 0); for flow models it is ``"prescaled"`` (their state is the latent).
        check_finite: when NaN/Inf model outputs raise :class:`ModelOutputError`: ``"call"`` (default: when the call
            ends, if the result holds NaN/Inf; one check per call), ``"step"`` (at the evaluation that produced
            them, naming its step and sigma; one check and host sync per evaluation) or ``"off"``.
        graph_loop: run the whole call as one compiled MindSpore graph (see :mod:`edm_sampler.graph_loop`).
    """

    # sgm's samplers take ``device="cuda"``; MindSpore places tensors by context, so configs may keep it
    ignored_config_params = ("device",)
    __signature__: inspect.Signature  # set for every subclass by __init_subclass__ (its constructor's parameters)
    if TYPE_CHECKING:
        # For the type checker, read-only properties: a subclass sets them as class attributes (``history = 2``) or,
        # when they follow its configuration, as properties (``RestartSampler``). At run time the class attributes
        # below are the defaults.
        @property
        def history(self) -> int: ...
        @property
        def needs_uncond(self) -> bool: ...
        @property
        def parametrizations(self) -> tuple[str, ...]: ...
    else:
        history = 0  # how many x-shaped tensors ``step`` carries from one step to the next (its ``state``)
        needs_uncond = False  # the step evaluates with ``m.denoise_pp`` (the guider's unconditional estimate: CFG++)
        parametrizations = PARAMETRIZATIONS  # the model states the sampler can integrate (a VE-only one: ("ve",))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = vars(cls).get("step")
        if step is not None and not isinstance(step, staticmethod):
            raise TypeError(
                f"{cls.__name__}.step must be a @staticmethod step(m, x, state, c): it also runs inside the compiled "
                "whole-loop graph, where there is no sampler object (put what it needs from the sampler into c)"
            )
        cls.__signature__ = _signature(cls)

    def __init__(self, *args: Any, **kwargs: Any):
        signature: inspect.Signature = type(self).__signature__
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(
                f"{type(self).__name__}: {err}; valid parameters: {', '.join(signature.parameters)}"
            ) from None
        bound.apply_defaults()
        values = bound.arguments
        options = declared(type(self))
        for name, option in options.items():
            setattr(self, name, option.check(name, values.pop(name)))
        self._configure(**values)
        self.validate()

    def _configure(
        self,
        discretization_config: Any = None,
        num_steps: int | None = None,
        guider_config: Any = None,
        verbose: bool = False,
        init_noise: str = "sgm",
        check_finite: str = "call",
        graph_loop: bool = False,
    ) -> None:
        if discretization_config is None:
            discretization_config = EDMDiscretization()
        self.discretization = instantiate_from_config(discretization_config)
        if not callable(self.discretization):
            raise TypeError(f"discretization_config must build a callable, got {type(self.discretization).__name__}")
        self.guider = instantiate_from_config(IdentityGuider() if guider_config is None else guider_config)
        if not (hasattr(self.guider, "prepare_inputs") and callable(self.guider)):
            raise TypeError(f"guider_config must build a guider (prepare_inputs + __call__), got {self.guider!r}")
        self.num_steps = None if num_steps is None else checks.integer("num_steps", num_steps, minimum=1)
        self.verbose = bool(verbose)
        self.init_noise = checks.choice("init_noise", init_noise, INIT_NOISE)
        self.check_finite = checks.choice("check_finite", check_finite, CHECK_FINITE)
        if not isinstance(graph_loop, bool):
            raise TypeError(f"graph_loop must be True or False, got {graph_loop!r}")
        self.graph_loop = graph_loop
        self.last_nfe: int | None = None
        self.last_model_rows: int | None = None  # rows of all model batches of the last call (CFG: 2 B per NFE)

    def validate(self) -> None:
        """Checks that involve several parameters (each one alone is checked by its declaration)."""

    # -- what a sampler defines ----------------------------------------------------------------------------------

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        """One dict of step coefficients per step (host side; see the module docstring)."""
        raise NotImplementedError(f"{type(self).__name__} does not define plan()")

    @staticmethod
    def step(m: Any, x: Tensor, state: tuple, c: dict) -> tuple[Tensor, tuple]:
        """The tensor math of one step (see the module docstring). A sampler built around another one
        (``RestartSampler``) may set its ``step`` per instance: the loops, eager and compiled, call ``sampler.step``."""
        raise NotImplementedError("this sampler does not define step()")

    @property
    def step_limit(self) -> Any:
        """A cell the step applies to part of its update through ``m.limit`` (DDIM's limited x0 term), or None."""
        return None

    def initial_state(self, x: Tensor) -> tuple:
        """The ``state`` the first step receives: ``history`` zero tensors shaped like x."""
        return tuple(ops.zeros_like(x) for _ in range(self.history))

    # -- schedule and inputs -------------------------------------------------------------------------------------

    def get_sigmas(self, num_steps: int | None = None, sigmas: Any = None) -> np.ndarray:
        """The descending float64 schedule for this call, checked to be usable (positive, ending at >= 0).

        ``sigmas`` is an explicit schedule (k-diffusion style: N + 1 values ending in 0 for N steps) that replaces
        the discretization; it excludes ``num_steps``.
        """
        if sigmas is not None:
            if num_steps is not None:
                raise ValueError("pass either num_steps or sigmas to the call, not both")
            if isinstance(sigmas, Tensor):
                sigmas = sigmas.asnumpy()
            try:
                sigmas = np.array(sigmas, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise TypeError(f"sigmas must be a 1-d sequence of numbers, got {type(sigmas).__name__}") from err
            return _checked_schedule(sigmas, "sigmas", minimum_length=2)
        n = self.num_steps if num_steps is None else num_steps
        if n is None:
            raise ValueError("num_steps is required: pass it to the sampler's constructor or to the call")
        n = checks.integer("num_steps", n, minimum=1)
        return _checked_schedule(np.asarray(self.discretization(n), dtype=np.float64), "discretization")

    def initial_scale(self, sigma_0: float, param: Parametrization | str = "ve") -> float:
        """Factor applied to the incoming ``x`` (see ``init_noise``) for a model of parametrization ``param``."""
        flow = parametrization.get(param).name == "flow"
        if self.init_noise == "prescaled" or (self.init_noise == "vp" and flow):
            return 1.0
        if self.init_noise in ("sgm", "vp") and not flow:
            return math.sqrt(1.0 + sigma_0**2)
        return sigma_0

    def _prepare(self, denoiser: Any, x: Any, num_steps: int | None, sigmas: Any) -> tuple:
        """The call's checked schedule, input, denoiser, its parametrization and the highest sigma the model will see;
        a schedule that leaves the model's range (sigma <= 1 for flow) is refused here, before any model call."""
        source = "the explicit sigmas" if sigmas is not None else repr(self.discretization)
        sigmas = self.get_sigmas(num_steps, sigmas)
        x = self._check_x(x)
        denoiser = as_denoiser(denoiser)
        param = parametrization.of(denoiser)
        if param.name not in self.parametrizations:
            raise ValueError(
                f"{type(self).__name__} samples {' and '.join(self.parametrizations)} models only, but the denoiser "
                f"{_describe_denoiser(denoiser)} is a {param.name} model"
            )
        max_sigma = self.max_model_sigma(sigmas, param)
        top = max(float(sigmas[0]), max_sigma)
        if top > param.max_sigma:
            raise ValueError(
                f"the schedule reaches sigma={top:.6g} ({source}), but the denoiser "
                f"{_describe_denoiser(denoiser)} is a {param.name} model, whose noise levels are in (0, "
                f"{param.max_sigma:g}]: use a schedule in that range (flow models: e.g. FlowMatchDiscretization)"
            )
        return sigmas, x, denoiser, param, max_sigma

    def make_noise(
        self,
        shape: tuple[int, ...],
        generator: GeneratorLike,
        noise_sampler: NoiseSampler | None,
        sigmas: np.ndarray,
        param: Parametrization | str = "ve",
    ) -> NoiseFn:
        """The call's noise source, ``noise(sigma, sigma_next) -> Tensor shaped like x``: by default independent
        Gaussian draws from ``generator`` (or the caller's ``noise_sampler``). SDE samplers return Brownian
        increments instead."""
        return NoiseSource(shape, generator, noise_sampler)

    def max_model_sigma(self, sigmas: np.ndarray, param: Parametrization) -> float:
        """The highest noise level the model will be evaluated at (checked against the model's range)."""
        return float(sigmas[0])

    def step_sigmas(self, sigmas: np.ndarray) -> np.ndarray:
        """``(sigma, sigma_next)`` of each step ``plan`` yields, shape ``(steps, 2)``: the schedule's pairs. A sampler
        whose plan walks other levels (``RestartSampler`` goes back up) returns its own; the run's step count, progress
        bar and the callback's ``sigma`` follow it."""
        return np.stack([sigmas[:-1], sigmas[1:]], axis=1)

    @staticmethod
    def _check_x(x: Any) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a mindspore Tensor, got {type(x).__name__} (wrap arrays with mindspore.Tensor)")
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"x must be a floating-point Tensor (float16/bfloat16/float32/float64), got {x.dtype}")
        if x.ndim < 1 or x.shape[0] < 1:
            raise ValueError(f"x must have a leading batch dimension of size >= 1, got shape {tuple(x.shape)}")
        return x

    # -- the call ------------------------------------------------------------------------------------------------

    def __call__(
        self,
        denoiser: Any,
        x: Tensor,
        cond: Any = None,
        uc: Any = None,
        num_steps: int | None = None,
        *,
        generator: GeneratorLike = None,
        noise_sampler: NoiseSampler | None = None,
        callback: Callable[[dict], None] | None = None,
        model_kwargs: dict | None = None,
        disable: bool | None = None,
        sigmas: Any = None,
        **mindone_keywords: Any,
    ) -> Tensor:
        """Integrate from ``sigma_0`` down to the end of the schedule and return the float32 result.

        Args:
            denoiser: ``D(x, sigma, cond, **model_kwargs) -> denoised`` (sigma: float32 Tensor of shape ``(B,)``), or
                a mindone ``DiffusionEngine`` (see :func:`edm_sampler.as_denoiser`).
            x: the starting noise, any float dtype; never modified.
            cond: conditioning passed to the denoiser through the guider.
            uc: the unconditional conditioning the guider uses (CFG's ``D_u``); defaults to ``cond``.
            num_steps: overrides the constructor's ``num_steps``.
            generator: int seed, ``numpy.random.Generator``, or a list of them (one per batch item) for the noise the
                sampler draws itself. ``None`` means a fresh, unseeded generator.
            noise_sampler: ``noise_sampler(sigma, sigma_next) -> noise shaped like x``; overrides ``generator``.
            callback: called after each model evaluation of a step with ``{"x", "i", "sigma", "sigma_hat",
                "denoised"}``.
            model_kwargs: extra keyword arguments for every model evaluation.
            disable: hide (True) or show (False) the progress bar; default: shown only when ``verbose``.
            sigmas: an explicit schedule, N + 1 descending values (the last may be 0) for N steps, instead of the
                discretization; excludes ``num_steps``.
            **mindone_keywords: the keywords mindone's pipelines pass (``num_frames``, ``image_only_indicator``,
                ``adapter_states``, ``control``, ``init_noise_scheduler``, ``other_c``), routed as mindone routes them
                (see :mod:`edm_sampler.call_keywords`); any other keyword is refused.
        """
        sigmas, x, denoiser, param, max_sigma = self._prepare(denoiser, x, num_steps, sigmas)
        # A new float32 tensor: the caller's x is never touched.
        start = x.astype(ms.float32) * self.initial_scale(float(sigmas[0]), param)
        return self._integrate(
            denoiser,
            param,
            max_sigma,
            start,
            sigmas,
            cond,
            uc,
            generator,
            noise_sampler,
            callback,
            model_kwargs,
            disable,
            mindone_keywords,
        )

    def img2img(
        self,
        denoiser: Any,
        image: Tensor,
        cond: Any = None,
        uc: Any = None,
        num_steps: int | None = None,
        *,
        add_noise: bool = True,
        noise: Tensor | None = None,
        generator: GeneratorLike = None,
        noise_sampler: NoiseSampler | None = None,
        callback: Callable[[dict], None] | None = None,
        model_kwargs: dict | None = None,
        disable: bool | None = None,
        sigmas: Any = None,
        **mindone_keywords: Any,
    ) -> Tensor:
        """Start from ``image`` (a clean latent) noised to the schedule's first sigma, as sgm's ``do_img2img`` does.

        Use an :class:`~edm_sampler.Img2ImgDiscretizationWrapper` (or explicit ``sigmas``) to start below the full
        noise level. ``add_noise=False`` starts from ``image`` as it is (sgm's refiner "finish denoising" path, after a
        ``Txt2NoisyDiscretizationWrapper`` base). The start noise is ``noise`` if given, else the next draw from
        ``generator`` (whose stream then continues into the sampler's own noise).

        VE models start at ``image + sigma_0 * noise``; flow models at ``(1 - sigma_0) * image + sigma_0 * noise``.
        """
        sigmas, image, denoiser, param, max_sigma = self._prepare(denoiser, image, num_steps, sigmas)
        start = image.astype(ms.float32)
        if add_noise and len(sigmas) > 1:
            if noise is None:
                generator = as_generators(generator, int(image.shape[0]))
                noise = randn(tuple(image.shape), generator)
            elif not isinstance(noise, Tensor) or tuple(noise.shape) != tuple(image.shape):
                raise ValueError(f"noise must be a Tensor shaped like image {tuple(image.shape)}, got {noise!r}")
            sigma_0 = float(sigmas[0])
            alpha = param.alpha(sigma_0)  # the data's weight in the state: 1 for VE
            if alpha != 1.0:
                start = start * alpha
            start = start + noise.astype(ms.float32) * sigma_0
        return self._integrate(
            denoiser,
            param,
            max_sigma,
            start,
            sigmas,
            cond,
            uc,
            generator,
            noise_sampler,
            callback,
            model_kwargs,
            disable,
            mindone_keywords,
        )

    def _integrate(
        self,
        denoiser,
        param,
        max_sigma,
        x,
        sigmas,
        cond,
        uc,
        generator,
        noise_sampler,
        callback,
        model_kwargs,
        disable,
        mindone_keywords,
    ) -> Tensor:
        """Integrate the float32 ``x`` at ``sigmas[0]`` down the schedule."""
        # x is a fresh tensor (the scaled start): reading its shape waits for it, so it is read once
        shape = tuple(x.shape)
        # mindone's call keywords: to the model, the guider or the noise source, as mindone sends them
        call = call_keywords.route(self, denoiser, shape, sigmas, mindone_keywords, model_kwargs, noise_sampler)
        noise_sampler, model_kwargs = call.noise_sampler, call.model_kwargs
        if self.needs_uncond and not isinstance(call.guider, Guider):
            raise TypeError(
                f"{type(self).__name__} renoises with the unconditional estimate, which only the built-in guiders "
                f"provide (Guider.uncond); got the guider {type(call.guider).__name__}"
            )
        run = SamplingRun(
            denoiser=denoiser,
            guider=call.guider,
            x_shape=shape,
            sigmas=sigmas,
            cond=cond,
            uc=uc,
            noise=self.make_noise(shape, generator, noise_sampler, sigmas, param),
            callback=callback,
            model_kwargs=model_kwargs,
            progress=self.verbose if disable is None else not disable,
            label=type(self).__name__,
            check_finite=self.check_finite,
            max_sigma=max_sigma,
            step_sigmas=self.step_sigmas(sigmas),
        )
        if self.verbose:
            logger.info("%r: %d steps, %r, %r", self, run.num_steps, self.discretization, run.guider)
        x = self.sample(run, x)
        if self.init_noise == "vp" and param.name == "ve" and sigmas[-1] > 0:  # back to the VP latent
            x = x * (1.0 / math.sqrt(1.0 + float(sigmas[-1]) ** 2))
        run.finish(x)
        self.last_nfe = run.nfe
        self.last_model_rows = run.model_rows
        return x

    def sample(self, run: SamplingRun, x: Tensor) -> Tensor:
        """The sampling loop: ``step`` once per step with the coefficients ``plan`` gives, or the whole loop as one
        compiled graph with ``graph_loop=True``."""
        from .. import graph_loop  # the compiled paths need the model path and guiders

        if self.graph_loop:
            return graph_loop.sample_loop(self, run, x)
        if graph_loop.steps_compile(run):  # graph mode: each step compiled with its model evaluations
            return graph_loop.sample_steps(self, run, x)
        model = StepModel(run, self.step_limit)
        state = self.initial_state(x)
        # run.steps() first: it sets the step index (for error messages) and ticks the progress bar
        for _, c in zip(run.steps(), self.plan(run.param, run.sigmas, run.noise)):
            x, state = self.step(model, x, state, c)
        return x

    def __repr__(self) -> str:
        own = ", ".join(f"{name}={getattr(self, name)!r}" for name in declared(type(self)))
        # num_steps is the default a call may override (the progress bar and last_nfe show what a call did)
        steps = "num_steps=None" if self.num_steps is None else f"num_steps={self.num_steps} (default)"
        common = f"{steps}, init_noise={self.init_noise!r}"
        loop = ", graph_loop=True" if self.graph_loop else ""
        return f"{type(self).__name__}({own + ', ' if own else ''}{common}{loop})"


class StepModel:
    """The ``m`` a step receives when it runs eagerly: model evaluations and callback reports through the call's
    :class:`~edm_sampler.run.SamplingRun` (the compiled loop is the other ``m``)."""

    def __init__(self, run: SamplingRun, limit: Any = None):
        self.run = run
        self.level = 0.0  # the noise level of the latest evaluation (the callback's ``sigma_hat``)
        self._limit = limit

    def limit(self, denoised: Tensor) -> Tensor:
        """The sampler's :attr:`~BaseDiffusionSampler.step_limit` applied to an estimate (identity without one)."""
        return denoised if self._limit is None else self._limit(denoised)

    def denoise(self, x: Tensor, level: float) -> Tensor:
        self.level = float(level)
        return self.run.denoise(x, self.level)

    def denoise_pp(self, x: Tensor, level: float) -> tuple[Tensor, Tensor]:
        """``(guided, unconditional)`` estimates from one guided evaluation (the CFG++ samplers')."""
        self.level = float(level)
        return self.run.denoise(x, self.level, with_uncond=True)

    def report(self, x: Tensor, denoised: Tensor) -> None:
        run = self.run
        if run.callback is not None:  # no work on the hot path without a callback
            run.report(x, float(run.step_sigmas[run.i, 0]), self.level, denoised)


def _describe_denoiser(denoiser: Any) -> str:
    own_repr: object = type(denoiser).__repr__  # typed object: mypy sees no overlap between the two methods' types
    return repr(denoiser) if own_repr is not object.__repr__ else type(denoiser).__name__


BaseDiffusionSampler.__signature__ = _signature(BaseDiffusionSampler)
