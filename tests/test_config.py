"""Registry names, instantiate_from_config, load_sampler, and every shipped YAML config."""

import collections
import importlib
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

import edm_sampler
from edm_sampler import (
    ConfigError,
    DiscreteDenoiser,
    EDMDiscretization,
    EDMSampler,
    EpsScaling,
    EulerEDMSampler,
    Guider,
    HeunEDMSampler,
    IdentityGuider,
    LegacyDDPMDiscretization,
    VanillaCFG,
    instantiate_from_config,
    known_targets,
    load_sampler,
    register,
    registry,
    resolve,
)

CONFIG_DIR = Path(__file__).parents[1] / "configs"
CONFIG_FILES = sorted(CONFIG_DIR.glob("*.yaml"))

SGM = "sgm.modules.diffusionmodules"
GM = "gm.modules.diffusionmodules"

# Where sgm (Stability-AI/generative-models) and mindone's gm port define each class: written out independently of
# the registry table, so a wrong module name in the registry is caught.
UPSTREAM_MODULES = {
    "EDMSampler": ("sampling", "sampler"),
    "EulerEDMSampler": ("sampling", "sampler"),
    "HeunEDMSampler": ("sampling", "sampler"),
    "AncestralSampler": ("sampling", "sampler"),
    "EulerAncestralSampler": ("sampling", "sampler"),
    "DPMPP2SAncestralSampler": ("sampling", "sampler"),
    "DPMPP2MSampler": ("sampling", "sampler"),
    "LinearMultistepSampler": ("sampling", "sampler"),
    "LCMSampler": (None, "sampler"),
    "DiffusersDDPMDiscretization": (None, "discretizer"),
    "EDMDiscretization": ("discretizer", "discretizer"),
    "LegacyDDPMDiscretization": ("discretizer", "discretizer"),
    "Img2ImgDiscretizationWrapper": ("discretizer", "discretizer"),
    "Txt2NoisyDiscretizationWrapper": ("discretizer", "discretizer"),
    "IdentityGuider": ("guiders", "guiders"),
    "VanillaCFG": ("guiders", "guiders"),
    "LinearPredictionGuider": ("guiders", "guiders"),
    "TrianglePredictionGuider": ("guiders", "guiders"),
    "TrapezoidPredictionGuider": ("guiders", "guiders"),
    "SpatiotemporalPredictionGuider": ("guiders", "guiders"),
    "NoDynamicThresholding": ("sampling_utils", "sampling_utils"),
    "DynamicThresholding": ("sampling_utils", None),  # gm's is Imagen's: registry._RENAMED
    "PanGuEulerEDMSampler": (None, "sampler"),
    "PanGuVanillaCFG": (None, "guiders"),
    "PanGuNoDynamicThresholding": (None, "sampling_utils"),
    "Denoiser": ("denoiser", "denoiser"),
    "DiscreteDenoiser": ("denoiser", "denoiser"),
    "EDMScaling": ("denoiser_scaling", "denoiser_scaling"),
    "EpsScaling": ("denoiser_scaling", "denoiser_scaling"),
    "VScaling": ("denoiser_scaling", "denoiser_scaling"),
    "VScalingWithEDMcNoise": ("denoiser_scaling", "denoiser_scaling"),
}


@pytest.fixture
def clean_registry():
    """Undo any register() a test does, so user names do not leak between tests."""
    saved = dict(registry._NAMES)
    yield
    registry._NAMES.clear()
    registry._NAMES.update(saved)


def euler_config(**params):
    base = {"num_steps": 10, "discretization_config": {"target": "edm"}}
    base.update(params)
    return {"target": "euler_edm", "params": base}


# ---------------------------------------------------------------------------------------------------------------------
# Name resolution
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["sgm", "gm"])
def test_upstream_packages_are_not_installed(module):
    """The alias tests below are only meaningful if sgm/gm cannot be imported."""
    assert importlib.util.find_spec(module) is None


def test_resolving_every_alias_imports_no_upstream_package():
    """sgm/gm dotted names and every shipped config resolve without importing torch, sgm or gm (torch may be
    installed for the optional benchmark baseline, so this runs in a fresh interpreter and inspects sys.modules)."""
    code = (
        "import sys, glob, os, edm_sampler\n"
        "from edm_sampler import registry\n"
        "for short in registry._BUILTINS:\n"
        "    for alias in registry.aliases_of(short): registry.resolve(alias)\n"
        "configs = os.path.join(os.path.dirname(edm_sampler.__file__), 'configs', '*.yaml')\n"
        "for path in glob.glob(configs): edm_sampler.load_sampler(path)\n"
        "print(sorted(m for m in ('torch', 'sgm', 'gm') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("short", sorted(registry._BUILTINS))
def test_every_builtin_name_resolves_to_one_class(short):
    module, cls_name, sgm_module, gm_module = registry._BUILTINS[short]
    expected = getattr(importlib.import_module(f"edm_sampler.{module}"), cls_name)
    assert isinstance(expected, type)
    assert resolve(short) is expected
    assert resolve(f"edm_sampler.{cls_name}") is expected
    assert resolve(f"edm_sampler.{module}.{cls_name}") is expected
    if hasattr(edm_sampler, cls_name):
        assert getattr(edm_sampler, cls_name) is expected
    if cls_name in UPSTREAM_MODULES:
        assert (sgm_module, gm_module) == UPSTREAM_MODULES[cls_name]
    else:
        assert (sgm_module, gm_module) == (None, None)
    if sgm_module:
        assert resolve(f"{SGM}.{sgm_module}.{cls_name}") is expected
    if gm_module:
        assert resolve(f"{GM}.{gm_module}.{cls_name}") is expected
    assert short in known_targets()
    assert registry.short_name(expected) == short
    spellings = {short, f"edm_sampler.{cls_name}", f"edm_sampler.{module}.{cls_name}"}
    spellings |= {f"{SGM}.{sgm_module}.{cls_name}"} if sgm_module else set()
    if gm_module:  # mindone's gm, and its SVD examples' sgm copy under two import paths
        spellings |= {f"{prefix}.{gm_module}.{cls_name}" for prefix in (GM, SGM, "modules.diffusionmodules")}
        assert resolve(f"modules.diffusionmodules.{gm_module}.{cls_name}") is expected
        assert resolve(f"{SGM}.{gm_module}.{cls_name}") is expected
    renamed = {path for path, name in registry._RENAMED.items() if name == short}  # gm's DynamicThresholding
    assert all(resolve(path) is expected for path in renamed)
    assert set(registry.aliases_of(short)) == spellings | renamed
    # that resolving imports no sgm/gm/torch is checked in a fresh interpreter (the bench tests may load torch)


def test_every_upstream_class_is_registered():
    registered = {cls for (_, cls, _, _) in registry._BUILTINS.values()}
    assert set(UPSTREAM_MODULES) <= registered


@pytest.mark.parametrize(
    "target, cls",
    [
        ("sgm.modules.diffusionmodules.sampling.EulerEDMSampler", EulerEDMSampler),
        ("gm.modules.diffusionmodules.sampler.HeunEDMSampler", HeunEDMSampler),
        ("sgm.modules.diffusionmodules.discretizer.LegacyDDPMDiscretization", LegacyDDPMDiscretization),
        ("gm.modules.diffusionmodules.guiders.VanillaCFG", VanillaCFG),
        ("sgm.modules.diffusionmodules.denoiser.DiscreteDenoiser", DiscreteDenoiser),
    ],
)
def test_upstream_dotted_targets_instantiate_without_allow_imports(target, cls):
    params = {
        EulerEDMSampler: {"num_steps": 3},
        HeunEDMSampler: {"num_steps": 3},
        LegacyDDPMDiscretization: {},
        VanillaCFG: {"scale": 1.5},
        DiscreteDenoiser: {
            "num_idx": 1000,
            "scaling_config": {"target": f"{SGM}.denoiser_scaling.EpsScaling"},
            "discretization_config": {"target": f"{SGM}.discretizer.LegacyDDPMDiscretization"},
        },
    }[cls]
    obj = instantiate_from_config({"target": target, "params": params})
    assert type(obj) is cls


# ---------------------------------------------------------------------------------------------------------------------
# instantiate_from_config
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [dict, OmegaConf.create], ids=["dict", "DictConfig"])
def test_instantiate_flat(wrap):
    disc = instantiate_from_config(wrap({"target": "edm", "params": {"sigma_min": 0.01, "sigma_max": 10, "rho": 5}}))
    assert type(disc) is EDMDiscretization
    assert (disc.sigma_min, disc.sigma_max, disc.rho) == (0.01, 10.0, 5.0)
    for value in (disc.sigma_min, disc.sigma_max, disc.rho):
        assert type(value) is float
    lo, hi = 0.01 ** (1 / 5), 10 ** (1 / 5)
    np.testing.assert_allclose(disc(3), [10.0, ((lo + hi) / 2) ** 5, 0.01, 0.0], rtol=1e-12)


@pytest.mark.parametrize("wrap", [dict, OmegaConf.create], ids=["dict", "DictConfig"])
def test_instantiate_without_params_uses_defaults(wrap):
    disc = instantiate_from_config(wrap({"target": "edm"}))
    assert (disc.sigma_min, disc.sigma_max, disc.rho) == (0.002, 80.0, 7.0)
    assert type(instantiate_from_config(wrap({"target": "identity", "params": None}))) is IdentityGuider


@pytest.mark.parametrize("wrap", [dict, OmegaConf.create], ids=["dict", "DictConfig"])
def test_instantiate_nested_configs(wrap):
    config = {
        "target": "heun_edm",
        "params": {
            "num_steps": 7,
            "s_churn": 1.5,
            "discretization_config": {"target": "legacy_ddpm", "params": {"num_timesteps": 500}},
            "guider_config": {
                "target": "vanilla_cfg",
                "params": {"scale": 3.5, "dyn_thresh_config": {"target": "no_dynamic_thresholding"}},
            },
        },
    }
    sampler = instantiate_from_config(wrap(config))
    assert type(sampler) is HeunEDMSampler
    assert sampler.num_steps == 7 and sampler.s_churn == 1.5
    assert type(sampler.discretization) is LegacyDDPMDiscretization
    assert sampler.discretization.num_timesteps == 500
    assert type(sampler.guider) is VanillaCFG and sampler.guider.scale == 3.5
    np.testing.assert_array_equal(sampler.get_sigmas(), LegacyDDPMDiscretization(num_timesteps=500)(7))


def test_instantiate_nested_denoiser_configs():
    den = instantiate_from_config(
        OmegaConf.create(
            {
                "target": "discrete_denoiser",
                "params": {
                    "num_idx": 1000,
                    "scaling_config": {"target": "eps_scaling"},
                    "discretization_config": {"target": "legacy_ddpm"},
                },
            }
        )
    )
    assert type(den) is DiscreteDenoiser and type(den.scaling) is EpsScaling
    np.testing.assert_array_equal(den.sigmas_host, LegacyDDPMDiscretization()(1000, do_append_zero=False, flip=True))


def test_instance_instead_of_config_is_returned_unchanged():
    disc = EDMDiscretization(0.01, 5.0, 3.0)
    assert instantiate_from_config(disc) is disc
    guider = VanillaCFG(2.0)
    sampler = instantiate_from_config(euler_config(discretization_config=disc, guider_config=guider))
    assert sampler.discretization is disc
    assert sampler.guider is guider
    sampler = EulerEDMSampler(discretization_config=disc, guider_config=guider, num_steps=4)
    assert sampler.discretization is disc and sampler.guider is guider


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# ---------------------------------------------------------------------------------------------------------------------
# instantiate_from_config: errors
# ---------------------------------------------------------------------------------------------------------------------


def test_unknown_short_target_lists_known_names():
    with pytest.raises(ConfigError) as info:
        instantiate_from_config({"target": "eulr_edm"})
    message = str(info.value)
    assert "eulr_edm" in message
    for name in ("euler_edm", "heun_edm", "edm", "legacy_ddpm", "vanilla_cfg", "identity", "eps_scaling"):
        assert name in message


@pytest.mark.parametrize("target", ["os.path.join", "collections.OrderedDict", "tabnanny.check", "no_such_pkg.Thing"])
def test_unregistered_dotted_target_refused_without_allow_imports(target):
    top = target.split(".")[0]
    was_loaded = top in sys.modules
    with pytest.raises(ConfigError, match="allow_imports") as info:
        instantiate_from_config({"target": target})
    assert target in str(info.value)
    assert (top in sys.modules) == was_loaded  # refused before importing anything


@pytest.mark.parametrize(
    "target",
    [
        f"{SGM}.guiders.NoSuchGuider",
        f"{GM}.sampler.NoSuchSampler",
        f"{SGM}.sampler.NoSuchSampler",
        "modules.diffusionmodules.discretizer.NoSuchWrapper",
    ],
)
def test_upstream_plugin_that_is_not_implemented_says_so(target):
    """Not the allow_imports hint, which cannot help: the plugin is missing here, and the message lists what is not."""
    with pytest.raises(ConfigError, match="is not implemented in edm_sampler") as info:
        instantiate_from_config({"target": target})
    message = str(info.value)
    assert "allow_imports" not in message
    for implemented in ("EulerEDMSampler", "DPMPP2MSampler", "VanillaCFG", "LegacyDDPMDiscretization"):
        assert implemented in message


def test_refused_target_through_load_sampler():
    with pytest.raises(ConfigError, match="allow_imports"):
        load_sampler({"sampler": {"target": "os.system", "params": {}}})


def test_allow_imports_imports_the_target():
    obj = instantiate_from_config({"target": "collections.OrderedDict", "params": {"a": 1, "b": 2}}, allow_imports=True)
    assert type(obj) is collections.OrderedDict
    assert list(obj.items()) == [("a", 1), ("b", 2)]


def test_allow_imports_with_missing_module_is_a_config_error():
    with pytest.raises(ConfigError, match="no_such_pkg_xyz.Thing"):
        instantiate_from_config({"target": "no_such_pkg_xyz.Thing"}, allow_imports=True)


def test_unknown_params_list_valid_params():
    with pytest.raises(ConfigError) as info:
        instantiate_from_config({"target": "edm", "params": {"sigma_mn": 0.1, "sigma_max": 10.0}})
    message = str(info.value)
    assert "sigma_mn" in message
    for valid in ("sigma_min", "sigma_max", "rho"):
        assert valid in message


def test_unknown_sampler_param_lists_valid_params():
    with pytest.raises(ConfigError) as info:
        instantiate_from_config({"target": "euler_edm", "params": {"steps": 10}})
    message = str(info.value)
    assert "steps" in message
    for valid in ("num_steps", "s_churn", "discretization_config", "guider_config", "init_noise"):
        assert valid in message


def test_missing_required_param_is_named():
    with pytest.raises(ConfigError, match="scale"):
        instantiate_from_config({"target": "vanilla_cfg"})
    with pytest.raises(ConfigError, match="missing.*scale"):
        instantiate_from_config({"target": "gm.modules.diffusionmodules.guiders.VanillaCFG", "params": {}})
    with pytest.raises(ConfigError, match="num_idx"):
        instantiate_from_config(
            {
                "target": "discrete_denoiser",
                "params": {
                    "scaling_config": {"target": "eps_scaling"},
                    "discretization_config": {"target": "legacy_ddpm"},
                },
            }
        )


def test_nested_unregistered_target_is_refused():
    config = euler_config(guider_config={"target": "collections.OrderedDict"})
    with pytest.raises(ConfigError, match="allow_imports"):
        instantiate_from_config(config)
    with pytest.raises(ConfigError, match="allow_imports"):
        load_sampler({"sampler": config})
    deeper = euler_config(
        guider_config={"target": "vanilla_cfg", "params": {"scale": 2.0, "dyn_thresh_config": {"target": "os.getcwd"}}}
    )
    with pytest.raises(ConfigError, match="allow_imports"):
        instantiate_from_config(deeper)


def test_allow_imports_reaches_nested_configs():
    config = euler_config(guider_config={"target": "types.SimpleNamespace", "params": {"scale": 2.0}})
    with pytest.raises(ConfigError, match="allow_imports"):
        instantiate_from_config(config)
    # with allow_imports the nested SimpleNamespace is built, and the sampler then refuses it as a guider
    with pytest.raises(TypeError, match="guider_config"):
        instantiate_from_config(config, allow_imports=True)


@pytest.mark.parametrize(
    "config, words",
    [
        ({"target": "edm", "param": {"rho": 3.0}}, ["param", "target, params"]),
        ({"target": "edm", "params": {}, "name": "x"}, ["name"]),
        ({"params": {"rho": 3.0}}, ["target"]),
        ({"target": "edm", "params": [0.002, 80.0]}, ["params must be a mapping"]),
        ({"target": "edm", "params": "rho=3"}, ["params must be a mapping"]),
        ({"target": ""}, ["target"]),
        ({"target": 5}, ["target"]),
    ],
)
def test_malformed_configs(config, words):
    for wrap in (dict, OmegaConf.create):
        with pytest.raises(ConfigError) as info:
            instantiate_from_config(wrap(config))
        for word in words:
            assert word in str(info.value)


def test_none_config_is_refused():
    with pytest.raises(ConfigError, match="target"):
        instantiate_from_config(None)


# ---------------------------------------------------------------------------------------------------------------------
# register()
# ---------------------------------------------------------------------------------------------------------------------


class HalfGuider(Guider):
    def __init__(self, scale: float = 0.5):
        self.scale = scale

    def __call__(self, denoised, sigma):
        return denoised * self.scale


@pytest.mark.usefixtures("clean_registry")
def test_registered_class_is_usable_from_config():
    assert register("test_half_guider", HalfGuider, aliases=("my_pkg.guiders.HalfGuider",)) is HalfGuider
    assert "test_half_guider" in known_targets()
    assert resolve("my_pkg.guiders.HalfGuider") is HalfGuider
    for target in ("test_half_guider", "my_pkg.guiders.HalfGuider"):
        sampler = load_sampler(euler_config(guider_config={"target": target, "params": {"scale": 0.25}}))
        assert type(sampler.guider) is HalfGuider and sampler.guider.scale == 0.25
    with pytest.raises(ConfigError, match="valid parameters: scale"):
        instantiate_from_config({"target": "test_half_guider", "params": {"scael": 1.0}})


@pytest.mark.usefixtures("clean_registry")
def test_register_as_decorator():
    @register("test_decorated_disc")
    class FixedDiscretization(EDMDiscretization):
        pass

    assert resolve("test_decorated_disc") is FixedDiscretization
    sampler = load_sampler(euler_config(discretization_config={"target": "test_decorated_disc"}))
    assert type(sampler.discretization) is FixedDiscretization


@pytest.mark.usefixtures("clean_registry")
def test_registering_a_taken_name_raises():
    with pytest.raises(ConfigError, match="euler_edm"):
        register("euler_edm", HalfGuider)
    assert resolve("euler_edm") is EulerEDMSampler
    with pytest.raises(ConfigError, match="already registered"):
        register("sgm.modules.diffusionmodules.guiders.VanillaCFG", HalfGuider)
    register("test_taken", HalfGuider)
    register("test_taken", HalfGuider)  # the same object again is fine
    with pytest.raises(ConfigError, match="test_taken"):
        register("test_taken", IdentityGuider)
    assert resolve("test_taken") is HalfGuider


@pytest.mark.usefixtures("clean_registry")
def test_failed_register_leaves_no_trace():
    with pytest.raises(ConfigError, match="euler_edm"):
        register("test_half_guider_partial", HalfGuider, aliases=("euler_edm",))
    assert "test_half_guider_partial" not in known_targets()
    with pytest.raises(ConfigError, match="unknown target"):
        resolve("test_half_guider_partial")


# ---------------------------------------------------------------------------------------------------------------------
# load_sampler
# ---------------------------------------------------------------------------------------------------------------------

SVD_STYLE = {
    "model": {
        "target": "sgm.models.diffusion.DiffusionEngine",
        "params": {
            "scale_factor": 0.18215,
            "denoiser_config": {
                "target": "sgm.modules.diffusionmodules.denoiser.Denoiser",
                "params": {"scaling_config": {"target": f"{SGM}.denoiser_scaling.VScalingWithEDMcNoise"}},
            },
            "network_config": {"target": "sgm.modules.diffusionmodules.video_model.VideoUNet", "params": {}},
            "sampler_config": {
                "target": f"{SGM}.sampling.EulerEDMSampler",
                "params": {
                    "discretization_config": {
                        "target": f"{SGM}.discretizer.EDMDiscretization",
                        "params": {"sigma_max": 700.0},
                    },
                    "guider_config": {"target": f"{SGM}.guiders.IdentityGuider"},
                },
            },
        },
    }
}


@pytest.mark.parametrize("as_path", [str, Path], ids=["str", "Path"])
def test_load_sampler_from_path(as_path):
    sampler = load_sampler(as_path(CONFIG_DIR / "heun_edm.yaml"))
    assert type(sampler) is HeunEDMSampler and sampler.num_steps == 18


@pytest.mark.parametrize("wrap", [dict, OmegaConf.create], ids=["dict", "DictConfig"])
def test_load_sampler_from_bare_block(wrap):
    sampler = load_sampler(wrap({"target": "heun_edm", "params": {"num_steps": 6, "s_noise": 1.003}}))
    assert type(sampler) is HeunEDMSampler
    assert sampler.num_steps == 6 and sampler.s_noise == 1.003
    assert type(sampler.discretization) is EDMDiscretization  # the default
    assert type(sampler.guider) is IdentityGuider


@pytest.mark.parametrize("wrap", [dict, OmegaConf.create], ids=["dict", "DictConfig"])
@pytest.mark.parametrize("key", ["sampler", "sampler_config"])
def test_load_sampler_from_sampler_block(wrap, key):
    other = {"target": "os.system", "params": {"command": "false"}}  # never instantiated
    sampler = load_sampler(wrap({key: euler_config(num_steps=12), "model": other}))
    assert type(sampler) is EulerEDMSampler and sampler.num_steps == 12


@pytest.mark.parametrize("wrap", [dict, OmegaConf.create], ids=["dict", "DictConfig"])
def test_load_sampler_from_sgm_model_config(wrap):
    sampler = load_sampler(wrap(SVD_STYLE))
    assert type(sampler) is EulerEDMSampler
    assert sampler.num_steps is None  # svd.yaml leaves it to the caller
    assert type(sampler.discretization) is EDMDiscretization
    assert sampler.discretization.sigma_max == 700.0 and sampler.discretization.sigma_min == 0.002
    assert type(sampler.guider) is IdentityGuider
    sigmas = sampler.get_sigmas(25)
    assert sigmas[0] == pytest.approx(700.0) and sigmas[-2] == pytest.approx(0.002) and sigmas[-1] == 0.0


def test_load_sampler_from_sgm_model_config_file(tmp_path):
    path = tmp_path / "svd_like.yaml"
    OmegaConf.save(OmegaConf.create(SVD_STYLE), path)
    sampler = load_sampler(path)
    assert type(sampler) is EulerEDMSampler and sampler.discretization.sigma_max == 700.0


def test_load_sampler_takes_the_svd_guider_with_num_frames_from_the_call():
    """SVD's guider block without num_frames (it then comes from model_kwargs['num_video_frames'])."""
    config = OmegaConf.create(SVD_STYLE)
    config.model.params.sampler_config.params.guider_config = {
        "target": f"{SGM}.guiders.LinearPredictionGuider",
        "params": {"max_scale": 2.5, "min_scale": 1.0},
    }
    guider = load_sampler(config).guider
    assert type(guider).__name__ == "LinearPredictionGuider" and guider.num_frames is None
    assert guider.for_call({"num_video_frames": 14}).num_frames == 14


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"num_steps": 5, "discretization_config": EDMDiscretization(0.01, 10.0, 3.0)}, id="instance"),
        pytest.param(
            {
                "num_steps": np.int64(5),
                "discretization_config": {
                    "target": "edm",
                    "params": {"sigma_min": 0.01, "sigma_max": 10.0, "rho": 3.0},
                },
            },
            id="numpy-int",
        ),
    ],
)
def test_load_sampler_accepts_what_instantiate_accepts(params):
    config = {"target": "euler_edm", "params": params}
    expected = instantiate_from_config(config).get_sigmas()
    np.testing.assert_allclose(expected, EDMDiscretization(0.01, 10.0, 3.0)(5), rtol=1e-12)
    sampler = load_sampler(config)
    np.testing.assert_array_equal(sampler.get_sigmas(), expected)


def test_load_sampler_missing_file():
    with pytest.raises(FileNotFoundError, match="no_such_config.yaml"):
        load_sampler(str(CONFIG_DIR / "no_such_config.yaml"))
    with pytest.raises(FileNotFoundError):
        load_sampler(CONFIG_DIR / "no_such_config.yaml")


def test_load_sampler_without_sampler_block():
    with pytest.raises(ConfigError, match="sampler"):
        load_sampler({"model": {"target": "glyphs"}})


def test_load_sampler_rejects_other_types():
    with pytest.raises(TypeError):
        load_sampler(42)


# ---------------------------------------------------------------------------------------------------------------------
# The shipped YAML configs
# ---------------------------------------------------------------------------------------------------------------------


def test_every_registered_sampler_has_a_shipped_config():
    from edm_sampler.samplers.base import BaseDiffusionSampler

    shipped = set()
    for path in CONFIG_FILES:
        block = OmegaConf.load(path).sampler
        shipped.add(block.sampler if "target" not in block else resolve(block.target).__name__)
    samplers = {
        cls
        for _, cls, _, _ in registry._BUILTINS.values()
        if isinstance(getattr(edm_sampler, cls, None), type)
        and issubclass(getattr(edm_sampler, cls), BaseDiffusionSampler)
    }
    assert samplers - {"EDMSampler"} <= shipped, sorted(samplers - shipped)


def test_config_directory_has_the_expected_files():
    names = {p.name for p in CONFIG_FILES}
    assert {
        "euler_edm.yaml",
        "heun_edm.yaml",
        "sdxl_base_euler.yaml",
        "mindone_sdxl_euler.yaml",
        "glyphs_heun_cfg.yaml",
        "sdxl_dpmpp_2m.yaml",
        "mindone_euler_ancestral.yaml",
        "dpmpp_2s_ancestral.yaml",
        "lms.yaml",
    } <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[p.name for p in CONFIG_FILES])
def test_every_config_file_builds_what_it_says(path):
    raw = OmegaConf.load(path)
    block = raw.sampler
    if "target" not in block:  # mindone's short form: its own tests check the mapping
        assert type(load_sampler(path)).__name__ == block.sampler
        return
    params = block.get("params") or {}
    sampler = load_sampler(path)

    assert type(sampler) is resolve(block.target)
    assert sampler.num_steps == params.get("num_steps")
    for name in ("s_churn", "s_tmin", "s_tmax", "s_noise", "eta", "order"):
        if name in params:
            assert getattr(sampler, name) == params[name], name

    disc_cfg = params.get("discretization_config")
    if disc_cfg is None:
        assert type(sampler.discretization) is EDMDiscretization
    else:
        assert type(sampler.discretization) is resolve(disc_cfg.target)
        for key, value in (disc_cfg.get("params") or {}).items():
            assert getattr(sampler.discretization, key) == value, key

    guider_cfg = params.get("guider_config")
    if guider_cfg is None:
        assert type(sampler.guider) is IdentityGuider
    else:
        assert type(sampler.guider) is resolve(guider_cfg.target)
        guider_params = guider_cfg.get("params") or {}
        if "scale" in guider_params:
            assert sampler.guider.scale == guider_params.scale

    if sampler.num_steps is not None:
        sigmas = sampler.get_sigmas()
        np.testing.assert_array_equal(sigmas, sampler.discretization(sampler.num_steps))
        assert len(sigmas) == sampler.num_steps + 1 and sigmas[-1] == 0.0

    for key in ("denoiser", "model"):
        if key in raw:
            obj = instantiate_from_config(raw[key])
            assert type(obj) is resolve(raw[key].target), key


@pytest.mark.parametrize("name, cls", [("euler_edm.yaml", EulerEDMSampler), ("heun_edm.yaml", HeunEDMSampler)])
def test_paper_configs(name, cls):
    sampler = load_sampler(CONFIG_DIR / name)
    assert type(sampler) is cls
    assert sampler.num_steps == 18
    disc = sampler.discretization
    assert type(disc) is EDMDiscretization and (disc.sigma_min, disc.sigma_max, disc.rho) == (0.002, 80.0, 7.0)
    assert type(sampler.guider) is IdentityGuider
    assert (sampler.s_churn, sampler.s_tmin, sampler.s_tmax, sampler.s_noise) == (0.0, 0.0, math.inf, 1.0)
    sigmas = sampler.get_sigmas()
    np.testing.assert_allclose(sigmas[:4], [80.0, 57.58598, 40.78557, 28.37458], rtol=1e-6)
    np.testing.assert_allclose(sigmas[-4:], [0.02293452, 0.007528020, 0.002, 0.0], rtol=1e-6)


def test_sdxl_base_config():
    path = CONFIG_DIR / "sdxl_base_euler.yaml"
    sampler = load_sampler(path)
    assert type(sampler) is EulerEDMSampler and sampler.num_steps == 40
    assert type(sampler.discretization) is LegacyDDPMDiscretization
    assert type(sampler.guider) is VanillaCFG and sampler.guider.scale == 5.0
    assert sampler.s_tmax == 999.0
    sigmas = sampler.get_sigmas()
    assert sigmas[0] == pytest.approx(14.614641, abs=5e-7) and sigmas[-1] == 0.0
    den = instantiate_from_config(OmegaConf.load(path).denoiser)
    assert type(den) is DiscreteDenoiser and type(den.scaling) is EpsScaling and den.num_idx == 1000
    np.testing.assert_array_equal(den.sigmas_host, LegacyDDPMDiscretization()(1000, do_append_zero=False, flip=True))


def test_mindone_config_matches_sgm_config():
    mindone = load_sampler(CONFIG_DIR / "mindone_sdxl_euler.yaml")
    sgm = load_sampler(CONFIG_DIR / "sdxl_base_euler.yaml")
    assert type(mindone) is type(sgm) is EulerEDMSampler
    assert type(mindone.guider) is VanillaCFG and mindone.guider.scale == 5.0
    np.testing.assert_array_equal(mindone.get_sigmas(), sgm.get_sigmas())


def test_glyphs_config_model_block():
    raw = OmegaConf.load(CONFIG_DIR / "glyphs_heun_cfg.yaml")
    sampler = load_sampler(raw)
    assert type(sampler) is HeunEDMSampler and type(sampler.guider) is VanillaCFG and sampler.guider.scale == 2.0
    model = instantiate_from_config(raw.model)
    assert type(model) is resolve("glyphs")
    assert model.images.shape == (10 * 24, 1, 24, 24)


def _mindone_guider(dyn_target, **extra):
    raw = OmegaConf.load(CONFIG_DIR / "mindone_sdxl_euler.yaml")
    raw.sampler.params.guider_config.params.dyn_thresh_config = {"target": dyn_target, **extra}
    return raw


def test_mindone_vanilla_cfg_with_no_dynamic_thresholding_loads():
    for target in (
        "no_dynamic_thresholding",
        f"{GM}.sampling_utils.NoDynamicThresholding",
        f"{SGM}.sampling_utils.NoDynamicThresholding",
    ):
        sampler = load_sampler(_mindone_guider(target))
        assert type(sampler.guider) is VanillaCFG and sampler.guider.scale == 5.0


@pytest.mark.parametrize("target, pattern", [("identity", "dyn_thresh_config"), ("edm", "dyn_thresh_config")])
def test_mindone_vanilla_cfg_with_other_thresholding_fails(target, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_sampler(_mindone_guider(target))


def test_mindone_dynamic_thresholding_loads():
    guider = load_sampler(_mindone_guider(f"{GM}.sampling_utils.DynamicThresholding")).guider
    assert guider.dyn_thresh is not None and "DynamicThresholding" in repr(guider)


# ---------------------------------------------------------------------------------------------------------------------
# Bad sampler parameters through a config
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, name, error",
    [
        ({"num_steps": 0}, "num_steps", ValueError),
        ({"num_steps": -4}, "num_steps", ValueError),
        ({"num_steps": 2.5}, "num_steps", TypeError),
        ({"s_noise": -1.0}, "s_noise", ValueError),
        ({"s_tmin": 5.0, "s_tmax": 1.0}, "s_tmin", ValueError),
        ({"s_churn": -1.0}, "s_churn", ValueError),
        ({"s_churn": float("nan")}, "s_churn", ValueError),
        ({"init_noise": "bogus"}, "init_noise", ValueError),
        (
            {"discretization_config": {"target": "edm", "params": {"sigma_min": 80.0, "sigma_max": 1.0}}},
            "sigma_min",
            ValueError,
        ),
        ({"discretization_config": {"target": "edm", "params": {"rho": -1.0}}}, "rho", ValueError),
        ({"guider_config": {"target": "vanilla_cfg", "params": {"scale": "high"}}}, "scale", TypeError),
    ],
)
@pytest.mark.parametrize("wrap", [dict, OmegaConf.create], ids=["dict", "DictConfig"])
def test_bad_sampler_params(params, name, error, wrap):
    with pytest.raises(error, match=name):
        load_sampler(wrap({"sampler": euler_config(**params)}))


def test_bad_sampler_param_in_yaml_file(tmp_path):
    raw = OmegaConf.load(CONFIG_DIR / "heun_edm.yaml")
    raw.sampler.params.s_noise = -1.0
    path = tmp_path / "bad.yaml"
    OmegaConf.save(raw, path)
    with pytest.raises(ValueError, match="s_noise"):
        load_sampler(path)


@pytest.mark.parametrize("cls", [EDMSampler, EulerEDMSampler, HeunEDMSampler])
def test_default_sampler_has_paper_discretization(cls):
    sampler = cls(num_steps=5)
    np.testing.assert_allclose(sampler.get_sigmas(), [80.0, 17.527830, 2.515219, 0.1697528, 0.002, 0.0], rtol=1e-6)
