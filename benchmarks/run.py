"""Side-by-side benchmark driver: every sampler x target x seed in a fresh process.

Usage::

    python -m benchmarks.run --targets dual_moon_2d,gmm2_10d --samplers flowmc_like,flowmc \\
        --seeds 0 [--n-chains 32] [--out benchmarks/results/<tag>.json]

Each (sampler, target, seed) runs in its own ``python -m benchmarks.worker`` process, one
after another (never concurrently: they would share the cores), so every run pays its own
JAX compilation as a user's script would. A second, untimed process per run counts target
evaluations (``--no-count-evals`` skips it). Results: a JSON file with every record and a
Markdown file with the tables, both also printed.

The schedule (n_chains, n_local_steps, n_global_steps, n_training_loops, n_production_loops,
n_epochs, learning_rate) is the same for every sampler. Unless given on the command line it is
read from the defaults of ``flowmc_like.Sampler``'s signature when the package imports, else
`benchmarks.peers.Schedule`'s defaults (50, 25, 20, 20, 5, 1e-3) are used; n_chains is 32
unless ``--n-chains`` says otherwise. Sampler-specific settings go through
``--set SAMPLER.KEY=VALUE`` (VALUE parsed as JSON, else kept as a string), e.g.
``--set flowmc.batch_size=2048``. See ``benchmarks/README.md`` for every setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import inspect
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.peers import PEER_MODULES, Schedule
from benchmarks.targets import TARGET_NAMES

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(Schedule))
EVAL_KEYS = ("n_evals", "n_evals_training", "n_evals_production")
DISPLAY = {"flowmc_like": "flowmc_like", "flowmc": "flowMC", "nuts": "NUTS"}


def flowmc_like_defaults() -> dict[str, Any] | None:
    """Schedule defaults from ``flowmc_like.Sampler``'s signature, or None if unavailable."""
    try:
        import flowmc_like as fm

        sig = inspect.signature(fm.Sampler)
    except Exception:
        return None
    out = {}
    for name in SCHEDULE_FIELDS:
        par = sig.parameters.get(name)
        if name != "n_chains" and par is not None and par.default is not inspect.Parameter.empty:
            out[name] = par.default
    return out


def resolve_schedule(args: argparse.Namespace) -> tuple[Schedule, str]:
    """The shared schedule and where its numbers came from."""
    base = Schedule().as_dict()
    source = "benchmarks.peers.Schedule defaults"
    if not args.no_flowmc_like_defaults:
        fm = flowmc_like_defaults()
        if fm:
            base.update(fm)
            source = f"flowmc_like.Sampler defaults ({', '.join(sorted(fm))})"
    for name in SCHEDULE_FIELDS:
        v = getattr(args, name)
        if v is not None:
            base[name] = v
    return Schedule(**base), source + "; command-line values override"


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["flowmc.batch_size=2048", ...]`` -> ``{"flowmc": {"batch_size": 2048}}``."""
    out: dict[str, dict[str, Any]] = {}
    for it in items:
        lhs, sep, rhs = it.partition("=")
        sampler, dot, key = lhs.partition(".")
        if not sep or not dot or sampler not in PEER_MODULES:
            raise SystemExit(
                f"--set expects SAMPLER.KEY=VALUE with SAMPLER in {list(PEER_MODULES)}"
            )
        try:
            val: Any = json.loads(rhs)
        except json.JSONDecodeError:
            val = rhs
        out.setdefault(sampler, {})[key] = val
    return out


def run_worker(
    sampler: str,
    target: str,
    seed: int,
    schedule: Schedule,
    overrides: dict[str, Any],
    count_evals: bool,
    timeout: float,
) -> dict[str, Any]:
    """Run one worker process and return its JSON record (or a failure record)."""
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        out = Path(tmp) / "rec.json"
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.worker",
            "--sampler",
            sampler,
            "--target",
            target,
            "--seed",
            str(seed),
            "--schedule",
            json.dumps(schedule.as_dict()),
            "--overrides",
            json.dumps(overrides),
            "--out",
            str(out),
        ]
        if count_evals:
            cmd.append("--count-evals")
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        t0 = time.time()
        try:
            proc = subprocess.run(
                cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {
                "ok": False,
                "error": f"timeout after {timeout:.0f} s",
                "process_seconds": timeout,
            }
        process_seconds = time.time() - t0
        if out.exists():
            rec = json.loads(out.read_text())
        else:
            rec = {"ok": False, "error": f"worker exited {proc.returncode} without a record"}
        rec["process_seconds"] = process_seconds
        if not rec.get("ok"):
            rec["stderr_tail"] = proc.stderr[-4000:]
        return rec


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, int):
        return str(v)
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 10 ** (-nd)):
        return f"{v:.2e}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.{nd}g}" if a < 1 else f"{v:.2f}"


RUN_COLUMNS: list[tuple[str, str]] = [
    ("wall s", "timings.total"),
    ("compile s", "timings.compile"),
    ("train s", "timings.training"),
    ("sample s", "timings.production"),
    ("min ESS bulk", "metrics.min_ess_bulk"),
    ("min ESS tail", "metrics.min_ess_tail"),
    ("ESS/s", "metrics.ess_per_s"),
    ("ESS/1k evals", "metrics.ess_per_1k_evals"),
    ("max abs z", "metrics.max_abs_z"),
    ("sd err", "metrics.max_sd_rel_err"),
    ("mode-w err", "metrics.mode_weight_err"),
    ("global acc", "global_acceptance"),
    ("R-hat", "metrics.max_r_hat"),
]


def _get(rec: dict[str, Any], path: str) -> Any:
    cur: Any = rec
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def markdown_tables(records: list[dict[str, Any]], samplers: list[str]) -> str:
    """Per-run table, per-(target, sampler) medians over seeds, and flowmc_like/peer ratios."""
    lines = ["| target | sampler | seed | " + " | ".join(c for c, _ in RUN_COLUMNS) + " |"]
    lines.append("|" + " --- |" * (3 + len(RUN_COLUMNS)))
    for r in records:
        name = DISPLAY.get(r["sampler"], r["sampler"])
        if not r.get("ok"):
            lines.append(
                f"| {r['target']} | {name} | {r['seed']} | FAILED: {r.get('error', '?')} |"
            )
            continue
        cells = [_fmt(_get(r, path)) for _, path in RUN_COLUMNS]
        lines.append(f"| {r['target']} | {name} | {r['seed']} | " + " | ".join(cells) + " |")

    targets = list(dict.fromkeys(r["target"] for r in records))
    med: dict[tuple[str, str], dict[str, float | None]] = {}
    for t in targets:
        for s in samplers:
            ok = [r for r in records if r["target"] == t and r["sampler"] == s and r.get("ok")]
            row: dict[str, float | None] = {}
            for label, path in RUN_COLUMNS:
                vals = [v for v in (_get(r, path) for r in ok) if v is not None]
                vals = [v for v in vals if not (isinstance(v, float) and math.isnan(v))]
                row[label] = statistics.median(vals) if vals else None
            row["n"] = len(ok)
            med[(t, s)] = row
    n_seeds = len({r["seed"] for r in records})
    if n_seeds > 1:
        lines += ["", f"Medians over {n_seeds} seeds:", ""]
        lines.append("| target | sampler | runs | " + " | ".join(c for c, _ in RUN_COLUMNS) + " |")
        lines.append("|" + " --- |" * (3 + len(RUN_COLUMNS)))
        for (t, s), row in med.items():
            cells = [_fmt(row[c]) for c, _ in RUN_COLUMNS]
            lines.append(f"| {t} | {DISPLAY.get(s, s)} | {row['n']} | " + " | ".join(cells) + " |")

    if "flowmc_like" in samplers and len(samplers) > 1:
        lines += ["", "Ratios flowmc_like / peer (medians over seeds):", ""]
        lines.append("| target | peer | ESS/s ratio | ESS/1k-evals ratio | wall-time ratio |")
        lines.append("| --- | --- | --- | --- | --- |")
        for t in targets:
            ours = med.get((t, "flowmc_like"), {})
            for s in samplers:
                if s == "flowmc_like":
                    continue
                peer = med.get((t, s), {})

                def ratio(key: str, o: dict = ours, p: dict = peer) -> str:
                    a, b = o.get(key), p.get(key)
                    return _fmt(a / b) if a is not None and b else "-"

                lines.append(
                    f"| {t} | {DISPLAY.get(s, s)} | {ratio('ESS/s')} | {ratio('ESS/1k evals')} "
                    f"| {ratio('wall s')} |"
                )
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    p.add_argument("--targets", default="dual_moon_2d,gmm2_10d", help=f"from {TARGET_NAMES}")
    p.add_argument("--samplers", default="flowmc_like,flowmc", help=f"from {list(PEER_MODULES)}")
    p.add_argument("--seeds", default="0", help="comma-separated ints")
    p.add_argument("--n-chains", dest="n_chains", type=int, default=32)
    p.add_argument("--n-local-steps", dest="n_local_steps", type=int)
    p.add_argument("--n-global-steps", dest="n_global_steps", type=int)
    p.add_argument("--n-training-loops", dest="n_training_loops", type=int)
    p.add_argument("--n-production-loops", dest="n_production_loops", type=int)
    p.add_argument("--n-epochs", dest="n_epochs", type=int)
    p.add_argument("--learning-rate", dest="learning_rate", type=float)
    p.add_argument(
        "--no-flowmc-like-defaults",
        action="store_true",
        help="do not read the schedule from flowmc_like.Sampler's signature",
    )
    p.add_argument("--set", action="append", default=[], metavar="SAMPLER.KEY=VALUE")
    p.add_argument("--no-count-evals", action="store_true", help="skip the counting runs")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    p.add_argument("--out", help="JSON path (default benchmarks/results/<timestamp>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; write and print the tables."""
    args = _parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    samplers = [s for s in args.samplers.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    for t in targets:
        if t not in TARGET_NAMES:
            raise SystemExit(f"unknown target {t!r}; known: {TARGET_NAMES}")
    for s in samplers:
        if s not in PEER_MODULES:
            raise SystemExit(f"unknown sampler {s!r}; known: {list(PEER_MODULES)}")
    schedule, source = resolve_schedule(args)
    sets = parse_sets(args.set)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else RESULTS / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"schedule: {schedule.as_dict()}  [{source}]", file=sys.stderr)

    records: list[dict[str, Any]] = []
    for t in targets:
        for seed in seeds:
            for s in samplers:
                ov = sets.get(s, {})
                print(f"[{t} / {s} / seed {seed}] timed run ...", file=sys.stderr, flush=True)
                rec = run_worker(s, t, seed, schedule, ov, False, args.timeout)
                if rec.get("ok") and not args.no_count_evals:
                    print(
                        f"[{t} / {s} / seed {seed}] counting run ...", file=sys.stderr, flush=True
                    )
                    cnt = run_worker(s, t, seed, schedule, ov, True, args.timeout)
                    rec["eval_count"] = {
                        k: cnt.get(k)
                        for k in (
                            "ok",
                            "error",
                            "n_evals",
                            "n_evals_training",
                            "n_evals_production",
                        )
                    }
                    m = rec["metrics"]
                    ess = m.get("min_ess_bulk")
                    for key, n in (
                        ("ess_per_1k_evals", cnt.get("n_evals")),
                        ("ess_per_1k_evals_production", cnt.get("n_evals_production")),
                    ):
                        ok = n and ess is not None and math.isfinite(ess)
                        m[key] = 1000.0 * ess / n if ok else None
                rec.setdefault("sampler", s)
                rec.setdefault("target", t)
                rec.setdefault("seed", seed)
                records.append(rec)
                if rec.get("ok"):
                    msg = ", ".join(f"{c}={_fmt(_get(rec, path))}" for c, path in RUN_COLUMNS[:8])
                else:
                    msg = f"FAILED: {rec.get('error')}\n{rec.get('stderr_tail', '')[-1500:]}"
                print(f"    {msg}", file=sys.stderr, flush=True)

    table = markdown_tables(records, samplers)
    env = next((r["env"] for r in records if "env" in r), {})
    cmdline = " ".join(argv if argv is not None else sys.argv[1:])
    header = [
        f"# Benchmark {stamp}",
        "",
        f"Command: `python -m benchmarks.run {cmdline}`",
        f"Machine: {env.get('cpu', '?')}, {env.get('cpu_count', '?')} cores, "
        f"backend {env.get('backend', '?')}, jax {env.get('jax', '?')}, "
        f"python {env.get('python', '?')}, x64 {env.get('x64', '?')}",
        f"Schedule (all samplers): {schedule.as_dict()} [{source}]",
        f"Sampler overrides: {sets or 'none'}",
        "",
        "Times in seconds; wall = sampler construction + run (compile included, imports "
        "excluded); train/sample exclude compile. ESS = min over dims of ArviZ ess_bulk over "
        "all production draws; ESS/1k evals counts every log_prob call of the whole run.",
        "",
    ]
    md = "\n".join(header) + table + "\n"
    payload = {
        "meta": {
            "stamp": stamp,
            "argv": argv if argv is not None else sys.argv[1:],
            "schedule": schedule.as_dict(),
            "schedule_source": source,
            "overrides": sets,
            "targets": targets,
            "samplers": samplers,
            "seeds": seeds,
            "env": env,
        },
        "runs": records,
    }
    out.write_text(json.dumps(payload, indent=1))
    out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 0 if all(r.get("ok") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
