"""The video models' per-frame guiders: published scale profiles, the per-frame combination, and the model path."""

from __future__ import annotations

import numpy as np
import pytest
from realnets import TRACES, TracedNet, small_net

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    EDMScaling,
    EulerEDMSampler,
    LinearPredictionGuider,
    SpatiotemporalPredictionGuider,
    TrapezoidPredictionGuider,
    TrianglePredictionGuider,
    VanillaCFG,
    load_sampler,
    randn,
)

# anchors §5, min 1.0 / max 2.5
PUBLISHED = [
    (LinearPredictionGuider(2.5, 14), np.linspace(1.0, 2.5, 14)),
    (TrianglePredictionGuider(2.5, 5), [1.0, 1.75, 2.5, 1.75, 1.0]),
    (TrapezoidPredictionGuider(2.5, 21, edge_perc=0.1), [1.0, 2.5] + [2.5] * 17 + [2.5, 1.0]),
    (
        SpatiotemporalPredictionGuider(2.5, 12, num_views=3),
        [1, 1.75, 1, 1.25, 2, 1.25, 1.5, 2.25, 1.5, 1.75, 2.5, 1.75],
    ),
]


@pytest.mark.parametrize("guider, expected", PUBLISHED, ids=lambda v: type(v).__name__ if hasattr(v, "scale") else "")
def test_published_scale_profiles(guider, expected):
    np.testing.assert_allclose(guider.scale, expected, rtol=0, atol=1e-12)


def test_linear_step_is_the_published_one():
    assert np.diff(LinearPredictionGuider(2.5, 14).scale) == pytest.approx(np.full(13, 0.115385), abs=1e-6)


def test_triangle_periods_fuse_by_max_or_mean():
    values = np.linspace(0, 1, 9)
    wave = lambda p: 2 * np.abs(values / p - np.floor(values / p + 0.5))  # noqa: E731
    by_max = TrianglePredictionGuider(3.0, 9, period=[1.0, 0.5]).scale
    by_mean = TrianglePredictionGuider(3.0, 9, period=[1.0, 0.5], period_fusing="mean").scale
    np.testing.assert_allclose(by_max, 1 + 2 * np.maximum(wave(1.0), wave(0.5)))
    np.testing.assert_allclose(by_mean, 1 + 2 * (wave(1.0) + wave(0.5)) / 2)


def test_per_frame_combination_matches_numpy():
    """Frame t of every video in the batch gets scale[t]; the batch is [uc; c] of b * num_frames frames each."""
    guider = LinearPredictionGuider(3.0, num_frames=4, min_scale=0.5)
    rng = np.random.default_rng(0)
    denoised = rng.standard_normal((16, 2, 3, 3)).astype(np.float32)  # 2 videos x 4 frames, twice
    got = guider(Tensor(denoised), Tensor(np.full(16, 1.0, np.float32))).asnumpy()
    u, c = denoised[:8].astype(np.float64), denoised[8:].astype(np.float64)
    scale = np.tile(np.linspace(0.5, 3.0, 4), 2).reshape(8, 1, 1, 1)
    np.testing.assert_allclose(got, u + scale * (c - u), rtol=1e-6, atol=1e-6)


def test_additional_cond_keys_are_stacked():
    guider = LinearPredictionGuider(2.0, 2, additional_cond_keys="image_only_indicator")
    cond = {"crossattn": Tensor(np.ones((2, 3), np.float32)), "image_only_indicator": Tensor(np.ones((2, 1)))}
    uc = {"crossattn": Tensor(np.zeros((2, 3), np.float32)), "image_only_indicator": Tensor(np.zeros((2, 1)))}
    guider.check_inputs(cond, uc, 2)
    stacked = guider.model_cond(cond, uc)
    np.testing.assert_array_equal(stacked["image_only_indicator"].asnumpy().ravel(), [0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"cond\['image_only_indicator'\] and uc"):
        VanillaCFG(2.0).check_inputs(cond, uc, 2)


def test_batch_must_hold_whole_videos():
    calls = []
    sampler = EulerEDMSampler(num_steps=2, guider_config=LinearPredictionGuider(2.5, num_frames=3))
    cond = {"vector": Tensor(np.zeros((4, 10), np.float32))}

    def model(x, s, c):
        calls.append(1)
        return x

    with pytest.raises(ValueError, match=r"batch \(4\) must hold whole videos of num_frames=3"):
        sampler(model, randn((4, 2), generator=0), cond, cond)
    assert not calls


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"max_scale": 2.5, "num_frames": 0}, ValueError, "num_frames"),
        ({"max_scale": "big", "num_frames": 4}, TypeError, "max_scale"),
        ({"max_scale": 2.5, "num_frames": 4, "additional_cond_keys": [1]}, TypeError, "additional_cond_keys"),
    ],
)
def test_bad_parameters(kwargs, error, words):
    with pytest.raises(error, match=words):
        LinearPredictionGuider(**kwargs)


def test_bad_shape_parameters():
    with pytest.raises(ValueError, match="multiple of num_views"):
        SpatiotemporalPredictionGuider(2.5, 10, num_views=3)
    with pytest.raises(ValueError, match="edge_perc must be <= 0.5"):
        TrapezoidPredictionGuider(2.5, 10, edge_perc=0.7)
    with pytest.raises(ValueError, match="period_fusing must be one of"):
        TrianglePredictionGuider(2.5, 10, period_fusing="min")


def _video_sample(guider, graph_loop=False, seed=0, net=None, denoiser=None):
    frames, videos = guider.num_frames, 2
    denoiser = denoiser or Denoiser(EDMScaling()).bind(net or small_net())
    cond = {"vector": Tensor(np.eye(10, dtype=np.float32)[np.arange(frames * videos) % 10])}
    uc = {"vector": Tensor(np.zeros((frames * videos, 10), np.float32))}
    sampler = EulerEDMSampler(num_steps=3, s_churn=1.0, guider_config=guider, graph_loop=graph_loop)
    return sampler(denoiser, randn((frames * videos, 4, 8, 8), generator=seed), cond, uc, generator=seed + 1)


def test_video_guider_on_a_real_net_matches_frame_by_frame_cfg():
    """A constant per-frame profile is plain CFG; and each frame's result equals CFG at that frame's scale."""
    net = small_net()
    linear = _video_sample(LinearPredictionGuider(3.0, num_frames=3, min_scale=3.0), net=net).asnumpy()
    vanilla = _video_sample_vanilla(3.0, net)
    np.testing.assert_array_equal(linear, vanilla)


def _video_sample_vanilla(scale, net):
    guider = VanillaCFG(scale)
    guider.num_frames = 3
    return _video_sample(guider, net=net).asnumpy()


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_video_guider_compiles_once_and_graph_loop_agrees(mode):
    """The bound denoiser is reused, as it should be: the compiled cells live on it."""
    ms.set_context(mode=mode)
    try:
        denoiser = Denoiser(EDMScaling()).bind(small_net(TracedNet))
        guider = TrianglePredictionGuider(2.5, num_frames=3)
        step = _video_sample(guider, denoiser=denoiser, seed=0).asnumpy()
        del TRACES[:]
        loop = _video_sample(guider, graph_loop=True, denoiser=denoiser, seed=0).asnumpy()
        np.testing.assert_allclose(loop, step, rtol=1e-6, atol=1e-6 * np.abs(step).max())
        first = len(TRACES)  # the loop's compile (PyNative runs the step path eagerly: no graph to count there)
        for seed in (1, 2):
            _video_sample(guider, graph_loop=True, denoiser=denoiser, seed=seed)
            if mode == ms.GRAPH_MODE:
                _video_sample(guider, denoiser=denoiser, seed=seed)
        assert first >= 1 and len(TRACES) == first
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_svd_style_config_loads():
    config = {
        "sampler_config": {
            "target": "sgm.modules.diffusionmodules.sampling.EulerEDMSampler",
            "params": {
                "num_steps": 25,
                "discretization_config": {
                    "target": "sgm.modules.diffusionmodules.discretizer.EDMDiscretization",
                    "params": {"sigma_max": 700.0},
                },
                "guider_config": {
                    "target": "sgm.modules.diffusionmodules.guiders.LinearPredictionGuider",
                    "params": {"max_scale": 2.5, "min_scale": 1.0, "num_frames": 14},
                },
            },
        }
    }
    sampler = load_sampler(config)
    assert isinstance(sampler.guider, LinearPredictionGuider) and sampler.guider.num_frames == 14
    mindone = {"target": "modules.diffusionmodules.guiders.TrianglePredictionGuider"}
    mindone["params"] = {"max_scale": 2.5, "num_frames": 21}
    assert isinstance(
        load_sampler({"target": "euler_edm", "params": {"guider_config": mindone}}).guider, TrianglePredictionGuider
    )


def _recording_model(seen):
    def model(x, sigma, cond, num_video_frames=None):
        seen.append(num_video_frames)
        return x * 0.5 + cond["vector"][:, :1] * 0.1

    return model


@pytest.mark.parametrize("cls", [LinearPredictionGuider, TrianglePredictionGuider, TrapezoidPredictionGuider])
def test_num_frames_from_the_call(cls):
    """num_frames left out of the config comes from model_kwargs['num_video_frames'], SVD's own model argument."""
    frames = 4
    cond = {"vector": Tensor(np.arange(2 * frames * 10, dtype=np.float32).reshape(2 * frames, 10) / 80)}
    uc = {"vector": Tensor(np.zeros((2 * frames, 10), np.float32))}
    x = randn((2 * frames, 3), generator=0)
    seen = []
    from_call = EulerEDMSampler(num_steps=3, guider_config=cls(2.5))(
        _recording_model(seen), x, cond, uc, model_kwargs={"num_video_frames": frames}
    )
    from_config = EulerEDMSampler(num_steps=3, guider_config=cls(2.5, frames))(
        _recording_model([]), x, cond, uc, model_kwargs={"num_video_frames": frames}
    )
    np.testing.assert_array_equal(from_call.asnumpy(), from_config.asnumpy())
    assert seen == [frames] * 3  # the model still gets its argument


def test_num_frames_missing_everywhere_is_refused_before_any_model_call():
    seen = []
    sampler = EulerEDMSampler(num_steps=2, guider_config={"target": "linear_prediction", "params": {"max_scale": 2.5}})
    cond = {"vector": Tensor(np.zeros((4, 10), np.float32))}
    with pytest.raises(ValueError, match=r"num_frames is needed; .*num_video_frames"):
        sampler(_recording_model(seen), randn((4, 3), generator=0), cond, cond)
    assert not seen


def _dynamic_thresholding_numpy(denoised, scale):
    u, c = np.split(denoised.astype(np.float64), 2)
    r = u + scale * (c - u)
    return (r - r.mean()) / r.std(ddof=1) * u.std(ddof=1)  # sgm: torch's unbiased std, mean(u) left out


def test_dynamic_thresholding_matches_sgms_formula():
    from edm_sampler import DynamicThresholding

    guider = VanillaCFG(4.0, dyn_thresh_config=DynamicThresholding())
    denoised = np.random.default_rng(0).standard_normal((8, 3, 4, 4)).astype(np.float32) * 2 + 0.5
    got = guider(Tensor(denoised), Tensor(np.ones(8, np.float32))).asnumpy()
    np.testing.assert_allclose(got, _dynamic_thresholding_numpy(denoised, 4.0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_dynamic_thresholding_on_a_real_net_step_loop_and_graph_loop(mode):
    from edm_sampler import DynamicThresholding

    ms.set_context(mode=mode)
    try:
        denoiser = Denoiser(EDMScaling()).bind(small_net())
        guider = VanillaCFG(3.0, dyn_thresh_config=DynamicThresholding())
        guider.num_frames = 2  # _video_sample's batch: 2 videos of num_frames frames
        step = _video_sample(guider, denoiser=denoiser).asnumpy()
        loop = _video_sample(guider, graph_loop=True, denoiser=denoiser).asnumpy()
        vanilla = VanillaCFG(3.0)
        vanilla.num_frames = 2
        plain = _video_sample(vanilla, denoiser=denoiser).asnumpy()
        np.testing.assert_allclose(loop, step, rtol=1e-5, atol=1e-5 * np.abs(step).max())
        assert np.isfinite(step).all() and np.abs(step - plain).max() > 1e-3  # the thresholding did something
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
