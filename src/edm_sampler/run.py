"""One sampler call's environment: guided model evaluation, noise, progress, callback and bookkeeping.

A sampler's ``step`` receives a :class:`SamplingRun` and calls ``run.denoise(x, sigma)``, ``run.noise(sigma,
sigma_next)`` and ``run.report(...)``; everything that is not the integrator itself lives here (the model
evaluation itself in :mod:`edm_sampler.model_path`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from mindspore import Tensor, ops

from . import checks, parametrization
from .denoisers import as_denoiser
from .experts import ExpertSwitch, SwitchingModelPath
from .guiders import Guider
from .model_path import ModelOutputError, ModelPath, where
from .noise import GeneratorLike, NoiseSampler, NoiseSource
from .progress import progress_bar

__all__ = ["ModelOutputError", "SamplingRun", "CHECK_FINITE"]

# When NaN/Inf model outputs are detected: in the result when the call ends (NaN/Inf in any model output reaches the
# sample through the update; one reduction and sync per call), after every evaluation (names the step; one reduction
# and sync per evaluation, which costs about as much as the rest of a cheap model's step), or never.
CHECK_FINITE = ("call", "step", "off")


class SamplingRun:
    """Per-call state shared by the sampler loop and its steps. Built by ``BaseDiffusionSampler.__call__``."""

    def __init__(
        self,
        *,
        denoiser: Any,
        guider: Guider,
        x_shape: tuple[int, ...],
        sigmas: np.ndarray,
        cond: Any = None,
        uc: Any = None,
        noise: Callable[[float, float], Tensor] | None = None,
        generator: GeneratorLike = None,
        noise_sampler: NoiseSampler | None = None,
        callback: Callable[[dict], None] | None = None,
        model_kwargs: dict | None = None,
        progress: bool = False,
        label: str = "Sampling",
        check_finite: str = "call",
        max_sigma: float | None = None,
        step_sigmas: np.ndarray | None = None,
    ):
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable as callback(dict), got {callback!r}")
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise TypeError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
        self.denoiser = as_denoiser(denoiser)
        # the state the denoiser works in ("ve" or "flow"): the host-side math of re-noising and exponential steps
        self.param = parametrization.of(self.denoiser)
        # a guider may take per-call settings from the model's keyword arguments (SVD's num_video_frames)
        for_call = getattr(guider, "for_call", None)
        self.guider = guider = for_call(model_kwargs or {}) if for_call is not None else guider
        self.batch_size = int(x_shape[0])
        uc = cond if uc is None else uc  # sgm: no uc means "guide towards cond itself"
        check_inputs = getattr(guider, "check_inputs", None)  # absent on third-party sgm-style guiders
        if check_inputs is not None:
            check_inputs(cond, uc, self.batch_size)
        self.cond, self.uc = cond, uc
        self.check_finite = checks.choice("check_finite", check_finite, CHECK_FINITE)
        # two experts: one model path each, chosen per step (edm_sampler.experts)
        args = (
            guider,
            cond,
            uc,
            tuple(x_shape),
            model_kwargs or {},
            float(sigmas[0]) if max_sigma is None else max_sigma,
        )
        denoiser = self.denoiser
        self.model = (
            SwitchingModelPath(denoiser, *args) if isinstance(denoiser, ExpertSwitch) else ModelPath(denoiser, *args)
        )
        # ``noise`` is the sampler's own source (e.g. Brownian increments); otherwise Gaussian draws from the generator
        self.noise = NoiseSource(x_shape, generator, noise_sampler) if noise is None else noise
        self.sigmas = sigmas
        # (sigma, sigma_next) of each step the sampler's plan takes: the schedule's pairs, unless the sampler walks
        # other levels (RestartSampler goes back up); the step count, progress bar and callback's sigma follow it
        if step_sigmas is None:
            step_sigmas = np.stack([sigmas[:-1], sigmas[1:]], axis=1)
        self.step_sigmas = np.asarray(step_sigmas, np.float64).reshape(-1, 2)
        self.num_steps = len(self.step_sigmas)
        self.callback = callback
        self.model_kwargs = model_kwargs or {}
        self.progress = progress
        self.label = label
        self.i = 0
        self.nfe = 0
        self.model_rows = 0  # the rows of every model batch evaluated (CFG: 2 B per evaluation)

    def steps(self) -> Iterator[tuple[int, float, float]]:
        """``(i, sigma_i, sigma_{i+1})`` as Python floats, behind a progress bar whose total is the step count."""
        bar = progress_bar(
            range(self.num_steps),
            total=self.num_steps,
            desc=f"{self.label} ({self.num_steps} steps)",
            unit="step",
            disable=not self.progress,
        )
        for i in bar:
            self.i = i
            yield i, float(self.step_sigmas[i, 0]), float(self.step_sigmas[i, 1])

    def denoise(self, x: Tensor, sigma: float, with_uncond: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The guided denoiser output at noise level ``sigma`` (one model evaluation), as float32; with
        ``with_uncond``, ``(guided, unconditional)`` from that one evaluation (CFG++ samplers)."""
        rows = self.model.rows_at(sigma, self.i)  # 0: the guider's variant makes no model call (CFG-Zero*)
        denoised = self.model(x, sigma, self.i, with_uncond)
        self.nfe += rows > 0
        self.model_rows += rows
        if self.check_finite == "step" and not bool(ops.isfinite(denoised[0] if with_uncond else denoised).all()):
            raise ModelOutputError(f"the denoiser returned NaN/Inf {where(self.i, sigma)}")
        return denoised

    def report(self, x: Tensor, sigma: float, sigma_hat: float, denoised: Tensor) -> None:
        """Invoke the user callback with k-diffusion's keys; free when there is no callback."""
        if self.callback is not None:
            self.callback({"x": x, "i": self.i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})

    def finish(self, x: Tensor) -> None:
        """With ``check_finite="call"``, raise if the result holds NaN/Inf (any bad model output ends up there)."""
        if self.check_finite == "call" and self.nfe and not bool(ops.isfinite(x).all()):
            raise ModelOutputError(
                f"the result holds NaN/Inf after {self.nfe} model evaluations: a model output (or the input x) was "
                "not finite (sample with check_finite='step' to stop at the evaluation that produced it)"
            )
