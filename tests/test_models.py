"""The built-in exact denoisers against float64 NumPy formulas."""

import numpy as np
import pytest
from conftest import to_np
from reference import gmm_denoiser

from mindspore import Tensor

from edm_sampler import EulerEDMSampler, HeunEDMSampler, VanillaCFG
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser, GlyphDenoiser, render_glyphs


@pytest.fixture(scope="module")
def glyphs():
    return GlyphDenoiser(size=16, variants=6)


def batch_sigma(value, batch):
    return Tensor(np.full((batch,), value, np.float32))


def test_gaussian_denoiser_formula(rng):
    x = rng.standard_normal((3, 2, 2)).astype(np.float32)
    sigma = np.array([0.1, 1.0, 30.0], np.float32)
    out = to_np(GaussianDenoiser(0.7)(Tensor(x), Tensor(sigma)))
    np.testing.assert_allclose(out, x * 0.49 / (sigma[:, None, None] ** 2 + 0.49), rtol=1e-6)


@pytest.mark.parametrize("sigma", [0.002, 0.1, 1.0, 20.0, 80.0])
def test_gaussian_mixture_matches_float64(sigma, rng):
    means, stds, weights = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.1, 0.3, 0.2], [0.5, 0.3, 0.2]
    x = (rng.standard_normal((16, 2)) * (1 + sigma)).astype(np.float32)
    out = to_np(GaussianMixtureDenoiser(means, stds, weights)(Tensor(x), batch_sigma(sigma, 16)))
    ref = gmm_denoiser(means, stds, weights)(x.astype(np.float64), sigma)
    np.testing.assert_allclose(out, ref, rtol=2e-5, atol=2e-5)


def test_gaussian_mixture_sampling_recovers_the_modes(rng):
    model = GaussianMixtureDenoiser()
    x = Tensor(rng.standard_normal((256, 2)).astype(np.float32))
    out = to_np(HeunEDMSampler(num_steps=32)(model, x))
    dist = np.linalg.norm(out[:, None, :] - model.means[None], axis=-1).min(1)
    assert np.median(dist) < 0.15  # samples land on modes of std 0.1 ...
    counts = np.bincount(np.linalg.norm(out[:, None, :] - model.means[None], axis=-1).argmin(1), minlength=8)
    assert counts.min() >= 16  # ... and every one of the 8 equal-weight modes is populated (expected 32 each)


def test_glyph_dataset_is_deterministic_and_well_formed():
    a, la = render_glyphs(size=16, variants=3, seed=5)
    b, lb = render_glyphs(size=16, variants=3, seed=5)
    c, _ = render_glyphs(size=16, variants=3, seed=6)
    assert a.shape == (30, 1, 16, 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, np.repeat(np.arange(10), 3))
    assert not np.array_equal(a, c)
    assert a.min() == -1.0 and 0.9 < a.max() <= 1.0
    ink = (a > 0).mean(axis=(1, 2, 3))
    assert np.all(ink > 0.02) and np.all(ink < 0.5)  # every image has a glyph, none is blank or flooded


def _glyph_reference(data, labels, x, sigma, class_weights=None):
    flat = x.reshape(len(x), -1).astype(np.float64)
    d = data.reshape(len(data), -1).astype(np.float64)
    logits = -((flat[:, None, :] - d[None]) ** 2).sum(-1) / (2 * sigma**2)
    if class_weights is not None:
        prior = class_weights[:, labels]
        prior[prior.sum(1) == 0] = 1.0
        logits = np.where(prior > 0, logits + np.log(np.where(prior > 0, prior, 1.0)), -np.inf)
    logits -= logits.max(1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(1, keepdims=True)
    return (w @ d).reshape(x.shape)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 5.0, 80.0])
def test_glyph_denoiser_matches_float64(glyphs, sigma, rng):
    x = (glyphs.images[rng.integers(0, 60, 4)] + sigma * rng.standard_normal((4, 1, 16, 16))).astype(np.float32)
    weights = np.zeros((4, 10), np.float32)
    weights[0, 3] = weights[1, 7] = 1.0
    weights[2, [1, 2]] = 0.5  # row 3 stays zero = unconditional
    out = to_np(glyphs(Tensor(x), batch_sigma(sigma, 4), {"vector": Tensor(weights)}))
    ref = _glyph_reference(glyphs.images, glyphs.labels, x, sigma, weights)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    uncond = to_np(glyphs(Tensor(x), batch_sigma(sigma, 4)))
    np.testing.assert_allclose(uncond, _glyph_reference(glyphs.images, glyphs.labels, x, sigma), atol=1e-4)


def test_glyph_denoiser_limits(glyphs):
    # tiny sigma: a training image is a fixed point; huge sigma with a class: the class mean
    y = glyphs.images[[4, 40]]
    np.testing.assert_allclose(to_np(glyphs(Tensor(y), batch_sigma(0.002, 2))), y, atol=1e-5)
    onehot = glyphs.class_vectors([2, 9])
    out = to_np(glyphs(Tensor(np.zeros_like(y)), batch_sigma(1e4, 2), {"vector": onehot}))
    for row, label in zip(out, [2, 9]):
        np.testing.assert_allclose(row, glyphs.images[glyphs.labels == label].mean(0), atol=1e-4)


def test_glyph_denoiser_rejects_bad_cond(glyphs):
    x, s = Tensor(np.zeros((2, 1, 16, 16), np.float32)), batch_sigma(1.0, 2)
    with pytest.raises(TypeError, match="'vector'"):
        glyphs(x, s, {"label": 3})
    with pytest.raises(ValueError, match=r"cond\['vector'\] must have shape \(2, 10\)"):
        glyphs(x, s, {"vector": Tensor(np.zeros((2, 9), np.float32))})


@pytest.mark.parametrize("guider", [None, VanillaCFG(scale=2.0)])
def test_conditional_sampling_gives_requested_classes(glyphs, guider, rng):
    labels = np.arange(10)
    x = Tensor(rng.standard_normal((10, 1, 16, 16)).astype(np.float32))
    cond, uc = {"vector": glyphs.class_vectors(labels)}, {"vector": glyphs.unconditional_vectors(10)}
    out = to_np(EulerEDMSampler(num_steps=18, guider_config=guider)(glyphs, x, cond, uc))
    nearest, dist = glyphs.nearest(out)
    np.testing.assert_array_equal(nearest, labels)
    assert dist.max() < 0.05


def test_glyph_model_is_batch_invariant_whatever_the_gemm_kernel():
    """A sample's bits must not depend on its batch. MindSpore's CPU matmul under DNNL_MAX_CPU_ISA=AVX2 sums in an
    order that depends on the number of rows, so this runs in a fresh interpreter with that ISA (where a plain
    batched matmul fails it)."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from mindspore import Tensor\n"
        "from edm_sampler.models import GlyphDenoiser\n"
        "m = GlyphDenoiser()\n"
        "x = Tensor(np.random.default_rng(0).standard_normal((8, 1, 24, 24)).astype(np.float32) * 3)\n"
        "s = Tensor(np.full(8, 1.7, np.float32))\n"
        "c = {'vector': m.class_vectors(np.arange(8) % 10)}\n"
        "full = m(x, s, c).asnumpy()\n"
        "rows = [m(x[i:i + 1], s[i:i + 1], {'vector': c['vector'][i:i + 1]}).asnumpy() for i in range(8)]\n"
        "print(np.array_equal(full, np.concatenate(rows)))\n"
    )
    env = {**__import__("os").environ, "DNNL_MAX_CPU_ISA": "AVX2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip().splitlines()[-1] == "True"
