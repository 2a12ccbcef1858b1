"""Adaptive projected guidance (Sadat et al., "Eliminating Oversaturation and Artifacts of High Guidance Scales in
Diffusion Models", ICLR 2025; ComfyUI's ``comfy_extras/nodes_apg.py``).

On the denoised estimates, per sample over all its elements: the guidance ``g = D_c - D_u`` (with momentum, its
running average ``g_t + momentum g_{t-1} + ...``), limited to the norm ``norm_threshold``, is split into its part
parallel to ``D_c`` and the rest, the parallel part is weighted by ``eta``, and

    D = D_c + (scale - 1) (g_orth + eta g_par)

(the paper's PyTorch listing: ``MomentumBuffer``, ``normalized_guidance``). At ``eta = 1``, no threshold and no
momentum it is classifier-free guidance. ComfyUI's node returns ``D_c + scale (g_orth + eta g_par)``: the paper's
formula at ``scale + 1`` (so at ``eta = 1`` it is CFG at ``scale + 1``); diffusers' guider returns ``D_u + scale
(g_orth + eta g_par)``, the paper's only where the update is ``g`` itself (plain CFG).
"""

from __future__ import annotations

import copy

from mindspore import nn, ops

from .. import checks
from .cfg import VanillaCFG
from .statistics import sample_norm, sample_sum


class ProjectedUpdate(nn.Cell):
    """``D_c + (scale - 1) (g_orth + eta g_par)`` from the conditional estimate and the guidance ``g``."""

    def __init__(self, eta: float, norm_threshold: float):
        super().__init__()
        self.eta = eta
        self.norm_threshold = norm_threshold

    def construct(self, cond, guidance, scale):
        if self.norm_threshold > 0:
            guidance = guidance * ops.clamp(self.norm_threshold / sample_norm(guidance), max=1.0)
        unit = cond / ops.clamp(sample_norm(cond), min=1e-12)  # torch's normalize: eps 1e-12
        parallel = sample_sum(guidance * unit) * unit
        return cond + (guidance + parallel * (self.eta - 1.0)) * (scale - 1.0)


class ProjectedCombine(nn.Cell):
    """APG from the model batch ``[D_u; D_c]`` (no momentum: pure tensor math, compiled with the network)."""

    def __init__(self, update: ProjectedUpdate):
        super().__init__()
        self.update = update

    def construct(self, denoised, scale):
        uncond, cond = ops.chunk(denoised, 2)
        return self.update(cond, cond - uncond, scale)


class MomentumCombine:
    """APG with momentum: the guidance is the running average ``g + momentum * previous`` over the call's guided
    evaluations (each evaluation updates it, as the paper's ``MomentumBuffer`` and ComfyUI do). One per sampling
    call, so every call starts afresh (the paper's buffer per generation). Eager only: the state lives on the host."""

    def __init__(self, update: ProjectedUpdate, momentum: float):
        self.update = update
        self.momentum = momentum
        self.running = None

    def __call__(self, denoised, scale):
        uncond, cond = ops.chunk(denoised, 2)
        guidance = cond - uncond
        self.running = guidance if self.running is None else guidance + self.running * self.momentum
        return self.update(cond, self.running, scale)


class APG(VanillaCFG):
    """Adaptive projected guidance on the batch ``[uc; c]`` (VanillaCFG's conditioning).

    Args:
        scale: the guidance scale (the paper's ``w``; CFG's scale).
        eta: the weight of the guidance's part parallel to ``D_c`` (the paper recommends 0; 1 keeps it).
        norm_threshold: the largest norm of the guidance per sample (0: no limit). ComfyUI's default 5.0.
        momentum: the running average's weight, in [-1, 1] (the paper's reverse momentum is negative, e.g. -0.5;
            ComfyUI's node allows [0, 1]). Momentum carries state across evaluations, so a guider with momentum
            runs eagerly (graph mode samples it step by step, without compiling the steps) and ``graph_loop=True``
            refuses it.

    Defaults are ComfyUI's node's (``eta=1.0, norm_threshold=5.0, momentum=0.0``). The running average restarts with
    every sampling call; ComfyUI's node also restarts it whenever sigma rises between evaluations (a new run in
    ComfyUI, but also a churned step), which is not done here.
    """

    def __init__(self, scale: float, eta: float = 1.0, norm_threshold: float = 5.0, momentum: float = 0.0):
        super().__init__(scale)
        self.eta = checks.real("eta", eta)
        self.norm_threshold = checks.real("norm_threshold", norm_threshold, nonnegative=True)
        self.momentum = checks.real("momentum", momentum)
        if abs(self.momentum) > 1.0:
            raise ValueError(f"momentum must be in [-1, 1], got {momentum!r}")
        self.update = ProjectedUpdate(self.eta, self.norm_threshold)
        self.stateful = self.momentum != 0.0
        # (type: ignore[method-assign] here and in for_call: a guider may set its combine per instance, see Guider)
        combine = MomentumCombine(self.update, self.momentum) if self.stateful else ProjectedCombine(self.update)
        self.combine = combine  # type: ignore[method-assign]

    def for_call(self, model_kwargs: dict) -> APG:
        """With momentum, a copy with a fresh running average (one per sampling call)."""
        if not self.stateful:
            return self
        configured = copy.copy(self)
        configured.combine = MomentumCombine(self.update, self.momentum)  # type: ignore[method-assign]
        return configured

    def __repr__(self) -> str:
        return (
            f"APG(scale={self.scale}, eta={self.eta}, norm_threshold={self.norm_threshold}, momentum={self.momentum})"
        )
