"""Benchmark suites for ``python -m benchmarks.run --suite NAME`` and per-target settings.

A `Suite` says which targets and seeds run, whether the (untimed) evaluation-counting runs
happen, the shared schedule, per-(sampler, target) overrides, and whether the local-step
overhead tool runs. Two suites:

- ``quick``: the six continuous targets and ``ising_L8_bc``, seed 0, no counting runs, a
  shorter shared schedule (10 training + 10 production loops instead of 20 + 20, for every
  sampler alike) so that all samplers finish in under 10 minutes on 2 cores;
- ``full``: the six continuous targets and the five lattice cases of ``docs/spec/BENCHMARKS.md``
  (``ising_L4``, ``ising_L8_bc``, ``ising_L16_bc``, ``ising_L8_T2``, ``potts3_L4``), seeds
  0, 1, 2, counting runs, flowmc_like's default schedule. ``python -m benchmarks.run --suite
  full --docs`` regenerates ``docs/benchmarks.md``.

Settings precedence for one run (later wins): flowmc_like.Sampler's defaults for the shared
schedule < the suite's ``schedule`` < `FLOWMC_LIKE_TARGET_SETTINGS` (flowmc_like only) < the
suite's per-(sampler, target) ``overrides`` < command-line schedule flags (``--n-local-steps``
etc.; for flowmc_like they also beat the per-target settings) < ``--set SAMPLER.KEY=VALUE``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from benchmarks.ising import (
    DISCRETE_N_CHAINS,
    LATTICE_CASES,
    METROPOLIS,
    WOLFF,
    flowmc_like_settings,
)
from benchmarks.targets import TARGET_NAMES

__all__ = [
    "ALL_SAMPLERS",
    "CONTINUOUS_SAMPLERS",
    "DISCRETE_SAMPLERS",
    "FLOWMC_LIKE_TARGET_SETTINGS",
    "SUITES",
    "Suite",
    "is_discrete",
    "merged_overrides",
    "skip_reason",
]

AUTOMATIC_COUNTS: tuple[str, ...] = ("n_training_loops", "n_production_loops")
"""flowmc_like's loop counts whose default (None) lets the run decide."""

CONTINUOUS_SAMPLERS: tuple[str, ...] = ("flowmc_like", "flowmc", "nuts")
DISCRETE_SAMPLERS: tuple[str, ...] = ("flowmc_like", "metropolis", "wolff")
ALL_SAMPLERS: tuple[str, ...] = ("flowmc_like", "flowmc", "nuts", "metropolis", "wolff")
DISCRETE_TARGETS: tuple[str, ...] = tuple(LATTICE_CASES)
ALL_TARGETS: tuple[str, ...] = TARGET_NAMES + DISCRETE_TARGETS

FLOWMC_LIKE_TARGET_SETTINGS: dict[str, dict[str, Any]] = {
    # The continuous targets run flowmc_like with its defaults (the run chooses its
    # preconditioning and its length); only the lattice cases still carry settings.
    # Values must be JSON-able; "local_kernel"/"global_model" take {"name": ..., "kwargs": ...}
    # specs built by benchmarks.peers.flowmc_like_peer.build_component.
    **{name: flowmc_like_settings(case) for name, case in LATTICE_CASES.items()},
}
"""Target name -> flowmc_like ``Sampler`` keyword overrides, recorded in every run's settings.

No entry for a continuous target: flowmc_like runs there with nothing set. The lattice
entries are the `benchmarks.ising.RECIPE` schedule with ``SiteFlip(K, delta_log_prob=<the
target's O(1) delta>)`` and ``Autoregressive(K, hidden_sizes=(N,), symmetric=True)``."""


@dataclasses.dataclass(frozen=True)
class Suite:
    """One named benchmark suite.

    Attributes:
        name: ``quick`` or ``full``.
        description: one line for the report.
        targets: continuous target names and lattice case names, in run order.
        seeds: PRNG seeds (one run per sampler x target x seed).
        count_evals: run the untimed evaluation-counting process after each continuous run.
        schedule: shared-schedule fields overriding flowmc_like.Sampler's defaults (all
            samplers of the continuous targets).
        overrides: ``{(sampler, target): {keyword: value}}`` for single runs.
        samplers: samplers run by default (each on the targets it supports).
        run_overhead: run `benchmarks.overhead` once, in its own process.
        overhead_cost_sweep: include the overhead tool's logistic-regression cost sweep
            (about 25 s).
        discrete_n_chains: chains of every sampler on the lattice cases.
    """

    name: str
    description: str
    targets: tuple[str, ...]
    seeds: tuple[int, ...]
    count_evals: bool
    schedule: dict[str, Any] = dataclasses.field(default_factory=dict)
    overrides: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    samplers: tuple[str, ...] = ALL_SAMPLERS
    run_overhead: bool = True
    overhead_cost_sweep: bool = True
    discrete_n_chains: int = DISCRETE_N_CHAINS


QUICK_SCHEDULE: dict[str, Any] = {"n_training_loops": 10, "n_production_loops": 10}
"""The quick suite's shared schedule change: half the loops of the default (flowMC alone takes
60-120 s per target with 20 + 20 loops, which would not fit 10 minutes for six targets)."""

SUITES: dict[str, Suite] = {
    "quick": Suite(
        name="quick",
        description=(
            "six continuous targets + ising_L8_bc, seed 0, no counting runs, "
            "10 training + 10 production loops for every sampler"
        ),
        targets=(*TARGET_NAMES, "ising_L8_bc"),
        seeds=(0,),
        count_evals=False,
        schedule=dict(QUICK_SCHEDULE),
        # The sweep would take 25 of the quick suite's 10 minutes; the full suite has it.
        overhead_cost_sweep=False,
    ),
    "full": Suite(
        name="full",
        description=(
            "six continuous targets + the five lattice cases, seeds 0, 1, 2, "
            "flowmc_like's default schedule"
        ),
        targets=(*TARGET_NAMES, *DISCRETE_TARGETS),
        seeds=(0, 1, 2),
        # Evaluation counts come from each sampler's algorithm: a counting run of vmapped
        # NUTS (one host callback per leapfrog step) takes over 10 minutes per target.
        count_evals=False,
    ),
}


def is_discrete(target: str) -> bool:
    """True for a lattice case of `benchmarks.ising.LATTICE_CASES`."""
    return target in LATTICE_CASES


def skip_reason(sampler: str, target: str) -> str | None:
    """Why ``sampler`` does not run on ``target``, or None if it does."""
    if is_discrete(target) and sampler not in DISCRETE_SAMPLERS:
        return f"{sampler} skipped on the lattice cases (continuous states only)"
    if not is_discrete(target) and sampler not in CONTINUOUS_SAMPLERS:
        return f"{sampler} skipped on the continuous targets (lattice models only)"
    return None


def merged_overrides(
    sampler: str,
    target: str,
    suite: Suite | None,
    cli_schedule: dict[str, Any],
    sets: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The sampler-specific keywords of one run, in the precedence of the module docstring.

    ``cli_schedule`` holds only the schedule fields given on the command line (they are in the
    shared schedule already; for flowmc_like they are repeated here so that they also beat
    `FLOWMC_LIKE_TARGET_SETTINGS`). Metropolis and Wolff start from their own settings
    (`benchmarks.ising.METROPOLIS`, `benchmarks.ising.WOLFF`) and ignore the schedule.
    """
    out: dict[str, Any] = {}
    if sampler == "flowmc_like":
        out.update(copy.deepcopy(FLOWMC_LIKE_TARGET_SETTINGS.get(target, {})))
        # the peers' fixed counts are not flowmc_like's: it decides its own run length,
        # unless the suite's schedule or the command line fixes the counts
        fixed = {**(suite.schedule if suite is not None else {}), **cli_schedule}
        for name in AUTOMATIC_COUNTS:
            if name not in fixed and name not in out:
                out[name] = None
    elif sampler == "metropolis":
        out.update(METROPOLIS)
    elif sampler == "wolff":
        out.update(WOLFF)
    if suite is not None:
        out.update(copy.deepcopy(suite.overrides.get((sampler, target), {})))
    if sampler == "flowmc_like":
        out.update({k: v for k, v in cli_schedule.items() if k != "n_chains"})
    out.update(copy.deepcopy(sets.get(sampler, {})))
    return out
