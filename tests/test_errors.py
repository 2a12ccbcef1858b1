"""Bad input fails early and clearly: the right exception type, the parameter named, no model call made."""

import numpy as np
import pytest

from mindspore import Tensor

from edm_sampler import (
    ConfigError,
    EDMDiscretization,
    EulerEDMSampler,
    HeunEDMSampler,
    IdentityGuider,
    ModelOutputError,
    VanillaCFG,
)

X = Tensor(np.ones((2, 3), np.float32))


class RecordingModel:
    def __init__(self, fn=lambda x, sigma, cond: x * 0.5):
        self.fn, self.calls = fn, 0

    def __call__(self, x, sigma, cond, **kwargs):
        self.calls += 1
        return self.fn(x, sigma, cond)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(num_steps=0), ValueError, "num_steps must be >= 1"),
        (dict(num_steps=-3), ValueError, "num_steps"),
        (dict(num_steps=2.5), TypeError, "num_steps must be an integer"),
        (dict(s_noise=-0.1), ValueError, "s_noise must be >= 0"),
        (dict(s_churn=-1.0), ValueError, "s_churn must be >= 0"),
        (dict(s_tmin=2.0, s_tmax=1.0), ValueError, "s_tmin must be <= s_tmax"),
        (dict(s_churn=float("nan")), ValueError, "s_churn must be a finite number"),
        (dict(s_churn="1"), TypeError, "s_churn must be a real number"),
        (dict(init_noise="ddpm"), ValueError, r"init_noise must be one of 'sgm', 'edm', 'prescaled'"),
        (
            dict(discretization_config={"target": "edm", "params": {"sigma_min": 1.0, "sigma_max": 1.0}}),
            ValueError,
            "sigma_min must be < sigma_max",
        ),
        (
            dict(discretization_config={"target": "edm", "params": {"sigma_min": -1.0}}),
            ValueError,
            "sigma_min must be > 0",
        ),
        (dict(discretization_config={"target": "edm", "params": {"rho": 0}}), ValueError, "rho must be > 0"),
        (dict(discretization_config={"target": "nope"}), ConfigError, "unknown target 'nope'"),
        (
            dict(discretization_config={"target": "karas"}),
            ConfigError,
            r"unknown target 'karas'; did you mean 'karras'",
        ),
        (dict(guider_config={"target": "vanilla_cfg"}), ConfigError, "missing required parameter.*scale"),
        (
            dict(guider_config={"target": "vanilla_cfg", "params": {"scale": 2, "scal": 1}}),
            ConfigError,
            "unknown parameter.*scal.*valid parameters: scale, dyn_thresh_config",
        ),
        (dict(guider_config={"target": "my.module.Guider"}), ConfigError, "allow_imports"),
        (dict(guider_config=42), TypeError, "guider_config must build a guider"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        HeunEDMSampler(**kwargs)


def test_missing_num_steps_and_bad_call_num_steps():
    model = RecordingModel()
    with pytest.raises(ValueError, match="num_steps is required"):
        EulerEDMSampler()(model, X)
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        EulerEDMSampler(num_steps=3)(model, X, num_steps=0)
    assert model.calls == 0


@pytest.mark.parametrize(
    "x, exc, match",
    [
        (np.ones((2, 3), np.float32), TypeError, "x must be a mindspore Tensor.*ndarray"),
        (Tensor(np.ones((2, 3), np.int32)), TypeError, "x must be a floating-point Tensor"),
        ([[1.0, 2.0]], TypeError, "x must be a mindspore Tensor"),
    ],
)
def test_bad_x(x, exc, match):
    model = RecordingModel()
    with pytest.raises(exc, match=match):
        EulerEDMSampler(num_steps=2)(model, x)
    assert model.calls == 0


@pytest.mark.parametrize(
    "generator, exc, match",
    [
        ([1, 2, 3], ValueError, "generator: got a list of 3 generators for a batch of 2"),
        ("seed", TypeError, "generator must be an int seed or a numpy.random.Generator"),
        ([1, "x"], TypeError, r"generator\[1\]"),
        (-1, ValueError, "seeds must be >= 0"),
    ],
)
def test_bad_generator(generator, exc, match):
    model = RecordingModel()
    with pytest.raises(exc, match=match):
        EulerEDMSampler(s_churn=1.0, num_steps=2)(model, X, generator=generator)
    assert model.calls == 0


@pytest.mark.parametrize(
    "cond, uc, match",
    [
        (
            {"vector": Tensor(np.ones((2, 4), np.float32))},
            {"crossattn": Tensor(np.ones((2, 4), np.float32))},
            "cond and uc must have the same keys",
        ),
        (
            {"vector": Tensor(np.ones((3, 4), np.float32))},
            {"vector": Tensor(np.ones((3, 4), np.float32))},
            r"cond\['vector'\] has batch size 3, but x has batch size 2",
        ),
        (
            {"vector": Tensor(np.ones((2, 4), np.float32))},
            {"vector": Tensor(np.ones((1, 4), np.float32))},
            r"uc\['vector'\] has batch size 1",
        ),
        (
            {"vector": Tensor(np.ones((2, 4), np.float32)), "size": Tensor(np.ones(2, np.float32))},
            {"vector": Tensor(np.ones((2, 4), np.float32)), "size": Tensor(np.zeros(2, np.float32))},
            r"cond\['size'\] and uc\['size'\] differ",
        ),
    ],
)
def test_bad_conditioning_for_cfg(cond, uc, match):
    model = RecordingModel()
    with pytest.raises(ValueError, match=match):
        EulerEDMSampler(num_steps=2, guider_config=VanillaCFG(2.0))(model, X, cond, uc)
    assert model.calls == 0


def test_cfg_needs_dict_conditioning():
    model = RecordingModel()
    with pytest.raises(TypeError, match="VanillaCFG needs cond to be a dict"):
        EulerEDMSampler(num_steps=2, guider_config=VanillaCFG(2.0))(model, X, cond=None)
    assert model.calls == 0


def test_identity_guider_checks_batch_sizes_too():
    model = RecordingModel()
    with pytest.raises(ValueError, match="batch size"):
        EulerEDMSampler(num_steps=2, guider_config=IdentityGuider())(
            model, X, {"crossattn": Tensor(np.ones((5, 7), np.float32))}
        )
    assert model.calls == 0


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(callback=3), TypeError, "callback must be callable"),
        (dict(model_kwargs=[1]), TypeError, "model_kwargs must be a dict"),
        (dict(noise_sampler="x"), TypeError, "noise_sampler must be callable"),
    ],
)
def test_bad_call_options(kwargs, exc, match):
    model = RecordingModel()
    with pytest.raises(exc, match=match):
        EulerEDMSampler(num_steps=2)(model, X, **kwargs)
    assert model.calls == 0


def test_non_callable_denoiser():
    with pytest.raises(TypeError, match="denoiser must be callable"):
        EulerEDMSampler(num_steps=2)(object(), X)


def test_model_returning_wrong_shape_names_step_and_sigma():
    model = RecordingModel(lambda x, sigma, cond: x[:, :2])
    with pytest.raises(ModelOutputError, match=r"shape \(2, 2\) at step 0 \(sigma=80\); expected \(2, 3\)"):
        EulerEDMSampler(num_steps=4)(model, X)
    assert model.calls == 1


def test_model_returning_non_tensor():
    with pytest.raises(ModelOutputError, match="returned ndarray at step 0"):
        EulerEDMSampler(num_steps=4)(lambda x, s, c: np.zeros((2, 3)), X)


def _poisoned_at(sigma_bad: float, bad: float):
    """A model that is finite except when evaluated at ``sigma_bad``; it records the sigmas it saw."""

    def model(x, sigma, cond):
        seen = float(sigma.asnumpy()[0])
        model.sigmas.append(seen)
        return x * 0.5 + (bad if abs(seen - sigma_bad) < 1e-3 * sigma_bad else 0.0)

    model.sigmas = []
    return model


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_step_stops_at_the_bad_evaluation(bad):
    sigmas = EDMDiscretization()(5)
    model = _poisoned_at(sigmas[2], bad)
    with pytest.raises(ModelOutputError, match=rf"NaN/Inf at step 2 \(sigma={sigmas[2]:.6g}\)"):
        EulerEDMSampler(num_steps=5, check_finite="step")(model, X)
    assert len(model.sigmas) == 3  # nothing evaluated after the bad step


@pytest.mark.parametrize("sampler_cls", [EulerEDMSampler, HeunEDMSampler])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_call_raises_when_the_call_ends(sampler_cls, bad):
    """The default: a non-finite model output anywhere reaches the result through the update, checked once."""
    sigmas = EDMDiscretization()(5)
    model = _poisoned_at(sigmas[2], bad)
    with pytest.raises(ModelOutputError, match="result holds NaN/Inf after .* model evaluations.*check_finite='step'"):
        sampler_cls(num_steps=5)(model, X)


def test_check_finite_off_returns_the_non_finite_result():
    sigmas = EDMDiscretization()(5)
    out = EulerEDMSampler(num_steps=5, check_finite="off")(_poisoned_at(sigmas[2], np.nan), X)
    assert np.isnan(out.asnumpy()).all()


@pytest.mark.parametrize("value", ["always", None, True, "STEP"])
def test_check_finite_rejects_unknown_values(value):
    with pytest.raises(ValueError, match="check_finite must be one of 'call', 'step', 'off'"):
        EulerEDMSampler(num_steps=5, check_finite=value)


def test_noise_sampler_returning_wrong_shape():
    with pytest.raises(ValueError, match=r"noise_sampler returned shape \(1, 3\), expected \(2, 3\)"):
        EulerEDMSampler(s_churn=1.0, num_steps=2)(
            RecordingModel(), X, noise_sampler=lambda s, sn: np.zeros((1, 3), np.float32)
        )


def test_bad_custom_discretization_output():
    class Increasing:
        def __call__(self, n):
            return np.linspace(1.0, 2.0, n + 1)

    model = RecordingModel()
    with pytest.raises(ValueError, match="strictly decreasing"):
        EulerEDMSampler(num_steps=3, discretization_config=Increasing())(model, X)
    assert model.calls == 0


def test_dyn_thresh_other_than_noop_is_refused():
    with pytest.raises(ConfigError, match="dyn_thresh_config"):
        VanillaCFG(2.0, dyn_thresh_config=IdentityGuider())
