"""What a sampler can call: the denoiser protocol and adapters to it.

A sampler evaluates ``D(x, sigma, cond, **model_kwargs) -> denoised``, where ``sigma`` is a float32 Tensor of shape
``(B,)``. Three kinds of model reach that protocol:

* a plain callable with that signature (an sgm-style closure is one);
* a MindSpore network ``net(x * c_in, c_noise, cond, **kw)`` behind sgm's preconditioning: ``Denoiser(scaling)``
  or ``DiscreteDenoiser(...)``, bound to it with :meth:`Denoiser.bind`;
* a mindone ``DiffusionEngine`` (``.model``, ``.denoiser`` returning the four scalings,
  ``.openai_input_warpper``), adapted by :class:`MindoneEngineDenoiser`.

The last two are *preconditioned networks*: besides the protocol they expose the pieces (host-side coefficients,
the bare network call) that let :mod:`edm_sampler.model_path` evaluate them without recomputing on the device what
the host already knows, and without recompiling a graph-mode network on every call.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

from . import checks
from .functional import axpy, scaled
from .parametrization import PARAMETRIZATIONS
from .parametrization import get as get_parametrization
from .parametrization import of as parametrization_of
from .registry import instantiate_from_config

DenoiserFn = Callable[..., Tensor]
MINDONE_ATTRIBUTES = ("model", "denoiser", "openai_input_warpper")
NETWORK_DTYPES = (ms.float16, ms.bfloat16, ms.float32)
# Names a raw network's noise-level argument goes by (sgm/mindone c_noise, diffusers timesteps, NVlabs noise_labels).
NOISE_ARGUMENT_NAMES = ("c_noise", "t", "timestep", "timesteps", "noise_labels")


def append_dims(t: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton axes to ``t`` until it has ``ndim`` dimensions (for per-sample broadcasting)."""
    if t.ndim > ndim:
        raise ValueError(f"cannot broadcast a {t.ndim}-d tensor to {ndim} dims")
    return t.reshape(t.shape + (1,) * (ndim - t.ndim))


def sigma_on_host(sigma: Any, batch_size: int) -> np.ndarray:
    """sigma as a float64 ``(B,)`` array: from a Python float, or from the (B,) / scalar Tensor of the protocol.

    Values are first rounded to float32, the precision a sigma Tensor has, so the host and Tensor paths agree bit
    for bit.
    """
    if isinstance(sigma, Tensor):
        sigma = sigma.asnumpy()
    sigma = np.asarray(sigma, dtype=np.float32).astype(np.float64)
    if sigma.ndim == 0:
        return np.full((batch_size,), float(sigma))
    if sigma.shape != (batch_size,):
        raise ValueError(f"sigma must be a scalar or have shape ({batch_size},), got shape {sigma.shape}")
    return sigma


def c_noise_tensor(c_noise: np.ndarray, float_dtype=None) -> Tensor:
    """The network's ``c_noise`` as a Tensor: int64 level indices stay integers, other values become ``float_dtype``
    (default float32)."""
    # Tensor.from_numpy shares the fresh array: about 2 us against 20 us for Tensor(array, dtype), once per evaluation
    if np.issubdtype(c_noise.dtype, np.integer):
        return Tensor.from_numpy(np.ascontiguousarray(c_noise, np.int64))
    if float_dtype in (None, ms.float32, ms.float16):
        return Tensor.from_numpy(np.ascontiguousarray(c_noise, np.float16 if float_dtype == ms.float16 else np.float32))
    return Tensor(c_noise.astype(np.float32), float_dtype)  # bfloat16: no NumPy dtype


@dataclass(frozen=True)
class Preconditioning:
    """One noise level's ``c_skip, c_out, c_in`` (Python floats, or ``(B,1,...)`` Tensors when they differ per
    sample) and the network's ``c_noise`` Tensor of shape ``(B,)``."""

    c_skip: float | Tensor
    c_out: float | Tensor
    c_in: float | Tensor
    c_noise: Tensor


class Denoiser:
    """sgm's ``Denoiser``: ``D(x, sigma) = c_skip x + c_out net(c_in x, c_noise, cond)`` for a given scaling.

    The coefficients are computed on the host from sigma (see :mod:`edm_sampler.scalings`).
    """

    sigma_range: tuple[float, float] | None = None  # the noise levels a discrete network was trained on

    def __init__(self, scaling_config):
        self.scaling = instantiate_from_config(scaling_config)
        # the state the scaling's network works in: "ve" (x0 + sigma eps) or "flow" ((1 - sigma) x0 + sigma eps)
        self.parametrization = parametrization_of(self.scaling).name
        if not callable(self.scaling):
            raise TypeError(f"scaling_config must build a callable scaling, got {type(self.scaling).__name__}")

    # -- host side ------------------------------------------------------------------------------------------------

    def quantize_sigma(self, sigma: np.ndarray) -> np.ndarray:
        return sigma

    def quantize_c_noise(self, c_noise: np.ndarray) -> np.ndarray:
        return c_noise

    def host_scalings(self, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """float64 ``(c_skip, c_out, c_in, c_noise)`` for a float64 array of sigmas."""
        sigma = self.quantize_sigma(np.asarray(sigma, dtype=np.float64))
        if hasattr(self.scaling, "coefficients"):  # the built-in scalings: float64 NumPy
            coefficients = self.scaling.coefficients(sigma)
        else:  # a third-party sgm-style scaling takes and returns Tensors
            coefficients = (c.asnumpy() for c in self.scaling(Tensor(sigma.astype(np.float32))))
        c_skip, c_out, c_in, c_noise = (np.asarray(c, np.float64) for c in coefficients)
        return c_skip, c_out, c_in, self.quantize_c_noise(c_noise)

    def preconditioning(self, sigma: np.ndarray, ndim: int, noise_dtype=None) -> Preconditioning:
        """The coefficients for a ``(B,)`` float64 sigma: floats when every sample has the same sigma."""
        c_skip, c_out, c_in, c_noise = self.host_scalings(sigma)
        c_noise_t = c_noise_tensor(c_noise, noise_dtype)
        if np.all(sigma == sigma[0]):
            return Preconditioning(float(c_skip[0]), float(c_out[0]), float(c_in[0]), c_noise_t)
        shape = (-1,) + (1,) * (ndim - 1)
        c_skip, c_out, c_in = (Tensor(c.astype(np.float32).reshape(shape)) for c in (c_skip, c_out, c_in))
        return Preconditioning(c_skip, c_out, c_in, c_noise_t)

    # -- sgm's Tensor interface -----------------------------------------------------------------------------------

    def possibly_quantize_sigma(self, sigma: Tensor) -> Tensor:
        return Tensor(self.quantize_sigma(sigma.asnumpy().astype(np.float64)).astype(np.float32))

    def possibly_quantize_c_noise(self, c_noise: Tensor) -> Tensor:
        return c_noise_tensor(self.quantize_c_noise(c_noise.asnumpy().astype(np.float64)))

    def scalings(self, sigma: Tensor, ndim: int):
        """``(c_skip, c_out, c_in, c_noise)`` Tensors for a ``(B,)`` sigma; the first three broadcast against x."""
        c_skip, c_out, c_in, c_noise = self.host_scalings(sigma.asnumpy().astype(np.float64))
        shape = tuple(sigma.shape) + (1,) * (ndim - sigma.ndim)
        c_skip, c_out, c_in = (Tensor(c.astype(np.float32).reshape(shape)) for c in (c_skip, c_out, c_in))
        return c_skip, c_out, c_in, c_noise_tensor(c_noise)

    def __call__(self, network: Callable, x: Tensor, sigma: Tensor, cond: Any, **model_kwargs) -> Tensor:
        return self.bind(network)(x, sigma, cond, **model_kwargs)

    def bind(self, network: Callable, dtype=None) -> BoundDenoiser:
        """The sampler-facing ``D(x, sigma, cond, **model_kwargs)`` for ``network``.

        ``dtype`` is the dtype the network computes in (its input is cast to it; the output is cast back to float32).
        By default it is read from the network's parameters when it is an ``nn.Cell``.
        """
        return BoundDenoiser(self, network, dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scaling={type(self.scaling).__name__})"


class DiscreteDenoiser(Denoiser):
    """A denoiser for networks trained on ``num_idx`` discrete noise levels (SD, SDXL).

    sigma is snapped to the nearest of the discretization's levels for the scalings, and (with
    ``quantize_c_noise``) ``c_noise`` becomes that level's integer index, as in sgm. A schedule that starts above
    the highest level cannot be followed by the network (it would see the highest level instead), so sampling with
    one raises an error.
    """

    def __init__(
        self,
        scaling_config,
        num_idx: int,
        discretization_config,
        do_append_zero: bool = False,
        quantize_c_noise: bool = True,
        flip: bool = True,
    ):
        super().__init__(scaling_config)
        self.num_idx = checks.integer("num_idx", num_idx, minimum=1)
        discretization = instantiate_from_config(discretization_config)
        self.sigmas_host = np.asarray(
            discretization(self.num_idx, do_append_zero=do_append_zero, flip=flip), dtype=np.float64
        )
        self.sigmas = Tensor(self.sigmas_host, ms.float32)
        self.c_noise_as_index = bool(quantize_c_noise)
        self.sigma_range = (float(self.sigmas_host.min()), float(self.sigmas_host.max()))
        # The levels as the float32 values sgm compares against, for nearest-level search on the host.
        self._levels = self.sigmas_host.astype(np.float32).astype(np.float64)

    def _index(self, sigma: np.ndarray) -> np.ndarray:
        sigma = np.asarray(sigma, np.float64)
        return np.abs(sigma[..., None] - self._levels).argmin(axis=-1)

    def sigma_to_idx(self, sigma):
        """Index of the nearest level (a Tensor for a Tensor, an int64 array otherwise)."""
        if isinstance(sigma, Tensor):
            return Tensor(self._index(sigma.asnumpy()).astype(np.int64))
        return self._index(sigma)

    def idx_to_sigma(self, idx):
        if isinstance(idx, Tensor):
            return self.sigmas[idx]
        return self._levels[np.asarray(idx)]

    def quantize_sigma(self, sigma: np.ndarray) -> np.ndarray:
        return self._levels[self._index(sigma)]

    def quantize_c_noise(self, c_noise: np.ndarray) -> np.ndarray:
        return self._index(c_noise) if self.c_noise_as_index else c_noise


class PreconditionedNetwork:
    """The pieces of a network behind a preconditioning, as :mod:`edm_sampler.model_path` uses them.

    Subclasses provide ``preconditioning(sigma, ndim)``, ``model_cond(cond)`` (done once per sampling call) and
    ``call_network(net_in, c_noise, model_cond, **kw)``; ``__call__`` is then the plain denoiser protocol.
    """

    dtype = None  # the network's compute dtype (None: leave inputs as they are)
    sigma_range: tuple[float, float] | None = None
    # what a subclass defines (declared for the type checker only)
    preconditioning: Callable[[np.ndarray, int], Preconditioning]
    model_cond: Callable[[Any], Any]
    call_network: Callable[..., Any]

    def network_input(self, x: Tensor, c_in) -> Tensor:
        # flow models' c_in = 1: one elementwise op less per evaluation
        net_in = x if is_unit(c_in) else scaled(x, c_in)
        return net_in if self.dtype is None or self.dtype == ms.float32 else net_in.astype(self.dtype)

    def __call__(self, x: Tensor, sigma: Any, cond: Any, **model_kwargs) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a mindspore Tensor, got {type(x).__name__}")
        p = self.preconditioning(sigma_on_host(sigma, x.shape[0]), x.ndim)
        out = self.call_network(self.network_input(x, p.c_in), p.c_noise, self.model_cond(cond), **model_kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"the network returned {type(out).__name__}; expected a Tensor shaped like x")
        return axpy(scaled(x, p.c_skip), out.astype(ms.float32), p.c_out)


class BoundDenoiser(PreconditionedNetwork):
    """``D(x, sigma, cond, **kw) = c_skip x + c_out network(c_in x, c_noise, cond, **kw)``: a :class:`Denoiser`
    bound to a network. Built by :meth:`Denoiser.bind`."""

    def __init__(self, denoiser: Denoiser, network: Callable, dtype=None):
        if not callable(network):
            raise TypeError(f"network must be callable as network(x, c_noise, cond), got {type(network).__name__}")
        self.denoiser = denoiser
        self.network = network
        self.dtype = _network_dtype(network) if dtype is None else dtype
        if self.dtype is not None:
            checks.choice("dtype", self.dtype, NETWORK_DTYPES)
        self.sigma_range = denoiser.sigma_range
        self.parametrization = getattr(denoiser, "parametrization", "ve")

    def preconditioning(self, sigma: np.ndarray, ndim: int) -> Preconditioning:
        return self.denoiser.preconditioning(sigma, ndim, noise_dtype=self.dtype)

    def model_cond(self, cond: Any) -> Any:
        """Conditioning as the network receives it: float tensors in the network's dtype, and dicts, lists and
        tuples of tensors marked ``ms.mutable`` so a graph-mode network treats them as inputs, not constants
        (a constant dict of fresh tensors means a recompile on every call)."""
        if self.dtype is not None and self.dtype != ms.float32:
            cond = _map_tensors(cond, lambda t: t.astype(self.dtype) if t.dtype in NETWORK_DTYPES else t)
        return graph_input(cond)

    def call_network(self, net_in: Tensor, c_noise: Tensor, cond: Any, **model_kwargs) -> Any:
        return self.network(net_in, c_noise, cond, **model_kwargs)

    def __repr__(self) -> str:
        return f"{self.denoiser!r}.bind({type(self.network).__name__}, dtype={self.dtype})"


class MindoneEngineDenoiser(PreconditionedNetwork):
    """Adapter for a mindone ``DiffusionEngine``: reproduces mindone's ``BaseDiffusionSampler.denoise`` body.

    The engine's own ``denoiser(sigma, ndim)`` computes the scalings; they depend on sigma alone, so a sampling
    call asks for each noise level once.
    """

    def __init__(self, engine: Any):
        missing = [a for a in MINDONE_ATTRIBUTES if not hasattr(engine, a)]
        if missing:
            raise TypeError(
                f"a mindone engine needs attributes {', '.join(MINDONE_ATTRIBUTES)}; missing {', '.join(missing)}"
            )
        self.engine = engine

    def preconditioning(self, sigma: np.ndarray, ndim: int) -> Preconditioning:
        c_skip, c_out, c_in, c_noise = self.engine.denoiser(Tensor(sigma.astype(np.float32)), ndim)
        return Preconditioning(c_skip, c_out, c_in, c_noise)

    def model_cond(self, cond: Any) -> Any:
        return self.engine.openai_input_warpper(cond)  # keyword arguments: graph inputs without ms.mutable

    def call_network(self, net_in: Tensor, c_noise: Tensor, cond: Any, **model_kwargs) -> Any:
        return self.engine.model(net_in, c_noise, **cond, **model_kwargs)


def is_unit(c) -> bool:
    """Whether a preconditioning coefficient is the Python float 1 (multiplying by it changes no bit)."""
    return isinstance(c, float) and c == 1.0


def _network_dtype(network: Any):
    if isinstance(network, nn.Cell):
        for param in network.get_parameters():
            if param.dtype in NETWORK_DTYPES:
                return param.dtype
    return None


def _map_tensors(value: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


def _all_tensors(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    if isinstance(value, dict):
        return bool(value) and all(_all_tensors(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_all_tensors(v) for v in value)
    return False


def graph_input(value: Any) -> Any:
    """``ms.mutable(value)`` for a dict/list/tuple of tensors, so graph mode compiles it as an input; else as is.

    Structures with non-tensor leaves stay constants (``ms.mutable`` would turn an ``int`` a network may use as a
    shape into a variable); a graph-mode network then recompiles when they change.
    """
    if isinstance(value, (dict, list, tuple)) and _all_tensors(value):
        return ms.mutable(dict(value) if isinstance(value, dict) else value)
    return value


def _raw_network_argument(model: nn.Cell) -> str | None:
    """The name of a noise-level argument in position 2 of ``model.construct`` (a bare network), if any."""
    try:
        params = list(inspect.signature(model.construct).parameters)
    except (TypeError, ValueError):
        return None
    return params[1] if len(params) > 1 and params[1] in NOISE_ARGUMENT_NAMES else None


class ParametrizedDenoiser:
    """A plain denoiser callable with a declared parametrization (built by ``as_denoiser(fn, parametrization=...)``).

    Calls go straight through to ``fn``; the wrapper only carries ``parametrization`` (the caller's object is never
    given a new attribute).
    """

    def __init__(self, fn: Callable, parametrization: str):
        self.fn = fn
        self.parametrization = parametrization

    def __call__(self, x: Tensor, sigma: Any, cond: Any, **model_kwargs) -> Tensor:
        return self.fn(x, sigma, cond, **model_kwargs)

    @property
    def __name__(self) -> str:  # error messages name the user's function
        return getattr(self.fn, "__name__", type(self.fn).__name__)

    def __repr__(self) -> str:
        return f"as_denoiser({self.__name__}, parametrization={self.parametrization!r})"


def as_denoiser(model: Any, kind: str = "auto", parametrization: str | None = None) -> DenoiserFn:
    """Adapt ``model`` to the sampler's ``D(x, sigma, cond, **model_kwargs)`` protocol.

    ``kind="auto"`` treats an object with ``.model``, ``.denoiser`` and ``.openai_input_warpper`` as a mindone engine
    and any other callable as a plain denoiser; ``"mindone"`` and ``"callable"`` force the choice. A bare
    ``nn.Cell`` whose second ``construct`` argument is a noise level (``c_noise``, ``t``, ``timesteps``...) is a
    network, not a denoiser: it would receive sigma where it expects ``c_noise`` and silently compute the wrong
    thing, so ``"auto"`` refuses it (bind it: ``Denoiser(EDMScaling()).bind(net)``; ``kind="callable"`` overrides).

    ``parametrization`` declares the state the denoiser works in: ``"ve"`` (``x = x0 + sigma eps``, the default) or
    ``"flow"`` (``x = (1 - sigma) x0 + sigma eps``, sigma in (0, 1]); the callable returns the x0 estimate either way.
    Samplers read it from the denoiser (its ``parametrization`` attribute), so it is declared once, here or by the
    model itself; declaring a different one than the model's own is an error.
    """
    checks.choice("kind", kind, ("auto", "callable", "mindone"))
    if parametrization is not None:
        checks.choice("parametrization", parametrization, PARAMETRIZATIONS)
    adapted = _adapt(model, kind)
    if parametrization is None:
        return adapted
    own = getattr(adapted, "parametrization", None)
    if own is not None:
        own = get_parametrization(own).name
        if own != parametrization:
            raise ValueError(
                f"as_denoiser(..., parametrization={parametrization!r}): {type(model).__name__} declares "
                f"parametrization={own!r} itself; a denoiser has one parametrization"
            )
        return adapted
    return ParametrizedDenoiser(adapted, parametrization)


def _adapt(model: Any, kind: str) -> DenoiserFn:
    if isinstance(model, (PreconditionedNetwork, ParametrizedDenoiser)):
        return model
    if kind == "mindone" or (kind == "auto" and all(hasattr(model, a) for a in MINDONE_ATTRIBUTES)):
        return MindoneEngineDenoiser(model)
    if not callable(model):
        raise TypeError(
            f"denoiser must be callable as D(x, sigma, cond) or a mindone engine, got {type(model).__name__}"
        )
    if kind == "auto" and isinstance(model, nn.Cell):
        argument = _raw_network_argument(model)
        if argument is not None:
            raise TypeError(
                f"{type(model).__name__}.construct takes {argument!r} as its second argument: it looks like a bare "
                "network, not a denoiser D(x, sigma, cond). Wrap it with its preconditioning, e.g. "
                "Denoiser(EDMScaling()).bind(net) or DiscreteDenoiser(...).bind(net); pass "
                "as_denoiser(net, kind='callable') if it really is a denoiser"
            )
    return model
