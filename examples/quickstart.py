"""Quickstart: sample with a plain callable denoiser D(x, sigma, cond).

python examples/quickstart.py --steps 18
"""

import argparse

import numpy as np

from edm_sampler import HeunEDMSampler, randn


def denoiser(x, sigma, cond):
    """The ideal denoiser of N(0, 0.5^2 I) data; sigma arrives as a float32 Tensor of shape (B,)."""
    return x * (0.25 / (sigma**2 + 0.25)).reshape(-1, 1, 1, 1)


def main(argv=None):
    args = _parse(argv)
    sampler = HeunEDMSampler(num_steps=args.steps)  # EDM schedule: sigma in [0.002, 80], rho = 7
    noise = randn((args.batch, 3, 8, 8), generator=0)  # unit noise; the sampler scales it to sigma_0
    x0 = sampler(denoiser, noise, generator=np.random.default_rng(1))
    std = float(x0.asnumpy().std())
    print(f"{sampler.last_nfe} model evaluations, sample std {std:.3f} (data std 0.5)")
    return std


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=18)
    parser.add_argument("--batch", type=int, default=64)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
