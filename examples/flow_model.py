"""A flow-matching network (SD3, Flux, Wan style) behind FlowVelocityScaling, sampled in graph mode with CFG.

python examples/flow_model.py                       # Euler and Heun, 18 steps, flow_match shift 3, CFG 2
python examples/flow_model.py --steps 28 --out flow.png

No weights can be downloaded here, so the network is exact: an ``nn.Cell`` that computes the velocity
``v = (x - D(x, sigma)) / sigma`` of the built-in glyph dataset under ``x = (1 - sigma) x0 + sigma eps``, with D the
exact posterior mean (the math of ``GlyphDenoiser(parametrization="flow")``, written as ops in ``construct``). It
takes ``(x, timestep, cond)`` with ``timestep = sigma * 1000``, as diffusers' SD3/Flux transformers do, so a real
flow network drops in where it is.
"""

import argparse
from pathlib import Path

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from edm_sampler import (
    Denoiser,
    EulerEDMSampler,
    FlowMatchDiscretization,
    FlowVelocityScaling,
    HeunEDMSampler,
    VanillaCFG,
    randn,
)
from edm_sampler.cli import save_grid
from edm_sampler.models.glyphs import NUM_CLASSES, GlyphData
from edm_sampler.noise import per_sample_generators


class ExactGlyphVelocity(nn.Cell):
    """``v(x, timestep, cond)``: the exact velocity ``eps - x0`` of the glyph flow model, as ops.

    With ``sigma = timestep / multiplier`` and ``a = 1 - sigma``, D is the softmax over the training images ``y_i`` of
    ``-|x - a y_i|^2 / 2 sigma^2`` plus the log class prior from ``cond["vector"]`` (an all-zero row: every image),
    and ``v = (x - D) / sigma``, so ``FlowVelocityScaling``'s ``x - sigma v`` gives D back.
    """

    def __init__(self, data: GlyphData, multiplier: float = 1000.0):
        super().__init__()
        flat = data.images.reshape(len(data.images), -1).astype(np.float32)  # (M, P)
        mean = flat.mean(0)
        centered = flat - mean  # distances around the dataset mean: less float32 cancellation
        self.multiplier = multiplier
        self.data = Tensor(flat)
        self.mean = Tensor(mean[None, :])
        self.centered_t = Tensor(np.ascontiguousarray(centered.T))  # (P, M)
        self.half_sq_norm = Tensor(0.5 * (centered**2).sum(1)[None, :])  # (1, M)
        self.class_of_t = Tensor(np.eye(NUM_CLASSES, dtype=np.float32)[data.labels].T)  # (10, M)

    def construct(self, x, timestep, cond):
        batch = x.shape[0]
        sigma = (timestep / self.multiplier).reshape(batch, 1)
        alpha = 1.0 - sigma
        flat = x.reshape(batch, -1)
        # -|x - a y|^2 / 2 sigma^2 up to a per-row constant, with y = mean + c: (a / sigma^2)((x - a mean).c - a|c|^2/2)
        dot = ops.matmul(flat - alpha * self.mean, self.centered_t)
        logits = (dot - alpha * self.half_sq_norm) * (alpha / (sigma * sigma))
        prior = ops.matmul(cond["vector"], self.class_of_t)  # (B, M): weight of each training image
        prior = ops.where(prior.sum(1, keepdims=True) > 0, prior, ops.ones_like(prior))  # unconditional: uniform
        logits = logits + ops.where(prior > 0, ops.log(ops.clamp(prior, min=1e-30)), ops.full_like(prior, -1e30))
        denoised = ops.matmul(ops.softmax(logits, axis=1), self.data)
        return (flat - denoised).reshape(x.shape) / sigma.reshape(batch, 1, 1, 1)


def main(argv=None):
    args = _parse(argv)
    ms.set_context(mode=ms.GRAPH_MODE)  # your application's choice; the library never sets it
    try:
        return _sample(args)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def _sample(args):
    data = GlyphData()
    net = ExactGlyphVelocity(data)  # swap in your SD3/Flux/Wan transformer: net(x, timestep, cond) -> velocity
    denoiser = Denoiser(FlowVelocityScaling()).bind(net)  # D = x - sigma v(x, sigma * 1000, cond); bind once
    results = {}
    for cls in (EulerEDMSampler, HeunEDMSampler):
        sampler = cls(
            num_steps=args.steps,
            discretization_config=FlowMatchDiscretization(shift=args.shift),  # diffusers' FlowMatchEuler sigmas
            guider_config=VanillaCFG(args.cfg),
        )
        samples = sample_digits(sampler, denoiser, data, args.num_samples, args.seed)
        nearest, distances = data.nearest(samples)
        matches = int((nearest == np.arange(len(samples)) % NUM_CLASSES).sum())
        print(
            f"{cls.__name__:16s} {args.steps} steps, NFE {sampler.last_nfe}: class match {matches}/{len(samples)}, "
            f"mean distance to the nearest training image {distances.mean():.2g}"
        )
        results[cls.__name__] = samples
    save_grid(results["HeunEDMSampler"], Path(args.out))  # the grid `edm-sampler sample` writes
    print(f"wrote {args.out} (Heun)")
    return results, denoiser


def sample_digits(sampler, denoiser, data, num_samples, seed):
    """``num_samples`` digits, classes 0-9 in turn, with per-sample generators from ``seed`` (as `edm-sampler
    sample` draws them); a flow model starts at ``x = sigma_0 * noise``, pure noise at sigma_0 = 1."""
    labels = np.arange(num_samples) % NUM_CLASSES
    cond = {"vector": data.class_vectors(labels)}
    uc = {"vector": data.unconditional_vectors(num_samples)}
    generators = per_sample_generators(seed, num_samples)
    noise = randn((num_samples, *data.shape), generators)
    return sampler(denoiser, noise, cond, uc, generator=generators).asnumpy()


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=18)
    parser.add_argument("--shift", type=float, default=3.0, help="flow_match shift (SD3: 3.0)")
    parser.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance scale")
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="flow_samples.png")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
