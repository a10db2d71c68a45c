"""How the defaults scale with dimension: a correlated Gaussian for d = 2 to 256, against NUTS.

The target is ``N(0, R diag(s^2) R^T)`` with ``R`` a Haar rotation and standard deviations
``s`` log-spaced from 0.32 to 3.2 (condition number 100 in variance), both from
``numpy.random.default_rng(d)``. flowmc_like runs ``fm.Sampler(log_prob, n_dim=d,
n_chains=32)`` with nothing else set; blackjax NUTS (window adaptation, one per chain,
vmapped; `benchmarks.peers.nuts_peer`) runs 1000 warm-up steps and 1000 draws on the same 32
starts. Both are timed as a whole run, compilation included. The table gives the global
acceptance in production, min bulk ESS over coordinates, wall seconds, ESS per second, max
R-hat, max |z| of the means and the largest relative error of a marginal sd, and the ratio
of ESS/s (flowmc_like / NUTS).

Run: ``python -m benchmarks.dimension [--dims 2,8,32,64,128,256] [--seed 0] [--no-nuts]
[--tag NAME]``; writes ``benchmarks/results/dimension_<tag>.md``, ``.json`` and
``dimension_<tag>_summary.md`` (one column per d: the table the docs include);
``--render --tag NAME`` rewrites only the summary from the stored runs.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import flowmc_like as fm
from benchmarks.defaults import markdown_table, stored_rows
from benchmarks.metrics import compute_metrics
from benchmarks.peers import Schedule, load_peer
from benchmarks.targets import Target

__all__ = ["correlated_gaussian", "main"]

DIMS = (2, 8, 32, 64, 128, 256)
N_CHAINS = 32
NUTS_STEPS = 1000
RESULTS = Path(__file__).resolve().parent / "results"


def correlated_gaussian(d: int) -> Target:
    """The rotated Gaussian of dimension ``d`` (module docstring), with its exact moments."""
    rng = np.random.default_rng(d)
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    sds = np.logspace(-0.5, 0.5, d)
    cov = (q * sds**2) @ q.T
    precision = jnp.asarray((q / sds**2) @ q.T, dtype=jnp.float32)

    def log_prob(x: jax.Array) -> jax.Array:
        return -0.5 * x @ precision @ x

    return Target(
        name=f"corr_gauss_{d}d",
        n_dim=d,
        log_prob=log_prob,
        mean=np.zeros(d),
        sd=np.sqrt(np.diag(cov)),
        cov=cov,
        description=f"N(0, R diag(logspace(-0.5, 0.5, {d}))^2 R^T), R Haar from default_rng({d})",
    )


def _summary(name: str, target: Target, samples: np.ndarray, wall: float) -> dict:
    metrics = compute_metrics(samples, target, wall_seconds=wall)
    return {
        "sampler": name,
        "d": target.n_dim,
        "wall_s": wall,
        "min_ess_bulk": metrics["min_ess_bulk"],
        "ess_per_s": metrics["ess_per_s"],
        "max_r_hat": metrics["max_r_hat"],
        "max_abs_z": metrics["max_abs_z"],
        "max_sd_rel_err": metrics["max_sd_rel_err"],
    }


def run_flowmc_like(target: Target, x0: jax.Array, seed: int) -> dict:
    """One run of the defaults; its metrics and what it decided."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        sampler = fm.Sampler(
            target.log_prob, n_dim=target.n_dim, n_chains=N_CHAINS, progress_bar=False
        )
        result = sampler.run(jax.random.key(seed), x0)
    wall = time.perf_counter() - start
    row = _summary("flowmc_like", target, np.asarray(result.flat_samples), wall)
    verdict = result.diagnostics
    row.update(
        global_acceptance=verdict.global_acceptance,
        n_training_loops=verdict.n_training_loops,
        n_production_loops=verdict.n_production_loops,
        trusted=verdict.is_trusted,
        warnings=[str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
    )
    return row


def run_nuts(target: Target, x0: jax.Array, seed: int) -> dict:
    """blackjax NUTS, ``NUTS_STEPS`` warm-up steps and draws per chain."""
    nuts = load_peer("nuts")
    overrides = {"num_warmup": NUTS_STEPS, "num_samples": NUTS_STEPS}
    start = time.perf_counter()
    run = nuts.run(target, target.log_prob, x0, seed, Schedule(n_chains=N_CHAINS), overrides)
    wall = time.perf_counter() - start
    return {**_summary("nuts", target, run.samples, wall), "global_acceptance": None}


def report(rows: list[dict], command: str) -> str:
    """The markdown table of ``rows`` with the flowmc_like / NUTS ESS/s ratio per d."""
    columns = [
        "d",
        "sampler",
        "global_acceptance",
        "min_ess_bulk",
        "wall_s",
        "ess_per_s",
        "max_r_hat",
        "max_abs_z",
        "max_sd_rel_err",
        "n_training_loops",
        "n_production_loops",
        "trusted",
    ]
    lines = [
        "# Dimension scaling: correlated Gaussian, defaults against NUTS",
        "",
        f"Regenerate with: `{command}`",
        "",
        f"{N_CHAINS} chains; flowmc_like `fm.Sampler(log_prob, n_dim=d, n_chains={N_CHAINS})`, "
        f"nothing else set; NUTS {NUTS_STEPS} warm-up + {NUTS_STEPS} draws per chain. Wall = "
        "construction + run, compilation included.",
        "",
        *markdown_table(rows, columns),
    ]
    by_d: dict[int, dict[str, dict]] = {}
    for row in rows:
        by_d.setdefault(row["d"], {})[row["sampler"]] = row
    ratios = [
        f"- d = {d}: {pair['flowmc_like']['ess_per_s'] / pair['nuts']['ess_per_s']:.2f}"
        for d, pair in by_d.items()
        if {"flowmc_like", "nuts"} <= pair.keys() and pair["nuts"]["ess_per_s"]
    ]
    if ratios:
        lines += ["", "ESS/s ratio flowmc_like / NUTS (> 1 favours flowmc_like):", "", *ratios]
    warned = [row for row in rows if row.get("warnings")]
    if warned:
        lines += ["", "Warnings the runs issued:", ""]
        for row in warned:
            lines += [f"- d = {row['d']}: {message}" for message in row["warnings"]]
    return "\n".join(lines) + "\n"


def _acceptance(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v >= 0.01 else f"{v:.1g}"


def summary(rows: list[dict]) -> str:
    """One column per d: the table docs/howto/decisions.md includes."""
    by_d: dict[int, dict[str, dict]] = {}
    for row in rows:
        by_d.setdefault(int(row["d"]), {})[row["sampler"]] = row
    dims = sorted(by_d)
    fl = [by_d[d].get("flowmc_like") for d in dims]
    nuts = [by_d[d].get("nuts") for d in dims]

    def line(label: str, cells: list[str]) -> str:
        return "| " + " | ".join([label, *cells]) + " |"

    def each(runs: list[dict | None], cell) -> list[str]:
        return [cell(r) if r else "-" for r in runs]

    lines = [
        line("d", [str(d) for d in dims]),
        "|" + " --- |" * (len(dims) + 1),
        line("global acceptance", each(fl, lambda r: _acceptance(r["global_acceptance"]))),
        line(
            "min ESS / wall s",
            each(fl, lambda r: f"{r['min_ess_bulk']:,.0f} / {r['wall_s']:.3g}"),
        ),
        line("max R-hat", each(fl, lambda r: f"{r['max_r_hat']:.2f}")),
        line(
            "max abs z, sd error",
            each(fl, lambda r: f"{r['max_abs_z']:.2f}, {r['max_sd_rel_err']:.3f}"),
        ),
        line("trusted", each(fl, lambda r: "yes" if r["trusted"] else "no (warns)")),
        line("NUTS ESS/s", each(nuts, lambda r: f"{r['ess_per_s']:,.0f}")),
        line("flowmc_like ESS/s", each(fl, lambda r: f"{r['ess_per_s']:,.0f}")),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default=",".join(str(d) for d in DIMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-nuts", action="store_true")
    parser.add_argument("--tag", default="latest")
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite dimension_<tag>_summary.md from the stored runs",
    )
    args = parser.parse_args()
    summary_md = RESULTS / f"dimension_{args.tag}_summary.md"
    if args.render:
        summary_md.write_text(summary(stored_rows(f"dimension_{args.tag}")))
        print(f"wrote {summary_md}")
        return
    rows = []
    for d in (int(d) for d in args.dims.split(",")):
        target = correlated_gaussian(d)
        x0 = jax.random.normal(jax.random.key(args.seed + 1000), (N_CHAINS, d))
        rows.append(run_flowmc_like(target, x0, args.seed))
        print(rows[-1], flush=True)
        if not args.no_nuts:
            rows.append(run_nuts(target, x0, args.seed))
            print(rows[-1], flush=True)
    command = "python -m benchmarks.dimension " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in (("dims", args.dims), ("seed", args.seed)) if v
    )
    if args.no_nuts:
        command += " --no-nuts"
    command += f" --tag {args.tag}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"dimension_{args.tag}.json").write_text(json.dumps(rows, indent=1, default=str))
    (RESULTS / f"dimension_{args.tag}.md").write_text(report(rows, command))
    summary_md.write_text(summary(rows))
    print(report(rows, command))


if __name__ == "__main__":
    main()
