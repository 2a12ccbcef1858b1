"""Callback-driven pictures: the Trajectory recorder, the trajectory strip and the schedule plot."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edm_sampler import DPMPP2MSampler, EDMDiscretization, EulerEDMSampler, HeunEDMSampler, randn
from edm_sampler.models.analytic import GaussianDenoiser
from edm_sampler.plots import Trajectory, plot_schedules, trajectory_strip

SHAPE = (3, 1, 6, 5)


def record(sampler, items=None, steps=5):
    trajectory = Trajectory(items)
    out = sampler(GaussianDenoiser(), randn(SHAPE, generator=0), num_steps=steps, callback=trajectory, disable=True)
    return trajectory, out.asnumpy()


@pytest.mark.parametrize("cls", [EulerEDMSampler, HeunEDMSampler, DPMPP2MSampler])
def test_trajectory_records_every_step_of_the_schedule(cls):
    trajectory, out = record(cls(), steps=5)
    sigmas = EDMDiscretization().get_sigmas(5)  # the 5 levels stepped from (the appended 0 is not a step)
    assert trajectory.steps == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(trajectory.sigmas, sigmas, rtol=1e-12)
    assert all(s.shape == SHAPE for s in trajectory.states + trajectory.denoised)
    start = randn(SHAPE, generator=0).asnumpy() * np.sqrt(1.0 + sigmas[0] ** 2)  # sgm's initial scaling
    np.testing.assert_allclose(trajectory.states[0], start, rtol=1e-6)
    # The last Euler/Heun/DPM++2M step to sigma = 0 returns the denoised estimate.
    np.testing.assert_array_equal(trajectory.denoised[-1], out)


def test_trajectory_keeps_only_the_requested_items_and_churned_levels():
    trajectory, _ = record(EulerEDMSampler(s_churn=5.0), items=[2])
    assert trajectory.states[0].shape == (1, 1, 6, 5)
    assert all(h >= s for h, s in zip(trajectory.sigma_hats, trajectory.sigmas))
    assert any(h > s for h, s in zip(trajectory.sigma_hats, trajectory.sigmas))  # churn raised sigma
    trajectory.clear()
    assert len(trajectory) == 0


def test_trajectory_strip_layout(tmp_path):
    trajectory, out = record(EulerEDMSampler(), items=[0, 1], steps=8)
    strip = trajectory_strip(trajectory, tmp_path / "strip.png", columns=4, zoom=2, gap=1)
    # 2 items x (state, denoised) rows of 6 px, 4 columns of 5 px, 1 px gaps, zoom 2
    assert strip.shape == (2 * (4 * 7 - 1), 2 * (4 * 6 - 1)) and strip.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "strip.png")), strip)
    # The bottom-right tile is the last denoised estimate of item 1 (= the sample), in uint8.
    expected = np.clip(np.rint((out[1, 0] + 1.0) * 127.5), 0, 255).astype(np.uint8).repeat(2, 0).repeat(2, 1)
    np.testing.assert_array_equal(strip[-12:, -10:], expected)
    assert (strip[12:14] == 255).all()  # the gap between rows


def test_trajectory_strip_rejects_an_empty_recording():
    with pytest.raises(ValueError, match="empty.*callback"):
        trajectory_strip(Trajectory())
    with pytest.raises(ValueError, match="columns"):
        trajectory_strip(record(EulerEDMSampler())[0], columns=0)


def test_plot_schedules_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    schedules = {"edm": EDMDiscretization().get_sigmas(10), "rho 3": EDMDiscretization(rho=3.0).get_sigmas(10)}
    path = plot_schedules(schedules, tmp_path / "s.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 200
    with pytest.raises(ValueError, match="'bad' needs at least two positive"):
        plot_schedules({"bad": [1.0, 0.0]}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="empty"):
        plot_schedules({}, tmp_path / "none.png")
