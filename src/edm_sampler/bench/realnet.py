"""Section "real-net": a real network end to end, PyNative and graph mode, guided and not, against k-diffusion.

The network is ``TinyConvNet`` behind ``Denoiser(EDMScaling()).bind(net)``; Euler with ``s_churn=10``, with
``VanillaCFG(3.0)`` or without guidance, step by step and as one compiled loop (``graph_loop=True``), in each mode.
The same network is timed alone for the sampler's NFE, with the batch it sees (2B under CFG), so ``share outside the
network = 1 - network time / call time``. Graph compiles are counted (see :mod:`.compiles`) during the first call and
during the later calls. k-diffusion runs a PyTorch twin with the same weights, EDM preconditioning and the usual
batched CFG.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import mindspore as ms
from mindspore import Tensor

from edm_sampler import Denoiser, EDMScaling, EulerEDMSampler, IdentityGuider, VanillaCFG, randn
from edm_sampler.models.convnet import TinyConvNet

from .compiles import CompileCounter
from .machine import CpuLoad
from .timing import Variant, attempt, errors, round_robin
from .torch_baselines import TorchBaselines, cfg_model, edm_denoiser, make_twin, with_noise

S_CHURN = 10.0
CFG_SCALE = 3.0
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
MODES = {"pynative": ms.PYNATIVE_MODE, "graph": ms.GRAPH_MODE}
GUIDANCE = ("none", "cfg")
LOOPS = (False, True)  # step by step, or graph_loop=True


def _label(mode: str, graph_loop: bool) -> str:
    return f"{mode}+graph_loop" if graph_loop else mode


def _set_mode(mode: int):
    return lambda: ms.set_context(mode=mode)


class Problem:
    """The inputs shared by every variant: the net, x, cond/uc, and the network's own inputs for timing it alone."""

    def __init__(self, batch: int, size: int, steps: int):
        self.net = TinyConvNet()
        self.steps = steps
        self.denoiser = Denoiser(EDMScaling()).bind(self.net)
        self.x = randn((batch, self.net.in_channels, size, size), generator=4321)
        vectors = np.eye(self.net.vector_dim, dtype=np.float32)[np.arange(batch) % self.net.vector_dim]
        self.vector = vectors
        self.zeros = np.zeros_like(vectors)
        self.cond = {"vector": Tensor(vectors)}
        self.uc = {"vector": Tensor(self.zeros)}
        self.samplers = {
            (g, loop): EulerEDMSampler(s_churn=S_CHURN, guider_config=guider, graph_loop=loop)
            for g, guider in (("none", IdentityGuider()), ("cfg", VanillaCFG(CFG_SCALE)))
            for loop in LOOPS
        }

    def sample(self, guidance: str, graph_loop: bool = False, **kwargs):
        s = self.samplers[guidance, graph_loop]
        uc = self.uc if guidance == "cfg" else None
        return s(self.denoiser, self.x, self.cond, uc, num_steps=self.steps, disable=True, **kwargs)

    def net_inputs(self, guidance: str):
        """What the network sees in one evaluation (values are irrelevant to its cost): x_in, c_noise, vector."""
        x = self.x.asnumpy()
        if guidance == "cfg":
            return np.concatenate([x, x]), np.concatenate([self.zeros, self.vector])
        return x, self.vector

    def net_alone(self, guidance: str):
        x_np, vector = self.net_inputs(guidance)
        x_in = Tensor(x_np)
        c_noise = Tensor(np.full((x_np.shape[0],), 0.25 * math.log(2.0), dtype=np.float32))
        cond_in = ms.mutable({"vector": Tensor(vector)})  # mutable: timing the net alone must not recompile

        def call():
            out = None
            for _ in range(self.steps):  # Euler: NFE = steps
                out = self.net(x_in, c_noise, cond_in)
            return out

        return call


class TorchProblem:
    """The k-diffusion side: the twin net, its EDM-preconditioned denoiser, and the same x/cond/uc."""

    def __init__(self, tb: TorchBaselines, problem: Problem):
        torch = tb.torch
        self.tb, self.problem = tb, problem
        self.twin = make_twin(tb, problem.net)
        self.denoise = edm_denoiser(tb, self.twin)
        self.cfg = cfg_model(tb, self.denoise, CFG_SCALE)
        self.x = torch.from_numpy(problem.x.asnumpy().copy())
        self.cond = torch.from_numpy(problem.vector.copy())
        self.uc = torch.from_numpy(problem.zeros.copy())
        self.sigmas = tb.sampling.get_sigmas_karras(problem.steps, SIGMA_MIN, SIGMA_MAX, RHO)
        self.scale = math.sqrt(1.0 + SIGMA_MAX**2)  # edm_sampler's default init_noise="sgm"

    def sample(self, guidance: str):
        x = self.x * self.scale
        run = self.tb.sampling.sample_euler
        if guidance == "cfg":
            args = {"cond": self.cond, "uncond": self.uc}
            return run(self.cfg, x, self.sigmas, extra_args=args, disable=True, s_churn=S_CHURN)
        return run(self.denoise, x, self.sigmas, extra_args={"vector": self.cond}, disable=True, s_churn=S_CHURN)

    def net_alone(self, guidance: str):
        torch = self.tb.torch
        x_np, vector = self.problem.net_inputs(guidance)
        x_in, v_in = torch.from_numpy(x_np), torch.from_numpy(vector)
        c_noise = torch.full((x_np.shape[0],), 0.25 * math.log(2.0))

        def call():
            with torch.no_grad():
                out = None
                for _ in range(self.problem.steps):
                    out = self.twin(x_in, c_noise, v_in)
                return out

        return call


def build_variants(problem: Problem, torch_problem: TorchProblem | None) -> list[Variant]:
    # First calls run in list order: the sampler variants come first so their compiles are their own.
    variants = []
    for loop in LOOPS:
        for mode, value in MODES.items():
            for g in GUIDANCE:
                call = lambda g=g, loop=loop: problem.sample(g, loop, generator=0)  # noqa: E731
                variants.append(Variant(f"edm_sampler/{_label(mode, loop)}/{g}", call, _set_mode(value)))
    for mode, value in MODES.items():
        for g in GUIDANCE:
            variants.append(Variant(f"net/{mode}/{g}", problem.net_alone(g), _set_mode(value)))
    if torch_problem is not None:
        for g in GUIDANCE:
            variants.append(Variant(f"k_diffusion/torch/{g}", lambda g=g: torch_problem.sample(g)))
            variants.append(Variant(f"net/torch/{g}", torch_problem.net_alone(g)))
    return variants


def _noise_sampler(arrays):
    it = iter(arrays)
    return lambda sigma, sigma_next: next(it)


def sanity(problem: Problem, torch_problem: TorchProblem | None) -> dict:
    """The twin computes what the MindSpore net computes; both samplers agree given the same noise."""
    if torch_problem is None:
        return {"twin_max_rel_diff": None, "sampler_max_rel_diff": None}
    torch = torch_problem.tb.torch
    rng = np.random.default_rng(11)
    x_np, vector = problem.net_inputs("cfg")
    c_noise = rng.uniform(-2.0, 1.0, size=(x_np.shape[0],)).astype(np.float32)
    ms_out = problem.net(Tensor(x_np), Tensor(c_noise), {"vector": Tensor(vector)}).asnumpy()
    with torch.no_grad():
        t_out = torch_problem.twin(torch.from_numpy(x_np), torch.from_numpy(c_noise), torch.from_numpy(vector))
    twin = float(np.max(np.abs(ms_out - t_out.numpy())) / np.max(np.abs(ms_out)))

    shape = tuple(problem.x.shape)
    noises = [rng.standard_normal(shape, dtype=np.float32) for _ in range(problem.steps)]
    results = {}
    for g in GUIDANCE:
        ref = problem.sample(g, noise_sampler=_noise_sampler(noises)).asnumpy()
        with with_noise(torch_problem.tb, noises):
            got = torch_problem.sample(g).numpy()
        results[g] = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    return {"twin_max_rel_diff": twin, "sampler_max_rel_diff": results}


def _row(framework, mode, guidance, t, net_t, nfe, batch, counted: bool) -> dict:
    net_median = net_t.median_s if net_t is not None else None
    net_fraction = share = None
    if net_median is not None and t.median_s is not None:
        net_fraction = net_median / t.median_s
        share = min(1.0, max(0.0, 1.0 - net_fraction))  # clamped: noise can make the net alone look slower
    probes = counted and t.first_probe is not None
    net_probes = counted and net_t is not None and net_t.first_probe is not None
    return {
        "framework": framework,
        "mode": mode,
        "guidance": guidance,
        "nfe": nfe,
        "net_batch": batch,
        "first_call_s": t.first_s,
        "median_s": t.median_s,
        "min_s": t.min_s,
        "compiles_first_call": int(t.first_probe) if probes else None,
        "compiles_later": int(t.probe_later) if probes else None,
        "later_calls": len(t.raw_s),
        "net_alone_median_s": net_median,
        "net_alone_min_s": None if net_t is None else net_t.min_s,
        "net_alone_compiles_first_call": int(net_t.first_probe) if net_probes else None,
        "net_alone_compiles_later": int(net_t.probe_later) if net_probes else None,
        "net_fraction": net_fraction,
        "share_outside_net": share,
        "raw_s": list(t.raw_s),
        "net_alone_raw_s": None if net_t is None else list(net_t.raw_s),
        "error": t.error or (net_t.error if net_t is not None else None),
    }


def run(args, tb: TorchBaselines | None) -> dict:
    if tb is not None:
        tb.torch.manual_seed(0)
    problem = Problem(args.net_batch, args.net_size, args.net_steps)
    torch_problem = TorchProblem(tb, problem) if tb is not None else None
    variants = build_variants(problem, torch_problem)
    print(f"real-net: {len(variants)} variants, {args.repeats} rounds after a first call each", file=sys.stderr)
    with CompileCounter() as counter, CpuLoad() as load:
        try:
            timings = round_robin(variants, args.repeats, probe=counter.total if counter.available else None)
        finally:
            ms.set_context(mode=ms.PYNATIVE_MODE)  # the rest of the process (and the caller) expects PyNative
    checks, check_error = attempt("real-net sanity check", lambda: sanity(problem, torch_problem))

    rows = []
    nfe = problem.steps
    for loop in LOOPS:
        for mode in MODES:
            for g in GUIDANCE:
                batch = args.net_batch * (2 if g == "cfg" else 1)
                t, net_t = timings[f"edm_sampler/{_label(mode, loop)}/{g}"], timings[f"net/{mode}/{g}"]
                rows.append(_row("edm_sampler", _label(mode, loop), g, t, net_t, nfe, batch, counter.available))
    if torch_problem is not None:
        for g in GUIDANCE:
            batch = args.net_batch * (2 if g == "cfg" else 1)
            t, net_t = timings[f"k_diffusion/torch/{g}"], timings[f"net/torch/{g}"]
            rows.append(_row("k_diffusion", "torch", g, t, net_t, nfe, batch, False))
    return {
        "net": f"TinyConvNet(in_channels={problem.net.in_channels}, channels={problem.net.channels}, "
        f"vector_dim={problem.net.vector_dim})",
        "x_shape": list(problem.x.shape),
        "steps": problem.steps,
        "sampler": "EulerEDMSampler",
        "s_churn": S_CHURN,
        "cfg_scale": CFG_SCALE,
        "repeats": args.repeats,
        "compile_hooks": counter.hooks,
        "load": load.as_dict(),
        "rows": rows,
        "errors": {**errors(timings), **({"sanity": check_error} if check_error else {})},
        "sanity": checks,
    }
