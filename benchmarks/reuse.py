"""Fit many datasets: cold fits (each from scratch) vs warm-started fits (reusing the last one).

Usage::

    python -m benchmarks.reuse [--out benchmarks/results/reuse.md] [--n-datasets 10]
        [--n-chains 32] [--seed 0] [--reference benchmarks/results/reuse_reference.json]
        [--recompute-reference] [--quick]

Problem: Bayesian logistic regression, 20 correlated features plus an intercept (21
parameters, ``Normal(0, 1)`` priors on all), ``--n-datasets`` datasets of 500 points from one
generator with fixed seeds (independent of ``--seed``): features ``x ~ N(0, S)`` with
``S_ij = 0.5^|i-j|``, true coefficients drawn once (``N(0, 0.5^2)``, intercept ``-0.5``),
``y ~ Bernoulli(sigmoid(b0 + x . beta))``. ONE module-level ``log_prob(theta, data)`` serves
every fit, ``data = (X, y)``, so the library's per-process program cache (keyed on the log
density object, settings and shapes) can reuse the first fit's compiled programs.

Runs, one after another in this one process, with the library's defaults
(``fm.Sampler(log_prob, n_dim=21, n_chains=..., data=(X_0, y_0), progress_bar=False)``:
automatic schedule, MALA + RealNVP), nothing tuned to the target:

1. fit 0, cold: compiles;
2. warm series, fits 1..N-1: ``sampler.run(key_i, data=(X_i, y_i), warm_start=result_{i-1})``,
   ``result_{i-1}`` the previous warm fit (fit 0 for i = 1); the chains start from its last
   positions; no cache is cleared (run right after fit 0, so it finds fit 0's programs);
3. control (not in the totals): the last dataset once more, warm-started from its own warm
   fit (a warm start whose posterior has not moved);
4. cold series, fits 1..N-1: before each, ``flowmc_like.compiler.clear_compile_cache()`` and
   ``jax.clear_caches()`` (the library's and JAX's in-memory caches), then a new
   ``fm.Sampler`` on ``(X_i, y_i)`` from fresh starts ``N(0, 0.5^2)``: each pays compilation
   as a new user's process would. The process runs with JAX's persistent compilation cache
   disabled (``jax_enable_compilation_cache=False``), so no fit reads compiled programs from
   disk.

Reference per dataset: blackjax NUTS (`benchmarks.peers.nuts_peer`: window adaptation, then
sampling), 4 chains x 5000 draws after 1000 warm-up steps; posterior means, sds and ArviZ's
MCSE of the mean, cached in ``--reference`` (computed once per dataset, checked against a
fingerprint of the data; ``--recompute-reference`` redoes them).

Per fit: compile time (``result.timings["compile"]``), training and production loops, the
training loops until the global acceptance first reaches 90% of its final (last training
loop's) value, wall time (sampler construction + run, compilation included), min over the 21
coordinates of ArviZ's bulk ESS, min ESS / wall s, and correctness: ``z_j = |mean_fm_j -
mean_ref_j| / sqrt(mcse_fm_j^2 + mcse_ref_j^2)`` (ArviZ MCSE of the mean), the fit is
*correct* when ``max_j |z_j| < 4``. Summary: total wall time of the cold fits 1..N-1 vs the
warm fits 1..N-1 and their ratio (goal: warm <= 1/4 of cold), fits of the warm series that
compiled (compile time > 0.5 s; goal: none), correct fits (goal: all).

The report also gives, per dataset, how far its posterior lies from the previous one's (the
NUTS means in units of the NUTS sds), with the warm fit's first-loop global acceptance and
Pareto k: what the earlier fit's flow is worth on the new posterior.

``--quick`` (the smoke test): tiny fixed schedules for the sampler (2 + 2 loops of 5 + 5
steps) and for NUTS; the numbers only show that the pipeline runs.

Writes ``--out`` (Markdown) and the same path with ``.json`` (every number).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.jsonable import json_default
from benchmarks.metrics import ess_and_rhat
from benchmarks.peers import Schedule
from benchmarks.report import fmt, machine_section
from benchmarks.timing import CompileTracker

__all__ = [
    "N_FEATURES",
    "N_DIM",
    "N_POINTS",
    "fit",
    "log_prob",
    "main",
    "make_dataset",
    "posterior_summary",
    "reference_summaries",
]

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "reuse.md"
DEFAULT_REFERENCE = RESULTS / "reuse_reference.json"

N_FEATURES = 20
N_DIM = N_FEATURES + 1  # the intercept first, then the 20 coefficients
N_POINTS = 500
RHO = 0.5
BETA_SD = 0.5
INTERCEPT = -0.5
COEF_SEED = 20240
DATA_SEED = 1000  # dataset i uses seed DATA_SEED + i
INIT_SD = 0.5
Z_MAX = 4.0
COMPILED_S = 0.5
ACC_FRACTION = 0.9
GOAL_RATIO = 0.25

NUTS_REFERENCE = {"n_chains": 4, "num_warmup": 1000, "num_samples": 5000, "seed": 0}
QUICK_NUTS_REFERENCE = {"n_chains": 2, "num_warmup": 100, "num_samples": 100, "seed": 0}
QUICK_SETTINGS = {
    "n_training_loops": 2,
    "n_production_loops": 2,
    "n_local_steps": 5,
    "n_global_steps": 5,
    "n_epochs": 1,
    "batch_size": 64,
    "n_max_examples": 128,
}


# ----------------------------------------------------------------------------- problem
def log_prob(theta: jax.Array, data: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Log posterior (up to a constant) of logistic regression, ``Normal(0, 1)`` priors.

    ``theta = (b0, beta_1, ..., beta_20)``; ``data = (X, y)``, ``X`` of shape ``(500, 20)``,
    ``y`` of 0s and 1s.
    """
    x, y = data
    eta = theta[0] + x @ theta[1:]
    log_lik = jnp.sum(y * eta - jnp.logaddexp(0.0, eta))
    return log_lik - 0.5 * jnp.sum(theta**2)


def true_coefficients() -> np.ndarray:
    """``(b0, beta)`` of the generator: ``b0 = -0.5``, ``beta ~ N(0, 0.5^2)`` (seed fixed)."""
    beta = np.random.default_rng(COEF_SEED).normal(0.0, BETA_SD, N_FEATURES)
    return np.concatenate([[INTERCEPT], beta])


def make_dataset(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Dataset ``i``: ``X ~ N(0, S)``, ``S_ij = 0.5^|i-j|``; ``y ~ Bernoulli(sigmoid(.))``."""
    rng = np.random.default_rng(DATA_SEED + i)
    idx = np.arange(N_FEATURES)
    cov = RHO ** np.abs(idx[:, None] - idx[None, :])
    x = rng.multivariate_normal(np.zeros(N_FEATURES), cov, size=N_POINTS)
    coef = true_coefficients()
    p = 1.0 / (1.0 + np.exp(-(coef[0] + x @ coef[1:])))
    y = (rng.uniform(size=N_POINTS) < p).astype(np.float32)
    return x.astype(np.float32), y


def fingerprint(data: tuple[np.ndarray, np.ndarray]) -> str:
    """A short hash of the dataset's bytes (the reference cache checks it)."""
    h = hashlib.sha256()
    for a in data:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def as_jax(data: tuple[np.ndarray, np.ndarray]) -> tuple[jax.Array, jax.Array]:
    return jnp.asarray(data[0]), jnp.asarray(data[1])


def posterior_summary(draws: np.ndarray) -> dict[str, list[float]]:
    """Per coordinate of ``(n_chains, n_draws, n_dim)``: mean, sd, ArviZ MCSE of the mean,
    bulk ESS and R-hat."""
    x = np.asarray(draws, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1])
    er = ess_and_rhat(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcse = az.mcse(az.convert_to_dataset({"x": x}), method="mean")["x"].values
    return {
        "mean": flat.mean(axis=0).tolist(),
        "sd": flat.std(axis=0, ddof=1).tolist(),
        "mcse_mean": np.asarray(mcse).tolist(),
        "ess_bulk": er["ess_bulk"].tolist(),
        "r_hat": er["r_hat"].tolist(),
    }


# ----------------------------------------------------------------------------- reference
def nuts_reference(data: tuple[np.ndarray, np.ndarray], settings: dict[str, Any]) -> dict:
    """A long blackjax NUTS run on one dataset (`benchmarks.peers.nuts_peer`): its summary."""
    from benchmarks.peers import nuts_peer

    n_chains = settings["n_chains"]
    x0 = INIT_SD * jax.random.normal(jax.random.key(settings["seed"]), (n_chains, N_DIM))
    run = nuts_peer.run(
        None,  # type: ignore[arg-type]  # nuts_peer only needs the log density
        functools.partial(log_prob, data=as_jax(data)),
        x0,
        settings["seed"],
        Schedule(n_chains=n_chains),
        {"num_warmup": settings["num_warmup"], "num_samples": settings["num_samples"]},
    )
    return {
        **posterior_summary(run.samples),
        "settings": dict(settings),
        "n_divergent": run.extra["n_divergent"],
        "mean_integration_steps": run.extra["mean_integration_steps"],
        "wall_s": run.timings["total"],
    }


def reference_summaries(
    datasets: list[tuple[np.ndarray, np.ndarray]],
    path: Path,
    settings: dict[str, Any],
    recompute: bool = False,
) -> list[dict[str, Any]]:
    """The NUTS summary of every dataset, from ``path`` where it holds one for the same data
    and NUTS settings; the missing ones are computed and ``path`` rewritten."""
    cached: dict[str, Any] = {}
    if path.exists() and not recompute:
        cached = json.loads(path.read_text()).get("datasets", {})
    out, changed = [], False
    for i, data in enumerate(datasets):
        fp = fingerprint(data)
        ref = cached.get(str(i))
        if ref is None or ref.get("fingerprint") != fp or ref.get("settings") != settings:
            print(f"[reuse] NUTS reference for dataset {i} ...", flush=True)
            ref = {"fingerprint": fp, **nuts_reference(data, settings)}
            cached[str(i)] = ref
            changed = True
        out.append(ref)
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "description": "blackjax NUTS reference of benchmarks/reuse.py (per dataset: "
            "posterior mean, sd, ArviZ MCSE of the mean, bulk ESS, R-hat)",
            "generator": generator_info(),
            "datasets": cached,
        }
        path.write_text(json.dumps(payload, indent=1, default=json_default) + "\n")
    return out


def generator_info() -> dict[str, Any]:
    return {
        "n_points": N_POINTS,
        "n_features": N_FEATURES,
        "rho": RHO,
        "beta_sd": BETA_SD,
        "intercept": INTERCEPT,
        "coef_seed": COEF_SEED,
        "data_seed": DATA_SEED,
        "true_coefficients": true_coefficients().tolist(),
    }


# ----------------------------------------------------------------------------- fits
def clear_all_caches() -> None:
    """The library's compiled programs and JAX's in-memory caches: the next run compiles."""
    from flowmc_like.compiler import clear_compile_cache

    clear_compile_cache()
    jax.clear_caches()


def loops_to_fraction(acceptance: np.ndarray, fraction: float = ACC_FRACTION) -> int | None:
    """Training loops until the global acceptance first reaches ``fraction`` of its last
    training loop's value (1-based; None if the last value is not finite)."""
    acc = np.asarray(acceptance, dtype=float)
    if not acc.size or not np.isfinite(acc[-1]):
        return None
    hits = np.flatnonzero(np.nan_to_num(acc, nan=-np.inf) >= fraction * acc[-1])
    return int(hits[0]) + 1


def fit(
    series: str,
    index: int,
    data: tuple[jax.Array, jax.Array],
    key: jax.Array,
    n_chains: int,
    settings: dict[str, Any],
    *,
    sampler: Any = None,
    x0: jax.Array | None = None,
    warm_start: Any = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """One fit, timed: a new ``fm.Sampler`` unless ``sampler`` is given (the warm series).

    Returns ``(sampler, result, record)``; the record's ``wall_s`` covers construction, run
    and fetching the draws, compilation included.
    """
    import flowmc_like as fm

    load, cpu0 = os.getloadavg(), time.process_time()
    with CompileTracker() as tr, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = tr.stamp("start")
        if sampler is None:
            sampler = fm.Sampler(
                log_prob, n_dim=N_DIM, n_chains=n_chains, data=data, progress_bar=False,
                **settings,
            )  # fmt: skip
            result = sampler.run(key, x0)
        else:
            result = sampler.run(key, x0, data=data, warm_start=warm_start)
        draws = np.asarray(result.flat_samples)
        t1 = tr.stamp("end")
    cpu_s = time.process_time() - cpu0
    h = result.history
    is_tr = np.asarray(h.is_training, bool)
    g_tr = np.asarray(h.global_acceptance, float)[is_tr]
    record = {
        "series": series,
        "fit": index,
        "warm_started": warm_start is not None,
        "wall_s": t1 - t0,
        "cpu_s": cpu_s,
        "timings": {k: float(v) for k, v in dict(result.timings).items()},
        "compile_s_observed": tr.compile_seconds(t0, t1),
        "backend_compiles": tr.backend_compiles,
        "n_training_loops": int(is_tr.sum()),
        "n_production_loops": int((~is_tr).sum()),
        "loops_to_90pct_global_acc": loops_to_fraction(g_tr),
        "global_acceptance_training": g_tr.tolist(),
        "global_acceptance_final_training": float(g_tr[-1]) if g_tr.size else None,
        "global_acceptance_production": float(np.nanmean(result.global_acceptance)),
        "local_acceptance_production": float(np.nanmean(result.local_acceptance)),
        "n_draws": int(draws.shape[1]),
        "decision_training_end": str(np.asarray(h.decision)[is_tr][-1]) if is_tr.any() else None,
        "decision_end": str(np.asarray(h.decision)[-1]),
        "first_loop_global_acceptance": float(np.asarray(h.global_acceptance)[0]),
        "first_loop_pareto_k": float(np.asarray(h.pareto_k)[0]),
        "loadavg_start": load,
        "loadavg_end": os.getloadavg(),
        "warnings": sorted(
            {
                f"{w.category.__name__}: {w.message}"
                for w in caught
                if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
            }
        ),
    }
    return sampler, result, {**record, "draws": draws}


def score(record: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """Add the summary of the fit's draws, ESS/s and its z-scores against ``ref``."""
    draws = record.pop("draws")
    s = posterior_summary(draws)
    mean, mcse = np.asarray(s["mean"]), np.asarray(s["mcse_mean"])
    rmean, rmcse = np.asarray(ref["mean"]), np.asarray(ref["mcse_mean"])
    z = np.abs(mean - rmean) / np.sqrt(mcse**2 + rmcse**2)
    min_ess = float(np.nanmin(s["ess_bulk"]))
    sd_err = np.abs(np.asarray(s["sd"]) / np.asarray(ref["sd"]) - 1.0)
    record.update(
        summary=s,
        z=z.tolist(),
        max_abs_z=float(np.max(z)),
        correct=bool(np.all(z < Z_MAX)),
        min_ess_bulk=min_ess,
        ess_per_s=min_ess / record["wall_s"],
        max_r_hat=float(np.nanmax(s["r_hat"])),
        max_sd_rel_err=float(np.max(sd_err)),
    )
    return record


def _print(rec: dict[str, Any]) -> None:
    print(
        f"  {rec['series']} fit {rec['fit']}: wall {rec['wall_s']:.1f} s, compile "
        f"{rec['timings']['compile']:.1f} s, loops {rec['n_training_loops']}+"
        f"{rec['n_production_loops']}, ESS {rec['min_ess_bulk']:.0f}, max|z| "
        f"{rec['max_abs_z']:.2f}",
        flush=True,
    )


@contextlib.contextmanager
def no_persistent_cache() -> Iterator[None]:
    """JAX's persistent compilation cache off inside (restored after, e.g. under pytest)."""
    from jax._src import compilation_cache

    before = bool(jax.config.jax_enable_compilation_cache)
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", before)
        compilation_cache.reset_cache()


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Fit 0, the warm series, the cold series; every record scored against the reference."""
    from jax._src import compilation_cache

    settings = dict(QUICK_SETTINGS) if args.quick else {}
    nuts_settings = dict(QUICK_NUTS_REFERENCE if args.quick else NUTS_REFERENCE)
    datasets = [make_dataset(i) for i in range(args.n_datasets)]
    refs = reference_summaries(datasets, args.reference, nuts_settings, args.recompute_reference)
    jdata = [as_jax(d) for d in datasets]
    base = jax.random.key(args.seed)

    def run_key(i: int) -> jax.Array:
        return jax.random.fold_in(base, i)

    def start(i: int) -> jax.Array:
        return INIT_SD * jax.random.normal(
            jax.random.fold_in(base, 10_000 + i), (args.n_chains, N_DIM)
        )

    persistent = bool(compilation_cache.is_persistent_cache_enabled())
    records = []
    clear_all_caches()
    print("[reuse] fit 0 (cold, compiles) ...", flush=True)
    sampler, previous, rec = fit(
        "first", 0, jdata[0], run_key(0), args.n_chains, settings, x0=start(0)
    )
    records.append(score(rec, refs[0]))
    _print(records[-1])
    print("[reuse] warm series ...", flush=True)
    for i in range(1, args.n_datasets):
        _, previous, rec = fit(
            "warm", i, jdata[i], run_key(i), args.n_chains, settings,
            sampler=sampler, warm_start=previous,
        )  # fmt: skip
        records.append(score(rec, refs[i]))
        _print(records[-1])
    # Control: the last warm fit's dataset once more, warm-started from that fit: what a
    # warm start costs when the posterior has not moved (not in the totals).
    last = args.n_datasets - 1
    print(f"[reuse] control: dataset {last} again, warm-started from its own fit ...", flush=True)
    _, _, rec = fit(
        "control", last, jdata[last], jax.random.fold_in(base, 20_000), args.n_chains,
        settings, sampler=sampler, warm_start=previous,
    )  # fmt: skip
    records.append(score(rec, refs[last]))
    _print(records[-1])
    print("[reuse] cold series (caches cleared before each fit) ...", flush=True)
    for i in range(1, args.n_datasets):
        clear_all_caches()
        _, _, rec = fit("cold", i, jdata[i], run_key(i), args.n_chains, settings, x0=start(i))
        records.append(score(rec, refs[i]))
        _print(records[-1])
    return {
        "records": records,
        "references": refs,
        "settings": settings,
        "nuts_reference": nuts_settings,
        "persistent_cache_enabled": persistent,
    }


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of the cold and warm series (fits 1..N-1), their ratio, compiles, correctness."""
    cold = [r for r in records if r["series"] == "cold"]
    warm = [r for r in records if r["series"] == "warm"]
    cold_total = sum(r["wall_s"] for r in cold)
    warm_total = sum(r["wall_s"] for r in warm)
    ratio = warm_total / cold_total if cold_total > 0 else None
    cold_cpu = sum(r["cpu_s"] for r in cold)
    warm_cpu = sum(r["cpu_s"] for r in warm)
    warm_compiled = [r["fit"] for r in warm if r["timings"]["compile"] > COMPILED_S]
    fits = [r for r in records if r["series"] in ("first", "warm", "cold")]
    incorrect = [f"{r['series']} {r['fit']}" for r in fits if not r["correct"]]
    return {
        "n_cold": len(cold),
        "n_warm": len(warm),
        "cold_total_s": cold_total,
        "warm_total_s": warm_total,
        "warm_over_cold": ratio,
        "cold_cpu_total_s": cold_cpu,
        "warm_cpu_total_s": warm_cpu,
        "warm_over_cold_cpu": warm_cpu / cold_cpu if cold_cpu > 0 else None,
        "cold_compile_total_s": sum(r["timings"]["compile"] for r in cold),
        "warm_compile_total_s": sum(r["timings"]["compile"] for r in warm),
        "cold_training_loops_total": sum(r["n_training_loops"] for r in cold),
        "warm_training_loops_total": sum(r["n_training_loops"] for r in warm),
        "warm_fits_compiled": warm_compiled,
        "n_correct": len(fits) - len(incorrect),
        "n_fits": len(fits),
        "incorrect": incorrect,
        "cold_training_s_per_loop_median": _median_per_loop(cold),
        "warm_training_s_per_loop_median": _median_per_loop(warm),
        "goal_ratio_met": ratio is not None and ratio <= GOAL_RATIO,
        "goal_no_warm_compile_met": not warm_compiled,
        "goal_all_correct_met": not incorrect,
    }


def posterior_shifts(refs: list[dict[str, Any]]) -> list[dict[str, float]]:
    """How far each dataset's posterior is from the previous one's (NUTS means and sds).

    ``d_j = (mean_i - mean_{i-1})_j / sd_i_j``; ``kl_diag = 0.5 * sum_j d_j^2`` is the KL
    divergence between two Gaussians with these means and one diagonal covariance
    (correlations and the change of sds ignored): a rough scale of how badly the previous
    fit's flow proposes for the new posterior.
    """
    out = []
    for i in range(1, len(refs)):
        d = (np.asarray(refs[i]["mean"]) - np.asarray(refs[i - 1]["mean"])) / np.asarray(
            refs[i]["sd"]
        )
        ratio = np.asarray(refs[i]["sd"]) / np.asarray(refs[i - 1]["sd"])
        out.append(
            {
                "fit": i,
                "rms_shift_sd": float(np.sqrt(np.mean(d**2))),
                "max_shift_sd": float(np.max(np.abs(d))),
                "kl_diag": float(0.5 * np.sum(d**2)),
                "sd_ratio_min": float(ratio.min()),
                "sd_ratio_max": float(ratio.max()),
            }
        )
    return out


def _median_per_loop(records: list[dict[str, Any]]) -> float | None:
    v = [r["timings"]["training"] / r["n_training_loops"] for r in records if r["n_training_loops"]]
    return float(np.median(v)) if v else None


# ----------------------------------------------------------------------------- report
HEADER = [
    "series",
    "fit",
    "compile s",
    "training loops",
    "loops to 90% of final global acc",
    "final training global acc",
    "loop 1 global acc",
    "loop 1 Pareto k",
    "production loops",
    "wall s",
    "CPU s",
    "min ESS bulk",
    "min ESS/s",
    "max \\|z\\|",
    "correct",
]


def _row(r: dict[str, Any]) -> list[str]:
    return [
        r["series"],
        str(r["fit"]),
        fmt(r["timings"]["compile"], 2),
        str(r["n_training_loops"]),
        fmt(r["loops_to_90pct_global_acc"]),
        fmt(r["global_acceptance_final_training"], 2),
        fmt(r["first_loop_global_acceptance"], 2),
        fmt(r["first_loop_pareto_k"], 2),
        str(r["n_production_loops"]),
        fmt(r["wall_s"]),
        fmt(r["cpu_s"]),
        fmt(r["min_ess_bulk"]),
        fmt(r["ess_per_s"]),
        fmt(r["max_abs_z"], 2),
        "yes" if r["correct"] else "**NO**",
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _yes(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _why_section(payload: dict[str, Any]) -> list[str]:
    """Where the warm fits' time goes: posterior shifts, loop counts, a same-data control."""
    s, records = payload["summary"], payload["records"]
    by = {(r["series"], r["fit"]): r for r in records}
    lines = [
        "",
        "## Where the time goes",
        "",
        "How far each dataset's posterior lies from the previous one's (NUTS reference; "
        "d_j = (mean_i - mean_{i-1})_j / sd_i,j; KL_diag = 0.5 sum_j d_j^2, the KL divergence "
        "of two Gaussians with these means and one diagonal covariance, correlations "
        "ignored), next to what the warm fit i (started from fit i-1's flow) and the cold "
        "fit i did:",
        "",
    ]
    rows = []
    for sh in payload["posterior_shifts"]:
        w, c = by.get(("warm", sh["fit"])), by.get(("cold", sh["fit"]))
        rows.append(
            [
                str(sh["fit"]),
                fmt(sh["rms_shift_sd"], 2),
                fmt(sh["max_shift_sd"], 2),
                fmt(sh["kl_diag"], 3),
                f"{fmt(sh['sd_ratio_min'], 2)}-{fmt(sh['sd_ratio_max'], 2)}",
                "-" if w is None else fmt(w["first_loop_global_acceptance"], 2),
                "-" if w is None else fmt(w["first_loop_pareto_k"], 2),
                "-" if w is None else str(w["n_training_loops"]),
                "-" if c is None else str(c["n_training_loops"]),
            ]
        )
    lines += _table(
        [
            "fit",
            "rms \\|d\\|",
            "max \\|d\\|",
            "KL_diag",
            "sd ratio",
            "warm: loop 1 global acc",
            "warm: loop 1 Pareto k",
            "warm: training loops",
            "cold: training loops",
        ],
        rows,
    )
    lines += [
        "",
        f"Training loops: warm {s['warm_training_loops_total']}, cold "
        f"{s['cold_training_loops_total']}. Median training seconds per loop (compile "
        f"excluded): warm {fmt(s['warm_training_s_per_loop_median'], 2)}, cold "
        f"{fmt(s['cold_training_s_per_loop_median'], 2)} (the load average differed between "
        "the series, see the JSON's per-fit `loadavg_start`). Compile: "
        f"{fmt(s['cold_compile_total_s'])} s of the cold series' {fmt(s['cold_total_s'])} s.",
    ]
    ctrl = [r for r in records if r["series"] == "control"]
    for r in ctrl:
        lines += [
            "",
            f"Control (not in the totals): dataset {r['fit']} once more, warm-started from "
            f"its own warm fit, so the posterior has not moved: loop 1 global acceptance "
            f"{fmt(r['first_loop_global_acceptance'], 2)} (Pareto k "
            f"{fmt(r['first_loop_pareto_k'], 2)}), {r['n_training_loops']} training loops, "
            f"global acceptance per training loop "
            f"{', '.join(f'{a:.2f}' for a in r['global_acceptance_training'])}; wall "
            f"{fmt(r['wall_s'])} s, max \\|z\\| {fmt(r['max_abs_z'], 2)}.",
        ]
    return lines


def build_markdown(payload: dict[str, Any]) -> str:
    """The Markdown report of `main`'s payload."""
    meta, s, records = payload["meta"], payload["summary"], payload["records"]
    nuts = payload["nuts_reference"]
    ratio = s["warm_over_cold"]
    lines = [
        "# Fitting many datasets: cold fits vs warm-started fits",
        "",
        f"Generated {meta['generated']} by `{meta['command']}` ({meta['elapsed_s']:.0f} s) "
        f"at commit {(meta['git']['commit'] or '?')[:10]}"
        + (
            f" with uncommitted changes to {', '.join(meta['git']['library_changes'])}"
            if meta["git"]["library_changes"]
            else ""
        )
        + ".",
        "",
    ]
    if meta["quick"]:
        lines += ["**Quick mode** (smoke test): tiny fixed schedules, numbers meaningless.", ""]
    lines += [
        f"Bayesian logistic regression, {N_FEATURES} correlated features + intercept "
        f"({N_DIM} parameters, Normal(0, 1) priors), {meta['n_datasets']} datasets of "
        f"{N_POINTS} points (features N(0, S), S_ij = {RHO}^\\|i-j\\|; true coefficients "
        f"N(0, {BETA_SD}^2) drawn once, intercept {INTERCEPT}; fixed seeds). One module-level "
        f"`log_prob(theta, data)` for every fit. Sampler: `fm.Sampler(log_prob, n_dim={N_DIM}, "
        f"n_chains={meta['n_chains']}, data=(X, y), progress_bar=False"
        + "".join(f", {k}={v}" for k, v in payload["settings"].items())
        + ")` (library defaults otherwise: automatic schedule, MALA + RealNVP).",
        "",
        "- **fit 0**: cold, compiles.",
        "- **warm** fit i (1..N-1): `sampler.run(key_i, data=(X_i, y_i), warm_start=result_{i-1})`"
        " (result_{i-1}: the previous warm fit, fit 0 for i = 1; chains start from its last "
        "positions); no cache cleared; run right after fit 0.",
        "- **cold** fit i (1..N-1): `flowmc_like.compiler.clear_compile_cache()` and "
        "`jax.clear_caches()` first, then a new `fm.Sampler` from fresh starts "
        f"N(0, {INIT_SD}^2): each fit compiles, as in a new user's process.",
        f"- JAX's persistent compilation cache: "
        f"{'ENABLED' if payload['persistent_cache_enabled'] else 'disabled'} in this process.",
        "",
        "Wall s = sampler construction + run + fetching the draws (compilation included); "
        "CPU s = this process's CPU time over the same span (all its threads). "
        "Compile s = `result.timings['compile']`. Loops to 90% = training loops until the "
        "global acceptance first reaches 90% of its last training loop's value. ESS = min over "
        f"the {N_DIM} coordinates of ArviZ's bulk ESS of the production draws; ESS/s = ESS / "
        "wall s. z_j = \\|mean_fm - mean_ref\\| / sqrt(mcse_fm^2 + mcse_ref^2) (ArviZ MCSE of "
        f"the mean); a fit is correct when max_j \\|z_j\\| < {Z_MAX:g}. Reference: blackjax "
        f"NUTS (window adaptation), {nuts['n_chains']} chains x {nuts['num_samples']} draws "
        f"after {nuts['num_warmup']} warm-up steps per dataset, cached in "
        f"`{meta['reference_path']}`.",
        "",
        "## Summary",
        "",
        f"- Cold fits 1..{s['n_cold']}: total wall **{fmt(s['cold_total_s'])} s** (compile "
        f"{fmt(s['cold_compile_total_s'])} s, {s['cold_training_loops_total']} training loops).",
        f"- Warm fits 1..{s['n_warm']}: total wall **{fmt(s['warm_total_s'])} s** (compile "
        f"{fmt(s['warm_compile_total_s'])} s, {s['warm_training_loops_total']} training loops).",
        f"- Warm / cold: **{fmt(ratio, 3)}** (goal <= {GOAL_RATIO:g}: "
        f"{_yes(s['goal_ratio_met'])}).",
        f"- The same in CPU seconds of this process (less sensitive to other processes' "
        f"load on a shared machine): cold {fmt(s['cold_cpu_total_s'])} s, warm "
        f"{fmt(s['warm_cpu_total_s'])} s, warm / cold **{fmt(s['warm_over_cold_cpu'], 3)}**.",
        f"- Warm fits that compiled (compile > {COMPILED_S:g} s): "
        f"**{len(s['warm_fits_compiled'])}**"
        + (f" (fits {s['warm_fits_compiled']})" if s["warm_fits_compiled"] else "")
        + " (goal 0: "
        f"{_yes(s['goal_no_warm_compile_met'])}).",
        f"- Correct fits: **{s['n_correct']} of {s['n_fits']}**"
        + (f" (incorrect: {', '.join(s['incorrect'])})" if s["incorrect"] else "")
        + f" (goal all: {_yes(s['goal_all_correct_met'])}).",
        "",
        "## Every fit",
        "",
    ]
    order = {"first": 0, "warm": 1, "control": 2, "cold": 3}
    rows = sorted(records, key=lambda r: (order[r["series"]], r["fit"]))
    lines += _table(HEADER, [_row(r) for r in rows])
    lines += [
        "",
        "Training ends (last training loop's decision):",
        "",
    ]
    lines += [
        f"- {r['series']} {r['fit']}: {r['decision_training_end']}"
        for r in rows
        if r["decision_training_end"]
    ]
    warned = [r for r in rows if r["warnings"]]
    if warned:
        lines += ["", "Warnings the sampler raised:", ""]
        for r in warned:
            lines += [f"- {r['series']} {r['fit']}:"] + [f"  - {w}" for w in r["warnings"]]
    lines += _why_section(payload)
    lines += ["", "## Reference (NUTS)", ""]
    ref_rows = [
        [
            str(i),
            ref["fingerprint"],
            fmt(float(np.min(ref["ess_bulk"]))),
            fmt(float(np.max(ref["r_hat"])), 4),
            str(ref["n_divergent"]),
            fmt(float(np.max(ref["mcse_mean"])), 3),
            fmt(ref["wall_s"]),
        ]
        for i, ref in enumerate(payload["references"])
    ]
    lines += _table(
        ["dataset", "fingerprint", "min ESS bulk", "max R-hat", "divergent", "max MCSE", "wall s"],
        ref_rows,
    )
    lines += ["", "## Machine", "", machine_section(meta["machine"]), ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- driver
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.reuse", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown path (+ .json)")
    p.add_argument("--n-datasets", type=int, default=None, help="10 (--quick: 2)")
    p.add_argument("--n-chains", type=int, default=None, help="32 (--quick: 8)")
    p.add_argument("--seed", type=int, default=0, help="run keys and cold starts")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    p.add_argument("--recompute-reference", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny schedules (smoke test)")
    args = p.parse_args(argv)
    if args.n_datasets is None:
        args.n_datasets = 2 if args.quick else 10
    if args.n_chains is None:
        args.n_chains = 8 if args.quick else 32
    if args.n_datasets < 2:
        p.error("--n-datasets must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run everything, write the Markdown and JSON."""
    from benchmarks.run import machine_info
    from benchmarks.worker import _cpu_model

    args = _parse_args(argv)
    load0 = os.getloadavg()
    t0 = time.time()
    with no_persistent_cache():
        out = run_benchmark(args)
    records = out.pop("records")
    env = {
        "cpu": _cpu_model(),
        "backend": jax.default_backend(),
        "x64": bool(jax.config.jax_enable_x64),
    }
    meta = {
        "generated": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m benchmarks.reuse", *(sys.argv[1:] if argv is None else argv)]
        ),
        "elapsed_s": time.time() - t0,
        "quick": args.quick,
        "n_datasets": args.n_datasets,
        "n_chains": args.n_chains,
        "seed": args.seed,
        "reference_path": _display_path(args.reference),
        "generator": generator_info(),
        "rules": {
            "correct": f"max over coordinates |z| < {Z_MAX:g}",
            "compiled": f"result.timings['compile'] > {COMPILED_S:g} s",
            "loops_to_90pct": f"first training loop with global acceptance >= {ACC_FRACTION:g} "
            "x the last training loop's",
            "goal_ratio": GOAL_RATIO,
        },
        "machine": machine_info(env, load0),
        "platform": platform.platform(),
        "git": git_state(),
    }
    payload = {
        "meta": meta,
        "summary": summarize(records),
        **out,
        "posterior_shifts": posterior_shifts(out["references"]),
        "records": records,
    }
    out_md = Path(args.out)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=json_default))
    out_md.write_text(build_markdown(payload))
    s = payload["summary"]
    print(
        f"cold total {s['cold_total_s']:.1f} s, warm total {s['warm_total_s']:.1f} s, ratio "
        f"{fmt(s['warm_over_cold'], 3)}; warm fits compiled {s['warm_fits_compiled']}; correct "
        f"{s['n_correct']} of {s['n_fits']}"
    )
    print(f"wrote {out_md} and {out_md.with_suffix('.json')}")
    return 0


def git_state() -> dict[str, Any]:
    """The checkout's commit and the library files that differ from it (the run used those)."""
    repo = RESULTS.parent.parent

    def git(*cmd: str) -> str:
        try:
            out = subprocess.run(["git", *cmd], cwd=repo, capture_output=True, text=True)
        except OSError:
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    status = git("status", "--porcelain", "--", "flowmc_like")
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "library_changes": [line[3:] for line in status.splitlines()],
    }


def _display_path(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(RESULTS.parent.parent))
    except ValueError:
        return str(p)


if __name__ == "__main__":
    raise SystemExit(main())
