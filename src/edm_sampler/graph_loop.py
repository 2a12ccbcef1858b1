"""Opt-in whole-loop graph mode: the EDM Euler/Heun loop as one compiled MindSpore graph.

``EulerEDMSampler(..., graph_loop=True)`` runs every step inside one ``while`` loop over a tensor index (never an
unrolled ``for``: compile time does not grow with the step count), with the network, the preconditioning and the
guider compiled into the same graph. Everything the loop needs per step is prepared on the host first, from the
same float64 schedule and the same noise draws, in the same order, as the step-by-step sampler: per-step noise
standard deviations and ODE coefficients, the preconditioning at each noise level, and the churn noise itself.
Results equal the step-by-step path to float32 rounding (graph kernels may round differently).

It needs a network bound with :meth:`Denoiser.bind` that is an ``nn.Cell``, a built-in guider, no callback, no
``model_kwargs`` and ``check_finite`` other than ``"step"``; it compiles once per (sampler kind, shapes, step
count) and the compiled loop is cached on the bound denoiser.
"""

from __future__ import annotations

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from .denoisers import BoundDenoiser, c_noise_tensor
from .guiders import Guider
from .model_path import GuidedNetwork, ModelOutputError, describe, first_line


class _Loop(nn.Cell):
    """A sampling loop around one guided network; ``construct`` takes the host-prepared per-step arrays."""

    def __init__(self, guided: GuidedNetwork):
        super().__init__()
        self.guided = guided


class EulerLoop(_Loop):
    """Algorithm 2 with Euler steps: churn, one guided evaluation, ``x + (x - D) / sigma_hat * dt``."""

    @ms.jit
    def construct(self, x, keep, noise, noise_std, inv_sigma, dt, c_in, c_skip, c_out, c_noise, cond, scale):
        i = ops.zeros((), ms.int32)
        n = noise_std.shape[0]
        while i < n:
            x = x * keep[i] + noise[i] * noise_std[i]
            denoised = self.guided(x, c_in[i], c_skip[i], c_out[i], c_noise[i], cond, scale[i])
            x = x + (x - denoised) * inv_sigma[i] * dt[i]
            i = i + 1
        return x


class HeunLoop(_Loop):
    """Algorithm 2 in full: Euler predictor, trapezoidal corrector except on the last step to sigma = 0.

    Evaluation ``2 i`` is at ``sigma_hat_i`` and ``2 i + 1`` at ``sigma_{i+1}``, so the per-evaluation arrays
    interleave the two.
    """

    @ms.jit
    def construct(self, x, keep, noise, noise_std, inv_sigma, dt, c_in, c_skip, c_out, c_noise, cond, scale):
        i = ops.zeros((), ms.int32)
        n = noise_std.shape[0]
        while i < n:
            j = i * 2
            x_hat = x * keep[i] + noise[i] * noise_std[i]
            d = (x_hat - self.guided(x_hat, c_in[j], c_skip[j], c_out[j], c_noise[j], cond, scale[j])) * inv_sigma[j]
            x = x_hat + d * dt[i]
            if inv_sigma[j + 1] > 0:  # sigma_{i+1} > 0: the trapezoidal correction
                k = j + 1
                denoised = self.guided(x, c_in[k], c_skip[k], c_out[k], c_noise[k], cond, scale[k])
                d_next = (x - denoised) * inv_sigma[k]
                x = x_hat + (d + d_next) * (0.5 * dt[i])
            i = i + 1
        return x


def check_supported(sampler, denoiser, guider, callback, model_kwargs, check_finite) -> None:
    """Raise a ValueError naming what keeps a call from running as one graph."""
    problems = []
    builtin_step = {"euler": "EDMSampler", "heun": "HeunEDMSampler"}[sampler.loop_kind]
    owner = next(c for c in type(sampler).__mro__ if "step" in vars(c))
    if owner.__name__ != builtin_step or owner.__module__ != __package__ + ".samplers.edm":
        problems.append(f"{type(sampler).__name__} overrides step(), and the compiled loop is the built-in one")
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


def loop_cell(kind: str, denoiser: BoundDenoiser, guider: Guider) -> nn.Cell:
    """The compiled loop for this sampler kind, guider type and network, cached on the bound denoiser."""
    key = (kind, type(guider).expand, guider.combine)
    cells = denoiser.__dict__.setdefault("_loop_cells", {})
    if key not in cells:
        guided = GuidedNetwork(denoiser.network, guider, denoiser.dtype)
        cells[key] = (HeunLoop if kind == "heun" else EulerLoop)(guided)
    return cells[key]


def preconditioning_arrays(denoiser: BoundDenoiser, levels: list[float], model_batch: int):
    """``c_in, c_skip, c_out`` as ``(E,)`` and ``c_noise`` as ``(E, model batch)`` Tensors for E noise levels, from
    one host computation (a level of 0, never evaluated, gets placeholder values). Levels are rounded to float32
    first, as the step-by-step path does."""
    sigma = np.array([level if level > 0 else 1.0 for level in levels], np.float32).astype(np.float64)
    c_skip, c_out, c_in, c_noise = denoiser.denoiser.host_scalings(sigma)
    c_in, c_skip, c_out = (Tensor(c.astype(np.float32)) for c in (c_in, c_skip, c_out))
    return c_in, c_skip, c_out, c_noise_tensor(np.repeat(c_noise[:, None], model_batch, axis=1), denoiser.dtype)


def sample_loop(kind: str, sampler, run, x: Tensor) -> Tensor:
    """Run the whole schedule of ``run`` as one graph; ``sampler`` is an :class:`~edm_sampler.EDMSampler`."""
    denoiser, guider, path = run.denoiser, run.guider, run.model
    n = run.num_steps
    sigmas = [float(s) for s in run.sigmas]
    sigma_hat, keep, noise_std, draws = [], [], [], []
    for i in range(n):
        hat, a, std = sampler.churn_plan(run.param, sigmas[i], n)
        sigma_hat.append(hat)
        keep.append(a)
        noise_std.append(std)
        # the same draws, in the same order, as the step-by-step sampler
        draws.append(run.noise(sigmas[i], sigmas[i + 1]).asnumpy() if hat != sigmas[i] else None)
    zeros = np.zeros(tuple(x.shape), np.float32)
    noise = Tensor(np.stack([zeros if d is None else d for d in draws]))
    if kind == "heun":  # evaluations at sigma_hat_i and sigma_{i+1}, interleaved
        levels = [s for i in range(n) for s in (sigma_hat[i], sigmas[i + 1])]
        run.nfe += 2 * n - (1 if sigmas[-1] == 0 else 0)
    else:
        levels = sigma_hat
        run.nfe += n
    inv_sigma = Tensor(np.array([1.0 / s if s > 0 else 0.0 for s in levels], np.float32))
    dt = Tensor(np.array([sigmas[i + 1] - sigma_hat[i] for i in range(n)], np.float32))
    c_in, c_skip, c_out, c_noise = preconditioning_arrays(denoiser, levels, path.model_batch)
    scale = Tensor(np.array([guider.scale_at(level, tuple(x.shape)) for level in levels], np.float32))
    noise_std = Tensor(np.array(noise_std, np.float32))
    keep = Tensor(np.array(keep, np.float32))
    loop = loop_cell(kind, denoiser, guider)
    try:
        return loop(x, keep, noise, noise_std, inv_sigma, dt, c_in, c_skip, c_out, c_noise, path.model_cond, scale)
    except Exception as err:
        net_in = describe(denoiser.network_input(guider.expand(x), 1.0))
        raise ModelOutputError(
            f"the compiled sampling loop (graph_loop=True) failed: {type(err).__name__}: {first_line(err)}\n"
            f"  the network is called as network {type(denoiser.network).__name__}({net_in}, "
            f"{describe(c_noise[0])}, {describe(path.model_cond)})"
        ) from err
