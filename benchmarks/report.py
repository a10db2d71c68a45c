"""Markdown report of a `benchmarks.run` comparison (tables only; no JAX, no plotting).

`build_report` turns the JSON payload written by `benchmarks.run` (``meta`` + ``runs`` +
``overhead``) into the report, in this order: the command, a one-screen summary (per target,
each sampler's verdict against `CORRECTNESS_BAR` and ESS/s, flowmc_like / best peer) with the
figures, the continuous tables (medians over seeds, every run, ratios), where the time goes,
the local-step overhead, the lattice tables, any extra section, and last the machine and
every setting in a collapsed block.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = [
    "CORRECTNESS_BAR",
    "build_report",
    "continuous_tables",
    "discrete_tables",
    "fmt",
    "get_path",
    "pass_fail",
    "summary_section",
    "summary_table",
    "time_breakdown",
]

DISPLAY = {
    "flowmc_like": "flowmc_like",
    "flowmc": "flowMC",
    "nuts": "NUTS",
    "metropolis": "Metropolis",
    "wolff": "Wolff",
}

CORRECTNESS_BAR: dict[str, float] = {
    "max_abs_z": 5.0,
    "max_sd_rel_err": 0.25,
    "mode_weight_err": 0.05,
    "max_r_hat": 1.1,
}
"""A run passes when every metric it has is at most this (metrics a target lacks are skipped)."""

BAR_LABELS = {
    "max_abs_z": "z",
    "max_sd_rel_err": "sd",
    "mode_weight_err": "mode-w",
    "max_r_hat": "R-hat",
}

CONTINUOUS_COLUMNS: list[tuple[str, str]] = [
    ("wall s", "timings.total"),
    ("compile s", "timings.compile"),
    ("train s", "timings.training"),
    ("sample s", "timings.production"),
    ("other s", "timings.other"),
    ("min ESS bulk", "metrics.min_ess_bulk"),
    ("min ESS tail", "metrics.min_ess_tail"),
    ("ESS/s", "metrics.ess_per_s"),
    ("max abs z", "metrics.max_abs_z"),
    ("sd err", "metrics.max_sd_rel_err"),
    ("mode-w err", "metrics.mode_weight_err"),
    ("global acc", "global_acceptance"),
    ("ESS/1k evals", "metrics.ess_per_1k_evals"),
    ("R-hat", "metrics.max_r_hat"),
]

DISCRETE_COLUMNS: list[tuple[str, str]] = [
    ("wall s", "timings.total"),
    ("compile s", "timings.compile"),
    ("train s", "timings.training"),
    ("sample s", "timings.production"),
    ("global acc", "global_acceptance"),
    ("e", "metrics.e"),
    ("z e", "metrics.e_z"),
    ("C_v", "metrics.c_v"),
    ("z C_v", "metrics.c_v_z"),
    ("<\\|m\\|>", "metrics.abs_m"),
    ("z \\|m\\|", "metrics.abs_m_z"),
    ("tau_E sweeps", "metrics.tau_energy_sweeps"),
    ("tau_\\|m\\| sweeps", "metrics.tau_abs_m_sweeps"),
    ("tau_E ms", "metrics.tau_energy_seconds"),
    ("tau_\\|m\\| ms", "metrics.tau_abs_m_seconds"),
    ("ESS/s", "metrics.ess_per_s"),
    ("sign changes /1k sweeps", "metrics.sign_changes_per_1k_sweeps"),
    ("P(m>0)", "metrics.p_m_positive"),
    ("z P(m>0)", "metrics.p_m_positive_z"),
    ("R-hat", "metrics.max_r_hat"),
]
_MS_COLUMNS = {"tau_E ms", "tau_\\|m\\| ms"}


def fmt(v: Any, nd: int = 3) -> str:
    """Compact number formatting for tables ("-" for None/NaN)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 10 ** (-nd)):
        return f"{v:.2e}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.{nd}g}" if a < 1 else f"{v:.2f}"


def get_path(rec: dict[str, Any], path: str) -> Any:
    """``rec["a"]["b"]`` for ``path="a.b"``; None when missing."""
    cur: Any = rec
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return None if math.isnan(v) else float(v)


def _per_run_rows(recs: list[dict[str, Any]], columns: Any) -> list[list[str]]:
    """One table row per run: target, sampler, seed, PASS/FAIL, then ``columns``' cells."""
    rows = []
    for r in recs:
        name = DISPLAY.get(r["sampler"], r["sampler"])
        if not r.get("ok"):
            err = str(r.get("error", "?")).replace("|", "/").replace("\n", " ")[:200]
            rows.append([r["target"], name, str(r["seed"]), f"FAILED: {err}"] + [""] * len(columns))
            continue
        rows.append([r["target"], name, str(r["seed"]), pass_fail(r), *_cells(r, columns, False)])
    return rows


def pass_fail(rec: dict[str, Any]) -> str:
    """``PASS``, ``FAIL (z, R-hat)`` (the failed criteria) or ``FAILED`` for a failed run."""
    if not rec.get("ok"):
        return "FAILED"
    failed = []
    for key, bar in CORRECTNESS_BAR.items():
        v = _num(get_path(rec, f"metrics.{key}"))
        if v is None:
            if key == "max_abs_z" or key == "max_r_hat":
                failed.append(f"{BAR_LABELS[key]} n/a")
            continue
        if not v <= bar:
            failed.append(BAR_LABELS[key])
    return "PASS" if not failed else f"FAIL ({', '.join(failed)})"


def _is_discrete(rec: dict[str, Any]) -> bool:
    return rec.get("kind") == "discrete"


def _medians(
    records: Sequence[dict[str, Any]], columns: list[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        out.setdefault((r["target"], r["sampler"]), {"runs": []})["runs"].append(r)
    for row in out.values():
        ok = [r for r in row["runs"] if r.get("ok")]
        row["n_ok"] = len(ok)
        row["n"] = len(row["runs"])
        row["n_pass"] = sum(pass_fail(r) == "PASS" for r in ok)
        for label, path in columns:
            vals = [v for v in (_num(get_path(r, path)) for r in ok) if v is not None]
            row[label] = statistics.median(vals) if vals else None
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _cells(rec_or_row: dict[str, Any], columns: list[tuple[str, str]], is_row: bool) -> list[str]:
    cells = []
    for label, path in columns:
        v = rec_or_row.get(label) if is_row else get_path(rec_or_row, path)
        if label in _MS_COLUMNS and _num(v) is not None:
            v = 1e3 * float(v)
        cells.append(fmt(v))
    return cells


def continuous_tables(records: Sequence[dict[str, Any]], samplers: Sequence[str]) -> str:
    """Main table (medians over seeds), per-run table with PASS/FAIL, flowmc_like/peer ratios."""
    recs = [r for r in records if not _is_discrete(r)]
    if not recs:
        return "_No continuous runs._"
    med = _medians(recs, CONTINUOUS_COLUMNS)
    labels = [c for c, _ in CONTINUOUS_COLUMNS]
    n_seeds = len({r["seed"] for r in recs})
    rows = []
    for (t, s), row in med.items():
        rows.append(
            [
                t,
                DISPLAY.get(s, s),
                f"{row['n_pass']}/{row['n']}",
                *_cells(row, CONTINUOUS_COLUMNS, True),
            ]
        )
    lines = [f"Medians over {n_seeds} seed(s); PASS = runs meeting the correctness bar.", ""]
    lines += _table(["target", "sampler", "PASS", *labels], rows)

    lines += ["", "Every run:", ""]
    rows = _per_run_rows(recs, CONTINUOUS_COLUMNS)
    lines += _table(["target", "sampler", "seed", "PASS/FAIL", *labels], rows)

    peers = [s for s in samplers if s not in ("flowmc_like", "metropolis", "wolff")]
    if "flowmc_like" in samplers and peers:
        lines += [
            "",
            "Ratios flowmc_like / peer (medians over seeds; > 1 favours flowmc_like "
            "for ESS, < 1 for wall time):",
            "",
        ]
        rows = []
        for t in dict.fromkeys(r["target"] for r in recs):
            ours = med.get((t, "flowmc_like"))
            for s in peers:
                peer = med.get((t, s))
                if not ours or not peer:
                    continue
                rows.append(
                    [t, DISPLAY.get(s, s)]
                    + [
                        _ratio(ours.get(k), peer.get(k))
                        for k in ("ESS/s", "ESS/1k evals", "wall s")
                    ]
                )
        lines += _table(["target", "peer", "ESS/s ratio", "ESS/1k-evals ratio", "wall ratio"], rows)
    return "\n".join(lines)


def _ratio(a: Any, b: Any) -> str:
    a, b = _num(a), _num(b)
    return fmt(a / b) if a is not None and b else "-"


def discrete_tables(records: Sequence[dict[str, Any]], samplers: Sequence[str]) -> str:
    """Lattice table per run (z against exact, tau, ESS/s, sign changes) plus medians/ratios."""
    recs = [r for r in records if _is_discrete(r)]
    if not recs:
        return "_No lattice runs._"
    labels = [c for c, _ in DISCRETE_COLUMNS]
    rows = _per_run_rows(recs, DISCRETE_COLUMNS)
    lines = _table(["case", "sampler", "seed", "PASS/FAIL", *labels], rows)
    med = _medians(recs, DISCRETE_COLUMNS)
    n_seeds = len({r["seed"] for r in recs})
    if n_seeds > 1:
        lines += ["", f"Medians over {n_seeds} seeds:", ""]
        rows = [
            [
                t,
                DISPLAY.get(s, s),
                f"{row['n_pass']}/{row['n']}",
                *_cells(row, DISCRETE_COLUMNS, True),
            ]
            for (t, s), row in med.items()
        ]
        lines += _table(["case", "sampler", "PASS", *labels], rows)
    others = [s for s in samplers if s in ("metropolis", "wolff")]
    if "flowmc_like" in samplers and others:
        lines += ["", "Ratios flowmc_like / baseline (medians over seeds):", ""]
        rows = []
        for t in dict.fromkeys(r["target"] for r in recs):
            ours = med.get((t, "flowmc_like"))
            for s in others:
                base = med.get((t, s))
                if not ours or not base:
                    continue
                rows.append(
                    [
                        t,
                        DISPLAY.get(s, s),
                        _ratio(ours.get("ESS/s"), base.get("ESS/s")),
                        _ratio(base.get("tau_\\|m\\| ms"), ours.get("tau_\\|m\\| ms")),
                        _ratio(ours.get("wall s"), base.get("wall s")),
                    ]
                )
        lines += _table(
            [
                "case",
                "baseline",
                "ESS/s ratio",
                "tau_\\|m\\| ms: baseline / flowmc_like",
                "wall ratio",
            ],
            rows,
        )
    return "\n".join(lines)


def _pct(part: Any, total: float) -> str:
    part = _num(part)
    return "-" if part is None or not total else f"{100.0 * part / total:.1f}%"


def time_breakdown(records: Sequence[dict[str, Any]], samplers: Sequence[str]) -> str:
    """Fractions of wall time in compile / training / sampling / other, per sampler and target."""
    parts = [
        ("compile", "compile"),
        ("training", "training"),
        ("sampling", "production"),
        ("other", "other"),
    ]
    rows = []
    by_sampler: dict[str, dict[str, float]] = {}
    for (t, s), row in _medians(
        records, [(k, f"timings.{v}") for k, v in parts] + [("total", "timings.total")]
    ).items():
        total = row.get("total")
        if not total:
            continue
        rows.append([t, DISPLAY.get(s, s), fmt(total)] + [_pct(row[k], total) for k, _ in parts])
    for r in records:
        if not r.get("ok"):
            continue
        acc = by_sampler.setdefault(r["sampler"], {k: 0.0 for k, _ in parts} | {"total": 0.0})
        for k, v in parts:
            acc[k] += _num(get_path(r, f"timings.{v}")) or 0.0
        acc["total"] += _num(get_path(r, "timings.total")) or 0.0
    lines = [
        "Shares of the wall time (medians over seeds): compile = JAX tracing + lowering + "
        "XLA compilation; training = flow training loops / warm-up / burn-in without compile; "
        "sampling = production without compile; other = the rest (construction, setup, host "
        "transfers).",
        "",
    ]
    lines += _table(
        ["target", "sampler", "wall s", "compile", "training", "sampling", "other"], rows
    )
    lines += ["", "All runs of each sampler together (sums over runs):", ""]
    srows = []
    for s in samplers:
        acc = by_sampler.get(s)
        if not acc or not acc["total"]:
            continue
        srows.append(
            [DISPLAY.get(s, s), fmt(acc["total"])] + [_pct(acc[k], acc["total"]) for k, _ in parts]
        )
    lines += _table(["sampler", "wall s (sum)", "compile", "training", "sampling", "other"], srows)
    return "\n".join(lines)


def _json(v: Any) -> str:
    return "`" + json.dumps(v, sort_keys=True, default=str) + "`"


def settings_section(meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """Every setting each sampler ran with: schedule, overrides, per-target settings."""
    lines = [
        f"- Shared schedule of the continuous targets (all samplers): {_json(meta['schedule'])} "
        f"[{meta.get('schedule_source', '?')}].",
        f"- Chains on the lattice cases (every sampler): {meta.get('discrete_n_chains')}.",
        f"- Suite: {meta.get('suite') or 'none'}"
        + (f" ({meta['suite_description']})" if meta.get("suite_description") else "")
        + f"; suite per-(sampler, target) overrides: {_json(meta.get('suite_overrides') or {})}.",
        f"- Command-line overrides (`--set`): {_json(meta.get('sets') or {})}.",
    ]
    per_target = meta.get("flowmc_like_target_settings") or {}
    if per_target:
        empty = [t for t, v in per_target.items() if not v]
        lines.append(
            "- flowmc_like per-target settings (`benchmarks.suites.FLOWMC_LIKE_TARGET_SETTINGS`): "
            + (f"none for {', '.join(empty)}" if empty else "")
        )
        lines += [f"  - {t}: {_json(v)}" for t, v in per_target.items() if v]
    lines += [
        "",
        "Settings actually used, per sampler and target (first seed; `overrides` = what the "
        "harness passed on top of the schedule, `settings` = what the runner recorded):",
        "",
    ]
    seen: set[tuple[str, str]] = set()
    rows = []
    for r in records:
        key = (r["sampler"], r["target"])
        if key in seen or not r.get("ok"):
            continue
        seen.add(key)
        rows.append(
            [
                DISPLAY.get(r["sampler"], r["sampler"]),
                r["target"],
                _json(r.get("overrides", {})),
                _json(r.get("settings", {})),
            ]
        )
    lines += _table(["sampler", "target", "overrides", "settings"], rows)
    return "\n".join(lines)


def machine_section(machine: dict[str, Any]) -> str:
    """The machine and software versions."""
    v = machine.get("versions", {})
    vers = ", ".join(f"{k} {val}" for k, val in v.items())
    return "\n".join(
        [
            f"- CPU: {machine.get('cpu', '?')}, {machine.get('cpu_count', '?')} cores, "
            f"RAM {fmt(machine.get('ram_gb'))} GB; backend {machine.get('backend', '?')}; "
            f"x64 {machine.get('x64', '?')}; {machine.get('platform', '?')}",
            f"- Versions: {vers}",
            f"- Load average (1, 5, 15 min) at start: {machine.get('loadavg_start')}, at end: "
            f"{machine.get('loadavg_end')} (the machine may be shared; ratios within one run "
            "are what to compare)",
        ]
    )


def _verdict(row: dict[str, Any]) -> str:
    n, n_pass = row.get("n") or 0, row.get("n_pass") or 0
    return f"{'PASS' if n and n_pass == n else 'FAIL'} {n_pass}/{n}"


def summary_table(med: dict[tuple[str, str], dict[str, Any]], samplers: Sequence[str]) -> str:
    """One row per target: each sampler's verdict and ESS/s, and flowmc_like / best peer.

    Args:
        med: ``{(target, sampler): {"n": runs, "n_pass": passing runs, "ESS/s": median}}``
            (`_medians` rows, or rows read back from a report's medians table).
        samplers: sampler keys in column order; ``flowmc_like`` first if present.

    The best peer is the one with the highest median ESS/s; its name and verdict follow the
    ratio, so a fast but wrong peer is visible as such.
    """
    present = [s for s in samplers if any(k[1] == s for k in med)]
    names = [DISPLAY.get(s, s) for s in present]
    header = ["target", *(f"{n} correct" for n in names), *(f"{n} ESS/s" for n in names)]
    has_ours = "flowmc_like" in present and len(present) > 1
    if has_ours:
        header.append("flowmc_like / best peer (ESS/s)")
    rows = []
    for t in dict.fromkeys(k[0] for k in med):
        cells = [med.get((t, s)) or {} for s in present]
        row = [t, *(_verdict(c) if c else "-" for c in cells)]
        row += [fmt(c.get("ESS/s")) if c else "-" for c in cells]
        if has_ours:
            ours = med.get((t, "flowmc_like")) or {}
            peers = [(s, med[(t, s)]) for s in present if s != "flowmc_like" and (t, s) in med]
            peers = [(s, r) for s, r in peers if _num(r.get("ESS/s")) is not None]
            if peers and _num(ours.get("ESS/s")) is not None:
                s, best = max(peers, key=lambda p: _num(p[1]["ESS/s"]) or 0.0)
                verdict = _verdict(best).split()[0]
                row.append(
                    f"{_ratio(ours['ESS/s'], best['ESS/s'])} (vs {DISPLAY.get(s, s)}, {verdict})"
                )
            else:
                row.append("-")
        rows.append(row)
    return "\n".join(_table(header, rows))


def summary_section(records: Sequence[dict[str, Any]], samplers: Sequence[str]) -> str:
    """The report's opening: per target, correct?, ESS/s of each sampler, the ratio."""
    parts = [
        "Per target: correct = runs meeting the correctness bar (PASS when every seed does); "
        "ESS/s = median over seeds of min bulk ESS over the wall time of the whole run "
        "(compilation included); the last column compares flowmc_like with the fastest peer "
        "and says whether that peer was correct.",
    ]
    for discrete, title in ((False, "Continuous targets"), (True, "Lattice models")):
        recs = [r for r in records if _is_discrete(r) == discrete]
        if recs:
            med = _medians(recs, [("ESS/s", "metrics.ess_per_s")])
            parts += ["", f"{title}:", "", summary_table(med, samplers)]
    return "\n".join(parts)


def settings_block(meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """Machine and settings, collapsed (pymdownx.details): the report's last section."""
    body = [
        "### Machine",
        "",
        machine_section(meta.get("machine", {})),
        "",
        "### Settings",
        "",
        settings_section(meta, records),
    ]
    if meta.get("notes"):
        body += ["", "Notes:", ""] + [f"- {n}" for n in meta["notes"]]
    return collapsed("Machine and every setting", "\n".join(body))


def collapsed(title: str, body: str) -> str:
    """A collapsed block (pymdownx.details) holding ``body``."""
    inner = ["    " + ln if ln.strip() else "" for ln in body.splitlines()]
    return "\n".join([f'??? note "{title}"', "", *inner])


def build_report(
    payload: dict[str, Any],
    images: dict[str, str],
    overhead_md: str | None,
    extra_sections: str | None = None,
) -> str:
    """The whole Markdown report: summary and figures first, settings last (collapsed).

    Args:
        payload: ``{"meta": ..., "runs": [...]}`` as written by `benchmarks.run`.
        images: ``{"ess_per_s": relpath, "<target>_samples": relpath}`` for the figures.
        overhead_md: the overhead table, or None if the tool did not run.
        extra_sections: Markdown placed after the lattice section, before the settings
            (e.g. the devices section of `benchmarks.devices`).
    """
    meta, records = payload["meta"], payload["runs"]
    samplers = meta["samplers"]
    lines = [
        f"# Benchmarks: flowmc_like side by side ({meta.get('stamp', '')})",
        "",
        f"Regenerate with: `{meta['command']}`",
        "",
        "What is measured and why: `docs/spec/BENCHMARKS.md`; how the harness implements it and "
        "every setting: `benchmarks/README.md`. Times in seconds; wall = sampler construction "
        "+ run (compile included, imports excluded). ESS = min over dimensions of ArviZ bulk "
        "ESS over all production draws; ESS/s over the wall time of the whole run; ESS/1k "
        "evals counts every target evaluation of the whole run (counting runs only).",
        "",
        "## Summary",
        "",
        summary_section(records, samplers),
        "",
    ]
    if images.get("ess_per_s"):
        lines += [f"![ESS per second]({images['ess_per_s']})", ""]
    for key, rel in images.items():
        if key.endswith("_samples"):
            lines += [f"![{key[: -len('_samples')]} draws]({rel})", ""]
    if not images:
        lines += ["_No figures (matplotlib missing or no successful runs)._", ""]
    lines += [
        "## Continuous targets",
        "",
        f"Correctness bar (a run PASSES when every metric it has meets it): max \\|z\\| <= "
        f"{CORRECTNESS_BAR['max_abs_z']}, sd error <= {CORRECTNESS_BAR['max_sd_rel_err']}, "
        f"mode-weight error <= {CORRECTNESS_BAR['mode_weight_err']}, R-hat <= "
        f"{CORRECTNESS_BAR['max_r_hat']}; FAIL lists the criteria missed.",
        "",
        continuous_tables(records, samplers),
        "",
        "## Where the time goes",
        "",
        time_breakdown(records, samplers),
        "",
        "## Local-step overhead",
        "",
    ]
    if overhead_md:
        oh = payload.get("overhead") or {}
        st = oh.get("settings", {})
        lines += [
            f"One local step of all {st.get('n_chains', '?')} chains (`fm.MALA()` step, fixed "
            "params) over one bare `jax.vmap(jax.value_and_grad(log_prob))` on the same chains. "
            f"`scan`: {st.get('n_steps', '?')} steps inside one jitted `lax.scan`, per step "
            "(dispatch excluded); `per call`: one jitted call per step from Python (dispatch "
            "included). The ideal ratio is 1. `local phase`: the library's local phase as "
            "`Sampler.run` compiles it (noise drawn before the loop, adaptation switch and trace "
            "included). `minimal MALA`: the least a MALA step can do, written directly (noise "
            "drawn before the loop, one value_and_grad, both proposal densities, accept, record); "
            "its ratio is the floor for any MALA implementation here, before its random draws. "
            "`noise draw`: the library's bulk draw of every step's noise (normals and accept "
            "uniforms), per step; `minimal + draw` is the floor with the draws counted. "
            "`blackjax MALA`: "
            "`blackjax.mala` vmapped over the chains. See `benchmarks/overhead.py`.",
            "",
            overhead_md,
        ]
    else:
        lines.append("_Not run (`python -m benchmarks.overhead`)._")
    lines += [
        "",
        "## Lattice models (Ising / Potts)",
        "",
        "e = <E>/N, C_v = beta^2 Var(E)/N, <\\|m\\|> (Potts: order parameter); z = (estimate - "
        "exact) / standard error with the ArviZ bulk ESS. tau = integrated autocorrelation time "
        "(n_chains n_draws / ESS) in sweeps (a SiteFlip sweep or a global proposal counts as "
        "one sweep, a Wolff update as cluster size / N) and in ms of production wall time per "
        "draw; ESS/s = min(ESS_E, ESS_\\|m\\|) over the whole run's wall time; sign changes of m "
        "per 1000 sweeps and P(m > 0) (exact 0.5) for the Ising cases. The bar: max \\|z\\| <= 5, "
        "\\|P(m>0) - 0.5\\| <= 0.05, R-hat (E, \\|m\\|) <= 1.1.",
        "",
        discrete_tables(records, samplers),
        "",
    ]
    if extra_sections:
        lines += [extra_sections.strip(), ""]
    lines += ["## Machine and settings", "", settings_block(meta, records)]
    return "\n".join(lines).rstrip() + "\n"
