import os

# MindSpore 2.10's oneDNN picks AVX-512 convolution kernels that are ~70x slower than its AVX2 ones on this AMD CPU
# (see the README's Performance section). The suite is an application: it chooses AVX2 unless the environment says
# otherwise, before MindSpore loads, so every test and every subprocess a test starts sees the same kernels.
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mindspore as ms  # noqa: E402

# One kernel thread: faster and steadier for the small tensors of this suite on a 2-core machine.
ms.device_context.cpu.op_tuning.threads_num(1)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def to_np(t):
    return t.asnumpy() if isinstance(t, ms.Tensor) else np.asarray(t)
