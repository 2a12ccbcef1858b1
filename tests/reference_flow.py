"""Independent float64 NumPy references for every sampler under the flow-matching (rectified-flow) parametrization.

The state is ``x = alpha(sigma) x0 + sigma eps`` with ``alpha = 1 - sigma`` and sigma in (0, 1]; the half-log-SNR is
``lambda(sigma) = log(alpha / sigma)`` (``-inf`` at sigma = 1, ``+inf`` at sigma = 0) and the noise level at a given
lambda is ``1 / (1 + exp(lambda))``. The update equations are the VE ones of tests/reference.py and
tests/reference_sde.py rewritten with alpha (Lu et al. 2022, "DPM-Solver++", data-prediction form in lambda; Karras et
al. 2022 Algorithm 2 for churn, the churn level raised on the VE-equivalent scale ``sigma / alpha``; the rectified-flow
ancestral split ``sigma_down = sigma_next (1 + (sigma_next / sigma - 1) eta)``, ``a = alpha_next / alpha_down``,
``sigma_up = sqrt(sigma_next^2 - (a sigma_down)^2)``). A step whose lambda increment is infinite (from sigma = 1, where
alpha = 0, or to sigma = 0) falls back to the Euler step (``D`` itself on a step to 0), and it leaves no usable history
for the multistep methods. None of this is taken from the library's code.

Every reference also runs with ``param="ve"`` (alpha = 1, lambda = -log sigma, k-diffusion's ancestral split, churn
``sigma (1 + gamma)``), where it must reproduce the VE references; tests/test_flow_samplers.py checks that.

Interface as in tests/reference.py: ``ref(denoise, x, sigmas, **params, noises=(), trace=None, param="flow") ->
(x, nfe, draws)`` with ``denoise(x, sigma)`` float64, ``x`` already at ``sigmas[0]``, ``sigmas`` descending (the last
may be 0), ``noises`` consumed in order where the algorithm draws, ``draws`` the ``(sigma, sigma_next)`` pairs of the
draws and ``trace`` (if given) one dict per step: ``i``, ``sigma``, ``sigma_hat``, ``x`` (the state the step's first
model evaluation sees), ``denoised``.
"""

import math

import numpy as np
from reference import ancestral_step as ve_ancestral_step
from reference import lms_reference as _ve_lms_reference


class Param:
    """The host-side math of one parametrization (``"flow"`` or ``"ve"``)."""

    def __init__(self, name):
        if name not in ("flow", "ve"):
            raise ValueError(name)
        self.name = name
        self.flow = name == "flow"

    def alpha(self, sigma):
        return 1.0 - sigma if self.flow else 1.0

    def lam(self, sigma):
        if sigma == 0:
            return math.inf
        if self.flow and sigma >= 1.0:
            return -math.inf
        return math.log(self.alpha(sigma) / sigma)

    def sigma_at(self, lam):
        return 1.0 / (1.0 + math.exp(lam)) if self.flow else math.exp(-lam)

    def lam_step(self, sigma, sigma_to):
        """``lambda(sigma_to) - lambda(sigma)``; ``inf`` from sigma = 1 (flow) or to sigma = 0."""
        return self.lam(sigma_to) - self.lam(sigma)

    def lam_fraction(self, sigma, sigma_to, r):
        lam = self.lam(sigma)
        return self.sigma_at(lam + r * (self.lam(sigma_to) - lam))

    def churn(self, sigma, gamma):
        return sigma * (1 + gamma) / (1 + gamma * sigma) if self.flow else sigma * (1 + gamma)

    def split(self, sigma, sigma_next, eta):
        """``(sigma_down, a, sigma_up)``: deterministic step to sigma_down, then ``a x + sigma_up z``."""
        if not self.flow:
            down, up = ve_ancestral_step(sigma, sigma_next, eta)
            return down, 1.0, up
        if eta == 0 or sigma_next == 0:
            return sigma_next, 1.0, 0.0
        down = max(sigma_next * (1 + (sigma_next / sigma - 1) * eta), 0.0)
        a = (1 - sigma_next) / (1 - down)
        return down, a, math.sqrt(max(sigma_next**2 - (a * down) ** 2, 0.0))


def as_param(param):
    return param if isinstance(param, Param) else Param(param)


# ---------------------------------------------------------------------------------------------------------------------
# Exact flow denoisers (float64)
# ---------------------------------------------------------------------------------------------------------------------


def flow_gaussian(sigma_data):
    """``D(x, s) = a sd^2 x / (a^2 sd^2 + s^2)`` for data N(0, sd^2), a = 1 - s."""
    sd2 = sigma_data**2

    def denoise(x, sigma):
        a = 1.0 - sigma
        return x * (a * sd2 / (a * a * sd2 + sigma**2))

    return denoise


def flow_gmm_denoiser(means, stds, weights):
    """Posterior mean of an isotropic Gaussian mixture: given k, x ~ N(a mu_k, (a^2 s_k^2 + sigma^2) I)."""
    means = np.asarray(means, np.float64)
    var = np.asarray(stds, np.float64) ** 2 * np.ones(len(means))
    log_w = np.log(np.asarray(weights, np.float64) / np.sum(weights))
    dim = means.shape[1]

    def denoise(x, sigma):
        a = 1.0 - sigma
        total = a * a * var + sigma**2  # (K,)
        diff = x[:, None, :] - a * means[None]  # (B, K, dim)
        log_r = log_w - 0.5 * dim * np.log(total) - 0.5 * (diff**2).sum(-1) / total
        log_r -= log_r.max(1, keepdims=True)
        r = np.exp(log_r)
        r /= r.sum(1, keepdims=True)
        post = means[None] + (a * var / total)[None, :, None] * diff
        return (r[:, :, None] * post).sum(1)

    return denoise


# ---------------------------------------------------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------------------------------------------------


class _Run:
    def __init__(self, denoise, noises, trace):
        self.denoise, self.noises, self.trace = denoise, iter(noises), trace
        self.nfe, self.draws = 0, []

    def model(self, x, sigma):
        self.nfe += 1
        return self.denoise(x, float(sigma))

    def noise(self, sigma, sigma_next):
        self.draws.append((float(sigma), float(sigma_next)))
        return np.asarray(next(self.noises), np.float64)

    def report(self, i, sigma, sigma_hat, x, denoised):
        if self.trace is not None:
            self.trace.append(dict(i=i, sigma=float(sigma), sigma_hat=float(sigma_hat), x=x, denoised=denoised))


def _steps(sigmas):
    return [(i, float(sigmas[i]), float(sigmas[i + 1])) for i in range(len(sigmas) - 1)]


def _euler_to(x, sigma, denoised, sigma_to):
    """The Euler step of dx/dsigma = (x - D) / sigma; exactly D on a step to 0."""
    if sigma_to == 0:
        return denoised
    return x + (sigma_to - sigma) * (x - denoised) / sigma


def _ancestral_noise(run, x, sigma, sigma_next, a, sigma_up, s_noise):
    x = a * x
    if sigma_up > 0 and s_noise > 0:
        x = x + s_noise * sigma_up * run.noise(sigma, sigma_next)
    return x


# ---------------------------------------------------------------------------------------------------------------------
# Euler / Heun with churn (Karras Algorithm 2)
# ---------------------------------------------------------------------------------------------------------------------


def _churn(run, p, x, sigma, sigma_next, n, s_churn, s_tmin, s_tmax, s_noise):
    gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= sigma <= s_tmax else 0.0
    sigma_hat = p.churn(sigma, gamma)
    if sigma_hat > sigma:
        a = p.alpha(sigma_hat) / p.alpha(sigma)
        x = a * x + s_noise * math.sqrt(sigma_hat**2 - (a * sigma) ** 2) * run.noise(sigma, sigma_next)
    else:
        sigma_hat = sigma
    return x, sigma_hat


def edm_reference(
    denoise,
    x,
    sigmas,
    *,
    heun,
    s_churn=0.0,
    s_tmin=0.0,
    s_tmax=math.inf,
    s_noise=1.0,
    noises=(),
    trace=None,
    param="flow",
):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    n = len(sigmas) - 1
    for i, sigma, sigma_next in _steps(sigmas):
        x_hat, sigma_hat = _churn(run, p, x, sigma, sigma_next, n, s_churn, s_tmin, s_tmax, s_noise)
        denoised = run.model(x_hat, sigma_hat)
        run.report(i, sigma, sigma_hat, x_hat, denoised)
        d = (x_hat - denoised) / sigma_hat
        x = x_hat + (sigma_next - sigma_hat) * d
        if heun and sigma_next > 0:
            d_prime = (x - run.model(x, sigma_next)) / sigma_next
            x = x_hat + (sigma_next - sigma_hat) * 0.5 * (d + d_prime)
    return x, run.nfe, run.draws


# ---------------------------------------------------------------------------------------------------------------------
# Ancestral samplers
# ---------------------------------------------------------------------------------------------------------------------


def euler_ancestral_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, noises=(), trace=None, param="flow"):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    for i, sigma, sigma_next in _steps(sigmas):
        denoised = run.model(x, sigma)
        run.report(i, sigma, sigma, x, denoised)
        down, a, up = p.split(sigma, sigma_next, eta)
        x = _euler_to(x, sigma, denoised, down)
        x = _ancestral_noise(run, x, sigma, sigma_next, a, up, s_noise)
    return x, run.nfe, run.draws


def dpmpp_2s_ancestral_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, noises=(), trace=None, param="flow"):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    for i, sigma, sigma_next in _steps(sigmas):
        denoised = run.model(x, sigma)
        run.report(i, sigma, sigma, x, denoised)
        down, a, up = p.split(sigma, sigma_next, eta)
        h = p.lam_step(sigma, down)
        if math.isinf(h):
            x = _euler_to(x, sigma, denoised, down)
        else:
            sigma_mid = p.sigma_at(p.lam(sigma) + 0.5 * h)
            x_mid = (sigma_mid / sigma) * x - p.alpha(sigma_mid) * np.expm1(-0.5 * h) * denoised
            x = (down / sigma) * x - p.alpha(down) * np.expm1(-h) * run.model(x_mid, sigma_mid)
        x = _ancestral_noise(run, x, sigma, sigma_next, a, up, s_noise)
    return x, run.nfe, run.draws


def _dpm2_update(run, p, x, s, denoised, t):
    """DPM-Solver-2 from (x, s) with D(x, s) = denoised to t: Euler to the lambda midpoint, then the exponential
    step with the noise estimate there. Euler from alpha(s) = 0; D on a step to 0."""
    if t == 0:
        return denoised
    if p.alpha(s) == 0:
        return _euler_to(x, s, denoised, t)
    s_mid = p.lam_fraction(s, t, 0.5)
    x_mid = x + (s_mid - s) * (x - denoised) / s
    eps_mid = (x_mid - p.alpha(s_mid) * run.model(x_mid, s_mid)) / s_mid
    return (p.alpha(t) / p.alpha(s)) * x + (t - p.alpha(t) * s / p.alpha(s)) * eps_mid


def dpm2_reference(
    denoise,
    x,
    sigmas,
    *,
    s_churn=0.0,
    s_tmin=0.0,
    s_tmax=math.inf,
    s_noise=1.0,
    noises=(),
    trace=None,
    param="flow",
):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    n = len(sigmas) - 1
    for i, sigma, sigma_next in _steps(sigmas):
        x, sigma_hat = _churn(run, p, x, sigma, sigma_next, n, s_churn, s_tmin, s_tmax, s_noise)
        denoised = run.model(x, sigma_hat)
        run.report(i, sigma, sigma_hat, x, denoised)
        x = _dpm2_update(run, p, x, sigma_hat, denoised, sigma_next)
    return x, run.nfe, run.draws


def dpm2_ancestral_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, noises=(), trace=None, param="flow"):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    for i, sigma, sigma_next in _steps(sigmas):
        denoised = run.model(x, sigma)
        run.report(i, sigma, sigma, x, denoised)
        down, a, up = p.split(sigma, sigma_next, eta)
        x = _dpm2_update(run, p, x, sigma, denoised, down)
        x = _ancestral_noise(run, x, sigma, sigma_next, a, up, s_noise)
    return x, run.nfe, run.draws


# ---------------------------------------------------------------------------------------------------------------------
# Multistep (deterministic) and consistency
# ---------------------------------------------------------------------------------------------------------------------


def dpmpp_2m_reference(denoise, x, sigmas, *, noises=(), trace=None, param="flow"):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    old_denoised = h_last = None
    for i, sigma, sigma_next in _steps(sigmas):
        denoised = run.model(x, sigma)
        run.report(i, sigma, sigma, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        h = p.lam_step(sigma, sigma_next)
        if old_denoised is None or h_last is None or math.isinf(h_last):
            d = denoised
        else:
            r = h_last / h
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (sigma_next / sigma) * x - p.alpha(sigma_next) * np.expm1(-h) * d
        old_denoised, h_last = denoised, h
    return x, run.nfe, run.draws


def lms_reference(denoise, x, sigmas, *, order=4, noises=(), trace=None, param="flow"):
    """Unchanged from VE: the flow ODE is dx/dsigma = (x - D) / sigma as well (tests/reference.py)."""
    as_param(param)
    inner = [] if trace is not None else None
    out = _ve_lms_reference(denoise, x, sigmas, order=order, noises=noises, trace=inner)
    if trace is not None:
        trace.extend(dict(step, sigma_hat=step["sigma"]) for step in inner)
    return out


def lcm_reference(denoise, x, sigmas, *, noises=(), trace=None, param="flow"):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    for i, sigma, sigma_next in _steps(sigmas):
        denoised = run.model(x, sigma)
        run.report(i, sigma, sigma, x, denoised)
        if sigma_next == 0:
            x = denoised
        else:
            x = p.alpha(sigma_next) * denoised + sigma_next * run.noise(sigma, sigma_next)
    return x, run.nfe, run.draws


# ---------------------------------------------------------------------------------------------------------------------
# SDE samplers
# ---------------------------------------------------------------------------------------------------------------------


def dpmpp_sde_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, r=0.5, noises=(), trace=None, param="flow"):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)

    def first_order(x, s, estimate, t):
        down, a, up = p.split(s, t, eta)
        h = p.lam_step(s, down)
        if down == 0 or math.isinf(h):
            x = _euler_to(x, s, estimate, down)
        else:
            x = (down / s) * x - p.alpha(down) * np.expm1(-h) * estimate
        return _ancestral_noise(run, x, s, t, a, up, s_noise)

    for i, sigma, sigma_next in _steps(sigmas):
        denoised = run.model(x, sigma)
        run.report(i, sigma, sigma, x, denoised)
        if sigma_next == 0:
            x = denoised
        elif p.alpha(sigma) == 0:
            x = first_order(x, sigma, denoised, sigma_next)
        else:
            sigma_r = p.lam_fraction(sigma, sigma_next, r)
            fac = 1 / (2 * r)
            x_r = first_order(x, sigma, denoised, sigma_r)
            mixed = (1 - fac) * denoised + fac * run.model(x_r, sigma_r)
            x = first_order(x, sigma, mixed, sigma_next)
    return x, run.nfe, run.draws


def _sde_noise(run, x, sigma, sigma_next, h, eta, s_noise):
    if eta > 0 and s_noise > 0:
        x = x + s_noise * sigma_next * math.sqrt(-math.expm1(-2 * eta * h)) * run.noise(sigma, sigma_next)
    return x


def _sde_base(p, x, sigma, sigma_next, denoised, h, eta):
    """``(sn/s) exp(-eta h) x + alpha(sn) (1 - exp(-h (1 + eta))) D``, with its limit at sigma = 1 (h = inf)."""
    if math.isinf(h):
        x_weight = sigma_next / sigma if eta == 0 else 0.0
    else:
        x_weight = (sigma_next / sigma) * math.exp(-eta * h)
    return x_weight * x + p.alpha(sigma_next) * (-math.expm1(-h * (1 + eta))) * denoised


def dpmpp_2m_sde_reference(
    denoise, x, sigmas, *, eta=1.0, s_noise=1.0, solver_type="midpoint", noises=(), trace=None, param="flow"
):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    old_denoised = h_last = None  # h_last is None when there is no usable previous step
    for i, sigma, sigma_next in _steps(sigmas):
        denoised = run.model(x, sigma)
        run.report(i, sigma, sigma, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        h = p.lam_step(sigma, sigma_next)
        h_eta = h * (1 + eta)
        x = _sde_base(p, x, sigma, sigma_next, denoised, h, eta)
        if h_last is not None:
            if solver_type == "heun":
                c = np.expm1(-h_eta) / h_eta + 1
            else:
                c = 0.5 * (-np.expm1(-h_eta))
            x = x + p.alpha(sigma_next) * c * (h / h_last) * (denoised - old_denoised)
        x = _sde_noise(run, x, sigma, sigma_next, h, eta, s_noise)
        old_denoised, h_last = denoised, (None if math.isinf(h) else h)
    return x, run.nfe, run.draws


def dpmpp_3m_sde_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, noises=(), trace=None, param="flow"):
    p, run = as_param(param), _Run(denoise, noises, trace)
    x = np.asarray(x, np.float64)
    history = []  # (denoised, h) of the usable previous steps, newest first, at most 2
    for i, sigma, sigma_next in _steps(sigmas):
        denoised = run.model(x, sigma)
        run.report(i, sigma, sigma, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        h = p.lam_step(sigma, sigma_next)
        h_eta = h * (1 + eta)
        x = _sde_base(p, x, sigma, sigma_next, denoised, h, eta)
        if history:
            phi_2 = np.expm1(-h_eta) / h_eta + 1
            if len(history) == 2:
                (denoised_1, h_1), (denoised_2, h_2) = history
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + p.alpha(sigma_next) * (phi_2 * d1 - phi_3 * d2)
            else:
                denoised_1, h_1 = history[0]
                x = x + p.alpha(sigma_next) * phi_2 * (denoised - denoised_1) * (h / h_1)
        x = _sde_noise(run, x, sigma, sigma_next, h, eta, s_noise)
        history = [] if math.isinf(h) else [(denoised, h)] + history[:1]
    return x, run.nfe, run.draws
