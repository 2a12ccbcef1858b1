"""Pieces the ``edm-sampler`` commands share: the default job config, loading a job, argument types.

Importing this module is cheap (the commands' parsers are built before anything heavy is needed).
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "glyphs_heun_cfg.yaml"


def default_config_path() -> Path:
    """The packaged main-job config (the glyph model with Heun and CFG)."""
    return Path(str(resources.files("edm_sampler") / "configs" / DEFAULT_CONFIG))


def load_job(config: str | None) -> tuple[Path, Any, Any]:
    """``(config path, sampler, model)`` from a job config with a sampler block and an optional ``model`` block
    (default: the packaged main job; no ``model`` block: the glyph model)."""
    from .config import load_config, load_sampler
    from .models.glyphs import GlyphDenoiser
    from .registry import instantiate_from_config

    path = Path(config) if config else default_config_path()
    loaded = load_config(path)
    model = instantiate_from_config(loaded.model) if "model" in loaded else GlyphDenoiser()
    return path, load_sampler(loaded), model


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
