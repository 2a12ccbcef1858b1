"""The rectified-flow network adapters: FlowVelocityScaling, FlowX0Scaling, FlowEpsScaling, behind a Denoiser."""

import numpy as np
import pytest
from conftest import to_np
from omegaconf import OmegaConf

import mindspore as ms
from mindspore import Tensor

import edm_sampler
from edm_sampler import Denoiser, EDMScaling, EpsScaling, VScaling, VScalingWithEDMcNoise, parametrization
from edm_sampler.models.convnet import TinyConvNet
from edm_sampler.registry import instantiate_from_config, resolve
from edm_sampler.scalings import FlowEpsScaling, FlowScaling, FlowVelocityScaling, FlowX0Scaling, Scaling

SIGMAS = np.array([1e-3, 0.05, 0.3, 0.5, 0.8, 0.999], np.float64)
B, SHAPE = 3, (4, 8, 8)


def velocity_ref(s, m):
    return np.ones_like(s), -s, np.ones_like(s), s * m


def x0_ref(s, m):
    return np.zeros_like(s), np.ones_like(s), np.ones_like(s), s * m


def eps_ref(s, m):
    return 1.0 / (1.0 - s), -s / (1.0 - s), np.ones_like(s), s * m


FLOW_SCALINGS = [
    pytest.param(FlowVelocityScaling, velocity_ref, id="velocity"),
    pytest.param(FlowX0Scaling, x0_ref, id="x0"),
    pytest.param(FlowEpsScaling, eps_ref, id="eps"),
]


# ---------------------------------------------------------------------------------------------------------------------
# Coefficients
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multiplier", [1.0, 1000.0, 2.5])
@pytest.mark.parametrize("cls, ref", FLOW_SCALINGS)
def test_coefficients_match_the_formulas(cls, ref, multiplier):
    scaling = cls(multiplier=multiplier)
    got = scaling(SIGMAS)
    for c, expected in zip(got, ref(SIGMAS, multiplier)):
        assert c.dtype == np.float64 and c.shape == SIGMAS.shape
        np.testing.assert_allclose(c, expected, rtol=1e-15, atol=0)
    # the sgm Tensor convention: float32 Tensors in, float32 Tensors out
    sigma32 = SIGMAS.astype(np.float32)
    tensors = scaling(Tensor(sigma32))
    for t, expected in zip(tensors, ref(sigma32.astype(np.float64), multiplier)):
        assert isinstance(t, Tensor) and t.dtype == ms.float32 and tuple(t.shape) == SIGMAS.shape
        np.testing.assert_allclose(to_np(t), expected.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("cls", [FlowVelocityScaling, FlowX0Scaling, FlowEpsScaling])
def test_default_multiplier_is_1000(cls):
    scaling = cls()
    assert scaling.multiplier == 1000.0
    np.testing.assert_allclose(scaling(np.array([0.25, 0.5]))[3], [250.0, 500.0], rtol=1e-15)
    assert repr(scaling) == f"{cls.__name__}(multiplier=1000.0)"


@pytest.mark.parametrize("cls", [FlowVelocityScaling, FlowX0Scaling])
def test_velocity_and_x0_are_defined_at_pure_noise(cls):
    c_skip, c_out, c_in, c_noise = cls()(np.array([1.0]))
    assert np.all(np.isfinite([c_skip, c_out, c_in, c_noise]))
    assert float(c_noise[0]) == 1000.0


@pytest.mark.parametrize("sigma", [1.0, 1.5, np.array([0.5, 1.0])])
def test_eps_scaling_refuses_sigma_one(sigma):
    with pytest.raises(ValueError, match=r"FlowEpsScaling: .*undefined at sigma >= 1.*start the schedule below 1"):
        FlowEpsScaling()(sigma)
    with pytest.raises(ValueError, match="FlowEpsScaling"):
        FlowEpsScaling()(Tensor(np.atleast_1d(np.asarray(sigma, np.float32))))


def test_eps_scaling_refuses_sigma_one_through_a_bound_network():
    bound = Denoiser(FlowEpsScaling()).bind(VelocityNet())
    x = Tensor(np.zeros((B, *SHAPE), np.float32))
    with pytest.raises(ValueError, match="FlowEpsScaling"):
        bound(x, Tensor(np.ones(B, np.float32)), None)


@pytest.mark.parametrize("cls", [FlowVelocityScaling, FlowX0Scaling, FlowEpsScaling])
@pytest.mark.parametrize(
    "bad, error, message",
    [
        (0.0, ValueError, "multiplier must be > 0"),
        (-1000.0, ValueError, "multiplier must be > 0"),
        (float("inf"), ValueError, "multiplier must be a finite number"),
        ("1000", TypeError, "multiplier must be a real number"),
        (True, TypeError, "multiplier must be a real number"),
    ],
)
def test_multiplier_is_checked(cls, bad, error, message):
    with pytest.raises(error, match=message):
        cls(multiplier=bad)


# ---------------------------------------------------------------------------------------------------------------------
# Parametrization declared by the scaling
# ---------------------------------------------------------------------------------------------------------------------


def test_scalings_declare_their_parametrization():
    assert Scaling.parametrization == "ve"
    for cls in (EDMScaling, EpsScaling, VScaling, VScalingWithEDMcNoise):
        assert cls.parametrization == "ve"
        assert Denoiser(cls()).parametrization == "ve"
    for cls in (FlowVelocityScaling, FlowX0Scaling, FlowEpsScaling):
        assert issubclass(cls, FlowScaling) and cls.parametrization == "flow"
        assert "parametrization" not in vars(cls())  # a class attribute: not in the repr, not a parameter
        assert Denoiser(cls()).parametrization == "flow"


def test_registered_short_names():
    for short, cls in [
        ("flow_velocity_scaling", FlowVelocityScaling),
        ("flow_x0_scaling", FlowX0Scaling),
        ("flow_eps_scaling", FlowEpsScaling),
    ]:
        assert resolve(short) is cls
        assert resolve(f"edm_sampler.scalings.{cls.__name__}") is cls
        built = instantiate_from_config({"target": short, "params": {"multiplier": 1.0}})
        assert type(built) is cls and built.multiplier == 1.0


# ---------------------------------------------------------------------------------------------------------------------
# A real MindSpore velocity network behind Denoiser(FlowVelocityScaling())
# ---------------------------------------------------------------------------------------------------------------------


class VelocityNet(TinyConvNet):
    """A flow network in the diffusers convention, ``net(x, timestep, cond)``; records every timestep it receives."""

    def __init__(self):
        super().__init__(in_channels=SHAPE[0], channels=8, seed=3)
        self.timesteps = []

    def construct(self, x, timestep, cond=None):
        self.timesteps.append(timestep)
        return super().construct(x, timestep / 1000.0, cond)


def _inputs(rng, sigmas):
    sigma = np.asarray(sigmas, np.float32)
    x0 = rng.uniform(-1.0, 1.0, (B, *SHAPE))
    eps = rng.standard_normal((B, *SHAPE))
    s = sigma.astype(np.float64).reshape(-1, 1, 1, 1)
    x = ((1 - s) * x0 + s * eps).astype(np.float32)
    cond = {"vector": Tensor(np.eye(10, dtype=np.float32)[[1, 4, 7]])}
    return Tensor(x), Tensor(sigma), cond


def _by_hand(net, x, sigma, cond, multiplier):
    """The network's raw output at timestep = sigma * multiplier (float32, shape (B,)), as float64."""
    t = (to_np(sigma).astype(np.float64) * multiplier).astype(np.float32)
    return to_np(net(x, Tensor(t), cond)).astype(np.float64), t


@pytest.mark.parametrize("sigmas", [[1.0, 1.0, 1.0], [0.6, 0.6, 0.6], [1.0, 0.37, 0.004]], ids=["one", "same", "mixed"])
@pytest.mark.parametrize("multiplier", [1000.0, 1.0])
def test_velocity_network_behind_a_denoiser(rng, sigmas, multiplier):
    net = VelocityNet()
    bound = Denoiser(FlowVelocityScaling(multiplier)).bind(net)
    assert bound.parametrization == "flow"
    assert parametrization.of(bound).name == "flow"
    x, sigma, cond = _inputs(rng, sigmas)
    out = bound(x, sigma, cond)
    assert out.dtype == ms.float32 and tuple(out.shape) == (B, *SHAPE)
    (received,) = net.timesteps
    assert received.dtype == ms.float32 and tuple(received.shape) == (B,)
    v, t = _by_hand(net, x, sigma, cond, multiplier)
    np.testing.assert_array_equal(to_np(received), t)  # timestep = sigma * multiplier, float32 (B,)
    s = to_np(sigma).astype(np.float64).reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(to_np(out), to_np(x) - s * v, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sigmas", [[0.6, 0.6, 0.6], [0.9, 0.37, 0.004]], ids=["same", "mixed"])
def test_x0_and_eps_networks_behind_a_denoiser(rng, sigmas):
    net = VelocityNet()
    x, sigma, cond = _inputs(rng, sigmas)
    raw, _ = _by_hand(net, x, sigma, cond, 1000.0)
    s = to_np(sigma).astype(np.float64).reshape(-1, 1, 1, 1)
    x64 = to_np(x).astype(np.float64)
    np.testing.assert_allclose(to_np(Denoiser(FlowX0Scaling()).bind(net)(x, sigma, cond)), raw, rtol=1e-6, atol=1e-6)
    eps_out = to_np(Denoiser(FlowEpsScaling()).bind(net)(x, sigma, cond))
    np.testing.assert_allclose(eps_out, (x64 - s * raw) / (1 - s), rtol=1e-5, atol=1e-5)


def test_flow_denoiser_from_a_config(rng):
    config = {
        "target": "denoiser",
        "params": {"scaling_config": {"target": "flow_velocity_scaling", "params": {"multiplier": 1.0}}},
    }
    for source in (config, OmegaConf.create(config)):
        denoiser = instantiate_from_config(source)
        assert type(denoiser) is Denoiser and type(denoiser.scaling) is FlowVelocityScaling
        assert denoiser.scaling.multiplier == 1.0 and denoiser.parametrization == "flow"
    net = VelocityNet()
    bound = denoiser.bind(net)
    assert bound.parametrization == "flow"
    x, sigma, cond = _inputs(rng, [0.25, 0.5, 1.0])
    out = to_np(bound(x, sigma, cond))
    v, t = _by_hand(net, x, sigma, cond, 1.0)
    np.testing.assert_array_equal(t, np.array([0.25, 0.5, 1.0], np.float32))  # multiplier 1: timestep = sigma
    np.testing.assert_array_equal(to_np(net.timesteps[0]), t)
    s = to_np(sigma).astype(np.float64).reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(out, to_np(x) - s * v, rtol=1e-6, atol=1e-6)


def test_flow_denoiser_from_a_model_yaml(tmp_path):
    path = tmp_path / "flux.yaml"
    path.write_text(
        "model:\n"
        "  params:\n"
        "    denoiser_config:\n"
        "      target: edm_sampler.Denoiser\n"
        "      params:\n"
        "        scaling_config:\n"
        "          target: flow_eps_scaling\n"
        "          params: {multiplier: 1.0}\n"
    )
    denoiser = edm_sampler.load_denoiser(str(path))
    assert type(denoiser.scaling) is FlowEpsScaling and denoiser.parametrization == "flow"
