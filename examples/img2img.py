"""img2img: regenerate part of a given image (sgm's do_img2img), on the built-in glyph model.

The schedule is pruned by ``Img2ImgDiscretizationWrapper(strength)``; the image is noised to the first kept sigma
with noise from the call's generator, then sampled down. ``strength=1`` regenerates from pure noise, small strengths
keep the image's layout. As in sgm, the wrapper keeps ``int(strength * (steps + 1))`` of the schedule's levels (the
final 0 included), so a small strength with few steps keeps no step at all: the script refuses that (exit status 2,
naming the fewest --steps that keep one) rather than return the input image untouched.

    python examples/img2img.py --strength 0.5
"""

import argparse

from mindspore import Tensor

from edm_sampler import EDMDiscretization, HeunEDMSampler, Img2ImgDiscretizationWrapper, VanillaCFG
from edm_sampler.models import GlyphDenoiser


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=18)
    args = parser.parse_args(argv)
    schedule = Img2ImgDiscretizationWrapper(EDMDiscretization(), strength=args.strength)
    if len(schedule(args.steps)) < 2:  # one level (sigma = 0) and no step: sampling would return the input
        fewest = next((n for n in range(args.steps, 10_000) if len(schedule(n)) >= 2), None)
        remedy = f"use --steps {fewest} or more, or a larger --strength" if fewest else "use a larger --strength"
        parser.error(f"--strength {args.strength} keeps no step of --steps {args.steps}: {remedy}")
    model = GlyphDenoiser()
    image = model.images[:1] * 0.5  # a faded "0" from the dataset, as the input image
    cond = {"vector": model.class_vectors([0])}
    uc = {"vector": model.unconditional_vectors(1)}
    sampler = HeunEDMSampler(num_steps=args.steps, discretization_config=schedule, guider_config=VanillaCFG(2.0))
    out = sampler.img2img(model, Tensor(image), cond, uc, generator=0).asnumpy()
    label, distance = model.nearest(out)
    print(
        f"strength {args.strength}: {len(schedule(args.steps)) - 1} steps, NFE {sampler.last_nfe}, "
        f"nearest training image: class {int(label[0])} at RMS {float(distance[0]):.3g}"
    )
    return out, int(label[0])


if __name__ == "__main__":
    main()
