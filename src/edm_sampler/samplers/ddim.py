"""DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12), with the limits diffusers' and the
original code put on its x0 term."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..functional import axmy, axpy, euler_to, renoise, scaled
from ..parametrization import Parametrization
from . import coefficients, options
from .ancestral import AncestralSampler
from .base import Level, NoiseFn, Plan, pairs


def _x0_limit(name: str, value: Any):
    """None, a limit cell, or its ``{target, params}`` config (``clip_x0``, ``threshold_x0``)."""
    from mindspore import nn

    from ..registry import instantiate_from_config

    if isinstance(value, Mapping):
        value = instantiate_from_config(value)
    if value is not None and not isinstance(value, nn.Cell):
        raise TypeError(
            f"{name} must be None or an nn.Cell applied to the x0 estimate (edm_sampler.guiders.ClipX0 / "
            f"DynamicThresholdX0, or their configs: target clip_x0 / threshold_x0), got {type(value).__name__}"
        )
    return value


class DDIMSampler(AncestralSampler):
    """DDIM in the VE (or flow) state. NFE = N.

    With the model's data estimate ``D`` and noise estimate ``eps = (x - alpha D) / sigma``, a step goes to
    ``x_down = alpha_down D + sigma_down eps`` and adds fresh noise of std ``s_noise * sigma_up``: ``eta`` is DDIM's
    (``eta = 0``, the default, is the deterministic DDIM, which is the Euler step; ``eta = 1`` adds DDPM's posterior
    variance), split as :class:`~edm_sampler.EulerAncestralSampler` splits it, so without ``x0_limit`` the two are
    the same sampler. ``x0_limit`` (:class:`~edm_sampler.guiders.ClipX0`, :class:`~edm_sampler.guiders.DynamicThreshold
    X0`: diffusers' ``clip_sample`` / ``thresholding``, the original code's clip to [-1, 1]) limits the x0 term only:
    ``x_down = alpha_down limit(D) + sigma_down eps``, the noise direction keeping the unlimited estimate (diffusers'
    ``DDIMScheduler.step`` with its default ``use_clipped_model_output=False``).
    """

    eta = options.real(0.0, nonnegative=True)
    x0_limit = options.Option(None, _x0_limit, "a cell applied to the x0 term of each step (clip or threshold)")

    @property
    def step_limit(self):
        return self.x0_limit

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        limited = self.x0_limit is not None
        for sigma, sigma_next in pairs(sigmas):
            sigma_down, up = self.ancestral(p, sigma, sigma_next, noise)
            ratio = sigma_down / sigma
            c = {"at": Level(sigma), "limited": limited, "up": up}
            if limited:  # x_down = ratio x - ratio alpha D + alpha_down limit(D)
                c.update(x_weight=ratio, raw_weight=ratio * p.alpha(sigma), limited_weight=p.alpha(sigma_down))
            else:
                c["down"] = coefficients.euler(sigma, sigma_down)
            yield c

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        if c["limited"]:
            x = axpy(axmy(scaled(x, c["x_weight"]), denoised, c["raw_weight"]), m.limit(denoised), c["limited_weight"])
        else:
            x = euler_to(x, denoised, c["down"])
        return renoise(x, c["up"]), state
