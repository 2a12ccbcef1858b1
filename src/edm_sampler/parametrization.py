"""The two states a sampler can integrate, and the host-side float math that differs between them.

* ``"ve"`` (variance exploding; EDM, and eps/v models through their scalings): ``x = x0 + sigma * eps`` with sigma in
  ``(0, inf)``, so ``alpha = 1``;
* ``"flow"`` (rectified flow: SD3, Flux, Wan...): ``x = (1 - sigma) * x0 + sigma * eps`` with sigma in ``(0, 1]``,
  so ``alpha = 1 - sigma``; sampling starts at sigma = 1, where x is pure noise.

Both are driven by the same data estimate ``D(x, sigma) = E[x0 | x]``, and ``(x - D) / sigma`` is the ODE's
``dx/dsigma`` in both (for flow it is the velocity ``eps - x0``), so Euler, Heun and LMS steps are the same. What
differs, and lives here as Python-float math on the host:

* the half-log-SNR ``lambda = log(alpha / sigma)`` that exponential integrators (DPM-Solver, DPM++) step in, and the
  noise level at a given lambda;
* re-noising from ``sigma`` up to ``sigma_hat``: ``x_hat = a x + std z`` with ``a = alpha(sigma_hat) / alpha(sigma)``
  and ``std = sqrt(sigma_hat^2 - (a sigma)^2)``, which gives the exact marginal at ``sigma_hat`` (VE: ``a = 1``);
* EDM's churn level: VE raises sigma by the factor ``1 + gamma``; flow raises the VE-equivalent level
  ``sigma / (1 - sigma)`` by that factor, i.e. ``sigma_hat = sigma (1 + gamma) / (1 + gamma sigma)``, which never
  passes 1 (at sigma = 1 there is nothing to add);
* the ancestral split of a step into a deterministic step down to ``sigma_down`` and fresh noise back up to
  ``sigma_next`` (VE: k-diffusion's ``get_ancestral_step``; flow: the rectified-flow split, ``sigma_down =
  sigma_next (1 + (sigma_next / sigma - 1) eta)``, then the state is scaled by ``alpha_next / alpha_down`` and noise
  of std ``sqrt(sigma_next^2 - (alpha_next sigma_down / alpha_down)^2)`` is added);
* the initial state: VE scales unit noise by ``sqrt(1 + sigma_0^2)`` (sgm) or ``sigma_0`` (EDM); flow starts at
  ``sigma_0 * noise + (1 - sigma_0) * image`` (``image = 0`` for text-to-image).

Every VE formula here is written so that it computes exactly the floats the VE samplers computed before flow existed
(``alpha = 1.0`` multiplies exactly), so VE results do not change by a bit.
"""

from __future__ import annotations

import math

PARAMETRIZATIONS = ("ve", "flow")


class Parametrization:
    """Host-side math of one state parametrization; see the module docstring. Use :func:`get` for an instance."""

    name: str = ""
    max_sigma: float = math.inf

    def alpha(self, sigma: float) -> float:
        """The signal coefficient ``alpha(sigma)`` of ``x = alpha x0 + sigma eps``."""
        raise NotImplementedError

    def lambda_step(self, sigma: float, sigma_next: float) -> float:
        """``h = lambda(sigma_next) - lambda(sigma)``, the step in half-log-SNR (``inf`` from ``alpha = 0``)."""
        raise NotImplementedError

    def lambda_midpoint(self, sigma: float, sigma_to: float) -> float:
        """The noise level half-way between ``sigma`` and ``sigma_to`` in lambda."""
        raise NotImplementedError

    def lambda_fraction(self, sigma: float, sigma_to: float, r: float) -> float:
        """The noise level at ``lambda(sigma) + r (lambda(sigma_to) - lambda(sigma))``."""
        raise NotImplementedError

    def churn_level(self, sigma: float, gamma: float) -> float:
        """EDM's raised level ``sigma_hat`` for the churn factor ``gamma``."""
        raise NotImplementedError

    def renoise(self, sigma: float, sigma_hat: float) -> tuple[float, float]:
        """``(a, std)`` such that ``a x + std z`` moves a state at ``sigma`` to the marginal at ``sigma_hat``."""
        a = self.alpha(sigma_hat) / self.alpha(sigma)
        return a, math.sqrt(max(sigma_hat**2 - (a * sigma) ** 2, 0.0))

    def ancestral_step(self, sigma: float, sigma_next: float, eta: float) -> tuple[float, float, float]:
        """``(sigma_down, a, sigma_up)``: step deterministically to ``sigma_down``, then ``x <- a x + sigma_up z``
        lands on the marginal at ``sigma_next``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return repr(self.name)


class VE(Parametrization):
    """``x = x0 + sigma eps``: alpha = 1, lambda = -log(sigma)."""

    name = "ve"
    max_sigma = math.inf

    def alpha(self, sigma: float) -> float:
        return 1.0

    def lambda_step(self, sigma: float, sigma_next: float) -> float:
        return math.log(sigma / sigma_next)

    def lambda_midpoint(self, sigma: float, sigma_to: float) -> float:
        return math.sqrt(sigma * sigma_to)

    def lambda_fraction(self, sigma: float, sigma_to: float, r: float) -> float:
        return math.exp((1.0 - r) * math.log(sigma) + r * math.log(sigma_to))

    def churn_level(self, sigma: float, gamma: float) -> float:
        return sigma * (1.0 + gamma)

    def renoise(self, sigma: float, sigma_hat: float) -> tuple[float, float]:
        return 1.0, math.sqrt(sigma_hat**2 - sigma**2)

    def ancestral_step(self, sigma: float, sigma_next: float, eta: float) -> tuple[float, float, float]:
        # k-diffusion's get_ancestral_step: sigma_up = min(sigma_next, eta sqrt(sn^2 (s^2 - sn^2) / s^2))
        if not eta or sigma_next == 0:
            return sigma_next, 1.0, 0.0
        sigma_up = min(sigma_next, eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2))
        return math.sqrt(sigma_next**2 - sigma_up**2), 1.0, sigma_up


class Flow(Parametrization):
    """``x = (1 - sigma) x0 + sigma eps``: alpha = 1 - sigma, lambda = log((1 - sigma) / sigma), sigma <= 1."""

    name = "flow"
    max_sigma = 1.0

    def alpha(self, sigma: float) -> float:
        return 1.0 - sigma

    def lambda_step(self, sigma: float, sigma_next: float) -> float:
        if sigma >= 1.0:  # lambda(1) = -inf: the step from pure noise is infinitely long in lambda
            return math.inf
        return math.log((sigma * (1.0 - sigma_next)) / (sigma_next * (1.0 - sigma)))

    def lambda_midpoint(self, sigma: float, sigma_to: float) -> float:
        # exp(lambda_mid) = sqrt(exp(lambda_s) exp(lambda_t)); sigma = 1 / (1 + exp(lambda))
        root = math.sqrt(sigma * sigma_to)
        return root / (root + math.sqrt((1.0 - sigma) * (1.0 - sigma_to)))

    def lambda_fraction(self, sigma: float, sigma_to: float, r: float) -> float:
        if sigma >= 1.0:
            return 1.0
        lam = (1.0 - r) * math.log((1.0 - sigma) / sigma) + r * math.log((1.0 - sigma_to) / sigma_to)
        return 1.0 / (1.0 + math.exp(lam))

    def churn_level(self, sigma: float, gamma: float) -> float:
        # the VE-equivalent level sigma / (1 - sigma) raised by (1 + gamma), mapped back
        return sigma * (1.0 + gamma) / (1.0 + gamma * sigma)

    def ancestral_step(self, sigma: float, sigma_next: float, eta: float) -> tuple[float, float, float]:
        if not eta or sigma_next == 0:
            return sigma_next, 1.0, 0.0
        sigma_down = max(sigma_next * (1.0 + (sigma_next / sigma - 1.0) * eta), 0.0)
        a = (1.0 - sigma_next) / (1.0 - sigma_down)
        return sigma_down, a, math.sqrt(max(sigma_next**2 - (a * sigma_down) ** 2, 0.0))


_INSTANCES = {"ve": VE(), "flow": Flow()}


def get(name) -> Parametrization:
    """The parametrization named ``name`` (``"ve"`` or ``"flow"``); an instance is returned as it is."""
    if isinstance(name, Parametrization):
        return name
    if not isinstance(name, str) or name not in _INSTANCES:
        raise ValueError(f"parametrization must be one of {', '.join(map(repr, PARAMETRIZATIONS))}; got {name!r}")
    return _INSTANCES[name]


def of(denoiser) -> Parametrization:
    """The parametrization a denoiser declares (its ``parametrization`` attribute; ``"ve"`` when it has none)."""
    declared = getattr(denoiser, "parametrization", "ve")
    try:
        return get(declared)
    except ValueError as err:
        raise ValueError(f"{type(denoiser).__name__}.parametrization: {err}") from None
