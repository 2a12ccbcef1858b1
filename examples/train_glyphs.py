"""Train the glyph UNet with EDM's preconditioning and loss, class-conditional with label dropout (for CFG).

python examples/train_glyphs.py                          # the packaged checkpoint: ~13 min on 2 CPU cores
python examples/train_glyphs.py --steps 200 --outdir run # a short run
python examples/train_glyphs.py --evaluate packaged      # no training: the packaged checkpoint's quality table

Writes ``<outdir>/glyph_unet.ckpt`` (the EMA weights), ``loss.csv`` and, with matplotlib, ``loss.png``; then samples
the trained net through edm_sampler (Heun, CFG 2) and prints its quality next to the exact denoiser's and to fresh
renderings of the digits (real data the net never saw: the score a model that generalises should reach).
Sample the packaged checkpoint with ``edm-sampler sample --config glyphs_unet_heun_cfg.yaml``.

EDM (Karras et al. 2022, Sec. 5 and Table 1): sigma ~ exp(N(-1.2, 1.2^2)), ``D = c_skip x + c_out F(c_in x, c_noise)``
and the loss ``lambda(sigma) |D - y|^2`` with ``lambda = 1 / c_out^2``, which is ``|F - (y - c_skip x) / c_out|^2``.
Every coefficient is computed on the host from the host-drawn sigma (the library's ``EDMScaling``); the device runs
the network, the mean squared error, Adam and the weight EMA as one compiled step.
"""

import argparse
import logging
import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from edm_sampler import EDMScaling
from edm_sampler.commands import tune_cpu_process
from edm_sampler.models.glyphs import NUM_CLASSES, render_glyphs
from edm_sampler.models.unet import GlyphUNet
from edm_sampler.progress import progress_bar

P_MEAN, P_STD = -1.2, 1.2  # EDM's training noise distribution
SIGMA_DATA = 0.5


class TrainStep(nn.Cell):
    """One Adam step on ``mean((F(net_in, c_noise, class) - target)^2)`` followed by the EMA update."""

    def __init__(self, net: GlyphUNet, optimizer: nn.Optimizer, ema: ms.ParameterTuple):
        super().__init__()
        self.net, self.optimizer, self.ema = net, optimizer, ema
        self.weights = optimizer.parameters
        self.grad = ops.GradOperation(get_by_list=True)

    def loss(self, net_in, c_noise, vector, target):
        return ops.square(self.net(net_in, c_noise, {"vector": vector}) - target).mean()

    @ms.jit  # one compiled graph per step, in PyNative as in graph mode
    def construct(self, net_in, c_noise, vector, target, ema_decay):
        loss = self.loss(net_in, c_noise, vector, target)
        grads = self.grad(self.loss, self.weights)(net_in, c_noise, vector, target)
        self.optimizer(grads)
        for average, weight in zip(self.ema, self.weights):
            ops.assign(average, average + (1.0 - ema_decay) * (weight - average))
        return loss


def batches(images, labels, batch, label_dropout, rng):
    """Endless training batches drawn on the host: ``(net_in, c_noise, class vectors, target)`` as NumPy."""
    scaling = EDMScaling(SIGMA_DATA)
    eye = np.eye(NUM_CLASSES, dtype=np.float32)
    while True:
        idx = rng.integers(0, len(images), batch)
        y = images[idx].astype(np.float64)
        sigma = np.exp(rng.normal(P_MEAN, P_STD, batch))
        c_skip, c_out, c_in, c_noise = (c.reshape(-1, 1, 1, 1) for c in scaling(sigma))
        x = y + sigma.reshape(-1, 1, 1, 1) * rng.standard_normal(y.shape)
        vector = eye[labels[idx]] * (rng.random(batch) >= label_dropout)[:, None]  # dropped label: all zeros
        yield (
            (c_in * x).astype(np.float32),
            c_noise.reshape(-1).astype(np.float32),
            vector.astype(np.float32),
            ((y - c_skip * x) / c_out).astype(np.float32),
        )


class _DropMessage(logging.Filter):
    def __init__(self, fragment):
        super().__init__()
        self.fragment = fragment

    def filter(self, record):
        return self.fragment not in record.getMessage()


@contextmanager
def mindspore_log_without(fragment):
    """MindSpore's log drops the records that contain ``fragment`` while the block runs (and only those)."""
    get_logger = getattr(ms.log, "_get_logger", None)  # MindSpore 2.10 has no public accessor of its logger
    logger = get_logger() if get_logger else None
    if logger is None:
        yield
        return
    drop = _DropMessage(fragment)
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def adam(params, learning_rate):
    """``nn.Adam``, without the warning "'FusedSparseAdam' is deprecated" it logs on every run: its constructor
    always builds the fused kernel for sparse gradients (deprecated since MindSpore 2.8), which dense training never
    calls. The non-deprecated ``mint.optim.Adam`` gives other losses from the second step on (1.576 against 1.571 in
    a 6-step trial here; the cause was not pinned down), so the packaged checkpoint's recipe keeps ``nn.Adam``."""
    with mindspore_log_without("'FusedSparseAdam' is deprecated"):
        return nn.Adam(params, learning_rate=learning_rate)


def learning_rates(steps, peak, warmup):
    """Linear warm-up, then a cosine decay to 5% of the peak: one value per step (MindSpore's dynamic LR)."""
    t = np.arange(steps, dtype=np.float64)
    cosine = 0.05 + 0.95 * 0.5 * (1.0 + np.cos(math.pi * np.clip((t - warmup) / max(steps - warmup, 1), 0, 1)))
    return (peak * np.minimum((t + 1) / max(warmup, 1), 1.0) * cosine).astype(np.float32).tolist()


def write_loss_curve(losses, outdir):
    """``loss.csv`` always; ``loss.png`` (raw and smoothed loss against step) when matplotlib is installed."""
    window = max(1, min(100, len(losses) // 10))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    with open(outdir / "loss.csv", "w") as f:
        f.write("step,loss\n")
        f.writelines(f"{k},{v:.6g}\n" for k, v in enumerate(losses))
    try:
        from matplotlib.figure import Figure  # no pyplot: no global figure state
    except ImportError:
        return None
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(losses, color="0.8", lw=0.6, label="per step")
    ax.plot(np.arange(len(smooth)) + window - 1, smooth, color="C0", label=f"mean of {window}")
    ax.set(xlabel="step", ylabel="EDM loss", yscale="log", title="glyph UNet training")
    ax.legend()
    fig.savefig(outdir / "loss.png", dpi=120)
    return outdir / "loss.png"


def train(args):
    images, labels = render_glyphs(args.size, args.variants, args.data_seed)
    net = GlyphUNet(channels=args.channels, seed=args.seed)
    ema = ms.ParameterTuple(ms.Parameter(p.value().copy(), name=f"ema.{p.name}") for p in net.trainable_params())
    optimizer = adam(net.trainable_params(), learning_rates(args.steps, args.lr, args.warmup))
    step = TrainStep(net, optimizer, ema)
    step.set_train()
    data = batches(images, labels, args.batch, args.label_dropout, np.random.default_rng(args.seed))

    losses = []
    start = time.perf_counter()
    progress = progress_bar(range(args.steps), desc="train", disable=args.no_progress, mininterval=1.0)
    for k in progress:
        # EMA warm-up (the first steps' weights are forgotten fast), then the configured decay.
        decay = Tensor(min(args.ema, (1.0 + k) / (10.0 + k)), ms.float32)
        loss = step(*(Tensor(a) for a in next(data)), decay)
        losses.append(float(loss.asnumpy()))
        if k % 20 == 0:
            progress.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", refresh=False)  # shown at the next draw
    seconds = time.perf_counter() - start

    # The checkpoint holds the EMA weights, in a fresh net (TrainStep prefixed the trained net's parameter names).
    final = GlyphUNet(channels=args.channels, seed=args.seed)
    for weight, average in zip(final.trainable_params(), ema):
        weight.set_data(average.value())
    return final, np.asarray(losses), seconds


def quality(samples, labels, data, reference):
    """Class match by the nearest training image and by the nearest of ``reference`` (fresh renderings the net never
    saw), and the mean RMS distance to the nearest training image."""
    train_labels, distances = data.nearest(samples)
    reference_labels, _ = reference.nearest(samples)
    return np.mean(train_labels == labels), np.mean(reference_labels == labels), distances.mean()


def evaluate(checkpoint, num_samples, size, variants, data_seed):
    """The trained net next to the exact denoiser and to fresh renderings of the digits, as rows
    ``(name, class match by training 1-NN, class match by fresh 1-NN, distance to the nearest training image)``.
    Both models sample with Heun, 18 steps, CFG 2 and the same per-sample seeds as ``edm-sampler sample``."""
    from edm_sampler import HeunEDMSampler, VanillaCFG, randn
    from edm_sampler.models.glyphs import GlyphData, GlyphDenoiser
    from edm_sampler.models.trained_glyphs import TrainedGlyphModel
    from edm_sampler.noise import per_sample_generators

    data = GlyphData(size, variants, data_seed)
    reference = GlyphData(size, 200, data_seed + 1)  # 2,000 renderings for the fresh 1-NN classifier
    fresh = GlyphData(size, max(1, num_samples // NUM_CLASSES), data_seed + 2)  # real digits the net never saw
    labels = np.arange(num_samples) % NUM_CLASSES
    rows = [("fresh renderings (real data, not trained on)", *quality(fresh.images, fresh.labels, data, reference))]
    for name, model in (("exact denoiser", GlyphDenoiser(size, variants, data_seed)), ("trained UNet", None)):
        model = model or TrainedGlyphModel(checkpoint, size=size, variants=variants, seed=data_seed)
        generators = per_sample_generators(0, num_samples)
        noise = randn((num_samples, *data.shape), generators)
        cond, uc = {"vector": data.class_vectors(labels)}, {"vector": data.unconditional_vectors(num_samples)}
        sampler = HeunEDMSampler(num_steps=18, guider_config=VanillaCFG(2.0))
        out = sampler(model, noise, cond, uc, generator=generators, disable=True).asnumpy()
        rows.append((name, *quality(out, labels, data, reference)))
    return rows


def print_quality(rows, num_samples):
    print(f"\n{num_samples} samples each (Heun 18 steps, CFG 2); class match = nearest image has the requested digit")
    print("| | class match (training 1-NN) | class match (fresh 1-NN) | distance to nearest training image |")
    print("|---|---|---|---|")
    for name, match_train, match_fresh, distance in rows:
        print(f"| {name} | {match_train:.2f} | {match_fresh:.2f} | {distance:.3f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2500, help="optimizer steps (default: 2500)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate")
    parser.add_argument("--warmup", type=int, default=100, help="learning-rate warm-up steps")
    parser.add_argument("--ema", type=float, default=0.998, help="EMA decay per step")
    parser.add_argument("--label-dropout", type=float, default=0.1, help="fraction of unconditional examples")
    parser.add_argument("--channels", type=int, default=32, help="UNet width (the packaged checkpoint: 32)")
    parser.add_argument("--size", type=int, default=24, help="glyph size (data: render_glyphs(size, variants))")
    parser.add_argument("--variants", type=int, default=24)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="initial weights and batches")
    parser.add_argument("--eval-samples", type=int, default=100, help="samples for the quality table (0: none)")
    parser.add_argument("--evaluate", metavar="CKPT", help="no training: the quality table of CKPT ('packaged')")
    parser.add_argument("--outdir", default="train_glyphs_out")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    tune_cpu_process()  # an application: AVX2 convolutions (unless set), synchronous launch on CPU
    if args.evaluate:
        checkpoint = None if args.evaluate == "packaged" else args.evaluate
        rows = evaluate(checkpoint, args.eval_samples, args.size, args.variants, args.data_seed)
        print_quality(rows, args.eval_samples)
        return {"quality": rows}
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    net, losses, seconds = train(args)
    checkpoint = outdir / "glyph_unet.ckpt"
    ms.save_checkpoint(net, str(checkpoint))
    plot = write_loss_curve(losses, outdir)
    tail = losses[-max(1, len(losses) // 10) :].mean()
    print(f"trained:     {args.steps} steps of {args.batch} in {seconds:.0f} s ({seconds / args.steps:.3f} s/step)")
    print(f"loss:        {losses[: max(1, len(losses) // 10)].mean():.4f} (first 10%) -> {tail:.4f} (last 10%)")
    print(f"checkpoint:  {checkpoint} ({checkpoint.stat().st_size / 2**20:.2f} MiB)")
    print(f"loss curve:  {outdir / 'loss.csv'}" + (f", {plot}" if plot else ""))
    report = {"losses": losses, "checkpoint": checkpoint, "seconds": seconds}
    if args.eval_samples:
        report["quality"] = evaluate(checkpoint, args.eval_samples, args.size, args.variants, args.data_seed)
        print_quality(report["quality"], args.eval_samples)
    return report


if __name__ == "__main__":
    main()
