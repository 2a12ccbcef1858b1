"""Loading samplers from YAML files, dicts or OmegaConf configs (sgm / mindone configs accepted unchanged)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .checks import ConfigError
from .registry import instantiate_from_config

# Where a sampler block lives: our configs, sgm inference scripts, and sgm/mindone model configs (e.g. svd.yaml).
SAMPLER_KEYS = ("sampler", "sampler_config", "model.params.sampler_config")


def load_config(source: str | os.PathLike | Mapping | DictConfig) -> Mapping | DictConfig:
    """Read a YAML path into a DictConfig; a dict or DictConfig is returned as is (dicts may hold plugin objects)."""
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"config file not found: {os.fspath(source)}")
        return OmegaConf.load(source)
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
            return block
    raise ConfigError(f"no sampler config found: expected a 'target' key or one of {', '.join(SAMPLER_KEYS)}")


def load_sampler(source: str | os.PathLike | Mapping | DictConfig, *, allow_imports: bool = False) -> Any:
    """Build the sampler described by ``source`` (see :data:`SAMPLER_KEYS` for where it is looked up).

    ``allow_imports=True`` lets targets that are not registered plugins be imported by dotted name; leave it off for
    configs you did not write.
    """
    return instantiate_from_config(sampler_block(load_config(source)), allow_imports=allow_imports)
