"""Loading the configs users have: shipped configs by name, sgm's ``device:``, mindone's init_sampling short form."""

from __future__ import annotations

import logging
import math

import pytest

from edm_sampler import (
    ConfigError,
    DPMPP2MSampler,
    EDMDiscretization,
    EulerAncestralSampler,
    EulerEDMSampler,
    HeunEDMSampler,
    IdentityGuider,
    LCMSampler,
    LegacyDDPMDiscretization,
    VanillaCFG,
    load_sampler,
)
from edm_sampler.config import packaged_configs


@pytest.mark.parametrize("name", ["heun_edm", "heun_edm.yaml", "sdxl_dpmpp_2m"])
def test_shipped_configs_load_by_name_from_any_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sampler = load_sampler(name)
    expected = DPMPP2MSampler if name.startswith("sdxl_dpmpp") else HeunEDMSampler
    assert type(sampler) is expected


def test_packaged_config_names():
    assert {"heun_edm", "euler_edm", "glyphs_heun_cfg", "sdxl_dpmpp_2m", "lms"} <= set(packaged_configs())


def test_unknown_name_lists_the_shipped_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="shipped configs: .*heun_edm"):
        load_sampler("heun_edn")
    with pytest.raises(FileNotFoundError):
        load_sampler("configs/heun_edm")  # a path is a path, never a shipped name


def test_sgm_device_parameter_is_ignored_with_a_debug_log(caplog):
    config = {"target": "sgm.modules.diffusionmodules.sampling.EulerEDMSampler", "params": {"device": "cuda"}}
    with caplog.at_level(logging.DEBUG, logger="edm_sampler.registry"):
        sampler = load_sampler(config)
    assert type(sampler) is EulerEDMSampler
    assert any("device" in record.getMessage() for record in caplog.records)
    with pytest.raises(ConfigError, match="unknown parameter"):  # only samplers take it
        load_sampler(
            {
                "target": "euler_edm",
                "params": {"discretization_config": {"target": "edm", "params": {"device": "cuda"}}},
            }
        )


def short(**block):
    return load_sampler({"sampler": block})


def test_mindone_short_form_defaults_are_init_samplings():
    sampler = short(sampler="EulerEDMSampler")
    assert type(sampler) is EulerEDMSampler and sampler.num_steps == 40
    assert (sampler.s_churn, sampler.s_tmin, sampler.s_tmax, sampler.s_noise) == (0.0, 0.0, 999.0, 1.0)
    assert type(sampler.discretization) is LegacyDDPMDiscretization
    assert type(sampler.guider) is VanillaCFG and sampler.guider.scale == 5.0


def test_mindone_short_form_as_t2i_adapter_writes_it():
    sampler = short(
        steps=30,
        sampler="EulerAncestralSampler",
        guider="VanillaCFG",
        guidance_scale=7.5,
        discretization="EDMDiscretization",
    )
    assert type(sampler) is EulerAncestralSampler and sampler.num_steps == 30 and sampler.eta == 1.0
    assert sampler.guider.scale == 7.5
    disc = sampler.discretization
    assert type(disc) is EDMDiscretization and (disc.sigma_min, disc.sigma_max, disc.rho) == (0.03, 14.61, 3.0)


@pytest.mark.parametrize(
    "block, cls",
    [
        ({"sampler": "DPMPP2MSampler", "guider": "IdentityGuider"}, DPMPP2MSampler),
        ({"sampler": "LCMSampler", "steps": 4}, LCMSampler),
    ],
)
def test_mindone_short_form_samplers(block, cls):
    sampler = short(**block)
    assert type(sampler) is cls
    if block.get("guider") == "IdentityGuider":
        assert type(sampler.guider) is IdentityGuider


def test_mindone_short_form_clamps_the_scale_as_mindone_does():
    assert short(sampler="EulerEDMSampler", guidance_scale=250.0).guider.scale == 100.0
    assert math.isclose(short(sampler="EulerEDMSampler", guidance_scale=-1.0).guider.scale, 0.0)


@pytest.mark.parametrize(
    "block, words",
    [
        ({"sampler": "EulerEDMSamplr"}, "sampler must be one of"),
        ({"sampler": "EulerEDMSampler", "guider": "CFG"}, "guider must be one of"),
        ({"sampler": "EulerEDMSampler", "discretization": "Karras"}, "discretization must be one of"),
        ({"sampler": "EulerEDMSampler", "stepz": 3}, "unknown key.*stepz"),
        ({"sampler": "EulerEDMSampler", "steps": 0}, "steps must be >= 1"),
        ({"sampler": "EulerEDMSampler", "img2img_strength": -0.5}, "img2img_strength must be >= 0"),
    ],
)
def test_mindone_short_form_errors(block, words):
    with pytest.raises((ConfigError, ValueError), match=words):
        short(**block)
