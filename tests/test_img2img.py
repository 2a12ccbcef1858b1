"""sgm's Img2Img / Txt2Noisy schedule wrappers and the img2img path (start from an image noised to sigma_0)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import to_np

from mindspore import Tensor

from edm_sampler import (
    EDMDiscretization,
    EulerEDMSampler,
    HeunEDMSampler,
    Img2ImgDiscretizationWrapper,
    Txt2NoisyDiscretizationWrapper,
    load_sampler,
    randn,
)
from edm_sampler.models import GaussianDenoiser

KARRAS_10 = EDMDiscretization()(10)  # 11 values with the trailing 0


def test_img2img_published_pruning():
    np.testing.assert_allclose(
        Img2ImgDiscretizationWrapper(EDMDiscretization(), 0.5)(10),
        [0.469979, 0.116639, 0.020435, 0.002, 0.0],
        rtol=0,
        atol=5e-7,  # the published values have six decimals
    )
    np.testing.assert_array_equal(Img2ImgDiscretizationWrapper(EDMDiscretization(), 1.0)(10), KARRAS_10)
    np.testing.assert_array_equal(Img2ImgDiscretizationWrapper(EDMDiscretization(), 0.0)(10), [0.0])


@pytest.mark.parametrize("strength", [0.0, 0.1, 0.33, 0.5, 0.77, 1.0])
def test_img2img_keeps_sgms_count_of_the_last_sigmas(strength):
    keep = max(int(strength * 11), 1)
    np.testing.assert_array_equal(Img2ImgDiscretizationWrapper(EDMDiscretization(), strength)(10), KARRAS_10[-keep:])


@pytest.mark.parametrize("strength, original_steps", [(0.0, None), (0.15, 10), (0.5, 10), (0.5, None), (1.0, 10)])
def test_txt2noisy_prunes_the_low_end_by_sgms_rule(strength, original_steps):
    steps = 11 if original_steps is None else original_steps + 1
    prune = max(min(int(strength * steps) - 1, steps - 1), 0)
    got = Txt2NoisyDiscretizationWrapper(EDMDiscretization(), strength, original_steps)(10)
    np.testing.assert_array_equal(got, KARRAS_10[: 11 - prune])
    if strength == 0.15:
        np.testing.assert_array_equal(got, KARRAS_10)  # anchors §5: 0.15 with 10 steps prunes nothing


def test_wrappers_refuse_bad_strength():
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        Img2ImgDiscretizationWrapper(EDMDiscretization(), 1.5)
    with pytest.raises(ValueError, match="strength must be >= 0"):
        Txt2NoisyDiscretizationWrapper(EDMDiscretization(), -0.1)


def test_strength_zero_leaves_the_image_unchanged():
    sampler = EulerEDMSampler(
        num_steps=10, discretization_config=Img2ImgDiscretizationWrapper(EDMDiscretization(), 0.0)
    )
    image = randn((3, 4), generator=0)
    out = sampler.img2img(GaussianDenoiser(), image, generator=1)
    np.testing.assert_array_equal(to_np(out), to_np(image))
    assert sampler.last_nfe == 0


@pytest.mark.parametrize("cls", [EulerEDMSampler, HeunEDMSampler])
def test_img2img_is_sampling_from_the_noised_image(cls):
    """image + sigma_0 * noise, then the schedule: the same as sampling that start with init_noise='prescaled'."""
    schedule = Img2ImgDiscretizationWrapper(EDMDiscretization(), 0.6)
    image, noise = randn((4, 3), generator=0), randn((4, 3), generator=1)
    sigma_0 = float(schedule(8)[0])
    got = cls(num_steps=8, discretization_config=schedule, s_churn=2.0).img2img(
        GaussianDenoiser(), image, noise=noise, generator=5
    )
    start = Tensor((image.asnumpy() + noise.asnumpy() * np.float32(sigma_0)).astype(np.float32))
    expected = cls(num_steps=8, discretization_config=schedule, s_churn=2.0, init_noise="prescaled")(
        GaussianDenoiser(), start, generator=5
    )
    np.testing.assert_array_equal(to_np(got), to_np(expected))


def test_img2img_without_noise_starts_from_the_image():
    schedule = Txt2NoisyDiscretizationWrapper(EDMDiscretization(), 0.0)
    image = randn((2, 3), generator=0) * 3.0
    got = EulerEDMSampler(num_steps=5, discretization_config=schedule).img2img(
        GaussianDenoiser(), image, add_noise=False
    )
    expected = EulerEDMSampler(num_steps=5, discretization_config=schedule, init_noise="prescaled")(
        GaussianDenoiser(), image
    )
    np.testing.assert_array_equal(to_np(got), to_np(expected))


def test_img2img_start_noise_continues_the_generator_stream():
    """The start noise is the generator's first draw, the churn noise its next ones: never the same numbers twice."""
    sampler = EulerEDMSampler(num_steps=4, s_churn=2.0)
    image = randn((2, 3), generator=0)
    got = sampler.img2img(GaussianDenoiser(), image, generator=7)
    gens = np.random.default_rng(7)
    start_noise = randn((2, 3), gens)
    start = Tensor((image.asnumpy() + start_noise.asnumpy() * np.float32(80.0)).astype(np.float32))
    expected = EulerEDMSampler(num_steps=4, s_churn=2.0, init_noise="prescaled")(
        GaussianDenoiser(), start, generator=gens
    )
    np.testing.assert_array_equal(to_np(got), to_np(expected))
    np.testing.assert_array_equal(image.asnumpy(), randn((2, 3), generator=0).asnumpy())  # the caller's image untouched


def test_img2img_refuses_misshapen_noise():
    with pytest.raises(ValueError, match=r"noise must be a Tensor shaped like image \(2, 3\)"):
        EulerEDMSampler(num_steps=2).img2img(GaussianDenoiser(), randn((2, 3), generator=0), noise=randn((1, 3)))


def test_sgm_and_mindone_spellings_and_short_form_strengths():
    config = {
        "target": "euler_edm",
        "params": {
            "num_steps": 10,
            "discretization_config": {
                "target": "sgm.modules.diffusionmodules.discretizer.Img2ImgDiscretizationWrapper",
                "params": {"strength": 0.5, "discretization": {"target": "edm"}},
            },
        },
    }
    assert len(load_sampler(config).get_sigmas()) == 5
    short = load_sampler({"sampler": {"sampler": "EulerEDMSampler", "steps": 10, "img2img_strength": 0.5}})
    assert isinstance(short.discretization, Img2ImgDiscretizationWrapper) and len(short.get_sigmas()) == 5
    refiner = load_sampler({"sampler": {"sampler": "EulerEDMSampler", "steps": 10, "stage2strength": 0.5}})
    assert isinstance(refiner.discretization, Txt2NoisyDiscretizationWrapper)
    assert refiner.discretization.original_steps == 10 and refiner.get_sigmas()[-1] > 0
