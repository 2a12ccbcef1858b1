"""load_denoiser: the model half of an sgm / mindone model YAML (as load_sampler builds the sampler half)."""

from __future__ import annotations

import numpy as np
import pytest

from edm_sampler import ConfigError, Denoiser, DiscreteDenoiser, EpsScaling, load_denoiser, load_sampler

SGM = "sgm.modules.diffusionmodules"
GM = "gm.modules.diffusionmodules"

SDXL_MODEL = {
    "model": {
        "target": "sgm.models.diffusion.DiffusionEngine",
        "params": {
            "denoiser_config": {
                "target": f"{SGM}.denoiser.DiscreteDenoiser",
                "params": {
                    "num_idx": 1000,
                    "scaling_config": {"target": f"{SGM}.denoiser_scaling.EpsScaling"},
                    "discretization_config": {"target": f"{SGM}.discretizer.LegacyDDPMDiscretization"},
                },
            },
            "sampler_config": {"target": f"{SGM}.sampling.EulerEDMSampler", "params": {"num_steps": 40}},
        },
    }
}


def test_one_model_yaml_gives_both_halves():
    denoiser = load_denoiser(SDXL_MODEL)
    assert type(denoiser) is DiscreteDenoiser and isinstance(denoiser.scaling, EpsScaling)
    assert denoiser.sigma_range == pytest.approx((0.0291675, 14.6146), rel=1e-4)
    assert type(load_sampler(SDXL_MODEL)).__name__ == "EulerEDMSampler"


@pytest.mark.parametrize("key", ["denoiser", "denoiser_config"])
def test_top_level_denoiser_blocks(key):
    config = {key: {"target": f"{GM}.denoiser.Denoiser", "params": {"scaling_config": {"target": "edm_scaling"}}}}
    assert type(load_denoiser(config)) is Denoiser


def test_the_shipped_sdxl_config_has_both_halves():
    denoiser = load_denoiser("sdxl_base_euler")
    assert type(denoiser) is DiscreteDenoiser
    assert load_sampler("sdxl_base_euler").num_steps == 40
    sigma = np.array([1.0])
    assert denoiser.host_scalings(sigma)[3][0] == 354  # anchors: sigma 1.0 -> level index 354


def test_no_denoiser_block():
    with pytest.raises(ConfigError, match="no denoiser config found.*denoiser_config"):
        load_denoiser({"sampler": {"target": "euler_edm"}})
