"""flowMC 0.6.x: ``RQSpline_MALA_Bundle`` run through ``flowMC.Sampler``, with a phase split.

Settings: the shared `Schedule` (n_chains, n_local_steps, n_global_steps, n_training_loops,
n_production_loops, n_epochs, learning_rate) is passed to the bundle; every other bundle
argument keeps flowMC's default (MALA step 0.1 with step-size and per-dimension adaptation,
RQSpline 4 layers x (32, 32) hidden x 8 bins, batch_size 10000, n_max_examples 10000,
history_window 100, n_NFproposal_batch_size 10000, no early stopping, thinning 1) unless
overridden with ``overrides`` (any bundle keyword, e.g. ``batch_size=2048``).

One deliberate non-default: ``flowMC.Sampler(checkpoint_interval=0)``. The default (600 s)
makes flowMC write checkpoints into ``./outdir`` and turn on JAX's persistent compilation
cache there with a 0 s threshold (then delete it when ``sample`` returns); flowmc_like only
checkpoints when asked, so the comparison leaves that off. Pass
``overrides={"checkpoint_interval": 600}`` to measure the default.

Timing. ``Sampler.sample`` runs the bundle's ``strategy_order`` (per training loop: local
steps, step-size adaptation, per-dim adaptation, cursor sync, flow training, model update,
global steps, cursor sync; then ``reset_steppers``, ``update_state``, and the production loops:
local steps, sync, global steps, sync). Each strategy object is wrapped in place
(``sampler.strategies[name]``) by a shim that calls it, blocks on the returned positions and
stamps the time. So ``training`` = strategies before ``reset_steppers``, ``production`` = from
``reset_steppers`` on, per-strategy totals are in ``extra["strategy_seconds"]``. Compile time
comes from JAX's own compile spans (`benchmarks.timing.CompileTracker`) and is subtracted from
the phase in which it happened. The block after each strategy costs microseconds and changes
little: flowMC already synchronises inside most strategies (float() of acceptances, boolean
masking of the training buffer).

Production draws: ``resources["positions_production"].data``, ``(n_chains, n_production_loops *
(n_local_steps + n_global_steps), n_dim)``, local and global steps interleaved per loop.
Acceptances: the ``*_accs_production`` buffers hold per-step accept flags for the steps of
their kind and ``-inf`` elsewhere; their finite entries are averaged.

Target evaluations per loop and chain (from the source): local phase 1 + 2 * n_local_steps
(MALA re-evaluates value_and_grad at the current point every step), global phase
1 + n_global_steps. `expected_evals` gives the total; the worker's counting run measures it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks.peers import PeerRun, Schedule
from benchmarks.targets import Target
from benchmarks.timing import CompileTracker

__all__ = ["IMPORTS", "expected_evals", "run"]

IMPORTS = ("flowMC", "flowMC.Sampler", "flowMC.resource_strategy_bundle.RQSpline_MALA")
SAMPLER_KEYS = ("checkpoint_interval", "outdir")


def expected_evals(schedule: Schedule) -> dict[str, int]:
    """Target evaluations (value or value_and_grad calls per chain, times chains) by phase."""
    per_loop = (1 + 2 * schedule.n_local_steps) + (1 + schedule.n_global_steps)
    return {
        "training": schedule.n_chains * schedule.n_training_loops * per_loop,
        "production": schedule.n_chains * schedule.n_production_loops * per_loop,
    }


class _TimedStrategy:
    """Calls a flowMC strategy, blocks on its output positions and logs the wall time."""

    def __init__(self, name: str, inner: Callable[..., Any], log: list[tuple[str, float, float]]):
        self.name = name
        self.inner = inner
        self.log = log

    def __call__(self, rng_key: Any, resources: Any, initial_position: Any, data: Any) -> Any:
        t0 = time.time()
        out = self.inner(rng_key, resources, initial_position, data)
        jax.block_until_ready(out[2])
        self.log.append((self.name, t0, time.time()))
        return out

    def __getattr__(self, item: str) -> Any:  # checkpoint code reads cursors etc.
        return getattr(self.inner, item)


def _finite_mean(a: np.ndarray) -> float | None:
    a = np.asarray(a)
    fin = a[np.isfinite(a)]
    return float(fin.mean()) if fin.size else None


def run(
    target: Target,
    log_prob: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    seed: int,
    schedule: Schedule,
    overrides: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> PeerRun:
    """Run flowMC's RQSpline + MALA bundle on ``target`` from ``x0``; see the module doc."""
    import flowMC
    from flowMC.resource_strategy_bundle.RQSpline_MALA import RQSpline_MALA_Bundle
    from flowMC.Sampler import Sampler

    overrides = dict(overrides or {})
    sampler_kwargs: dict[str, Any] = {"checkpoint_interval": 0.0}
    for k in SAMPLER_KEYS:
        if k in overrides:
            sampler_kwargs[k] = overrides.pop(k)
    bundle_kwargs: dict[str, Any] = {
        "n_local_steps": schedule.n_local_steps,
        "n_global_steps": schedule.n_global_steps,
        "n_training_loops": schedule.n_training_loops,
        "n_production_loops": schedule.n_production_loops,
        "n_epochs": schedule.n_epochs,
        "learning_rate": schedule.learning_rate,
        **overrides,
    }
    n_chains, n_dim = x0.shape

    def logpdf(x: jax.Array, data: Any) -> jax.Array:
        del data
        return log_prob(x)

    outdir = tempfile.mkdtemp(prefix="flowmc_outdir_")
    sampler_kwargs.setdefault("outdir", outdir + "/")
    key = jax.random.key(seed)
    k_bundle, k_sampler = jax.random.split(key)

    strat_log: list[tuple[str, float, float]] = []
    with CompileTracker() as tr:
        t_start = tr.stamp("start")
        bundle = RQSpline_MALA_Bundle(
            rng_key=k_bundle, n_chains=n_chains, n_dims=n_dim, logpdf=logpdf, **bundle_kwargs
        )
        sampler = Sampler(
            n_dim=n_dim,
            n_chains=n_chains,
            rng_key=k_sampler,
            resource_strategy_bundles=bundle,
            **sampler_kwargs,
        )
        for name in list(sampler.strategies):
            sampler.strategies[name] = _TimedStrategy(name, sampler.strategies[name], strat_log)
        if on_phase is not None:  # evaluation counting: snapshot at the phase boundary
            inner_reset = sampler.strategies["reset_steppers"]

            def reset_with_hook(*args: Any) -> Any:
                on_phase("production")
                return inner_reset(*args)

            sampler.strategies["reset_steppers"] = reset_with_hook
        tr.stamp("built")
        sampler.sample(x0, {})
        res = sampler.resources
        samples = np.asarray(res["positions_production"].data)
        log_p = np.asarray(res["log_prob_production"].data)
        g_acc = np.asarray(res["global_accs_production"].data)
        l_acc = np.asarray(res["local_accs_production"].data)
        t_end = tr.stamp("end")
    shutil.rmtree(outdir, ignore_errors=True)

    order = sampler.strategy_order
    assert isinstance(order, list)
    n_train_calls = order.index("reset_steppers")
    train_log, prod_log = strat_log[:n_train_calls], strat_log[n_train_calls:]
    t_train0 = train_log[0][1]
    t_prod0 = prod_log[0][1]
    t_prod1 = prod_log[-1][2]

    total = t_end - t_start
    compile_all = tr.compile_seconds(t_start, t_end)
    c_train = tr.compile_seconds(t_train0, t_prod0)
    c_prod = tr.compile_seconds(t_prod0, t_prod1)
    training = (t_prod0 - t_train0) - c_train
    production = (t_prod1 - t_prod0) - c_prod
    timings = {
        "total": total,
        "compile": compile_all,
        "training": training,
        "production": production,
        "other": total - compile_all - training - production,
    }

    strategy_seconds: dict[str, float] = {}
    strategy_compile: dict[str, float] = {}
    for name, a, b in strat_log:
        phase = "train" if a < t_prod0 else "prod"
        k = f"{phase}/{name}"
        strategy_seconds[k] = strategy_seconds.get(k, 0.0) + (b - a)
        strategy_compile[k] = strategy_compile.get(k, 0.0) + tr.compile_seconds(a, b)

    # Global acceptance of the last training loop (how good the flow was when frozen).
    g_train = np.asarray(res["global_accs_training"].data)
    spl = schedule.steps_per_loop
    last_loop = g_train[:, -spl:] if g_train.shape[1] >= spl else g_train
    loss = np.asarray(res["loss_buffer"].data)
    settings = {
        "flowMC_version": flowMC.__version__ if hasattr(flowMC, "__version__") else "0.6.x",
        "bundle": "RQSpline_MALA_Bundle",
        "bundle_kwargs": {k: v for k, v in bundle_kwargs.items()},
        "sampler_kwargs": {k: v for k, v in sampler_kwargs.items() if k != "outdir"},
        "defaults_kept": (
            "mala_step_size=0.1, adapt_step_size=True, adapt_step_size_per_dim=True, "
            "rq_spline_hidden_units=(32, 32), rq_spline_n_bins=8, rq_spline_n_layers=4, "
            "n_NFproposal_batch_size=10000, batch_size=10000, n_max_examples=10000, "
            "history_window=100, early_stopping=False, thinning=1 (unless in bundle_kwargs)"
        ),
    }
    extra = {
        "phase_compile": {
            "setup": tr.compile_seconds(t_start, t_train0),
            "training": c_train,
            "production": c_prod,
            "finalize": tr.compile_seconds(t_prod1, t_end),
        },
        "n_backend_compiles": tr.backend_compiles,
        "backend_compiles_by_function": dict(
            sorted(tr.compiled_functions.items(), key=lambda kv: -kv[1])
        ),
        "strategy_seconds": strategy_seconds,
        "strategy_compile_seconds": strategy_compile,
        "train_global_acceptance_last_loop": _finite_mean(last_loop),
        "final_loss": float(loss[np.isfinite(loss)][-1]) if np.isfinite(loss).any() else None,
        "mala_step_size_final": np.asarray(res["local_sampler"].step_size).tolist(),
        "expected_evals": expected_evals(schedule),
        "global_acceptance_per_chain": [_finite_mean(g_acc[c]) for c in range(g_acc.shape[0])],
        "n_nonfinite_log_prob": int(np.sum(~np.isfinite(log_p))),
    }
    return PeerRun(
        samples=samples,
        timings=timings,
        global_acceptance=_finite_mean(g_acc),
        local_acceptance=_finite_mean(l_acc),
        settings=settings,
        extra=extra,
    )
