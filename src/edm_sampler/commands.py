"""Pieces the ``edm-sampler`` commands share: the default job config, loading a job, argument types, errors.

Importing this module is cheap (the commands' parsers are built before anything heavy is needed).
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

DEFAULT_CONFIG = "glyphs_heun_cfg.yaml"
DNNL_VAR = "DNNL_MAX_CPU_ISA"
# What an image model offers the commands (the glyph models have all of it; `sample` also needs `nearest`).
IMAGE_MODEL = ("shape", "class_vectors", "unconditional_vectors")


def default_config_path() -> Path:
    """The packaged main-job config (the glyph model with Heun and CFG)."""
    return Path(str(resources.files("edm_sampler") / "configs" / DEFAULT_CONFIG))


class CommandError(Exception):
    """What a command cannot do with its input, said in one line (naming the file and the field where there is one).

    The commands print it as ``edm-sampler <command>: error: <message>`` and exit with status 2, as argparse does
    for a bad argument, without a traceback: see :func:`exit_on_command_error`."""


# What loading a config may raise for a bad file: the library's ConfigError is a ValueError; OSError covers a missing
# or unreadable file; OmegaConf and PyYAML errors are matched by module below (neither is imported until needed).
_CONFIG_ERRORS = (ValueError, TypeError, KeyError, OSError)


def _is_config_error(err: BaseException) -> bool:
    from .model_path import ModelOutputError  # imported when an error happened: MindSpore is loaded by then

    if isinstance(err, ModelOutputError):  # the model failed while sampling: keep its traceback
        return False
    module = type(err).__module__.split(".")[0]
    return isinstance(err, _CONFIG_ERRORS) or module in ("omegaconf", "yaml")


def one_line(err: BaseException) -> str:
    """An exception's message on one line (PyYAML's span several), without KeyError's quotes."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) or type(err).__name__


def load_job(config: str | None) -> tuple[Path, Any, Any]:
    """``(config path, sampler, model)`` from a job config with a sampler block and an optional ``model`` block
    (default: the packaged main job; no ``model`` block: the glyph model).

    A config that cannot be read or built raises :class:`CommandError` naming the file, the block (``sampler`` or
    ``model``) and the library's message, which names the field."""
    from .config import load_config, load_sampler
    from .models.glyphs import GlyphDenoiser
    from .registry import instantiate_from_config

    path = Path(config) if config else default_config_path()
    with config_errors(f"{path}", names_the_file=True):
        loaded = load_config(path)
    with config_errors(f"{path}: model block"):
        model = instantiate_from_config(loaded["model"]) if "model" in loaded else GlyphDenoiser()
    with config_errors(f"{path}: sampler block"):
        sampler = load_sampler(loaded)
    return path, sampler, model


@contextmanager
def config_errors(where: str, names_the_file: bool = False) -> Iterator[None]:
    """Turn a config error raised inside the ``with`` (a ValueError or TypeError naming the field, a missing file,
    a YAML syntax error; not a :class:`~edm_sampler.run.ModelOutputError`, whose traceback matters) into a
    :class:`CommandError` prefixed with ``where`` (``names_the_file``: a FileNotFoundError's own message already
    says which paths were tried)."""
    try:
        yield
    except Exception as err:
        if not _is_config_error(err):
            raise
        if names_the_file and isinstance(err, FileNotFoundError):
            raise CommandError(one_line(err)) from err
        raise CommandError(f"{where}: {one_line(err)}") from err


def video_frames(sampler: Any, source: str, command: str) -> int:
    """How many samples make one whole video for ``sampler``'s guider: ``num_frames`` of a per-frame video guider
    (SVD's), 1 for an image guider. A video guider whose ``num_frames`` comes from the call is refused (the commands
    do not pass ``num_video_frames``)."""
    guider: Any = getattr(sampler, "guider", None)
    if not hasattr(guider, "num_frames"):
        return 1
    if guider.num_frames is None:
        raise CommandError(
            f"{source}: {type(guider).__name__} takes num_frames from the call, which edm-sampler {command} does not "
            "give: set num_frames in the guider's params"
        )
    return int(guider.num_frames)


def exit_on_command_error(prog: str, run: Any, args: argparse.Namespace) -> int:
    """``run(args)``; if it raises :class:`CommandError` (bad input), its one-line message on stderr and exit status
    2; if it raises OSError (an output that cannot be written...), its one-line message, which names the file, and
    exit status 1."""
    try:
        return run(args)
    except CommandError as err:
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        return 2
    except OSError as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr, flush=True)
        return 1


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
            f"{source} names {type(model).__name__}, which has no {', '.join(missing)}: edm-sampler {command} needs "
            f"an image model with {', '.join(needed)} (such as the built-in glyph model)"
        )
    shape = tuple(int(s) for s in model.shape)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ValueError(
            f"{source} names {type(model).__name__}, whose samples have shape {shape}: edm-sampler {command} saves "
            "(1 or 3, H, W) samples as PNG"
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
