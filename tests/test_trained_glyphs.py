"""The glyph UNet and its packaged checkpoint: it loads, samples the requested digits, does not copy its data, and
runs on the fast model path in PyNative and graph mode."""

from __future__ import annotations

import numpy as np
import pytest
from realnets import TRACES, _trace

import mindspore as ms
from mindspore import Tensor

from edm_sampler import Denoiser, EDMScaling, HeunEDMSampler, VanillaCFG, randn
from edm_sampler.model_path import ModelOutputError
from edm_sampler.models.glyphs import GlyphData, GlyphDenoiser
from edm_sampler.models.trained_glyphs import TrainedGlyphModel, load_glyph_unet, packaged_checkpoint
from edm_sampler.models.unet import GlyphUNet, _depth_to_space, _space_to_depth
from edm_sampler.noise import per_sample_generators

N = 20  # two of each digit


@pytest.fixture(scope="module")
def model():
    return TrainedGlyphModel()


def sample(model, n=N, steps=18, seed=0):
    labels = np.arange(n) % 10
    gens = per_sample_generators(seed, n)
    noise = randn((n, 1, 24, 24), gens)
    cond, uc = {"vector": GlyphData.class_vectors(labels)}, {"vector": GlyphData.unconditional_vectors(n)}
    sampler = HeunEDMSampler(num_steps=steps, guider_config=VanillaCFG(2.0))
    out = sampler(model, noise, cond, uc, generator=gens, disable=True).asnumpy()
    return out, labels


def test_space_to_depth_is_a_lossless_2x2_patch_layout():
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 12)).astype(np.float32)
    y = _space_to_depth(Tensor(x)).asnumpy()
    assert y.shape == (3, 4, 4, 6)
    np.testing.assert_array_equal(y[:, 1], x[:, 0, 0::2, 1::2])  # channel = 2 * row parity + column parity
    np.testing.assert_array_equal(y[:, 2], x[:, 0, 1::2, 0::2])
    np.testing.assert_array_equal(_depth_to_space(Tensor(y)).asnumpy(), x)


def test_untrained_unet_is_the_skip_connection():
    """The output layer starts at zero, so before training D(x) = c_skip x exactly."""
    net = GlyphUNet(channels=8)
    x = randn((2, 1, 24, 24), generator=1)
    sigma = Tensor(np.array([0.5, 3.0], np.float32))
    d = Denoiser(EDMScaling()).bind(net)(x, sigma, {"vector": Tensor(np.zeros((2, 10), np.float32))})
    c_skip = 0.25 / (np.array([0.25, 9.0]) + 0.25)
    np.testing.assert_allclose(d.asnumpy(), x.asnumpy() * c_skip[:, None, None, None], rtol=1e-6)


def test_packaged_checkpoint_is_small_and_complete():
    path = packaged_checkpoint()
    assert path.is_file() and path.stat().st_size <= 2 * 2**20
    net = load_glyph_unet()
    assert net.channels == 32
    assert sum(p.size for p in net.trainable_params()) == 404_644


def test_trained_net_draws_the_requested_digits_without_copying(model):
    out, labels = sample(model)
    nearest_labels, distances = model.nearest(out)
    assert np.isfinite(out).all() and out.shape == (N, 1, 24, 24)
    assert np.mean(nearest_labels == labels) >= 0.9
    # The exact denoiser returns training images (distance ~0); the trained net makes new ones.
    exact, _ = sample(GlyphDenoiser(), n=10)
    assert GlyphDenoiser().nearest(exact)[1].max() < 1e-3
    assert distances.mean() > 0.05


def test_same_seed_same_bits(model):
    a, _ = sample(model, n=4, steps=6)
    b, _ = sample(model, n=4, steps=6)
    np.testing.assert_array_equal(a, b)


def test_graph_mode_matches_pynative(model):
    eager, _ = sample(model, n=4, steps=6)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        graph, _ = sample(TrainedGlyphModel(), n=4, steps=6)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(graph, eager, atol=1e-5)


class TracedUNet(GlyphUNet):
    """GlyphUNet that records each time MindSpore compiles its (jitted) construct."""

    @ms.jit
    def construct(self, x, c_noise, cond=None):
        _trace("unet")
        return super().construct(x, c_noise, cond)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_the_jitted_unet_compiles_only_during_the_first_call(mode):
    """The network's construct is ms.jit: with new noise, new conditioning tensors and new sigmas it must not
    recompile after the first sampler call, in PyNative as in graph mode."""
    denoiser = Denoiser(EDMScaling()).bind(TracedUNet(channels=8))
    ms.set_context(mode=mode)
    try:
        del TRACES[:]
        sample(denoiser, n=2, steps=3, seed=0)
        first = len(TRACES)
        assert first >= 1
        for seed in (1, 2):
            sample(denoiser, n=2, steps=4, seed=seed)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert len(TRACES) == first, f"recompiled: {TRACES}"


def test_bad_checkpoints_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*train_glyphs"):
        TrainedGlyphModel(tmp_path / "missing.ckpt")
    other = tmp_path / "other.ckpt"
    ms.save_checkpoint([{"name": "weight", "data": Tensor(np.zeros(3, np.float32))}], str(other))
    with pytest.raises(ValueError, match="not a GlyphUNet checkpoint"):
        load_glyph_unet(other)
    partial = tmp_path / "partial.ckpt"
    ms.save_checkpoint(
        [{"name": p.name, "data": p.value()} for p in GlyphUNet(channels=8).get_parameters() if "mid" not in p.name],
        str(partial),
    )
    with pytest.raises(ValueError, match="does not match GlyphUNet: missing.*mid"):
        load_glyph_unet(partial)


def test_wrong_conditioning_names_the_call(model):
    noise = randn((2, *model.shape), generator=0)
    with pytest.raises(ModelOutputError, match="GlyphUNet"):
        HeunEDMSampler(num_steps=2)(model, noise, {"label": Tensor(np.zeros(2, np.int32))}, disable=True)
