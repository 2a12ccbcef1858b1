"""A built-in image dataset (the ten digits, rendered with Pillow's bundled font) and its ideal denoiser.

The dataset is generated deterministically at run time, so the main job needs no download. For a finite dataset
``{y_i}`` the ideal denoiser is ``D(x, sigma) = sum_i softmax_i(-|x - y_i|^2 / 2 sigma^2) y_i``; restricting the
softmax to one class gives the class-conditional denoiser, which makes classifier-free guidance meaningful.
Under the flow parametrization (``x = (1 - sigma) y + sigma n``) the softmax is over ``-|x - (1 - sigma) y_i|^2 /
2 sigma^2`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import mindspore as ms
from mindspore import Tensor, ops

from .. import checks
from ..parametrization import get as get_parametrization
from .analytic import model_repr

NUM_CLASSES = 10


def render_glyphs(size: int = 24, variants: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``variants`` jittered renderings of each digit 0-9 as ``(images, labels)``.

    ``images`` is float32 of shape ``(10 * variants, 1, size, size)`` in [-1, 1] (ink = 1); ``labels`` is int64. The
    jitter (font size, shift, rotation) comes from ``numpy.random.default_rng(seed)``, so the result is the same on
    every run with the same Pillow.
    """
    size = checks.integer("size", size, minimum=16)
    variants = checks.integer("variants", variants, minimum=1)
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for digit in range(NUM_CLASSES):
        for _ in range(variants):
            font = ImageFont.load_default(size=int(round(size * rng.uniform(0.7, 0.9))))
            canvas = Image.new("L", (2 * size, 2 * size), 0)
            draw = ImageDraw.Draw(canvas)
            left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
            dx, dy = rng.uniform(-0.08, 0.08, size=2) * size
            origin = (size - (left + right) / 2 + dx, size - (top + bottom) / 2 + dy)
            draw.text(origin, str(digit), fill=255, font=font)
            canvas = canvas.rotate(rng.uniform(-12.0, 12.0), resample=Image.Resampling.BILINEAR, center=(size, size))
            crop = canvas.crop((size // 2, size // 2, size // 2 + size, size // 2 + size))
            images.append(np.asarray(crop, dtype=np.float32) / 127.5 - 1.0)
            labels.append(digit)
    return np.stack(images)[:, None], np.asarray(labels, dtype=np.int64)


def _rowwise_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` one row at a time. CPU GEMM kernels (oneDNN's AVX2 one, for instance) sum in an order that depends on
    the number of rows, which would make a sample's bits depend on the size of its batch; one row is always one row."""
    return ops.cat([ops.matmul(row, b) for row in ops.split(a, 1, axis=0)])


class GlyphData:
    """The glyph dataset as a model sees it: the per-sample shape, the class conditioning, and the nearest training
    image of a sample (class match and distance, the quality figures of every glyph model)."""

    def __init__(self, size: int = 24, variants: int = 24, seed: int = 0):
        self.images, self.labels = render_glyphs(size, variants, seed)
        self.size = size

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of one sample, ``(1, size, size)``."""
        return (1, self.size, self.size)

    @staticmethod
    def class_vectors(labels) -> Tensor:
        """One-hot ``(B, 10)`` conditioning vectors for integer ``labels``."""
        return Tensor(np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels, dtype=np.int64)])

    @staticmethod
    def unconditional_vectors(batch_size: int) -> Tensor:
        """All-zero ``(B, 10)`` vectors: the unconditional input for CFG."""
        return Tensor(np.zeros((batch_size, NUM_CLASSES), dtype=np.float32))

    def nearest(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each sample, the label of its nearest training image and the RMS per-pixel distance to it."""
        flat = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
        data = self.images.reshape(len(self.images), -1).astype(np.float64)
        dist2 = (flat**2).sum(1)[:, None] - 2.0 * flat @ data.T + (data**2).sum(1)[None, :]
        idx = np.argmin(dist2, axis=1)
        rms = np.sqrt(np.maximum(dist2[np.arange(len(flat)), idx], 0.0) / flat.shape[1])
        return self.labels[idx], rms


class GlyphDenoiser(GlyphData):
    """The exact denoiser of the glyph dataset, class-conditional through ``cond["vector"]``.

    ``cond`` is ``None`` (unconditional) or a dict whose ``"vector"`` is a ``(B, 10)`` float Tensor of class weights:
    a one-hot row conditions on that digit, an all-zero row means unconditional (uniform over the dataset). This is
    the shape SDXL-style ``vector`` conditioning has, so :class:`~edm_sampler.VanillaCFG` stacks it as usual.

    ``parametrization="flow"`` makes it the exact denoiser of the flow state ``x = (1 - sigma) y + sigma n`` (sigma in
    (0, 1]): the weights are ``softmax_i(-|x - (1 - sigma) y_i|^2 / 2 sigma^2 + log prior_i)``, which at sigma = 1 is
    the class prior (uniform over the class's images, or over the dataset).
    """

    def __init__(self, size: int = 24, variants: int = 24, seed: int = 0, parametrization: str = "ve"):
        self.parametrization = get_parametrization(parametrization).name
        super().__init__(size, variants, seed)
        self.variants, self.seed = variants, seed
        flat = self.images.reshape(len(self.images), -1)
        mean = flat.mean(0)
        centered = flat - mean
        self._data = Tensor(flat)  # (M, P)
        # Distances are computed around the dataset mean: smaller norms, less float32 cancellation in |x|^2 - 2xy.
        self._mean = Tensor(mean)
        self._centered_t = Tensor(np.ascontiguousarray(centered.T))  # (P, M)
        self._half_sq_norm = Tensor(0.5 * (centered**2).sum(1))  # (M,)
        self._class_of = Tensor(np.eye(NUM_CLASSES, dtype=np.float32)[self.labels])  # (M, 10)

    def __call__(self, x: Tensor, sigma: Tensor, cond: Any = None) -> Tensor:
        batch = x.shape[0]
        if self.parametrization == "flow":
            logits = self._flow_logits(x, sigma)
        else:
            flat = x.reshape(batch, -1) - self._mean[None, :]
            # -|x - y|^2 / 2 sigma^2 up to a per-row constant (softmax is shift invariant).
            logits = (_rowwise_matmul(flat, self._centered_t) - self._half_sq_norm[None, :]) / (sigma**2)[:, None]
        if cond is not None:
            logits = logits + self._log_prior(cond, batch)
        weights = ops.softmax(logits, axis=1)
        return _rowwise_matmul(weights, self._data).reshape(x.shape)

    def _flow_logits(self, x: Tensor, sigma: Tensor) -> Tensor:
        """``-|x - a y|^2 / 2 sigma^2`` (``a = 1 - sigma``) up to a per-row constant, around the dataset mean m.

        With ``y = m + c``: ``-|x - a y|^2 / 2 = a (x - a m).c - a^2 |c|^2 / 2 + (terms without c)``, so the logits
        are ``(a / sigma^2) ((x - a m).c - a |c|^2 / 2)``: the VE form at ``(x / a, sigma / a)``, written without
        dividing by a, so sigma = 1 (a = 0) gives all-zero logits, i.e. the prior.
        """
        batch = x.shape[0]
        alpha = (1.0 - sigma)[:, None]  # (B, 1)
        flat = x.reshape(batch, -1) - alpha * self._mean[None, :]
        dot = _rowwise_matmul(flat, self._centered_t)  # (B, M): (x - a m).c_i, one row at a time
        return (dot - alpha * self._half_sq_norm[None, :]) * (alpha / (sigma**2)[:, None])

    def __repr__(self) -> str:
        return model_repr(self, size=self.size, variants=self.variants, seed=self.seed)

    def _log_prior(self, cond: Any, batch: int) -> Tensor:
        if not isinstance(cond, Mapping) or "vector" not in cond:
            raise TypeError("GlyphDenoiser expects cond=None or a dict with a (B, 10) 'vector' of class weights")
        vector = cond["vector"]
        if tuple(vector.shape) != (batch, NUM_CLASSES):
            raise ValueError(f"cond['vector'] must have shape ({batch}, {NUM_CLASSES}), got {tuple(vector.shape)}")
        prior = ops.matmul(vector.astype(ms.float32), self._class_of.T)  # (B, M) weight of each training image
        prior = ops.where(prior.sum(1, keepdims=True) > 0, prior, ops.ones_like(prior))  # zero row: uniform
        # log of the prior without log(0): excluded images get a large negative logit instead of -inf.
        return ops.where(prior > 0, ops.log(ops.clamp(prior, min=1e-30)), ops.full_like(prior, -1e30))
