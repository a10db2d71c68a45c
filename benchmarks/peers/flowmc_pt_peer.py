"""flowMC 0.6.x: ``RQSpline_MALA_PT_Bundle`` (parallel tempering) run through ``flowMC.Sampler``.

Settings: the shared `Schedule` (n_chains, n_local_steps, n_global_steps, n_training_loops,
n_production_loops, n_epochs, learning_rate) is passed to the bundle; every other bundle
argument keeps flowMC's default unless overridden with ``overrides`` (any bundle keyword):
the `RQSpline_MALA` defaults (MALA step 0.1 with step-size and per-dimension adaptation,
RQSpline 4 layers x (32, 32) x 8 bins, batch_size = n_max_examples = 10000, history_window
100) and, for tempering, ``n_temperatures=5``, ``max_temperature=5.0``,
``n_tempered_steps=-1`` (= n_local_steps) and a zero ``logprior`` (the whole density is
tempered). As in `benchmarks.peers.flowmc_peer`, ``flowMC.Sampler(checkpoint_interval=0)``.

What one loop is (from the installed source, ``flowMC/resource_strategy_bundle/
RQSpline_MALA_PT.py`` and ``flowMC/strategy/parallel_tempering.py``):

- training loop: ``parallel_tempering`` (every chain's K levels, the ``T = 1`` one included,
  take ``n_tempered_steps`` MALA steps with the one shared MALA kernel at the tempered density
  ``log p / T``, then ONE exchange sweep over neighbouring pairs (0,1), (1,2), ... in that
  order, each pair seeing the result of the previous one; none of these steps is recorded),
  then ``n_local_steps`` recorded MALA steps at ``T = 1``, step-size adaptation, flow
  training on the recorded draws, ``n_global_steps`` recorded flow proposals;
- production loop: the same without adaptation and training.
So a loop takes ``n_tempered_steps + n_local_steps`` MALA steps at ``T = 1`` (the first
``n_tempered_steps`` unrecorded) and ``n_tempered_steps`` at each hotter level.

The temperatures start at ``linspace(1, max_temperature, K)`` and adapt after every
training exchange (``_adapt_temperature``: for the interior levels i = 1..K-2 in order,
``T_i <- T_{i-1} + (T_i - T_{i-1}) exp(100 / n_chains (a_{i-1} - a_i))`` with ``a_j`` the
exchange acceptance of pair (j, j+1) in that sweep, over chains; ``T_0 = 1`` and the hottest
stay). In production the
tempered-position buffer and the temperatures are NOT updated (``if
state.data["training"]``), so every production loop restarts the hot replicas from where
training left them.

Recorded here beyond `flowmc_peer`'s record: the temperatures after every PT call (read
from the ``temperatures`` buffer after the call), and the mean exchange acceptance of every
PT call, over chains and pairs, parsed from the ``logger.debug`` line flowMC formats anyway
(an f-string, so the value is computed whether or not it is logged; capturing it adds no
work). flowMC does not keep per-pair exchange acceptances or replica identities, so there
are no per-pair rates or round trips on this side.

Target evaluations per loop and chain (value or value_and_grad, from the source):
parallel tempering ``K (1 + 2 n_tempered_steps) + K``, local ``1 + 2 n_local_steps``, global
``1 + n_global_steps`` (`expected_evals`).
"""

from __future__ import annotations

import inspect
import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks.peers import PeerRun, Schedule
from benchmarks.peers.flowmc_peer import _finite_mean, _TimedStrategy
from benchmarks.timing import CompileTracker

__all__ = ["IMPORTS", "bundle_defaults", "expected_evals", "run"]

IMPORTS = ("flowMC", "flowMC.Sampler", "flowMC.resource_strategy_bundle.RQSpline_MALA_PT")
SAMPLER_KEYS = ("checkpoint_interval", "outdir")
PT_LOGGER = "flowMC.strategy.parallel_tempering"
BUNDLE_LOGGER = "flowMC.resource_strategy_bundle.RQSpline_MALA_PT"
_EXCHANGE_RE = re.compile(r"Mean acceptance of exchange steps in PT: ([-+0-9.eEnaif]+)")
_STEPS_RE = re.compile(r"Mean acceptance of individual steps in PT: ([-+0-9.eEnaif]+)")


def bundle_defaults() -> dict[str, Any]:
    """The PT bundle's keyword defaults, read from the installed flowMC's signature."""
    from flowMC.resource_strategy_bundle.RQSpline_MALA_PT import RQSpline_MALA_PT_Bundle

    out: dict[str, Any] = {}
    for name, par in inspect.signature(RQSpline_MALA_PT_Bundle.__init__).parameters.items():
        if par.default is inspect.Parameter.empty or name == "self":
            continue
        v = par.default
        out[name] = v if isinstance(v, (bool, int, float, str, tuple, type(None))) else repr(v)
    return out


def expected_evals(schedule: Schedule, n_temperatures: int, n_tempered_steps: int) -> dict:
    """Target evaluations (value or value_and_grad calls per chain, times chains) by phase."""
    pt = n_temperatures * (1 + 2 * n_tempered_steps) + n_temperatures
    per_loop = pt + (1 + 2 * schedule.n_local_steps) + (1 + schedule.n_global_steps)
    return {
        "training": schedule.n_chains * schedule.n_training_loops * per_loop,
        "production": schedule.n_chains * schedule.n_production_loops * per_loop,
        "per_loop_per_chain": {
            "parallel_tempering": pt,
            "local": 1 + 2 * schedule.n_local_steps,
            "global": 1 + schedule.n_global_steps,
        },
    }


class _LogCapture(logging.Handler):
    """Collects flowMC's PT debug lines: mean step and exchange acceptance per PT call."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.exchange: list[float] = []
        self.steps: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        for regex, out in ((_EXCHANGE_RE, self.exchange), (_STEPS_RE, self.steps)):
            m = regex.search(msg)
            if m:
                try:
                    out.append(float(m.group(1)))
                except ValueError:
                    out.append(float("nan"))


class _TimedPT(_TimedStrategy):
    """`_TimedStrategy` that also snapshots the temperatures after every PT call."""

    def __init__(self, *args: Any, temperatures: list[list[float]]):
        super().__init__(*args)
        self.temperatures = temperatures

    def __call__(self, rng_key: Any, resources: Any, initial_position: Any, data: Any) -> Any:
        out = super().__call__(rng_key, resources, initial_position, data)
        self.temperatures.append(np.asarray(resources["temperatures"].data).tolist())
        return out


def run(
    target: Any,
    log_prob: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    seed: int,
    schedule: Schedule,
    overrides: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> PeerRun:
    """Run flowMC's RQSpline + MALA + PT bundle on ``log_prob`` from ``x0``; see the module doc.

    Returns a `PeerRun` whose ``samples`` are ``resources["positions_production"].data``,
    ``(n_chains, n_production_loops * (n_local_steps + n_global_steps), n_dim)`` (the ``T =
    1`` chains, local and global steps interleaved per loop; the PT steps are not recorded),
    and whose ``extra`` holds ``temperatures`` (after every PT call), ``exchange_acceptance``
    and ``pt_step_acceptance`` (per PT call, split into ``training`` and ``production``).
    """
    del target
    import flowMC
    from flowMC.resource_strategy_bundle.RQSpline_MALA_PT import RQSpline_MALA_PT_Bundle
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
    defaults = bundle_defaults()
    n_temperatures = int(bundle_kwargs.get("n_temperatures", defaults["n_temperatures"]))
    n_tempered_steps = int(bundle_kwargs.get("n_tempered_steps", defaults["n_tempered_steps"]))
    if n_tempered_steps <= 0:
        n_tempered_steps = schedule.n_local_steps  # what the bundle does (with a warning)
    n_chains, n_dim = x0.shape

    def logpdf(x: jax.Array, data: Any) -> jax.Array:
        del data
        return log_prob(x)

    outdir = tempfile.mkdtemp(prefix="flowmc_pt_outdir_")
    sampler_kwargs.setdefault("outdir", outdir + "/")
    key = jax.random.key(seed)
    k_bundle, k_sampler = jax.random.split(key)

    pt_logger = logging.getLogger(PT_LOGGER)
    bundle_logger = logging.getLogger(BUNDLE_LOGGER)
    saved = (pt_logger.level, pt_logger.propagate, bundle_logger.level)
    capture = _LogCapture()
    pt_logger.addHandler(capture)
    pt_logger.setLevel(logging.DEBUG)
    pt_logger.propagate = False
    bundle_logger.setLevel(logging.ERROR)  # the "n_tempered_steps ... -1" default's warning

    strat_log: list[tuple[str, float, float]] = []
    temps_log: list[list[float]] = []
    try:
        with CompileTracker() as tr:
            t_start = tr.stamp("start")
            bundle = RQSpline_MALA_PT_Bundle(
                rng_key=k_bundle, n_chains=n_chains, n_dims=n_dim, logpdf=logpdf, **bundle_kwargs
            )
            sampler = Sampler(
                n_dim=n_dim,
                n_chains=n_chains,
                rng_key=k_sampler,
                resource_strategy_bundles=bundle,
                **sampler_kwargs,
            )
            initial_temperatures = np.asarray(sampler.resources["temperatures"].data).tolist()
            for name in list(sampler.strategies):
                inner = sampler.strategies[name]
                if name == "parallel_tempering":
                    sampler.strategies[name] = _TimedPT(
                        name, inner, strat_log, temperatures=temps_log
                    )
                else:
                    sampler.strategies[name] = _TimedStrategy(name, inner, strat_log)
            tr.stamp("built")
            sampler.sample(x0, {})
            res = sampler.resources
            samples = np.asarray(res["positions_production"].data)
            log_p = np.asarray(res["log_prob_production"].data)
            g_acc = np.asarray(res["global_accs_production"].data)
            l_acc = np.asarray(res["local_accs_production"].data)
            t_end = tr.stamp("end")
    finally:
        pt_logger.removeHandler(capture)
        pt_logger.setLevel(saved[0])
        pt_logger.propagate = saved[1]
        bundle_logger.setLevel(saved[2])
        shutil.rmtree(outdir, ignore_errors=True)

    order = sampler.strategy_order
    assert isinstance(order, list)
    n_train_calls = order.index("reset_steppers")
    train_log, prod_log = strat_log[:n_train_calls], strat_log[n_train_calls:]
    t_train0, t_prod0, t_prod1 = train_log[0][1], prod_log[0][1], prod_log[-1][2]

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
    for name, a, b in strat_log:
        k = f"{'train' if a < t_prod0 else 'prod'}/{name}"
        strategy_seconds[k] = strategy_seconds.get(k, 0.0) + (b - a)

    n_pt_train = order[:n_train_calls].count("parallel_tempering")
    exch, steps = capture.exchange, capture.steps
    g_train = np.asarray(res["global_accs_training"].data)
    spl = schedule.steps_per_loop
    last_loop = g_train[:, -spl:] if g_train.shape[1] >= spl else g_train
    settings = {
        "flowMC_version": getattr(flowMC, "__version__", "0.6.x"),
        "bundle": "RQSpline_MALA_PT_Bundle",
        "bundle_kwargs": dict(bundle_kwargs),
        "sampler_kwargs": {k: v for k, v in sampler_kwargs.items() if k != "outdir"},
        "bundle_defaults": defaults,
        "n_temperatures": n_temperatures,
        "n_tempered_steps_effective": n_tempered_steps,
    }
    extra = {
        "phase_compile": {"training": c_train, "production": c_prod},
        "strategy_seconds": strategy_seconds,
        "initial_temperatures": initial_temperatures,
        "temperatures": {"training": temps_log[:n_pt_train], "production": temps_log[n_pt_train:]},
        "final_temperatures": temps_log[-1] if temps_log else initial_temperatures,
        "exchange_acceptance": {"training": exch[:n_pt_train], "production": exch[n_pt_train:]},
        "pt_step_acceptance": {"training": steps[:n_pt_train], "production": steps[n_pt_train:]},
        "train_global_acceptance_last_loop": _finite_mean(last_loop),
        "mala_step_size_final": np.asarray(res["local_sampler"].step_size).tolist(),
        "expected_evals": expected_evals(schedule, n_temperatures, n_tempered_steps),
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
