"""diffusers scheduler configs, used as they ship: SDXL's (EulerDiscreteScheduler, an eps UNet on the VP latent) and
Flux's (FlowMatchEulerDiscreteScheduler with dynamic shifting, a velocity transformer), each driving a network called
exactly as the diffusers pipeline calls it: ``net(x_in, timestep, cond)``.

python examples/diffusers_config.py                  # 20 digits per config, 12 steps, CFG 2
python examples/diffusers_config.py --steps 25 --out-dir .

No weights can be downloaded here, so both networks are exact: ``nn.Cell``s that compute, as ops, what a perfectly
trained model of the built-in glyph dataset would output in that model's own convention:

* ``ExactGlyphEps`` (SDXL-style): the VP latent ``x_in = x_t`` and an integer or fractional ``timestep`` in;
  ``sigma`` read off the training table, ``x = x_in sqrt(1 + sigma^2)`` and ``eps = (x - D(x, sigma)) / sigma`` out;
* ``ExactGlyphVelocity`` (Flux-style, from ``flow_model.py``): the flow state and ``timestep = sigma * 1000`` in,
  the velocity out.

A real SDXL UNet or Flux transformer drops in where they are; nothing else changes.
"""

import argparse
from pathlib import Path

import numpy as np
from flow_model import ExactGlyphVelocity, sample_digits

import mindspore as ms
from mindspore import Tensor, nn, ops

import edm_sampler
from edm_sampler.cli import save_grid
from edm_sampler.diffusers_schedulers import load_scheduler
from edm_sampler.models.glyphs import NUM_CLASSES, GlyphData


class ExactGlyphEps(nn.Cell):
    """``eps(x_in, timestep, cond)``: the exact noise prediction of the glyph data for a DDPM-trained UNet.

    ``sigmas`` is the training table (``sqrt((1 - a_t) / a_t)`` for ``t = 0 .. T - 1``); a fractional timestep is read
    off it by linear interpolation, as diffusers' Euler schedulers pick their sigmas.
    """

    def __init__(self, data: GlyphData, sigmas: np.ndarray):
        super().__init__()
        self.velocity = ExactGlyphVelocity(data)  # its posterior math, reused at alpha = 1 (the VE state)
        self.sigmas = Tensor(sigmas.astype(np.float32))

    def construct(self, x_in, timestep, cond):
        batch = x_in.shape[0]
        low = ops.clamp(ops.floor(timestep), 0, self.sigmas.shape[0] - 2).astype(ms.int32)
        w = (timestep - low.astype(ms.float32)).reshape(batch, 1, 1, 1)
        sigma = self.sigmas[low].reshape(batch, 1, 1, 1) * (1 - w) + self.sigmas[low + 1].reshape(batch, 1, 1, 1) * w
        x = x_in * ops.sqrt(1 + sigma * sigma)
        # the flow state at s = sigma / (1 + sigma) is x / (1 + sigma): its velocity v gives D = x_flow - s v
        s = sigma / (1 + sigma)
        x_flow = x / (1 + sigma)
        denoised = x_flow - s * self.velocity(x_flow, (s * 1000.0).reshape(batch), cond)
        return (x - denoised) / sigma


def main(argv=None):
    args = _parse(argv)
    data = GlyphData()
    # SDXL: the config as the model folder ships it; its table gives the network's sigma for each timestep
    sdxl = load_scheduler("sdxl_base")
    unet = ExactGlyphEps(data, sdxl.denoiser.scaling.table.sigmas)
    # Flux: dynamic shifting needs the image size (the pipelines compute mu from it) and uses the pipeline's sigmas
    seq_len = (data.shape[1] // 2) * (data.shape[2] // 2)  # Flux packs 2x2 latent patches: one token each
    runs = {
        "sdxl_base": (unet, {}),
        "flux_dev": (ExactGlyphVelocity(data), {"image_seq_len": seq_len, "pipeline_sigmas": True}),
    }
    results = {}
    for name, (network, schedule_options) in runs.items():
        sampler = edm_sampler.load_sampler(
            name, num_steps=args.steps, guider_config=edm_sampler.VanillaCFG(args.cfg), **schedule_options
        )
        denoiser = edm_sampler.load_denoiser(name).bind(network)
        samples = sample_digits(sampler, denoiser, data, args.num_samples, args.seed)
        nearest, distances = data.nearest(samples)
        matches = int((nearest == np.arange(len(samples)) % NUM_CLASSES).sum())
        print(
            f"{name:9s} {type(sampler).__name__} {args.steps} steps, NFE {sampler.last_nfe}: class match "
            f"{matches}/{len(samples)}, mean distance to the nearest training image {distances.mean():.2g}"
        )
        if args.out_dir:
            save_grid(samples, Path(args.out_dir) / f"diffusers_{name}.png")
        results[name] = (samples, sampler)
    return results


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance scale")
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="", help="write diffusers_<config>.png grids here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
