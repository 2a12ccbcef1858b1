"""One sampler call's environment: guided model evaluation, noise, progress, callback and bookkeeping.

A sampler's ``step`` receives a :class:`SamplingRun` and calls ``run.denoise(x, sigma)``, ``run.noise(sigma,
sigma_next)`` and ``run.report(...)``; everything that is not the integrator itself lives here.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

import mindspore as ms
from mindspore import Tensor, ops

from .denoisers import as_denoiser
from .guiders import Guider
from .noise import GeneratorLike, NoiseSampler, NoiseSource


class ModelOutputError(ValueError):
    """The denoiser returned something a sampler cannot use (wrong type, wrong shape, NaN/Inf)."""


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
        self.noise = NoiseSource(x_shape, generator, noise_sampler)
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
        sigma_t = Tensor(np.full((self.batch_size,), sigma, dtype=np.float32))
        x_in, sigma_in, cond_in = self.guider.prepare_inputs(x, sigma_t, self.cond, self.uc)
        out = self.denoiser(x_in, sigma_in, cond_in, **self.model_kwargs)
        if not isinstance(out, Tensor):
            raise ModelOutputError(
                f"denoiser returned {type(out).__name__} {self._where(self.i, sigma)}; expected a Tensor"
            )
        # Reading .shape waits for the model to finish, which stalls the host-side noise draws behind it
        # (about 0.5 ms per step here), so only the first evaluation of a call is checked.
        if self.nfe == 0 and tuple(out.shape) != tuple(x_in.shape):
            raise ModelOutputError(
                f"denoiser returned shape {tuple(out.shape)} {self._where(self.i, sigma)}; expected {tuple(x_in.shape)}"
            )
        self.nfe += 1
        out = out.astype(ms.float32)  # free when it already is
        # NaN/Inf are checked lazily in finish(): one host sync per call instead of one per evaluation.
        self._finite.append((self.i, sigma, ops.isfinite(out).all()))
        return self.guider(out, sigma_t)

    @staticmethod
    def _where(step: int, sigma: float) -> str:
        return f"at step {step} (sigma={sigma:.6g})"

    def report(self, x: Tensor, sigma: float, sigma_hat: float, denoised: Tensor) -> None:
        """Invoke the user callback with k-diffusion's keys; free when there is no callback."""
        if self.callback is not None:
            self.callback({"x": x, "i": self.i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})

    def finish(self) -> None:
        """Raise if any model evaluation produced NaN/Inf, naming the first step where it happened."""
        if not self._finite:
            return
        flags = ops.stack([flag for _, _, flag in self._finite]).asnumpy()
        if not flags.all():
            step, sigma, _ = self._finite[int(np.argmin(flags))]
            raise ModelOutputError(f"denoiser returned NaN/Inf {self._where(step, sigma)}")
