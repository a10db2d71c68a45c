"""Side-by-side benchmark driver: every sampler x target x seed in a fresh process, one report.

Usage::

    python -m benchmarks.run --suite quick|full [--samplers flowmc_like,flowmc,nuts,...]
        [--targets ...] [--seeds 0,1] [--tag NAME | --out PATH.json] [--docs]
    python -m benchmarks.run --targets dual_moon_2d,gmm2_10d --samplers flowmc_like,flowmc \\
        --seeds 0 [--n-chains 32] [--set flowmc.batch_size=2048] [--no-count-evals]

``--suite`` (`benchmarks.suites`) picks targets, seeds, eval counting, the shared schedule,
per-(sampler, target) overrides and the overhead tool; ``--targets``/``--seeds``/``--samplers``
and the schedule flags override it. Without a suite the defaults are the historical ones
(dual_moon_2d and gmm2_10d, flowmc_like and flowMC, seed 0, counting on, no overhead tool).

Samplers: ``flowmc_like`` (continuous and lattice targets), ``flowmc`` and ``nuts``
(continuous only), ``metropolis`` and ``wolff`` (lattice only); a sampler is skipped, with a
note in the report, on targets it does not support. A suite runs all five by default.

Each (sampler, target, seed) runs in its own ``python -m benchmarks.worker`` process, one
after another (never concurrently: they would share the cores), so every run pays its own
JAX compilation as a user's script would. A second, untimed process per continuous run
counts target evaluations (``--no-count-evals`` skips it). The overhead tool
(`benchmarks.overhead`) runs once in its own process when the suite asks (``--overhead``/
``--no-overhead`` decide otherwise). A worker that fails or dies is recorded as FAILED; the
driver carries on and exits with status 1 at the end.

Outputs, for ``--tag T`` (default ``<suite>_<timestamp>``): ``benchmarks/results/T.json``
(every record, settings, environment), ``T.md`` (the report, `benchmarks.report`),
``T_draws.npz`` (thinned draws of the 2-D targets), ``T_ess_per_s.png`` and
``T_<target>_samples.png`` (`benchmarks.plots`). ``--docs`` also writes the report to
``docs/benchmarks.md`` with the figures copied to ``docs/img/benchmarks/``:
``python -m benchmarks.run --suite full --docs`` regenerates the committed report.

The shared schedule (n_chains, n_local_steps, n_global_steps, n_training_loops,
n_production_loops, n_epochs, learning_rate) is the same for every sampler of the continuous
targets: flowmc_like.Sampler's signature defaults when the package imports (else
`benchmarks.peers.Schedule`'s; for counts whose default is None, automatic in flowmc_like,
`Schedule`'s fixed 20 training + 20 production loops for the peers, while flowmc_like keeps
its automatic run length unless the suite or the command line fixes them), then the suite's
schedule, then the command line; n_chains is
32 (64 on the lattice cases) unless ``--n-chains`` says otherwise. Sampler-specific settings go
through ``--set SAMPLER.KEY=VALUE`` (VALUE parsed as JSON, else kept as a string). See
`benchmarks.suites` for the precedence and ``benchmarks/README.md`` for every setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import inspect
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.peers import Schedule
from benchmarks.report import build_report, fmt, get_path
from benchmarks.suites import (
    ALL_SAMPLERS,
    ALL_TARGETS,
    FLOWMC_LIKE_TARGET_SETTINGS,
    SUITES,
    Suite,
    is_discrete,
    merged_overrides,
    skip_reason,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DOCS = REPO / "docs"
SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(Schedule))
EVAL_KEYS = ("n_evals", "n_evals_training", "n_evals_production")
CONTINUOUS_N_CHAINS = 32
PROGRESS_COLUMNS = [
    ("wall s", "timings.total"),
    ("compile s", "timings.compile"),
    ("ESS/s", "metrics.ess_per_s"),
    ("max abs z", "metrics.max_abs_z"),
    ("R-hat", "metrics.max_r_hat"),
]


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
        is_set = par is not None and par.default not in (inspect.Parameter.empty, None)
        if name != "n_chains" and is_set:
            out[name] = par.default
    return out


def cli_schedule(args: argparse.Namespace) -> dict[str, Any]:
    """The schedule fields given explicitly on the command line."""
    return {n: getattr(args, n) for n in SCHEDULE_FIELDS if getattr(args, n) is not None}


def resolve_schedule(args: argparse.Namespace, suite: Suite | None = None) -> tuple[Schedule, str]:
    """The shared schedule and where its numbers came from.

    flowmc_like.Sampler's defaults (else `Schedule`'s), then the suite's schedule, then the
    command line.
    """
    base = Schedule().as_dict()
    source = "benchmarks.peers.Schedule defaults"
    if not args.no_flowmc_like_defaults:
        fm = flowmc_like_defaults()
        if fm:
            base.update(fm)
            source = f"flowmc_like.Sampler defaults ({', '.join(sorted(fm))})"
    if suite is not None and suite.schedule:
        base.update(suite.schedule)
        source += f"; suite {suite.name!r} sets {suite.schedule}"
    base.update(cli_schedule(args))
    return Schedule(**base), source + "; command-line values override"


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["flowmc.batch_size=2048", ...]`` -> ``{"flowmc": {"batch_size": 2048}}``."""
    out: dict[str, dict[str, Any]] = {}
    for it in items:
        lhs, sep, rhs = it.partition("=")
        sampler, dot, key = lhs.partition(".")
        if not sep or not dot or sampler not in ALL_SAMPLERS:
            raise SystemExit(f"--set expects SAMPLER.KEY=VALUE with SAMPLER in {ALL_SAMPLERS}")
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


def run_overhead(n_chains: int, timeout: float, cost_sweep: bool = True) -> dict[str, Any]:
    """`benchmarks.overhead` in its own process; its JSON result (``ok`` False on failure)."""
    with tempfile.TemporaryDirectory(prefix="bench_oh_") as tmp:
        out = Path(tmp) / "overhead.json"
        cmd = [sys.executable, "-m", "benchmarks.overhead", "--n-chains", str(n_chains)]
        cmd += ["--json", str(out)]
        if not cost_sweep:
            cmd.append("--no-cost-sweep")
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        try:
            proc = subprocess.run(
                cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timeout after {timeout:.0f} s"}
        if proc.returncode != 0 or not out.exists():
            return {"ok": False, "error": proc.stderr[-2000:]}
        return {"ok": True, **json.loads(out.read_text())}


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info(env: dict[str, Any], load_start: tuple[float, ...]) -> dict[str, Any]:
    """CPU, cores, RAM, software versions, backend and load averages for the report."""
    ram_gb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram_gb = int(line.split()[1]) / 1024**2
                    break
    except OSError:
        pass
    return {
        "cpu": env.get("cpu") or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "ram_gb": ram_gb,
        "backend": env.get("backend", "?"),
        "x64": env.get("x64", "?"),
        "platform": platform.platform(),
        "versions": {
            "python": platform.python_version(),
            "jax": _version("jax"),
            "jaxlib": _version("jaxlib"),
            "flowmc_like": _version("flowmc_like"),
            "flowMC": _version("flowMC"),
            "blackjax": _version("blackjax"),
            "arviz": _version("arviz"),
            "numpy": _version("numpy"),
        },
        "loadavg_start": [round(v, 2) for v in load_start],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    p.add_argument("--suite", choices=sorted(SUITES), help="a suite of benchmarks.suites")
    p.add_argument("--targets", help=f"comma-separated, from {ALL_TARGETS}")
    p.add_argument("--samplers", help=f"comma-separated, from {ALL_SAMPLERS}")
    p.add_argument("--seeds", help="comma-separated ints")
    p.add_argument("--n-chains", dest="n_chains", type=int)
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
    counting = p.add_mutually_exclusive_group()
    counting.add_argument("--no-count-evals", action="store_true", help="skip the counting runs")
    counting.add_argument("--count-evals", action="store_true", help="force the counting runs")
    overhead = p.add_mutually_exclusive_group()
    overhead.add_argument("--overhead", action="store_true", help="run benchmarks.overhead")
    overhead.add_argument("--no-overhead", action="store_true", help="skip benchmarks.overhead")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    p.add_argument("--tag", help="output name under benchmarks/results (default <suite>_<time>)")
    p.add_argument("--out", help="JSON path (overrides --tag; .md/.png/.npz next to it)")
    p.add_argument(
        "--docs",
        action="store_true",
        help="also write the report to docs/benchmarks.md (figures in docs/img/benchmarks/)",
    )
    p.add_argument("--docs-dir", default=str(DOCS), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _split(text: str | None) -> list[str]:
    return [t for t in (text or "").split(",") if t]


def _progress(rec: dict[str, Any]) -> str:
    if rec.get("ok"):
        return ", ".join(f"{c}={fmt(get_path(rec, path))}" for c, path in PROGRESS_COLUMNS)
    return f"FAILED: {rec.get('error')}\n{rec.get('stderr_tail', '')[-1500:]}"


def _algorithmic_eval_counts(rec: dict[str, Any]) -> dict[str, Any] | None:
    """Evaluation counts a peer derived from its algorithm (no counting run), or None.

    flowmc_like and flowMC record ``expected_evals`` (training, production); NUTS records
    ``n_grad_evals_algorithmic`` (warm-up, sampling: leapfrog steps actually taken).
    """
    extra = rec.get("extra") or {}
    if "expected_evals" in extra:
        phases = extra["expected_evals"]
        training, production = phases["training"], phases["production"]
    elif "n_grad_evals_algorithmic" in extra:
        phases = extra["n_grad_evals_algorithmic"]
        training, production = phases["warmup"], phases["sampling"]
    else:
        return None
    return {
        "ok": True,
        "source": "algorithmic",
        "n_evals": training + production,
        "n_evals_training": training,
        "n_evals_production": production,
    }


def _add_eval_counts(rec: dict[str, Any], cnt: dict[str, Any]) -> None:
    rec["eval_count"] = {k: cnt.get(k) for k in ("ok", "error", *EVAL_KEYS)}
    rec["eval_count"]["source"] = cnt.get("source", "counted")
    m = rec["metrics"]
    ess = m.get("min_ess_bulk")
    for key, n in (
        ("ess_per_1k_evals", cnt.get("n_evals")),
        ("ess_per_1k_evals_production", cnt.get("n_evals_production")),
    ):
        ok = n and ess is not None and math.isfinite(ess)
        m[key] = 1000.0 * ess / n if ok else None


def make_figures(
    records: list[dict[str, Any]],
    samplers: list[str],
    draws: dict[str, Any],
    out_json: Path,
) -> dict[str, Path]:
    """The PNGs next to ``out_json``; ``{"ess_per_s": path, "<target>_samples": path}``."""
    try:
        from benchmarks import plots
    except ImportError:
        return {}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib missing: no figures", file=sys.stderr)
        return {}
    stem = out_json.with_suffix("")
    made: dict[str, Path] = {}
    path = plots.plot_ess_per_s(records, samplers, f"{stem}_ess_per_s.png")
    if path is not None:
        made["ess_per_s"] = path
    for target in dict.fromkeys(r["target"] for r in records):
        first_seed = min((r["seed"] for r in records if r["target"] == target), default=None)
        by_sampler = {
            r["sampler"]: draws[r["draws_key"]]
            for r in records
            if r["target"] == target and r["seed"] == first_seed and r.get("draws_key") in draws
        }
        if by_sampler:
            made[f"{target}_samples"] = plots.plot_samples(
                target, by_sampler, f"{stem}_{target}_samples.png"
            )
    return made


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; write the JSON, the report and the figures; print the report."""
    args = _parse_args(argv)
    suite = SUITES[args.suite] if args.suite else None
    if args.targets:
        targets = _split(args.targets)
    else:
        targets = list(suite.targets) if suite else ["dual_moon_2d", "gmm2_10d"]
    if args.samplers:
        samplers = _split(args.samplers)
    else:
        samplers = list(suite.samplers) if suite else ["flowmc_like", "flowmc"]
    if args.seeds:
        seeds = [int(s) for s in _split(args.seeds)]
    else:
        seeds = list(suite.seeds) if suite else [0]
    for t in targets:
        if t not in ALL_TARGETS:
            raise SystemExit(f"unknown target {t!r}; known: {ALL_TARGETS}")
    for s in samplers:
        if s not in ALL_SAMPLERS:
            raise SystemExit(f"unknown sampler {s!r}; known: {ALL_SAMPLERS}")
    if args.no_count_evals:
        count_evals = False
    elif args.count_evals:
        count_evals = True
    else:
        count_evals = suite.count_evals if suite else True
    if args.overhead or args.no_overhead:
        do_overhead = args.overhead
    else:
        do_overhead = bool(suite and suite.run_overhead)
    schedule, source = resolve_schedule(args, suite)
    if args.n_chains is None:
        schedule = dataclasses.replace(schedule, n_chains=CONTINUOUS_N_CHAINS)
    discrete_n_chains = args.n_chains or (suite.discrete_n_chains if suite else 64)
    discrete_schedule = dataclasses.replace(schedule, n_chains=discrete_n_chains)
    explicit = cli_schedule(args)
    sets = parse_sets(args.set)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if args.out:
        out = Path(args.out)
    else:
        tag = args.tag or (f"{suite.name}_{stamp}" if suite else stamp)
        out = RESULTS / f"{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.run " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    load_start = os.getloadavg()
    print(f"schedule: {schedule.as_dict()}  [{source}]", file=sys.stderr)

    records: list[dict[str, Any]] = []
    notes: list[str] = []
    draws: dict[str, Any] = {}
    t_suite = time.time()
    for t in targets:
        discrete = is_discrete(t)
        for seed in seeds:
            for s in samplers:
                reason = skip_reason(s, t)
                if reason:
                    if reason not in notes:
                        notes.append(reason)
                    continue
                ov = merged_overrides(s, t, suite, explicit, sets)
                sched = discrete_schedule if discrete else schedule
                print(f"[{t} / {s} / seed {seed}] timed run ...", file=sys.stderr, flush=True)
                rec = run_worker(s, t, seed, sched, ov, False, args.timeout)
                rec.setdefault("overrides", ov)
                if rec.get("ok") and count_evals and not discrete:
                    print(
                        f"[{t} / {s} / seed {seed}] counting run ...", file=sys.stderr, flush=True
                    )
                    _add_eval_counts(rec, run_worker(s, t, seed, sched, ov, True, args.timeout))
                elif rec.get("ok") and not discrete:
                    algorithmic = _algorithmic_eval_counts(rec)
                    if algorithmic is not None:
                        _add_eval_counts(rec, algorithmic)
                rec.setdefault("sampler", s)
                rec.setdefault("target", t)
                rec.setdefault("seed", seed)
                rec.setdefault("kind", "discrete" if discrete else "continuous")
                if "thinned_draws" in rec:
                    key = f"{t}/{s}/{seed}"
                    draws[key] = rec.pop("thinned_draws")
                    rec["draws_key"] = key
                records.append(rec)
                print(f"    {_progress(rec)}", file=sys.stderr, flush=True)
    if count_evals and any(is_discrete(t) for t in targets):
        notes.append(
            "no evaluation counting on the lattice cases (ESS/1k evals is continuous-only)"
        )

    overhead = None
    if do_overhead:
        print("[overhead] local-step overhead tool ...", file=sys.stderr, flush=True)
        cost_sweep = suite.overhead_cost_sweep if suite else True
        overhead = run_overhead(CONTINUOUS_N_CHAINS, args.timeout, cost_sweep)
        if not overhead.get("ok"):
            notes.append(f"overhead tool FAILED: {str(overhead.get('error'))[-300:]}")
    wall = time.time() - t_suite

    env = next((r["env"] for r in records if "env" in r), {})
    meta = {
        "stamp": stamp,
        "command": command,
        "argv": argv if argv is not None else sys.argv[1:],
        "suite": suite.name if suite else None,
        "suite_description": suite.description if suite else None,
        "suite_overrides": {f"{a}/{b}": v for (a, b), v in suite.overrides.items()}
        if suite
        else {},
        "schedule": schedule.as_dict(),
        "schedule_source": source,
        "flowmc_like_target_settings": {t: FLOWMC_LIKE_TARGET_SETTINGS.get(t, {}) for t in targets}
        if "flowmc_like" in samplers
        else {},
        "discrete_n_chains": discrete_n_chains,
        "count_evals": count_evals,
        "sets": sets,
        "targets": targets,
        "samplers": samplers,
        "seeds": seeds,
        "env": env,
        "machine": machine_info(env, load_start),
        "notes": notes,
        "suite_wall_seconds": wall,
    }
    payload: dict[str, Any] = {"meta": meta, "runs": records, "overhead": overhead}
    if draws:
        import numpy as np

        draws = {k: np.asarray(v, dtype=np.float32) for k, v in draws.items()}
        np.savez_compressed(out.with_name(out.stem + "_draws.npz"), **draws)
        meta["draws_file"] = out.stem + "_draws.npz"
    out.write_text(json.dumps(payload, indent=1))

    figures: dict[str, Path] = {}
    if not args.no_plots:
        try:
            figures = make_figures(records, samplers, draws, out)
        except Exception as e:  # a figure must never lose the results
            print(f"figures failed: {type(e).__name__}: {e}", file=sys.stderr)
    overhead_md = None
    if overhead and overhead.get("ok"):
        from benchmarks.overhead import markdown_table

        overhead_md = markdown_table(overhead)
    md = build_report(payload, {k: p.name for k, p in figures.items()}, overhead_md)
    out.with_suffix(".md").write_text(md)
    written = [out, out.with_suffix(".md"), *figures.values()]
    if args.docs:
        docs = Path(args.docs_dir)
        img = docs / "img" / "benchmarks"
        img.mkdir(parents=True, exist_ok=True)
        links = {}
        for k, p in figures.items():
            shutil.copyfile(p, img / p.name)
            links[k] = f"img/benchmarks/{p.name}"
        devices_section = RESULTS / "devices.md"  # python -m benchmarks.devices
        extra = devices_section.read_text() if devices_section.exists() else None
        report = build_report(payload, links, overhead_md, extra)
        (docs / "benchmarks.md").write_text(report)
        written.append(docs / "benchmarks.md")
    print(md)
    print(f"suite wall time {wall:.0f} s; wrote " + ", ".join(map(str, written)), file=sys.stderr)
    return 0 if all(r.get("ok") for r in records) and (overhead or {}).get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
