"""Write your own sampler and guider, register them, and use them from YAML.

A sampler is a short class whose ``step`` reads like its paper: ``run.denoise(x, sigma)`` is one guided model
evaluation, ``run.noise(sigma, sigma_next)`` one noise draw, ``run.report(...)`` feeds the callback. A guider
provides the pieces of one guided evaluation: the model's batch (``expand``), the conditioning batch
(``model_cond``), the host-side scale (``scale_at``) and the combination (``combine``, pure tensor math).

    python examples/custom_plugins.py
"""

import argparse

from mindspore import ops

from edm_sampler import SingleStepDiffusionSampler, VanillaCFG, load_sampler, randn, register
from edm_sampler.functional import euler_step, to_d
from edm_sampler.models import GaussianDenoiser


class MidpointSampler(SingleStepDiffusionSampler):
    """The explicit midpoint rule on the probability-flow ODE (2 evaluations per step, second order)."""

    def step(self, run, x, sigma, sigma_next):
        denoised = run.denoise(x, sigma)
        run.report(x, sigma, sigma, denoised)
        d = to_d(x, sigma, denoised)
        if sigma_next == 0:
            return euler_step(x, d, sigma_next - sigma)
        sigma_mid = (sigma + sigma_next) / 2
        x_mid = euler_step(x, d, sigma_mid - sigma)
        return euler_step(x, to_d(x_mid, sigma_mid, run.denoise(x_mid, sigma_mid)), sigma_next - sigma)


class ClampedCFG(VanillaCFG):
    """CFG whose result is clamped to [-1, 1] (static thresholding)."""

    @staticmethod
    def combine(denoised, scale):
        uncond, cond = ops.chunk(denoised, 2)
        return ops.clamp(uncond + (cond - uncond) * scale, -1.0, 1.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    for name, plugin in (("midpoint", MidpointSampler), ("clamped_cfg", ClampedCFG)):
        try:
            register(name, plugin)
        except Exception:  # already registered when run twice in one process
            pass
    sampler = load_sampler(
        {
            "target": "midpoint",
            "params": {"num_steps": args.steps, "guider_config": {"target": "clamped_cfg", "params": {"scale": 3.0}}},
        }
    )
    x = randn((64, 4), generator=0)
    out = sampler(GaussianDenoiser(0.5), x, cond={}, uc={}, generator=1).asnumpy()
    names = f"{type(sampler).__name__} + {type(sampler.guider).__name__}"
    print(f"{names}: NFE {sampler.last_nfe}, max |x| {abs(out).max():.3f}")
    return out


if __name__ == "__main__":
    main()
