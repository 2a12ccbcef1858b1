"""Loading samplers from YAML files, dicts or OmegaConf configs (sgm / mindone configs accepted unchanged)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import PurePath
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from . import checks
from .checks import ConfigError
from .registry import instantiate_from_config

logger = logging.getLogger(__name__)

# Where a sampler block lives: our configs, sgm inference scripts, and sgm/mindone model configs (e.g. svd.yaml).
SAMPLER_KEYS = ("sampler", "sampler_config", "model.params.sampler_config")
# Where a denoiser block lives, likewise (sgm/mindone model YAMLs: model.params.denoiser_config).
DENOISER_KEYS = ("denoiser", "denoiser_config", "model.params.denoiser_config")


def packaged_configs() -> list[str]:
    """Names of the configs shipped in the package (loadable by name from any directory)."""
    folder = resources.files(__package__) / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _packaged(name: str):
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if os.sep in stem or "/" in stem or stem not in packaged_configs():
        return None
    return resources.files(__package__) / "configs" / f"{stem}.yaml"


def _shipped_twin(path: str):
    """The shipped file a repository-relative ``configs/...`` path names (the repository's ``configs/`` is the
    package's shipped folder), so README paths work from any directory; None for other paths."""
    parts = PurePath(path).parts
    if PurePath(path).is_absolute() or len(parts) < 2 or parts[0] != "configs":
        return None
    twin = resources.files(__package__).joinpath(*parts)
    return twin if twin.is_file() else None


def _tried(text: str) -> str:
    """Where :func:`load_config` looked for ``text``, for the error when it found nothing."""
    tried = [os.path.abspath(text) + ("" if os.path.isabs(text) else ", from the working directory,")]
    parts = PurePath(text).parts
    if not PurePath(text).is_absolute() and len(parts) > 1 and parts[0] == "configs":
        tried.append(f"the shipped {'/'.join(parts)}")
    elif len(parts) == 1:
        tried.append(f"a shipped config named {text}")
    names = ", ".join(packaged_configs())
    return f"{' and '.join(tried)}; shipped configs: {names} (loadable by name from any directory)"


def load_config(source: str | os.PathLike | Mapping | DictConfig) -> Mapping | DictConfig:
    """Read a YAML path into a DictConfig; a dict or DictConfig is returned as is (dicts may hold plugin objects).

    A path is relative to the working directory. A name that is not a file but names a shipped config
    (``"heun_edm"``) loads that config, and so does a repository path to one (``"configs/heun_edm.yaml"``) that is
    not found from the working directory; the error for a missing file says which paths were tried.
    """
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            text = os.fspath(source)
            shipped = _shipped_twin(text)
            packaged = _packaged(text) if shipped is None else shipped
            if packaged is None:
                raise FileNotFoundError(f"config file not found: {text} (tried {_tried(text)})")
            logger.info("config %s: not found from %s, loading the shipped %s", text, os.getcwd(), packaged)
            return OmegaConf.create(packaged.read_text())
        loaded = OmegaConf.load(os.fspath(source))
        if not isinstance(loaded, DictConfig):  # a YAML list: no key can hold a sampler
            raise ConfigError(f"{os.fspath(source)}: a config file holds YAML keys, got a list")
        return loaded
    if isinstance(source, (Mapping, DictConfig)):
        return source
    raise TypeError(f"config must be a path, a dict or a DictConfig, got {type(source).__name__}")


def _select(config: Mapping | DictConfig, dotted_key: str):
    for key in dotted_key.split("."):
        if not isinstance(config, (Mapping, DictConfig)) or key not in config:
            return None
        config = config[key]
    return config


def sampler_block(config: Mapping | DictConfig) -> Mapping | DictConfig:
    """The ``{"target", "params"}`` block describing the sampler inside a (possibly larger) config."""
    if "target" in config:
        return config
    for key in SAMPLER_KEYS:
        block = _select(config, key)
        if block is not None:
            return mindone_short_form(block) if _is_short_form(block) else block
    raise ConfigError(f"no sampler config found: expected a 'target' key or one of {', '.join(SAMPLER_KEYS)}")


def load_denoiser(source: str | os.PathLike | Mapping | DictConfig, *, allow_imports: bool = False) -> Any:
    """Build the ``Denoiser`` / ``DiscreteDenoiser`` a model config describes (see :data:`DENOISER_KEYS`), so one sgm
    or mindone model YAML gives both halves: ``load_denoiser(cfg).bind(net)`` and ``load_sampler(cfg)``.

    A diffusers scheduler config (see :func:`load_sampler`) gives its model half: ``.bind(network)`` calls
    ``network(x_in, timestep, cond, **model_kwargs)`` as the diffusers pipeline does."""
    from . import diffusers_schedulers

    if diffusers_schedulers.is_scheduler_config(source):
        return diffusers_schedulers.load_scheduler(source).denoiser
    config = load_config(source)
    if diffusers_schedulers.is_scheduler_config(config):
        return diffusers_schedulers.load_scheduler(config).denoiser
    if "target" not in config:
        for key in DENOISER_KEYS:
            block = _select(config, key)
            if block is not None:
                scheduler = _scheduler_block(block, source)
                if scheduler is not None:
                    return diffusers_schedulers.load_scheduler(scheduler).denoiser
                return instantiate_from_config(block, allow_imports=allow_imports)
        for key in SAMPLER_KEYS:  # a scheduler config as the sampler block carries the model half too
            scheduler = _scheduler_block(_select(config, key), source)
            if scheduler is not None:
                return diffusers_schedulers.load_scheduler(scheduler).denoiser
        raise ConfigError(f"no denoiser config found: expected a 'target' key or one of {', '.join(DENOISER_KEYS)}")
    return instantiate_from_config(config, allow_imports=allow_imports)


def _scheduler_block(block: Any, source: Any) -> Any:
    """A diffusers scheduler config nested in a YAML (a ``target: <scheduler class>`` block, or a path, relative to
    the YAML's folder when it is not found as given), or None."""
    from . import diffusers_schedulers

    if block is None:
        return None
    if isinstance(block, str) and isinstance(source, (str, os.PathLike)) and not os.path.exists(block):
        beside = os.path.join(os.path.dirname(os.fspath(source)), block)
        if os.path.exists(beside):
            block = beside
    return block if diffusers_schedulers.is_scheduler_config(block) else None


def load_sampler(source: str | os.PathLike | Mapping | DictConfig, *, allow_imports: bool = False, **options) -> Any:
    """Build the sampler described by ``source`` (see :data:`SAMPLER_KEYS` for where it is looked up).

    ``allow_imports=True`` lets targets that are not registered plugins be imported by dotted name; leave it off for
    configs you did not write.

    ``source`` may also be a diffusers scheduler config: a path to ``scheduler_config.json``, a model folder holding
    ``scheduler/scheduler_config.json``, a dict with ``_class_name`` (or a YAML block ``target: <scheduler class>``
    with the JSON's fields as ``params``), or a shipped name (``configs/diffusers/``). The result is the equivalent
    sampler, with the scheduler's schedule and initial-noise scaling; ``options`` go to its constructor
    (``num_steps``, ``guider_config``, ``graph_loop``, ``eta`` for DDIM...) or, for dynamically shifted flow
    schedules, to the schedule (``mu`` or ``image_seq_len``, ``pipeline_sigmas``).
    """
    from . import diffusers_schedulers

    config = source if diffusers_schedulers.is_scheduler_config(source) else load_config(source)
    if diffusers_schedulers.is_scheduler_config(config):
        options = dict(options)
        return diffusers_schedulers.load_scheduler(config, options).build_sampler(**options)
    block = sampler_block(cast("Mapping | DictConfig", config))  # a path was loaded above
    scheduler = _scheduler_block(block, source)
    if scheduler is not None:
        options = dict(options)
        return diffusers_schedulers.load_scheduler(scheduler, options).build_sampler(**options)
    if options:
        raise TypeError(f"load_sampler: options ({', '.join(options)}) apply only to diffusers scheduler configs")
    return instantiate_from_config(block, allow_imports=allow_imports)


# mindone's ``init_sampling(steps, sampler, guider, guidance_scale, discretization, ...)`` as a config block, e.g.
# ``sampler: {steps: 40, sampler: EulerAncestralSampler, guider: VanillaCFG, guidance_scale: 5.0}``. The plugins it
# builds are those of mindone's ``gm/helpers.py``, with its defaults.
SHORT_FORM_KEYS = (
    "steps",
    "sampler",
    "guider",
    "guidance_scale",
    "discretization",
    "img2img_strength",
    "stage2strength",
    "num_cols",
    "specify_num_samples",
    # mindone's newer init_sampling: VanillaCFG's dyn_thresh_config, mindone's (Imagen's) DynamicThresholding
    "thresholding",
    "dynamic_thresholding_ratio",
    "sample_max_value",
)
_GM = "gm.modules.diffusionmodules"
_SHORT_DISCRETIZATIONS = {
    "LegacyDDPMDiscretization": {"target": f"{_GM}.discretizer.LegacyDDPMDiscretization"},
    "EDMDiscretization": {
        "target": f"{_GM}.discretizer.EDMDiscretization",
        "params": {"sigma_min": 0.03, "sigma_max": 14.61, "rho": 3.0},  # mindone's get_discretization defaults
    },
    "DiffusersDDPMDiscretization": {"target": f"{_GM}.discretizer.DiffusersDDPMDiscretization"},
}
_SHORT_SAMPLER_PARAMS = {
    "EulerEDMSampler": {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": 999.0, "s_noise": 1.0},
    "HeunEDMSampler": {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": 999.0, "s_noise": 1.0},
    # mindone passes eta=0.001 to EulerAncestralSampler but its step ignores eta (always 1): 1 is what it samples.
    "EulerAncestralSampler": {"eta": 1.0},
    "AncestralSampler": {},
    "DPMPP2SAncestralSampler": {},
    "DPMPP2MSampler": {},
    "LinearMultistepSampler": {},
    "LCMSampler": {},
}


def _is_short_form(block) -> bool:
    return isinstance(block, (Mapping, DictConfig)) and "target" not in block and "sampler" in block


def mindone_short_form(block: Mapping | DictConfig) -> dict:
    """The ``{"target", "params"}`` config that mindone's ``init_sampling`` would build from ``block``."""
    block = cast(dict, OmegaConf.to_container(block, resolve=True)) if isinstance(block, DictConfig) else dict(block)
    unknown = sorted(set(block) - set(SHORT_FORM_KEYS))
    if unknown:
        raise ConfigError(
            f"mindone short-form sampler block: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(SHORT_FORM_KEYS)}"
        )
    sampler = checks.choice("sampler", block["sampler"], tuple(_SHORT_SAMPLER_PARAMS))
    guider = checks.choice("guider", block.get("guider", "VanillaCFG"), ("VanillaCFG", "IdentityGuider"))
    discretization = checks.choice(
        "discretization", block.get("discretization", "LegacyDDPMDiscretization"), tuple(_SHORT_DISCRETIZATIONS)
    )
    thresholding = block.get("thresholding", False)
    if not isinstance(thresholding, bool):
        raise ConfigError(f"thresholding must be True or False, got {thresholding!r}")
    if guider == "VanillaCFG":
        scale = min(max(checks.real("guidance_scale", block.get("guidance_scale", 5.0)), 0.0), 100.0)
        guider_config: dict[str, Any] = {"target": f"{_GM}.guiders.VanillaCFG", "params": {"scale": scale}}
        if thresholding:  # init_sampling(thresholding=True): mindone's (Imagen's) DynamicThresholding
            params = {k: block[k] for k in ("dynamic_thresholding_ratio", "sample_max_value") if k in block}
            dyn_thresh = {"target": f"{_GM}.sampling_utils.DynamicThresholding", "params": params}
            guider_config["params"]["dyn_thresh_config"] = dyn_thresh
    else:
        guider_config = {"target": f"{_GM}.guiders.IdentityGuider"}
    steps = checks.integer("steps", block.get("steps", 40), minimum=1)
    discretization_config = _SHORT_DISCRETIZATIONS[discretization]
    strength = checks.real("img2img_strength", block.get("img2img_strength", 1.0), nonnegative=True)
    if strength < 1.0:  # as init_sampling does: wrap the schedule
        wrapper = {"strength": strength, "discretization": discretization_config}
        discretization_config = {"target": f"{_GM}.discretizer.Img2ImgDiscretizationWrapper", "params": wrapper}
    if block.get("stage2strength") is not None:
        stage2 = checks.real("stage2strength", block["stage2strength"], nonnegative=True)
        wrapper = {"strength": stage2, "original_steps": steps, "discretization": discretization_config}
        discretization_config = {"target": f"{_GM}.discretizer.Txt2NoisyDiscretizationWrapper", "params": wrapper}
    params = {
        "num_steps": steps,
        "discretization_config": discretization_config,
        "guider_config": guider_config,
        **_SHORT_SAMPLER_PARAMS[sampler],
    }
    return {"target": f"{_GM}.sampler.{sampler}", "params": params}
