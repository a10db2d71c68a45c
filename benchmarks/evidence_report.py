"""Scoring and the Markdown report of `benchmarks.evidence`."""

from __future__ import annotations

import math
from typing import Any

from benchmarks import reuse
from benchmarks.evidence_problems import BOX, LOG_Z_TRUE, MIX_DIM, TARGETS
from benchmarks.report import fmt, machine_section

DYNESTY_MORE_LIVE = 5000
"""Live points of the ``dynesty_nlive5000`` runs (10x dynesty's default)."""


# ----------------------------------------------------------------------------- scoring
def score(row: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """Error against the reference, ``|error| / SE`` (SEs combined) and the verdict."""
    if row.get("failed"):
        return row
    err = row["log_z"] - ref["log_z"]
    se = math.hypot(row["standard_error"], ref.get("standard_error") or 0.0)
    z = abs(err) / se if se > 0 else math.inf
    verdict = "within 2 SE" if z < 2 else "within 3 SE" if z < 3 else "beyond 3 SE"
    return {
        **row,
        "reference": ref["log_z"],
        "reference_se": ref.get("standard_error", 0.0),
        "error": err,
        "combined_se": se,
        "abs_error_over_se": z,
        "verdict": verdict,
    }


def model_comparison(rows: list[dict[str, Any]], refs: dict[str, Any]) -> list[dict[str, Any]]:
    """log Bayes factor hierarchical vs pooled per sampler (and flowmc_like method)."""
    if "eight_schools" not in refs or "eight_schools_pooled" not in refs:
        return []
    exact = refs["eight_schools"]["log_z"] - refs["eight_schools_pooled"]["log_z"]
    out = []
    keys = []
    for r in rows:
        if r["target"] == "eight_schools" and (r["sampler"], r["method"]) not in keys:
            keys.append((r["sampler"], r["method"]))
    for sampler, method in keys:
        pair = {}
        for t in ("eight_schools", "eight_schools_pooled"):
            match = [
                r for r in rows
                if r["target"] == t and r["sampler"] == sampler and r["method"] == method
            ]  # fmt: skip
            pair[t] = match[0] if match and not match[0].get("failed") else None
        a, b = pair["eight_schools"], pair["eight_schools_pooled"]
        if a is None or b is None:
            out.append({"sampler": sampler, "method": method, "failed": True, "exact": exact})
            continue
        bf = a["log_z"] - b["log_z"]
        se = math.hypot(a["standard_error"], b["standard_error"])
        out.append(
            {
                "sampler": sampler,
                "method": method,
                "log_z_hierarchical": a["log_z"],
                "se_hierarchical": a["standard_error"],
                "log_z_pooled": b["log_z"],
                "se_pooled": b["standard_error"],
                "log_bayes_factor": bf,
                "standard_error": se,
                "exact": exact,
                "error": bf - exact,
                "abs_error_over_se": abs(bf - exact) / se if se > 0 else math.inf,
                "wall_s": a["wall_s"] + b["wall_s"],
            }
        )
    return out


def summarize(rows: list[dict[str, Any]], targets: list[str]) -> dict[str, Any]:
    """Verdicts per sampler and target, and the wall-time ratios nested / flowmc_like."""
    verdicts = [
        {
            "target": r["target"],
            "sampler": r["sampler"],
            "method": r["method"],
            "verdict": "FAILED" if r.get("failed") else r["verdict"],
        }
        for r in rows
    ]
    ratios: list[dict[str, Any]] = []
    equal: list[dict[str, Any]] = []
    for t in targets:
        fm_rows = [
            r for r in rows
            if r["target"] == t and r["sampler"] == "flowmc_like"
            and r["method"] == "importance" and not r.get("failed")
        ]  # fmt: skip
        if not fm_rows:
            continue
        fm_row = fm_rows[0]
        entry: dict[str, Any] = {"target": t, "flowmc_like_wall_s": fm_row["wall_s"]}
        for s in NESTED:
            nr = [r for r in rows if r["target"] == t and r["sampler"] == s and not r.get("failed")]
            entry[f"{s}_over_flowmc_like"] = nr[0]["wall_s"] / fm_row["wall_s"] if nr else None
            if nr:
                equal.append(equal_accuracy(nr[0], fm_row))
        ratios.append(entry)
    return {"verdicts": verdicts, "wall_ratios": ratios, "equal_accuracy": equal}


NESTED = ("dynesty", "dynesty_nlive5000", "jaxns")


def equal_accuracy(nested: dict[str, Any], fm_row: dict[str, Any]) -> dict[str, Any]:
    """A nested run's wall time scaled to flowmc_like's standard error.

    A nested sampler's error of log Z is ``sqrt(H / n_live)`` (``H`` the information) and its
    cost grows as ``n_live``, so reaching a standard error ``SE_fm`` from a run that gave
    ``SE`` in ``t`` seconds takes about ``t (SE / SE_fm)^2``; the ``dynesty_nlive5000`` rows
    check that scaling against the default runs.
    """
    factor = (nested["standard_error"] / fm_row["standard_error"]) ** 2
    return {
        "target": nested["target"],
        "sampler": nested["sampler"],
        "method": nested["method"],
        "standard_error": nested["standard_error"],
        "wall_s": nested["wall_s"],
        "flowmc_like_standard_error": fm_row["standard_error"],
        "flowmc_like_wall_s": fm_row["wall_s"],
        "cost_factor": factor,
        "equal_accuracy_wall_s": nested["wall_s"] * factor,
        "equal_accuracy_ratio": nested["wall_s"] * factor / fm_row["wall_s"],
    }


def scaling_checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target: the default dynesty run against the one with 10x the live points."""
    out = []
    for target in TARGETS:
        pair = {
            r["sampler"]: r
            for r in rows
            if r["target"] == target and r["sampler"].startswith("dynesty") and not r.get("failed")
        }
        if {"dynesty", "dynesty_nlive5000"} <= set(pair):
            default, more = pair["dynesty"], pair["dynesty_nlive5000"]
            out.append(
                {
                    "target": target,
                    "se_ratio": default["standard_error"] / more["standard_error"],
                    "wall_ratio": more["wall_s"] / default["wall_s"],
                }
            )
    return out


# ----------------------------------------------------------------------------- report
def _short(text: str, limit: int = 110) -> str:
    """The first clause of a warning (up to its first colon after the category, or
    ``limit`` characters)."""
    head, _, rest = text.partition(": ")
    first = rest.split(": ")[0] if rest else head
    if head.startswith("EvidenceWarning") and ": " in rest:
        first = ": ".join(rest.split(": ")[:2])
    first = first if len(first) <= limit else first[: limit - 3] + "..."
    return f"{head}: {first}" if rest else first


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _f(v: Any, nd: int = 4) -> str:
    """A log Z-scale number with ``nd`` decimals ("-" for None)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{nd}f}"


def _se_digits(se: float | None) -> int:
    if se is None or not math.isfinite(se) or se <= 0:
        return 4
    return max(3, min(6, 2 - math.floor(math.log10(se))))


def _label(r: dict[str, Any]) -> str:
    if r["sampler"] == "flowmc_like":
        return f"{r['sampler']} ({r['method']})"
    if r["sampler"] == "dynesty_nlive5000":
        return f"dynesty (nlive {DYNESTY_MORE_LIVE})"
    return r["sampler"]


MAIN_HEADER = [
    "target",
    "sampler",
    "log Z",
    "SE",
    "exact / reference",
    "error",
    "\\|err\\| / SE",
    "verdict",
    "wall s",
    "evidence s",
    "evaluations",
    "Pareto k (threshold)",
    "reliable",
]


def _main_row(r: dict[str, Any]) -> list[str]:
    if r.get("failed"):
        return [r["target"], _label(r), f"FAILED: {r['failed']}", *["-"] * 10]
    nd = _se_digits(r["standard_error"])
    ref = _f(r["reference"], 4)
    if r.get("reference_se"):
        ref += f" ± {_f(r['reference_se'], _se_digits(r['reference_se']))}"
    ev = r.get("evidence")
    verdict = r["verdict"] if r["verdict"] != "beyond 3 SE" else "**beyond 3 SE**"
    return [
        r["target"],
        _label(r),
        _f(r["log_z"], nd),
        _f(r["standard_error"], nd),
        ref,
        _f(r["error"], nd),
        fmt(r["abs_error_over_se"], 2),
        verdict,
        fmt(r["wall_s"]),
        fmt(r["evidence_s"]),
        f"{r['n_evaluations']:,}",
        f"{ev['pareto_k']:.2f} ({ev['k_threshold']:.2f})" if ev else "-",
        ("yes" if ev["is_reliable"] else "**no**") if ev else "-",
    ]


def comparison_markdown(comparison: list[dict[str, Any]]) -> str:
    """The eight schools model comparison table (hierarchical vs pooled)."""
    if not comparison:
        return ""
    exact = comparison[0]["exact"]
    rows = []
    for c in comparison:
        if c.get("failed"):
            rows.append([_label(c), "FAILED", "-", "-", _f(exact, 4), "-", "-", "-"])
            continue
        nd = _se_digits(c["standard_error"])
        rows.append(
            [
                _label(c),
                f"{_f(c['log_z_hierarchical'], nd)} ± {_f(c['se_hierarchical'], nd)}",
                f"{_f(c['log_z_pooled'], nd)} ± {_f(c['se_pooled'], nd)}",
                f"{_f(c['log_bayes_factor'], nd)} ± {_f(c['standard_error'], nd)}",
                _f(exact, 4),
                _f(c["error"], nd),
                fmt(c["abs_error_over_se"], 2),
                fmt(c["wall_s"]),
            ]
        )
    lines = _table(
        [
            "sampler",
            "log Z hierarchical",
            "log Z pooled",
            "log Bayes factor",
            "exact",
            "error",
            "\\|err\\| / SE",
            "wall s (both)",
        ],
        rows,
    )
    return "\n".join(lines) + "\n"


def build_markdown(payload: dict[str, Any]) -> str:
    """The Markdown report of `main`'s payload."""
    meta, rows, refs = payload["meta"], payload["rows"], payload["references"]
    git = meta["git"]
    lines = [
        "# Marginal likelihood: flowmc_like's evidence next to nested sampling",
        "",
        f"Generated {meta['generated']} by `{meta['command']}` ({meta['elapsed_s']:.0f} s) "
        f"at commit {(git['commit'] or '?')[:10]}"
        + (
            f" with uncommitted changes to {', '.join(git['library_changes'])}"
            if git["library_changes"]
            else ""
        )
        + f", seed {meta['seed']}.",
        "",
    ]
    if meta["quick"]:
        lines += ["**Quick mode** (smoke test): tiny settings, numbers meaningless.", ""]
    lines += [
        "Each sampler with its defaults; wall s = everything after the imports (target, "
        "starts, compilation, run and, for flowmc_like, the evidence estimate, whose own time "
        "is the evidence column), "
        + ("each run in a fresh process" if not meta["in_process"] else "all in one process")
        + ". SE = the sampler's stated standard error of log Z; \\|err\\| / SE divides by "
        "sqrt(SE^2 + SE_reference^2). Evaluations: flowmc_like's run (counted from the "
        "algorithm) plus its evidence draws; the nested samplers' likelihood calls. Pareto k: "
        "of the importance weights, against the library's threshold min(1 - 1/log10 n, 0.7). "
        "The problem, the priors the nested samplers use and every setting are in "
        "`benchmarks/evidence.py`'s docstring and below.",
        "",
        "## Results",
        "",
    ]
    lines += _table(MAIN_HEADER, [_main_row(r) for r in rows])
    s = payload["summary"]
    lines += ["", "## Summary", ""]
    by_target: dict[str, list[str]] = {}
    for v in s["verdicts"]:
        by_target.setdefault(v["target"], []).append(
            f"{_label(v)} {v['verdict'] if v['verdict'] != 'beyond 3 SE' else '**beyond 3 SE**'}"
        )
    lines += [f"- {t}: " + "; ".join(items) + "." for t, items in by_target.items()]
    if s["wall_ratios"]:
        lines += ["", "Wall-time ratio nested sampler / flowmc_like (importance row):", ""]
        for w in s["wall_ratios"]:
            parts = [
                f"{name} {fmt(w[f'{name}_over_flowmc_like'], 2)}"
                for name in NESTED
                if w.get(f"{name}_over_flowmc_like") is not None
            ]
            lines.append(
                f"- {w['target']} (flowmc_like {fmt(w['flowmc_like_wall_s'])} s): "
                + (", ".join(parts) or "no nested run")
                + "."
            )
    if s.get("equal_accuracy"):
        lines += ["", "## The same accuracy", ""]
        lines += [
            "Defaults give standard errors that differ by one to two orders of magnitude. "
            "A nested sampler's error falls as 1/sqrt(live points) and its cost grows as the "
            "live points, so its wall time to flowmc_like's (importance) standard error is "
            "about wall s x (SE / SE_flowmc_like)^2. The dynesty runs with "
            f"{DYNESTY_MORE_LIVE} live points (10x the default) measure that scaling.",
            "",
        ]
        lines += _table(
            [
                "target",
                "sampler",
                "SE",
                "wall s",
                "flowmc_like SE",
                "flowmc_like wall s",
                "wall s at flowmc_like's SE",
                "ratio to flowmc_like",
            ],
            [
                [
                    e["target"],
                    _label(e),
                    _f(e["standard_error"], _se_digits(e["standard_error"])),
                    fmt(e["wall_s"]),
                    _f(e["flowmc_like_standard_error"], 4),
                    fmt(e["flowmc_like_wall_s"]),
                    fmt(e["equal_accuracy_wall_s"]),
                    fmt(e["equal_accuracy_ratio"], 2),
                ]
                for e in s["equal_accuracy"]
            ],
        )
        checks = scaling_checks(rows)
        if checks:
            lines += ["", "Scaling check, dynesty default (500 live points) to 10x:", ""]
            lines += [
                f"- {c['target']}: SE {c['se_ratio']:.2f}x smaller (1/sqrt(n_live) predicts "
                f"{math.sqrt(10):.2f}x), wall time {c['wall_ratio']:.1f}x longer (n_live "
                "predicts 10x)."
                for c in checks
            ]
    if payload["comparison"]:
        lines += [
            "",
            "## Model comparison: eight schools, hierarchical vs complete pooling",
            "",
            "log Bayes factor = log Z(hierarchical) - log Z(pooled), SE = the two estimates' "
            "SEs combined (independent runs); exact from quadrature and the closed form.",
            "",
            comparison_markdown(payload["comparison"]).rstrip("\n"),
        ]
    lines += ["", "## References", ""]
    for name, ref in refs.items():
        if name == "mixture_10d":
            text = (
                f"exact {LOG_Z_TRUE} (log_prob = log mixture density + {LOG_Z_TRUE}); the "
                f"mixture's mass outside the nested samplers' box [-{BOX:g}, {BOX:g}]^"
                f"{MIX_DIM}: {ref['box_mass_outside']:.1e}; their log Z + {MIX_DIM} log "
                f"{2 * BOX:g} = + {MIX_DIM * math.log(2 * BOX):.4f}"
            )
        elif name == "eight_schools":
            text = (
                f"{ref['log_z']:.6f} by quadrature in u (quad's relative error bound "
                f"{ref['quad_error']:.0e}); in tau on [0, inf): {ref['log_z_tau']:.6f}"
            )
        elif name == "eight_schools_pooled":
            text = f"{ref['log_z']:.6f} in closed form"
        else:
            text = (
                f"{ref['log_z']:.5f} ± {ref['standard_error']:.5f}: {ref['how']}, seed "
                f"{ref['settings']['seed']}; Pareto k of its weights {ref['pareto_k']:.2f}, "
                f"ESS {ref['ess']:.3g}; Laplace approximation {ref['laplace_log_z']:.4f}; "
                f"flowmc_like's log Z (of reuse.log_prob, prior constant left out) converted "
                f"by {-0.5 * reuse.N_DIM * math.log(2 * math.pi):.4f}"
            )
        lines.append(f"- {name}: {text}.")
    lines += ["", "## Runs", ""]
    run_rows = []
    seen = set()
    for r in rows:
        if r.get("failed") or (r["target"], r["sampler"]) in seen:
            continue
        seen.add((r["target"], r["sampler"]))
        if r["sampler"] == "flowmc_like":
            detail = (
                f"{r['n_chains']} chains, {r['n_training_loops']} + {r['n_production_loops']} "
                f"loops ({r['n_draws_per_chain']} draws per chain), run {fmt(r['run_s'])} s "
                f"(compile {fmt(r['timings'].get('compile'))} s), run evaluations "
                f"{r['run_evaluations']:,}"
            )
        elif r["sampler"].startswith("dynesty"):
            st = r["settings"]
            detail = (
                f"nlive {st['nlive']}, bound {st['bound']}, sampler {st['sample']}, "
                f"{r['n_iterations']:,} iterations, efficiency {r['efficiency_percent']:.2f}%, "
                f"information {r['information']:.2f} nats"
            )
        else:
            detail = (
                f"{r['n_samples']:,} samples, ESS {r['ess']:.0f}, information "
                f"{r['information']:.2f} nats, termination reason {r['termination_reason']}"
            )
        if r.get("warnings"):
            detail += "; warnings: " + " / ".join(_short(w) for w in r["warnings"])
        load = r.get("loadavg_start")
        run_rows.append(
            [
                r["target"],
                r["sampler"],
                detail,
                fmt(r.get("import_s")),
                fmt(r.get("cpu_s")),
                "-" if load is None else f"{load[0]:.2f}",
            ]
        )
    lines += _table(
        ["target", "sampler", "run", "import s", "CPU s", "load average (1 min) at start"],
        run_rows,
    )
    failed = [r for r in rows if r.get("failed")]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {r['target']} / {r['sampler']}: FAILED: {r['failed']}" for r in failed]
    lines += ["", "## Machine", "", machine_section(meta["machine"]), ""]
    return "\n".join(lines)
