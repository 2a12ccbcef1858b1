"""Per-frame guidance for a video model (SVD): LinearPredictionGuider, with num_frames from the call.

The batch holds whole videos, frame after frame; frame t of each is guided with its own scale (1.0 on the first frame,
2.5 on the last). SVD's network takes ``num_video_frames`` as a keyword argument, and the guider reads it from the
same ``model_kwargs`` when its config leaves ``num_frames`` out.

    python examples/video_guider.py --frames 14
"""

import argparse

import numpy as np

from mindspore import Tensor

from edm_sampler import LinearPredictionGuider, load_sampler, randn


def video_denoiser(x, sigma, cond, num_video_frames=None):
    """A stand-in for SVD: pulls every frame toward its conditioning image (cond["concat"])."""
    target = cond["concat"]
    weight = (0.25 / (sigma**2 + 0.25)).reshape(-1, 1, 1, 1)
    return target + (x - target) * weight


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=14)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args(argv)
    sampler = load_sampler(
        {
            "target": "sgm.modules.diffusionmodules.sampling.EulerEDMSampler",
            "params": {
                "num_steps": args.steps,
                "discretization_config": {"target": "edm", "params": {"sigma_max": 700.0}},
                "guider_config": {"target": "linear_prediction", "params": {"max_scale": 2.5, "min_scale": 1.0}},
            },
        }
    )
    frames = args.frames
    image = np.ones((frames, 4, 8, 8), np.float32)  # one video: the same conditioning image for every frame
    cond = {"concat": Tensor(image)}
    uc = {"concat": Tensor(np.zeros_like(image))}
    video = sampler(
        video_denoiser,
        randn((frames, 4, 8, 8), generator=0),
        cond,
        uc,
        model_kwargs={"num_video_frames": frames},
        generator=1,
    )
    guider = sampler.guider.for_call({"num_video_frames": frames})
    assert isinstance(guider, LinearPredictionGuider)
    print(f"per-frame scales {np.round(guider.scale, 3).tolist()}")
    means = video.asnumpy().reshape(frames, -1).mean(1)
    # the conditional target is 1 and the unconditional one 0, so each frame's mean follows its own scale
    print(f"frame means: {[round(float(m), 2) for m in means]}")
    return means


if __name__ == "__main__":
    main()
