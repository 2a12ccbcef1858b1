"""Independent float64 NumPy references, written from the published equations (not from the library's code).

* ``karras_sigmas``: Karras et al. (2022) eq. 5 with a trailing zero.
* ``edm_reference``: Algorithm 2 of Karras et al. (2022) (NVlabs/edm ``edm_sampler`` structure) with sgm's
  conventions: unit noise scaled by sqrt(1 + sigma_0^2), gamma = min(s_churn / N, sqrt(2) - 1) inside
  [s_tmin, s_tmax], churn noise drawn only when gamma > 0, Heun correction skipped on the step to sigma = 0.
* ``gmm_denoiser``: the exact posterior mean of an isotropic Gaussian mixture under Gaussian noise.
* ``ancestral_step``, ``euler_ancestral_reference``, ``dpmpp_2s_ancestral_reference``, ``dpmpp_2m_reference``,
  ``lms_coefficients_reference``, ``lms_reference``: k-diffusion's / sgm's ancestral Euler, DPM++(2S) ancestral,
  DPM++(2M) and linear multistep samplers (Lu et al. 2022, "DPM-Solver++"; Karras et al. 2022 and k-diffusion for
  the ancestral split), with this library's conventions: ``x`` is already at sigma_0, ancestral noise is drawn only
  when sigma_up > 0, DPM++(2M) returns D exactly on the step to sigma = 0, and LMS applies one update per step with
  the Lagrange basis integrated exactly (numpy.polynomial, no quadrature).

The sampler references take a float64 denoiser ``D(x, sigma)``, the start ``x``, the sigmas (descending, last 0) and,
for the ancestral ones, the injected noise arrays, consumed in order exactly where the algorithm draws. They return
``(x, nfe, draws)`` with ``draws`` the list of ``(sigma, sigma_next)`` pairs at which noise was drawn; a ``trace`` list,
if given, receives one dict per step (``i``, ``sigma``, ``x`` before the step, ``denoised`` and sampler extras).
"""

import numpy as np


def karras_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    i = np.arange(n, dtype=np.float64)
    t = (sigma_max ** (1 / rho) + i / max(n - 1, 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return np.concatenate([t, [0.0]])


def edm_reference(denoise, x_unit, sigmas, *, heun, s_churn=0.0, s_tmin=0.0, s_tmax=np.inf, s_noise=1.0, noises=()):
    """Returns (x, nfe, number of noise draws used)."""
    noises = iter(noises)
    num_steps = len(sigmas) - 1
    x_next = np.asarray(x_unit, np.float64) * np.sqrt(1.0 + sigmas[0] ** 2)
    nfe = draws = 0
    for i in range(num_steps):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        x_cur = x_next
        gamma = min(s_churn / num_steps, np.sqrt(2) - 1) if s_tmin <= t_cur <= s_tmax else 0.0
        t_hat = t_cur + gamma * t_cur
        if gamma > 0:
            x_hat = x_cur + np.sqrt(t_hat**2 - t_cur**2) * s_noise * next(noises)
            draws += 1
        else:
            x_hat = x_cur
        d_cur = (x_hat - denoise(x_hat, t_hat)) / t_hat
        nfe += 1
        x_next = x_hat + (t_next - t_hat) * d_cur
        if heun and t_next > 0:
            d_prime = (x_next - denoise(x_next, t_next)) / t_next
            nfe += 1
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next, nfe, draws


def gmm_denoiser(means, stds, weights):
    means = np.asarray(means, np.float64)
    var = np.asarray(stds, np.float64) ** 2 * np.ones(len(means))
    log_w = np.log(np.asarray(weights, np.float64) / np.sum(weights))
    dim = means.shape[1]

    def denoise(x, sigma):
        total = var + sigma**2  # (K,)
        diff = x[:, None, :] - means[None]  # (B, K, dim)
        log_r = log_w - 0.5 * dim * np.log(total) - 0.5 * (diff**2).sum(-1) / total
        log_r -= log_r.max(1, keepdims=True)
        r = np.exp(log_r)
        r /= r.sum(1, keepdims=True)
        post = means[None] + (var / total)[None, :, None] * diff
        return (r[:, :, None] * post).sum(1)

    return denoise


def ancestral_step(sigma_from, sigma_to, eta=1.0):
    """(sigma_down, sigma_up) with sigma_down^2 + sigma_up^2 = sigma_to^2; sigma_up = 0 when eta = 0 or sigma_to = 0."""
    sigma_from, sigma_to, eta = float(sigma_from), float(sigma_to), float(eta)
    if eta == 0.0 or sigma_to == 0.0:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * np.sqrt(sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2))
    return float(np.sqrt(sigma_to**2 - sigma_up**2)), float(sigma_up)


def _add_ancestral_noise(x, sigma, sigma_next, sigma_up, s_noise, noises, draws):
    if sigma_up > 0:
        draws.append((float(sigma), float(sigma_next)))
        x = x + s_noise * sigma_up * np.asarray(next(noises), np.float64)
    return x


def euler_ancestral_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, noises=(), trace=None):
    """Euler step to sigma_down, then noise of std s_noise * sigma_up."""
    noises, draws, nfe = iter(noises), [], 0
    x = np.asarray(x, np.float64)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = denoise(x, sigma)
        nfe += 1
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, x=x, denoised=denoised))
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        x = x + (sigma_down - sigma) * (x - denoised) / sigma
        x = _add_ancestral_noise(x, sigma, sigma_next, sigma_up, s_noise, noises, draws)
    return x, nfe, draws


def dpmpp_2s_ancestral_reference(denoise, x, sigmas, *, eta=1.0, s_noise=1.0, noises=(), trace=None):
    """DPM-Solver++(2S) from sigma to sigma_down in t = -log(sigma) (midpoint s = t + h/2), then ancestral noise.

    When sigma_down = 0 the step is the Euler step to 0 (which lands on D) and the second evaluation is skipped.
    """
    noises, draws, nfe = iter(noises), [], 0
    x = np.asarray(x, np.float64)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = denoise(x, sigma)
        nfe += 1
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, x=x, denoised=denoised))
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        if sigma_down == 0:
            x = x + (sigma_down - sigma) * (x - denoised) / sigma
        else:
            t, t_next = -np.log(sigma), -np.log(sigma_down)
            h = t_next - t
            sigma_s = np.exp(-(t + 0.5 * h))
            x_2 = (sigma_s / sigma) * x - np.expm1(-0.5 * h) * denoised
            denoised_2 = denoise(x_2, sigma_s)
            nfe += 1
            x = (sigma_down / sigma) * x - np.expm1(-h) * denoised_2
        x = _add_ancestral_noise(x, sigma, sigma_next, sigma_up, s_noise, noises, draws)
    return x, nfe, draws


def dpmpp_2m_reference(denoise, x, sigmas, *, noises=(), trace=None):
    """DPM-Solver++(2M): first-order on the first step, D exactly on the step to sigma = 0. Draws no noise.

    ``trace`` entries carry ``r`` = h_last / h (None on the first step and on the step to 0).
    """
    nfe = 0
    x = np.asarray(x, np.float64)
    old_denoised = h_last = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = denoise(x, sigma)
        nfe += 1
        r = None
        if sigma_next == 0:
            x_new = denoised
        else:
            h = np.log(sigma / sigma_next)
            if old_denoised is None:
                d = denoised
            else:
                r = h_last / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x_new = (sigma_next / sigma) * x - np.expm1(-h) * d
            h_last = h
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, x=x, denoised=denoised, r=r))
        x, old_denoised = x_new, denoised
    return x, nfe, []


def lms_coefficients_reference(sigmas, i, order):
    """c_j = integral from sigma_i to sigma_{i+1} of the Lagrange basis polynomial of node sigma_{i-j}.

    The nodes are sigma_i, ..., sigma_{i-cur_order+1} with cur_order = min(i + 1, order); newest first. The polynomial
    is built and integrated exactly with numpy.polynomial in the shifted variable u = tau - sigma_i.
    """
    sigmas = np.asarray(sigmas, np.float64)
    cur_order = min(i + 1, order)
    nodes = sigmas[i - np.arange(cur_order)] - sigmas[i]
    upper = sigmas[i + 1] - sigmas[i]
    coeffs = []
    for j in range(cur_order):
        others = np.delete(nodes, j)
        numerator = np.polynomial.Polynomial.fromroots(others) if len(others) else np.polynomial.Polynomial([1.0])
        basis = numerator / np.prod(nodes[j] - others)
        antiderivative = basis.integ()
        coeffs.append(antiderivative(upper) - antiderivative(0.0))
    return np.array(coeffs)


def lms_reference(denoise, x, sigmas, *, order=4, noises=(), trace=None):
    """Linear multistep in sigma on d = (x - D) / sigma, one update per step with the last ``order`` derivatives.

    Draws no noise."""
    nfe, ds = 0, []
    x = np.asarray(x, np.float64)
    for i in range(len(sigmas) - 1):
        sigma = float(sigmas[i])
        denoised = denoise(x, sigma)
        nfe += 1
        ds = (ds + [(x - denoised) / sigma])[-order:]
        coeffs = lms_coefficients_reference(sigmas, i, order)
        if trace is not None:
            trace.append(dict(i=i, sigma=sigma, x=x, denoised=denoised, coeffs=coeffs))
        x = x + sum(c * d for c, d in zip(coeffs, reversed(ds)))
    return x, nfe, []
