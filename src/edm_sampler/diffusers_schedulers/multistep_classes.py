"""The DPM-Solver family's schedulers (DPM-Solver multistep and singlestep, EDM DPM-Solver, UniPC, DEIS, SA-Solver):
their ``set_timesteps`` rules, VE or flow sigmas, and the translation to the new multistep samplers."""

from __future__ import annotations

import math

import numpy as np

from ..checks import ConfigError
from .fields import Fields
from .model import (
    IntegerFlowEpsScaling,
    IntegerFlowVelocityScaling,
    SchedulerDenoiser,
)
from .schedule import (
    FINAL_SIGMAS,
    TIMESTEP_SPACINGS,
    SchedulerDiscretization,
    flow_family_levels,
    multistep_family_levels,
    respace,
    reversed_flow_sigmas,
)
from .sigma_classes import edm_euler
from .translation import (
    Translation,
    describe,
    optional_field,
    respacing_of,
    training_table,
    vp_denoiser,
    x0_limit,
)


def multistep_family(f: Fields, options: dict, sampler: type, params: dict, dpm: bool = False) -> Translation:
    """DPM-Solver, UniPC, SA-Solver: the DPM-Solver family's ``set_timesteps`` (VE, or flow sigmas), VP latents in and
    out, the timestep as the scheduler's int64 (rounded or truncated where diffusers does). ``dpm``: the DPM-Solver
    schedulers' variant (``lambda_min_clipped``, ``use_lu_lambdas``, ``variance_type``, their flow sigmas)."""
    limit = x0_limit(f)
    table = training_table(f, terminal_alpha=2.0**-24)
    respacing = respacing_of(f)
    lu = f.flag("use_lu_lambdas") if "use_lu_lambdas" in f.defaults else False
    if lu and respacing:
        raise ConfigError(f"{f.origin}: use_lu_lambdas and use_{respacing}_sigmas are both set; diffusers uses one")
    final = f.choice("final_sigmas_type", FINAL_SIGMAS)
    spacing = f.choice("timestep_spacing", TIMESTEP_SPACINGS) if "timestep_spacing" in f.defaults else "linspace"
    offset = optional_field(f, "steps_offset", 0)
    dynamic = f.flag("use_dynamic_shifting") if "use_dynamic_shifting" in f.defaults else False
    shift_type = optional_field(f, "time_shift_type", "exponential")
    if "variance_type" in f.defaults:
        f.choice("variance_type", (None,))  # "learned" / "learned_range": the network's extra variance channels
    T = table.num_train_timesteps
    label = describe(f)
    if f.flag("use_flow_sigmas"):
        if respacing or lu:
            f.refuse(f"use_{respacing or 'lu_lambdas'}", "respaced flow sigmas are not implemented yet")
        mu = options.pop("mu", None)
        if dynamic and mu is None:
            raise ConfigError(
                f"{f.origin}: use_dynamic_shifting=true: pass mu=... to load_sampler, as the pipeline "
                "passes it to set_timesteps"
            )
        shift = f.take("flow_shift")
        if dpm:
            if dynamic:
                f.refuse("use_dynamic_shifting", "the DPM-Solver schedulers' flow sigmas do not read it")
            optional_field(f, "lambda_min_clipped")
            last = float(table.sigmas[0]) if final == "sigma_min" else 0.0  # diffusers: the VP table's, even here

            def levels(n: int):
                return np.append(reversed_flow_sigmas(T, shift, n), last)

        else:
            levels = flow_family_levels(
                T, shift, mu if dynamic else None, shift_type, optional_field(f, "shift_terminal"), final
            )
        prediction = f.choice("prediction_type", ("flow_prediction", "epsilon"))
        scaling = (IntegerFlowVelocityScaling if prediction == "flow_prediction" else IntegerFlowEpsScaling)(float(T))
        denoiser = SchedulerDenoiser(scaling, f.class_name)
    else:
        if dynamic:
            f.refuse("use_dynamic_shifting", "dynamic shifting applies to flow sigmas (use_flow_sigmas=true)")
        f.take("flow_shift")  # no effect without flow sigmas
        last_timestep = None
        clip = optional_field(f, "lambda_min_clipped", -math.inf)
        if clip != -math.inf:  # drop the top timesteps whose half-log-SNR -log(sigma) is below the clip
            last_timestep = T - int(np.searchsorted(-table.log_sigmas[::-1], clip))
        levels = multistep_family_levels(
            table,
            spacing,
            offset,
            "exponential" if lu else respacing,
            final,
            optional_field(f, "sigma_min"),
            optional_field(f, "sigma_max"),
            last_timestep,
            "table" if dpm else "last",
        )
        cosine = f.config.get("beta_schedule") == "squaredcos_cap_v2"
        rounded = (respacing == "karras" and not (dpm and cosine)) or (lu and not cosine)
        rule = "linear" if not (respacing or lu) else ("log_round" if rounded else "log_floor")
        denoiser = vp_denoiser(f, table, rule)
    schedule = lambda: SchedulerDiscretization(levels, label)  # noqa: E731
    return Translation(f.class_name, sampler, denoiser, schedule, "vp", params, x0_limit=limit)


def dpm_solver(f: Fields, options: dict, sampler: type, algorithms: tuple, euler_at_final: bool) -> Translation:
    algorithm = f.choice("algorithm_type", algorithms + ("deis",))
    if algorithm in ("dpmsolver", "sde-dpmsolver") and f.config.get("final_sigmas_type", "zero") == "zero":
        raise ConfigError(
            f"{f.origin}: {f.class_name}: algorithm_type={algorithm!r} with final_sigmas_type='zero' is refused (as "
            "diffusers refuses it: the noise-prediction update divides by alpha = 0 there); use 'sigma_min'"
        )
    solver_type = f.choice("solver_type", ("midpoint", "heun", "logrho", "bh1", "bh2"))
    params = {
        "algorithm_type": "dpmsolver++" if algorithm == "deis" else algorithm,  # diffusers' own substitutions
        "solver_order": f.take("solver_order"),
        "solver_type": solver_type if solver_type in ("midpoint", "heun") else "midpoint",
        "lower_order_final": f.flag("lower_order_final"),
    }
    if euler_at_final:
        params["euler_at_final"] = f.flag("euler_at_final")
    return multistep_family(f, options, sampler, params, dpm=True)


def dpm_solver_multistep(f: Fields, options: dict) -> Translation:
    """DPMSolverMultistepScheduler: :class:`~edm_sampler.samplers.dpm_solver.DPMSolverMultistepSampler`."""
    from ..samplers import DPMSolverMultistepSampler

    algorithms = ("dpmsolver++", "dpmsolver", "sde-dpmsolver++", "sde-dpmsolver")
    return dpm_solver(f, options, DPMSolverMultistepSampler, algorithms, True)


def dpm_solver_singlestep(f: Fields, options: dict) -> Translation:
    """DPMSolverSinglestepScheduler: :class:`~edm_sampler.samplers.dpm_solver.DPMSolverSinglestepSampler`."""
    from ..samplers import DPMSolverSinglestepSampler

    return dpm_solver(f, options, DPMSolverSinglestepSampler, ("dpmsolver++", "dpmsolver", "sde-dpmsolver++"), False)


def edm_dpm_solver(f: Fields, options: dict) -> Translation:
    """EDMDPMSolverMultistepScheduler: the DPM-Solver multistep sampler on EDM's schedule and preconditioning."""
    from ..samplers import DPMSolverMultistepSampler

    translation = edm_euler(f, options)
    translation.x0_limit = x0_limit(f)
    algorithm = f.choice("algorithm_type", ("dpmsolver++", "sde-dpmsolver++"))
    translation.sampler = DPMSolverMultistepSampler
    translation.params = {
        "algorithm_type": algorithm,
        "solver_order": f.take("solver_order"),
        "solver_type": f.choice("solver_type", ("midpoint", "heun")),
        "lower_order_final": f.flag("lower_order_final"),
        "euler_at_final": f.flag("euler_at_final"),
    }
    return translation


def unipc(f: Fields, options: dict) -> Translation:
    """UniPCMultistepScheduler: :class:`~edm_sampler.samplers.unipc.UniPCSampler`. diffusers turns the DPM-Solver
    solver types (midpoint, heun, logrho) into bh2, and so does this translation."""
    from ..samplers import UniPCSampler

    solver_type = f.choice("solver_type", ("bh1", "bh2", "midpoint", "heun", "logrho"))
    f.only_default("solver_p", "a separate predictor solver object cannot come from a config file")
    params = {
        "solver_order": f.take("solver_order"),
        "solver_type": solver_type if solver_type == "bh1" else "bh2",
        "predict_x0": f.flag("predict_x0"),
        "lower_order_final": f.flag("lower_order_final"),
        "disable_corrector": tuple(f.take("disable_corrector") or ()),
    }
    respaced = any(f.config.get(f"use_{kind}_sigmas") for kind in ("karras", "exponential", "beta"))
    if f.config.get("final_sigmas_type") == "sigma_min" and (respaced or f.config.get("use_flow_sigmas")):
        # diffusers then repeats the last sigma: a zero-length last step whose corrector still changes the result
        f.refuse(
            "final_sigmas_type",
            "with respaced or flow sigmas diffusers repeats the last sigma (a zero-length "
            "step that only applies one more correction); use 'zero'",
        )
    return multistep_family(f, options, UniPCSampler, params)


def repeating_family(f: Fields, sampler: type, params: dict) -> Translation:
    """DEIS and SA-Solver: their schedules end at the table's smallest sigma; respaced and flow schedules end with
    their last sigma repeated (a zero-length last step): the repeat is left out and ``repeated_last_sigma`` tells the
    sampler, which keeps diffusers' order rule (and SA-Solver its last correction)."""
    limit = x0_limit(f)
    table = training_table(f, terminal_alpha=2.0**-24)
    respacing = respacing_of(f)
    spacing, offset = f.choice("timestep_spacing", TIMESTEP_SPACINGS), f.take("steps_offset")
    if "variance_type" in f.defaults:
        f.choice("variance_type", (None,))
    T = table.num_train_timesteps
    clip = optional_field(f, "lambda_min_clipped", -math.inf)
    last_timestep = None if clip == -math.inf else T - int(np.searchsorted(-table.log_sigmas[::-1], clip))
    shift = f.take("flow_shift")
    flow = f.flag("use_flow_sigmas")
    if flow:
        if respacing:
            f.refuse(f"use_{respacing}_sigmas", "respaced flow sigmas are not implemented yet")

        def levels(n: int):
            return reversed_flow_sigmas(T, shift, n)

        prediction = f.choice("prediction_type", ("flow_prediction", "epsilon"))
        scaling = (IntegerFlowVelocityScaling if prediction == "flow_prediction" else IntegerFlowEpsScaling)(float(T))
        denoiser = SchedulerDenoiser(scaling, f.class_name)
    elif respacing:

        def levels(n: int):
            return respace(respacing, float(table.sigmas[0]), float(table.sigmas[-1]), n)

        denoiser = vp_denoiser(f, table, "log_round" if respacing == "karras" else "log_floor")
    else:
        levels = multistep_family_levels(table, spacing, offset, None, "sigma_min", last_timestep=last_timestep)
        denoiser = vp_denoiser(f, table, "linear")
    params = {**params, "repeated_last_sigma": flow or respacing is not None}
    label = describe(f)
    schedule = lambda: SchedulerDiscretization(levels, label)  # noqa: E731
    return Translation(f.class_name, sampler, denoiser, schedule, "vp", params, x0_limit=limit)


def deis(f: Fields, options: dict) -> Translation:
    """DEISMultistepScheduler: :class:`~edm_sampler.samplers.deis.DEISSampler`."""
    from ..samplers import DEISSampler

    f.choice("algorithm_type", ("deis", "dpmsolver", "dpmsolver++"))  # diffusers runs the others as deis
    f.choice("solver_type", ("logrho", "midpoint", "heun", "bh1", "bh2"))
    for name in ("use_dynamic_shifting", "final_sigmas_type"):
        f.only_default(name, "DEISMultistepScheduler's set_timesteps does not read it")
    f.take("time_shift_type")
    params = {"solver_order": f.take("solver_order"), "lower_order_final": f.flag("lower_order_final")}
    return repeating_family(f, DEISSampler, params)


def sa_solver(f: Fields, options: dict) -> Translation:
    """SASolverScheduler: :class:`~edm_sampler.samplers.sa_solver.SASolverSampler`, with diffusers' default tau (1
    for timesteps 200..800, else 0) as the noise-level interval those timesteps cover."""
    from ..samplers import SASolverSampler

    f.only_default(
        "tau_func",
        "a Python function cannot come from a config file (tau=... and tau_interval=... can be passed to load_sampler)",
    )
    params = {
        "predictor_order": f.take("predictor_order"),
        "corrector_order": f.take("corrector_order"),
        "algorithm_type": f.choice("algorithm_type", ("data_prediction", "noise_prediction")),
        "lower_order_final": f.flag("lower_order_final"),
        "tau": 1.0,
    }
    translation = repeating_family(f, SASolverSampler, params)
    assert isinstance(translation.params, dict)  # repeating_family's own parameters
    if f.config.get("use_flow_sigmas"):  # the timestep is int64(1000 sigma): 200 <= t <= 800 for sigma in [0.2, 0.801)
        T = f.take("num_train_timesteps")
        translation.params["tau_interval"] = (200 / T, np.nextafter(801 / T, 0.0))
    else:
        sigmas = translation.denoiser.scaling.table.sigmas
        translation.params["tau_interval"] = (float(sigmas[200]), float(sigmas[800]))
    return translation
