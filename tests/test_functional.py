"""The sampler tensor math (edm_sampler.functional): its linear combinations use MindSpore's scalar-weighted kernels,
which round once and give the same bits eagerly (Python-float coefficients) and inside a compiled graph (0-d tensor
coefficients), so a compiled loop reproduces the step-by-step call bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from realnets import SHAPE, B, conditioning, small_net

import mindspore as ms
from mindspore import Tensor, nn

from edm_sampler import (
    DEISSampler,
    Denoiser,
    DPMPP2MSampler,
    DPMPP3MSDESampler,
    EDMScaling,
    EulerEDMSampler,
    HeunEDMSampler,
    PLMSSampler,
    UniPCSampler,
    VanillaCFG,
    randn,
)
from edm_sampler.functional import axmy, axpy, lincomb, scaled

A, B_COEF, C_COEF = 0.1234567891234, -2.718281828, 0.3333333333


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((4, 3, 8, 8)).astype(np.float32) for _ in range(3)]


def f32(value) -> np.float64:
    return np.float64(np.float32(value))


def test_helpers_equal_their_float64_definitions_rounded_once(arrays):
    x, y, _ = arrays
    x64, y64, a = x.astype(np.float64), y.astype(np.float64), f32(A)
    np.testing.assert_array_equal(scaled(Tensor(x), A).asnumpy(), (x64 * a).astype(np.float32))
    np.testing.assert_array_equal(axpy(Tensor(x), Tensor(y), A).asnumpy(), (x64 + a * y64).astype(np.float32))
    np.testing.assert_array_equal(axmy(Tensor(x), Tensor(y), A).asnumpy(), (x64 - a * y64).astype(np.float32))


def test_lincomb_skips_zero_weights_and_unit_products(arrays):
    x, y, z = arrays
    poisoned = np.full_like(z, np.inf)  # a term weighted by 0.0 is not formed (AB2's unused history)
    got = lincomb((Tensor(x), 1.0), (Tensor(poisoned), 0.0), (Tensor(y), B_COEF)).asnumpy()
    expected = (x.astype(np.float64) + f32(B_COEF) * y.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(lincomb((Tensor(x), 0.0)).asnumpy(), np.zeros_like(x))


def test_a_per_sample_coefficient_takes_the_plain_expression(arrays):
    x, y, _ = arrays
    per_sample = np.array([0.5, -1.0, 2.0, 0.25], np.float32).reshape(-1, 1, 1, 1)
    got = axpy(Tensor(x), Tensor(y), Tensor(per_sample)).asnumpy()
    np.testing.assert_allclose(got, x + y * per_sample, rtol=1e-6, atol=1e-6)


class Compiled(nn.Cell):
    @ms.jit
    def construct(self, x, y, z, a, b, c):
        return lincomb((x, a), (y, b), (z, c)), axpy(x, y, a), axmy(x, z, c), scaled(y, b)


def test_eager_and_compiled_give_the_same_bits(arrays):
    x, y, z = (Tensor(v) for v in arrays)
    eager = (lincomb((x, A), (y, B_COEF), (z, C_COEF)), axpy(x, y, A), axmy(x, z, C_COEF), scaled(y, B_COEF))
    coefficients = (Tensor(np.array(v, np.float32)) for v in (A, B_COEF, C_COEF))
    compiled = Compiled()(x, y, z, *coefficients)
    for e, g in zip(eager, compiled):
        np.testing.assert_array_equal(g.asnumpy(), e.asnumpy())


@pytest.mark.parametrize(
    "sampler_cls, kwargs",
    [
        (PLMSSampler, {}),
        (DPMPP2MSampler, {}),
        (EulerEDMSampler, {"s_churn": 1.0}),
        (DEISSampler, {}),
        (DPMPP3MSDESampler, {"eta": 0.7, "s_noise": 0.9}),
        (HeunEDMSampler, {"s_churn": 1.0}),
        (UniPCSampler, {"solver_order": 3}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_graph_loop_reproduces_the_step_by_step_call_bit_for_bit(sampler_cls, kwargs):
    """A real nn.Cell with CFG: the compiled loop and the eager steps run the same kernels, so the same bits."""
    denoiser = Denoiser(EDMScaling()).bind(small_net())
    cond, uc = conditioning(0)
    noise = randn((B, *SHAPE), generator=0)
    results = [
        sampler_cls(num_steps=6, guider_config=VanillaCFG(2.0), graph_loop=loop, **kwargs)(
            denoiser, noise, cond, uc, generator=3
        ).asnumpy()
        for loop in (False, True)
    ]
    np.testing.assert_array_equal(results[1], results[0])
