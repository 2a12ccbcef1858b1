"""The compiled evaluation of a guider with variants (a guidance interval, CFG-Zero*'s zero-init steps): one guided
network per variant in one cell, the variant picked per evaluation from a host-side index.

Eagerly, and in graph mode evaluation by evaluation, the model path asks the guider on the host which variant
evaluates at each noise level and step (:meth:`~edm_sampler.guiders.Guider.at`) and runs that variant's own path.
A compiled step or loop holds every variant instead: :class:`VariantNetwork` takes the inputs of a
:class:`~edm_sampler.model_path.GuidedNetwork` for the guider's full model batch, and its ``scale`` input carries
the variant's index on top of the variant's scale (:func:`packed_scale`). The index is a tensor, so the branch is
graph control flow: the variants compile once, together, and only the chosen one runs. A variant that evaluates the
conditional batch alone takes its rows of the full batch's conditioning and ``c_noise``; one that makes no model
evaluation returns the sample itself.
"""

from __future__ import annotations

import numpy as np

from mindspore import nn, ops

from .guiders import Guider
from .model_path import GuidedNetwork


def has_variants(guider) -> bool:
    """Whether a guider picks its evaluation per noise level and step (built-in guiders only)."""
    return isinstance(guider, Guider) and len(guider.variants()) > 1


def variant_index(guider: Guider, level: float, step: int) -> int:
    """The position in ``guider.variants()`` of the variant that evaluates at ``level`` in step ``step``."""
    active = guider.at(level, step)
    for index, variant in enumerate(guider.variants()):
        if variant is active:
            return index
    raise ValueError(f"{guider!r}.at({level}, {step}) returned {active!r}, which is not one of its variants")


def packed_scale(guider: Guider, level: float, step: int, x_shape: tuple[int, ...]):
    """The ``scale`` input of the evaluation at ``level`` in step ``step``: the guider's scale, or, for a guider with
    variants, ``[index, variant scale]`` stacked on a first axis (every variant's scale broadcast to one shape, so the
    per-step arrays keep one shape)."""
    if not has_variants(guider):
        return guider.scale_at(level, x_shape)
    index = variant_index(guider, level, step)
    scales = [np.asarray(v.scale_at(level, x_shape), np.float64) for v in guider.variants()]
    shape = np.broadcast_shapes(*(s.shape for s in scales))
    return np.stack([np.full(shape, float(index)), np.broadcast_to(scales[index], shape)])


def variant_signature(guider) -> tuple | None:
    """What a compiled evaluation of a guider with variants depends on (None for any other guider): cells are cached
    by it."""
    if not has_variants(guider):
        return None
    return tuple(
        (type(v).expand, v.combine, v.uncond if v.copies else None, v.copies, getattr(v, "parent_copies", None))
        for v in guider.variants()
    )


class ConditionalRows(nn.Cell):
    """The conditional rows of a guider's model conditioning: the second of ``copies`` parts of every batched entry
    (``[uc; c; ...]``); the other entries as they are."""

    def __init__(self, batched_keys: tuple, copies: int):
        super().__init__()
        self.batched_keys = tuple(batched_keys)
        self.copies = copies

    def construct(self, cond):
        rows = {}
        for key in cond:
            value = cond[key]
            rows[key] = ops.chunk(value, self.copies)[1] if key in self.batched_keys else value
        return rows


class ConditionalBranch(nn.Cell):
    """A conditional-only variant inside the full model batch's inputs: its rows of the conditioning and c_noise."""

    def __init__(self, guided: GuidedNetwork, batched_keys: tuple, copies: int):
        super().__init__()
        self.guided = guided
        self.rows = ConditionalRows(batched_keys, copies)
        self.copies = copies

    def construct(self, x, c_in, c_skip, c_out, c_noise, cond, scale):
        c_noise = ops.chunk(c_noise, self.copies)[1]
        return self.guided(x, c_in, c_skip, c_out, c_noise, self.rows(cond), scale)


class SampleBranch(nn.Cell):
    """A variant without model evaluation: the estimate is the sample itself."""

    def __init__(self, with_uncond: bool):
        super().__init__()
        self.with_uncond = with_uncond

    def construct(self, x, c_in, c_skip, c_out, c_noise, cond, scale):
        if self.with_uncond:
            return x, x
        return x


class Chosen(nn.Cell):
    """Branch ``position`` when ``index`` is ``position``, else ``rest`` (a chain over the variants)."""

    def __init__(self, branch: nn.Cell, rest: nn.Cell, position: int):
        super().__init__()
        self.branch = branch
        self.rest = rest
        self.position = position

    def construct(self, index, x, c_in, c_skip, c_out, c_noise, cond, scale):
        if index == self.position:
            return self.branch(x, c_in, c_skip, c_out, c_noise, cond, scale)
        return self.rest(index, x, c_in, c_skip, c_out, c_noise, cond, scale)


class Last(nn.Cell):
    """The chain's last branch, whatever the index."""

    def __init__(self, branch: nn.Cell):
        super().__init__()
        self.branch = branch

    def construct(self, index, x, c_in, c_skip, c_out, c_noise, cond, scale):
        return self.branch(x, c_in, c_skip, c_out, c_noise, cond, scale)


class VariantNetwork(nn.Cell):
    """Every variant of ``guider`` around one network; ``scale`` is :func:`packed_scale`'s ``[index, scale]``."""

    def __init__(self, network: nn.Cell, guider: Guider, dtype=None, with_uncond: bool = False):
        super().__init__()
        branches = []
        for variant in guider.variants():
            if variant.copies == 0:
                branches.append(SampleBranch(with_uncond))
            elif variant.copies == guider.copies:
                branches.append(GuidedNetwork(network, variant, dtype, with_uncond))
            elif variant.copies == 1 and hasattr(variant, "parent_copies"):
                guided = GuidedNetwork(network, variant, dtype, with_uncond)
                branches.append(ConditionalBranch(guided, variant.batched_keys, variant.parent_copies))
            else:
                raise ValueError(
                    f"{guider!r}: its variant {variant!r} has a model batch the compiled loop cannot build"
                )
        chain = Last(branches[-1])
        for position in range(len(branches) - 2, -1, -1):
            chain = Chosen(branches[position], chain, position)
        self.chain = chain

    def construct(self, x, c_in, c_skip, c_out, c_noise, cond, scale):
        index = scale[0].reshape(-1)[0]
        return self.chain(index, x, c_in, c_skip, c_out, c_noise, cond, scale[1])


def guided_network(network: nn.Cell, guider: Guider, dtype=None, with_uncond: bool = False) -> nn.Cell:
    """The compiled evaluation of ``guider`` around ``network``: a :class:`VariantNetwork` for a guider with variants,
    else a :class:`~edm_sampler.model_path.GuidedNetwork`."""
    if has_variants(guider):
        return VariantNetwork(network, guider, dtype, with_uncond)
    return GuidedNetwork(network, guider, dtype, with_uncond)
