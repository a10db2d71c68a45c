"""Tempering benchmark: replica exchange discovering modes that no chain starts in.

Usage::

    python -m benchmarks.tempering [--seeds 0 1 2] [--out benchmarks/results/tempering.md]
        [--targets gauss4_8d corr4_6d dual_moon_2d] [--only flowmc|flowmc_like]
        [--samplers flowmc_pt flowmc_like_pt flowmc_like] [--n-temperatures 8]
        [--n-chains 32] [--n-training-loops 20] [--n-production-loops 20]
        [--n-local-steps 50] [--n-global-steps 25] [--set SAMPLER.KEY=VALUE ...] [--render]

Every run happens in this one process, one after another (never concurrently), each from
``jax.clear_caches()`` with a fresh ``log_prob`` closure, so each pays its own compilation.
Writes ``--out`` (Markdown), the same path with ``.json`` (every number, per-loop ladders
and exchange rates included) and with ``_summary.md`` (one row per target and sampler over
the seeds: the table docs/howto/tempering.md includes). ``--render`` rewrites the Markdown
and the summary from the stored JSON without running anything.

Targets (`benchmarks.tempering_targets`): every chain starts in ONE mode (its centre plus
``N(0, 0.1^2)`` jitter, key ``seed``), the same start for every sampler of a seed:

- ``gauss4_8d``: 4 unit Gaussians in 8-D, every pair of centres 10 apart, weights
  0.4/0.3/0.2/0.1, start in the 0.1 mode;
- ``corr4_6d``: 4 correlated 6-D Gaussians of scales 0.4/1/2/3, weights 0.15/0.35/0.2/0.3,
  start in the scale-0.4 mode;
- ``dual_moon_2d`` (`benchmarks.targets`): start in the first quadrant's lobe; it does not
  need tempering, so it measures what tempering costs (flowmc_like with and without).

Samplers (one shared schedule: chains, training loops, production loops, local steps, global
steps, epochs, learning rate):

- ``flowmc_pt``: flowMC 0.6.x ``RQSpline_MALA_PT_Bundle`` with its defaults
  (`benchmarks.peers.flowmc_pt_peer`; 5 temperatures up to T = 5);
- ``flowmc``: flowMC's ``RQSpline_MALA_Bundle`` without tempering, same schedule
  (`benchmarks.peers.flowmc_peer`; not in the default plan: a control for what flowMC's PT
  adds);
- ``flowmc_like_pt``: ``fm.Sampler(..., n_temperatures=8)``, everything else the library's
  defaults (its ladder and hottest temperature included);
- ``flowmc_like``: the same without tempering (``n_temperatures=1``).

Default plan: gauss4_8d and corr4_6d with flowmc_like_pt and flowmc_pt; dual_moon_2d with
flowmc_like_pt and flowmc_like. ``--samplers`` replaces the plan's samplers on every target,
``--only flowmc`` keeps only flowMC's samplers, ``--only flowmc_like`` only flowmc_like's. When the
installed flowmc_like has no tempering (no ``n_temperatures`` keyword, no ``exchange_rate``
in its history) its tempered runs are recorded as skipped and the flowMC side still runs.

Per run: wall time (construction + run, compilation and training included), compile time,
min over coordinates of ArviZ's bulk ESS, ESS/s = that / wall time, the fraction of draws in
each mode (largest weighted component density; quadrants for dual_moon_2d) and the max error
against the exact weights, the chains that visit more than one mode, the global acceptance,
and the tempering record: flowmc_like's production exchange rate per pair of levels, its round
trips (training / production) and its ladder; flowMC's mean exchange acceptance per PT call
(over chains and pairs; it keeps no per-pair rates or replica identities) and its temperatures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchmarks.jsonable import json_default
from benchmarks.metrics import compute_metrics
from benchmarks.peers import PeerRun, Schedule
from benchmarks.report import fmt, machine_section
from benchmarks.tempering_targets import (
    JITTER_SD,
    TEMPERING_TARGETS,
    MixtureTarget,
    get_tempering_target,
    start_centre,
    start_positions,
)
from benchmarks.timing import CompileTracker

__all__ = ["PLAN", "SAMPLERS", "main", "run_flowmc_like", "tempering_api_available"]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "tempering.md"
SAMPLERS = ("flowmc_pt", "flowmc", "flowmc_like_pt", "flowmc_like")
FLOWMC_SAMPLERS = ("flowmc_pt", "flowmc")
PLAN: dict[str, tuple[str, ...]] = {
    "gauss4_8d": ("flowmc_like_pt", "flowmc_pt"),
    "corr4_6d": ("flowmc_like_pt", "flowmc_pt"),
    "dual_moon_2d": ("flowmc_like_pt", "flowmc_like"),
}
DEFAULT_N_TEMPERATURES = 8
DEFAULT_SCHEDULE = Schedule(
    n_chains=32,
    n_local_steps=50,
    n_global_steps=25,
    n_training_loops=20,
    n_production_loops=20,
    n_epochs=5,
    learning_rate=1e-3,
)
SAMPLER_LABELS = {
    "flowmc_pt": "flowMC PT bundle",
    "flowmc": "flowMC, no PT",
    "flowmc_like_pt": "flowmc_like, tempered",
    "flowmc_like": "flowmc_like, no tempering",
}


# ----------------------------------------------------------------------------- flowmc_like
def tempering_api_available() -> tuple[bool, str]:
    """Whether the installed flowmc_like has ``n_temperatures`` and the tempering history."""
    try:
        import flowmc_like as fm
        from flowmc_like.records import History
    except Exception as e:  # pragma: no cover - depends on the install
        return False, f"flowmc_like does not import: {e!r}"
    params = inspect.signature(fm.Sampler).parameters
    if "n_temperatures" not in params:
        return False, "fm.Sampler has no n_temperatures keyword (tempering not merged)"
    fields = {f.name for f in dataclasses.fields(History)}
    missing = {"exchange_rate", "ladder", "round_trips"} - fields
    if missing:
        return False, f"History lacks {sorted(missing)} (tempering not merged)"
    return True, "ok"


def _history_array(history: Any, name: str) -> np.ndarray | None:
    v = getattr(history, name, None)
    return None if v is None else np.asarray(v)


def run_flowmc_like(
    log_prob: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    seed: int,
    schedule: Schedule,
    n_temperatures: int,
    overrides: dict[str, Any] | None = None,
) -> PeerRun:
    """``fm.Sampler(log_prob, ..., n_temperatures=K, **schedule).run(key(seed), x0)``.

    Every schedule field is passed (so the loop counts are fixed, not automatic);
    ``n_temperatures`` only when ``K > 1``; everything else keeps the library's defaults
    (``max_temperature``, ``log_prior``, the kernel, the model), recorded in ``settings``.
    ``extra["tempering"]`` holds the per-loop ``exchange_rate``, ``ladder``, ``round_trips``
    and ``is_training`` from ``result.history``.
    """
    import flowmc_like as fm

    n_chains, n_dim = x0.shape
    params = inspect.signature(fm.Sampler).parameters
    kwargs: dict[str, Any] = {
        k: v for k, v in schedule.as_dict().items() if k in params and k != "n_chains"
    }
    kwargs["progress_bar"] = False
    if n_temperatures > 1:
        kwargs["n_temperatures"] = n_temperatures
    kwargs.update(overrides or {})
    defaults = {
        k: repr(p.default)
        for k, p in params.items()
        if p.default is not inspect.Parameter.empty and k not in kwargs
    }
    with CompileTracker() as tr:
        t_start = tr.stamp("start")
        sampler = fm.Sampler(log_prob, n_dim=n_dim, n_chains=n_chains, **kwargs)
        result = sampler.run(jax.random.key(seed), x0)
        samples = np.asarray(result.samples)
        t_end = tr.stamp("end")
    total = t_end - t_start
    lib = {k: float(v) for k, v in dict(result.timings).items()}
    timings = {
        "total": total,
        "compile": lib.get("compile", float("nan")),
        "training": lib.get("training", float("nan")),
        "production": lib.get("production", float("nan")),
    }
    timings["other"] = total - timings["compile"] - timings["training"] - timings["production"]
    h = result.history
    tempering: dict[str, Any] = {"is_training": np.asarray(h.is_training, bool).tolist()}
    for name in ("exchange_rate", "ladder", "round_trips"):
        arr = _history_array(h, name)
        tempering[name] = None if arr is None else arr.tolist()
    config = getattr(sampler, "config", None)
    settings = {
        "passed": {k: v for k, v in kwargs.items()},
        "defaults_kept": defaults,
        "max_temperature_config": getattr(config, "max_temperature", None),
        "local_kernel": repr(getattr(sampler, "local_kernel", None)),
        "global_model": repr(getattr(sampler, "global_model", None)),
    }
    g_acc = np.asarray(result.global_acceptance, dtype=float)
    l_acc = np.asarray(result.local_acceptance, dtype=float)
    return PeerRun(
        samples=samples,
        timings=timings,
        global_acceptance=float(np.nanmean(g_acc)) if np.isfinite(g_acc).any() else None,
        local_acceptance=float(np.nanmean(l_acc)) if np.isfinite(l_acc).any() else None,
        settings=settings,
        extra={
            "library_timings": lib,
            "compile_seconds_observed": tr.compile_seconds(t_start, t_end),
            "tempering": tempering,
            "decision": np.asarray(h.decision).tolist(),
        },
    )


# ----------------------------------------------------------------------------- one run
def _tempering_summary(sampler: str, run: PeerRun) -> dict[str, Any]:
    """The exchange / ladder figures of a run, the same keys for both libraries."""
    out: dict[str, Any] = {
        "n_temperatures": None,
        "exchange_rate_production": None,  # per pair (flowmc_like) or None
        "exchange_mean_training": None,
        "exchange_mean_production": None,
        "exchange_min_pair_production": None,
        "round_trips_training": None,
        "round_trips_production": None,
        "betas_production": None,
        "temperatures_production": None,
    }
    if sampler == "flowmc":
        out["n_temperatures"] = 1
        return out
    if sampler == "flowmc_pt":
        ex = run.extra["exchange_acceptance"]
        temps = [float(t) for t in run.extra["final_temperatures"]]
        out.update(
            n_temperatures=len(temps),
            exchange_mean_training=_mean(ex["training"]),
            exchange_mean_production=_mean(ex["production"]),
            temperatures_production=temps,
            betas_production=[1.0 / t for t in temps],
        )
        return out
    tem = run.extra.get("tempering") or {}
    rate = tem.get("exchange_rate")
    if not rate or not len(rate[0]):
        out["n_temperatures"] = 1
        return out
    is_tr = np.asarray(tem["is_training"], bool)
    rate_a = np.asarray(rate, dtype=float)
    trips = np.asarray(tem["round_trips"], dtype=float)
    ladder = np.asarray(tem["ladder"], dtype=float)
    prod_rate = np.nanmean(rate_a[~is_tr], axis=0) if (~is_tr).any() else None
    betas = ladder[-1]
    with np.errstate(divide="ignore"):
        temps = np.where(betas > 0, 1.0 / betas, np.inf)
    out.update(
        n_temperatures=int(ladder.shape[1]),
        exchange_rate_production=None if prod_rate is None else prod_rate.tolist(),
        exchange_mean_training=float(np.nanmean(rate_a[is_tr])) if is_tr.any() else None,
        exchange_mean_production=None if prod_rate is None else float(np.nanmean(prod_rate)),
        exchange_min_pair_production=None if prod_rate is None else float(np.nanmin(prod_rate)),
        round_trips_training=int(trips[is_tr].sum()),
        round_trips_production=int(trips[~is_tr].sum()),
        betas_production=betas.tolist(),
        temperatures_production=temps.tolist(),
    )
    return out


def _mean(v: list[float]) -> float | None:
    a = np.asarray(v, dtype=float)
    return float(np.nanmean(a)) if a.size and np.isfinite(a).any() else None


def _dispatch(
    sampler: str,
    target: Any,
    log_prob: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    seed: int,
    schedule: Schedule,
    n_temperatures: int,
    overrides: dict[str, Any],
) -> PeerRun | None:
    """Run ``sampler``; None when it needs flowmc_like's tempering and that is missing."""
    if sampler == "flowmc_pt":
        from benchmarks.peers import flowmc_pt_peer

        return flowmc_pt_peer.run(target, log_prob, x0, seed, schedule, overrides)
    if sampler == "flowmc":
        from benchmarks.peers import flowmc_peer

        return flowmc_peer.run(target, log_prob, x0, seed, schedule, overrides)
    if sampler in ("flowmc_like_pt", "flowmc_like"):
        k = n_temperatures if sampler == "flowmc_like_pt" else 1
        if k > 1 and not tempering_api_available()[0]:
            return None
        return run_flowmc_like(log_prob, x0, seed, schedule, k, overrides)
    raise ValueError(f"unknown sampler {sampler!r}; known: {SAMPLERS}")


def run_one(
    sampler: str,
    target_name: str,
    seed: int,
    schedule: Schedule,
    n_temperatures: int,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """One sampler on one target with one seed: the JSON record (``ok`` False on failure)."""
    target = get_tempering_target(target_name)
    rec: dict[str, Any] = {
        "sampler": sampler,
        "target": target_name,
        "seed": seed,
        "schedule": schedule.as_dict(),
        "overrides": overrides,
        "loadavg_start": os.getloadavg(),
    }
    jax.clear_caches()  # every run compiles from scratch, as in a fresh process
    x0 = jax.block_until_ready(start_positions(target, schedule.n_chains, seed))
    rec["start_centre"] = np.asarray(start_centre(target)).tolist()
    rec["start_modes"] = np.bincount(
        target.assign_modes(np.asarray(x0)), minlength=len(target.mode_centres)
    ).tolist()
    base_log_prob = target.log_prob

    def log_prob(x: jax.Array) -> jax.Array:  # a fresh function: no trace cache hits
        return base_log_prob(x)

    cpu0 = time.process_time()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = _dispatch(
                sampler, target, log_prob, x0, seed, schedule, n_temperatures, overrides
            )
        rec["warnings"] = sorted(
            {
                f"{w.category.__name__}: {w.message}"
                for w in caught
                if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
            }
        )
        if run is None:
            rec.update(ok=False, skipped=True, error=f"skipped: {tempering_api_available()[1]}")
            return rec
        rec["n_temperatures_requested"] = {"flowmc_like_pt": n_temperatures, "flowmc_pt": None}.get(
            sampler, 1
        )
        rec["cpu_seconds"] = time.process_time() - cpu0
        metrics = compute_metrics(run.samples, target, wall_seconds=run.timings["total"])
        labels = target.assign_modes(run.samples)
        n_modes = len(target.mode_centres)  # type: ignore[arg-type]
        rec.update(
            ok=True,
            timings=run.timings,
            metrics=metrics,
            modes_reached=int(np.sum(np.bincount(labels.ravel(), minlength=n_modes) > 0)),
            modes_per_chain=[len(np.unique(labels[c])) for c in range(labels.shape[0])],
            global_acceptance=run.global_acceptance,
            local_acceptance=run.local_acceptance,
            tempering=_tempering_summary(sampler, run),
            settings=run.settings,
            extra=run.extra,
        )
    except Exception as e:
        rec.update(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
    rec["loadavg_end"] = os.getloadavg()
    return rec


# ----------------------------------------------------------------------------- report
def _weights(w: Any) -> str:
    return "-" if w is None else "/".join(f"{v:.3f}" for v in w)


def _ladder(betas: Any) -> str:
    if not betas:
        return "-"
    return ", ".join("0" if b == 0 else f"{b:.3g}" for b in betas)


def _exchange_cell(t: dict[str, Any]) -> str:
    if t.get("n_temperatures") in (None, 1):
        return "-"
    per_pair = t.get("exchange_rate_production")
    mean = fmt(t.get("exchange_mean_production"), 2)
    if per_pair:
        return f"{mean} (min {fmt(t.get('exchange_min_pair_production'), 2)}; " + (
            " ".join(f"{v:.2f}" for v in per_pair) + ")"
        )
    return f"{mean} (train {fmt(t.get('exchange_mean_training'), 2)}; pairs pooled)"


def _trips(t: dict[str, Any]) -> str:
    if t.get("round_trips_training") is None:
        return "-" if t.get("n_temperatures") in (None, 1) else "n/a"
    return f"{t['round_trips_training']} / {t['round_trips_production']}"


RUN_HEADER = [
    "sampler",
    "seed",
    "wall s",
    "compile s",
    "min ESS bulk",
    "ESS/s",
    "mode weights",
    "max w err",
    "modes reached",
    "chains in >1 mode",
    "global acc",
    "exchange acc (production)",
    "round trips (train / prod)",
    "beta ladder (production)",
]


def _run_row(r: dict[str, Any]) -> list[str]:
    label = SAMPLER_LABELS.get(r["sampler"], r["sampler"])
    if not r.get("ok"):
        return [label, str(r["seed"]), r.get("error", "FAILED"), *["-"] * (len(RUN_HEADER) - 3)]
    m, t = r["metrics"], r["tempering"]
    return [
        label,
        str(r["seed"]),
        fmt(r["timings"]["total"]),
        fmt(r["timings"]["compile"]),
        fmt(m["min_ess_bulk"]),
        fmt(m["ess_per_s"]),
        _weights(m["mode_weights_est"]),
        fmt(m["mode_weight_err"]),
        f"{r['modes_reached']} of {len(m['mode_weights_true'])}",
        f"{m['chains_visiting_several_modes']} of {m['n_chains']}",
        fmt(r["global_acceptance"]),
        _exchange_cell(t),
        _trips(t),
        _ladder(t.get("betas_production")),
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _median(vals: list[Any]) -> float | None:
    v = [x for x in vals if isinstance(x, int | float) and math.isfinite(x)]
    return statistics.median(v) if v else None


def _summary_rows(records: list[dict[str, Any]], target: str) -> list[list[str]]:
    rows = []
    for sampler in SAMPLERS:
        recs = [r for r in records if r["target"] == target and r["sampler"] == sampler]
        ok = [r for r in recs if r.get("ok")]
        if not recs:
            continue
        if not ok:
            rows.append([SAMPLER_LABELS[sampler], f"0 of {len(recs)}", *["-"] * 6])
            continue
        errs = [r["metrics"]["mode_weight_err"] for r in ok]
        rows.append(
            [
                SAMPLER_LABELS[sampler],
                f"{len(ok)} of {len(recs)}",
                fmt(_median([r["timings"]["total"] for r in ok])),
                fmt(_median([r["metrics"]["min_ess_bulk"] for r in ok])),
                fmt(_median([r["metrics"]["ess_per_s"] for r in ok])),
                fmt(_median(errs)),
                fmt(max(errs)),
                f"{_median([r['modes_reached'] for r in ok]):g}",
            ]
        )
    return rows


def _target_notes(target: Any) -> str:
    w = target.mode_weights
    start = start_centre(target)
    if isinstance(target, MixtureTarget):
        where = f"mode {target.start_mode} (exact weight {target.weights[target.start_mode]:g})"
        rule = "largest weighted component density"
    else:
        where = "the first quadrant's lobe, centre (sqrt 2, sqrt 2)"
        rule = "quadrant (nearest of the centres (+-sqrt 2, +-sqrt 2))"
    return (
        f"{target.description}. d = {target.n_dim}. Exact mode weights {_weights(w)} "
        f"(assignment: {rule}). Every chain starts in {where}: "
        f"({', '.join(f'{v:.3g}' for v in start)}) + N(0, {JITTER_SD}^2) jitter."
    )


def build_markdown(payload: dict[str, Any]) -> str:
    """The Markdown report of `main`'s payload."""
    meta, records = payload["meta"], payload["records"]
    sched = meta["schedule"]
    lines = [
        "# Tempering benchmark: discovering modes no chain starts in",
        "",
        f"Generated {meta['generated']} by `{meta['command']}` ({meta['elapsed_s']:.0f} s).",
        "",
        "Shared schedule (both libraries): "
        + ", ".join(f"`{k}={v}`" for k, v in sched.items())
        + f". flowmc_like tempered: `n_temperatures={meta['n_temperatures']}`, everything "
        "else its defaults. flowMC: `RQSpline_MALA_PT_Bundle` with its defaults "
        "(`n_temperatures=5`, `max_temperature=5.0`, `n_tempered_steps=n_local_steps`), "
        "`Sampler(checkpoint_interval=0)`.",
        "",
        "Wall s = construction + run (compilation and training included; every run calls "
        "`jax.clear_caches()` and gets a fresh `log_prob`, so each compiles from scratch). "
        "ESS = min over coordinates of ArviZ's bulk ESS of the production draws (all chains), "
        "ESS/s = ESS / wall s. Mode weights = fraction of all production draws per mode; "
        "max w err = max over modes of |estimate - exact|. Exchange acc: flowmc_like, the "
        "mean production exchange rate, its smallest pair and every pair (coldest first); "
        "flowMC, the mean exchange acceptance over chains and pairs per PT call (flowMC keeps "
        "no per-pair rates and no replica identities, hence no round trips). Beta ladder: "
        "the inverse temperatures used in production (flowMC: 1 / its temperatures).",
        "",
    ]
    if meta.get("flowmc_like_tempering") != "ok":
        lines += [f"**flowmc_like tempering:** {meta.get('flowmc_like_tempering')}", ""]
    for name in meta["targets"]:
        target = get_tempering_target(name)
        recs = [r for r in records if r["target"] == name]
        if not recs:
            continue
        lines += [f"## {name}", "", _target_notes(target), ""]
        if len(meta["seeds"]) > 1:
            lines += ["Medians over seeds:", ""]
            lines += _table(
                [
                    "sampler",
                    "runs ok",
                    "wall s",
                    "min ESS bulk",
                    "ESS/s",
                    "max w err (median)",
                    "max w err (worst)",
                    "modes reached",
                ],
                _summary_rows(records, name),
            )
            lines += ["", "Every run:", ""]
        lines += _table(RUN_HEADER, [_run_row(r) for r in recs])
        lines.append("")
    warned = [r for r in records if r.get("warnings")]
    if warned:
        lines += ["## Warnings the samplers raised", ""]
        for r in warned:
            label = (
                f"{r['target']}, {SAMPLER_LABELS.get(r['sampler'], r['sampler'])}, seed {r['seed']}"
            )
            lines += [f"- {label}:"] + [f"  - {w}" for w in r["warnings"]]
        lines.append("")
    lines += [
        "## What one loop is in each library",
        "",
        "- flowMC PT bundle: each loop first runs its `parallel_tempering` strategy "
        "(`n_tempered_steps = n_local_steps` MALA steps at every temperature, T = 1 included, "
        "NOT recorded, then ONE exchange sweep over pairs (0,1), (1,2), ... in order), then "
        "`n_local_steps` recorded MALA steps at T = 1, then (training) step-size adaptation and "
        "flow training, then `n_global_steps` recorded flow proposals. The temperatures start "
        "at linspace(1, 5, 5) and adapt after every training exchange (the hottest stays at "
        "5); in production the hot replicas and temperatures are frozen: every production "
        "loop restarts the hot replicas from the end-of-training positions.",
        "- flowmc_like: each loop's `n_local_steps` local steps move every replica (all K "
        "levels, each with its own adapted step), an even/odd exchange round after every "
        "`steps_per_exchange`-th step (5 for MALA: 10 rounds per loop), only the beta = 1 "
        "draws recorded; then `n_global_steps` flow proposals at beta = 1. The ladder adapts "
        "in training and is frozen in production; the replicas keep evolving in production.",
        "- flowMC, no PT (`RQSpline_MALA_Bundle`, when run as a control): each loop "
        "`n_local_steps` MALA steps, adaptation and training, `n_global_steps` flow proposals.",
        "",
        "## Machine",
        "",
        machine_section(meta["machine"]),
        "",
    ]
    return "\n".join(lines)


WEIGHT_BAR = 0.05
"""A run gets the mode weights right when its max mode-weight error is at most this (the
mode-weight bar of `benchmarks.defaults`)."""


def summary_markdown(payload: dict[str, Any]) -> str:
    """One row per target and sampler over the seeds: the table docs/howto/tempering.md includes.

    ``weights right``: runs whose max mode-weight error is at most `WEIGHT_BAR`; ``warned``:
    runs that raised a warning (flowMC raises none); wall s and ESS/s are medians over the runs
    that finished; the error is ``median / worst``.
    """
    header = [
        "target",
        "sampler",
        "weights right",
        "warned",
        "wall s",
        "min ESS/s",
        "max mode-weight error (median / worst)",
    ]
    rows = []
    for name in payload["meta"]["targets"]:
        planned = [s for t, s in payload["meta"].get("plan", []) if t == name]
        for sampler in dict.fromkeys([*planned, *SAMPLERS]):
            recs = [
                r for r in payload["records"] if r["target"] == name and r["sampler"] == sampler
            ]
            ok = [r for r in recs if r.get("ok")]
            if not recs:
                continue
            cells = [name, SAMPLER_LABELS[sampler]]
            if not ok:
                rows.append([*cells, f"0 of {len(recs)}", "-", "-", "-", "-"])
                continue
            errs = [r["metrics"]["mode_weight_err"] for r in ok]
            right = sum(e <= WEIGHT_BAR for e in errs)
            warned = (
                "n/a"
                if sampler in FLOWMC_SAMPLERS
                else f"{sum(bool(r.get('warnings')) for r in ok)} of {len(ok)}"
            )
            rows.append(
                [
                    *cells,
                    f"{right} of {len(recs)}",
                    warned,
                    fmt(_median([r["timings"]["total"] for r in ok])),
                    fmt(_median([r["metrics"]["ess_per_s"] for r in ok])),
                    f"{_median(errs):.3f} / {max(errs):.3f}",
                ]
            )
    return "\n".join(_table(header, rows)) + "\n"


def write_outputs(payload: dict[str, Any], out_md: Path) -> list[Path]:
    """Write the report, its JSON and its summary (``<out>_summary.md``); return the paths."""
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_json = out_md.with_suffix(".json")
    out_summary = out_md.with_name(out_md.stem + "_summary.md")
    out_json.write_text(json.dumps(payload, indent=1, default=json_default))
    out_md.write_text(build_markdown(payload))
    out_summary.write_text(summary_markdown(payload))
    return [out_md, out_json, out_summary]


# ----------------------------------------------------------------------------- driver
def _parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for it in items:
        lhs, sep, rhs = it.partition("=")
        sampler, dot, key = lhs.partition(".")
        if not sep or not dot or sampler not in SAMPLERS:
            raise SystemExit(f"--set expects SAMPLER.KEY=VALUE with SAMPLER in {SAMPLERS}")
        try:
            val: Any = json.loads(rhs)
        except json.JSONDecodeError:
            val = rhs
        out.setdefault(sampler, {})[key] = val
    return out


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown path (+ .json)")
    p.add_argument("--targets", nargs="+", default=list(TEMPERING_TARGETS))
    p.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=None)
    p.add_argument("--only", choices=("flowmc", "flowmc_like"), default=None)
    p.add_argument("--n-temperatures", type=int, default=DEFAULT_N_TEMPERATURES)
    for f in dataclasses.fields(Schedule):
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(getattr(DEFAULT_SCHEDULE, f.name)),
            default=getattr(DEFAULT_SCHEDULE, f.name),
        )
    p.add_argument("--set", action="append", default=[], metavar="SAMPLER.KEY=VALUE")
    p.add_argument(
        "--render",
        action="store_true",
        help="rewrite --out and its summary from --out's stored JSON, without running",
    )
    return p.parse_args(argv)


def _plan(args: argparse.Namespace) -> list[tuple[str, str]]:
    pairs = []
    for t in args.targets:
        if t not in PLAN:
            raise SystemExit(f"unknown target {t!r}; known: {list(PLAN)}")
        samplers = tuple(args.samplers) if args.samplers else PLAN[t]
        if args.only == "flowmc":
            samplers = tuple(s for s in samplers if s in FLOWMC_SAMPLERS)
        elif args.only == "flowmc_like":
            samplers = tuple(s for s in samplers if s not in FLOWMC_SAMPLERS)
        pairs += [(t, s) for s in samplers]
    return pairs


def main(argv: list[str] | None = None) -> int:
    """Run the plan, write the Markdown and JSON; exit status 1 if a run failed."""
    from benchmarks.run import machine_info
    from benchmarks.worker import _cpu_model

    args = _parse_args(argv)
    if args.render:
        payload = json.loads(Path(args.out).with_suffix(".json").read_text())
        written = write_outputs(payload, Path(args.out))
        print("wrote " + ", ".join(map(str, written)))
        return 0
    schedule = Schedule(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Schedule)})
    sets = _parse_sets(args.set)
    pairs = _plan(args)
    api_ok, api_why = tempering_api_available()
    load0 = os.getloadavg()
    t0 = time.time()
    records = []
    for seed in args.seeds:
        for target, sampler in pairs:
            print(f"[tempering] {target} {sampler} seed {seed} ...", flush=True)
            rec = run_one(
                sampler, target, seed, schedule, args.n_temperatures, sets.get(sampler, {})
            )
            records.append(rec)
            if rec.get("ok"):
                m = rec["metrics"]
                print(
                    f"  wall {rec['timings']['total']:.1f} s, ESS {m['min_ess_bulk']:.0f}, "
                    f"weights {_weights(m['mode_weights_est'])} "
                    f"(err {m['mode_weight_err']:.3f})",
                    flush=True,
                )
            else:
                print(f"  {rec.get('error')}", flush=True)
    env = {
        "cpu": _cpu_model(),
        "backend": jax.default_backend(),
        "x64": bool(jax.config.jax_enable_x64),
    }
    meta = {
        "generated": dt.datetime.now().isoformat(timespec="seconds"),
        "command": "python -m benchmarks.tempering "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "elapsed_s": time.time() - t0,
        "schedule": schedule.as_dict(),
        "n_temperatures": args.n_temperatures,
        "seeds": args.seeds,
        "targets": args.targets,
        "plan": pairs,
        "set": sets,
        "flowmc_like_tempering": api_why if not api_ok else "ok",
        "machine": machine_info(env, load0),
        "platform": platform.platform(),
    }
    targets_ref = {}
    for name in args.targets:
        t = get_tempering_target(name)
        targets_ref[name] = {"description": t.description, **t.reference()}
    payload = {"meta": meta, "targets": targets_ref, "records": records}
    written = write_outputs(payload, Path(args.out))
    print("wrote " + ", ".join(map(str, written)))
    failed = [r for r in records if not r.get("ok") and not r.get("skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
