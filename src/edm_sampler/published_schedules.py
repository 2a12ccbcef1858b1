"""Published sigma lists with ComfyUI's rules for using them: GITS (``GITSScheduler``), Align Your Steps
(``AlignYourStepsScheduler``) and Optimal Steps for flow models (``OptimalStepsScheduler``).

Each list is a schedule of ``steps + 1`` levels that ends at the model's lowest level. ComfyUI uses a list as it is when
it has ``steps + 1`` entries. Otherwise it resamples the list to ``steps + 1`` points, linearly in ``log sigma``
(:func:`~edm_sampler.schedules.loglinear_interp`). It then keeps the last ``round(steps * denoise) + 1`` points and
replaces the last one by 0. Here that 0 is the one every discretization appends, so ``get_sigmas(n)`` returns the
points before it.
"""

from __future__ import annotations

import numpy as np

from . import checks
from .comfy_schedules import close_choice
from .discretization import Discretization
from .gits_tables import GITS_NOISE_LEVELS
from .schedules import loglinear_interp

# comfy_extras/nodes_align_your_steps.py (from the AYS "howto" page at research.nvidia.com/labs/toronto-ai/
# AlignYourSteps): 11 levels ending at the model's sigma_min. diffusers' lists (schedules.AYS_SIGMAS) round these to
# three decimals and end in 0 instead.
AYS_COMFY_SIGMAS: dict[str, tuple[float, ...]] = {
    "SD1": (14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092, 0.9642583904,
            0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582),
    "SDXL": (14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141, 0.5550693289,
             0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582),
    "SVD": (700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002),
}  # fmt: skip

# comfy_extras/nodes_optimalsteps.py (from github.com/bebebe666/OptimalSteps, "Optimal Stepsize for Diffusion
# Sampling", Pei et al. 2025): flow-matching sigmas in (0, 1].
OPTIMAL_STEPS_SIGMAS: dict[str, tuple[float, ...]] = {
    "FLUX": (0.9968, 0.9886, 0.9819, 0.975, 0.966, 0.9471, 0.9158, 0.8287, 0.5512, 0.2808, 0.001),
    "Wan": (1.0, 0.997, 0.995, 0.993, 0.991, 0.989, 0.987, 0.985, 0.98, 0.975, 0.973, 0.968, 0.96, 0.946, 0.927,
            0.902, 0.864, 0.776, 0.539, 0.208, 0.001),
    "Chroma": (0.992, 0.99, 0.988, 0.985, 0.982, 0.978, 0.973, 0.968, 0.961, 0.953, 0.943, 0.931, 0.917, 0.9, 0.881,
               0.858, 0.832, 0.802, 0.769, 0.731, 0.69, 0.646, 0.599, 0.55, 0.501, 0.451, 0.402, 0.355, 0.311, 0.27,
               0.232, 0.199, 0.169, 0.143, 0.12, 0.101, 0.084, 0.07, 0.058, 0.048, 0.001),
}  # fmt: skip

GITS_COEFFS = tuple(sorted(GITS_NOISE_LEVELS))


def _denoise(value) -> float:
    value = checks.real("denoise", value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"denoise must be in (0, 1] (0 would leave no step), got {value!r}")
    return value


def _model_name(value, names) -> str:
    """ComfyUI's ``model_type`` names, matched case-insensitively (``"sdxl"`` is ``"SDXL"``)."""
    by_lower = {name.lower(): name for name in names}
    if isinstance(value, str) and value.lower() in by_lower:
        return by_lower[value.lower()]
    return close_choice("model", value, tuple(names))


def published_levels(levels, n: int, denoise: float = 1.0) -> np.ndarray:
    """ComfyUI's rule (see the module docstring): ``levels`` (``steps + 1`` descending values) resampled to ``n + 1``
    points if needed, the last ``round(n * denoise) + 1`` kept, the final point dropped (it becomes the 0)."""
    sigmas = np.asarray(levels, dtype=np.float64)
    if len(sigmas) != n + 1:
        sigmas = loglinear_interp(sigmas, n + 1)
    kept = n if denoise >= 1.0 else round(n * denoise)
    if kept < 1:
        raise ValueError(
            f"denoise={denoise!r} keeps round({n} * {denoise!r}) = 0 of the {n} steps; raise denoise or num_steps"
        )
    return sigmas[-(kept + 1) : -1].copy()


class GITSDiscretization(Discretization):
    """GITS (Chen et al. 2024, arXiv:2405.11326) as ComfyUI's ``GITSScheduler``: the searched SD1 schedule for ``coeff``
    (one of 0.80, 0.85, ..., 1.50; default 1.20) and ``n`` steps.

    For ``n <= 20`` this is row ``n - 2`` of :data:`~edm_sampler.gits_tables.GITS_NOISE_LEVELS` without its last
    level. For ``n > 20`` it is the 20-step row resampled log-linearly to ``n + 1`` points. ``n`` must be >= 2 (no
    table has one step). ``denoise < 1`` keeps the last ``round(n * denoise)`` steps.
    """

    def __init__(self, coeff: float = 1.20, denoise: float = 1.0):
        coeff = checks.real("coeff", coeff)
        if round(coeff, 2) not in GITS_NOISE_LEVELS:
            raise ValueError(f"coeff must be one of {', '.join(f'{c:.2f}' for c in GITS_COEFFS)}; got {coeff!r}")
        self.coeff = round(coeff, 2)
        self.denoise = _denoise(denoise)

    def get_sigmas(self, n: int) -> np.ndarray:
        if n < 2:
            raise ValueError(f"num_steps must be >= 2 for GITSDiscretization (its tables start at 2 steps), got {n}")
        rows = GITS_NOISE_LEVELS[self.coeff]
        return published_levels(rows[n - 2] if n <= 20 else rows[-1], n, self.denoise)


class AlignYourStepsComfyDiscretization(Discretization):
    """Align Your Steps (Sabour, Fidler, Kreis, ICML 2024) as ComfyUI's ``AlignYourStepsScheduler``: ``model`` is
    ``"SD1"``, ``"SDXL"`` or ``"SVD"`` (any case).

    :class:`~edm_sampler.AlignYourStepsDiscretization` (``align_your_steps``) uses diffusers' three-decimal lists,
    which end in 0, and resamples their 10 non-zero levels. This class uses ComfyUI's full-precision 11-level lists,
    which end at ``sigma_min``, and resamples all 11 of them to ``n + 1``. At 10 steps the two agree within 1.4%
    (SDXL's lists differ from the third digit); at other step counts the resampling rules differ as well.
    """

    def __init__(self, model: str = "SDXL", denoise: float = 1.0):
        self.model = _model_name(model, AYS_COMFY_SIGMAS)
        self.denoise = _denoise(denoise)

    def get_sigmas(self, n: int) -> np.ndarray:
        return published_levels(AYS_COMFY_SIGMAS[self.model], n, self.denoise)


class OptimalStepsDiscretization(Discretization):
    """Optimal Stepsize (Pei et al. 2025) for flow models as ComfyUI's ``OptimalStepsScheduler``:
    ``model`` is ``"FLUX"`` (10 steps), ``"Wan"`` (20) or ``"Chroma"`` (40) (any case). Other step counts resample
    the list log-linearly."""

    parametrization = "flow"

    def __init__(self, model: str = "FLUX", denoise: float = 1.0):
        self.model = _model_name(model, OPTIMAL_STEPS_SIGMAS)
        self.denoise = _denoise(denoise)

    def get_sigmas(self, n: int) -> np.ndarray:
        return published_levels(OPTIMAL_STEPS_SIGMAS[self.model], n, self.denoise)
