"""Pictures of sampling runs, recorded through the sampler's ``callback``.

* :class:`Trajectory` is a callback: it keeps each step's noise level, state ``x`` and denoised estimate on the host.
* :func:`trajectory_strip` turns a trajectory into an image (Pillow only): one column per step, a row of states and
  a row of denoised estimates per recorded sample.
* :func:`plot_schedules` draws the noise levels that runs actually stepped through, side by side (the ``plot``
  extra, matplotlib): sigma against step, and the step size in log sigma.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from . import checks


class Trajectory:
    """A sampler callback that records ``(i, sigma, sigma_hat, x, denoised)`` of every step as NumPy arrays.

    ``items`` are the batch indices to keep (default: all), so recording a large batch stays cheap. One callback
    records one sampler call; :meth:`clear` (or a new instance) starts over.
    """

    def __init__(self, items: Sequence[int] | None = None):
        self.items = None if items is None else [checks.integer("items", k, minimum=0) for k in items]
        self.clear()

    def clear(self) -> None:
        self.steps: list[int] = []
        self.sigmas: list[float] = []
        self.sigma_hats: list[float] = []
        self.states: list[np.ndarray] = []
        self.denoised: list[np.ndarray] = []

    def __call__(self, info: Mapping) -> None:
        keep = slice(None) if self.items is None else self.items
        self.steps.append(int(info["i"]))
        self.sigmas.append(float(info["sigma"]))
        self.sigma_hats.append(float(info["sigma_hat"]))
        self.states.append(info["x"].asnumpy()[keep])
        self.denoised.append(info["denoised"].asnumpy()[keep])

    def __len__(self) -> int:
        return len(self.steps)


def to_uint8(sample: np.ndarray) -> np.ndarray:
    """A ``(C, H, W)`` sample in [-1, 1] as ``(H, W)`` (C = 1) or ``(H, W, 3)`` uint8 pixels."""
    pixels = np.clip(np.rint((sample + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return pixels[0] if pixels.shape[0] == 1 else np.ascontiguousarray(pixels.transpose(1, 2, 0))


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` in [-1, 1] -> ``(N, H, W)`` or ``(N, H, W, 3)`` uint8."""
    return np.stack([to_uint8(image) for image in images])


def trajectory_strip(
    trajectory: Trajectory, path: str | Path | None = None, columns: int = 10, zoom: int = 3, gap: int = 2
) -> np.ndarray:
    """One column per step (``columns`` of them, evenly spread over the run, the last step always included); per
    recorded sample a row of states and a row of denoised estimates. A state is shown as ``x / sqrt(1 + sigma^2)``,
    the variance-preserving view, so the noise fades into the image instead of saturating. Returns the uint8 image
    and writes it as PNG to ``path`` if given."""
    if not len(trajectory):
        raise ValueError("the trajectory is empty: pass it as callback= to a sampler call first")
    columns = checks.integer("columns", columns, minimum=1)
    zoom, gap = checks.integer("zoom", zoom, minimum=1), checks.integer("gap", gap, minimum=0)
    picks = np.unique(np.rint(np.linspace(0, len(trajectory) - 1, min(columns, len(trajectory)))).astype(int))
    rows = []
    for k in range(trajectory.states[0].shape[0]):
        states = np.stack([trajectory.states[j][k] / np.sqrt(1.0 + trajectory.sigma_hats[j] ** 2) for j in picks])
        rows += [_to_uint8(states), _to_uint8(np.stack([trajectory.denoised[j][k] for j in picks]))]
    h, w = rows[0].shape[1:3]
    canvas = np.full((len(rows) * (h + gap) - gap, len(picks) * (w + gap) - gap, *rows[0].shape[3:]), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    canvas = canvas.repeat(zoom, axis=0).repeat(zoom, axis=1)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas).save(path, format="PNG")
    return canvas


def plot_schedules(schedules: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Two panels side by side for named noise-level sequences (for instance ``Trajectory.sigmas`` of several
    runs): sigma against step on a log axis, and ``ln(sigma_i / sigma_{i+1})``, the size of each step. Needs
    matplotlib (``pip install 'edm_sampler[plot]'``); no pyplot, so no global figure state is touched."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("plot_schedules needs matplotlib: pip install 'edm_sampler[plot]'") from err
    if not schedules:
        raise ValueError("schedules is empty: give {name: sigmas}")
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for name, levels in schedules.items():
        sigmas = np.asarray(levels, dtype=np.float64)
        positive = sigmas[sigmas > 0]
        if len(positive) < 2:
            raise ValueError(f"schedule {name!r} needs at least two positive noise levels, got {sigmas.tolist()}")
        left.plot(np.arange(len(positive)), positive, marker="o", ms=3, label=f"{name} ({len(positive)})")
        right.plot(np.arange(len(positive) - 1), np.log(positive[:-1] / positive[1:]), marker="o", ms=3)
    left.set(yscale="log", xlabel="step", ylabel="sigma", title="noise level at each step")
    right.set(xlabel="step", ylabel="ln(sigma_i / sigma_i+1)", title="step size in log sigma")
    left.legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
