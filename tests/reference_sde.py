"""Independent float64 NumPy references for DPM-2, DPM-2 ancestral and the DPM-Solver++ SDE samplers.

Written from the update equations (Karras et al. 2022 Algorithm 2 for churn; Lu et al. 2022 "DPM-Solver++" in
``t = -log sigma`` with ``sigma(t) = exp(-t)``, and k-diffusion's ``sample_dpm_2``, ``sample_dpm_2_ancestral``,
``sample_dpmpp_sde``, ``sample_dpmpp_2m_sde``, ``sample_dpmpp_3m_sde`` for the choices the papers leave open), with
this library's conventions: ``x`` is already at sigma_0, noise is drawn only where it is added (churn when gamma > 0,
ancestral noise when sigma_up > 0, SDE noise when eta > 0 and s_noise > 0), the step to sigma = 0 returns D, and
DPM-2 ancestral adds sigma_up noise also when sigma_down = 0 before the last step.

Same interface as tests/reference.py: ``ref(denoise, x, sigmas, **params, noises=(), trace=None) -> (x, nfe, draws)``
with ``draws`` the ``(sigma, sigma_next)`` pairs of the noise calls, in order.
"""

import numpy as np
from reference import ancestral_step


def sigma_fn(t):
    return np.exp(-t)


def t_fn(sigma):
    return -np.log(sigma)


class _Counter:
    def __init__(self, denoise, noises):
        self.denoise, self.noises, self.nfe, self.draws = denoise, iter(noises), 0, []

    def model(self, x, sigma):
        self.nfe += 1
        return self.denoise(x, float(sigma))

    def noise(self, sigma, sigma_next):
        self.draws.append((float(sigma), float(sigma_next)))
        return np.asarray(next(self.noises), np.float64)


def _dpm2_update(c, x, sigma, denoised, sigma_to):
    """DPM-Solver-2 in sigma: Euler to the log-midpoint, the full step with the slope there."""
    sigma_mid = np.exp(0.5 * (np.log(sigma) + np.log(sigma_to)))
    d = (x - denoised) / sigma
    x_2 = x + d * (sigma_mid - sigma)
    d_2 = (x_2 - c.model(x_2, sigma_mid)) / sigma_mid
    return x + d_2 * (sigma_to - sigma)


def dpm2_reference(denoise, x, sigmas, *, s_churn=0.0, s_tmin=0.0, s_tmax=np.inf, s_noise=1.0, noises=(), trace=None):
    c = _Counter(denoise, noises)
    x = np.asarray(x, np.float64)
    n = len(sigmas) - 1
    for i in range(n):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        gamma = min(s_churn / n, 2**0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (gamma + 1)
        if gamma > 0:
            x = x + c.noise(sigma, sigma_next) * s_noise * np.sqrt(sigma_hat**2 - sigma**2)
        denoised = c.model(x, sigma_hat)
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, sigma_hat=sigma_hat, x=x, denoised=denoised))
        if sigma_next == 0:
            x = denoised
        else:
            x = _dpm2_update(c, x, sigma_hat, denoised, sigma_next)
    return x, c.nfe, c.draws


def dpm2_ancestral_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, noises=(), trace=None):
    c = _Counter(denoise, noises)
    x = np.asarray(x, np.float64)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = c.model(x, sigma)
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, sigma_hat=sigma, x=x, denoised=denoised))
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        x = denoised if sigma_down == 0 else _dpm2_update(c, x, sigma, denoised, sigma_down)
        if sigma_up > 0 and s_noise > 0:
            x = x + c.noise(sigma, sigma_next) * s_noise * sigma_up
    return x, c.nfe, c.draws


def dpmpp_sde_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, r=0.5, noises=(), trace=None):
    c = _Counter(denoise, noises)
    x = np.asarray(x, np.float64)

    def first_order(x, t, denoised, t_to):
        """DPM-Solver++ first order from t towards t_to, through the ancestral split of eta."""
        sd, su = ancestral_step(sigma_fn(t), sigma_fn(t_to), eta)
        if sd == 0:
            x_new = denoised
        else:
            t_d = t_fn(sd)
            x_new = (sigma_fn(t_d) / sigma_fn(t)) * x - np.expm1(t - t_d) * denoised
        if su > 0 and s_noise > 0:
            x_new = x_new + c.noise(sigma_fn(t), sigma_fn(t_to)) * s_noise * su
        return x_new

    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = c.model(x, sigma)
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, sigma_hat=sigma, x=x, denoised=denoised))
        if sigma_next == 0:
            x = denoised
            continue
        t, t_next = t_fn(sigma), t_fn(sigma_next)
        h = t_next - t
        s = t + h * r
        fac = 1 / (2 * r)
        x_2 = first_order(x, t, denoised, s)
        denoised_2 = c.model(x_2, sigma_fn(s))
        x = first_order(x, t, (1 - fac) * denoised + fac * denoised_2, t_next)
    return x, c.nfe, c.draws


def dpmpp_2m_sde_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, solver_type="midpoint", noises=(), trace=None):
    c = _Counter(denoise, noises)
    x = np.asarray(x, np.float64)
    old_denoised = h_last = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = c.model(x, sigma)
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, sigma_hat=sigma, x=x, denoised=denoised))
        if sigma_next == 0:
            x = denoised
            continue
        h = t_fn(sigma_next) - t_fn(sigma)
        eta_h = eta * h
        x = (sigma_next / sigma) * np.exp(-eta_h) * x + (-np.expm1(-h - eta_h)) * denoised
        if old_denoised is not None:
            r = h_last / h
            if solver_type == "heun":
                x = x + ((-np.expm1(-h - eta_h)) / (-h - eta_h) + 1) * (1 / r) * (denoised - old_denoised)
            else:
                x = x + 0.5 * (-np.expm1(-h - eta_h)) * (1 / r) * (denoised - old_denoised)
        if eta > 0 and s_noise > 0:
            x = x + c.noise(sigma, sigma_next) * sigma_next * np.sqrt(-np.expm1(-2 * eta_h)) * s_noise
        old_denoised, h_last = denoised, h
    return x, c.nfe, c.draws


def dpmpp_3m_sde_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, noises=(), trace=None):
    c = _Counter(denoise, noises)
    x = np.asarray(x, np.float64)
    denoised_1 = denoised_2 = h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = c.model(x, sigma)
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, sigma_hat=sigma, x=x, denoised=denoised))
        if sigma_next == 0:
            x = denoised
            continue
        h = t_fn(sigma_next) - t_fn(sigma)
        h_eta = h * (eta + 1)
        x = np.exp(-h_eta) * x + (-np.expm1(-h_eta)) * denoised
        phi_2 = np.expm1(-h_eta) / h_eta + 1
        if h_2 is not None:
            r0, r1 = h_1 / h, h_2 / h
            d1_0 = (denoised - denoised_1) / r0
            d1_1 = (denoised_1 - denoised_2) / r1
            d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            x = x + phi_2 * d1 - (phi_2 / h_eta - 0.5) * d2
        elif h_1 is not None:
            x = x + phi_2 * (denoised - denoised_1) / (h_1 / h)
        if eta > 0 and s_noise > 0:
            x = x + c.noise(sigma, sigma_next) * sigma_next * np.sqrt(-np.expm1(-2 * h * eta)) * s_noise
        denoised_1, denoised_2, h_1, h_2 = denoised, denoised_1, h, h_1
    return x, c.nfe, c.draws
