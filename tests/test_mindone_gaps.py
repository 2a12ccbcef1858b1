"""mindone's features that sgm does not have: its DynamicThresholding (Imagen's, on the [uc; c] batch), and the
keywords its pipelines pass to a sampler call (SVD's and SV3D's num_frames / image_only_indicator, SDXL's
adapter_states / control / init_noise_scheduler), each against a float64 NumPy version of what mindone computes."""

from __future__ import annotations

import numpy as np
import pytest
from affine_nets import VECTOR, AffineNet, C, Engine, karras, legacy_ddpm
from realnets import TRACES, _trace

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    DiscreteDenoiser,
    DynamicThresholding,
    EDMScaling,
    EpsScaling,
    EulerAncestralSampler,
    EulerEDMSampler,
    LegacyDDPMDiscretization,
    LinearPredictionGuider,
    MindoneDynamicThresholding,
    VanillaCFG,
    VScalingWithEDMcNoise,
    instantiate_from_config,
    load_sampler,
    randn,
)
from edm_sampler.checks import ConfigError

GM = "gm.modules.diffusionmodules"
SGM = "sgm.modules.diffusionmodules"
H = W = 4


def _vectors(rows, seed):
    return Tensor(np.random.default_rng(seed).uniform(-1, 1, (rows, VECTOR)).astype(np.float32))


# ---------------------------------------------------------------------------------------------------------------------
# mindone's DynamicThresholding
# ---------------------------------------------------------------------------------------------------------------------


def _imagen_threshold(rows: np.ndarray, ratio: float, max_value: float) -> np.ndarray:
    """mindone's sampling_utils.DynamicThresholding.__call__ in float64: per row, np.quantile of |x| over everything
    but the batch axis, clamped to [1, max_value]; clamp(x, -s, s) / s."""
    flat = rows.reshape(len(rows), -1).astype(np.float64)
    s = np.clip(np.quantile(np.abs(flat), ratio, axis=1), 1.0, max_value)[:, None]
    return (np.clip(flat, -s, s) / s).reshape(rows.shape)


def _mindone_cfg(denoised: np.ndarray, scale: float, ratio: float, max_value: float) -> np.ndarray:
    """mindone's VanillaCFG.__call__ (e0b2970): threshold the stacked batch, then u + scale (c - u)."""
    u, c = np.split(_imagen_threshold(denoised, ratio, max_value), 2)
    return u + scale * (c - u)


def _dyn_thresh_guider(scale=2.0, prefix=GM, **params):
    thresholding = {"target": f"{prefix}.sampling_utils.DynamicThresholding", "params": params}
    guider = {"target": f"{GM}.guiders.VanillaCFG", "params": {"scale": scale, "dyn_thresh_config": thresholding}}
    return load_sampler({"target": "euler_edm", "params": {"guider_config": guider}}).guider


def test_dynamic_thresholding_pinned_by_hand():
    """uc row [0.5, -2, 3, 1] at ratio 0.5: |x| sorted 0.5 1 2 3, quantile 1.5 (position 1.5), so the row becomes
    [1/3, -1, 1, 2/3]; cond row [4, 0, 0, 0]: quantile 0 -> s = 1, clipped to [1, 0, 0, 0]; CFG 2: 2 c - u."""
    guider = _dyn_thresh_guider(2.0, dynamic_thresholding_ratio=0.5, sample_max_value=2.0)
    denoised = np.array([[0.5, -2.0, 3.0, 1.0], [4.0, 0.0, 0.0, 0.0]], np.float32).reshape(2, 1, 2, 2)
    got = guider(Tensor(denoised), Tensor(np.ones(2, np.float32))).asnumpy().ravel()
    np.testing.assert_allclose(got, [5 / 3, 1.0, -1.0, -2 / 3], rtol=1e-6)


@pytest.mark.parametrize("ratio, max_value", [(0.9, 1.5), (0.995, 1.0), (0.6, 3.0)])
def test_dynamic_thresholding_matches_mindone(ratio, max_value):
    guider = _dyn_thresh_guider(3.5, dynamic_thresholding_ratio=ratio, sample_max_value=max_value)
    assert isinstance(guider.dyn_thresh, MindoneDynamicThresholding)
    denoised = np.random.default_rng(0).standard_normal((6, 3, 5, 5)).astype(np.float32) * 1.7
    got = guider(Tensor(denoised), Tensor(np.ones(6, np.float32))).asnumpy()
    expected = _mindone_cfg(denoised, 3.5, ratio, max_value)
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6)
    plain = denoised[3:] + 3.5 * (denoised[3:] - denoised[:3])
    assert np.abs(got - plain).max() > 0.5  # it did threshold (the guided result itself is not clamped)


def test_config_paths_keep_their_own_thresholding():
    """gm's path (and its video copies' modules.diffusionmodules) is mindone's; sgm's path keeps sgm's rescale."""
    for prefix in (GM, "modules.diffusionmodules"):
        thresholding = _dyn_thresh_guider(prefix=prefix, dynamic_thresholding_ratio=0.9).dyn_thresh
        assert isinstance(thresholding, MindoneDynamicThresholding)
        assert (thresholding.dynamic_thresholding_ratio, thresholding.sample_max_value) == (0.9, 1.0)
    assert isinstance(_dyn_thresh_guider(prefix=SGM).dyn_thresh, DynamicThresholding)
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) dynamic_thresholding_ratio"):
        _dyn_thresh_guider(prefix=SGM, dynamic_thresholding_ratio=0.9)


@pytest.mark.parametrize(
    "params, error, words",
    [
        ({"dynamic_thresholding_ratio": 1.5}, ValueError, "dynamic_thresholding_ratio must be in"),
        ({"sample_max_value": 0.5}, ValueError, "sample_max_value must be >= 1"),
        ({"sample_max_valu": 2.0}, ConfigError, "unknown parameter.*sample_max_valu"),
    ],
)
def test_dynamic_thresholding_bad_parameters(params, error, words):
    with pytest.raises(error, match=words):
        _dyn_thresh_guider(**params)


def test_init_sampling_thresholding_short_form():
    """mindone's init_sampling(thresholding=True, dynamic_thresholding_ratio, sample_max_value) as a short form."""
    block = {
        "sampler": "EulerEDMSampler",
        "guidance_scale": 7.0,
        "thresholding": True,
        "dynamic_thresholding_ratio": 0.8,
        "sample_max_value": 2.5,
    }
    guider = load_sampler({"sampler": block}).guider
    assert guider.scale == 7.0 and isinstance(guider.dyn_thresh, MindoneDynamicThresholding)
    assert (guider.dyn_thresh.dynamic_thresholding_ratio, guider.dyn_thresh.sample_max_value) == (0.8, 2.5)
    assert load_sampler({"sampler": {**block, "thresholding": False}}).guider.dyn_thresh is None
    with pytest.raises(ConfigError, match="thresholding must be True or False"):
        load_sampler({"sampler": {**block, "thresholding": "yes"}})


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_dynamic_thresholding_on_a_real_net_eager_and_graph_loop(mode):
    """On AffineNet: the step-by-step call equals a float64 NumPy mindone loop and the compiled loop equals it."""
    ms.set_context(mode=mode)
    try:
        net = AffineNet(seed=3)
        denoiser = Denoiser(EDMScaling()).bind(net)
        guider = _dyn_thresh_guider(2.5, dynamic_thresholding_ratio=0.9, sample_max_value=1.5)
        noise = randn((2, C, H, W), generator=0)
        cond, uc = {"vector": _vectors(2, 1)}, {"vector": _vectors(2, 2)}

        def sample(graph_loop):
            sampler = EulerEDMSampler(num_steps=4, guider_config=guider, graph_loop=graph_loop)
            return sampler(denoiser, noise, cond, uc).asnumpy()

        step, loop = sample(False), sample(True)
        np.testing.assert_allclose(loop, step, rtol=1e-5, atol=1e-5 * np.abs(step).max())
        sigmas = karras(4)
        vectors = np.concatenate([uc["vector"].asnumpy(), cond["vector"].asnumpy()]).astype(np.float64)
        x = noise.asnumpy().astype(np.float64) * np.sqrt(1 + sigmas[0] ** 2)
        for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
            c_skip, c_out, c_in = (
                0.25 / (sigma**2 + 0.25),
                sigma * 0.5 / np.sqrt(sigma**2 + 0.25),
                1 / np.sqrt(sigma**2 + 0.25),
            )
            x_in = np.concatenate([x, x])
            out = net.numpy(x_in * c_in, np.full(4, 0.25 * np.log(sigma)), vectors)
            denoised = _mindone_cfg(out * c_out + x_in * c_skip, 2.5, 0.9, 1.5)
            x = x + (sigma_next - sigma) * (x - denoised) / sigma
        np.testing.assert_allclose(step, x, rtol=2e-5, atol=2e-5 * np.abs(x).max())
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


# ---------------------------------------------------------------------------------------------------------------------
# SVD's and SV3D's call forms
# ---------------------------------------------------------------------------------------------------------------------


def _v_edm(sigma):
    """VScalingWithEDMcNoise (SVD, SV3D): c_skip, c_out, c_in, c_noise."""
    return 1 / (sigma**2 + 1), -sigma / np.sqrt(sigma**2 + 1), 1 / np.sqrt(sigma**2 + 1), 0.25 * np.log(sigma)


def _mindone_video_euler(net, noise, sigmas, c, uc, frames, scales, **model_kwargs):
    """mindone's SVD EulerEDMSampler.denoise (da53277) and LinearPredictionGuider.construct, float64: the model gets
    the doubled batch and **kwargs (num_frames included); frame t of every video is guided with scales[t]."""
    x = noise.astype(np.float64) * np.sqrt(1 + sigmas[0] ** 2)
    vectors = np.concatenate([uc, c]).astype(np.float64)
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        c_skip, c_out, c_in, c_noise = _v_edm(sigma)
        x_in = np.concatenate([x, x])
        out = net.numpy(x_in * c_in, np.full(len(x_in), c_noise), vectors, num_frames=frames, **model_kwargs)
        u, cc = np.split(out * c_out + x_in * c_skip, 2)
        scale = np.tile(scales, len(x) // frames).reshape(-1, 1, 1, 1)
        x = x + (sigma_next - sigma) * (x - (u + scale * (cc - u))) / sigma
    return x


def _svd_sampler(**guider_params):
    return load_sampler(
        {
            "target": f"{GM}.sampler.EulerEDMSampler",
            "params": {
                "num_steps": 4,
                "discretization_config": {
                    "target": f"{GM}.discretizer.EDMDiscretization",
                    "params": {"sigma_max": 700.0},
                },
                "guider_config": {
                    "target": f"{GM}.guiders.LinearPredictionGuider",
                    "params": {"max_scale": 2.5, "min_scale": 1.0, **guider_params},
                },
            },
        }
    )


def test_svd_call_form_num_frames_reaches_guider_and_model():
    """image_to_video.py: sampler(model, noise, cond=c, uc=uc, num_frames=N); the guider config has no num_frames."""
    frames, videos = 3, 2
    net = AffineNet(seed=5)
    engine = Engine(net, Denoiser(VScalingWithEDMcNoise()))
    noise = randn((frames * videos, C, H, W), generator=1)
    c, uc = _vectors(frames * videos, 2), _vectors(frames * videos, 3)
    got = _svd_sampler()(engine, noise, cond={"vector": c}, uc={"vector": uc}, num_frames=frames).asnumpy()
    sigmas = karras(4, sigma_max=700.0)
    expected = _mindone_video_euler(
        net, noise.asnumpy(), sigmas, c.asnumpy(), uc.asnumpy(), frames, np.linspace(1.0, 2.5, frames)
    )
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5 * np.abs(expected).max())


def test_sv3d_call_form_with_image_only_indicator():
    """simple_video_sample.py: guider num_frames in the config, the call passes num_frames=N and
    image_only_indicator=zeros((2, N)) (here not zeros, so the test sees it), both to the model."""
    frames = 4
    net = AffineNet(seed=6)
    engine = Engine(net, Denoiser(VScalingWithEDMcNoise()))
    noise = randn((frames, C, H, W), generator=4)
    c, uc = _vectors(frames, 5), _vectors(frames, 6)
    indicator = np.arange(2 * frames, dtype=np.float32).reshape(2, frames) / 8
    got = _svd_sampler(num_frames=frames)(
        engine, noise, cond={"vector": c}, uc={"vector": uc}, num_frames=frames, image_only_indicator=Tensor(indicator)
    ).asnumpy()
    sigmas = karras(4, sigma_max=700.0)
    expected = _mindone_video_euler(
        net,
        noise.asnumpy(),
        sigmas,
        c.asnumpy(),
        uc.asnumpy(),
        frames,
        np.linspace(1.0, 2.5, frames),
        image_only_indicator=indicator,
    )
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5 * np.abs(expected).max())
    with pytest.raises(ValueError, match=r"num_frames=3, but the guider is configured for num_frames=4"):
        _svd_sampler(num_frames=frames)(
            engine,
            randn((6, C, H, W), generator=0),
            cond={"vector": _vectors(6, 0)},
            uc={"vector": _vectors(6, 1)},
            num_frames=3,
        )


def test_graph_mode_with_video_keywords_compiles_once():
    """num_frames (an int the network uses as a shape) and image_only_indicator reach a graph-mode network; a second
    call compiles nothing."""

    class TracedAffineNet(AffineNet):
        def construct(self, x, c_noise, cond, **kwargs):
            _trace("affine")
            return super().construct(x, c_noise, cond, **kwargs)

    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        denoiser = Denoiser(EDMScaling()).bind(TracedAffineNet(seed=7))
        sampler = EulerEDMSampler(num_steps=3, guider_config=LinearPredictionGuider(2.0))
        indicator = Tensor(np.zeros((2, 3), np.float32))

        def sample(seed):
            cond, uc = {"vector": _vectors(3, seed)}, {"vector": _vectors(3, seed + 1)}
            noise = randn((3, C, H, W), generator=seed)
            return sampler(denoiser, noise, cond, uc, num_frames=3, image_only_indicator=indicator).asnumpy()

        del TRACES[:]
        first = sample(0)
        compiled = len(TRACES)
        sample(1)
        assert compiled >= 1 and len(TRACES) == compiled and np.isfinite(first).all()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


# ---------------------------------------------------------------------------------------------------------------------
# SDXL's do_sample keywords: adapter_states, control, init_noise_scheduler
# ---------------------------------------------------------------------------------------------------------------------


def _ddpm_engine(seed):
    net = AffineNet(seed=seed)
    return net, Engine(net, DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization()))


def _eps(sigma):
    """EpsScaling at a level: c_skip 1, c_out -sigma, c_in 1 / sqrt(sigma^2 + 1)."""
    return 1.0, -sigma, 1 / np.sqrt(sigma**2 + 1)


def test_sdxl_call_form_adapter_states_and_control():
    """do_sample: sampler(self, randn, cond=c, uc=uc, adapter_states=[...], control=concat((control, control)),
    init_noise_scheduler=None): both reach the model on every evaluation as they are (the caller doubles control)."""
    net, engine = _ddpm_engine(8)
    rng = np.random.default_rng(9)
    adapter = [
        rng.standard_normal((4, C, 1, 1)).astype(np.float32),
        rng.standard_normal((4, C, H, W)).astype(np.float32),
    ]
    control = rng.standard_normal((4, C, H, W)).astype(np.float32)
    noise = randn((2, C, H, W), generator=10)
    c, uc = _vectors(2, 11), _vectors(2, 12)
    sampler = EulerEDMSampler(
        num_steps=5, discretization_config=LegacyDDPMDiscretization(), s_tmax=999.0, guider_config=VanillaCFG(5.0)
    )
    got = sampler(
        engine,
        noise,
        cond={"vector": c},
        uc={"vector": uc},
        adapter_states=[Tensor(a) for a in adapter],
        control=Tensor(control),
        init_noise_scheduler=None,
    ).asnumpy()
    sigmas, timesteps = legacy_ddpm(5)
    x = noise.asnumpy().astype(np.float64) * np.sqrt(1 + sigmas[0] ** 2)
    vectors = np.concatenate([uc.asnumpy(), c.asnumpy()]).astype(np.float64)
    for sigma, sigma_next, t in zip(sigmas[:-1], sigmas[1:], timesteps):
        c_skip, c_out, c_in = _eps(sigma)
        x_in = np.concatenate([x, x])
        out = net.numpy(x_in * c_in, np.full(4, t), vectors, adapter_states=adapter, control=control)
        u, cc = np.split(out * c_out + x_in * c_skip, 2)
        x = x + (sigma_next - sigma) * (x - (u + 5.0 * (cc - u))) / sigma
    np.testing.assert_allclose(got, x, rtol=2e-5, atol=2e-5 * np.abs(x).max())


def _mindone_euler_ancestral(net, noise, sigmas, timesteps, c, uc, scale, table, s_noise):
    """mindone's EulerAncestralSampler with init_noise_scheduler (mindone#458), float64: eta is always 1 there
    (get_ancestral_step(sigma, next_sigma) without eta), step i's noise is table[i], masked out on the last step."""
    x = noise.astype(np.float64) * np.sqrt(1 + sigmas[0] ** 2)
    vectors = np.concatenate([uc, c]).astype(np.float64)
    for i, (sigma, sigma_next, t) in enumerate(zip(sigmas[:-1], sigmas[1:], timesteps)):
        sigma_up = min(sigma_next, np.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2))
        sigma_down = np.sqrt(sigma_next**2 - sigma_up**2)
        c_skip, c_out, c_in = _eps(sigma)
        x_in = np.concatenate([x, x])
        u, cc = np.split(net.numpy(x_in * c_in, np.full(len(x_in), t), vectors) * c_out + x_in * c_skip, 2)
        x = x + (sigma_down - sigma) * (x - (u + scale * (cc - u))) / sigma
        if sigma_next > 0:
            x = x + table[i] * s_noise * sigma_up
    return x


@pytest.mark.parametrize("graph_loop", [False, True], ids=["steps", "graph_loop"])
def test_init_noise_scheduler_is_each_steps_noise(graph_loop):
    """Euler ancestral (mindone's: eta 1; s_noise 0.9 here) with a per-step noise table, as do_sample loads it from
    init_noise_scheduler_path: the same in step-by-step and compiled (the table is drawn on the host first)."""
    net = AffineNet(seed=13)
    denoiser = DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization()).bind(net)
    steps = 5
    table = np.random.default_rng(14).standard_normal((steps, 2, C, H, W)).astype(np.float32)
    noise = randn((2, C, H, W), generator=15)
    c, uc = _vectors(2, 16), _vectors(2, 17)
    sampler = EulerAncestralSampler(
        eta=1.0,
        s_noise=0.9,
        num_steps=steps,
        graph_loop=graph_loop,
        discretization_config=LegacyDDPMDiscretization(),
        guider_config=VanillaCFG(4.0),
    )
    got = sampler(denoiser, noise, {"vector": c}, {"vector": uc}, init_noise_scheduler=Tensor(table)).asnumpy()
    sigmas, timesteps = legacy_ddpm(steps)
    expected = _mindone_euler_ancestral(
        net, noise.asnumpy(), sigmas, timesteps, c.asnumpy(), uc.asnumpy(), 4.0, table.astype(np.float64), 0.9
    )
    np.testing.assert_allclose(got, expected, rtol=3e-5, atol=3e-5 * np.abs(expected).max())
    # a list of per-step arrays is the same table
    again = sampler(denoiser, noise, {"vector": c}, {"vector": uc}, init_noise_scheduler=list(table)).asnumpy()
    np.testing.assert_array_equal(again, got)


def test_init_noise_scheduler_errors_before_any_model_call():
    calls = []

    def model(x, sigma, cond):
        calls.append(1)
        return x * 0.5

    noise = randn((2, 3), generator=0)
    sampler = EulerAncestralSampler(num_steps=4)
    with pytest.raises(
        ValueError, match=r"one noise shaped like x \(2, 3\) per step \(4 steps\), got shape \(3, 2, 3\)"
    ):
        sampler(model, noise, init_noise_scheduler=np.zeros((3, 2, 3), np.float32))
    with pytest.raises(ValueError, match="either noise_sampler or init_noise_scheduler"):
        sampler(model, noise, init_noise_scheduler=np.zeros((4, 2, 3)), noise_sampler=lambda s, t: None)
    with pytest.raises(ValueError, match="DPMPP2MSDESampler makes its own noise"):
        load_sampler({"target": "dpmpp_2m_sde", "params": {"num_steps": 4}})(
            model, noise, init_noise_scheduler=np.zeros((4, 2, 3))
        )
    with pytest.raises(ValueError, match=r"init_noise_scheduler\[3\] has shape \(3,\); every step's noise"):
        sampler(model, noise, init_noise_scheduler=[np.zeros((2, 3))] * 3 + [np.zeros(3)])
    with pytest.raises(TypeError, match="init_noise_scheduler must be a Tensor, an array or a list"):
        sampler(model, noise, init_noise_scheduler="noise.npy")
    assert not calls


# ---------------------------------------------------------------------------------------------------------------------
# Keywords that are not mindone's, and what graph_loop cannot run
# ---------------------------------------------------------------------------------------------------------------------


def test_unknown_keyword_is_refused_before_any_model_call():
    calls = []

    def model(x, sigma, cond, **kwargs):
        calls.append(kwargs)
        return x

    sampler = EulerEDMSampler(num_steps=2)
    for typo, meant in (
        ("num_frame", "num_frames"),
        ("contrl", "control"),
        ("image_only_indicater", "image_only_indicator"),
        ("foo", None),
    ):
        hint = rf" \(did you mean '{meant}'\?\)" if meant else ""
        with pytest.raises(TypeError, match=rf"unexpected keyword argument '{typo}'{hint}; .* mindone's num_frames"):
            sampler(model, randn((2, 3), generator=0), **{typo: 1})
    with pytest.raises(ValueError, match="control was passed twice"):
        sampler(model, randn((2, 3), generator=0), control=Tensor(np.ones(2)), model_kwargs={"control": 1})
    with pytest.raises(ValueError, match=r"num_frames=2 and model_kwargs\['num_video_frames'\]=3 disagree"):
        sampler(model, randn((2, 3), generator=0), num_frames=2, model_kwargs={"num_video_frames": 3})
    with pytest.raises(TypeError, match="other_c .* needs a guider that takes them"):
        sampler(model, randn((2, 3), generator=0), other_c=[{}])
    assert not calls
    sampler(model, randn((2, 3), generator=0), adapter_states=None, control=None, init_noise_scheduler=None)
    assert calls == [{}, {}]  # None is "not given", as mindone's do_sample passes it


def test_graph_loop_refuses_model_keywords_with_the_reason():
    denoiser = Denoiser(EDMScaling()).bind(AffineNet())
    sampler = EulerEDMSampler(num_steps=2, graph_loop=True)
    with pytest.raises(ValueError, match="graph_loop=True: num_frames, control reach the model as keyword arguments"):
        sampler(
            denoiser,
            randn((2, C, H, W), generator=0),
            {"vector": _vectors(2, 0)},
            num_frames=2,
            control=Tensor(np.zeros((2, C, H, W), np.float32)),
        )


def test_num_frames_reaches_a_video_guider_inside_a_wrapper():
    """The SVD call form with the video guider wrapped (CFG rescale at phi = 0 combines as its inner guider): the
    call's num_frames configures the inner guider, and the result is the unwrapped one's."""
    frames, videos = 3, 2
    net = AffineNet(seed=5)
    engine = Engine(net, Denoiser(VScalingWithEDMcNoise()))
    noise = randn((frames * videos, C, H, W), generator=1)
    c, uc = _vectors(frames * videos, 2), _vectors(frames * videos, 3)
    plain = _svd_sampler()
    wrapped = _svd_sampler()
    wrapped.guider = instantiate_from_config(
        {"target": "cfg_rescale", "params": {"phi": 0.0, "guider_config": plain.guider}}
    )
    expected = plain(engine, noise, cond={"vector": c}, uc={"vector": uc}, num_frames=frames).asnumpy()
    got = wrapped(engine, noise, cond={"vector": c}, uc={"vector": uc}, num_frames=frames).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
