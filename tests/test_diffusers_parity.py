"""diffusers scheduler configs through load_sampler / load_denoiser: the same network calls (count, x_in, timestep)
and the same result as diffusers' own pipeline loop, on identical injected noise, for every supported class and the
fields that change the numbers."""

import numpy as np
import pytest

pytest.importorskip("diffusers")

from diffusers_oracle import relative, run_diffusers, run_edm_sampler  # noqa: E402

SD = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
SHAPE = (2, 3, 6, 6)

CASES = {
    # Euler: SDXL's config, then every field that changes the numbers
    "euler_sdxl": (
        {"_class_name": "EulerDiscreteScheduler", **SD, "timestep_spacing": "leading", "steps_offset": 1},
        8,
    ),
    "euler_linspace": ({"_class_name": "EulerDiscreteScheduler", **SD}, 7),
    "euler_trailing_v": (
        {
            "_class_name": "EulerDiscreteScheduler",
            **SD,
            "timestep_spacing": "trailing",
            "prediction_type": "v_prediction",
        },
        6,
    ),
    "euler_karras": ({"_class_name": "EulerDiscreteScheduler", **SD, "use_karras_sigmas": True}, 9),
    "euler_exponential_range": (
        {
            "_class_name": "EulerDiscreteScheduler",
            **SD,
            "use_exponential_sigmas": True,
            "sigma_min": 0.05,
            "sigma_max": 10.0,
        },
        6,
    ),
    "euler_beta_sample": (
        {"_class_name": "EulerDiscreteScheduler", "use_beta_sigmas": True, "prediction_type": "sample"},
        6,
    ),
    "euler_sigma_min_final": ({"_class_name": "EulerDiscreteScheduler", **SD, "final_sigmas_type": "sigma_min"}, 5),
    "euler_svd": (
        {
            "_class_name": "EulerDiscreteScheduler",
            **SD,
            "prediction_type": "v_prediction",
            "timestep_type": "continuous",
            "use_karras_sigmas": True,
            "sigma_min": 0.002,
            "sigma_max": 700.0,
            "timestep_spacing": "leading",
            "steps_offset": 1,
        },
        8,
    ),
    "euler_zero_snr": (
        {
            "_class_name": "EulerDiscreteScheduler",
            **SD,
            "rescale_betas_zero_snr": True,
            "prediction_type": "v_prediction",
            "timestep_spacing": "trailing",
        },
        6,
    ),
    "euler_cosine": ({"_class_name": "EulerDiscreteScheduler", "beta_schedule": "squaredcos_cap_v2"}, 6),
    "heun": ({"_class_name": "HeunDiscreteScheduler", **SD}, 5),
    "heun_karras_leading": (
        {
            "_class_name": "HeunDiscreteScheduler",
            **SD,
            "use_karras_sigmas": True,
            "timestep_spacing": "leading",
            "steps_offset": 1,
        },
        5,
    ),
    "kdpm2_leading": (
        {"_class_name": "KDPM2DiscreteScheduler", **SD, "timestep_spacing": "leading", "steps_offset": 1},
        5,
    ),
    "lms": ({"_class_name": "LMSDiscreteScheduler", **SD}, 8),
    "lms_karras_v": (
        {"_class_name": "LMSDiscreteScheduler", **SD, "use_karras_sigmas": True, "prediction_type": "v_prediction"},
        7,
    ),
    "ddim_sd21": (
        {
            "_class_name": "DDIMScheduler",
            **SD,
            "clip_sample": False,
            "prediction_type": "v_prediction",
            "set_alpha_to_one": False,
            "steps_offset": 1,
        },
        10,
    ),
    "ddim_alpha_one_linear": ({"_class_name": "DDIMScheduler", "clip_sample": False}, 7),
    # DDIMScheduler's defaults clip x0 to [-1, 1]: the x0 term only, the noise direction keeps the model's estimate
    "ddim_default_clip": ({"_class_name": "DDIMScheduler"}, 6),
    "ddim_clip_range_v": (
        {"_class_name": "DDIMScheduler", **SD, "clip_sample_range": 1.5, "prediction_type": "v_prediction"},
        6,
    ),
    # zero terminal SNR (Lin et al. 2023, trailing timesteps, v-prediction): diffusers steps from alpha = 0 exactly
    "ddim_zero_snr": (
        {
            "_class_name": "DDIMScheduler",
            **SD,
            "clip_sample": False,
            "rescale_betas_zero_snr": True,
            "prediction_type": "v_prediction",
            "timestep_spacing": "trailing",
        },
        5,  # trailing: diffusers steps DDIM to t - T // n, the next timestep when n divides T
    ),
    "ddim_zero_snr_sample": (
        {
            "_class_name": "DDIMScheduler",
            "clip_sample": False,
            "rescale_betas_zero_snr": True,
            "prediction_type": "sample",
            "timestep_spacing": "trailing",
        },
        4,
    ),
    "edm_euler": ({"_class_name": "EDMEulerScheduler"}, 7),
    "edm_euler_exponential_v": (
        {
            "_class_name": "EDMEulerScheduler",
            "sigma_schedule": "exponential",
            "prediction_type": "v_prediction",
            "sigma_data": 0.7,
            "sigma_max": 40.0,
        },
        6,
    ),
    "unipc": ({"_class_name": "UniPCMultistepScheduler", **SD}, 8),
    "unipc_bh1_order3_leading_v": (
        {
            "_class_name": "UniPCMultistepScheduler",
            **SD,
            "solver_type": "bh1",
            "solver_order": 3,
            "timestep_spacing": "leading",
            "steps_offset": 1,
            "prediction_type": "v_prediction",
            "final_sigmas_type": "sigma_min",
        },  # bh1 to sigma = 0: diffusers computes -inf * 0 (NaN)
        8,
    ),
    "unipc_karras_disabled": (
        {"_class_name": "UniPCMultistepScheduler", **SD, "use_karras_sigmas": True, "disable_corrector": [0, 2]},
        7,
    ),
    "unipc_exponential_trailing": (
        {"_class_name": "UniPCMultistepScheduler", "use_exponential_sigmas": True, "timestep_spacing": "trailing"},
        6,
    ),
    "unipc_wan": (
        {
            "_class_name": "UniPCMultistepScheduler",
            "prediction_type": "flow_prediction",
            "use_flow_sigmas": True,
            "flow_shift": 3.0,
            "solver_order": 2,
        },
        8,
    ),
    "heun_clip": ({"_class_name": "HeunDiscreteScheduler", **SD, "clip_sample": True, "clip_sample_range": 1.5}, 5),
    "dpm_thresholding": (
        {
            "_class_name": "DPMSolverMultistepScheduler",
            **SD,
            "thresholding": True,
            "dynamic_thresholding_ratio": 0.9,
            "sample_max_value": 2.0,
        },
        8,
    ),
    "unipc_thresholding": (
        {"_class_name": "UniPCMultistepScheduler", "thresholding": True, "sample_max_value": 1.2},
        7,
    ),
    "deis_thresholding": ({"_class_name": "DEISMultistepScheduler", **SD, "thresholding": True}, 7),
    "plms_sd15": (
        {"_class_name": "PNDMScheduler", **SD, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1},
        10,
    ),
    # (with v_prediction diffusers' PNDM combines raw v outputs of different timesteps, then converts them with the
    # current one; edm_sampler combines the noise predictions, as PNDM is published: not compared)
    "plms_alpha_one": ({"_class_name": "PNDMScheduler", "skip_prk_steps": True, "set_alpha_to_one": True}, 6),
    "pndm_prk": ({"_class_name": "PNDMScheduler", **SD, "steps_offset": 1}, 6),
    "deis": ({"_class_name": "DEISMultistepScheduler", **SD}, 8),
    "deis_order3_leading": (
        {"_class_name": "DEISMultistepScheduler", "solver_order": 3, "timestep_spacing": "leading", "steps_offset": 1},
        7,
    ),
    "deis_karras": ({"_class_name": "DEISMultistepScheduler", **SD, "use_karras_sigmas": True}, 8),
    "deis_flow": (
        {
            "_class_name": "DEISMultistepScheduler",
            "use_flow_sigmas": True,
            "flow_shift": 3.0,
            "prediction_type": "flow_prediction",
        },
        7,
    ),
    "ipndm": ({"_class_name": "IPNDMScheduler"}, 8),
    "dpm_2m": ({"_class_name": "DPMSolverMultistepScheduler", **SD}, 8),
    "dpm_3m_heun_leading_v": (
        {
            "_class_name": "DPMSolverMultistepScheduler",
            "solver_order": 3,
            "solver_type": "heun",
            "timestep_spacing": "leading",
            "steps_offset": 1,
            "prediction_type": "v_prediction",
        },
        9,
    ),
    "dpm_noise_karras_sigma_min": (
        {
            "_class_name": "DPMSolverMultistepScheduler",
            **SD,
            "algorithm_type": "dpmsolver",
            "use_karras_sigmas": True,
            "final_sigmas_type": "sigma_min",
            "euler_at_final": True,
        },
        7,
    ),
    "dpm_lu_cosine_clipped": (
        {
            "_class_name": "DPMSolverMultistepScheduler",
            "beta_schedule": "squaredcos_cap_v2",
            "use_lu_lambdas": True,
            "lambda_min_clipped": -5.1,
        },
        6,
    ),
    "dpm_clipped_trailing": (
        {
            "_class_name": "DPMSolverMultistepScheduler",
            "beta_schedule": "squaredcos_cap_v2",
            "lambda_min_clipped": -5.1,
            "timestep_spacing": "trailing",
        },
        6,
    ),
    "dpm_flow_sana": (
        {
            "_class_name": "DPMSolverMultistepScheduler",
            "use_flow_sigmas": True,
            "flow_shift": 3.0,
            "prediction_type": "flow_prediction",
        },
        8,
    ),
    "dpm_singlestep_3": ({"_class_name": "DPMSolverSinglestepScheduler", **SD, "solver_order": 3}, 8),
    "dpm_singlestep_2_exponential": (
        {
            "_class_name": "DPMSolverSinglestepScheduler",
            "use_exponential_sigmas": True,
            "algorithm_type": "dpmsolver",
            "final_sigmas_type": "sigma_min",
        },
        7,
    ),
    "edm_dpm": ({"_class_name": "EDMDPMSolverMultistepScheduler"}, 8),
    "flow_sd3": ({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}, 8),
    "flow_karras_terminal": (
        {
            "_class_name": "FlowMatchEulerDiscreteScheduler",
            "shift": 2.0,
            "shift_terminal": 0.05,
            "use_karras_sigmas": True,
        },
        6,
    ),
    "flow_heun": ({"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": 3.0}, 5),
}

# stochastic: (config, steps, {step kwargs for diffusers}, {load_sampler options})
STOCHASTIC = {
    "euler_ancestral": ({"_class_name": "EulerAncestralDiscreteScheduler", **SD}, 7, {}, {}),
    "euler_ancestral_leading_v": (
        {
            "_class_name": "EulerAncestralDiscreteScheduler",
            **SD,
            "timestep_spacing": "leading",
            "steps_offset": 1,
            "prediction_type": "v_prediction",
        },
        6,
        {},
        {},
    ),
    "kdpm2_ancestral_leading": (
        {"_class_name": "KDPM2AncestralDiscreteScheduler", **SD, "timestep_spacing": "leading", "steps_offset": 1},
        5,
        {},
        {},
    ),
    "ddim_eta": (
        {"_class_name": "DDIMScheduler", **SD, "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1},
        8,
        {"eta": 0.6},
        {"eta": 0.6},
    ),
    "ddpm": ({"_class_name": "DDPMScheduler", "clip_sample": False}, 8, {}, {}),
    "ddpm_default_clip": ({"_class_name": "DDPMScheduler"}, 8, {}, {}),
    "ddpm_fixed_large": (
        {"_class_name": "DDPMScheduler", **SD, "clip_sample": False, "variance_type": "fixed_large"},
        7,
        {},
        {},
    ),
    # (fixed_large_log: diffusers' step takes the square root of log(beta) < 0, NaN; edm_sampler uses beta)
    "ddpm_fixed_large_offset": (
        {"_class_name": "DDPMScheduler", **SD, "clip_sample": False, "variance_type": "fixed_large", "steps_offset": 1},
        6,
        {},
        {},
    ),
    "ddpm_thresholding": (
        {
            "_class_name": "DDPMScheduler",
            "thresholding": True,
            "dynamic_thresholding_ratio": 0.9,
            "sample_max_value": 1.5,
        },
        6,
        {},
        {},
    ),
    "sa_solver_thresholding": ({"_class_name": "SASolverScheduler", **SD, "thresholding": True}, 6, {}, {}),
    "ddpm_sd_v": (
        {
            "_class_name": "DDPMScheduler",
            **SD,
            "clip_sample": False,
            "prediction_type": "v_prediction",
            "timestep_spacing": "trailing",
        },
        6,
        {},
        {},
    ),
    "lcm": ({"_class_name": "LCMScheduler"}, 4, {}, {}),
    "ddim_eta_thresholding": (
        {
            "_class_name": "DDIMScheduler",
            "thresholding": True,
            "dynamic_thresholding_ratio": 0.9,
            "sample_max_value": 1.2,
            "prediction_type": "sample",
        },
        6,
        {"eta": 0.8},
        {"eta": 0.8},
    ),
    "ddim_eta_zero_snr": (
        {
            "_class_name": "DDIMScheduler",
            **SD,
            "clip_sample": False,
            "rescale_betas_zero_snr": True,
            "prediction_type": "v_prediction",
            "timestep_spacing": "trailing",
        },
        5,
        {"eta": 0.6},
        {"eta": 0.6},
    ),
    "ddpm_zero_snr_large": (
        {
            "_class_name": "DDPMScheduler",
            **SD,
            "clip_sample": False,
            "rescale_betas_zero_snr": True,
            "prediction_type": "v_prediction",
            "timestep_spacing": "trailing",
            "variance_type": "fixed_large",
        },
        6,
        {},
        {},
    ),
    "lcm_zero_snr": (
        {"_class_name": "LCMScheduler", "rescale_betas_zero_snr": True, "prediction_type": "v_prediction"},
        4,
        {},
        {},
    ),
    "tcd_zero_snr": (
        {"_class_name": "TCDScheduler", "rescale_betas_zero_snr": True, "prediction_type": "sample"},
        4,
        {"eta": 0.4},
        {"gamma": 0.4},
    ),
    "sa_solver": ({"_class_name": "SASolverScheduler", **SD}, 8, {}, {}),
    "sa_solver_43_noise_leading": (
        {
            "_class_name": "SASolverScheduler",
            "predictor_order": 3,
            "corrector_order": 4,
            "steps_offset": 1,
            "algorithm_type": "noise_prediction",
            "timestep_spacing": "leading",
        },
        9,
        {},
        {},
    ),
    "sa_solver_karras": ({"_class_name": "SASolverScheduler", **SD, "use_karras_sigmas": True}, 8, {}, {}),
    "sa_solver_flow": (
        {
            "_class_name": "SASolverScheduler",
            "use_flow_sigmas": True,
            "flow_shift": 3.0,
            "prediction_type": "flow_prediction",
        },
        8,
        {},
        {},
    ),
    "tcd": ({"_class_name": "TCDScheduler"}, 4, {"eta": 0.3}, {}),
    "tcd_gamma_v": (
        {"_class_name": "TCDScheduler", "prediction_type": "v_prediction", "original_inference_steps": 40},
        6,
        {"eta": 0.7},
        {"gamma": 0.7},
    ),
    "dpm_sde_2m": (
        {"_class_name": "DPMSolverMultistepScheduler", **SD, "algorithm_type": "sde-dpmsolver++"},
        7,
        {},
        {},
    ),
    "dpm_sde_noise_1": (
        {
            "_class_name": "DPMSolverMultistepScheduler",
            "algorithm_type": "sde-dpmsolver",
            "solver_order": 1,
            "final_sigmas_type": "sigma_min",
        },
        6,
        {},
        {},
    ),
    "dpm_singlestep_sde": (
        {"_class_name": "DPMSolverSinglestepScheduler", "algorithm_type": "sde-dpmsolver++"},
        6,
        {},
        {},
    ),
    "edm_dpm_sde": (
        {"_class_name": "EDMDPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++"},
        6,
        {},
        {},
    ),
    "lcm_v_scaling": (
        {
            "_class_name": "LCMScheduler",
            "prediction_type": "v_prediction",
            "timestep_scaling": 5.0,
            "original_inference_steps": 40,
        },
        6,
        {},
        {},
    ),
    "flow_stochastic": (
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0, "stochastic_sampling": True},
        6,
        {},
        {},
    ),
}


# where diffusers' last step has length 0 (final_sigmas_type="sigma_min" on a schedule already ending at sigma_min),
# edm_sampler leaves that call out
ZERO_LENGTH_LAST_STEP = {
    "euler_sigma_min_final",
    "deis_karras",
    "deis_flow",
    "dpm_singlestep_2_exponential",
}
# IPNDM's first call, from pure noise, is multiplied by 0 in diffusers; edm_sampler leaves it out
ZERO_WEIGHT_FIRST_CALL = {"ipndm"}


def check(ours, theirs, calls_ours, calls_theirs, tol=1e-5, skipped_last=False, skipped_first=False):
    if skipped_last:
        calls_theirs = calls_theirs[:-1]
    if skipped_first:
        calls_theirs = calls_theirs[1:]
    assert len(calls_ours) == len(calls_theirs)
    for (x_ours, t_ours), (x_theirs, t_theirs) in zip(calls_ours, calls_theirs):
        assert np.allclose(t_ours, t_theirs, rtol=1e-6, atol=1e-5), (t_ours, t_theirs)
        assert relative(x_ours, x_theirs) < tol
    assert relative(ours, theirs) < tol, relative(ours, theirs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic_parity(name):
    config, n = CASES[name]
    noise = np.random.default_rng(1).standard_normal(SHAPE)
    ours, calls_ours, sampler = run_edm_sampler(config, n, noise)
    theirs, calls_theirs = run_diffusers(config, n, noise, levels=sampler.discretization(n))
    check(
        ours,
        theirs,
        calls_ours,
        calls_theirs,
        skipped_last=name in ZERO_LENGTH_LAST_STEP,
        skipped_first=name in ZERO_WEIGHT_FIRST_CALL,
    )


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_stochastic_parity(name):
    config, n, step, options = STOCHASTIC[name]
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(SHAPE)
    noises = [rng.standard_normal(SHAPE) for _ in range(n)]
    theirs, calls_theirs = run_diffusers(config, n, noise, noises, step=step)
    ours, calls_ours, _ = run_edm_sampler(config, n, noise, noises, **options)
    check(ours, theirs, calls_ours, calls_theirs)


@pytest.mark.parametrize("image_seq_len", [256, 1600, 4096])
def test_flux_dynamic_shift_with_pipeline_sigmas(image_seq_len):
    """Flux's config and pipeline: mu from the image sequence length, the pipeline's own sigmas linspace(1, 1/n, n)."""
    config = {
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "shift": 3.0,
        "use_dynamic_shifting": True,
        "base_shift": 0.5,
        "max_shift": 1.15,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
    }
    n = 6
    mu = 0.5 + (1.15 - 0.5) / (4096 - 256) * (image_seq_len - 256)
    noise = np.random.default_rng(3).standard_normal(SHAPE)
    sigmas = np.linspace(1.0, 1.0 / n, n)
    theirs, calls_theirs = run_diffusers(config, None, noise, set_timesteps={"sigmas": sigmas, "mu": mu})
    ours, calls_ours, _ = run_edm_sampler(config, n, noise, image_seq_len=image_seq_len, pipeline_sigmas=True)
    check(ours, theirs, calls_ours, calls_theirs)


def test_graph_loop_equals_step_by_step():
    config, n = CASES["ddim_sd21"]
    noise = np.random.default_rng(4).standard_normal(SHAPE)
    eager, _, _ = run_edm_sampler(config, n, noise)
    compiled, _, _ = run_edm_sampler(config, n, noise, graph_loop=True)
    assert relative(compiled, eager) < 1e-6


def test_graph_loop_with_thresholding_equals_step_by_step():
    config = {"_class_name": "DDPMScheduler", "thresholding": True, "dynamic_thresholding_ratio": 0.9}
    rng = np.random.default_rng(5)
    noise = rng.standard_normal(SHAPE)
    noises = [rng.standard_normal(SHAPE) for _ in range(6)]
    eager, _, _ = run_edm_sampler(config, 6, noise, noises)
    compiled, _, _ = run_edm_sampler(config, 6, noise, noises, graph_loop=True)
    assert relative(compiled, eager) < 1e-6


@pytest.mark.parametrize("name", ["dpm_2m", "unipc_wan", "ddpm_thresholding"])
def test_graph_mode_with_cfg_compiles_once(name):
    """A network behind a scheduler config's denoiser, in graph mode with CFG: each step compiles once on the first
    call, nothing on a second call with new noise and conditioning, and the result equals PyNative's."""
    from diffusers_oracle import CellModel

    import mindspore as ms
    from mindspore import Tensor

    import edm_sampler as es
    from edm_sampler.bench.compiles import CompileCounter

    config = {**CASES, **{k: v[:2] for k, v in STOCHASTIC.items()}}[name][0]
    sampler = es.load_sampler(config, num_steps=5, guider_config=es.VanillaCFG(2.0))
    denoiser = es.load_denoiser(config).bind(CellModel())
    rng = np.random.default_rng(6)
    noise = [Tensor(rng.standard_normal(SHAPE).astype(np.float32)) for _ in range(2)]
    cond = [{"vector": Tensor(rng.standard_normal((SHAPE[0], 3)).astype(np.float32))} for _ in range(2)]
    uc = {"vector": Tensor(np.zeros((SHAPE[0], 3), np.float32))}
    eager = sampler(denoiser, noise[0], cond[0], uc, generator=0).asnumpy()
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        with CompileCounter() as first:
            compiled = sampler(denoiser, noise[0], cond[0], uc, generator=0).asnumpy()
        with CompileCounter() as later:
            sampler(denoiser, noise[1], cond[1], uc, generator=1)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert first.available and first.count >= 1 and later.count == 0, (first.count, later.count)
    assert relative(compiled, eager) < 1e-5
