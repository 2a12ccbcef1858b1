import os

import numpy as np
import pytest

import mindspore as ms

from edm_sampler.commands import tune_cpu_process

# The suite is an application, set up as the edm-sampler commands set themselves up (AVX2 convolutions unless the
# environment says otherwise, synchronous launch on CPU), so a test that runs a command in this process changes
# nothing for the tests after it, and every subprocess a test starts sees the same kernels.
tune_cpu_process()

# One kernel thread: faster and steadier for the small tensors of this suite on a 2-core machine.
ms.device_context.cpu.op_tuning.threads_num(1)


def pytest_configure(config):
    """CI sets EDM_SAMPLER_REQUIRE_ORACLES=1: the oracle-based tests must run there, so a missing oracle is an error,
    not a silent skip."""
    if os.environ.get("EDM_SAMPLER_REQUIRE_ORACLES") == "1":
        import diffusers  # noqa: F401
        import torch  # noqa: F401


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def to_np(t):
    return t.asnumpy() if isinstance(t, ms.Tensor) else np.asarray(t)
