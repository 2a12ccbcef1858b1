"""A small class-conditional UNet for the glyph images: the network ``examples/train_glyphs.py`` trains.

``F(x, c_noise, cond)`` with sgm's interface (see :mod:`.convnet`): ``c_noise`` is EDM's ``ln(sigma) / 4`` as a
``(B,)`` Tensor and ``cond["vector"]`` a ``(B, 10)`` one-hot class (all zeros: unconditional, which label dropout
teaches). The image is folded into 2x2 patches (24x24x1 -> 12x12x4: MindSpore's CPU weight-gradient kernel is slow at
24x24, whatever the channel count), then two resolutions (12x12 and 6x6) of residual blocks whose GroupNorm output
is scaled and shifted by a noise + class embedding (EDM's and ADM's "adaptive" normalisation), nearest-neighbour
upsampling (cheaper than a transposed convolution on CPU) and a zero-initialised output layer, so the untrained net
is ``D = c_skip x``.
"""

from __future__ import annotations

import math

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from .. import checks


def _conv(cin: int, cout: int, rng: np.random.Generator, zero: bool = False) -> nn.Conv2d:
    layer = nn.Conv2d(cin, cout, 3, pad_mode="same", has_bias=True)
    bound = 0.0 if zero else math.sqrt(3.0 / (cin * 9))  # uniform with variance 1 / fan_in
    layer.weight.set_data(Tensor(rng.uniform(-bound, bound, (cout, cin, 3, 3)).astype(np.float32)))
    layer.bias.set_data(Tensor(np.zeros(cout, np.float32)))
    return layer


def _dense(cin: int, cout: int, rng: np.random.Generator, zero: bool = False) -> nn.Dense:
    layer = nn.Dense(cin, cout)
    bound = 0.0 if zero else math.sqrt(3.0 / cin)
    layer.weight.set_data(Tensor(rng.uniform(-bound, bound, (cout, cin)).astype(np.float32)))
    layer.bias.set_data(Tensor(np.zeros(cout, np.float32)))
    return layer


class ResBlock(nn.Cell):
    """``x + conv(act(norm(conv(act(norm(x)))) * (1 + scale) + shift))`` with (scale, shift) from the embedding."""

    def __init__(self, cin: int, cout: int, emb_dim: int, rng: np.random.Generator):
        super().__init__()
        self.norm_1 = nn.GroupNorm(min(8, cin), cin)
        self.conv_1 = _conv(cin, cout, rng)
        self.affine = _dense(emb_dim, 2 * cout, rng, zero=True)
        self.norm_2 = nn.GroupNorm(min(8, cout), cout)
        self.conv_2 = _conv(cout, cout, rng, zero=True)
        self.skip = nn.Conv2d(cin, cout, 1, has_bias=False) if cin != cout else nn.Identity()
        self.act = nn.SiLU()

    def construct(self, x, emb):
        h = self.conv_1(self.act(self.norm_1(x)))
        scale, shift = ops.split(self.affine(emb).reshape(emb.shape[0], -1, 1, 1), h.shape[1], axis=1)
        h = self.conv_2(self.act(self.norm_2(h) * (1.0 + scale) + shift))
        return self.skip(x) + h


class GlyphUNet(nn.Cell):
    """The glyph UNet: ``channels`` wide at H/2 x W/2, twice that at H/4 x W/4 (H, W divisible by 4); 0.4 M
    parameters at 32, the packaged checkpoint's width.

    Weights come from ``numpy.random.default_rng(seed)``: two nets with the same arguments are identical.
    """

    def __init__(self, channels: int = 32, num_classes: int = 10, emb_dim: int = 128, seed: int = 0):
        super().__init__()
        self.channels = checks.integer("channels", channels, minimum=8)
        self.num_classes = checks.integer("num_classes", num_classes, minimum=1)
        self.emb_dim = checks.integer("emb_dim", emb_dim, minimum=8)
        rng = np.random.default_rng(seed)
        c, c2, e = self.channels, 2 * self.channels, self.emb_dim
        # c_noise -> sin/cos of fixed log-spaced frequencies (the DDPM positional embedding, on a continuous input).
        freqs = np.exp(np.linspace(0.0, math.log(1000.0), e // 4)).astype(np.float32)
        self.freqs = ms.Parameter(Tensor(freqs[None, :]), name="freqs", requires_grad=False)
        self.noise_mlp_1 = _dense(e // 2, e, rng)
        self.class_embed = _dense(self.num_classes, e, rng)
        self.emb_mlp = _dense(e, e, rng)
        self.act = nn.SiLU()

        self.conv_in = _conv(4, c, rng)
        self.down_1 = ResBlock(c, c, e, rng)  # 12x12
        self.down_2 = ResBlock(c, c2, e, rng)  # 6x6
        self.mid = ResBlock(c2, c2, e, rng)  # 6x6
        self.up_2 = ResBlock(c2 + c2, c2, e, rng)  # 6x6, with the down_2 skip
        self.up_1 = ResBlock(c2 + c, c, e, rng)  # 12x12, with the down_1 skip
        self.norm_out = nn.GroupNorm(8, c)
        self.conv_out = _conv(c, 4, rng, zero=True)
        self.pool = nn.AvgPool2d(2, 2)

    def embedding(self, c_noise, vector):
        angles = c_noise.reshape(-1, 1).astype(ms.float32) * self.freqs
        noise = self.noise_mlp_1(ops.cat((ops.sin(angles), ops.cos(angles)), axis=1))
        return self.emb_mlp(self.act(noise + self.class_embed(vector)))

    @ms.jit  # compiled once per input shape, in PyNative too (4x faster than op by op here)
    def construct(self, x, c_noise, cond=None):
        if cond is None:
            vector = ops.zeros((x.shape[0], self.num_classes), ms.float32)
        else:
            vector = cond["vector"]
        emb = self.act(self.embedding(c_noise, vector))
        h1 = self.down_1(self.conv_in(_space_to_depth(x)), emb)  # (B, c, H/2, W/2)
        h2 = self.down_2(self.pool(h1), emb)  # (B, 2c, H/4, W/4)
        h = self.mid(h2, emb)
        h = self.up_2(ops.cat((h, h2), axis=1), emb)
        h = self.up_1(ops.cat((_upsample(h), h1), axis=1), emb)
        return _depth_to_space(self.conv_out(self.act(self.norm_out(h))))


def _space_to_depth(x):
    """``(B, 1, H, W) -> (B, 4, H/2, W/2)``: each 2x2 patch becomes 4 channels."""
    b, _, h, w = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2).transpose(0, 2, 4, 1, 3).reshape(b, 4, h // 2, w // 2)


def _depth_to_space(x):
    """The inverse of :func:`_space_to_depth`."""
    b, _, h, w = x.shape
    return x.reshape(b, 2, 2, h, w).transpose(0, 3, 1, 4, 2).reshape(b, 1, 2 * h, 2 * w)


def _upsample(x):
    """Nearest-neighbour 2x upsampling by repetition (exists on every backend, and so does its gradient)."""
    return ops.repeat_interleave(ops.repeat_interleave(x, 2, axis=2), 2, axis=3)
