"""Markdown tables for the terminal (pasteable into a README) and the JSON file."""

from __future__ import annotations

import json
import math

NOT_INSTALLED = "not installed"


def _num(value, fmt: str = ".3f", none: str = "n/a") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return none
    return format(value, fmt)


def _ratio(value) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _shape(shape) -> str:
    return "x".join(str(s) for s in shape)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def header_lines(results: dict) -> list[str]:
    env = results["env"]
    load = results.get("load") or {}
    git = env.get("edm_sampler_git")
    library = env["edm_sampler"] or "?"
    if git:
        library += f" (git {git['commit']}{', with uncommitted changes' if git['dirty'] else ''})"
    torch = env["torch"] or NOT_INSTALLED
    if results["baselines"]["torch"] != "ok":
        torch += f" (baselines off: {results['baselines']['torch']})"
    return [
        f"- date: {env['date']}",
        f"- machine: {env['cpu_model']}, {env['cpu_count']} cores, {env['platform']}",
        f"- versions: Python {env['python']}, MindSpore {env['mindspore']}, NumPy {env['numpy']}, torch {torch}, "
        f"k-diffusion {env['k_diffusion'] or NOT_INSTALLED}, edm_sampler {library}",
        f"- threads: {env['threads']} (MindSpore threads_num: {env['mindspore_threads']}; torch the same)",
        f"- DNNL_MAX_CPU_ISA: {env['dnnl']['value'] or 'unset'} ({env['dnnl']['source']})",
        f"- CPU load during the run: other processes {_num(load.get('other_cores'), '.2f')} cores, this process "
        f"{_num(load.get('own_cores'), '.2f')} (from /proc/stat; discard runs where others are not ~0)",
    ]


def _errors_text(section: dict) -> list[str]:
    errors = section.get("errors") or {}
    return [f"- ERROR {name}: {error}" for name, error in errors.items()]


def _cells(stats: dict | None, digits: str = ".3f") -> list[str]:
    """total and own ms/step of one framework, or why they are missing."""
    if stats is None:
        return [NOT_INSTALLED, NOT_INSTALLED]
    if stats.get("error"):
        return ["error", "error"]
    return [_num(stats["total_ms_per_step"], digits), _num(stats["own_ms_per_step"], digits)]


def per_step_text(section: dict) -> str:
    if "rows" not in section:
        return "\n".join(["### Per-step cost", "", *_errors_text(section)])
    out = [
        f"### Per-step cost: {section['denoiser']}, {section['steps']} steps, median of {section['repeats']} calls "
        "(ms per step)",
        "",
    ]
    header = [
        "shape",
        "sampler",
        "churn",
        "NFE",
        "MS D",
        "edm total",
        "edm own",
        "mindone total",
        "mindone own",
        "torch D",
        "k-diff total",
        "k-diff own",
        "floor",
        "noise draw",
        "edm own / k-diff own",
        "(edm own - draw) / k-diff own",
        "mindone / edm total",
        "edm own / floor",
    ]
    rows = []
    for r in section["rows"]:
        kd = r["k_diffusion"]
        rows.append(
            [
                _shape(r["shape"]),
                r["sampler"],
                f"{r['s_churn']:g}",
                str(r["nfe"]),
                _num(r["edm_sampler"]["d_ms_per_step"]),
                *_cells(r["edm_sampler"]),
                *_cells(r["mindone_style"], ".2f"),
                NOT_INSTALLED if kd is None else _num(kd["d_ms_per_step"]),
                *_cells(kd),
                _num(r["floor"]["ms_per_step"], ".4f"),
                _num(r["noise_draw_ms_per_step"]),
                _ratio(r["ratios"]["edm_own_over_kdiff_own"]),
                _ratio(r["ratios"]["edm_own_without_draw_over_kdiff_own"]),
                _ratio(r["ratios"]["mindone_total_over_edm_total"]),
                _ratio(r["ratios"]["edm_own_over_floor"]),
            ]
        )
    out.append(table(header, rows))
    bw = section["bandwidth"]
    per_shape = ", ".join(f"{k} {v['best_gb_s']:.1f}" for k, v in bw["per_shape"].items())
    large = bw["large_array"]
    out += [
        "",
        f"Memory bandwidth for the floor (np.add, best GB/s): {per_shape}; {large['elements'] * 4 >> 20} MB arrays "
        f"{large['best_gb_s']:.1f}.",
    ]
    s = section["sanity"]
    if s is not None:
        mo = ", ".join(f"{k} {v:.1e}" for k, v in s["mindone_style"].items())
        line = f"Sanity ({_shape(s['shape'])}, {s['steps']} steps, identical injected noise; max |diff| / max "
        line += f"|edm_sampler output|): mindone-style vs edm_sampler {mo}"
        if s["k_diffusion"] is not None:
            kd = ", ".join(f"{k} {v:.1e}" for k, v in s["k_diffusion"].items())
            line += f"; k-diffusion vs edm_sampler {kd} (sigmas differ by {s['k_diffusion_sigmas_max_rel_diff']:.1e}"
            line += " of sigma_max)"
        else:
            line += f"; k-diffusion {NOT_INSTALLED}"
        line += (
            f". NFE as expected: {s['nfe_as_expected']}. mindone-style loop leaves its input unchanged: "
            f"{s['mindone_style_input_unchanged']}."
        )
        out += ["", line]
    out += ["", f"CPU load while timing: other processes {_num(section['load']['other_cores'], '.2f')} cores."]
    out += _errors_text(section)
    return "\n".join(out)


def real_net_text(section: dict) -> str:
    if "rows" not in section:
        return "\n".join(["### Real network", "", *_errors_text(section)])
    out = [
        f"### Real network: {section['net']}, x {_shape(section['x_shape'])}, {section['sampler']} "
        f"{section['steps']} steps, s_churn={section['s_churn']:g}, CFG scale {section['cfg_scale']:g}, median of "
        f"{section['repeats']} calls (seconds per call)",
        "",
    ]
    header = [
        "framework",
        "mode",
        "guidance",
        "NFE",
        "net batch",
        "first call",
        "compiles first / later",
        "median",
        "min",
        "net alone",
        "net-alone compiles",
        "outside net",
    ]

    def compiles(first, later):
        return "n/a" if first is None else f"{first} / {later}"

    rows = []
    for r in section["rows"]:
        rows.append(
            [
                r["framework"],
                r["mode"],
                r["guidance"],
                str(r["nfe"]),
                str(r["net_batch"]),
                _num(r["first_call_s"], none="error"),
                compiles(r["compiles_first_call"], r["compiles_later"]),
                _num(r["median_s"], none="error"),
                _num(r["min_s"], none="error"),
                _num(r["net_alone_median_s"], none="error"),
                compiles(r["net_alone_compiles_first_call"], r["net_alone_compiles_later"]),
                "n/a" if r["share_outside_net"] is None else f"{100 * r['share_outside_net']:.0f}%",
            ]
        )
    out.append(table(header, rows))
    s = section["sanity"]
    if s is not None and s["twin_max_rel_diff"] is not None:
        samp = ", ".join(f"{k} {v:.1e}" for k, v in s["sampler_max_rel_diff"].items())
        out += [
            "",
            f"Sanity: torch twin vs MindSpore net, max |diff| / max |out| = {s['twin_max_rel_diff']:.1e}; k-diffusion "
            f"vs edm_sampler (PyNative) with identical injected noise: {samp}.",
        ]
    elif s is not None:
        out += ["", f"k-diffusion rows: {NOT_INSTALLED}."]
    later = max((r["later_calls"] for r in section["rows"]), default=0)
    out += [
        "",
        f"'later' compiles are summed over the {later} timed calls after the first. CPU load while timing: other "
        f"processes {_num(section['load']['other_cores'], '.2f')} cores.",
    ]
    family = section.get("family")
    if family and family["rows"]:
        out += ["", family_text(section, family)]
    out += _errors_text(section)
    return "\n".join(out)


def _share(stats: dict | None) -> str:
    if stats is None:
        return NOT_INSTALLED
    return "n/a" if stats["share_outside_net"] is None else f"{100 * stats['share_outside_net']:.0f}%"


def _median(stats: dict | None) -> str:
    return NOT_INSTALLED if stats is None else _num(stats["median_s"], none="error")


def _draws(noise: dict) -> str:
    n = noise["draws_per_call"]
    if noise["kind"] == "none":
        return "none"
    kind = "Brownian" if noise["kind"] == "brownian" else "Gaussian"
    return f"{n['edm_sampler']} / {n['k_diffusion']} {kind}"


def family_text(section: dict, family: dict) -> str:
    """One row per sampler of the family: graph_loop against k-diffusion, and step by step in each mode."""
    rows = family["rows"]
    out = [
        f"### Real network, sampler family: CFG scale {section['cfg_scale']:g}, {section['steps']} steps, median of "
        f"{section['repeats']} calls (seconds per call); graph_loop in PyNative context",
        "",
    ]
    header = [
        "sampler",
        "NFE",
        "noise draws edm / k-diff",
        "graph_loop",
        "k-diff",
        "graph_loop / k-diff",
        "PyNative",
        "PyNative outside net",
        "graph",
        "graph outside net",
        "k-diff outside net",
        "graph_loop first call",
        "compiles loop / graph",
    ]

    def compiles(stats):
        first, later = stats["compiles_first_call"], stats["compiles_later"]
        return "n/a" if first is None else f"{first}+{later}"

    lines = []
    for r in rows:
        options = "".join(f", {k}={v:g}" for k, v in r["options"].items())
        lines.append(
            [
                f"{r['name']} ({r['sampler']}{options})",
                str(r["nfe"]),
                _draws(r["noise"]),
                _median(r["graph_loop"]),
                _median(r["k_diffusion"]),
                _ratio(r["graph_loop_over_k_diffusion"]) if r["k_diffusion"] is not None else NOT_INSTALLED,
                _median(r["pynative"]),
                _share(r["pynative"]),
                _median(r["graph"]),
                _share(r["graph"]),
                _share(r["k_diffusion"]),
                _num(r["graph_loop"]["first_call_s"], none="error"),
                f"{compiles(r['graph_loop'])} / {compiles(r['graph'])}",
            ]
        )
    out.append(table(header, lines))
    nets = {}
    for r in rows:
        for mode in ("pynative", "graph", "k_diffusion"):
            if r[mode] is not None:
                nets.setdefault(r["nfe"], {})[mode] = r[mode]["net_alone_median_s"]
    net_line = "; ".join(
        f"NFE {nfe}: PyNative {_num(v.get('pynative'))}, graph {_num(v.get('graph'))}, torch "
        f"{_num(v.get('k_diffusion'), none=NOT_INSTALLED)}"
        for nfe, v in sorted(nets.items())
    )
    out += ["", f"Network alone (batch {rows[0]['net_batch']}), seconds: {net_line}."]
    summary = family["summary"]

    def span(key, pct):
        e = summary.get(key)
        if e is None:
            return "n/a"
        if pct:
            return f"{100 * e['min']:.0f}-{100 * e['max']:.0f}% (max: {e['argmax']})"
        return f"{e['min']:.2f}-{e['max']:.2f}x (max: {e['argmax']})"

    out += [
        "",
        f"graph_loop / k-diffusion: {span('graph_loop_over_k_diffusion', False)}. Step by step, outside the network: "
        f"PyNative {span('pynative_share_outside_net', True)}, graph {span('graph_share_outside_net', True)}; "
        f"k-diffusion {span('k_diffusion_share_outside_net', True)}.",
    ]
    source = {r["name"]: r["k_diffusion_function"] for r in rows if r["k_diffusion_function"]}
    odd = [f"{name}: {fn}" for name, fn in source.items() if not fn.startswith("k_diffusion.")]
    if odd:
        out += ["", "k-diffusion baselines are k_diffusion.sampling.sample_<name>, except " + "; ".join(odd) + "."]
    checks = family.get("sanity")
    if checks:
        diffs = ", ".join(f"{name} {c['max_rel_diff']:.1e}" for name, c in checks.items())
        nfe_ok = all(len(set(c["nfe"].values())) == 1 for c in checks.values())
        draws_ok = all(
            c["draws"]["k_diffusion"] is None or c["draws"]["edm_sampler"] == c["draws"]["k_diffusion"]
            for c in checks.values()
        )
        out += [
            "",
            f"Sanity, graph_loop vs k-diffusion with identical injected noise (max |diff| / max |edm_sampler out|): "
            f"{diffs}. NFE as expected on both sides: {nfe_ok}; same number of draws: {draws_ok}.",
        ]
    return "\n".join(out)


def schedulers_text(section: dict) -> str:
    lines = [
        f"## diffusers scheduler classes: per-step cost, shape {'x'.join(map(str, section['shape']))}, "
        f"{section['steps']} steps, one-op network (baseline: {section['baseline']})"
    ]
    rows = []
    for r in section["rows"]:
        ratio = r["ratio"]
        theirs = r["mindone_ms_per_step"]
        failed = section["errors"].get(f"{r['class']}/mindone")
        rows.append(
            [
                r["class"],
                _num(r["edm_sampler_ms_per_step"]),
                (_num(theirs) if theirs is not None else ("fails" if failed else "n/a")),
                f"{ratio:.1f}x" if ratio is not None else "n/a",
            ]
        )
    lines.append(table(["class", "edm_sampler ms/step", "mindone.diffusers ms/step", "mindone / edm_sampler"], rows))
    for key, error in section["errors"].items():
        lines.append(f"- {key}: {error.splitlines()[0][:160]}")
    return "\n".join(lines)


def text(results: dict) -> str:
    parts = ["## edm_sampler benchmark", "", *header_lines(results)]
    sections = results["sections"]
    if "per_step" in sections:
        parts += ["", per_step_text(sections["per_step"])]
    if "real_net" in sections:
        parts += ["", real_net_text(sections["real_net"])]
    if "schedulers" in sections and "rows" in sections["schedulers"]:
        parts += ["", schedulers_text(sections["schedulers"])]
    parts += ["", f"Total run time: {results['elapsed_s']:.1f} s."]
    return "\n".join(parts)


def _finite(value):
    """JSON has no NaN/Inf: write them as null rather than fail after a long run."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(results: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(_finite(results), f, indent=1, allow_nan=False)
        f.write("\n")
