"""Watch a sampler work: record runs through the callback, then plot their noise schedules and a trajectory strip.

python examples/plot_sampling.py                  # the packaged trained glyph net; writes into sampling_plots/
python examples/plot_sampling.py --model exact    # the exact glyph denoiser instead

``schedules.png`` (needs matplotlib, the ``plot`` extra) shows the noise levels DPM++ 2M actually stepped through
under five schedules; ``trajectory.png`` (Pillow only) shows, per digit, the state x (variance-preserving view) and
the denoised estimate D(x) at evenly spread steps of a Heun run: the estimate settles long before the state does.
"""

import argparse
from pathlib import Path

import numpy as np

from edm_sampler import (
    AlignYourStepsDiscretization,
    DPMPP2MSampler,
    EDMDiscretization,
    ExponentialDiscretization,
    HeunEDMSampler,
    VanillaCFG,
    VPDiscretization,
    randn,
)
from edm_sampler.models.glyphs import GlyphDenoiser
from edm_sampler.models.trained_glyphs import TrainedGlyphModel
from edm_sampler.plots import Trajectory, plot_schedules, trajectory_strip

SCHEDULES = {
    "EDM rho=7": EDMDiscretization(),
    "EDM rho=3": EDMDiscretization(rho=3.0),
    "exponential": ExponentialDiscretization(),
    "VP": VPDiscretization(),
    "AYS (SD 1.5)": AlignYourStepsDiscretization("sd15"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("trained", "exact"), default="trained")
    parser.add_argument("--steps", type=int, default=12, help="steps of every run (default: 12)")
    parser.add_argument("--digits", type=int, default=4, help="samples (digits 0, 1, ...) in the strip")
    parser.add_argument("--outdir", default="sampling_plots")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)

    model = TrainedGlyphModel() if args.model == "trained" else GlyphDenoiser()
    labels = np.arange(args.digits) % 10
    cond, uc = {"vector": model.class_vectors(labels)}, {"vector": model.unconditional_vectors(args.digits)}
    noise = randn((args.digits, *model.shape), generator=0)

    # The trajectory strip: one Heun run, every step recorded by the callback.
    trajectory = Trajectory()
    heun = HeunEDMSampler(num_steps=args.steps, guider_config=VanillaCFG(2.0))
    samples = heun(model, noise, cond, uc, callback=trajectory, disable=True).asnumpy()
    strip = trajectory_strip(trajectory, outdir / "trajectory.png", columns=args.steps)
    print(f"wrote {outdir / 'trajectory.png'}: {args.digits} digits x {len(trajectory)} steps, {strip.shape}")

    # The schedules: what each run really stepped through, as the callback saw it.
    sigmas = {}
    for name, schedule in SCHEDULES.items():
        record = Trajectory(items=[0])
        DPMPP2MSampler(num_steps=args.steps, discretization_config=schedule, guider_config=VanillaCFG(2.0))(
            model, noise, cond, uc, callback=record, disable=True
        )
        sigmas[name] = record.sigmas
    try:
        print(f"wrote {plot_schedules(sigmas, outdir / 'schedules.png')}")
    except ImportError as err:
        print(f"no schedules.png: {err}")
    return samples, trajectory, sigmas


if __name__ == "__main__":
    main()
