"""A small real nn.Cell whose math a float64 NumPy reference can repeat exactly, with the keyword inputs mindone's
pipelines hand their networks (num_frames, image_only_indicator, adapter_states, control), and a mindone engine
around it."""

from __future__ import annotations

import numpy as np

from mindspore import Parameter, Tensor, nn, ops

C, VECTOR = 4, 10


class AffineNet(nn.Cell):
    """``out = x w + (vector V) + b c_noise`` per channel, plus a term for each keyword input:
    ``num_frames`` adds 0.05 x the mean of each video's frames, ``image_only_indicator`` 0.1 x its value per row,
    ``adapter_states`` 0.1 x their sum, ``control`` 0.1 x it."""

    def __init__(self, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w_host = rng.uniform(0.5, 1.5, (1, C, 1, 1))
        self.v_host = rng.uniform(-0.5, 0.5, (VECTOR, C))
        self.b_host = float(rng.uniform(-0.1, 0.1))
        self.w = Parameter(Tensor(self.w_host.astype(np.float32)), name="w")
        self.v = Parameter(Tensor(self.v_host.astype(np.float32)), name="v")
        self.b = Parameter(Tensor(np.float32(self.b_host)), name="b")

    def construct(
        self, x, c_noise, cond, num_frames=None, image_only_indicator=None, adapter_states=None, control=None
    ):
        out = x * self.w + ops.matmul(cond["vector"], self.v).reshape(x.shape[0], -1, 1, 1)
        out = out + c_noise.astype(x.dtype).reshape(-1, 1, 1, 1) * self.b
        if num_frames is not None:
            videos = x.reshape(-1, num_frames, *x.shape[1:])
            out = out + (videos.mean(axis=1, keep_dims=True) * ops.ones_like(videos)).reshape(x.shape) * 0.05
        if image_only_indicator is not None:
            out = out + image_only_indicator.reshape(-1, 1, 1, 1).astype(x.dtype) * 0.1
        if adapter_states is not None:
            for state in adapter_states:
                out = out + state * 0.1
        if control is not None:
            out = out + control * 0.1
        return out

    def numpy(self, x, c_noise, vector, num_frames=None, image_only_indicator=None, adapter_states=None, control=None):
        """The same network in float64 NumPy."""
        out = x * self.w_host + (vector @ self.v_host)[:, :, None, None]
        out = out + np.asarray(c_noise, np.float64).reshape(-1, 1, 1, 1) * self.b_host
        if num_frames is not None:
            videos = x.reshape(-1, num_frames, *x.shape[1:])
            out = out + np.broadcast_to(videos.mean(axis=1, keepdims=True), videos.shape).reshape(x.shape) * 0.05
        if image_only_indicator is not None:
            out = out + np.asarray(image_only_indicator, np.float64).reshape(-1, 1, 1, 1) * 0.1
        for state in adapter_states or ():
            out = out + np.asarray(state, np.float64) * 0.1
        if control is not None:
            out = out + np.asarray(control, np.float64) * 0.1
        return out


class RecordingNet(AffineNet):
    """:class:`AffineNet` that records each call's ``c_noise`` (PyNative only: it reads the tensor on the host)."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.calls: list[float] = []

    def construct(self, x, c_noise, cond, **kwargs):
        self.calls.append(float(c_noise.asnumpy().reshape(-1)[0]))
        return super().construct(x, c_noise, cond, **kwargs)


class OpenAIStyle(nn.Cell):
    """mindone's ``engine.model``: ``model(x, t, y=..., **kwargs)`` (behind ``openai_input_warpper``)."""

    def __init__(self, net: AffineNet):
        super().__init__()
        self.net = net

    def construct(self, x, t, y=None, **kwargs):
        return self.net(x, t, {"vector": y}, **kwargs)


class EngineDenoiser:
    """mindone's ``engine.denoiser``: called with ``(sigma, ndim)`` it returns the four scalings; a discrete one also
    has ``sigma_to_idx`` (a Tensor in, a Tensor out)."""

    def __init__(self, denoiser):
        self.inner = denoiser
        if hasattr(denoiser, "sigma_to_idx"):
            self.sigma_to_idx = denoiser.sigma_to_idx

    def __call__(self, sigma, ndim):
        return self.inner.scalings(sigma, ndim)


class Engine:
    """A mindone ``DiffusionEngine`` stand-in: ``.model`` a real Cell, ``.denoiser(sigma, ndim)`` the four scalings
    (from an edm_sampler ``Denoiser``/``DiscreteDenoiser``, whose ``scalings`` has mindone's interface)."""

    def __init__(self, net: AffineNet, denoiser):
        self.model = OpenAIStyle(net)
        self.denoiser = EngineDenoiser(denoiser)

    def openai_input_warpper(self, cond):
        return {"y": cond["vector"]}


def karras(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> np.ndarray:
    """EDM's schedule, float64, with the trailing 0 (written from the paper's formula)."""
    ramp = np.linspace(0, 1, n)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return np.append(sigmas, 0.0)


def ddpm_levels() -> np.ndarray:
    """SD/SDXL's 1000 noise levels (sqrt-linear betas 0.00085 -> 0.012), ascending, float64."""
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1.0 - betas)
    return np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)


def legacy_ddpm(n: int) -> tuple[np.ndarray, np.ndarray]:
    """sgm's LegacyDDPM schedule for ``n`` steps: the descending sigmas with a trailing 0, and their timesteps."""
    timesteps = np.linspace(999, 0, n, endpoint=False).astype(int)  # sgm: ...[::-1], then flipped back
    return np.append(ddpm_levels()[timesteps], 0.0), timesteps
