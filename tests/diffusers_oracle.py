"""diffusers (PyTorch, CPU) as the test oracle for scheduler configs: its own pipeline loop in float64, and the same
loop through edm_sampler, both recording every network call.

Only imported by tests that first ``pytest.importorskip("diffusers")``. diffusers builds its training tables in
float32; :func:`float64_scheduler` rebuilds them in float64 from the config (written here from the published
formulas, independently of edm_sampler), so the reference is float64 up to diffusers' own float32 casts of the
inference sigmas (about 6e-8 relative).
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import torch

import mindspore as ms
from mindspore import Tensor, ops

import edm_sampler as es


def betas64(config: dict) -> np.ndarray:
    T = config.get("num_train_timesteps", 1000)
    if config.get("trained_betas") is not None:
        return np.asarray(config["trained_betas"], np.float64)
    start, end = config.get("beta_start", 0.0001), config.get("beta_end", 0.02)
    kind = config.get("beta_schedule", "linear")
    if kind == "linear":
        return np.linspace(start, end, T)
    if kind == "scaled_linear":
        return np.linspace(start**0.5, end**0.5, T) ** 2
    assert kind == "squaredcos_cap_v2", kind

    def bar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return np.array([min(1 - bar((i + 1) / T) / bar(i / T), 0.999) for i in range(T)])


def zero_snr(betas: np.ndarray) -> np.ndarray:
    root = np.sqrt(np.cumprod(1 - betas))
    root = (root - root[-1]) * root[0] / (root[0] - root[-1])
    bar = root**2
    return 1 - np.concatenate([bar[:1], bar[1:] / bar[:-1]])


# the schedulers that clamp a zero-SNR table's last alpha to 2**-24 (DDIM, DDPM, LCM and TCD keep alpha = 0 there)
CLAMPED_ZERO_SNR = (
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "UniPCMultistepScheduler",
)


def float64_tables(scheduler) -> np.ndarray:
    """Rebuild a DDPM-family scheduler's training tables in float64 (betas, alphas, alphas_cumprod, and what its
    ``__init__`` derives from them: final_alpha_cumprod, alpha_t, sigma_t, lambda_t); returns alphas_cumprod."""
    config = dict(scheduler.config)  # with the class's own defaults
    betas = betas64(config)
    if config.get("rescale_betas_zero_snr"):
        betas = zero_snr(betas)
    alphas_cumprod = np.cumprod(1 - betas)
    if config.get("rescale_betas_zero_snr") and type(scheduler).__name__ in CLAMPED_ZERO_SNR:
        alphas_cumprod[-1] = 2.0**-24
    scheduler.betas = torch.from_numpy(betas)
    scheduler.alphas = torch.from_numpy(1 - betas)
    scheduler.alphas_cumprod = torch.from_numpy(alphas_cumprod)
    if hasattr(scheduler, "final_alpha_cumprod"):
        one = config.get("set_alpha_to_one", True)
        scheduler.final_alpha_cumprod = torch.tensor(1.0 if one else alphas_cumprod[0], dtype=torch.float64)
    if hasattr(scheduler, "lambda_t"):
        scheduler.alpha_t = torch.from_numpy(np.sqrt(alphas_cumprod))
        scheduler.sigma_t = torch.from_numpy(np.sqrt(1.0 - alphas_cumprod))
        scheduler.lambda_t = torch.log(scheduler.alpha_t) - torch.log(scheduler.sigma_t)
    return alphas_cumprod


def float64_repeating_sigmas(scheduler, table: np.ndarray, n: int) -> np.ndarray:
    """The float64 sigmas of DEIS's and SA-Solver's ``set_timesteps(n)`` (flow and Karras schedules repeat their last
    sigma; the default one ends at the table's first level), checked against diffusers' float32 ones and put in their
    place."""
    cfg = scheduler.config
    if cfg.use_flow_sigmas:
        s = 1.0 - np.linspace(1.0, 1.0 / cfg.num_train_timesteps, n + 1)
        s = np.flip(cfg.flow_shift * s / (1.0 + (cfg.flow_shift - 1.0) * s))[:-1]
        sigmas = np.concatenate([s, s[-1:]])
    elif cfg.use_karras_sigmas:
        s = scheduler._convert_to_karras(in_sigmas=np.flip(table).copy(), num_inference_steps=n)
        sigmas = np.concatenate([s, s[-1:]])
    else:
        sigmas = np.concatenate([table[scheduler.timesteps.numpy()], table[:1]])
    np.testing.assert_allclose(scheduler.sigmas.numpy(), sigmas, rtol=1e-6)  # what diffusers has, to float32
    scheduler.sigmas = torch.from_numpy(sigmas)
    return sigmas


def float64_scheduler(config: dict):
    """diffusers' scheduler for ``config`` with its training tables rebuilt in float64."""
    import diffusers

    scheduler = getattr(diffusers, config["_class_name"]).from_config(config)
    if hasattr(scheduler, "alphas_cumprod"):
        float64_tables(scheduler)
    return scheduler


def torch_model(x_in, t):
    """The test network (any prediction type): a smooth, nonlinear function of the input and the timestep.
    Only exactly rounded arithmetic on x (MindSpore's CPU tanh was measured 1e-4 off for |x| in [4, 9])."""
    return x_in * (1 + 0.1 * x_in * x_in) / (1 + 0.3 * x_in * x_in) * torch.cos(t / 300.0) + 0.05 * x_in


class MindSporeModel:
    """The same network in MindSpore, called as ``network(x_in, timestep, cond)``; records every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_in, timestep, cond):
        self.calls.append((x_in.asnumpy().astype(np.float64), timestep.asnumpy().astype(np.float64)))
        return _network(x_in, timestep)


def _network(x_in, timestep):
    t = timestep.reshape((-1,) + (1,) * (x_in.ndim - 1))
    return x_in * (1 + 0.1 * x_in * x_in) / (1 + 0.3 * x_in * x_in) * ops.cos(t / 300.0) + 0.05 * x_in


def float64_sigmas(scheduler, levels) -> None:
    """Put float64 levels in place of diffusers' float32 ``scheduler.sigmas`` where they are the same list (diffusers
    casts its inference sigmas to float32: near sigma = 1 that moves a flow model's alpha = 1 - sigma by 2e-4)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if not isinstance(sigmas, torch.Tensor) or levels is None:
        return
    current = sigmas.double().numpy()
    k = len(levels)
    if len(current) in (k, k + 1) and np.allclose(current[:k], levels, rtol=2e-6, atol=1e-7):
        fixed = current.copy()
        fixed[:k] = levels
        if len(current) == k + 1 and current[k] == current[k - 1]:  # a repeated last sigma stays repeated
            fixed[k] = levels[-1]
        scheduler.sigmas = torch.from_numpy(fixed)


def run_diffusers(config: dict, n: int, noise: np.ndarray, noises=(), set_timesteps=None, step=None, levels=None):
    """diffusers' pipeline loop in float64: ``(result, calls)``, calls = [(x_in, t)]. ``levels`` (float64) replace
    diffusers' float32 inference sigmas where they agree to float32 precision."""
    scheduler = float64_scheduler(config)
    module = importlib.import_module(type(scheduler).__module__)
    pending = [torch.from_numpy(z) for z in noises]
    original = getattr(module, "randn_tensor", None)
    if original is not None:
        module.randn_tensor = lambda shape, **kw: pending.pop(0)
    try:
        scheduler.set_timesteps(n, **(set_timesteps or {}))
        float64_sigmas(scheduler, levels)
        latents = torch.from_numpy(noise) * getattr(scheduler, "init_noise_sigma", 1.0)  # flow: 1
        calls = []
        for t in scheduler.timesteps:
            x_in = scheduler.scale_model_input(latents, t) if hasattr(scheduler, "scale_model_input") else latents
            t64 = torch.as_tensor(t, dtype=torch.float64)
            calls.append((x_in.numpy().copy(), float(t)))
            latents = scheduler.step(torch_model(x_in, t64), t, latents, **(step or {})).prev_sample
    finally:
        if original is not None:
            module.randn_tensor = original
    return latents.numpy(), calls


def run_edm_sampler(config, n: int, noise: np.ndarray, noises=(), graph_loop=False, **options):
    """The same run through ``load_sampler`` / ``load_denoiser``: ``(result, calls, sampler)`` (no calls recorded
    with ``graph_loop``, which needs an ``nn.Cell``)."""
    sampler = es.load_sampler(config, num_steps=n, graph_loop=graph_loop, **options)
    model = CellModel() if graph_loop else MindSporeModel()
    denoiser = es.load_denoiser(config).bind(model, dtype=ms.float32)
    levels = sampler.discretization(n)
    queue = list(noises)

    def noise_sampler(sigma, sigma_next):  # the i-th step's draw, whatever the sampler draws before it
        i = int(np.argmin(np.abs(levels - sigma)))
        return Tensor(queue[i].astype(np.float32))

    out = sampler(denoiser, Tensor(noise.astype(np.float32)), noise_sampler=noise_sampler if noises else None)
    return out.asnumpy().astype(np.float64), getattr(model, "calls", None), sampler


def relative(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(np.asarray(b)), 1e-30))


class CellModel(ms.nn.Cell):
    """The test network as an ``nn.Cell`` (for graph mode and the compiled loop; records nothing)."""

    def construct(self, x_in, timestep, cond):
        return _network(x_in, timestep)
