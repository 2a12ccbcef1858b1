"""CFG++ (Chung, Kim, Park, Nam & Ye 2024, "CFG++: Manifold-constrained Classifier Free Guidance for Diffusion
Models", arXiv:2406.08070): the guided estimate is where a step jumps to, the unconditional one how it renoises.

The paper's DDIM update (its Algorithm 1) is ``x_{i+1} = alpha_{i+1} D + sigma_{i+1} eps_u`` with the guided data
estimate ``D`` and the unconditional noise estimate ``eps_u = (x_i - alpha_i D_u) / sigma_i``; plain CFG uses
``eps`` of the guided estimate instead. Every sampler here is its plain twin applied to the state whose data part
is swapped from the unconditional estimate to the guided one::

    x~ = alpha_i D + sigma_i eps_u = x_i + alpha_i (D - D_u)

with the guided estimate as the step's data estimate and the unconditional estimates as its history (a multistep
method extrapolates from the previous *unconditional* estimate). This gives the paper's update for Euler and Euler
ancestral, and ComfyUI's ``euler_cfg_pp``, ``euler_ancestral_cfg_pp``, ``dpmpp_2s_ancestral_cfg_pp``,
``dpmpp_2m_cfg_pp`` and ``gradient_estimation_cfg_pp`` on VE models (``comfy/k_diffusion/sampling.py``). The
guidance scale is the guider's (VanillaCFG's ``scale``): ComfyUI's CFG++ samplers take the usual cfg value, and
work best at small ones (about 1 to 2). Without guidance (``D = D_u``) each sampler is its plain twin.

Deviations from ComfyUI, each in one line:

* ``res_multistep(_ancestral)_cfg_pp``: ComfyUI's second-order branch uses ``D_u`` in the newest-estimate term as
  well, so its guidance weight is ``e^-h`` there but 1 on its first (Euler) step; here it is 1 on every step;
* flow models: every sampler here is the rectified-flow form of its twin (alpha = 1 - sigma in ``x~``; ComfyUI's
  ``euler_cfg_pp`` does the same, its ``gradient_estimation_cfg_pp``, ``dpmpp_2m_cfg_pp`` and
  ``dpmpp_2s_ancestral_cfg_pp`` apply the VE formulas to the flow state);
* ``euler_ancestral_cfg_pp`` on flow models uses the library's rectified-flow ancestral split (as ``euler_ancestral``
  does); ComfyUI's CFG++ variant splits in ``sigma / alpha``.
"""

from __future__ import annotations

import numpy as np

from ..functional import axmy, euler_to, renoise, scaled
from ..parametrization import Parametrization
from .ancestral import DPMPP2SAncestralSampler, EulerAncestralSampler
from .base import NoiseFn, Plan
from .edm import EulerEDMSampler
from .gradient_estimation import GradientEstimationSampler, gradient_estimation_update
from .multistep import DPMPP2MSampler, dpmpp_2m_update
from .res_multistep import ResMultistepAncestralSampler, ResMultistepSampler, res_multistep_update


def guided_state(x, guided, uncond, alpha):
    """``x + alpha (D - D_u)``: the state with its data part taken from the guided estimate, its noise part kept."""
    return x + (guided - uncond) * alpha


def evaluate(m, x, c):
    """The step's first evaluation: ``(x~, D, D_u)``, the callback fed with ``x`` and the guided ``D``."""
    denoised, uncond = m.denoise_pp(x, c["at"])
    m.report(x, denoised)
    return guided_state(x, denoised, uncond, c["alpha"]), denoised, uncond


class CFGPP:
    """What the CFG++ samplers share: the guider's unconditional estimate (``m.denoise_pp``), and the data weight
    ``alpha`` at each step's first evaluation in the plan (``c["alpha"]``; 1 for VE models)."""

    needs_uncond = True

    def plan(self, p: Parametrization, sigmas: np.ndarray, noise: NoiseFn) -> Plan:
        # the plain twin's plan (the next class in the MRO: this is a mixin, hence the type: ignore)
        for c in super().plan(p, sigmas, noise):  # type: ignore[misc]
            c["alpha"] = p.alpha(float(c["at"]))
            yield c


class EulerCFGPPSampler(CFGPP, EulerEDMSampler):
    """Euler CFG++ (the paper's Algorithm 1; ComfyUI ``euler_cfg_pp``): ``x <- alpha' D + sigma' eps_u``. NFE = N.

    The EDM churn options are kept (off by default, as ComfyUI's sampler has none)."""

    @staticmethod
    def step(m, x, state, c):
        x = renoise(x, c["churn"])
        x, denoised, uncond = evaluate(m, x, c)
        return euler_to(x, denoised, c["euler"]), state


class EulerAncestralCFGPPSampler(CFGPP, EulerAncestralSampler):
    """Euler ancestral CFG++ (ComfyUI ``euler_ancestral_cfg_pp``): the CFG++ step to ``sigma_down``, then fresh
    noise up to ``sigma_next``. NFE = N."""

    @staticmethod
    def step(m, x, state, c):
        x, denoised, _ = evaluate(m, x, c)
        x = euler_to(x, denoised, c["down"])
        return renoise(x, c["up"]), state


class DPMPP2SAncestralCFGPPSampler(CFGPP, DPMPP2SAncestralSampler):
    """DPM-Solver++(2S) ancestral with CFG++ (ComfyUI ``dpmpp_2s_ancestral_cfg_pp``): both of the step's moves start
    from ``x~``; the midpoint evaluation's guided estimate finishes it. NFE = 2N - 1."""

    @staticmethod
    def step(m, x, state, c):
        x, denoised, uncond = evaluate(m, x, c)
        if c["euler"]:
            x = euler_to(x, denoised, c["down"])
        else:
            x_mid = axmy(scaled(x, c["x_mid"]), denoised, c["d_mid"])
            denoised_mid, _ = m.denoise_pp(x_mid, c["at_mid"])
            x = axmy(scaled(x, c["x_down"]), denoised_mid, c["d_down"])
        return renoise(x, c["up"]), state


class DPMPP2MCFGPPSampler(CFGPP, DPMPP2MSampler):
    """DPM-Solver++(2M) with CFG++ (ComfyUI ``dpmpp_2m_cfg_pp``): the extrapolation runs from the previous
    unconditional estimate to the current guided one. NFE = N."""

    @staticmethod
    def step(m, x, state, c):
        (old_uncond,) = state
        x, denoised, uncond = evaluate(m, x, c)
        return dpmpp_2m_update(x, denoised, old_uncond, c), (uncond,)


class ResMultistepCFGPPSampler(CFGPP, ResMultistepSampler):
    """RES multistep with CFG++ (ComfyUI ``res_multistep_cfg_pp``; see the module docstring for the one
    deviation). NFE = N."""

    @staticmethod
    def step(m, x, state, c):
        (old_uncond,) = state
        x, denoised, uncond = evaluate(m, x, c)
        return renoise(res_multistep_update(x, denoised, old_uncond, c), c["up"]), (uncond,)


class ResMultistepAncestralCFGPPSampler(ResMultistepCFGPPSampler, ResMultistepAncestralSampler):
    """RES multistep ancestral with CFG++ (ComfyUI ``res_multistep_ancestral_cfg_pp``). NFE = N."""


class GradientEstimationCFGPPSampler(CFGPP, GradientEstimationSampler):
    """Gradient estimation with CFG++ (ComfyUI ``gradient_estimation_cfg_pp``): the gradients are ``(x~ - D) /
    sigma`` (``(x - D_u) / sigma`` for VE models: the unconditional ones), the Euler part lands on ``D``. NFE = N."""

    @staticmethod
    def step(m, x, state, c):
        (old_d,) = state
        x, denoised, uncond = evaluate(m, x, c)
        return gradient_estimation_update(x, denoised, old_d, c)
