"""One sampler call's environment: guided model evaluation, noise, progress, callback and bookkeeping.

A sampler's ``step`` receives a :class:`SamplingRun` and calls ``run.denoise(x, sigma)``, ``run.noise(sigma,
sigma_next)`` and ``run.report(...)``; everything that is not the integrator itself lives here (the model
evaluation itself in :mod:`edm_sampler.model_path`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from mindspore import Tensor, ops

from . import checks
from .denoisers import as_denoiser
from .guiders import Guider
from .model_path import ModelOutputError, ModelPath, where
from .noise import GeneratorLike, NoiseSampler, NoiseSource

__all__ = ["ModelOutputError", "SamplingRun", "CHECK_FINITE"]

# When NaN/Inf model outputs are detected: once when the call ends (one host sync per call), after every
# evaluation (fails at the step, one sync per evaluation), or never.
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
        generator: GeneratorLike = None,
        noise_sampler: NoiseSampler | None = None,
        callback: Callable[[dict], None] | None = None,
        model_kwargs: dict | None = None,
        progress: bool = False,
        label: str = "Sampling",
        check_finite: str = "call",
        max_sigma: float | None = None,
        noise_draws: int | None = None,
    ):
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable as callback(dict), got {callback!r}")
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise TypeError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
        self.denoiser = as_denoiser(denoiser)
        self.guider = guider
        self.batch_size = int(x_shape[0])
        uc = cond if uc is None else uc  # sgm: no uc means "guide towards cond itself"
        check_inputs = getattr(guider, "check_inputs", None)  # absent on third-party sgm-style guiders
        if check_inputs is not None:
            check_inputs(cond, uc, self.batch_size)
        self.cond, self.uc = cond, uc
        self.check_finite = checks.choice("check_finite", check_finite, CHECK_FINITE)
        self.model = ModelPath(
            self.denoiser,
            guider,
            cond,
            uc,
            tuple(x_shape),
            model_kwargs or {},
            float(sigmas[0]) if max_sigma is None else max_sigma,
        )
        self.noise = NoiseSource(x_shape, generator, noise_sampler, draws=noise_draws)
        self.sigmas = sigmas
        self.num_steps = len(sigmas) - 1
        self.callback = callback
        self.model_kwargs = model_kwargs or {}
        self.progress = progress
        self.label = label
        self.i = 0
        self.nfe = 0
        self._finite: list[tuple[int, float, Tensor]] = []

    def steps(self) -> Iterator[tuple[int, float, float]]:
        """``(i, sigma_i, sigma_{i+1})`` as Python floats, behind a progress bar whose total is the step count."""
        bar = tqdm(
            range(self.num_steps),
            total=self.num_steps,
            desc=f"{self.label} ({self.num_steps} steps)",
            unit="step",
            disable=not self.progress,
        )
        for i in bar:
            self.i = i
            yield i, float(self.sigmas[i]), float(self.sigmas[i + 1])

    def denoise(self, x: Tensor, sigma: float) -> Tensor:
        """The guided denoiser output at noise level ``sigma`` (one model evaluation), as float32."""
        denoised, finite = self.model(x, sigma, self.i)
        self.nfe += 1
        if self.check_finite == "step":
            if not bool(finite):
                raise ModelOutputError(f"denoiser returned NaN/Inf {where(self.i, sigma)}")
        elif self.check_finite == "call":
            self._finite.append((self.i, sigma, finite))
        return denoised

    def report(self, x: Tensor, sigma: float, sigma_hat: float, denoised: Tensor) -> None:
        """Invoke the user callback with k-diffusion's keys; free when there is no callback."""
        if self.callback is not None:
            self.callback({"x": x, "i": self.i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})

    def close(self) -> None:
        """Release per-call resources (a noise draw still in flight); called whether or not sampling succeeded."""
        self.noise.close()

    def finish(self) -> None:
        """Raise if any model evaluation produced NaN/Inf, naming the first step where it happened."""
        if not self._finite:
            return
        flags = ops.stack([flag for _, _, flag in self._finite]).asnumpy()
        if not flags.all():
            step, sigma, _ = self._finite[int(np.argmin(flags))]
            raise ModelOutputError(f"denoiser returned NaN/Inf {where(step, sigma)}")
