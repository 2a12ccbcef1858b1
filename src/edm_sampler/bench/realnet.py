"""Section "real-net": a real network end to end, PyNative and graph mode, guided and not, against k-diffusion.

The network is ``TinyConvNet`` behind ``Denoiser(EDMScaling()).bind(net)``; Euler with ``s_churn=10``, with
``VanillaCFG(3.0)`` or without guidance, step by step and as one compiled loop (``graph_loop=True``), in each mode.
The same network is timed alone for the sampler's NFE, with the batch it sees (2B under CFG), so ``share outside the
network = 1 - network time / call time``. Graph compiles are counted (see :mod:`.compiles`) during the first call and
during the later calls. k-diffusion runs a PyTorch twin with the same weights, EDM preconditioning and the usual
batched CFG.

The family table (see :mod:`.family`) does the same with CFG for every sampler that has a k-diffusion twin: its
``graph_loop=True`` call (PyNative context), its step-by-step call in PyNative and in graph mode, and k-diffusion's
``sample_<name>``. Its Euler row is the Euler CFG rows of the first table. All variants share one round-robin.
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
from .family import CASES, NOISE, Case, kdiffusion_sampler, takes_noise_sampler
from .machine import CpuLoad
from .timing import Timings, Variant, attempt, errors, round_robin
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

    def __init__(self, batch: int, size: int, steps: int, family: tuple[str, ...] = ()):
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
        self.family = {name: CASES[name] for name in family}
        # the family's samplers, all with CFG; Euler's are the CFG samplers above (its rows are theirs)
        self.family_samplers = {
            (name, loop): self.samplers["cfg", loop] if name == "euler" else case.make(VanillaCFG(CFG_SCALE), loop)
            for name, case in self.family.items()
            for loop in LOOPS
        }

    def sample(self, guidance: str, graph_loop: bool = False, **kwargs):
        s = self.samplers[guidance, graph_loop]
        uc = self.uc if guidance == "cfg" else None
        return s(self.denoiser, self.x, self.cond, uc, num_steps=self.steps, disable=True, **kwargs)

    def sample_case(self, name: str, graph_loop: bool, **kwargs):
        s = self.family_samplers[name, graph_loop]
        return s(self.denoiser, self.x, self.cond, self.uc, num_steps=self.steps, disable=True, **kwargs)

    def net_inputs(self, guidance: str):
        """What the network sees in one evaluation (values are irrelevant to its cost): x_in, c_noise, vector."""
        x = self.x.asnumpy()
        if guidance == "cfg":
            return np.concatenate([x, x]), np.concatenate([self.zeros, self.vector])
        return x, self.vector

    def net_alone(self, guidance: str, nfe: int | None = None):
        x_np, vector = self.net_inputs(guidance)
        x_in = Tensor(x_np)
        c_noise = Tensor(np.full((x_np.shape[0],), 0.25 * math.log(2.0), dtype=np.float32))
        cond_in = ms.mutable({"vector": Tensor(vector)})  # mutable: timing the net alone must not recompile
        calls = self.steps if nfe is None else nfe  # Euler: NFE = steps

        def call():
            out = None
            for _ in range(calls):
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

    def sample_case(self, case: Case, model=None, **kwargs):
        """k-diffusion's twin of ``case`` with CFG (``model``: the guided model, e.g. counting its calls)."""
        fn, _ = kdiffusion_sampler(self.tb, case.name)
        args = {"cond": self.cond, "uncond": self.uc}
        model = self.cfg if model is None else model
        return fn(model, self.x * self.scale, self.sigmas, extra_args=args, disable=True, **case.options, **kwargs)

    def net_alone(self, guidance: str, nfe: int | None = None):
        torch = self.tb.torch
        x_np, vector = self.problem.net_inputs(guidance)
        x_in, v_in = torch.from_numpy(x_np), torch.from_numpy(vector)
        c_noise = torch.full((x_np.shape[0],), 0.25 * math.log(2.0))
        calls = self.problem.steps if nfe is None else nfe

        def call():
            with torch.no_grad():
                out = None
                for _ in range(calls):
                    out = self.twin(x_in, c_noise, v_in)
                return out

        return call


FAMILY_ROLES = ("graph_loop", "pynative", "graph", "k_diffusion")


def family_names(name: str) -> dict[str, str]:
    """The variant timed for each role of a family row; Euler's are the first table's Euler CFG variants."""
    if name == "euler":
        return {
            "graph_loop": "edm_sampler/pynative+graph_loop/cfg",
            "pynative": "edm_sampler/pynative/cfg",
            "graph": "edm_sampler/graph/cfg",
            "k_diffusion": "k_diffusion/torch/cfg",
        }
    return {role: f"family/{name}/{role}" for role in FAMILY_ROLES}


def net_name(mode: str, guidance: str, nfe: int, steps: int) -> str:
    """The network-alone variant for ``nfe`` evaluations (the first table's for NFE = steps)."""
    return f"net/{mode}/{guidance}" if nfe == steps else f"net/{mode}/{guidance}/nfe={nfe}"


def build_variants(problem: Problem, torch_problem: TorchProblem | None) -> list[Variant]:
    # First calls run in list order: the sampler variants come first so their compiles are their own.
    variants = []
    for loop in LOOPS:
        for mode, value in MODES.items():
            for g in GUIDANCE:
                call = lambda g=g, loop=loop: problem.sample(g, loop, generator=0)  # noqa: E731
                variants.append(Variant(f"edm_sampler/{_label(mode, loop)}/{g}", call, _set_mode(value)))
    pynative, graph = _set_mode(ms.PYNATIVE_MODE), _set_mode(ms.GRAPH_MODE)
    for name, case in problem.family.items():
        if name == "euler":
            continue
        names = family_names(name)
        roles = (("graph_loop", True, pynative), ("pynative", False, pynative), ("graph", False, graph))
        for role, loop, prepare in roles:
            call = lambda name=name, loop=loop: problem.sample_case(name, loop, generator=0)  # noqa: E731
            variants.append(Variant(names[role], call, prepare))
        if torch_problem is not None:
            variants.append(Variant(names["k_diffusion"], lambda case=case: torch_problem.sample_case(case)))
    for mode, value in MODES.items():
        for g in GUIDANCE:
            variants.append(Variant(f"net/{mode}/{g}", problem.net_alone(g), _set_mode(value)))
    extra_nfe = sorted({case.nfe(problem.steps) for case in problem.family.values()} - {problem.steps})
    for nfe in extra_nfe:
        for mode, value in MODES.items():
            name = net_name(mode, "cfg", nfe, problem.steps)
            variants.append(Variant(name, problem.net_alone("cfg", nfe), _set_mode(value)))
    if torch_problem is not None:
        for g in GUIDANCE:
            variants.append(Variant(f"k_diffusion/torch/{g}", lambda g=g: torch_problem.sample(g)))
            variants.append(Variant(f"net/torch/{g}", torch_problem.net_alone(g)))
        for nfe in extra_nfe:
            variants.append(Variant(net_name("torch", "cfg", nfe, problem.steps), torch_problem.net_alone("cfg", nfe)))
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


class _Feeder:
    """Hands out ``arrays`` in order, counting the draws: a ``noise_sampler`` for either framework."""

    def __init__(self, arrays, wrap=lambda a: a):
        self.arrays, self.wrap, self.count = arrays, wrap, 0

    def __call__(self, sigma=None, sigma_next=None):
        self.count += 1
        return self.wrap(self.arrays[self.count - 1])


class _Counted:
    """A model that counts its calls."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


def family_sanity(problem: Problem, torch_problem: TorchProblem) -> dict:
    """Per family sampler: edm_sampler's ``graph_loop=True`` call against k-diffusion given the same noise arrays in the
    same order (max |diff| / max |edm_sampler output|), and each side's NFE and number of draws."""
    torch = torch_problem.tb.torch
    rng = np.random.default_rng(12)
    shape = tuple(problem.x.shape)
    arrays = [rng.standard_normal(shape, dtype=np.float32) for _ in range(2 * problem.steps)]
    out = {}
    for name, case in problem.family.items():
        sampler = problem.family_samplers[name, True]
        edm_noise = _Feeder(arrays)
        ref = problem.sample_case(name, True, noise_sampler=edm_noise).asnumpy()
        counted = _Counted(torch_problem.cfg)
        fn, source = kdiffusion_sampler(torch_problem.tb, name)
        kd_noise = _Feeder(arrays, torch.from_numpy)
        if takes_noise_sampler(fn):
            got = torch_problem.sample_case(case, counted, noise_sampler=kd_noise).numpy()
        else:  # draws torch.randn_like itself (the churn samplers)
            with with_noise(torch_problem.tb, arrays):
                got = torch_problem.sample_case(case, counted).numpy()
            kd_noise = None
        out[name] = {
            "max_rel_diff": float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))),
            "nfe": {"edm_sampler": sampler.last_nfe, "k_diffusion": counted.calls, "expected": case.nfe(problem.steps)},
            "draws": {"edm_sampler": edm_noise.count, "k_diffusion": None if kd_noise is None else kd_noise.count},
            "k_diffusion_function": source,
        }
    return out


def _stats(t: Timings, net_t: Timings | None, counted: bool) -> dict:
    """One variant's numbers, with its share outside the network when ``net_t`` (the network alone) is given."""
    net_median = net_t.median_s if net_t is not None else None
    net_fraction = share = None
    if net_median is not None and t.median_s is not None:
        net_fraction = net_median / t.median_s
        share = min(1.0, max(0.0, 1.0 - net_fraction))  # clamped: noise can make the net alone look slower
    probes = counted and t.first_probe is not None
    net_probes = counted and net_t is not None and net_t.first_probe is not None
    return {
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


def _row(framework, mode, guidance, t, net_t, nfe, batch, counted: bool) -> dict:
    row = {"framework": framework, "mode": mode, "guidance": guidance, "nfe": nfe, "net_batch": batch}
    row.update(_stats(t, net_t, counted))
    return row


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def family_rows(problem: Problem, timings: dict, counted: bool, tb: TorchBaselines | None) -> list[dict]:
    rows = []
    steps = problem.steps
    for name, case in problem.family.items():
        names = family_names(name)
        nfe = case.nfe(steps)
        edm_draws, kd_draws = case.draws(steps)
        row = {
            "name": name,
            "sampler": case.sampler.__name__,
            "options": dict(case.options),
            "k_diffusion_function": None if tb is None else kdiffusion_sampler(tb, name)[1],
            "nfe": nfe,
            "net_batch": 2 * problem.x.shape[0],
            "noise": {
                "kind": case.noise,
                "edm_sampler": NOISE[case.noise][0],
                "k_diffusion": NOISE[case.noise][1],
                "draws_per_call": {"edm_sampler": edm_draws, "k_diffusion": kd_draws},
            },
            "graph_loop": _stats(timings[names["graph_loop"]], None, counted),
        }
        for mode in MODES:
            row[mode] = _stats(timings[names[mode]], timings[net_name(mode, "cfg", nfe, steps)], counted)
        kd = timings.get(names["k_diffusion"])
        row["k_diffusion"] = None if kd is None else _stats(kd, timings[net_name("torch", "cfg", nfe, steps)], False)
        row["graph_loop_over_k_diffusion"] = None if kd is None else _ratio(row["graph_loop"]["median_s"], kd.median_s)
        rows.append(row)
    return rows


def family_summary(rows: list[dict]) -> dict:
    """The extremes over the family: graph_loop / k-diffusion, and the step-by-step shares outside the network."""

    def extreme(values):
        values = [(v, name) for v, name in values if v is not None]
        if not values:
            return None
        return {"min": min(values)[0], "max": max(values)[0], "argmax": max(values)[1]}

    return {
        "graph_loop_over_k_diffusion": extreme((r["graph_loop_over_k_diffusion"], r["name"]) for r in rows),
        **{
            f"{mode}_share_outside_net": extreme((r[mode]["share_outside_net"], r["name"]) for r in rows)
            for mode in MODES
        },
        "k_diffusion_share_outside_net": extreme(
            (r["k_diffusion"]["share_outside_net"], r["name"]) for r in rows if r["k_diffusion"] is not None
        ),
    }


def run(args, tb: TorchBaselines | None) -> dict:
    if tb is not None:
        tb.torch.manual_seed(0)
    problem = Problem(args.net_batch, args.net_size, args.net_steps, tuple(getattr(args, "samplers", ()) or ()))
    torch_problem = TorchProblem(tb, problem) if tb is not None else None
    variants = build_variants(problem, torch_problem)
    print(f"real-net: {len(variants)} variants, {args.repeats} rounds after a first call each", file=sys.stderr)
    with CompileCounter() as counter, CpuLoad() as load:
        try:
            timings = round_robin(variants, args.repeats, probe=counter.total if counter.available else None)
        finally:
            ms.set_context(mode=ms.PYNATIVE_MODE)  # the rest of the process (and the caller) expects PyNative
    checks, check_error = attempt("real-net sanity check", lambda: sanity(problem, torch_problem))
    family_checks = family_error = None
    if torch_problem is not None and problem.family:
        family_checks, family_error = attempt(
            "real-net family sanity check", lambda: family_sanity(problem, torch_problem)
        )

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
    family = family_rows(problem, timings, counter.available, tb)
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
        "errors": {
            **errors(timings),
            **({"sanity": check_error} if check_error else {}),
            **({"family_sanity": family_error} if family_error else {}),
        },
        "sanity": checks,
        "family": {
            "samplers": list(problem.family),
            "guidance": "cfg",
            "graph_loop_mode": "pynative",
            "rows": family,
            "summary": family_summary(family),
            "sanity": family_checks,
        },
    }
