"""CFG rescale (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Section 3.4):
the guided estimate scaled towards the spread of the conditional one,

    D_cfg = guided estimate,  D_resc = D_cfg std(D_c) / std(D_cfg),  D = phi D_resc + (1 - phi) D_cfg,

std per sample over all its elements. It acts on the denoised (x0) estimate here, where every guider of edm_sampler
combines. The paper acts on its model's output, a v-prediction; diffusers' ``rescale_noise_cfg`` on the model's
output (eps or v); ComfyUI's ``RescaleCFG`` on VP's v for VE-type models and on x0 for flow models (so here equals
ComfyUI on flow models). v is affine in D at a given level: for VE states ``v = b (x / (1 + sigma^2) - D)``, so the
paper's rescale is ``D = f D_cfg + (1 - f) x / (1 + sigma^2)`` with ``f`` from the stds of ``x / (1 + sigma^2) - D``
rather than of D: the same as here as ``sigma -> inf`` (zero terminal SNR, the paper's case), different at low noise.
"""

from __future__ import annotations

from mindspore import nn, ops

from .. import checks
from .composition import GuiderWrapper, built_guider
from .statistics import sample_std


class RescaleCombine(nn.Cell):
    """``combine``'s guided estimate rescaled towards the std of the conditional one (the second of ``copies`` parts
    of the model batch), by ``phi``."""

    def __init__(self, combine, phi: float, copies: int, with_input: bool):
        super().__init__()
        self.inner_combine = combine
        self.phi = phi
        self.copies = copies
        self.with_input = with_input

    def construct(self, denoised, scale, x=None):
        if self.with_input:
            guided = self.inner_combine(denoised, scale, x)
        else:
            guided = self.inner_combine(denoised, scale)
        cond = ops.chunk(denoised, self.copies)[1]
        ratio = sample_std(cond) / ops.clamp(sample_std(guided), min=1e-8)  # ComfyUI's flow branch clamps at 1e-8
        return guided * (ratio * self.phi + (1.0 - self.phi))


class CFGRescale(GuiderWrapper):
    """CFG rescale around a CFG-type guider (ComfyUI's ``RescaleCFG(multiplier)``, diffusers' ``guidance_rescale``).

    Args:
        guider_config: the guider whose estimate is rescaled (a config or an instance): ``vanilla_cfg``, ``apg``, ...
        phi: the share of the rescaled estimate, in [0, 1] (0: the inner guider unchanged). Default 0.7, the paper's
            and ComfyUI's.
    """

    def __init__(self, guider_config, phi: float = 0.7):
        self.phi = checks.real("phi", phi, nonnegative=True)
        if self.phi > 1.0:
            raise ValueError(f"phi must be in [0, 1], got {phi!r}")
        self._adopt(built_guider("cfg_rescale", guider_config))

    def _build(self) -> None:
        inner = self.inner
        self.combine = RescaleCombine(inner.combine, self.phi, inner.copies, inner.needs_input)

    def __repr__(self) -> str:
        return f"CFGRescale(phi={self.phi}, guider={self.inner!r})"
