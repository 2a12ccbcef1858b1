"""Flow-matching sigma schedules: diffusers' ``FlowMatchEulerDiscreteScheduler``, ComfyUI's discrete-flow table walked
by its ``simple`` scheduler, and the Mochi/LTX linear-quadratic schedule; plus the time-shift helpers they use.

Flow-matching models (SD3, Flux, Wan, Mochi, LTX...) sample the state ``x = (1 - sigma) x0 + sigma eps`` with sigma in
``(0, 1]``, starting at (or near) ``sigma = 1``; see :mod:`edm_sampler.parametrization`. Every class here is a
:class:`~edm_sampler.discretization.Discretization` whose ``get_sigmas(n)`` returns ``n`` descending float64 sigmas in
``(0, 1]`` computed on the host (the base class appends the final 0), and carries ``parametrization = "flow"`` so tools
can tell a flow schedule from a VE one.

The sources compute partly in float32 (diffusers' training grid and its final cast, ComfyUI's whole sigma table);
everything here is float64, so values agree with the sources to float32 rounding (about 1e-7 relative) and with a
float64 transcription of their formulas to a few ulps. The places are listed in each class's docstring.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from . import checks
from .discretization import Discretization, LegacyDDPMDiscretization
from .schedules import _log_interp

TIME_SHIFT_TYPES = ("exponential", "linear")

# The Beta(0.6, 0.6) spacing of "Beta Sampling is All You Need" (Lee et al. 2024, arXiv:2407.12173), as diffusers uses
# it for ``use_beta_sigmas``.
BETA_SPACING_ALPHA = 0.6
BETA_SPACING_BETA = 0.6


# ---------------------------------------------------------------------------------------------------------------------
# Time shifts
# ---------------------------------------------------------------------------------------------------------------------


def _unit_sigmas(name: str, sigma) -> np.ndarray:
    sigma = np.asarray(sigma, dtype=np.float64)
    if not np.all(np.isfinite(sigma)) or np.any(sigma < 0.0) or np.any(sigma > 1.0):
        raise ValueError(f"{name} must hold finite values in [0, 1], got {sigma.tolist()!r}")
    return sigma


def _like_input(sigma, out: np.ndarray):
    return float(out) if np.ndim(sigma) == 0 else out


def _odds_shift(sigma: np.ndarray, factor: float) -> np.ndarray:
    """``factor s / (1 + (factor - 1) s)``, i.e. the odds ``s / (1 - s)`` multiplied by ``factor``.

    Written as ``s / (s + (1 - s) / factor)``, which is exactly 0 at ``s = 0`` and exactly 1 at ``s = 1`` (no division
    by zero, no warning) and the identity for ``factor == 1``, as ComfyUI's ``time_snr_shift`` special-cases.
    """
    if factor == 1.0:
        return sigma.copy()
    return sigma / (sigma + (1.0 - sigma) / factor)


def time_shift(sigma, shift: float):
    """The static (SD3) time shift ``sigma' = shift sigma / (1 + (shift - 1) sigma)``.

    This is diffusers' ``FlowMatchEulerDiscreteScheduler`` shift and ComfyUI's ``time_snr_shift``: it multiplies the
    odds ``sigma / (1 - sigma)`` by ``shift`` (``shift > 1`` spends more steps at high noise), keeps 0 and 1 fixed, and
    equals :func:`linear_time_shift` with ``mu = shift`` and :func:`exponential_time_shift` with ``mu = log(shift)``.
    ``sigma`` is a number or an array in ``[0, 1]``; the result has the same form (a float for a number).
    """
    shift = checks.real("shift", shift, positive=True)
    return _like_input(sigma, _odds_shift(_unit_sigmas("sigma", sigma), shift))


def exponential_time_shift(sigma, mu: float):
    """The resolution-dependent (Flux) shift ``sigma' = e^mu / (e^mu + (1 / sigma - 1))``; ``sigma = 0`` maps to 0.

    diffusers' ``_time_shift_exponential(mu, 1.0, sigma)``: the odds are multiplied by ``e^mu``, so ``mu = 0`` is the
    identity and ``mu = log(shift)`` is :func:`time_shift`. ``mu`` usually comes from :func:`flux_mu`.
    """
    mu = checks.real("mu", mu)
    return _like_input(sigma, _odds_shift(_unit_sigmas("sigma", sigma), math.exp(mu)))


def linear_time_shift(sigma, mu: float):
    """diffusers' ``_time_shift_linear(mu, 1.0, sigma)``: ``sigma' = mu / (mu + (1 / sigma - 1))``, ``mu > 0``.

    The odds are multiplied by ``mu`` itself, so this is :func:`time_shift` with ``shift = mu``; ``sigma = 0`` maps
    to 0.
    """
    mu = checks.real("mu", mu, positive=True)
    return _like_input(sigma, _odds_shift(_unit_sigmas("sigma", sigma), mu))


def stretch_to_terminal(sigmas, shift_terminal: float) -> np.ndarray:
    """diffusers' ``stretch_shift_to_terminal`` (from LTX-Video): rescale ``1 - sigma`` so the last sigma is
    ``shift_terminal``.

    ``one_minus_z = 1 - sigmas``; ``scale = one_minus_z[-1] / (1 - shift_terminal)``; the result is
    ``1 - one_minus_z / scale``. A first sigma of 1 stays 1 and the order is kept. The last value is set to
    ``shift_terminal`` exactly (the formula gives it up to rounding). ``sigmas[-1]`` must be < 1 (diffusers divides
    by zero there, e.g. for a one-step schedule).
    """
    shift_terminal = checks.real("shift_terminal", shift_terminal, nonnegative=True)
    if not shift_terminal < 1.0:
        raise ValueError(f"shift_terminal must be in [0, 1), got {shift_terminal!r}")
    sigmas = _unit_sigmas("sigmas", sigmas)
    if sigmas.ndim != 1 or sigmas.size == 0:
        raise ValueError(f"sigmas must be a non-empty 1-D sequence, got shape {sigmas.shape}")
    one_minus_z = 1.0 - sigmas
    if one_minus_z[-1] == 0.0:
        raise ValueError("the last of sigmas must be < 1 to stretch it to shift_terminal (1 - sigma would divide by 0)")
    out = 1.0 - one_minus_z * ((1.0 - shift_terminal) / one_minus_z[-1])
    out[-1] = shift_terminal
    return out


def flux_mu(
    image_seq_len: float,
    base_seq_len: float = 256,
    max_seq_len: float = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """The resolution-dependent shift ``mu`` of the Flux (and SD3.5, Qwen-Image...) pipelines: diffusers'
    ``calculate_shift``.

    A straight line through ``(base_seq_len, base_shift)`` and ``(max_seq_len, max_shift)``::

        m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
        b = base_shift - m * base_seq_len
        mu = image_seq_len * m + b

    (extrapolated outside the two points). Flux's ``image_seq_len`` is the number of image tokens,
    ``(H // 16) * (W // 16)`` for an ``H x W`` pixel image: the VAE gives an ``H/8 x W/8`` latent and the transformer
    packs it in ``2 x 2`` patches. So 1024 x 1024 gives 4096 tokens and ``mu = max_shift = 1.15``; 512 x 512 gives
    1024 tokens and ``mu = 0.63``. Use ``mu`` with :func:`exponential_time_shift` or
    ``FlowMatchDiscretization(use_dynamic_shifting=True, mu=...)``.
    """
    image_seq_len = checks.real("image_seq_len", image_seq_len, positive=True)
    base_seq_len = checks.real("base_seq_len", base_seq_len, positive=True)
    max_seq_len = checks.real("max_seq_len", max_seq_len, positive=True)
    base_shift = checks.real("base_shift", base_shift)
    max_shift = checks.real("max_shift", max_shift)
    if max_seq_len == base_seq_len:
        raise ValueError(f"max_seq_len must differ from base_seq_len, both are {base_seq_len!r}")
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    b = base_shift - m * base_seq_len
    return image_seq_len * m + b


# ---------------------------------------------------------------------------------------------------------------------
# Beta(a, b) quantiles, for use_beta_sigmas (no SciPy needed)
# ---------------------------------------------------------------------------------------------------------------------

_TINY = 1e-300


def _beta_continued_fraction(a: float, b: float, x: np.ndarray) -> np.ndarray:
    """The continued fraction of ``I_x(a, b)`` (DLMF 8.17.22), evaluated by the modified Lentz method, vectorized.

    Converges quickly for ``x < (a + 1) / (a + b + 2)``; the caller uses the symmetry ``I_x(a, b) = 1 - I_{1-x}(b, a)``
    elsewhere.
    """

    def nonzero(v):
        return np.where(np.abs(v) < _TINY, _TINY, v)

    c = np.ones_like(x)
    d = 1.0 / nonzero(1.0 - (a + b) * x / (a + 1.0))
    h = d.copy()
    for m in range(1, 1000):
        # even step: d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m))
        num = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        d = 1.0 / nonzero(1.0 + num * d)
        c = nonzero(1.0 + num / c)
        h = h * d * c
        # odd step: d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
        num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        d = 1.0 / nonzero(1.0 + num * d)
        c = nonzero(1.0 + num / c)
        step = d * c
        h = h * step
        if np.all(np.abs(step - 1.0) <= 4.5e-16):  # two ulps of 1
            return h
    raise RuntimeError("the incomplete-beta continued fraction did not converge")  # pragma: no cover


def beta_cdf(x, a: float, b: float) -> np.ndarray:
    """The regularized incomplete beta function ``I_x(a, b)``: the CDF of Beta(a, b) at ``x`` in ``[0, 1]``.

    ``I_x = x^a (1 - x)^b / (a B(a, b)) * CF(x)`` with the continued fraction ``CF`` of DLMF 8.17.22, and
    ``1 - I_{1-x}(b, a)`` for ``x >= (a + 1) / (a + b + 2)``, where that fraction converges faster. Accurate to a few
    ulps (checked against SciPy's ``betainc`` in the tests).
    """
    a = checks.real("a", a, positive=True)
    b = checks.real("b", b, positive=True)
    x = _unit_sigmas("x", x)
    out = np.zeros_like(x)
    out[x == 1.0] = 1.0
    inner = (x > 0.0) & (x < 1.0)
    if np.any(inner):
        xi = x[inner]
        log_front = a * np.log(xi) + b * np.log1p(-xi) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
        front = np.exp(log_front)
        direct = xi < (a + 1.0) / (a + b + 2.0)
        res = np.empty_like(xi)
        if np.any(direct):
            res[direct] = front[direct] * _beta_continued_fraction(a, b, xi[direct]) / a
        if np.any(~direct):
            res[~direct] = 1.0 - front[~direct] * _beta_continued_fraction(b, a, 1.0 - xi[~direct]) / b
        out[inner] = res
    return out


def beta_ppf(p, a: float, b: float) -> np.ndarray:
    """The quantile function of Beta(a, b) (``scipy.stats.beta.ppf``): the ``x`` in ``[0, 1]`` with ``I_x(a, b) = p``.

    :func:`beta_cdf` is inverted by Newton's method on the Beta density, safeguarded by bisection on a bracket that
    shrinks every iteration, until the step or the bracket is as narrow as float64 allows. ``p = 0`` and ``p = 1`` give
    0 and 1 exactly. The result agrees with SciPy to ~1e-14 except in the extreme upper tail (``1 - p`` below ~1e-9),
    where the CDF is ``1 - I_{1-x}(b, a)`` rounded near 1 and ``x`` is only as accurate as ``eps / density``; the
    uniform grids of schedule respacing never go there.
    """
    a = checks.real("a", a, positive=True)
    b = checks.real("b", b, positive=True)
    p = _unit_sigmas("p", p)
    shape = p.shape
    p = p.reshape(-1)
    out = p.copy()  # exact at p = 0 and p = 1
    todo = np.flatnonzero((p > 0.0) & (p < 1.0))
    if todo.size:
        target = p[todo]
        lo = np.zeros_like(target)
        hi = np.ones_like(target)
        x = np.full_like(target, 0.5)
        log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
        for _ in range(200):
            f = beta_cdf(x, a, b) - target
            lo = np.where(f < 0.0, x, lo)
            hi = np.where(f > 0.0, x, hi)
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                density = np.exp((a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - log_norm)
                newton = x - f / density
            # x stays strictly inside (0, 1): Newton steps are taken only strictly inside the bracket
            inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
            nxt = np.where(inside, newton, 0.5 * (lo + hi))
            converged = np.abs(newton - x) <= 2.0 * np.spacing(x)
            done = (f == 0.0) | converged | (hi - lo <= 2.0 * np.spacing(hi))
            x = np.where(done, x, nxt)
            if np.all(done):
                break
        out[todo] = x
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------------------------------------
# Discretizations
# ---------------------------------------------------------------------------------------------------------------------


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


class FlowMatchDiscretization(Discretization):
    """The sigmas of diffusers' ``FlowMatchEulerDiscreteScheduler.set_timesteps(n)`` (SD3, Flux, Wan, LTX, ...),
    without the trailing 0 diffusers appends; parameters are named as in diffusers' scheduler config.

    With ``N = num_train_timesteps``, the training grid is ``sigma_k = k / N`` for ``k = N .. 1``; with static
    shifting it is shifted by :func:`time_shift` at once, so its extremes are ``sigma_max = 1`` and
    ``sigma_min = shift(1 / N)`` (``1 / N`` with ``use_dynamic_shifting``). ``get_sigmas(n)`` then runs, in diffusers'
    order:

    1. ``sigmas = linspace(N sigma_max, N sigma_min, n) / N``;
    2. the shift: :func:`exponential_time_shift` or :func:`linear_time_shift` (``time_shift_type``) with ``mu`` when
       ``use_dynamic_shifting``, else :func:`time_shift` with ``shift``. With static shifting the shift is thus applied
       twice to the low end (once to the training grid, once here), as in diffusers: SD3's ``shift=3``, 28 steps end
       at 0.00893, not at 0.003;
    3. ``shift_terminal``: :func:`stretch_to_terminal` so the last sigma is ``shift_terminal`` (skipped for ``n = 1``,
       where diffusers' formula divides by zero; diffusers fixed it the same way, issue #14411);
    4. at most one respacing between ``lo = sigma_min`` and ``hi = sigma_max`` (the config values when given, else the
       last and first sigma of step 3): ``use_karras_sigmas`` (Karras rho = 7), ``use_exponential_sigmas``
       (log-linear) or ``use_beta_sigmas`` (``lo + ppf(1 - linspace(0, 1, n)) (hi - lo)`` with the Beta(0.6, 0.6)
       quantile, computed by :func:`beta_ppf`; no SciPy needed).

    With ``use_dynamic_shifting`` give ``mu``, or ``image_seq_len`` to get ``mu = flux_mu(image_seq_len,
    base_image_seq_len, max_image_seq_len, base_shift, max_shift)`` as the pipelines do; ``shift`` is then unused
    (Flux's config carries ``shift=3.0`` next to ``use_dynamic_shifting=True``). ``mu`` and ``image_seq_len`` are
    refused without dynamic shifting (diffusers would ignore them). ``sigma_min``/``sigma_max`` override the
    respacing range, as diffusers' respacing helpers read ``config.sigma_min``/``config.sigma_max`` when the config
    has them, and need one of the three respacings.
    ``invert_sigmas`` (Mochi) and diffusers' ``stochastic_sampling`` are not offered.

    diffusers' Flux pipelines (and Qwen-Image, Flux 2, ...) do not use the default path of ``set_timesteps``: they pass
    their own ``sigmas = linspace(1, 1 / n, n)``, which the scheduler then shifts; ``pipeline_sigmas=True`` starts
    from those instead of the training grid (steps 2-4 are the same).

    Precision: diffusers builds the training grid and its ``sigma_min`` in float32 and casts the result to float32;
    here all of it is float64, so ``sigma_min`` and the schedule differ from diffusers' by float32 rounding (below
    3e-7 relative); karras and exponential respacing are written so both ends are exact.
    """

    parametrization = "flow"

    def __repr__(self) -> str:
        """Only the parameters that differ from diffusers' defaults (the full list is 16 long)."""
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in vars(self).items() if k in defaults and v != defaults[k].default]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        mu: float | None = None,
        base_shift: float = 0.5,
        max_shift: float = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        image_seq_len: int | None = None,
        time_shift_type: str = "exponential",
        shift_terminal: float | None = None,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        pipeline_sigmas: bool = False,
    ):
        self.num_train_timesteps = checks.integer("num_train_timesteps", num_train_timesteps, minimum=2)
        self.pipeline_sigmas = _flag("pipeline_sigmas", pipeline_sigmas)
        self.shift = checks.real("shift", shift, positive=True)
        self.use_dynamic_shifting = _flag("use_dynamic_shifting", use_dynamic_shifting)
        self.mu = None if mu is None else checks.real("mu", mu)
        self.base_shift = checks.real("base_shift", base_shift)
        self.max_shift = checks.real("max_shift", max_shift)
        self.base_image_seq_len = checks.integer("base_image_seq_len", base_image_seq_len, minimum=1)
        self.max_image_seq_len = checks.integer("max_image_seq_len", max_image_seq_len, minimum=1)
        self.image_seq_len = (
            None if image_seq_len is None else checks.integer("image_seq_len", image_seq_len, minimum=1)
        )
        self.time_shift_type = checks.choice("time_shift_type", time_shift_type, TIME_SHIFT_TYPES)
        if shift_terminal is not None:
            shift_terminal = checks.real("shift_terminal", shift_terminal)
            if not 0.0 < shift_terminal < 1.0:
                raise ValueError(f"shift_terminal must be in (0, 1), or None to disable it, got {shift_terminal!r}")
        self.shift_terminal = shift_terminal
        self.use_karras_sigmas = _flag("use_karras_sigmas", use_karras_sigmas)
        self.use_exponential_sigmas = _flag("use_exponential_sigmas", use_exponential_sigmas)
        self.use_beta_sigmas = _flag("use_beta_sigmas", use_beta_sigmas)
        spacings = [
            name for name in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas") if getattr(self, name)
        ]
        if len(spacings) > 1:
            raise ValueError(
                "at most one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas may be True, got "
                + " and ".join(f"{name}=True" for name in spacings)
            )
        self.sigma_min = self._range_end("sigma_min", sigma_min, spacings)
        self.sigma_max = self._range_end("sigma_max", sigma_max, spacings)
        if self.sigma_min is not None and self.sigma_max is not None and not self.sigma_min < self.sigma_max:
            raise ValueError(f"sigma_min must be < sigma_max, got sigma_min={sigma_min!r}, sigma_max={sigma_max!r}")

        if self.use_dynamic_shifting:
            if self.mu is None and self.image_seq_len is None:
                raise ValueError(
                    "use_dynamic_shifting=True needs mu or image_seq_len (mu = flux_mu(image_seq_len, ...)); "
                    "got neither"
                )
            if self.mu is not None and self.image_seq_len is not None:
                raise ValueError(f"give mu or image_seq_len, not both (got mu={mu!r}, image_seq_len={image_seq_len!r})")
            if self.mu is None:
                assert self.image_seq_len is not None  # one of the two (checked above)
                self._mu: float | None = flux_mu(
                    self.image_seq_len,
                    self.base_image_seq_len,
                    self.max_image_seq_len,
                    self.base_shift,
                    self.max_shift,
                )
            else:
                self._mu = self.mu
            if self.time_shift_type == "linear" and not self._mu > 0.0:
                raise ValueError(f"time_shift_type='linear' needs mu > 0, got mu={self._mu!r}")
            if self.time_shift_type == "exponential" and not abs(self._mu) <= 700.0:
                raise ValueError(f"time_shift_type='exponential' needs |mu| <= 700 (e^mu in float64), got {self._mu!r}")
        else:
            for name in ("mu", "image_seq_len"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name} applies only with use_dynamic_shifting=True, got {name}={getattr(self, name)!r}"
                    )
            self._mu = None

        n_train = self.num_train_timesteps
        train_min = 1.0 / n_train
        if not self.use_dynamic_shifting:
            train_min = float(_odds_shift(np.array(train_min), self.shift))
        self._train_sigma_min = train_min
        self._train_sigma_max = 1.0  # k = N: N / N, kept at 1 by every shift

    @staticmethod
    def _range_end(name: str, value, spacings: list[str]) -> float | None:
        if value is None:
            return None
        value = checks.real(name, value, positive=True)
        if value > 1.0:
            raise ValueError(f"{name} must be in (0, 1] for a flow schedule, got {value!r}")
        if not spacings:
            raise ValueError(
                f"{name} sets the range of the karras/exponential/beta respacing and needs one of "
                f"use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas; got {name}={value!r} without any"
            )
        return value

    @property
    def effective_mu(self) -> float | None:
        """The ``mu`` of the dynamic shift (given, or computed from ``image_seq_len``); None for static shifting."""
        return self._mu

    @property
    def train_sigmas(self) -> np.ndarray:
        """The ``N`` training sigmas, descending: ``k / N`` for ``k = N .. 1``, statically shifted unless dynamic."""
        n_train = self.num_train_timesteps
        sigmas = np.arange(n_train, 0, -1, dtype=np.float64) / n_train
        return sigmas if self.use_dynamic_shifting else _odds_shift(sigmas, self.shift)

    def get_sigmas(self, n: int) -> np.ndarray:
        n_train = self.num_train_timesteps
        if self.pipeline_sigmas:  # what the Flux-type pipelines pass to set_timesteps(sigmas=...)
            sigmas = np.linspace(1.0, 1.0 / n, n)
        else:
            sigmas = np.linspace(self._train_sigma_max * n_train, self._train_sigma_min * n_train, n) / n_train
        if self.use_dynamic_shifting:
            assert self._mu is not None  # set with use_dynamic_shifting (constructor)
            factor = math.exp(self._mu) if self.time_shift_type == "exponential" else self._mu
        else:
            factor = self.shift
        sigmas = _odds_shift(sigmas, factor)
        if self.shift_terminal is not None and n > 1:
            sigmas = stretch_to_terminal(sigmas, self.shift_terminal)
        if not (self.use_karras_sigmas or self.use_exponential_sigmas or self.use_beta_sigmas):
            return sigmas
        lo = float(sigmas[-1]) if self.sigma_min is None else self.sigma_min
        hi = float(sigmas[0]) if self.sigma_max is None else self.sigma_max
        if n == 1:
            return np.array([hi])
        if not lo < hi:
            raise ValueError(
                f"the respacing range needs sigma_min < sigma_max, got sigma_min={lo!r}, sigma_max={hi!r} "
                f"(from the config where set, else from the shifted schedule)"
            )
        ramp = np.linspace(0.0, 1.0, n)
        if self.use_karras_sigmas:
            rho = 7.0
            out = ((1.0 - ramp) * hi ** (1.0 / rho) + ramp * lo ** (1.0 / rho)) ** rho
            out[0], out[-1] = hi, lo
            return out
        if self.use_exponential_sigmas:
            return _log_interp(ramp, lo, hi)
        return lo + beta_ppf(1.0 - ramp, BETA_SPACING_ALPHA, BETA_SPACING_BETA) * (hi - lo)

    def timesteps(self, n: int) -> np.ndarray:
        """diffusers' ``scheduler.timesteps`` for ``n`` steps: the ``n`` sigmas times ``num_train_timesteps``."""
        return self(n, do_append_zero=False) * self.num_train_timesteps


class DiscreteFlowDiscretization(Discretization):
    """ComfyUI's discrete-flow sigma table (``ModelSamplingDiscreteFlow``: SD3, Flux-like DiTs with a ``shift``,
    Wan, ...) walked by its ``simple`` scheduler.

    The table holds ``num_timesteps`` sigmas ``time_shift(t, shift)`` for ``t = k / num_timesteps``,
    ``k = 1 .. num_timesteps`` (ascending; ``shift = 1`` is the identity, as ComfyUI's ``time_snr_shift``). The
    ``simple`` scheduler takes, for ``x = 0 .. n - 1``, ``table[-(1 + int(x * num_timesteps / n))]``: it starts at the
    top (sigma = 1) and steps down by ``num_timesteps / n`` entries, truncated, so below ``n = num_timesteps`` it stops
    above the table's low end.
    ``n`` must be <= ``num_timesteps`` (beyond that ComfyUI repeats entries).

    ``multiplier`` only scales the model's timestep (``timestep = sigma * multiplier``, see :meth:`timesteps`); ComfyUI
    builds the table as ``sigma((k / T) * multiplier)`` with ``sigma(t) = shift(t / multiplier)``, where it cancels.
    ComfyUI computes the table in float32 torch; here it is float64 (the indices are the same Python-float arithmetic).
    """

    parametrization = "flow"

    def __init__(self, shift: float = 1.0, multiplier: float = 1000, num_timesteps: int = 1000):
        self.shift = checks.real("shift", shift, positive=True)
        self.multiplier = checks.real("multiplier", multiplier, positive=True)
        self.num_timesteps = checks.integer("num_timesteps", num_timesteps, minimum=1)
        t = np.arange(1, self.num_timesteps + 1, dtype=np.float64) / self.num_timesteps
        self._table = _odds_shift(t, self.shift)

    @property
    def sigma_table(self) -> np.ndarray:
        """The ``num_timesteps`` sigmas of ComfyUI's ``model_sampling.sigmas``, ascending."""
        return self._table.copy()

    def get_sigmas(self, n: int) -> np.ndarray:
        size = self.num_timesteps
        if n > size:
            raise ValueError(
                f"num_steps must be <= num_timesteps={size} for {type(self).__name__} (the 'simple' scheduler would "
                f"repeat table entries), got {n}"
            )
        offsets = (np.arange(n) * (size / n)).astype(np.int64)  # int(x * ss), as ComfyUI's Python loop
        return self._table[size - 1 - offsets]

    def timesteps(self, n: int) -> np.ndarray:
        """The model timesteps ComfyUI feeds for ``n`` steps: the ``n`` sigmas times ``multiplier``."""
        return self(n, do_append_zero=False) * self.multiplier


class LinearQuadraticDiscretization(Discretization):
    """The linear-quadratic schedule of Genmo's Mochi (also LTX-Video), ComfyUI's ``linear_quadratic`` scheduler.

    With ``L = linear_steps`` (default ``n // 2``), ``Q = n - L``, ``tau = threshold_noise`` and
    ``d = L - tau n``, the "time" ``u_i`` for ``i = 0 .. n - 1`` is

    * linear for ``i < L``: ``u_i = i tau / L`` (from 0 up to just below ``tau``);
    * quadratic for ``i >= L``: ``u_i = q i^2 + l i + c`` with ``q = d / (L Q^2)``, ``l = tau / L - 2 d / Q^2``,
      ``c = q L^2``, which continues the line with the same value and slope at ``i = L`` and reaches 1 at ``i = n``;

    and ``sigma_i = 1 - u_i``. The source's list of ``n + 1`` values ends with ``1 - 1 = 0``, which is the 0 the base
    class appends; ``get_sigmas(n)`` returns the first ``n`` (starting at exactly 1). ``n = 1`` gives ``[1.0]``, as in
    ComfyUI. ComfyUI multiplies by the model's ``sigma_max``: 1 for flow models (the default); for a DDPM model (SD1.x,
    SDXL: a VE schedule) pass its training schedule, ``linear_start`` and ``linear_end`` (and ``num_timesteps``) as
    :class:`~edm_sampler.LegacyDDPMDiscretization` takes them, and the schedule is scaled by its top level (14.6146 for
    SD). ``linear_steps`` must be < ``n`` and the parameters must give a strictly decreasing schedule (a large
    ``threshold_noise`` can bend the quadratic part back up); otherwise ``get_sigmas`` raises. Computed in float64
    Python arithmetic, as ComfyUI (which then stores float32).
    """

    def __init__(
        self,
        threshold_noise: float = 0.025,
        linear_steps: int | None = None,
        linear_start: float | None = None,
        linear_end: float | None = None,
        num_timesteps: int = 1000,
    ):
        self.threshold_noise = checks.real("threshold_noise", threshold_noise, positive=True)
        if not self.threshold_noise < 1.0:
            raise ValueError(f"threshold_noise must be in (0, 1), got {threshold_noise!r}")
        self.linear_steps = None if linear_steps is None else checks.integer("linear_steps", linear_steps, minimum=1)
        self._ddpm: dict = {}
        self._sigma_max = 1.0
        if linear_start is not None or linear_end is not None:
            if linear_start is None or linear_end is None:
                raise ValueError(
                    "LinearQuadraticDiscretization: a DDPM model's schedule needs both linear_start and linear_end "
                    f"(SD1.x/SDXL: 0.00085 and 0.012), got linear_start={linear_start!r}, linear_end={linear_end!r}"
                )
            ddpm = LegacyDDPMDiscretization(linear_start, linear_end, num_timesteps)
            self._ddpm = {"linear_start": ddpm.linear_start, "linear_end": ddpm.linear_end}
            self._ddpm["num_timesteps"] = ddpm.num_timesteps
            self._sigma_max = float(ddpm.get_sigmas(1)[0])  # the top training level, ComfyUI's sigma_max

    @property
    def parametrization(self) -> str:
        """``"ve"`` for a DDPM model's schedule (``linear_start``, ``linear_end``), ``"flow"`` otherwise."""
        return "ve" if self._ddpm else "flow"

    def __repr__(self) -> str:
        params = {"threshold_noise": self.threshold_noise, "linear_steps": self.linear_steps, **self._ddpm}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"

    def get_sigmas(self, n: int) -> np.ndarray:
        if n == 1:
            return np.array([1.0])
        steps_linear = n // 2 if self.linear_steps is None else self.linear_steps
        if steps_linear >= n:
            raise ValueError(f"linear_steps must be < num_steps, got linear_steps={steps_linear}, num_steps={n}")
        tau = self.threshold_noise
        steps_quadratic = n - steps_linear
        diff = steps_linear - tau * n
        quad_coef = diff / (steps_linear * steps_quadratic**2)
        lin_coef = tau / steps_linear - 2 * diff / (steps_quadratic**2)
        const = quad_coef * (steps_linear**2)
        i_lin = np.arange(steps_linear, dtype=np.float64)
        i_quad = np.arange(steps_linear, n, dtype=np.float64)
        u = np.concatenate([i_lin * tau / steps_linear, quad_coef * (i_quad**2) + lin_coef * i_quad + const])
        sigmas = 1.0 - u
        bad = np.flatnonzero(np.diff(sigmas) >= 0.0)
        if bad.size or not sigmas[-1] > 0.0:
            raise ValueError(
                f"threshold_noise={tau!r} with linear_steps={steps_linear} does not give a strictly decreasing "
                f"schedule in (0, 1] for num_steps={n}; use a smaller threshold_noise or other linear_steps"
            )
        return sigmas * self._sigma_max
