"""Build a sampler from YAML: a shipped config by name, an sgm file, a mindone short form, or a dict.

python examples/yaml_config.py
"""

import argparse

from edm_sampler import load_sampler, randn
from edm_sampler.models import GaussianDenoiser

SGM_BLOCK = """
sampler_config:
  target: sgm.modules.diffusionmodules.sampling.DPMPP2MSampler
  params:
    num_steps: 20
    discretization_config:
      target: sgm.modules.diffusionmodules.discretizer.EDMDiscretization
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="override every config's num_steps")
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    samplers = {
        "shipped heun_edm": load_sampler("heun_edm"),
        "sgm DPM++ 2M": load_sampler(OmegaConf.create(SGM_BLOCK)),
        "mindone short form": load_sampler({"sampler": {"sampler": "EulerAncestralSampler", "steps": 30}}),
        "dict": load_sampler({"target": "lms", "params": {"num_steps": 20, "order": 3}}),
    }
    x = randn((256, 8), generator=0)
    stds = {}
    for name, sampler in samplers.items():
        # cond/uc are dicts of conditioning tensors; this model needs none (the CFG configs get empty ones)
        out = sampler(GaussianDenoiser(0.5), x, cond={}, uc={}, num_steps=args.steps, generator=1)
        stds[name] = float(out.asnumpy().std())
        print(f"{name:20s} {sampler!r}: NFE {sampler.last_nfe}, std {stds[name]:.3f}")
    return stds


if __name__ == "__main__":
    main()
