"""diffusers scheduler configs as edm_sampler samplers and denoisers, with diffusers' numbers.

Every diffusers model folder carries ``scheduler/scheduler_config.json``. :func:`load_scheduler` reads one (a path to
the JSON, a model folder, a dict with ``_class_name``, or a shipped name such as ``"sdxl"``) and returns a
:class:`~.classes.Translation`: the equivalent sampler (``.build_sampler(**options)``) and the model half
(``.denoiser``; ``.denoiser.bind(network)`` calls the network as the diffusers pipeline does). The usual entry points
are :func:`edm_sampler.load_sampler` and :func:`edm_sampler.load_denoiser`, which accept these configs too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

from ..checks import ConfigError
from .classes import DEFAULTS, TRANSLATIONS, Translation
from .fields import Fields

CONFIG_NAME = "scheduler_config.json"
SUPPORTED_CLASSES = tuple(sorted(TRANSLATIONS))


def shipped_configs() -> list[str]:
    """Names of the scheduler configs shipped with the package (``configs/diffusers/<name>.json``)."""
    folder = resources.files("edm_sampler") / "configs" / "diffusers"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def is_scheduler_config(source: Any) -> bool:
    """Whether ``source`` names or holds a diffusers scheduler config (rather than an sgm/mindone YAML)."""
    if isinstance(source, Mapping):
        return "_class_name" in source or (isinstance(source.get("target"), str) and source["target"] in TRANSLATIONS)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path.endswith(".json") or os.path.isfile(os.path.join(path, "scheduler", CONFIG_NAME)):
            return True
        if os.path.isfile(os.path.join(path, CONFIG_NAME)):
            return True
        return not os.path.exists(path) and path.removesuffix(".json") in shipped_configs()
    return False


def read_scheduler_config(source: Any) -> tuple[dict, str]:
    """``(fields, origin)``: the config's fields as a dict with ``_class_name``, and a name for error messages."""
    if isinstance(source, Mapping):
        config = dict(source)
        if "target" in config:  # YAML form: target: <class name>, params: <the JSON's fields>
            extra = sorted(set(config) - {"target", "params"})
            if extra:
                raise ConfigError(f"scheduler config: unexpected key(s) {', '.join(extra)}; allowed: target, params")
            params = config.get("params") or {}
            if not isinstance(params, Mapping):
                raise ConfigError(f"{config['target']}: params must be a mapping, got {type(params).__name__}")
            config = {"_class_name": config["target"], **params}
        return _plain(config), f"the {config.get('_class_name', 'scheduler')} config"
    path = os.fspath(source)
    for candidate in (os.path.join(path, "scheduler", CONFIG_NAME), os.path.join(path, CONFIG_NAME)):
        if os.path.isfile(candidate):
            path = candidate
            break
    if not os.path.isfile(path):
        name = path.removesuffix(".json")
        if name in shipped_configs():
            text = (resources.files("edm_sampler") / "configs" / "diffusers" / f"{name}.json").read_text()
            return _parse(text, f"configs/diffusers/{name}.json"), f"configs/diffusers/{name}.json"
        raise FileNotFoundError(
            f"no scheduler config at {path} (looked for the file, <folder>/scheduler/{CONFIG_NAME} and "
            f"<folder>/{CONFIG_NAME}); shipped scheduler configs: {', '.join(shipped_configs())}"
        )
    with open(path, encoding="utf-8") as handle:
        return _parse(handle.read(), path), path


def _parse(text: str, origin: str) -> dict:
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{origin}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(config, dict) or "_class_name" not in config:
        raise ConfigError(f"{origin}: not a diffusers scheduler config (no '_class_name' field)")
    return config


def _plain(config: dict) -> dict:
    try:  # OmegaConf containers become plain Python values
        from omegaconf import DictConfig, ListConfig, OmegaConf

        return {
            k: OmegaConf.to_container(v) if isinstance(v, (DictConfig, ListConfig)) else v for k, v in config.items()
        }
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return config


def load_scheduler(source: Any, options: dict | None = None) -> Translation:
    """Translate a diffusers scheduler config (see the module docstring). ``options`` holds call-time choices the
    translation consumes (``mu`` / ``image_seq_len`` / ``pipeline_sigmas`` for dynamic flow shifting); what it does
    not consume is left in the dict for the sampler's constructor."""
    config, origin = read_scheduler_config(source)
    class_name = config["_class_name"]
    if class_name not in TRANSLATIONS:
        raise ConfigError(
            f"{origin}: scheduler class {class_name!r} is not supported; supported: {', '.join(SUPPORTED_CLASSES)}"
        )
    fields = Fields(class_name, config, DEFAULTS[class_name], origin)
    try:
        translation = TRANSLATIONS[class_name](fields, {} if options is None else options)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:  # a field's value refused by the object it builds: name the file
        raise ConfigError(f"{origin}: {class_name}: {err}") from None
    fields.finish()
    return translation


__all__ = [
    "SUPPORTED_CLASSES",
    "Translation",
    "is_scheduler_config",
    "load_scheduler",
    "read_scheduler_config",
    "shipped_configs",
]
