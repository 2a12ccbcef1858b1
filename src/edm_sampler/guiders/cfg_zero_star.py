"""CFG-Zero* (Fan et al. 2025, "CFG-Zero*: Improved Classifier-Free Guidance for Flow Matching Models").

In the paper's velocity terms, with ``v_c, v_u`` the conditional and unconditional velocities,

    s* = <v_c, v_u> / ||v_u||^2  (per sample),   v = s* v_u + w (v_c - s* v_u),

and the first ``zero_init_steps`` steps output zero velocity. edm_sampler's guiders combine denoised estimates.
The ODE velocity is ``dx/dsigma = (x - D) / sigma`` for flow models (``x = (1 - sigma) x0 + sigma eps``) and for VE
ones (``x = x0 + sigma eps``, where it is the eps prediction), so with ``u = x - D`` (``sigma`` times the velocity)

    s* = <u_c, u_u> / ||u_u||^2,   D = x - w u_c - (1 - w) s* u_u = D_u + w (D_c - D_u) + (1 - w)(1 - s*) u_u,

the paper's formula for both (sigma cancels in ``s*``; the ``1e-8`` the reference code adds to ``||v_u||^2`` is
added to ``||u_u||^2`` here: sigma^2 times smaller in velocity units, a relative change below 1e-8 either way). Zero
velocity is ``D = x``: those steps make no model evaluation at all (diffusers' guider evaluates both branches and
multiplies by 0), so they cost no NFE. At ``s* = 1`` it is CFG. ComfyUI's ``CFGZeroStar`` node scales the
unconditional *denoised* estimate, ``D = s* D_u + w (D_c - s* D_u)``: it differs from the paper's by
``(1 - w)(1 - s*) x``, and it has no zero-init.
"""

from __future__ import annotations

import copy

from mindspore import ops

from .. import checks
from .base import Guider
from .cfg import VanillaCFG
from .composition import SampleItself
from .statistics import sample_sum


class CFGZeroStar(VanillaCFG):
    """CFG-Zero* on the batch ``[uc; c]`` (VanillaCFG's conditioning).

    Args:
        scale: the guidance scale ``w``.
        zero_init_steps: how many steps at the start of the schedule output zero velocity (the estimate is ``x``;
            no model evaluation). Default 1, the paper's code and diffusers' guider (the paper suggests the first
            ~4% of the steps); 0 turns zero-init off (ComfyUI's node).
    """

    needs_input = True

    def __init__(self, scale: float, zero_init_steps: int = 1):
        super().__init__(scale)
        self.zero_init_steps = checks.integer("zero_init_steps", zero_init_steps, minimum=0)
        # both set, or both None (zero_init_steps = 0)
        self.zero: SampleItself | None = None
        self.guided: CFGZeroStar | None = None
        if self.zero_init_steps:
            guided = copy.copy(self)  # the evaluation after the zero-init steps: the same guider without them
            guided.zero_init_steps = 0
            self.zero, self.guided = SampleItself(), guided

    @staticmethod
    def combine(denoised, scale, x):  # type: ignore[override]  # reads x: needs_input (the model path passes it)
        # CFG plus (1 - w)(1 - s*) u_u, with 1 - s* = (<D_c - D_u, u_u> + 1e-8) / (||u_u||^2 + 1e-8): no cancellation
        # of the O(x) terms of x - w u_c - (1 - w) s* u_u at high noise (it lost 3 digits at sigma = 80 in float32)
        uncond, cond = ops.chunk(denoised, 2)
        guidance, u_uncond = cond - uncond, x - uncond
        one_minus = (sample_sum(guidance * u_uncond) + 1e-8) / (sample_sum(u_uncond * u_uncond) + 1e-8)
        return uncond + guidance * scale + u_uncond * (one_minus * (1.0 - scale))

    def at(self, sigma: float, step: int) -> Guider:
        if self.zero is None or self.guided is None:
            return self
        return self.zero if step < self.zero_init_steps else self.guided

    def variants(self) -> tuple[Guider, ...]:
        return (self,) if self.zero is None or self.guided is None else (self.guided, self.zero)

    def __call__(self, denoised, sigma):
        raise TypeError(
            "CFGZeroStar reads the sample x, which sgm's guider protocol __call__(denoised, sigma) does not give: "
            "sample through an edm_sampler sampler"
        )

    def __repr__(self) -> str:
        return f"CFGZeroStar(scale={self.scale}, zero_init_steps={self.zero_init_steps})"
