import numpy as np
import pytest

import mindspore as ms

# One kernel thread: faster and steadier for the small tensors of this suite on a 2-core machine.
ms.device_context.cpu.op_tuning.threads_num(1)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def to_np(t):
    return t.asnumpy() if isinstance(t, ms.Tensor) else np.asarray(t)
