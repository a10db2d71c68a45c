"""Ising at the critical point: flowmc_like's autoregressive global moves vs single-site Metropolis.

Usage::

    python -m benchmarks.ising [--sizes 8,16] [--seeds 0] [--n-chains 64] [--out PATH]

For each lattice side L (periodic L x L torus, beta_c = ln(1 + sqrt 2) / 2) it runs, each in
its own fresh process (so each pays its own compilation), one after the other:

- ``flowmc_like``: ``SiteFlip`` sweeps with the O(1) ``delta_log_prob`` plus the
  ``Autoregressive(symmetric=True)`` global move, trained with maximum likelihood and the
  reverse-KL term (``reverse_kl_weight=10``), the settings `RECIPE` documents;
- ``metropolis``: the same ``SiteFlip`` sweeps alone (single-site Metropolis, random order),
  ``n_burn_in`` sweeps then ``n_sweeps`` recorded ones.

Reference values are exact: energy per site and specific heat from Kaufman's finite-torus
partition function, <|m|> (L = 8) from the transfer matrix (`flowmc_like.testing.lattice`).
Metrics: error against exact in standard-error units (ESS from ArviZ), global acceptance, the
integrated autocorrelation time of E and |m| (``tau = n_chains * n_draws / ESS_bulk``) per
recorded step (a sweep or a global proposal) and in seconds of production, and ESS per
second of the whole run (compilation and training included). A second section times one
sweep with and without ``delta_log_prob``. Output: Markdown on stdout and in ``<out>.md``,
every record in ``<out>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

RECIPE = {
    "n_training_loops": 20,
    "n_production_loops": 20,
    "n_local_steps": 10,
    "n_global_steps": 40,
    "n_epochs": 5,
    "batch_size": 512,
    "n_max_examples": 8192,
    "learning_rate": 1e-3,
    "reverse_kl_weight": 10.0,
}
"""flowmc_like's schedule for critical lattices: mostly global steps once the model is good,
few local sweeps between them, the reverse-KL term because at L = 16 the chains' own draws are
too correlated to teach the model (maximum likelihood alone stalls at a global acceptance of
about 0.1). The hidden width is ``n_dim`` (one unit per MADE degree)."""

METROPOLIS = {"n_burn_in": 1000, "n_sweeps": 4000}


def _exact(L: int) -> dict[str, float | None]:
    from flowmc_like.testing.lattice import BETA_C, REFERENCE_VALUES, exact_ising_torus

    thermo = exact_ising_torus(L, BETA_C)
    reference = REFERENCE_VALUES.get((L, BETA_C))
    abs_m = None if reference is None else reference.abs_magnetization
    return {"e": float(thermo.e), "c_v": float(thermo.c_v), "abs_m": abs_m}


def _observables(samples: np.ndarray, log_prob: np.ndarray, beta: float) -> dict[str, np.ndarray]:
    energy = -np.asarray(log_prob, np.float64) / beta  # log p = -beta E
    abs_m = np.abs((2.0 * samples - 1.0).mean(axis=-1))
    return {"energy": energy, "abs_m": abs_m}


def _analyse(
    samples: np.ndarray,
    log_prob: np.ndarray,
    L: int,
    production_seconds: float,
    total_seconds: float,
) -> dict[str, Any]:
    from flowmc_like.adapters.arviz import ess_bulk
    from flowmc_like.testing.lattice import BETA_C

    n_sites = L * L
    exact = _exact(L)
    obs = _observables(samples, log_prob, BETA_C)
    n_chains, n_draws = obs["energy"].shape
    energy_sd = np.sqrt(exact["c_v"] * n_sites) / BETA_C  # Var(E) = N C_v / beta^2
    sq_dev = (obs["energy"] - exact["e"] * n_sites) ** 2
    series = np.stack([obs["energy"], obs["abs_m"], sq_dev], axis=-1)
    ess = ess_bulk(series)
    e_est = float(obs["energy"].mean() / n_sites)
    e_z = (e_est - exact["e"]) / (energy_sd / n_sites / np.sqrt(ess[0]))
    c_v_est = float(BETA_C**2 * sq_dev.mean() / n_sites)
    c_v_se = BETA_C**2 * sq_dev.std() / n_sites / np.sqrt(ess[2])
    abs_m = float(obs["abs_m"].mean())
    abs_m_se = float(obs["abs_m"].std() / np.sqrt(ess[1]))
    record: dict[str, Any] = {
        "n_chains": n_chains,
        "n_draws": n_draws,
        "e": e_est,
        "e_exact": exact["e"],
        "e_z": float(e_z),
        "c_v": c_v_est,
        "c_v_exact": exact["c_v"],
        "c_v_z": float((c_v_est - exact["c_v"]) / c_v_se),
        "abs_m": abs_m,
        "abs_m_exact": exact["abs_m"],
        "abs_m_z": None if exact["abs_m"] is None else (abs_m - exact["abs_m"]) / abs_m_se,
        "ess_energy": float(ess[0]),
        "ess_abs_m": float(ess[1]),
    }
    seconds_per_step = production_seconds / n_draws
    for name, value in (("energy", ess[0]), ("abs_m", ess[1])):
        tau_steps = n_chains * n_draws / value
        record[f"tau_{name}_steps"] = float(tau_steps)
        record[f"tau_{name}_seconds"] = float(tau_steps * seconds_per_step)
        record[f"ess_per_s_{name}"] = float(value / total_seconds)
        record[f"ess_per_s_{name}_production"] = float(value / production_seconds)
    return record


def run_one(sampler: str, L: int, seed: int, n_chains: int) -> dict[str, Any]:
    """One run in this process; returns its record."""
    import jax
    import jax.numpy as jnp

    import flowmc_like as fm
    from flowmc_like.testing.lattice import BETA_C, make_ising

    start = time.perf_counter()
    target = make_ising(L, BETA_C)
    kernel = fm.SiteFlip(2, delta_log_prob=target.delta_log_prob)
    rng = np.random.default_rng(seed)
    x0 = jnp.asarray(rng.integers(0, 2, (n_chains, target.n_dim)), jnp.int32)
    if sampler == "flowmc_like":
        settings: dict[str, Any] = dict(RECIPE)
        model = fm.Autoregressive(2, hidden_sizes=(target.n_dim,), symmetric=True)
    else:
        steps = 500
        settings = {
            "n_training_loops": METROPOLIS["n_burn_in"] // steps,
            "n_production_loops": METROPOLIS["n_sweeps"] // steps,
            "n_local_steps": steps,
        }
        model = None
    result = fm.Sampler(
        target.log_prob,
        n_chains=n_chains,
        local_kernel=kernel,
        global_model=model,
        progress_bar=False,
        **settings,
    ).run(jax.random.key(seed), x0)
    total = time.perf_counter() - start
    record = _analyse(result.samples, result.log_prob, L, result.timings["production"], total)
    record.update(
        sampler=sampler,
        L=L,
        seed=seed,
        settings=settings,
        hidden_sizes=None if model is None else list(model.hidden_sizes),
        global_acceptance=float(np.nanmean(result.global_acceptance))
        if model is not None
        else None,
        local_acceptance=float(np.nanmean(result.local_acceptance)),
        global_acceptance_per_loop=result.history.global_acceptance.tolist(),
        timings={**result.timings, "wall": total},
    )
    return record


def sweep_costs(L: int, n_chains: int) -> dict[str, Any]:
    """Milliseconds per sweep of every chain, with and without ``delta_log_prob``."""
    import jax
    import jax.numpy as jnp

    import flowmc_like as fm
    from flowmc_like.testing.lattice import BETA_C, make_ising

    target = make_ising(L, BETA_C)
    out: dict[str, Any] = {"L": L}
    x0 = jnp.zeros((n_chains, target.n_dim), jnp.int32)
    for name, delta in (("delta", target.delta_log_prob), ("full", None)):
        n_steps = 200 if delta is not None else 40
        result = fm.Sampler(
            target.log_prob,
            n_chains=n_chains,
            local_kernel=fm.SiteFlip(2, delta_log_prob=delta),
            global_model=None,
            n_training_loops=1,
            n_production_loops=2,
            n_local_steps=n_steps,
            progress_bar=False,
        ).run(jax.random.key(0), x0)
        out[f"ms_per_sweep_{name}"] = 1e3 * result.timings["production"] / (2 * n_steps)
    out["speedup"] = out["ms_per_sweep_full"] / out["ms_per_sweep_delta"]
    out["site_updates_per_s_delta"] = n_chains * target.n_dim / (out["ms_per_sweep_delta"] / 1e3)
    return out


def _subprocess(args: list[str]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.ising", *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def report(records: list[dict[str, Any]], costs: list[dict[str, Any]]) -> str:
    """The Markdown tables."""
    lines = [
        "| L | sampler | wall s | compile | train | sample | global acc | e (z) | C_v (z) | "
        "<\\|m\\|> (z) | tau_E steps | tau_\\|m\\| steps | tau_E ms | tau_\\|m\\| ms | "
        "ESS/s E | ESS/s \\|m\\| |",
        "|" + "---|" * 16,
    ]
    for r in records:
        t = r["timings"]
        lines.append(
            f"| {r['L']} | {r['sampler']} | {t['wall']:.1f} | {t['compile']:.1f} | "
            f"{t['training']:.1f} | {t['production']:.1f} | {_fmt(r['global_acceptance'])} | "
            f"{r['e']:.4f} ({r['e_z']:+.1f}) | {r['c_v']:.3f} ({r['c_v_z']:+.1f}) | "
            f"{r['abs_m']:.4f} ({_fmt(r['abs_m_z'] and round(r['abs_m_z'], 1))}) | "
            f"{r['tau_energy_steps']:.1f} | {r['tau_abs_m_steps']:.1f} | "
            f"{1e3 * r['tau_energy_seconds']:.2f} | {1e3 * r['tau_abs_m_seconds']:.2f} | "
            f"{r['ess_per_s_energy']:.1f} | {r['ess_per_s_abs_m']:.1f} |"
        )
    by_l: dict[int, dict[str, dict[str, Any]]] = {}
    for r in records:
        by_l.setdefault(r["L"], {})[r["sampler"]] = r
    lines += [
        "",
        "| L | tau_\\|m\\| ms: Metropolis / flowmc_like | ESS/s \\|m\\| (whole run): "
        "flowmc_like / Metropolis |",
        "|---|---|---|",
    ]
    for L, pair in sorted(by_l.items()):
        if {"flowmc_like", "metropolis"} <= set(pair):
            ours, theirs = pair["flowmc_like"], pair["metropolis"]
            lines.append(
                f"| {L} | {theirs['tau_abs_m_seconds'] / ours['tau_abs_m_seconds']:.1f} | "
                f"{ours['ess_per_s_abs_m'] / theirs['ess_per_s_abs_m']:.2f} |"
            )
    if costs:
        lines += [
            "",
            "| L | ms per sweep, delta_log_prob | ms per sweep, full log_prob | speed-up | "
            "site updates/s |",
            "|---|---|---|---|---|",
        ]
        for c in costs:
            lines.append(
                f"| {c['L']} | {c['ms_per_sweep_delta']:.2f} | {c['ms_per_sweep_full']:.2f} | "
                f"{c['speedup']:.1f} | {c['site_updates_per_s_delta'] / 1e6:.2f} M |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,16")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--n-chains", type=int, default=64)
    parser.add_argument("--samplers", default="flowmc_like,metropolis")
    parser.add_argument("--no-sweep-costs", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=3, metavar=("SAMPLER", "L", "SEED"))
    parser.add_argument("--sweep-cost-worker", type=int, metavar="L")
    args = parser.parse_args(argv)
    if args.worker:
        sampler, size, seed = args.worker
        print(json.dumps(run_one(sampler, int(size), int(seed), args.n_chains)))
        return 0
    if args.sweep_cost_worker:
        print(json.dumps(sweep_costs(args.sweep_cost_worker, args.n_chains)))
        return 0
    sizes = [int(v) for v in args.sizes.split(",")]
    records = []
    for size in sizes:
        for seed in (int(v) for v in args.seeds.split(",")):
            for sampler in args.samplers.split(","):
                print(f"# L={size} seed={seed} {sampler} ...", file=sys.stderr, flush=True)
                records.append(
                    _subprocess(
                        [
                            "--worker",
                            sampler,
                            str(size),
                            str(seed),
                            "--n-chains",
                            str(args.n_chains),
                        ]
                    )
                )
    costs = []
    if not args.no_sweep_costs:
        for size in sizes:
            costs.append(
                _subprocess(["--sweep-cost-worker", str(size), "--n-chains", str(args.n_chains)])
            )
    text = report(records, costs)
    tag = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else RESULTS / f"ising_{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    header = (
        f"# Ising at beta_c: flowmc_like vs single-site Metropolis\n\n"
        f"Machine: {machine}; {platform.python_version()}; {args.n_chains} chains; "
        f"flowmc_like settings {RECIPE}, hidden width n_dim; Metropolis {METROPOLIS}.\n\n"
    )
    out.write_text(json.dumps({"records": records, "sweep_costs": costs}, indent=1))
    out.with_suffix(".md").write_text(header + text + "\n")
    print(header + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
