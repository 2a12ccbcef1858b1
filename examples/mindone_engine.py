"""Drop edm_sampler into a mindone SDXL pipeline: three lines change.

In mindone's ``sample`` code (gm/models/diffusion.py), where it does

    sampler, num_rows, num_cols = init_sampling(steps=40, sampler="EulerEDMSampler", guidance_scale=5.0)
    samples_z = sampler(model, randn, cond=c, uc=uc)

write instead

    from edm_sampler import load_sampler                                                   # 1
    sampler = load_sampler({"sampler": {"steps": 40, "sampler": "EulerEDMSampler",        # 2
                                        "guidance_scale": 5.0}})
    samples_z = sampler(model, randn, cond=c, uc=uc, generator=seed)                      # 3: explicit randomness

The engine is passed as it is: an object with ``.model``, ``.denoiser`` (returning the four scalings) and
``.openai_input_warpper`` is recognised. This script runs that with a stand-in engine around a small network.

    python examples/mindone_engine.py
"""

import argparse

import numpy as np

from mindspore import Tensor, nn

from edm_sampler import EDMScaling, load_sampler, randn
from edm_sampler.models.convnet import TinyConvNet


class OpenAIWrapper(nn.Cell):
    """mindone's UNet call: model(x, timesteps, context=..., y=...)."""

    def __init__(self):
        super().__init__()
        self.net = TinyConvNet()

    def construct(self, x, timesteps, y=None):
        return self.net(x, timesteps, {"vector": y})


class Engine:
    """The three attributes of mindone's DiffusionEngine that samplers use."""

    def __init__(self):
        self.model = OpenAIWrapper()

    def denoiser(self, sigma, ndim):  # mindone's Denoiser.construct returns the scalings
        c_skip, c_out, c_in, c_noise = EDMScaling()(sigma)
        shape = (-1,) + (1,) * (ndim - 1)
        return c_skip.reshape(shape), c_out.reshape(shape), c_in.reshape(shape), c_noise

    def openai_input_warpper(self, cond):
        return {"y": cond["vector"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    sampler = load_sampler({"sampler": {"steps": args.steps, "sampler": "EulerEDMSampler", "guidance_scale": 5.0}})
    c = {"vector": Tensor(np.eye(10, dtype=np.float32)[[1, 2]])}
    uc = {"vector": Tensor(np.zeros((2, 10), np.float32))}
    samples_z = sampler(Engine(), randn((2, 4, 16, 16), generator=0), cond=c, uc=uc, generator=7)
    print(f"{sampler!r}: {tuple(samples_z.shape)}, NFE {sampler.last_nfe}")
    return samples_z.asnumpy()


if __name__ == "__main__":
    main()
