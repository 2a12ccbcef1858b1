"""The built-in exact denoisers under the flow parametrization ``x = (1 - sigma) x0 + sigma eps``, against float64
NumPy posterior means computed another way (the VE map, direct distances, quadrature)."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import to_np
from reference import gmm_denoiser

from mindspore import Tensor

import edm_sampler
from edm_sampler import parametrization
from edm_sampler.models import GaussianDenoiser, GaussianMixtureDenoiser, GlyphDenoiser
from edm_sampler.registry import instantiate_from_config

SIGMAS = [1e-3, 0.05, 0.3, 0.7, 0.95, 1.0]
MEANS, STDS, WEIGHTS = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.1, 0.3, 0.2], [0.5, 0.3, 0.2]


def f32(value):
    """sigma as the model sees it: rounded to float32 (the protocol's sigma is a float32 Tensor)."""
    return float(np.float32(value))


def batch_sigma(value, batch):
    return Tensor(np.full((batch,), value, np.float32))


def via_ve(ve_denoiser, x, sigma, at_one):
    """``D_flow(x, s) = D_ve(x / (1 - s), s / (1 - s))`` for s < 1 (x / a is x0 + (s / a) eps), ``at_one`` at s = 1."""
    if sigma >= 1.0:
        return np.broadcast_to(at_one, x.shape)
    alpha = 1.0 - sigma
    return ve_denoiser(x / alpha, sigma / alpha)


def flow_state(rng, x0, sigma):
    return ((1.0 - sigma) * x0 + sigma * rng.standard_normal(x0.shape)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------------------------------


def gaussian_ve(sd):
    return lambda x, s: x * sd**2 / (sd**2 + s**2)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 4, 4)])
@pytest.mark.parametrize("sigma", SIGMAS)
def test_gaussian_flow_is_the_posterior_mean(sigma, shape, rng):
    model = GaussianDenoiser(0.7, parametrization="flow")
    x = flow_state(rng, 0.7 * rng.standard_normal(shape), sigma)
    out = to_np(model(Tensor(x), batch_sigma(sigma, shape[0])))
    ref = via_ve(gaussian_ve(0.7), x.astype(np.float64), f32(sigma), 0.0)
    np.testing.assert_allclose(out, ref, rtol=2e-6, atol=1e-7)
    # and the closed form of the brief: (1 - s) sd^2 x / ((1 - s)^2 sd^2 + s^2)
    s = f32(sigma)
    np.testing.assert_allclose(out, (1 - s) * 0.49 * x / ((1 - s) ** 2 * 0.49 + s**2), rtol=2e-6, atol=1e-7)


def test_gaussian_flow_per_sample_sigmas(rng):
    sigmas = np.array([1.0, 0.5, 1e-3, 0.9], np.float32)
    x = rng.standard_normal((4, 3, 2)).astype(np.float32)
    out = to_np(GaussianDenoiser(0.5, parametrization="flow")(Tensor(x), Tensor(sigmas)))
    for row, xi, s in zip(out, x, sigmas.astype(np.float64)):
        np.testing.assert_allclose(row, via_ve(gaussian_ve(0.5), xi.astype(np.float64), s, 0.0), rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(out[0], 0.0)  # pure noise says nothing about x0: the prior mean


def test_gaussian_ve_path_unchanged(rng):
    x = rng.standard_normal((3, 2, 2)).astype(np.float32)
    sigma = Tensor(np.array([0.1, 1.0, 30.0], np.float32))
    np.testing.assert_array_equal(
        to_np(GaussianDenoiser(0.7)(Tensor(x), sigma)), to_np(GaussianDenoiser(0.7, "ve")(Tensor(x), sigma))
    )


def _flow_posterior_mean_gaussian(x, sigma, sd):
    """E[x0 | x] for x = (1 - s) x0 + s eps, x0 ~ N(0, sd^2), by Bayes on a grid (scalar x)."""
    grid = np.linspace(-8 * sd, 8 * sd, 200_001)
    log_post = -0.5 * (grid / sd) ** 2 - 0.5 * ((x - (1 - sigma) * grid) / sigma) ** 2
    w = np.exp(log_post - log_post.max())
    return float((w * grid).sum() / w.sum())


@pytest.mark.parametrize("sigma", [0.05, 0.5, 1.0])
def test_gaussian_flow_matches_bayes_on_a_grid(sigma):
    xs = np.array([-1.3, 0.2, 0.9], np.float32)
    out = to_np(GaussianDenoiser(0.5, parametrization="flow")(Tensor(xs), batch_sigma(sigma, 3)))
    ref = [_flow_posterior_mean_gaussian(float(x), f32(sigma), 0.5) for x in xs]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sigma_0, sigma", [(1.0, 0.5), (1.0, 1e-3), (0.8, 0.2), (0.3, 0.9)])
def test_gaussian_flow_exact_solution_solves_the_ode(sigma_0, sigma, rng):
    sd = 0.6
    model = GaussianDenoiser(sd, parametrization="flow")
    x0 = rng.standard_normal((4, 3))
    x = model.exact_solution(x0, sigma_0, sigma)
    np.testing.assert_allclose(model.exact_solution(x0, sigma_0, sigma_0), x0, rtol=1e-15)
    # dx/dsigma by central differences == (x - D(x, sigma)) / sigma, D the float64 posterior mean
    h = 1e-6 * sigma
    dx = (model.exact_solution(x0, sigma_0, sigma + h) - model.exact_solution(x0, sigma_0, sigma - h)) / (2 * h)
    np.testing.assert_allclose(dx, (x - via_ve(gaussian_ve(sd), x, sigma, 0.0)) / sigma, rtol=1e-6)


def test_gaussian_flow_exact_solution_carries_the_flow_marginal(rng):
    """Pure noise at sigma = 1 is carried to the flow marginal N(0, (1 - s)^2 sd^2 + s^2) at every s, and to the
    data N(0, sd^2) at 0."""
    sd = 0.5
    model = GaussianDenoiser(sd, parametrization="flow")
    noise = rng.standard_normal(200_000)
    for sigma in (0.7, 0.2, 0.0):
        ours = model.exact_solution(noise, 1.0, sigma)
        direct = (1 - sigma) * sd * rng.standard_normal(noise.size) + sigma * rng.standard_normal(noise.size)
        assert abs(ours.std() - direct.std()) < 0.01
        assert ours.std() == pytest.approx(np.sqrt((1 - sigma) ** 2 * sd**2 + sigma**2), rel=1e-2)


def test_gaussian_flow_exact_solution_agrees_with_integrating_the_model(rng):
    """Heun on dx/dsigma = (x - D) / sigma, D being the model itself (float32), lands on exact_solution."""
    model = GaussianDenoiser(0.5, parametrization="flow")
    x = rng.standard_normal((4, 3))
    start = x.copy()
    sigmas = np.linspace(1.0, 0.05, 201)

    def slope(state, s):
        d = to_np(model(Tensor(state.astype(np.float32)), batch_sigma(s, len(state)))).astype(np.float64)
        return (state - d) / s

    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        k1 = slope(x, s)
        guess = x + (s_next - s) * k1
        x = x + (s_next - s) * 0.5 * (k1 + slope(guess, s_next))
    np.testing.assert_allclose(x, model.exact_solution(start, 1.0, 0.05), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# Gaussian mixture
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", SIGMAS)
def test_gaussian_mixture_flow_matches_float64(sigma, rng):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization="flow")
    x0 = model.sample(16, rng)
    x = flow_state(rng, x0, sigma)
    x[:2] = rng.standard_normal((2, 2)) * 3.0  # and a few points far from the data
    out = to_np(model(Tensor(x), batch_sigma(sigma, 16)))
    assert np.all(np.isfinite(out))
    mixture_mean = np.average(MEANS, axis=0, weights=WEIGHTS)
    ref = via_ve(gmm_denoiser(MEANS, STDS, WEIGHTS), x.astype(np.float64), f32(sigma), mixture_mean)
    np.testing.assert_allclose(out, ref, rtol=2e-5, atol=2e-5)


def test_gaussian_mixture_flow_at_pure_noise_is_the_mixture_mean(rng):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization="flow")
    x = (rng.standard_normal((8, 2)) * 5).astype(np.float32)
    out = to_np(model(Tensor(x), batch_sigma(1.0, 8)))
    np.testing.assert_allclose(out, np.broadcast_to(np.average(MEANS, axis=0, weights=WEIGHTS), (8, 2)), atol=1e-6)


def test_gaussian_mixture_flow_small_sigma_returns_the_clean_point(rng):
    """At sigma -> 0, x = (1 - sigma) x0: D(x) ~ x / (1 - sigma) = x0 for x0 on the data."""
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization="flow")
    x0 = model.sample(32, rng).astype(np.float32)
    for sigma in (1e-3, 1e-5):
        out = to_np(model(Tensor(((1 - sigma) * x0).astype(np.float32)), batch_sigma(sigma, 32)))
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, x0, atol=5e-4)


@pytest.mark.parametrize("sigma", [0.1, 0.5, 0.9, 1.0])
def test_gaussian_mixture_flow_matches_quadrature_in_1d(sigma):
    """An independent check in one dimension: E[x0 | x] = int x0 p(x0) N(x; (1 - s) x0, s^2) dx0 / int ..."""
    means, stds, weights = [[-1.0], [0.5], [2.0]], [0.2, 0.4, 0.1], [0.2, 0.5, 0.3]
    model = GaussianMixtureDenoiser(means, stds, weights, parametrization="flow")
    xs = np.array([[-1.5], [0.0], [0.4], [1.7]], np.float32)
    out = to_np(model(Tensor(xs), batch_sigma(sigma, 4)))[:, 0]
    s = f32(sigma)
    grid = np.linspace(-4.0, 5.0, 400_001)
    prior = sum(w * np.exp(-0.5 * ((grid - m[0]) / sd) ** 2) / sd for m, sd, w in zip(means, stds, weights))
    ref = []
    for (x,) in xs.astype(np.float64):
        post = prior * np.exp(-0.5 * ((x - (1 - s) * grid) / s) ** 2)
        ref.append((post * grid).sum() / post.sum())
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_gaussian_mixture_flow_per_sample_sigmas(rng):
    model = GaussianMixtureDenoiser(MEANS, STDS, WEIGHTS, parametrization="flow")
    sigmas = np.array([1.0, 0.4, 1e-3, 0.8], np.float32)
    x = rng.standard_normal((4, 2)).astype(np.float32)
    out = to_np(model(Tensor(x), Tensor(sigmas)))
    each = [to_np(model(Tensor(x[i : i + 1]), Tensor(sigmas[i : i + 1])))[0] for i in range(4)]
    np.testing.assert_allclose(out, np.stack(each), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------------------------------
# Glyphs
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_glyphs():
    return GlyphDenoiser(size=16, variants=6, parametrization="flow")


def _flow_glyph_reference(data, labels, x, sigma, class_weights=None):
    """softmax_i(-|x - (1 - s) y_i|^2 / 2 s^2 + log prior_i) . y, from plain distances in float64."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    d = data.reshape(len(data), -1).astype(np.float64)
    logits = -(((flat[:, None, :] - (1.0 - sigma) * d[None]) ** 2).sum(-1)) / (2 * sigma**2)
    if class_weights is not None:
        prior = class_weights[:, labels].astype(np.float64)
        prior[prior.sum(1) == 0] = 1.0
        logits = np.where(prior > 0, logits + np.log(np.where(prior > 0, prior, 1.0)), -np.inf)
    logits -= logits.max(1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(1, keepdims=True)
    return (w @ d).reshape(x.shape)


def _class_weights():
    weights = np.zeros((4, 10), np.float32)
    weights[0, 3] = weights[1, 7] = 1.0
    weights[2, [1, 2]] = 0.5  # row 3 stays zero = unconditional
    return weights


@pytest.mark.parametrize("sigma", SIGMAS)
def test_glyph_flow_matches_float64(flow_glyphs, sigma, rng):
    y = flow_glyphs.images[rng.integers(0, 60, 4)].astype(np.float64)
    x = flow_state(rng, y, sigma)
    weights = _class_weights()
    out = to_np(flow_glyphs(Tensor(x), batch_sigma(sigma, 4), {"vector": Tensor(weights)}))
    ref = _flow_glyph_reference(flow_glyphs.images, flow_glyphs.labels, x, f32(sigma), weights)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    uncond = to_np(flow_glyphs(Tensor(x), batch_sigma(sigma, 4)))
    np.testing.assert_allclose(
        uncond, _flow_glyph_reference(flow_glyphs.images, flow_glyphs.labels, x, f32(sigma)), atol=1e-4
    )


def test_glyph_flow_per_sample_sigmas(flow_glyphs, rng):
    sigmas = np.array([1.0, 0.6, 0.2, 1e-3], np.float32)
    y = flow_glyphs.images[[3, 17, 33, 58]].astype(np.float64)
    x = ((1 - sigmas.astype(np.float64))[:, None, None, None] * y).astype(np.float32)
    x += (sigmas[:, None, None, None] * rng.standard_normal(x.shape)).astype(np.float32)
    weights = _class_weights()
    out = to_np(flow_glyphs(Tensor(x), Tensor(sigmas), {"vector": Tensor(weights)}))
    for i, s in enumerate(sigmas.astype(np.float64)):
        ref = _flow_glyph_reference(flow_glyphs.images, flow_glyphs.labels, x[i : i + 1], s, weights[i : i + 1])
        np.testing.assert_allclose(out[i : i + 1], ref, atol=1e-4)


def test_glyph_flow_at_pure_noise_is_the_class_prior(flow_glyphs, rng):
    images, labels = flow_glyphs.images, flow_glyphs.labels
    x = Tensor((rng.standard_normal((4, 1, 16, 16)) * 2).astype(np.float32))
    out = to_np(flow_glyphs(x, batch_sigma(1.0, 4), {"vector": Tensor(_class_weights())}))
    np.testing.assert_allclose(out[0], images[labels == 3].mean(0), atol=1e-5)
    np.testing.assert_allclose(out[1], images[labels == 7].mean(0), atol=1e-5)
    np.testing.assert_allclose(out[2], images[(labels == 1) | (labels == 2)].mean(0), atol=1e-5)
    np.testing.assert_allclose(out[3], images.mean(0), atol=1e-5)
    np.testing.assert_allclose(
        to_np(flow_glyphs(x, batch_sigma(1.0, 4))), np.broadcast_to(images.mean(0), (4, 1, 16, 16)), atol=1e-5
    )


def test_glyph_flow_small_sigma_returns_the_training_image(flow_glyphs):
    y = flow_glyphs.images[[4, 40]]
    out = to_np(flow_glyphs(Tensor(((1 - 1e-3) * y).astype(np.float32)), batch_sigma(1e-3, 2)))
    np.testing.assert_allclose(out, y, atol=1e-5)


def test_glyph_ve_path_unchanged(rng):
    ve, explicit = GlyphDenoiser(size=16, variants=2), GlyphDenoiser(size=16, variants=2, parametrization="ve")
    x = Tensor(rng.standard_normal((3, 1, 16, 16)).astype(np.float32))
    s = Tensor(np.array([0.3, 1.0, 5.0], np.float32))
    np.testing.assert_array_equal(to_np(ve(x, s)), to_np(explicit(x, s)))


def test_glyph_flow_is_batch_invariant_whatever_the_gemm_kernel():
    """As the VE model's test: a sample's bits do not depend on its batch, under the AVX2 GEMM kernel too."""
    code = (
        "import numpy as np\n"
        "from mindspore import Tensor\n"
        "from edm_sampler.models import GlyphDenoiser\n"
        "m = GlyphDenoiser(parametrization='flow')\n"
        "x = Tensor(np.random.default_rng(0).standard_normal((8, 1, 24, 24)).astype(np.float32))\n"
        "s = Tensor(np.linspace(0.2, 1.0, 8).astype(np.float32))\n"
        "c = {'vector': m.class_vectors(np.arange(8) % 10)}\n"
        "full = m(x, s, c).asnumpy()\n"
        "rows = [m(x[i:i + 1], s[i:i + 1], {'vector': c['vector'][i:i + 1]}).asnumpy() for i in range(8)]\n"
        "print(np.array_equal(full, np.concatenate(rows)))\n"
    )
    env = {**__import__("os").environ, "DNNL_MAX_CPU_ISA": "AVX2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip().splitlines()[-1] == "True"


# ---------------------------------------------------------------------------------------------------------------------
# Declaration, configs, repr
# ---------------------------------------------------------------------------------------------------------------------


FLOW_CONFIGS = [
    pytest.param({"target": "gaussian", "params": {"parametrization": "flow"}}, GaussianDenoiser, id="gaussian"),
    pytest.param(
        {"target": "gaussian_mixture", "params": {"parametrization": "flow", "stds": 0.2}},
        GaussianMixtureDenoiser,
        id="gaussian_mixture",
    ),
    pytest.param(
        {"target": "glyphs", "params": {"size": 16, "variants": 1, "parametrization": "flow"}},
        GlyphDenoiser,
        id="glyphs",
    ),
]


@pytest.mark.parametrize("config, cls", FLOW_CONFIGS)
def test_flow_models_from_configs(config, cls):
    for build in (instantiate_from_config, edm_sampler.load_denoiser):
        model = build(config)
        assert type(model) is cls
        assert model.parametrization == "flow"
        assert parametrization.of(model).name == "flow"


def test_flow_model_from_a_yaml_file(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("denoiser:\n  target: gaussian\n  params:\n    sigma_data: 0.7\n    parametrization: flow\n")
    model = edm_sampler.load_denoiser(str(path))
    assert isinstance(model, GaussianDenoiser) and model.sigma_data == 0.7 and model.parametrization == "flow"


@pytest.mark.parametrize(
    "build",
    [
        lambda: GaussianDenoiser(),
        lambda: GaussianMixtureDenoiser(),
        lambda: GlyphDenoiser(size=16, variants=1),
    ],
    ids=["gaussian", "gaussian_mixture", "glyphs"],
)
def test_default_parametrization_is_ve(build):
    model = build()
    assert model.parametrization == "ve"
    assert parametrization.of(model).name == "ve"
    assert "parametrization" not in repr(model)


@pytest.mark.parametrize("target", ["gaussian", "gaussian_mixture", "glyphs"])
def test_bad_parametrization_is_refused(target):
    params = {"parametrization": "vp"} | ({"size": 16, "variants": 1} if target == "glyphs" else {})
    with pytest.raises(ValueError, match=r"parametrization must be one of 've', 'flow'; got 'vp'"):
        instantiate_from_config({"target": target, "params": params})


def test_repr_shows_a_flow_parametrization():
    assert (
        repr(GaussianDenoiser(0.7, parametrization="flow"))
        == "GaussianDenoiser(sigma_data=0.7, parametrization='flow')"
    )
    assert repr(GaussianDenoiser(0.7)) == "GaussianDenoiser(sigma_data=0.7)"
    assert repr(GaussianMixtureDenoiser(parametrization="flow")) == (
        "GaussianMixtureDenoiser(components=8, dim=2, parametrization='flow')"
    )
    assert repr(GlyphDenoiser(size=16, variants=1, parametrization="flow")) == (
        "GlyphDenoiser(size=16, variants=1, seed=0, parametrization='flow')"
    )
