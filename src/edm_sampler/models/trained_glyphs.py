"""The trained glyph model: :class:`~edm_sampler.models.unet.GlyphUNet` weights behind EDM's preconditioning.

The package ships the checkpoint ``examples/train_glyphs.py`` writes (``glyph_unet.ckpt``, EMA weights, 1.6 MB), so
a learned network can be sampled with no download: ``edm-sampler sample --config glyphs_unet_heun_cfg.yaml``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import mindspore as ms

from ..denoisers import BoundDenoiser, Denoiser
from ..scalings import EDMScaling
from .glyphs import GlyphData
from .unet import GlyphUNet

CHECKPOINT = "glyph_unet.ckpt"
SIGMA_DATA = 0.5  # the value train_glyphs.py trains with


def packaged_checkpoint() -> Path:
    """The checkpoint that ships with the package."""
    return Path(str(resources.files("edm_sampler") / "models" / CHECKPOINT))


def load_glyph_unet(checkpoint: str | Path | None = None) -> GlyphUNet:
    """A :class:`GlyphUNet` with the weights of ``checkpoint`` (default: the packaged one); its width is read from
    the checkpoint. Missing or unexpected parameters are an error, not a silently half-initialised net."""
    path = Path(checkpoint) if checkpoint is not None else packaged_checkpoint()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist (train one: examples/train_glyphs.py)")
    params = ms.load_checkpoint(str(path))
    if "conv_in.weight" not in params:
        raise ValueError(f"checkpoint {str(path)!r} is not a GlyphUNet checkpoint (no 'conv_in.weight')")
    net = GlyphUNet(channels=int(params["conv_in.weight"].shape[0]))
    not_loaded, unexpected = ms.load_param_into_net(net, params, strict_load=True)
    if not_loaded or unexpected:
        raise ValueError(
            f"checkpoint {str(path)!r} does not match GlyphUNet: missing {sorted(not_loaded)}, "
            f"unexpected {sorted(unexpected)}"
        )
    net.set_train(False)
    return net


class TrainedGlyphModel(BoundDenoiser):
    """``Denoiser(EDMScaling(0.5)).bind(GlyphUNet)`` with the trained weights, plus the glyph data's helpers
    (``shape``, ``class_vectors``, ``unconditional_vectors``, ``nearest``) so the CLI commands can run it like the
    exact :class:`~edm_sampler.models.glyphs.GlyphDenoiser`. ``size``/``variants``/``seed`` name the training data
    (``nearest`` measures against it); they must match the checkpoint's training run.
    """

    def __init__(self, checkpoint: str | Path | None = None, size: int = 24, variants: int = 24, seed: int = 0):
        super().__init__(Denoiser(EDMScaling(SIGMA_DATA)), load_glyph_unet(checkpoint))
        self.data = GlyphData(size, variants, seed)
        self.shape = self.data.shape
        self.class_vectors = self.data.class_vectors
        self.unconditional_vectors = self.data.unconditional_vectors
        self.nearest = self.data.nearest
