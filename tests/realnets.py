"""Real MindSpore networks shared by the model-path tests, and a compile detector."""

from __future__ import annotations

import numpy as np

from mindspore import Tensor, ops

from edm_sampler.models.convnet import TinyConvNet

try:  # runs at compile time only: a trace counter that sees every (re)compile of the graph it is in
    from mindspore.ops import constexpr
except ImportError:  # pragma: no cover
    from mindspore import constexpr

TRACES: list[str] = []


@constexpr
def _trace(name):
    TRACES.append(name)
    return 0


class TracedNet(TinyConvNet):
    """TinyConvNet that records each time MindSpore compiles (traces) its construct."""

    def construct(self, x, c_noise, cond=None):
        _trace("net")
        return super().construct(x, c_noise, cond)


B, SHAPE = 2, (4, 8, 8)


def small_net(cls=TinyConvNet, **kwargs):
    return cls(channels=8, **kwargs)


def conditioning(seed=0, batch=B):
    rng = np.random.default_rng(seed)
    cond = {"vector": Tensor(np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)])}
    uc = {"vector": Tensor(np.zeros((batch, 10), np.float32))}
    return cond, uc


class TupleNet(TinyConvNet):
    def construct(self, x, c_noise, cond=None):
        out = super().construct(x, c_noise, cond)
        return out, out


class DoubleChannelNet(TinyConvNet):
    def construct(self, x, c_noise, cond=None):
        out = super().construct(x, c_noise, cond)
        return ops.cat((out, out), axis=1)


class OneChannelNet(TinyConvNet):
    """Returns (B, 1, H, W): it would broadcast silently against x's (B, C, H, W) without a shape check."""

    def construct(self, x, c_noise, cond=None):
        return super().construct(x, c_noise, cond)[:, :1]


def compiled_and_eager(cls, param: str, num_steps: int, **params):
    """``cls`` on a real network with CFG 2 (EDM VE, or a flow velocity model on the shift-3 flow schedule), run with
    ``graph_loop=True`` and step by step on the same noise: ``(compiled, eager, compiled NFE, eager NFE)``."""
    from edm_sampler import (
        Denoiser,
        EDMScaling,
        FlowMatchDiscretization,
        FlowVelocityScaling,
        VanillaCFG,
        randn,
    )

    denoiser = Denoiser(EDMScaling() if param == "ve" else FlowVelocityScaling()).bind(small_net())
    kwargs = dict(params, num_steps=num_steps, guider_config=VanillaCFG(2.0))
    if param == "flow":
        kwargs["discretization_config"] = FlowMatchDiscretization(shift=3.0)
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    eager, loop = cls(**kwargs), cls(graph_loop=True, **kwargs)
    expected = eager(denoiser, noise, cond, uc, generator=5).asnumpy()
    got = loop(denoiser, noise, cond, uc, generator=5).asnumpy()
    return got, expected, loop.last_nfe, eager.last_nfe
