"""Write your own sampler and guider, register them, and use them from YAML.

A sampler is a short class: ``plan`` computes each step's coefficients on the host (Python floats, the noise levels
where the model is evaluated as ``Level``), and the static ``step`` is the tensor math, where ``m.denoise(x, level)``
is one guided model evaluation and ``m.report(x, denoised)`` feeds the callback. The same ``step`` runs eagerly and
inside the whole-loop graph (``graph_loop=True``). A guider provides the pieces of one guided evaluation: the
model's batch (``expand``), the conditioning batch (``model_cond``), the host-side scale (``scale_at``) and the
combination (``combine``, pure tensor math).

    python examples/custom_plugins.py
"""

import argparse

from mindspore import ops

from edm_sampler import NOT_EVALUATED, BaseDiffusionSampler, Level, VanillaCFG, load_sampler, randn, register
from edm_sampler.models import GaussianDenoiser


class MidpointSampler(BaseDiffusionSampler):
    """The explicit midpoint rule on the probability-flow ODE dx/dsigma = (x - D) / sigma (2 evaluations per step,
    second order; the last step, to sigma = 0, is an Euler step)."""

    def plan(self, p, sigmas, noise):
        for i in range(len(sigmas) - 1):
            sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
            midpoint = sigma_next > 0
            sigma_mid = (sigma + sigma_next) / 2
            yield {
                "at": Level(sigma),
                "midpoint": midpoint,
                "at_mid": Level(sigma_mid) if midpoint else NOT_EVALUATED,
                "inv_sigma": 1 / sigma,
                "half_dt": sigma_mid - sigma,
                "inv_mid": 1 / sigma_mid,
                "dt": sigma_next - sigma,
            }

    @staticmethod
    def step(m, x, state, c):
        denoised = m.denoise(x, c["at"])
        m.report(x, denoised)
        d = (x - denoised) * c["inv_sigma"]
        if c["midpoint"]:
            x_mid = x + d * c["half_dt"]
            d = (x_mid - m.denoise(x_mid, c["at_mid"])) * c["inv_mid"]
        return x + d * c["dt"], state


class ClampedCFG(VanillaCFG):
    """CFG whose result is clamped to [-1, 1] (static thresholding)."""

    @staticmethod
    def combine(denoised, scale):
        uncond, cond = ops.chunk(denoised, 2)
        return ops.clamp(uncond + (cond - uncond) * scale, -1.0, 1.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
