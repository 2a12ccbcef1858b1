"""Built-in exact denoisers (no weights to download)."""

from .analytic import GaussianDenoiser, GaussianMixtureDenoiser
from .glyphs import GlyphDenoiser, render_glyphs

__all__ = ["GaussianDenoiser", "GaussianMixtureDenoiser", "GlyphDenoiser", "render_glyphs"]
