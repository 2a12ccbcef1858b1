"""Pieces the ``edm-sampler`` commands share: the default job config, loading a job, argument types.

Importing this module is cheap (the commands' parsers are built before anything heavy is needed).
"""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "glyphs_heun_cfg.yaml"
DNNL_VAR = "DNNL_MAX_CPU_ISA"
# What an image model offers the commands (the glyph models have all of it; `sample` also needs `nearest`).
IMAGE_MODEL = ("shape", "class_vectors", "unconditional_vectors")


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


def check_image_model(
    model: Any, source: str = "the config", command: str = "generate", needed: tuple[str, ...] = IMAGE_MODEL
) -> tuple[int, ...]:
    """The per-sample shape of ``model``, or a clear error if ``command`` cannot condition it or save images."""
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise ValueError(
            f"edm-sampler {command} needs an image model with {', '.join(needed)} (such as the built-in glyph "
            f"model); {source} names {type(model).__name__}, which has no {', '.join(missing)}"
        )
    shape = tuple(int(s) for s in model.shape)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ValueError(
            f"edm-sampler {command} saves (1 or 3, H, W) samples as PNG; {type(model).__name__} samples have "
            f"shape {shape}"
        )
    return shape


def tune_cpu_process() -> None:
    """Process-wide settings that make MindSpore 2.10 fast on a small CPU; the commands call it, the library never.

    * ``DNNL_MAX_CPU_ISA=AVX2`` unless the environment sets it (``ALL`` lifts the limit): the bundled oneDNN picks
      AVX-512 convolution code on AMD EPYC CPUs that is ~70x slower than its AVX2 code (the trained glyph net: 39 s
      instead of 2.0 s for the main job). oneDNN reads the variable at its first primitive, after import.
    * ``ms.runtime.launch_blocking()`` on CPU: PyNative's asynchronous launch hands every op to two queue threads,
      which on 2 cores cost more than they save (the main job: 0.3 s synchronous against 1.6-4.5 s; two msrun
      workers: 87 against 3.6 images/s). The results are the same bits either way.
    """
    os.environ.setdefault(DNNL_VAR, "AVX2")
    import mindspore as ms

    if ms.get_context("device_target") == "CPU":
        ms.runtime.launch_blocking()
