"""A real MindSpore network behind sgm's preconditioning, with classifier-free guidance, in PyNative or graph mode.

python examples/real_network.py                 # PyNative, step by step
python examples/real_network.py --graph         # graph mode: the network and the glue compile once
python examples/real_network.py --graph-loop    # the whole loop as one compiled graph
"""

import argparse

import numpy as np

import mindspore as ms
from mindspore import Tensor

from edm_sampler import (
    Denoiser,
    DiscreteDenoiser,
    EDMScaling,
    EpsScaling,
    EulerEDMSampler,
    LegacyDDPMDiscretization,
    VanillaCFG,
    randn,
)
from edm_sampler.models.convnet import TinyConvNet


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", action="store_true", help="ms.set_context(mode=ms.GRAPH_MODE)")
    parser.add_argument("--graph-loop", action="store_true", help="graph_loop=True")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    if args.graph:
        ms.set_context(mode=ms.GRAPH_MODE)  # your application's choice; the library never sets it

    net = TinyConvNet()  # net(x, c_noise, {"vector": (B, 10)}): swap in your UNet
    labels = np.arange(4) % 10
    cond = {"vector": Tensor(np.eye(10, dtype=np.float32)[labels])}
    uc = {"vector": Tensor(np.zeros((4, 10), np.float32))}
    noise = randn((4, 4, args.size, args.size), generator=0)

    # An EDM-parameterised network: D = c_skip x + c_out net(c_in x, c_noise = ln(sigma)/4, cond).
    edm = Denoiser(EDMScaling()).bind(net)  # bind once and reuse: compiled cells live on it
    sampler = EulerEDMSampler(
        num_steps=args.steps, s_churn=10.0, guider_config=VanillaCFG(3.0), graph_loop=args.graph_loop
    )
    x_edm = sampler(edm, noise, cond, uc, generator=1)

    # An SD/SDXL-style network trained on 1000 discrete levels: eps prediction, c_noise = the level index.
    sdxl = DiscreteDenoiser(EpsScaling(), 1000, LegacyDDPMDiscretization()).bind(net)
    sdxl_sampler = EulerEDMSampler(
        num_steps=args.steps,
        discretization_config=LegacyDDPMDiscretization(),
        guider_config=VanillaCFG(5.0),
        graph_loop=args.graph_loop,
    )
    x_sdxl = sdxl_sampler(sdxl, noise, cond, uc, generator=1)

    print(f"EDM network:  {tuple(x_edm.shape)} in {sampler.last_nfe} evaluations")
    print(f"SDXL network: {tuple(x_sdxl.shape)} in {sdxl_sampler.last_nfe} evaluations")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return x_edm.asnumpy(), x_sdxl.asnumpy()


if __name__ == "__main__":
    main()
