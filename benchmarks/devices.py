"""Throughput on 1 vs several devices for a fixed total number of chains.

    python -m benchmarks.devices [--devices 1,2,4] [--targets gmm2_10d,funnel_10d]
                                 [--n-chains 128] [--repeats 2] [--docs]

Each (device count, target, repeat) runs `fm.Sampler` with its defaults in a fresh process
started with ``XLA_FLAGS=--xla_force_host_platform_device_count=D`` and ``devices=
jax.devices()``, so the chains are sharded over D devices (D = 1 runs the single-device
program). Reported: wall time (construction + run, compilation included), compile time,
production draws per second of production time, ESS/s (min bulk ESS over dimensions, over the
whole wall time) and the ratios to one device.

On a CPU, forced host devices are not extra hardware: they split the same cores, and XLA
runs each device's share of a phase on its own thread. The figures show what sharding costs
or gains in the partitioned programs themselves; on several GPUs or TPUs each device adds its
own compute. Results go to ``benchmarks/results/devices.json`` and ``devices.md``;
``--docs`` also replaces the "Several devices" section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DOCS_REPORT = REPO / "docs" / "benchmarks.md"
SECTION = "## Several devices"


def measure(target_name: str, n_chains: int, seed: int) -> dict:
    """One run in this process on every device it has (the parent set the device count)."""
    import jax
    import numpy as np

    import flowmc_like as fm
    from benchmarks.metrics import ess_and_rhat
    from benchmarks.targets import get_target

    target = get_target(target_name)
    x0 = target.initial_position(jax.random.key(seed + 1), n_chains)
    start = time.perf_counter()
    sampler = fm.Sampler(
        target.log_prob,
        n_dim=target.n_dim,
        n_chains=n_chains,
        devices=jax.devices(),
        progress_bar=False,
    )
    result = sampler.run(jax.random.key(seed), x0)
    wall = time.perf_counter() - start
    draws = np.asarray(result.samples)
    ess = float(np.min(ess_and_rhat(draws)["ess_bulk"]))
    figures = {
        "target": target_name,
        "n_devices": len(jax.devices()),
        "n_chains": n_chains,
        "seed": seed,
        "wall_s": wall,
        "compile_s": result.timings["compile"],
        "production_s": result.timings["production"],
        "draws_per_s": draws.shape[0] * draws.shape[1] / result.timings["production"],
        "ess_bulk_min": ess,
        "ess_per_s": ess / wall,
        "global_acceptance": float(np.mean(result.global_acceptance)),
    }
    if target.mode_weights is not None:
        labels = target.assign_modes(draws.reshape(-1, target.n_dim))
        weights = np.bincount(labels, minlength=len(target.mode_weights)) / labels.size
        figures["mode_weight_err"] = float(np.max(np.abs(weights - target.mode_weights)))
    return figures


def run_fresh(n_devices: int, target: str, n_chains: int, seed: int) -> dict:
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_devices}",
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "benchmarks.devices", "--one", target]
    command += ["--n-chains", str(n_chains), "--seed", str(seed)]
    process = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if process.returncode:
        raise RuntimeError(f"{target} on {n_devices} devices failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])


def table(runs: list[dict], command: str) -> str:
    """The Markdown section: medians over repeats, ratios to one device."""
    lines = [
        SECTION,
        "",
        f"Regenerate with: `{command}`. Machine: {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), forced CPU host devices.",
        "",
        f"Fixed total of {runs[0]['n_chains']} chains, `fm.Sampler` defaults, chains sharded "
        "over D devices (`devices=jax.devices()`; D = 1 is the single-device program); each "
        "cell is the median of the repeats, each run a fresh process. Wall time includes "
        "compilation; draws/s are production draws per second of production time; ESS/s is "
        "the min bulk ESS over the whole wall time. **Caveat:** forced CPU devices share the "
        "machine's cores (each device's share runs on its own thread), so these figures "
        "measure the cost of the partitioned programs, not extra hardware; on several GPUs or "
        "TPUs each device adds its own compute.",
        "",
        "| target | devices | wall s | compile s | draws/s | ESS/s | draws/s vs 1 | ESS/s vs 1 "
        "| max mode-weight error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    targets = sorted({run["target"] for run in runs}, key=[r["target"] for r in runs].index)
    for target in targets:
        by_devices: dict[int, dict[str, float]] = {}
        for n_devices in sorted({r["n_devices"] for r in runs if r["target"] == target}):
            group = [r for r in runs if r["target"] == target and r["n_devices"] == n_devices]
            by_devices[n_devices] = {
                name: _median([r[name] for r in group])
                for name in ("wall_s", "compile_s", "draws_per_s", "ess_per_s")
            }
            errors = [r["mode_weight_err"] for r in group if "mode_weight_err" in r]
            by_devices[n_devices]["mode_weight_err"] = max(errors) if errors else float("nan")
        base = by_devices.get(1)
        for n_devices, cell in by_devices.items():
            draws_ratio = f"{cell['draws_per_s'] / base['draws_per_s']:.2f}" if base else "-"
            ess_ratio = f"{cell['ess_per_s'] / base['ess_per_s']:.2f}" if base else "-"
            error = cell["mode_weight_err"]
            lines.append(
                f"| {target} | {n_devices} | {cell['wall_s']:.1f} | {cell['compile_s']:.1f} "
                f"| {cell['draws_per_s']:.0f} | {cell['ess_per_s']:.1f} | {draws_ratio} "
                f"| {ess_ratio} | {'-' if error != error else f'{error:.3f}'} |"
            )
    return "\n".join(lines) + "\n"


def replace_docs_section(section: str, report: Path = DOCS_REPORT) -> None:
    """Put ``section`` into the report in place of its previous version (or at the end)."""
    text = report.read_text() if report.exists() else ""
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("" if end < 0 else "\n" + text[end + 1 :])
    report.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,2,4", help="comma-separated device counts")
    parser.add_argument("--targets", default="gmm2_10d,funnel_10d")
    parser.add_argument("--n-chains", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.n_chains, args.seed)))
        return
    runs = []
    for target in args.targets.split(","):
        for repeat in range(args.repeats):
            for n_devices in (int(d) for d in args.devices.split(",")):
                run = run_fresh(n_devices, target, args.n_chains, args.seed + repeat)
                runs.append(run)
                print(
                    f"{target} devices={n_devices} seed={run['seed']}: wall {run['wall_s']:.1f} s,"
                    f" {run['draws_per_s']:.0f} draws/s, ESS/s {run['ess_per_s']:.1f}",
                    flush=True,
                )
    command = "python -m benchmarks.devices " + " ".join(sys.argv[1:])
    section = table(runs, command.strip())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "devices.json").write_text(json.dumps(runs, indent=1))
    (RESULTS / "devices.md").write_text(section)
    if args.docs:
        replace_docs_section(section)
    print(section)


if __name__ == "__main__":
    main()
