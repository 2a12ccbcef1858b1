"""A faithful reproduction of mindone's SDXL ``gm`` EDM samplers (PyNative), the MindSpore baseline.

It follows ``gm/modules/diffusionmodules/sampler.py`` (``EDMSampler``, ``EulerEDMSampler``, ``HeunEDMSampler``),
``sampling_utils.to_d``, ``gm.util.append_dims`` and the NumPy ``EDMDiscretization``, including what makes it slow:
a float64 NumPy schedule turned into ``s_in * sigmas[i]`` Tensors every step, ``append_dims`` indexing and
``[B,1,1,1]`` broadcasts, a division in ``to_d``, churn noise from the *global* NumPy RNG (``np.random.randn``,
float64, copied to a Tensor), and Heun's ``ops.sum(next_sigma) < 1e-14`` host sync plus ``ops.where``. Only the
model call differs: mindone calls a ``DiffusionEngine``; here the plain ``D(x, sigma, cond)`` takes its place
(``model_output.astype(float32)`` and the guider are kept). ``randn`` exists so a sanity check can inject noise.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

import mindspore as ms
from mindspore import Tensor, ops


def edm_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> np.ndarray:
    """gm's ``EDMDiscretization`` + ``append_zero``: float64 NumPy, descending, trailing 0."""
    ramp = np.linspace(0, 1, n)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    return np.concatenate([sigmas, np.zeros([1], dtype=sigmas.dtype)])


def append_dims(x, target_dims):
    """gm.util.append_dims: one ``[..., None]`` indexing op per appended axis."""
    dims_to_append = target_dims - x.ndim
    if dims_to_append < 0:
        raise ValueError(f"input has {x.ndim} dims but target_dims is {target_dims}, which is less")
    for _ in range(dims_to_append):
        x = x[..., None]
    return x


def to_d(x, sigma, denoised):
    return (x - denoised) / append_dims(sigma, x.ndim)


class IdentityGuider:
    def prepare_inputs(self, x, s, c, uc):
        return x, s, c

    def __call__(self, x, sigma):
        return x


def global_randn(shape) -> np.ndarray:
    return np.random.randn(*shape)  # the global NumPy RNG, float64: mindone's noise source


class MindoneStyleEDMSampler:
    """mindone's ``EulerEDMSampler`` (``heun=False``) or ``HeunEDMSampler`` (``heun=True``) loop."""

    def __init__(self, heun: bool, s_churn=0.0, s_tmin=0.0, s_tmax=float("inf"), s_noise=1.0, num_steps=None):
        self.heun = heun
        self.s_churn, self.s_tmin, self.s_tmax, self.s_noise = s_churn, s_tmin, s_tmax, s_noise
        self.num_steps = num_steps
        self.guider = IdentityGuider()
        self.randn: Callable = global_randn

    def prepare_sampling_loop(self, x, cond, uc=None, num_steps=None):
        sigmas = edm_sigmas(self.num_steps if num_steps is None else num_steps)
        uc = cond if uc is None else uc
        x *= Tensor(np.sqrt(1.0 + sigmas[0] ** 2.0), x.dtype)  # rebinds in MindSpore 2.10: the input is kept
        num_sigmas = len(sigmas)
        s_in = ops.ones((x.shape[0],), x.dtype)
        return x, s_in, sigmas, num_sigmas, cond, uc

    def denoise(self, x, model, sigma, cond, uc):
        noised_input, sigmas, cond = self.guider.prepare_inputs(x, sigma, cond, uc)
        model_output = model(noised_input, sigmas, cond)  # mindone: scalings + model.model(...) of the engine
        model_output = model_output.astype(ms.float32)
        return self.guider(model_output, sigma)

    def sampler_step(self, sigma, next_sigma, model, x, cond, uc=None, gamma=0.0):
        sigma_hat = sigma * (gamma + 1.0)
        if gamma > 0:
            eps = Tensor(self.randn(x.shape), x.dtype) * self.s_noise
            x = x + eps * append_dims(sigma_hat**2 - sigma**2, x.ndim) ** 0.5
        denoised = self.denoise(x, model, sigma_hat, cond, uc)
        d = to_d(x, sigma_hat, denoised)
        dt = append_dims(next_sigma - sigma_hat, x.ndim)
        euler_step = x + dt * d
        return self.possible_correction_step(euler_step, x, d, dt, next_sigma, model, cond, uc)

    def possible_correction_step(self, euler_step, x, d, dt, next_sigma, model, cond, uc):
        if not self.heun:
            return euler_step
        if ops.sum(next_sigma) < 1e-14:  # a host sync every step
            return euler_step
        denoised = self.denoise(euler_step, model, next_sigma, cond, uc)
        d_new = to_d(euler_step, next_sigma, denoised)
        d_prime = (d + d_new) / 2.0
        return ops.where(append_dims(next_sigma, x.ndim) > 0.0, x + d_prime * dt, euler_step)

    def __call__(self, model, x, cond, uc=None, num_steps=None):
        x = ops.cast(x, ms.float32)
        x, s_in, sigmas, num_sigmas, cond, uc = self.prepare_sampling_loop(x, cond, uc, num_steps)
        for i in range(num_sigmas - 1):
            gamma = min(self.s_churn / (num_sigmas - 1), 2**0.5 - 1) if self.s_tmin <= sigmas[i] <= self.s_tmax else 0.0
            x = self.sampler_step(s_in * sigmas[i], s_in * sigmas[i + 1], model, x, cond, uc, gamma)
        return x
