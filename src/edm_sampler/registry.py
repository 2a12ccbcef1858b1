"""Names for plugins, and ``instantiate_from_config`` for ``{"target": ..., "params": ...}`` configs.

A target may be a short name (``euler_edm``), an ``edm_sampler`` path, or the dotted name sgm or mindone uses for the
same class (``sgm.modules.diffusionmodules.sampling.EulerEDMSampler``,
``gm.modules.diffusionmodules.sampler.EulerEDMSampler``): all resolve to this package's class without importing sgm,
gm or torch. Any other dotted target is imported only when the caller passes ``allow_imports=True``, so a YAML file
cannot run arbitrary code by default.

A preset (:data:`_PRESETS`) is a short name for a registered class with other defaults, such as ComfyUI's sampler
names (``uni_pc`` is ``unipc`` with ``solver_order=3, solver_type="bh1"``): it resolves to that class, and
``instantiate_from_config`` builds it with the preset's defaults, which the config's own ``params`` override.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

from omegaconf import DictConfig, OmegaConf

from .checks import ConfigError

logger = logging.getLogger(__name__)

_SGM = "sgm.modules.diffusionmodules"
_GM = "gm.modules.diffusionmodules"
# mindone's SVD/SV3D examples carry their own copy of sgm whose modules have the gm names, imported either as
# ``sgm.modules.diffusionmodules.<gm module>`` or as ``modules.diffusionmodules.<gm module>``.
_MINDONE_SGM_COPIES = ("sgm.modules.diffusionmodules", "modules.diffusionmodules")
# Prefixes of upstream plugin paths: a name under one of them that is not registered is not implemented here.
_UPSTREAM_PREFIXES = tuple(f"{p}." for p in (_SGM, _GM, *_MINDONE_SGM_COPIES))

# short name -> (edm_sampler module, class name, sgm module, mindone gm module); None = no counterpart there.
_BUILTINS: dict[str, tuple[str, str, str | None, str | None]] = {
    "edm_sampler": ("samplers", "EDMSampler", "sampling", "sampler"),
    "euler_edm": ("samplers", "EulerEDMSampler", "sampling", "sampler"),
    "heun_edm": ("samplers", "HeunEDMSampler", "sampling", "sampler"),
    "ancestral": ("samplers", "AncestralSampler", "sampling", "sampler"),
    "euler_ancestral": ("samplers", "EulerAncestralSampler", "sampling", "sampler"),
    "dpmpp_2s_ancestral": ("samplers", "DPMPP2SAncestralSampler", "sampling", "sampler"),
    "dpmpp_2m": ("samplers", "DPMPP2MSampler", "sampling", "sampler"),
    "lms": ("samplers", "LinearMultistepSampler", "sampling", "sampler"),
    "lcm": ("samplers", "LCMSampler", None, "sampler"),
    "dpm_2": ("samplers", "DPM2Sampler", None, None),
    "dpm_2_ancestral": ("samplers", "DPM2AncestralSampler", None, None),
    "dpmpp_sde": ("samplers", "DPMPPSDESampler", None, None),
    "dpmpp_2m_sde": ("samplers", "DPMPP2MSDESampler", None, None),
    "dpmpp_3m_sde": ("samplers", "DPMPP3MSDESampler", None, None),
    "unipc": ("samplers", "UniPCSampler", None, None),
    "plms": ("samplers", "PLMSSampler", None, None),
    "pndm": ("samplers", "PNDMSampler", None, None),
    "diffusers_ipndm": ("samplers", "IPNDMSampler", None, None),
    "deis": ("samplers", "DEISSampler", None, None),
    "ddpm": ("samplers", "DDPMSampler", None, None),
    "dpm_solver_multistep": ("samplers", "DPMSolverMultistepSampler", None, None),
    "dpm_solver_singlestep": ("samplers", "DPMSolverSinglestepSampler", None, None),
    "sa_solver": ("samplers", "SASolverSampler", None, None),
    "tcd": ("samplers", "TCDSampler", None, None),
    "ddim": ("samplers", "DDIMSampler", None, None),
    "res_multistep": ("samplers", "ResMultistepSampler", None, None),
    "euler_cfg_pp": ("samplers", "EulerCFGPPSampler", None, None),
    "euler_ancestral_cfg_pp": ("samplers", "EulerAncestralCFGPPSampler", None, None),
    "dpmpp_2s_ancestral_cfg_pp": ("samplers", "DPMPP2SAncestralCFGPPSampler", None, None),
    "dpmpp_2m_cfg_pp": ("samplers", "DPMPP2MCFGPPSampler", None, None),
    "res_multistep_cfg_pp": ("samplers", "ResMultistepCFGPPSampler", None, None),
    "res_multistep_ancestral_cfg_pp": ("samplers", "ResMultistepAncestralCFGPPSampler", None, None),
    "gradient_estimation_cfg_pp": ("samplers", "GradientEstimationCFGPPSampler", None, None),
    "res_multistep_ancestral": ("samplers", "ResMultistepAncestralSampler", None, None),
    "gradient_estimation": ("samplers", "GradientEstimationSampler", None, None),
    "er_sde": ("samplers", "ERSDESampler", None, None),
    "seeds_2": ("samplers", "SEEDS2Sampler", None, None),
    "seeds_3": ("samplers", "SEEDS3Sampler", None, None),
    "heunpp2": ("samplers", "HeunPP2Sampler", None, None),
    "ipndm": ("samplers", "IPNDMFixedStepSampler", None, None),
    "ipndm_v": ("samplers", "IPNDMVariableStepSampler", None, None),
    "dpm_fast": ("samplers", "DPMSolverFastSampler", None, None),
    "dpm_adaptive": ("samplers", "DPMSolverAdaptiveSampler", None, None),
    "sa_solver_pece": ("samplers", "SASolverPECESampler", None, None),
    "restart": ("samplers", "RestartSampler", None, None),
    "edm": ("discretization", "EDMDiscretization", "discretizer", "discretizer"),
    "legacy_ddpm": ("discretization", "LegacyDDPMDiscretization", "discretizer", "discretizer"),
    "img2img": ("discretization", "Img2ImgDiscretizationWrapper", "discretizer", "discretizer"),
    "txt2noisy": ("discretization", "Txt2NoisyDiscretizationWrapper", "discretizer", "discretizer"),
    "exponential": ("schedules", "ExponentialDiscretization", None, None),
    "polyexponential": ("schedules", "PolyExponentialDiscretization", None, None),
    "vp": ("schedules", "VPDiscretization", None, None),
    "sigma_list": ("schedules", "ListDiscretization", None, None),
    "align_your_steps": ("schedules", "AlignYourStepsDiscretization", None, None),
    "diffusers_ddpm": ("schedules", "DiffusersDDPMDiscretization", None, "discretizer"),
    "flow_match": ("flow_schedules", "FlowMatchDiscretization", None, None),
    "discrete_flow": ("flow_schedules", "DiscreteFlowDiscretization", None, None),
    "linear_quadratic": ("flow_schedules", "LinearQuadraticDiscretization", None, None),
    "simple": ("comfy_schedules", "SimpleDiscretization", None, None),
    "sgm_uniform": ("comfy_schedules", "SGMUniformDiscretization", None, None),
    "normal": ("comfy_schedules", "NormalDiscretization", None, None),
    "ddim_uniform": ("comfy_schedules", "DDIMUniformDiscretization", None, None),
    "beta": ("comfy_schedules", "BetaDiscretization", None, None),
    "karras": ("comfy_schedules", "KarrasDiscretization", None, None),
    "kl_optimal": ("comfy_schedules", "KLOptimalDiscretization", None, None),
    "laplace": ("comfy_schedules", "LaplaceDiscretization", None, None),
    "comfy_scheduler": ("comfy_schedules", "ComfySchedulerDiscretization", None, None),
    "gits": ("published_schedules", "GITSDiscretization", None, None),
    "align_your_steps_comfy": ("published_schedules", "AlignYourStepsComfyDiscretization", None, None),
    "optimal_steps": ("published_schedules", "OptimalStepsDiscretization", None, None),
    "split_sigmas": ("sigma_ops", "SplitSigmas", None, None),
    "flip_sigmas": ("sigma_ops", "FlipSigmas", None, None),
    "set_first_sigma": ("sigma_ops", "SetFirstSigma", None, None),
    "extend_intermediate_sigmas": ("sigma_ops", "ExtendIntermediateSigmas", None, None),
    "step_range": ("sigma_ops", "StepRange", None, None),
    "identity": ("guiders", "IdentityGuider", "guiders", "guiders"),
    "vanilla_cfg": ("guiders", "VanillaCFG", "guiders", "guiders"),
    "linear_prediction": ("guiders", "LinearPredictionGuider", "guiders", "guiders"),
    "triangle_prediction": ("guiders", "TrianglePredictionGuider", "guiders", "guiders"),
    "trapezoid_prediction": ("guiders", "TrapezoidPredictionGuider", "guiders", "guiders"),
    "spatiotemporal_prediction": ("guiders", "SpatiotemporalPredictionGuider", "guiders", "guiders"),
    "clip_x0": ("guiders", "ClipX0", None, None),
    "threshold_x0": ("guiders", "DynamicThresholdX0", None, None),
    "no_dynamic_thresholding": ("guiders", "NoDynamicThresholding", "sampling_utils", "sampling_utils"),
    "dynamic_thresholding": ("guiders", "DynamicThresholding", "sampling_utils", None),  # gm's: _RENAMED below
    "mindone_dynamic_thresholding": ("guiders", "MindoneDynamicThresholding", None, None),
    "multi_condition_cfg": ("guiders", "MultiConditionCFG", None, None),
    "cfg_rescale": ("guiders", "CFGRescale", None, None),
    "guidance_interval": ("guiders", "GuidanceInterval", None, None),
    "apg": ("guiders", "APG", None, None),
    "cfg_zero_star": ("guiders", "CFGZeroStar", None, None),
    "scale_switch": ("guiders", "ScaleSwitch", None, None),
    "pangu_vanilla_cfg": ("guiders", "PanGuVanillaCFG", None, "guiders"),
    "pangu_no_dynamic_thresholding": ("guiders", "PanGuNoDynamicThresholding", None, "sampling_utils"),
    "pangu_euler_edm": ("pangu", "PanGuEulerEDMSampler", None, "sampler"),
    "denoiser": ("denoisers", "Denoiser", "denoiser", "denoiser"),
    "discrete_denoiser": ("denoisers", "DiscreteDenoiser", "denoiser", "denoiser"),
    "edm_scaling": ("scalings", "EDMScaling", "denoiser_scaling", "denoiser_scaling"),
    "eps_scaling": ("scalings", "EpsScaling", "denoiser_scaling", "denoiser_scaling"),
    "v_scaling": ("scalings", "VScaling", "denoiser_scaling", "denoiser_scaling"),
    "v_scaling_edm_c_noise": ("scalings", "VScalingWithEDMcNoise", "denoiser_scaling", "denoiser_scaling"),
    "flow_velocity_scaling": ("scalings", "FlowVelocityScaling", None, None),
    "flow_x0_scaling": ("scalings", "FlowX0Scaling", None, None),
    "flow_eps_scaling": ("scalings", "FlowEpsScaling", None, None),
    "gaussian": ("models.analytic", "GaussianDenoiser", None, None),
    "gaussian_mixture": ("models.analytic", "GaussianMixtureDenoiser", None, None),
    "glyphs": ("models.glyphs", "GlyphDenoiser", None, None),
    "trained_glyphs": ("models.trained_glyphs", "TrainedGlyphModel", None, None),
}

# every accepted spelling -> (module, class) of a built-in, or -> the object a user registered
_NAMES: dict[str, tuple[str, str] | Any] = {}
for _short, (_module, _cls, _sgm, _gm) in _BUILTINS.items():
    _NAMES[_short] = (_module, _cls)
    _NAMES[f"edm_sampler.{_cls}"] = (_module, _cls)
    _NAMES[f"edm_sampler.{_module}.{_cls}"] = (_module, _cls)
    if _sgm:
        _NAMES[f"{_SGM}.{_sgm}.{_cls}"] = (_module, _cls)
    if _gm:
        _NAMES[f"{_GM}.{_gm}.{_cls}"] = (_module, _cls)
        for _copy in _MINDONE_SGM_COPIES:
            _NAMES[f"{_copy}.{_gm}.{_cls}"] = (_module, _cls)

# Upstream paths whose class is another edm_sampler class than the one of the same name: mindone's gm (and the gm copy
# its video examples import as modules.diffusionmodules) replaced sgm's early DynamicThresholding by Imagen's; the sgm
# path keeps sgm's.
_RENAMED: dict[str, str] = {
    f"{_GM}.sampling_utils.DynamicThresholding": "mindone_dynamic_thresholding",
    "modules.diffusionmodules.sampling_utils.DynamicThresholding": "mindone_dynamic_thresholding",
}
_NAMES.update({path: _NAMES[short] for path, short in _RENAMED.items()})


class Preset(NamedTuple):
    """A short name for the registered class ``target`` (a short name of :data:`_BUILTINS`) built with ``defaults``
    unless a config's params say otherwise; ``source`` says where the defaults come from."""

    target: str
    defaults: Mapping[str, Any]
    source: str


# ComfyUI's sampler names (comfy/samplers.py KSAMPLER_NAMES + SAMPLER_NAMES) that are a class registered above with
# ComfyUI's defaults. ComfyUI's *_gpu names draw their Brownian tree on the GPU instead of the CPU; here the noise is
# drawn on the host with NumPy whatever the device, so each is its CPU twin (the same noise from the same seed).
_PRESETS: dict[str, Preset] = {
    "euler": Preset("euler_edm", {}, "k-diffusion sample_euler: Karras et al. Algorithm 2, Euler, churn 0"),
    "heun": Preset("heun_edm", {}, "k-diffusion sample_heun: Karras et al. Algorithm 2, Heun, churn 0"),
    "dpmpp_sde_gpu": Preset("dpmpp_sde", {}, "ComfyUI sample_dpmpp_sde_gpu: dpmpp_sde (noise on the host)"),
    "dpmpp_2m_sde_gpu": Preset("dpmpp_2m_sde", {}, "ComfyUI sample_dpmpp_2m_sde_gpu: dpmpp_2m_sde (noise on the host)"),
    "dpmpp_2m_sde_heun": Preset("dpmpp_2m_sde", {"solver_type": "heun"}, "ComfyUI sample_dpmpp_2m_sde_heun"),
    "dpmpp_2m_sde_heun_gpu": Preset(
        "dpmpp_2m_sde", {"solver_type": "heun"}, "ComfyUI sample_dpmpp_2m_sde_heun_gpu: dpmpp_2m_sde_heun"
    ),
    "dpmpp_3m_sde_gpu": Preset("dpmpp_3m_sde", {}, "ComfyUI sample_dpmpp_3m_sde_gpu: dpmpp_3m_sde (noise on the host)"),
    # ComfyUI's UniPC order, min(3, steps - 1) with lower_order_final, is solver_order=3 at any step count
    "uni_pc": Preset("unipc", {"solver_order": 3, "solver_type": "bh1"}, "ComfyUI sample_unipc (UniPC bh1)"),
    "uni_pc_bh2": Preset("unipc", {"solver_order": 3, "solver_type": "bh2"}, "ComfyUI sample_unipc_bh2 (UniPC bh2)"),
}


def preset(name: str) -> Preset | None:
    """The :class:`Preset` a short name stands for, or None when ``name`` is not a preset."""
    return _PRESETS.get(name)


def describe(target: str) -> str:
    """``target`` as messages and listings show it: a preset with its class and defaults
    (``uni_pc (UniPCSampler, solver_order=3, solver_type='bh1')``), any other name as it is."""
    found = _PRESETS.get(target)
    if found is None:
        return target
    defaults = "".join(f", {key}={value!r}" for key, value in found.defaults.items())
    return f"{target} ({_BUILTINS[found.target][1]}{defaults})"


def register(name: str, obj: Any = None, *, aliases: tuple[str, ...] = ()):
    """Register a user plugin under ``name`` (and ``aliases``) so configs can name it without ``allow_imports``.

    Usable as ``register("my_guider", MyGuider)`` or as a class decorator ``@register("my_guider")``.
    """

    def _add(target):
        keys = (name, *aliases)
        taken = [key for key in keys if key in _PRESETS or (key in _NAMES and _NAMES[key] is not target)]
        if taken:  # check every name first, so a refused registration leaves no trace
            raise ConfigError(f"target name(s) {', '.join(map(repr, taken))} already registered")
        _NAMES.update(dict.fromkeys(keys, target))
        return target

    return _add if obj is None else _add(obj)


def known_targets() -> list[str]:
    """Short names of every registered plugin (built-in and user)."""
    return sorted([*(k for k in _NAMES if "." not in k), *_PRESETS])


def short_name(cls: type) -> str | None:
    """The short registry name of a built-in class, if it has one."""
    for short, (_, cls_name, _, _) in _BUILTINS.items():
        if cls_name == cls.__name__ and resolve(short) is cls:
            return short
    return None


def aliases_of(short: str) -> list[str]:
    """All accepted spellings of a built-in short name."""
    entry = _NAMES[short]
    return [k for k, v in _NAMES.items() if v == entry]


def resolve(target: str, *, allow_imports: bool = False) -> Any:
    """Turn a target string into the class (or callable) it names."""
    if not isinstance(target, str) or not target:
        raise ConfigError(f"target must be a non-empty string, got {target!r}")
    if target in _PRESETS:  # its class; instantiate_from_config adds the preset's defaults
        return resolve(_PRESETS[target].target)
    entry = _NAMES.get(target)
    if isinstance(entry, tuple):
        module, cls = entry
        return getattr(importlib.import_module(f"{__package__}.{module}"), cls)
    if entry is not None:
        return entry
    if "." not in target:
        close = difflib.get_close_matches(target, known_targets(), n=4, cutoff=0.6)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise ConfigError(f"unknown target {target!r}; {hint}known short names: {', '.join(known_targets())}")
    if target.startswith(_UPSTREAM_PREFIXES) and not allow_imports:
        implemented = sorted({cls for _, cls, sgm, gm in _BUILTINS.values() if sgm or gm})
        raise ConfigError(
            f"target {target!r}: {target.rpartition('.')[2]} is not implemented in edm_sampler; the sgm/mindone "
            f"plugins it implements are {', '.join(implemented)}"
        )
    if not allow_imports:
        raise ConfigError(
            f"target {target!r} is not a registered plugin and importing arbitrary modules is disabled; "
            f"use a registered name ({', '.join(known_targets())}), register() your class, "
            f"or pass allow_imports=True if you trust this config"
        )
    module, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot import target {target!r}: {err}") from err


def _check_params(target: str, obj: Callable, params: Mapping) -> None:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature: let the call itself complain
        return
    accepted = signature.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in accepted):
        return
    names = [p.name for p in accepted if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ConfigError(
            f"{target}: unknown parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(names) or '(none)'}"
        )
    missing = [
        p.name
        for p in accepted
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in params
    ]
    if missing:
        raise ConfigError(f"{target}: missing required parameter(s) {', '.join(missing)}")


def instantiate_from_config(config: Any, *, allow_imports: bool = False) -> Any:
    """Build the object a ``{"target": ..., "params": {...}}`` config describes (dict or OmegaConf).

    Nested ``*_config`` params that are themselves target configs are built first, with the same ``allow_imports``.
    An object that is not a mapping (an already-built plugin) is returned unchanged, so Python users can pass
    instances wherever a config is expected.
    """
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    if config is None:
        raise ConfigError("expected a config mapping with a 'target' key (or a plugin object), got None")
    if not isinstance(config, Mapping):
        return config
    extra = sorted(set(config) - {"target", "params"})
    if extra:
        raise ConfigError(f"unexpected key(s) {', '.join(map(str, extra))} in config; allowed keys: target, params")
    if "target" not in config:
        raise ConfigError(f"config has no 'target' key: {dict(config)!r}")
    target = config["target"]
    params = config.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{target}: params must be a mapping, got {type(params).__name__}")
    obj = resolve(target, allow_imports=allow_imports)
    if target in _PRESETS:  # the preset's defaults, under the config's own params
        params = {**_PRESETS[target].defaults, **params}
    params = {
        key: instantiate_from_config(value, allow_imports=allow_imports)
        if str(key).endswith("_config") and isinstance(value, Mapping) and "target" in value
        else value
        for key, value in params.items()
    }
    for key in set(params) & set(getattr(obj, "ignored_config_params", ())):
        logger.debug("%s: ignoring the config parameter %s=%r", target, key, params.pop(key))
    _check_params(describe(target), obj, params)
    return obj(**params)
