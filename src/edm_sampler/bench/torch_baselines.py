"""The PyTorch side: k-diffusion's samplers, loaded without its heavy package, and a torch twin of TinyConvNet.

``k_diffusion/__init__.py`` imports torchvision, kornia, clip, wandb and more; ``sampling.py`` itself needs only
torch, scipy, torchdiffeq, torchsde, tqdm and ``utils.append_dims``. So the file is loaded by path under a private
package name, next to a stub ``utils`` module. Nothing here imports torch until :func:`load` runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

from .machine import package_version

_PACKAGE = "_edm_sampler_bench_kdiffusion"  # private name: never shadows a real k_diffusion import


@dataclass
class TorchBaselines:
    torch: Any
    sampling: Any  # k_diffusion/sampling.py as a module
    torch_version: str
    kdiffusion_version: str | None


def _load_sampling(torch) -> Any:
    spec = importlib.util.find_spec("k_diffusion")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k_diffusion is not installed")
    paths = [os.path.join(p, "sampling.py") for p in spec.submodule_search_locations]
    path = next((p for p in paths if os.path.isfile(p)), None)
    if path is None:
        raise ImportError(f"k_diffusion/sampling.py not found in {list(spec.submodule_search_locations)}")
    name = f"{_PACKAGE}.sampling"
    if name in sys.modules:
        return sys.modules[name]

    package = types.ModuleType(_PACKAGE)
    package.__path__ = []  # a package, so that sampling.py's "from . import utils" resolves
    utils = types.ModuleType(f"{_PACKAGE}.utils")

    def append_dims(x, target_dims):
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    package.utils = utils
    sys.modules[_PACKAGE] = package
    sys.modules[utils.__name__] = utils
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        for key in (name, utils.__name__, _PACKAGE):
            sys.modules.pop(key, None)
        raise
    return module


def load(threads: int, disabled: bool = False) -> tuple[TorchBaselines | None, str | None]:
    """``(baselines, None)``, or ``(None, reason)`` when torch or k-diffusion cannot be used."""
    if disabled:
        return None, "disabled (--no-torch)"
    try:
        import torch
    except ImportError as err:
        return None, f"torch not installed ({err})"
    torch.set_num_threads(threads)
    try:
        sampling = _load_sampling(torch)
    except Exception as err:  # ImportError, or a k-diffusion release whose sampling.py needs more
        return None, f"k-diffusion not usable ({type(err).__name__}: {err})"
    return TorchBaselines(torch, sampling, torch.__version__, package_version("k-diffusion")), None


class NoiseInjectedTorch:
    """Stands in for ``torch`` inside k-diffusion's sampling module so ``torch.randn_like`` returns given arrays."""

    def __init__(self, torch, arrays):
        self._torch = torch
        self._arrays = iter(arrays)

    def randn_like(self, x, **kwargs):
        return self._torch.from_numpy(np.array(next(self._arrays), dtype=np.float32)).to(x.dtype)

    def __getattr__(self, name):
        return getattr(self._torch, name)


@contextlib.contextmanager
def with_noise(tb: TorchBaselines, arrays):
    """k-diffusion's churn noise (``torch.randn_like``) comes from ``arrays``, in order, inside the block."""
    sampling = tb.sampling
    real = sampling.torch
    sampling.torch = NoiseInjectedTorch(real, arrays)
    try:
        yield
    finally:
        sampling.torch = real


def make_twin(tb: TorchBaselines, net) -> Any:
    """A torch ``nn.Module`` computing what ``edm_sampler.models.convnet.TinyConvNet`` computes, same weights."""
    torch = tb.torch
    nn = torch.nn

    class TorchTinyConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            cin, ch, vd = net.in_channels, net.channels, net.vector_dim
            self.conv_in = nn.Conv2d(cin, ch, 3, padding=1)  # MindSpore pad_mode="same" for a 3x3, stride 1
            self.conv_1 = nn.Conv2d(ch, ch, 3, padding=1)
            self.conv_2 = nn.Conv2d(ch, ch, 3, padding=1)
            self.conv_out = nn.Conv2d(ch, cin, 3, padding=1)
            self.noise_embed = nn.Linear(1, ch)
            self.vector_embed = nn.Linear(vd, ch)
            self.act = nn.SiLU()

        def forward(self, x, c_noise, vector=None):
            emb = self.noise_embed(c_noise.reshape(-1, 1))
            if vector is not None:
                emb = emb + self.vector_embed(vector)
            h = self.act(self.conv_in(x) + emb.reshape(emb.shape[0], -1, 1, 1))
            h = self.act(self.conv_1(h))
            h = self.act(self.conv_2(h))
            return self.conv_out(h)

    twin = TorchTinyConvNet()
    params = {p.name: p.asnumpy() for p in net.get_parameters()}
    state = {}
    for key in twin.state_dict():
        source = params.get(key)
        if source is None:
            raise KeyError(f"no MindSpore parameter for {key}; TinyConvNet changed (have {sorted(params)})")
        state[key] = torch.from_numpy(np.array(source, dtype=np.float32))
    twin.load_state_dict(state)
    return twin.eval()


def edm_denoiser(tb: TorchBaselines, twin, sigma_data: float = 0.5):
    """k_diffusion.layers.Denoiser's EDM preconditioning around ``twin``: ``D(x, sigma, vector)``."""
    append_dims = sys.modules[f"{_PACKAGE}.utils"].append_dims

    def denoise(x, sigma, vector=None):
        c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
        c_out = sigma * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
        c_in = 1 / (sigma**2 + sigma_data**2) ** 0.5
        c_noise = sigma.log() / 4
        c_skip, c_out, c_in = (append_dims(c, x.ndim) for c in (c_skip, c_out, c_in))
        return twin(x * c_in, c_noise, vector) * c_out + x * c_skip

    return denoise


def cfg_model(tb: TorchBaselines, denoise, scale: float):
    """Classifier-free guidance the usual way: one call on ``[x, x]`` with ``[uc, c]``, then ``u + (c - u) * s``."""
    torch = tb.torch

    def model(x, sigma, cond=None, uncond=None):
        out = denoise(torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([uncond, cond]))
        u, c = out.chunk(2)
        return u + (c - u) * scale

    return model


def sample_lcm(tb: TorchBaselines, model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """LCM sampling as ComfyUI's ``k_diffusion.sampling.sample_lcm`` does it for an EPS (VE) model, whose
    ``noise_scaling(sigma, noise, x)`` is ``x + noise * sigma``. k-diffusion 0.1.1.post1 has no ``sample_lcm``; this is
    its loop, line for line, on the loaded ``sampling`` module (so ``with_noise`` reaches its ``torch.randn_like``)."""
    sampling = tb.sampling
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = sampling.default_noise_sampler(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    with tb.torch.no_grad():
        for i in sampling.trange(len(sigmas) - 1, disable=disable):
            denoised = model(x, sigmas[i] * s_in, **extra_args)
            if callback is not None:
                callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
            x = denoised
            if sigmas[i + 1] > 0:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1]
    return x
