"""Loading diffusers scheduler configs: every accepted form, the shipped configs, the translation of each class, and
a clear error (naming the file and the field) for everything that cannot be honoured. No diffusers needed here."""

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

import mindspore as ms
from mindspore import Tensor

import edm_sampler as es
from edm_sampler.checks import ConfigError
from edm_sampler.diffusers_schedulers import SUPPORTED_CLASSES, load_scheduler, shipped_configs

SDXL = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}
# SDXL's 10-step sigmas as diffusers 0.42 prints them (float32, timesteps 901, 801, ..., 1), from the SDXL config
SDXL_10 = [8.390687, 5.1344333, 3.347765, 2.2928548, 1.623693, 1.1682165, 0.8356532, 0.5740508, 0.3461873, 0.0413145]


def test_every_form_gives_the_same_sampler(tmp_path):
    folder = tmp_path / "model"
    (folder / "scheduler").mkdir(parents=True)
    path = folder / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps(SDXL))
    yaml = tmp_path / "sampler.yaml"
    params = {k: v for k, v in SDXL.items() if k != "_class_name"}
    yaml.write_text(OmegaConf.to_yaml({"target": "EulerDiscreteScheduler", "params": params}))
    forms = [SDXL, str(path), path, str(folder), str(yaml), "sdxl_base", "sdxl_base.json"]
    schedules = [es.load_sampler(form, num_steps=10).discretization(10) for form in forms]
    for schedule in schedules:
        np.testing.assert_allclose(schedule[:-1], SDXL_10, rtol=3e-6)  # diffusers: float32 alphas_cumprod
        assert schedule[-1] == 0.0
    # the model half from the same forms
    for form in forms:
        assert "EulerDiscreteScheduler" in repr(es.load_denoiser(form))


def test_nested_in_a_larger_yaml(tmp_path):
    """A model YAML whose sampler block is a scheduler config (inline, or a path beside the YAML) gives both halves."""
    (tmp_path / "scheduler_config.json").write_text(json.dumps(SDXL))
    params = {k: v for k, v in SDXL.items() if k != "_class_name"}
    inline = tmp_path / "inline.yaml"
    inline.write_text(
        OmegaConf.to_yaml({"model": {"name": "x"}, "sampler": {"target": SDXL["_class_name"], "params": params}})
    )
    by_path = tmp_path / "by_path.yaml"
    by_path.write_text(OmegaConf.to_yaml({"sampler_config": "scheduler_config.json"}))
    for path in (inline, by_path):
        np.testing.assert_allclose(es.load_sampler(str(path), num_steps=10).discretization(10)[:-1], SDXL_10, rtol=3e-6)
        assert "EulerDiscreteScheduler" in repr(es.load_denoiser(str(path)))


def test_shipped_configs_all_load():
    names = shipped_configs()
    assert len(names) >= 7
    for name in names:
        dynamic = "flux" in name or "ltx" in name
        translation = load_scheduler(name, {"image_seq_len": 4096} if dynamic else {})
        assert translation.class_name in SUPPORTED_CLASSES
        sampler = translation.build_sampler(num_steps=4)
        sigmas = sampler.discretization(4)
        assert len(sigmas) == 5 and np.all(np.diff(sigmas) < 0)


def test_translations():
    cases = {
        "sdxl_base": ("EulerEDMSampler", "sgm"),
        "sd21": ("DDIMSampler", "vp"),
        "sd3_medium": ("EulerEDMSampler", "prescaled"),
        "svd_xt": ("EulerEDMSampler", "sgm"),
    }
    for name, (cls, init) in cases.items():
        sampler = es.load_sampler(name)
        assert type(sampler).__name__ == cls and sampler.init_noise == init
    assert es.load_sampler("sd21").eta == 0.0 and es.load_sampler("sd21", eta=0.5).eta == 0.5
    stochastic = es.load_sampler({"_class_name": "FlowMatchEulerDiscreteScheduler", "stochastic_sampling": True})
    assert type(stochastic).__name__ == "LCMSampler"
    assert es.load_denoiser("sd3_medium").parametrization == "flow"
    assert es.load_denoiser("sdxl_base").parametrization == "ve"


def test_the_network_is_called_as_the_pipeline_calls_it():
    """x_in = latents / sqrt(1 + sigma^2), timestep a float32 (B,) Tensor equal to diffusers' t, extra kwargs passed."""
    seen = []

    def network(x_in, timestep, cond, **kw):
        seen.append((x_in.asnumpy(), timestep, cond, kw))
        return x_in * 0.0

    denoiser = es.load_denoiser("sdxl_base").bind(network)
    x = Tensor(np.full((2, 1, 2, 2), 3.0, np.float32))
    sigma = float(es.load_sampler("sdxl_base").discretization(10)[0])  # t = 901 (leading, offset 1)
    out = denoiser(x, Tensor(np.full((2,), sigma, np.float32)), "prompt", added_cond_kwargs={"a": 1})
    x_in, timestep, cond, kw = seen[0]
    np.testing.assert_allclose(x_in, 3.0 / np.sqrt(1 + sigma**2), rtol=1e-6)
    assert timestep.dtype == ms.float32 and tuple(timestep.shape) == (2,)
    np.testing.assert_allclose(timestep.asnumpy(), 901.0, atol=1e-3)
    assert cond == "prompt" and kw == {"added_cond_kwargs": {"a": 1}}
    np.testing.assert_allclose(out.asnumpy(), 3.0, rtol=1e-6)  # epsilon 0: D = x


def test_flow_dynamic_shifting_needs_mu():
    with pytest.raises(ConfigError, match=r"flux_dev\.json.*use_dynamic_shifting.*mu=.*image_seq_len"):
        es.load_sampler("flux_dev")
    mu_schedule = es.load_sampler("flux_dev", mu=1.15, num_steps=4).discretization(4)
    seq_schedule = es.load_sampler("flux_dev", image_seq_len=4096, num_steps=4).discretization(4)
    np.testing.assert_allclose(mu_schedule, seq_schedule, rtol=1e-12)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"_class_name": "NoSuchScheduler"}, r"'NoSuchScheduler' is not supported; supported: .*DDIMScheduler"),
        ({**SDXL, "use_karas_sigmas": True}, r"unknown field 'use_karas_sigmas'.*typo"),
        ({**SDXL, "use_karras_sigmas": True, "use_beta_sigmas": True}, r"only one of use_karras_sigmas"),
        ({**SDXL, "interpolation_type": "log_linear"}, r"interpolation_type='log_linear' is not supported"),
        ({**SDXL, "timestep_spacing": "uniform"}, r"timestep_spacing='uniform'.*'linspace', 'leading', 'trailing'"),
        ({**SDXL, "beta_schedule": "sigmoid"}, r"beta_schedule='sigmoid'.*supported values"),
        ({**SDXL, "prediction_type": "flow_prediction"}, r"prediction_type='flow_prediction'.*'epsilon'"),
        ({"_class_name": "DDPMScheduler", "clip_sample": False, "variance_type": "learned_range"}, r"variance_type"),
        ({"_class_name": "LCMScheduler", "thresholding": True}, r"thresholding=True .*before the consistency"),
        ({"_class_name": "DDPMScheduler", "thresholding": True, "sample_max_value": 0.5}, r"sample_max_value"),
        ({"_class_name": "FlowMatchEulerDiscreteScheduler", "invert_sigmas": True}, r"invert_sigmas=True"),
        ({"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": "yes"}, r"use_karras_sigmas.*true or false"),
        (
            {"_class_name": "UniPCMultistepScheduler", "use_karras_sigmas": True, "final_sigmas_type": "sigma_min"},
            r"final_sigmas_type='sigma_min'.*zero-length",
        ),
        ({"_class_name": "UniPCMultistepScheduler", "solver_type": "rk4"}, r"solver_type='rk4'.*'bh1', 'bh2'"),
        ({"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver"}, r"final_sigmas_type='zero'"),
        ({"_class_name": "DPMSolverMultistepScheduler", "variance_type": "learned_range"}, r"variance_type"),
        (
            {"_class_name": "DPMSolverMultistepScheduler", "use_lu_lambdas": True, "use_karras_sigmas": True},
            r"use_lu_lambdas and use_karras_sigmas",
        ),
        (
            {"_class_name": "UniPCMultistepScheduler", "use_flow_sigmas": True, "prediction_type": "v_prediction"},
            r"prediction_type='v_prediction'.*'flow_prediction', 'epsilon'",
        ),
    ],
)
def test_refused_with_the_field_named(config, message):
    with pytest.raises(ConfigError, match=message):
        es.load_sampler(config)


@pytest.mark.parametrize("name", ["DDIMScheduler", "DDPMScheduler", "LCMScheduler", "TCDScheduler"])
def test_zero_snr_with_a_noise_prediction_is_refused_where_it_reaches_the_top(name):
    """diffusers divides by alpha = 0 there (NaN); edm_sampler says why before any model call. A schedule that starts
    below the top (leading spacing) samples."""
    config = {"_class_name": name, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing", "clip_sample": False}
    calls = []
    denoiser = es.load_denoiser(config).bind(lambda x, t, c: calls.append(t) or x * 0.0)
    with pytest.raises(ValueError, match=r"zero-SNR timestep 999, where prediction_type='epsilon' gives no data"):
        es.load_sampler(config, num_steps=4)(denoiser, es.randn((1, 2, 4, 4), generator=0))
    assert calls == []
    if name in ("DDIMScheduler", "DDPMScheduler"):
        leading = es.load_sampler({**config, "timestep_spacing": "leading"}, num_steps=4)
        assert np.isfinite(leading(denoiser, es.randn((1, 2, 4, 4), generator=0)).asnumpy()).all()


def test_bad_files_are_named(tmp_path):
    bad = tmp_path / "scheduler_config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"scheduler_config\.json: not valid JSON"):
        es.load_sampler(str(bad))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model_type": "unet"}))
    with pytest.raises(ConfigError, match=r"other\.json: not a diffusers scheduler config"):
        es.load_sampler(str(other))
    with pytest.raises(FileNotFoundError, match=r"missing\.json.*shipped scheduler configs: .*sdxl_base"):
        es.load_sampler(str(tmp_path / "missing.json"))
    ddim = tmp_path / "ddim.json"
    ddim.write_text(json.dumps({"_class_name": "DDIMScheduler", "clip_sample": False, "set_alpha_to_one": 3}))
    with pytest.raises(ConfigError, match=r"ddim\.json: DDIMScheduler field set_alpha_to_one=3.*true or false"):
        es.load_sampler(str(ddim))


def test_options_only_for_scheduler_configs():
    with pytest.raises(TypeError, match="apply only to diffusers scheduler configs"):
        es.load_sampler("heun_edm", eta=1.0)


def test_vp_latents_in_and_out():
    """init_noise='vp': x is the VP latent x_T, the result the VP latent at the last level (DDIM, set_alpha_to_one
    false: alpha_0 = sqrt(alphas_cumprod[0]))."""
    sampler = es.load_sampler("sd21", num_steps=3)
    sigmas = sampler.discretization(3)
    assert sampler.initial_scale(float(sigmas[0])) == pytest.approx(np.sqrt(1 + sigmas[0] ** 2))

    def identity_denoiser(x, sigma, cond):  # D = 0: the deterministic DDIM step scales x by sigma_next / sigma
        return x * 0.0

    x = Tensor(np.ones((1, 2), np.float32))
    out = sampler(identity_denoiser, x).asnumpy()
    expected = np.sqrt(1 + sigmas[0] ** 2) * sigmas[-1] / sigmas[0] / np.sqrt(1 + sigmas[-1] ** 2)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
