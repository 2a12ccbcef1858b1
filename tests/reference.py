"""Independent float64 NumPy references, written from the published equations (not from the library's code).

* ``karras_sigmas``: Karras et al. (2022) eq. 5 with a trailing zero.
* ``edm_reference``: Algorithm 2 of Karras et al. (2022) (NVlabs/edm ``edm_sampler`` structure) with sgm's
  conventions: unit noise scaled by sqrt(1 + sigma_0^2), gamma = min(s_churn / N, sqrt(2) - 1) inside
  [s_tmin, s_tmax], churn noise drawn only when gamma > 0, Heun correction skipped on the step to sigma = 0.
* ``gmm_denoiser``: the exact posterior mean of an isotropic Gaussian mixture under Gaussian noise.
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
