"""flowmc_like with its defaults on the continuous targets: what the run decided, and was it right.

Each target runs in this process with ``fm.Sampler(log_prob, n_dim=d, n_chains=32)`` and no
other setting, one seed per run. The table gives the run's own decisions (training and
production loops, why each ended), its own verdict (trusted or the warnings it issued) and
the benchmark metrics against the exact reference (max |z|, sd error, mode-weight error,
R-hat, min bulk ESS, ESS per second of the whole run, compile included).

Run: ``python -m benchmarks.defaults [--targets a,b] [--seeds 0,1,2] [--recipe NAME]
[--tag NAME] [--against TAG]``; writes ``benchmarks/results/defaults_<tag>.md``, ``.json`` and
``defaults_<tag>_summary.md`` (one row per target over the seeds: the table the docs include;
``--against TAG`` adds the defaults' ESS/s from ``defaults_<TAG>``). ``--render --tag NAME``
rewrites only the summary from the stored runs. ``--recipe``
adds one of the settings of `benchmarks.recipes` (docs/hard_targets.md) to every run, to
measure a recipe against the defaults.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import jax

import flowmc_like as fm
from benchmarks.metrics import compute_metrics
from benchmarks.peers.flowmc_like_peer import build_component
from benchmarks.recipes import RECIPES
from benchmarks.targets import get_target

CONTINUOUS = (
    "dual_moon_2d",
    "gmm2_10d",
    "rosenbrock_2d",
    "funnel_10d",
    "ill_gauss_20d",
    "mixture3_2d",
)
N_CHAINS = 32
RESULTS = Path(__file__).resolve().parent / "results"
BAR = {"max_abs_z": 5.0, "max_sd_rel_err": 0.25, "mode_weight_err": 0.05, "max_r_hat": 1.1}


def run_one(name: str, seed: int, recipe: str | None = None) -> dict:
    """One run of the defaults (plus ``recipe``'s settings) on target ``name``."""
    target = get_target(name)
    settings = {
        key: build_component(value, target) for key, value in RECIPES.get(recipe, {}).items()
    }
    x0 = target.initial_position(jax.random.key(seed + 1000), N_CHAINS)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        sampler = fm.Sampler(
            target.log_prob,
            n_dim=target.n_dim,
            n_chains=N_CHAINS,
            progress_bar=False,
            **settings,
        )
        result = sampler.run(jax.random.key(seed), x0)
    wall = time.perf_counter() - start
    metrics = compute_metrics(result.flat_samples, target, wall_seconds=wall)
    verdict = result.diagnostics
    failed = [
        key
        for key, limit in BAR.items()
        if metrics.get(key) is not None and not metrics[key] <= limit
    ]
    return {
        "target": name,
        "recipe": recipe or "-",
        "seed": seed,
        "wall_s": wall,
        "compile_s": result.timings["compile"],
        "n_training_loops": verdict.n_training_loops,
        "n_production_loops": verdict.n_production_loops,
        "training_ended": verdict.training_ended,
        "run_ended": verdict.run_ended,
        "global_acceptance": verdict.global_acceptance,
        "trusted": verdict.is_trusted,
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
        "passes": not failed,
        "failed": failed,
        **{
            key: metrics.get(key)
            for key in (
                "max_abs_z",
                "max_sd_rel_err",
                "mode_weight_err",
                "max_r_hat",
                "min_ess_bulk",
                "ess_per_s",
            )
        },
    }


def format_cell(value: object) -> str:
    """A table cell: ``-`` for None, three significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def markdown_table(rows: list[dict], columns: list[str]) -> list[str]:
    """The lines of a markdown table of ``rows`` (missing keys as ``-``)."""
    header = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    cells = [[format_cell(row.get(column)) for column in columns] for row in rows]
    return header + ["| " + " | ".join(row) + " |" for row in cells]


def report(rows: list[dict], command: str) -> str:
    """A markdown table of ``rows``."""
    columns = [
        "target",
        "recipe",
        "seed",
        "passes",
        "trusted",
        "n_training_loops",
        "n_production_loops",
        "global_acceptance",
        "max_abs_z",
        "max_sd_rel_err",
        "mode_weight_err",
        "max_r_hat",
        "min_ess_bulk",
        "wall_s",
        "compile_s",
        "ess_per_s",
    ]
    lines = [
        "# flowmc_like with its defaults",
        "",
        f"Regenerate with: `{command}`",
        "",
        f"`fm.Sampler(log_prob, n_dim=d, n_chains={N_CHAINS})`, nothing else unless the recipe "
        f"column names one of `benchmarks/recipes.py`. PASS bar: {BAR}. "
        "`trusted` is the run's own verdict (no warning issued).",
        "",
        *markdown_table(rows, columns),
    ]
    lines += ["", "Why each phase ended, and the warnings:", ""]
    for row in rows:
        lines.append(
            f"- {row['target']} seed {row['seed']}: {row['training_ended']}; {row['run_ended']}"
        )
        lines += [f"  - warning: {message}" for message in row["warnings"]]
    return "\n".join(lines) + "\n"


def _parse_cell(cell: str) -> object:
    if cell == "-":
        return None
    if cell in ("True", "False"):
        return cell == "True"
    try:
        return float(cell) if any(c in cell for c in ".e") else int(cell)
    except ValueError:
        return cell


def stored_rows(stem: str) -> list[dict]:
    """The per-run rows of results file ``stem``: its JSON, else the first table of its .md."""
    stored = RESULTS / f"{stem}.json"
    if stored.is_file():
        return json.loads(stored.read_text())
    lines = (RESULTS / f"{stem}.md").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| ") and i + 1 < len(lines))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows.append({k: _parse_cell(v) for k, v in zip(header, cells, strict=True)})
    return rows


def read_rows(tag: str) -> list[dict]:
    """The per-run rows of ``defaults_<tag>``."""
    return stored_rows(f"defaults_{tag}")


def _span(values: list[float], fmt: str) -> str:
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def _verdict(trusted: int, n: int) -> str:
    if trusted == n:
        return f"trusted {n}/{n}"
    if trusted == 0:
        return f"warns {n}/{n}"
    return f"trusted {trusted}/{n}, warns {n - trusted}/{n}"


def _ess(values: list[float]) -> str:
    return f"{_span(values, '{:.0f}')} ({statistics.median(values):.0f})"


def summary(rows: list[dict], baseline: list[dict] | None = None) -> str:
    """Per target (and recipe) over seeds: the table docs/hard_targets.md includes.

    Ranges are min-max over seeds; max abs z and sd error are the worst seed's; ESS/s is
    ``min-max (median)``. With ``baseline`` (the defaults' rows), a last column gives the
    defaults' ESS/s on the same target.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["target"], row.get("recipe") or "-"), []).append(row)
    header = ["target", "passes", "run's own verdict", "training loops", "global acceptance"]
    header += ["max abs z", "max sd error", "ESS/s (median)"]
    if any(recipe != "-" for _, recipe in groups):
        header.insert(0, "recipe")
    if baseline is not None:
        header.append("defaults' ESS/s (median)")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for (target, recipe), runs in groups.items():
        n = len(runs)
        cells = [
            target,
            f"{sum(bool(r['passes']) for r in runs)}/{n}",
            _verdict(sum(bool(r["trusted"]) for r in runs), n),
            _span([r["n_training_loops"] for r in runs], "{:.0f}"),
            _span([r["global_acceptance"] for r in runs], "{:.2f}"),
            f"{max(r['max_abs_z'] for r in runs):.2f}",
            f"{max(r['max_sd_rel_err'] for r in runs):.3f}",
            _ess([r["ess_per_s"] for r in runs]),
        ]
        if "recipe" in header:
            cells.insert(0, f"`{recipe}`")
        if baseline is not None:
            base = [r["ess_per_s"] for r in baseline if r["target"] == target]
            cells.append(_ess(base) if base else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(tag: str, against: str | None = None) -> Path:
    """Write ``defaults_<tag>_summary.md`` from the stored rows of ``tag`` (and ``against``)."""
    baseline = read_rows(against) if against else None
    out = RESULTS / f"defaults_{tag}_summary.md"
    out.write_text(summary(read_rows(tag), baseline))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(CONTINUOUS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=None)
    parser.add_argument("--tag", default="latest")
    parser.add_argument(
        "--against", default=None, help="tag of the defaults' runs to compare a recipe with"
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite defaults_<tag>_summary.md from the stored runs",
    )
    args = parser.parse_args()
    if args.render:
        print(f"wrote {write_summary(args.tag, args.against)}")
        return
    rows = []
    for name in args.targets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            row = run_one(name, seed, args.recipe)
            print(
                f"{name} seed {seed}: passes={row['passes']} trusted={row['trusted']} "
                f"loops={row['n_training_loops']}+{row['n_production_loops']} "
                f"wall={row['wall_s']:.1f}s z={format_cell(row['max_abs_z'])} "
                f"sd={format_cell(row['max_sd_rel_err'])} rhat={format_cell(row['max_r_hat'])} "
                f"ess/s={format_cell(row['ess_per_s'])}",
                flush=True,
            )
            rows.append(row)
    command = (
        f"python -m benchmarks.defaults --targets {args.targets} --seeds {args.seeds} "
        + (f"--recipe {args.recipe} " if args.recipe else "")
        + f"--tag {args.tag}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"defaults_{args.tag}.md").write_text(report(rows, command))
    (RESULTS / f"defaults_{args.tag}.json").write_text(json.dumps(rows, indent=1, default=float))
    print(
        f"wrote {RESULTS / f'defaults_{args.tag}.md'} and {write_summary(args.tag, args.against)}"
    )


if __name__ == "__main__":
    main()
