"""A small conditional conv net: a real ``nn.Cell`` for tests and benchmarks (random weights, no download).

It has the interface sgm's and mindone's networks have behind a ``Denoiser``: ``net(x, c_noise, cond)`` where
``c_noise`` is a ``(B,)`` Tensor (float, or the integer level index a ``DiscreteDenoiser`` passes) and ``cond`` a
dict with an optional ``(B, vector_dim)`` ``"vector"`` entry.
Four 3x3 convolutions (``channels`` wide) with SiLU, and a noise/class embedding added after the first one.
"""

from __future__ import annotations

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

from .. import checks


class TinyConvNet(nn.Cell):
    """``F(x, c_noise, cond)``: 4 conv layers of ``channels`` channels, conditioned on c_noise and ``cond["vector"]``.

    Weights come from ``numpy.random.default_rng(seed)``, so two nets with the same arguments are identical in every
    process. ``dtype`` is the parameter dtype (float16 works; the input must then be cast, see ``Denoiser``).
    """

    def __init__(self, in_channels: int = 4, channels: int = 32, vector_dim: int = 10, seed: int = 0, dtype=ms.float32):
        super().__init__()
        self.in_channels = checks.integer("in_channels", in_channels, minimum=1)
        self.channels = checks.integer("channels", channels, minimum=1)
        self.vector_dim = checks.integer("vector_dim", vector_dim, minimum=1)
        rng = np.random.default_rng(seed)

        def conv(cin, cout):
            layer = nn.Conv2d(cin, cout, 3, pad_mode="same", has_bias=True, dtype=dtype)
            bound = 1.0 / np.sqrt(cin * 9)
            layer.weight.set_data(Tensor(rng.uniform(-bound, bound, (cout, cin, 3, 3)).astype(np.float32), dtype))
            layer.bias.set_data(Tensor(rng.uniform(-bound, bound, (cout,)).astype(np.float32), dtype))
            return layer

        def dense(cin, cout):
            layer = nn.Dense(cin, cout, dtype=dtype)
            bound = 1.0 / np.sqrt(cin)
            layer.weight.set_data(Tensor(rng.uniform(-bound, bound, (cout, cin)).astype(np.float32), dtype))
            layer.bias.set_data(Tensor(rng.uniform(-bound, bound, (cout,)).astype(np.float32), dtype))
            return layer

        self.conv_in = conv(self.in_channels, self.channels)
        self.conv_1 = conv(self.channels, self.channels)
        self.conv_2 = conv(self.channels, self.channels)
        self.conv_out = conv(self.channels, self.in_channels)
        self.noise_embed = dense(1, self.channels)
        self.vector_embed = dense(self.vector_dim, self.channels)
        self.act = nn.SiLU()

    def construct(self, x, c_noise, cond=None):
        emb = self.noise_embed(c_noise.reshape(-1, 1).astype(x.dtype))  # c_noise may be an integer level index
        if cond is not None:
            emb = emb + self.vector_embed(cond["vector"])
        h = self.act(self.conv_in(x) + emb.reshape(emb.shape[0], -1, 1, 1))
        h = self.act(self.conv_1(h))
        h = self.act(self.conv_2(h))
        return self.conv_out(h)
