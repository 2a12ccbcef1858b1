"""An explicit ``sigmas=`` schedule for the call (k-diffusion style), exclusive with ``num_steps``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import to_np

from mindspore import Tensor

from edm_sampler import AlignYourStepsDiscretization, DPMPP2MSampler, EulerEDMSampler, HeunEDMSampler, randn
from edm_sampler.models import GaussianDenoiser


@pytest.mark.parametrize("cls", [EulerEDMSampler, HeunEDMSampler, DPMPP2MSampler])
def test_explicit_sigmas_equal_the_same_schedule_from_a_discretization(cls):
    schedule = AlignYourStepsDiscretization("sdxl")
    x = randn((4, 3), generator=0)
    from_discretization = cls(num_steps=10, discretization_config=schedule)(GaussianDenoiser(), x)
    for sigmas in (schedule(10), list(schedule(10)), Tensor(schedule(10).astype(np.float32))):
        sampler = cls()
        out = sampler(GaussianDenoiser(), x, sigmas=sigmas)
        np.testing.assert_allclose(to_np(out), to_np(from_discretization), rtol=1e-6, atol=1e-6)
        assert sampler.last_nfe == (19 if cls is HeunEDMSampler else 10)


def test_explicit_sigmas_without_a_final_zero_stop_early():
    seen = []

    def model(x, sigma, cond=None):
        seen.append(float(sigma.asnumpy()[0]))
        return x * 0.5

    EulerEDMSampler()(model, randn((2, 2), generator=0), sigmas=[10.0, 5.0, 1.0])
    assert seen == pytest.approx([10.0, 5.0])


@pytest.mark.parametrize(
    "sigmas, error, words",
    [
        ([10.0], ValueError, "at least 2"),
        ([10.0, 10.0, 0.0], ValueError, "strictly decreasing"),
        ([1.0, 5.0, 0.0], ValueError, "strictly decreasing"),
        ([10.0, float("nan"), 0.0], ValueError, "finite"),
        ([10.0, 0.0, -1.0], ValueError, "strictly decreasing"),
        ([[10.0, 0.0]], ValueError, "1-d"),
        ("10, 0", TypeError, "sequence of numbers"),
        ([10.0, None, 0.0], ValueError, "finite"),
    ],
)
def test_bad_explicit_sigmas_are_refused_before_any_model_call(sigmas, error, words):
    calls = []

    def model(x, sigma, cond=None):
        calls.append(1)
        return x

    with pytest.raises(error, match=words):
        EulerEDMSampler()(model, randn((2, 2), generator=0), sigmas=sigmas)
    assert not calls


def test_sigmas_and_num_steps_exclude_each_other():
    with pytest.raises(ValueError, match="either num_steps or sigmas"):
        EulerEDMSampler()(GaussianDenoiser(), randn((2, 2), generator=0), num_steps=3, sigmas=[1.0, 0.0])
