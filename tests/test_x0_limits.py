"""clip_sample and dynamic thresholding on the guided estimate: values against a float64 NumPy reference, after CFG,
in PyNative and graph mode, and bad parameters refused by name."""

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn

from edm_sampler import IdentityGuider, VanillaCFG
from edm_sampler.guiders.x0_limits import ClipX0, DynamicThresholdX0, limit_denoised


def reference_threshold(d, ratio, max_value):
    flat = np.abs(d.reshape(len(d), -1))
    s = np.clip(np.quantile(flat, ratio, axis=1), 1.0, max_value).reshape((-1,) + (1,) * (d.ndim - 1))
    return np.clip(d, -s, s) / s


@pytest.mark.parametrize("ratio, max_value", [(0.995, 1.0), (0.9, 1.7), (0.5, 3.0), (1.0, 2.0), (0.0, 1.0)])
def test_dynamic_threshold_matches_the_quantile_rule(ratio, max_value):
    d = np.random.default_rng(0).standard_normal((3, 4, 5, 6)) * 1.4
    out = DynamicThresholdX0(ratio, max_value)(Tensor(d.astype(np.float32))).asnumpy()
    np.testing.assert_allclose(out, reference_threshold(d, ratio, max_value), rtol=2e-6, atol=2e-7)


def test_clip():
    d = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(ClipX0(1.5)(Tensor(d)).asnumpy(), np.clip(d, -1.5, 1.5))


def test_the_limit_follows_guidance_and_leaves_the_guider_alone():
    guider = VanillaCFG(3.0)
    limited = limit_denoised(guider, DynamicThresholdX0(0.9, 2.0))
    d = np.random.default_rng(1).standard_normal((4, 2, 3, 3)).astype(np.float32)
    uncond, cond = d[:2].astype(np.float64), d[2:].astype(np.float64)
    expected = reference_threshold(uncond + 3.0 * (cond - uncond), 0.9, 2.0)
    np.testing.assert_allclose(limited.combine(Tensor(d), 3.0).asnumpy(), expected, rtol=2e-6, atol=2e-7)
    assert guider.combine is VanillaCFG.combine and type(limited) is VanillaCFG  # a copy: the original unchanged


def test_graph_mode():
    class Cell(nn.Cell):
        def __init__(self, combine):
            super().__init__()
            self.combine = combine

        def construct(self, d, scale):
            return self.combine(d, scale)

    limited = limit_denoised(IdentityGuider(), DynamicThresholdX0(0.8, 1.5))
    d = np.random.default_rng(2).standard_normal((2, 3, 4, 4)).astype(np.float32) * 2
    eager = limited.combine(Tensor(d), 1.0).asnumpy()
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        compiled = Cell(limited.combine)(Tensor(d), Tensor(np.float32(1.0))).asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: ClipX0(0.0), "clip_sample_range must be > 0"),
        (lambda: DynamicThresholdX0(1.5), r"dynamic_thresholding_ratio must be in \[0, 1\]"),
        (lambda: DynamicThresholdX0(0.9, 0.5), "sample_max_value must be >= 1"),
        (lambda: limit_denoised(object(), ClipX0()), "need an edm_sampler Guider"),
    ],
)
def test_bad_parameters(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()
