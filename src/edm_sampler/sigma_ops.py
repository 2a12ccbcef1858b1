"""Sigma-list operations as discretization wrappers, composable in YAML: ComfyUI's ``SplitSigmas``,
``SplitSigmasDenoise``, ``FlipSigmas``, ``SetFirstSigma`` and ``ExtendIntermediateSigmas`` nodes
(``comfy_extras/nodes_custom_sampler.py``), and the step range of its ``KSamplerAdvanced`` (``start_at_step``,
``end_at_step``, ``return_with_leftover_noise``; ``KSampler.sample`` in ``comfy/samplers.py``).

Each wrapper takes ``discretization_config`` (a config or a discretization) and edits the wrapped schedule's full list
for ``num_steps`` steps, final 0 included (ComfyUI's SIGMAS). ``num_steps`` is therefore the step count of the
schedule *before* the edit; a split or a step range samples fewer steps. ``do_append_zero=False`` drops a final 0 if
the result has one. Parameters are named as in ComfyUI's nodes. Wrappers nest, e.g.::

    discretization_config:
      target: step_range
      params: {end_at_step: 12, return_with_leftover_noise: true,
               discretization_config: {target: karras}}

Two chained ``KSamplerAdvanced`` passes become two calls. The first is ``sampler(denoiser, noise)`` with
``step_range(end_at_step=k, return_with_leftover_noise=True)``: it stops at ``sigmas[k]`` and returns the noisy state
there. The second is ``sampler.img2img(denoiser, that_state, add_noise=False)`` with ``step_range(start_at_step=k)``.
For a one-step method such as Euler or Heun, the two passes give the single pass's result bit for bit. A multistep
method restarts its history, as in ComfyUI. With ``init_noise="vp"`` the first pass returns a VP latent. In that case
call the second sampler directly (``sampler(denoiser, that_latent)``): it rescales its input.
"""

from __future__ import annotations

import math

import numpy as np

from . import checks
from .comfy_schedules import close_choice
from .registry import instantiate_from_config

SPACINGS = ("linear", "cosine", "sine")
PARTS = ("high", "low")


class SigmaListOperation:
    """Base class: a discretization wrapper whose :meth:`apply` edits the wrapped schedule's full list."""

    def __init__(self, discretization_config):
        self.discretization = instantiate_from_config(discretization_config)
        if not callable(self.discretization):
            raise TypeError(
                f"discretization_config must build a discretization (a callable), got {self.discretization!r}"
            )

    @property
    def parametrization(self) -> str:
        """The wrapped schedule's (``"flow"`` or ``"ve"``)."""
        return getattr(self.discretization, "parametrization", "ve")

    def __call__(self, n: int, do_append_zero: bool = True, flip: bool = False) -> np.ndarray:
        n = checks.integer("num_steps", n, minimum=1)
        sigmas = self.apply(np.array(self.discretization(n), dtype=np.float64))
        if not do_append_zero and len(sigmas) and sigmas[-1] == 0.0:
            sigmas = sigmas[:-1]
        return sigmas[::-1].copy() if flip else sigmas

    def apply(self, sigmas: np.ndarray) -> np.ndarray:
        """The edited list (a new array)."""
        raise NotImplementedError

    def _params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({self.discretization!r}{params})"


class SplitSigmas(SigmaListOperation):
    """ComfyUI's ``SplitSigmas`` (``step``) and ``SplitSigmasDenoise`` (``denoise``): ``part="high"`` is
    ``sigmas[:step + 1]``, ``part="low"`` is ``sigmas[step:]``. The two parts share the level at ``step``.

    ``denoise`` splits at ``step = N - round(N * denoise)`` for an ``N``-step list, so the low part has the last
    ``round(N * denoise)`` steps. Give ``step`` or ``denoise``. A part without a step is refused, where ComfyUI would
    return a list of one level (or, for ``SplitSigmasDenoise``'s high part at ``denoise = 1``, an empty one).
    """

    def __init__(
        self, discretization_config, step: int | None = None, denoise: float | None = None, part: str = "high"
    ):
        super().__init__(discretization_config)
        if (step is None) == (denoise is None):
            raise ValueError(f"give step or denoise (one of them), got step={step!r}, denoise={denoise!r}")
        self.step = None if step is None else checks.integer("step", step, minimum=0)
        self.denoise = None if denoise is None else checks.real("denoise", denoise, nonnegative=True)
        if self.denoise is not None and self.denoise > 1.0:
            raise ValueError(f"denoise must be in [0, 1], got {denoise!r}")
        self.part = close_choice("part", part, PARTS)

    def _params(self) -> dict:
        split = {"step": self.step} if self.step is not None else {"denoise": self.denoise}
        return {**split, "part": self.part}

    def apply(self, sigmas: np.ndarray) -> np.ndarray:
        steps = len(sigmas) - 1
        if self.step is not None:
            step = self.step
        else:
            assert self.denoise is not None  # step or denoise (constructor)
            step = steps - round(steps * self.denoise)
        part = sigmas[: step + 1] if self.part == "high" else sigmas[step:]
        if len(part) < 2:
            how = f"step={self.step}" if self.step is not None else f"denoise={self.denoise!r} (step {step})"
            raise ValueError(f"{how} leaves part={self.part!r} of the {steps}-step schedule without a step")
        return part.copy()


class FlipSigmas(SigmaListOperation):
    """ComfyUI's ``FlipSigmas``: the list reversed (ascending, for inversion); a first level of 0 becomes 1e-4.

    The samplers here integrate downwards only and refuse an ascending schedule; this is for code that walks the
    list itself.
    """

    def apply(self, sigmas: np.ndarray) -> np.ndarray:
        flipped = sigmas[::-1].copy()
        if len(flipped) and flipped[0] == 0.0:
            flipped[0] = 1e-4
        return flipped


class SetFirstSigma(SigmaListOperation):
    """ComfyUI's ``SetFirstSigma``: the first level replaced by ``sigma`` (required here; the node's default, 136, is
    a single model's). On a descending list ``sigma`` must stay above the second level."""

    def __init__(self, discretization_config, sigma: float):
        super().__init__(discretization_config)
        self.sigma = checks.real("sigma", sigma, positive=True)

    def _params(self) -> dict:
        return {"sigma": self.sigma}

    def apply(self, sigmas: np.ndarray) -> np.ndarray:
        out = sigmas.copy()
        if len(out) > 1 and out[0] > out[1] and not self.sigma > out[1]:
            raise ValueError(f"sigma={self.sigma!r} must be > the schedule's second level {out[1]!r}")
        out[0] = self.sigma
        return out


class ExtendIntermediateSigmas(SigmaListOperation):
    """ComfyUI's ``ExtendIntermediateSigmas``: ``steps - 1`` extra levels inside every step whose upper level lies in
    ``[end_at_sigma, start_at_sigma]``.

    The extra levels are ``s + f(x) (s_next - s)`` for ``x = 1/steps, ..., (steps - 1)/steps``. ``f`` is ``x``
    (``"linear"``), ``sin(pi x / 2)`` (``"cosine"``) or ``1 - cos(pi x / 2)`` (``"sine"``). ``start_at_sigma=None``
    (ComfyUI's -1, any negative value also works) means no upper limit.
    """

    def __init__(
        self,
        discretization_config,
        steps: int = 2,
        start_at_sigma: float | None = None,
        end_at_sigma: float = 12.0,
        spacing: str = "linear",
    ):
        super().__init__(discretization_config)
        self.steps = checks.integer("steps", steps, minimum=1)
        if start_at_sigma is not None:
            start_at_sigma = checks.real("start_at_sigma", start_at_sigma, finite=False)
        self.start_at_sigma = None if start_at_sigma is None or start_at_sigma < 0 else start_at_sigma
        self.end_at_sigma = checks.real("end_at_sigma", end_at_sigma, nonnegative=True)
        self.spacing = close_choice("spacing", spacing, SPACINGS)

    def _params(self) -> dict:
        return {k: getattr(self, k) for k in ("steps", "start_at_sigma", "end_at_sigma", "spacing")}

    def apply(self, sigmas: np.ndarray) -> np.ndarray:
        x = np.linspace(0.0, 1.0, self.steps + 1)[1:-1]
        fractions = {"linear": x, "cosine": np.sin(x * math.pi / 2), "sine": 1.0 - np.cos(x * math.pi / 2)}
        fraction = fractions[self.spacing]
        top = math.inf if self.start_at_sigma is None else self.start_at_sigma
        out = []
        for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
            out.append(sigma)
            if self.end_at_sigma <= sigma <= top:
                out.extend(sigma + fraction * (sigma_next - sigma))
        out.extend(sigmas[-1:])
        return np.asarray(out, dtype=np.float64)


class StepRange(SigmaListOperation):
    """The step range of ComfyUI's ``KSamplerAdvanced`` (``KSampler.sample``): steps ``start_at_step`` to
    ``end_at_step`` of the wrapped ``num_steps``-step schedule.

    An end before the last step cuts the list after ``sigmas[end_at_step]``. With ``return_with_leftover_noise=False``
    (ComfyUI's default, ``force_full_denoise``) that last level becomes 0, so the pass ends denoised. With ``True`` the
    pass stops at ``sigmas[end_at_step]`` and returns the noisy state there, for a second pass to resume. A start
    that leaves no step is refused; ComfyUI returns the latent unchanged there.
    """

    def __init__(
        self,
        discretization_config,
        start_at_step: int = 0,
        end_at_step: int = 10000,
        return_with_leftover_noise: bool = False,
    ):
        super().__init__(discretization_config)
        self.start_at_step = checks.integer("start_at_step", start_at_step, minimum=0)
        self.end_at_step = checks.integer("end_at_step", end_at_step, minimum=0)
        if not isinstance(return_with_leftover_noise, (bool, np.bool_)):
            raise TypeError(f"return_with_leftover_noise must be True or False, got {return_with_leftover_noise!r}")
        self.return_with_leftover_noise = bool(return_with_leftover_noise)

    def _params(self) -> dict:
        return {k: getattr(self, k) for k in ("start_at_step", "end_at_step", "return_with_leftover_noise")}

    def apply(self, sigmas: np.ndarray) -> np.ndarray:
        out = sigmas.copy()
        if self.end_at_step < len(out) - 1:
            out = out[: self.end_at_step + 1]
            if not self.return_with_leftover_noise:
                out[-1] = 0.0
        if self.start_at_step >= len(out) - 1:
            raise ValueError(
                f"start_at_step={self.start_at_step} leaves no step of the {len(sigmas) - 1}-step schedule "
                f"(end_at_step={self.end_at_step}); it must be < {len(out) - 1}"
            )
        return out[self.start_at_step :].copy()
