"""Restart against its inner ODE sampler at equal NFE on the exact 2-D Gaussian mixture (``gmm``, ``gmm_flow``).

The error is ``edm-sampler eval``'s: the sliced Wasserstein-1 distance between the samples and as many exact draws,
beside its noise floor (the same distance from the exact draws to independent exact samples; values within it are
ties). At each budget the inner sampler alone gets the most steps whose NFE fits (Heun: ``(budget + 1) // 2``) and
each Restart configuration the most main steps whose NFE, restarts included, fits; ``nfe`` is the measured
``last_nfe``. Restart(Heun) against Heun is the comparison of the paper; Restart(Euler) against Euler shows the same
at first order. The model is exact, so every error is the sampler's: discretization, and the restart segments' own.

Usage (from the repository root; about 3 minutes on 2 cores, ``--quick`` about 40 s)::

    DNNL_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/restart_eval.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from mindspore import Tensor

from edm_sampler import FlowMatchDiscretization, RestartSampler, resolve
from edm_sampler.evaluation import QUICK_SIZES, MixtureFlowTask, MixtureTask, Sizes

# Restart configurations per parametrization, by name: (t_min, t_max, K, restart steps). VE levels are EDM's sigmas;
# flow levels are flow sigmas (x = (1 - s) x0 + s eps).
CONFIGS = {
    "ve": {
        "[0.06, 0.30] K=2, 2 steps (paper)": [(0.06, 0.30, 2, 2)],
        "[0.1, 2] K=2, 3 steps": [(0.1, 2.0, 2, 3)],
        "[0.3, 3] K=4, 2 steps": [(0.3, 3.0, 4, 2)],
        "[1, 10] K=2, 3 steps": [(1.0, 10.0, 2, 3)],
    },
    "flow": {
        "[0.06, 0.30] K=2, 2 steps (paper)": [(0.06, 0.30, 2, 2)],
        "[0.1, 0.6] K=2, 3 steps": [(0.1, 0.6, 2, 3)],
        "[0.2, 0.7] K=4, 2 steps": [(0.2, 0.7, 4, 2)],
        "[0.4, 0.9] K=2, 3 steps": [(0.4, 0.9, 2, 3)],
    },
}
INNER = ("heun_edm", "euler_edm")
BUDGETS = (15, 23, 35, 51, 79)


def restart_list(config):
    return [{"t_min": a, "t_max": b, "restarts": k, "steps": n} for a, b, k, n in config]


def schedule(param: str):
    return FlowMatchDiscretization() if param == "flow" else None  # flow_match (1 -> 0.001) or EDM (80 -> 0.002)


def nfe(sampler, steps: int) -> int:
    sampler(lambda x, s, c=None: x * 0.5, Tensor(np.ones((1, 2), np.float32)), num_steps=steps, generator=0)
    return sampler.last_nfe


def main_steps(make, budget: int) -> int | None:
    """The most steps whose NFE fits in ``budget`` (NFE grows with the steps), searched down from ``budget``."""
    for steps in range(budget, 0, -1):
        try:
            if nfe(make(), steps) <= budget:
                return steps
        except ValueError:  # the intervals do not fit this schedule (t_min snapped to its first level)
            continue
    return None


def evaluate(task, param: str, inner: str, budgets, configs) -> list[tuple]:
    """``(budget, sampler, steps, nfe, sliced W1)`` for the inner sampler and every Restart configuration."""
    rows = []
    for budget in budgets:

        def alone():
            return resolve(inner)(discretization_config=schedule(param))

        candidates = [(inner, alone)]
        for name, config in configs.items():

            def make(config=config):
                return RestartSampler(
                    restart_list=restart_list(config), sampler_config=inner, discretization_config=schedule(param)
                )

            candidates.append((f"restart {name}", make))
        for name, make in candidates:
            steps = main_steps(make, budget)
            if steps is None:
                continue
            sampler = make()
            value = task(sampler, steps)["sliced_w1"]
            rows.append((budget, name, steps, sampler.last_nfe, value))
    return rows


def run(models=("gmm", "gmm_flow"), inners=INNER, budgets=BUDGETS, sizes=None, seed=0, out=sys.stdout) -> dict:
    """Print one Markdown table per model and inner sampler; return ``{(model, inner): rows}``."""
    sizes, results = sizes or Sizes(), {}
    for model in models:
        param = "flow" if model.endswith("_flow") else "ve"
        task = (MixtureFlowTask if param == "flow" else MixtureTask)(seed, sizes)
        floor = task.floor()
        for inner in inners:
            start = time.perf_counter()
            rows = results[model, inner] = evaluate(task, param, inner, budgets, CONFIGS[param])
            print(
                f"\n### {model}, Restart({inner}) vs {inner}: sliced W1 ({sizes.gmm_samples} samples; noise floor "
                f"{floor['sliced_w1']:.4f}, max {floor['sliced_w1_max']:.4f})",
                file=out,
            )
            print("\n| budget | sampler | steps | nfe | sliced W1 |\n|---|---|---|---|---|", file=out)
            for budget, name, steps, used, value in rows:
                print(f"| {budget} | {name} | {steps} | {used} | {value:.4f} |", file=out)
            print(f"\n({time.perf_counter() - start:.0f} s)", file=out)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 samples and two budgets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else Sizes()
    run(budgets=(15, 35) if args.quick else BUDGETS, sizes=sizes, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
