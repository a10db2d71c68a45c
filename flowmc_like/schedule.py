"""How long a run trains and samples: decisions the run takes from what it measures.

Every decision is a pure function of the loops' records (and, in production, of the draws),
so a resumed run takes the same decisions as an uninterrupted one. A count the user sets
(``n_training_loops``, ``n_production_loops``) always wins over the automatic choice.

Training ends when the model stops improving: the global acceptance, averaged over the last
``PLATEAU_LOOPS`` loops, has gained less than ``PLATEAU_GAIN`` on the ``PLATEAU_LOOPS`` before
(or is above ``GOOD_ACCEPTANCE``) and the model covers the target: the Pareto k-hat of
the importance weights ``p/q`` of the global proposals of the last ``PLATEAU_LOOPS`` loops
(`LoopRecord.pareto_k`) is at most ``TRAINED_PARETO_K`` (a flow trained on draws that have
not yet reached a tail is too light there, and its weights say so while its acceptance can
look settled; 0.6 keeps a margin below PSIS's 0.7 for the noise of a k-hat from a few
thousand weights of a flow that changes between loops),
after at least ``MIN_TRAINING_LOOPS`` loops and at most
``max_training_loops``. Without a global model training only adapts the kernel and ends after
``MIN_TRAINING_LOOPS``.

Where the local kernel runs: with ``local_in_latent_space=None`` and a flow model, in the
flow's latent space (the trained flow as a preconditioner: it whitens the draws' covariance
and bends along what it has learned of the target's shape) from the first loop after a
training update that was kept, and in ``x``-space before (an untrained flow has nothing to
offer). The switch happens in a training loop, where the kernel's adaptation restarts for
the new space; production keeps the last training loop's choice.

Production ends when every coordinate has a bulk ESS of at least ``target_ess`` and an
R-hat of at most ``target_rhat`` (both from ArviZ), after at least ``MIN_PRODUCTION_LOOPS``
and at most ``max_production_loops``. The check runs after loops whose draw count has grown
by ``CHECK_GROWTH`` since the last check (so its cost stays a small share of the run) on at
most ``MAX_CHECK_DRAWS`` evenly thinned draws per chain: thinning can only lower the ESS
estimate, so the rule is conservative.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from flowmc_like.config import SamplerConfig
from flowmc_like.exporters import arviz as arviz_export
from flowmc_like.records import LoopRecord

__all__ = [
    "CHECK_GROWTH",
    "GOOD_ACCEPTANCE",
    "MAX_CHECK_DRAWS",
    "MAX_PARETO_K",
    "TRAINED_PARETO_K",
    "MIN_PRODUCTION_LOOPS",
    "MIN_TRAINING_LOOPS",
    "WARM_MIN_TRAINING_LOOPS",
    "WARM_RECENT_LOOPS",
    "WARM_RECOVERY",
    "PLATEAU_GAIN",
    "PLATEAU_LOOPS",
    "Convergence",
    "Decision",
    "convergence",
    "is_check_due",
    "latent_decision",
    "production_decision",
    "training_decision",
]

MIN_TRAINING_LOOPS = 20
WARM_MIN_TRAINING_LOOPS = 5
WARM_RECENT_LOOPS = 3
WARM_RECOVERY = 0.9
PLATEAU_LOOPS = 5
PLATEAU_GAIN = 0.02
GOOD_ACCEPTANCE = 0.9
MAX_PARETO_K = 0.7
TRAINED_PARETO_K = 0.6
MIN_PRODUCTION_LOOPS = 5
CHECK_GROWTH = 1.25
MAX_CHECK_DRAWS = 500


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the run does after a loop.

    Attributes:
        ends_phase: the loop was the last of its phase (training, or the whole run).
        reason: one line saying why, for the history and the log.
    """

    ends_phase: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class Convergence:
    """Per-coordinate convergence of draws ``(n_chains, n_draws, n_dim)``.

    Attributes:
        min_ess: the smallest bulk ESS over coordinates (ArviZ, rank-normalised).
        max_rhat: the largest R-hat over coordinates (ArviZ, rank-normalised split R-hat).
        n_draws_used: draws per chain the estimate used (after even thinning).
    """

    min_ess: float
    max_rhat: float
    n_draws_used: int


def training_decision(
    config: SamplerConfig,
    records: Sequence[LoopRecord],
    has_global: bool,
    warm_acceptance: float | None = None,
) -> Decision:
    """Whether training ends after the last of ``records`` (all of them training loops).

    A warm-started run (`flowmc_like.Sampler.run` with ``warm_start``; ``warm_acceptance``
    is then the earlier run's production global acceptance, NaN if it had none) starts
    from a trained model and an adapted kernel, so it needs ``WARM_MIN_TRAINING_LOOPS``
    loops at least instead of ``MIN_TRAINING_LOOPS``, and it ends as soon as the global
    acceptance of its last ``WARM_RECENT_LOOPS`` loops is back to ``WARM_RECOVERY`` of the
    earlier run's (the model does on the new target what it did on the old one) and the
    model covers the target; otherwise the plateau and coverage checks decide as for a cold
    start.
    """
    n_done = len(records)
    is_warm_start = warm_acceptance is not None
    min_loops = WARM_MIN_TRAINING_LOOPS if is_warm_start else MIN_TRAINING_LOOPS
    if config.n_training_loops is not None:
        if n_done >= config.n_training_loops:
            return Decision(True, f"training ends: n_training_loops={n_done} as set")
        return Decision(False, f"training: loop {n_done} of {config.n_training_loops} as set")
    if n_done >= config.max_training_loops:
        return Decision(
            True, f"training ends: max_training_loops={config.max_training_loops} reached"
        )
    if n_done < min_loops:
        start = "warm start, " if is_warm_start else ""
        return Decision(False, f"training: loop {n_done}, {start}at least {min_loops}")
    if not has_global:
        return Decision(True, f"training ends: the kernel adapted for {n_done} loops")
    acceptance = np.array([record.global_acceptance for record in records])
    k_hat = records[-1].pareto_k
    if is_warm_start and np.isfinite(warm_acceptance) and k_hat <= TRAINED_PARETO_K:
        recovered = float(np.mean(acceptance[-WARM_RECENT_LOOPS:]))
        if recovered >= WARM_RECOVERY * warm_acceptance:
            return Decision(
                True,
                f"training ends: global acceptance {recovered:.2f} is back to "
                f"{WARM_RECOVERY:.0%} of the warm start's {warm_acceptance:.2f}",
            )
    recent = float(np.mean(acceptance[-PLATEAU_LOOPS:]))
    if n_done <= PLATEAU_LOOPS and recent < GOOD_ACCEPTANCE:  # (a short warm start)
        return Decision(
            False, f"training: {n_done} loops are too few to see the acceptance level off"
        )
    # the PLATEAU_LOOPS before the recent ones (fewer after a short warm start)
    before = float(np.mean(acceptance[max(n_done - 2 * PLATEAU_LOOPS, 0) : -PLATEAU_LOOPS]))
    if recent < GOOD_ACCEPTANCE and recent - before >= PLATEAU_GAIN:
        return Decision(
            False, f"training: global acceptance still rising ({before:.2f} -> {recent:.2f})"
        )
    if k_hat > TRAINED_PARETO_K:
        return Decision(
            False,
            f"training: the model still misses target mass (Pareto k {k_hat:.2f} > "
            f"{TRAINED_PARETO_K} at global acceptance {recent:.2f})",
        )
    if recent >= GOOD_ACCEPTANCE:
        return Decision(True, f"training ends: global acceptance {recent:.2f} is high")
    return Decision(
        True,
        f"training ends: global acceptance levelled off ({before:.2f} -> {recent:.2f} over "
        f"the last {2 * PLATEAU_LOOPS} loops)",
    )


def latent_decision(
    mode: str, records: Sequence[LoopRecord], is_training: bool = True, starts_latent: bool = False
) -> tuple[bool, bool]:
    """Whether the next loop's local kernel runs in the flow's space, and whether it switches.

    The switch happens only in a training loop (the kernel must adapt to the new space before
    its params freeze); production keeps the last training loop's choice.

    Args:
        mode: ``"x"``, ``"latent"`` or ``"auto"`` (`flowmc_like.programs.latent_mode`).
        records: the finished loops.
        is_training: the next loop is a training loop.
        starts_latent: the model was trained before the run (a warm start whose earlier
            run ended in the latent space): latent from the first loop.

    Returns:
        ``(in_latent, switches)``: ``switches`` is true for the first latent loop of an
        automatic run (the kernel's adaptation then restarts).
    """
    if mode != "auto":
        return mode == "latent", False
    if not is_training:
        return bool(records) and records[-1].in_latent_space, False
    if starts_latent:
        return True, False
    in_latent = any(record.is_training and not record.training_discarded for record in records)
    was_latent = bool(records) and records[-1].in_latent_space
    return in_latent, in_latent and not was_latent


def is_check_due(config: SamplerConfig, records: Sequence[LoopRecord]) -> bool:
    """Whether automatic production checks convergence after the last of ``records``.

    ``records`` are the production loops so far; a loop was checked when its ``min_ess`` is
    finite. Never with a fixed ``n_production_loops`` (the end-of-run diagnostics still run).
    """
    if config.n_production_loops is not None:
        return False
    n_done = len(records)
    if n_done < MIN_PRODUCTION_LOOPS:
        return False
    if n_done >= config.max_production_loops:
        return True
    checked = [i + 1 for i, record in enumerate(records[:-1]) if np.isfinite(record.min_ess)]
    return not checked or n_done >= math.ceil(CHECK_GROWTH * checked[-1])


def production_decision(
    config: SamplerConfig, n_done: int, checked: Convergence | None
) -> Decision:
    """Whether the run ends after ``n_done`` production loops (``checked``: this loop's check)."""
    if config.n_production_loops is not None:
        if n_done >= config.n_production_loops:
            return Decision(True, f"run ends: n_production_loops={n_done} as set")
        return Decision(False, f"production: loop {n_done} of {config.n_production_loops} as set")
    if checked is not None:
        is_converged = (
            checked.min_ess >= config.target_ess and checked.max_rhat <= config.target_rhat
        )
        summary = f"min ESS {checked.min_ess:.0f}, max R-hat {checked.max_rhat:.3f}"
        if is_converged:
            return Decision(
                True,
                f"run ends: {summary} meet target_ess={config.target_ess:g} and "
                f"target_rhat={config.target_rhat:g}",
            )
        if n_done >= config.max_production_loops:
            return Decision(
                True,
                f"run ends: max_production_loops={config.max_production_loops} reached with "
                f"{summary} (targets {config.target_ess:g}, {config.target_rhat:g})",
            )
        return Decision(False, f"production: {summary}, not yet at the targets")
    return Decision(False, f"production: loop {n_done}")  # `is_check_due` at the cap


def convergence(draws: np.ndarray, max_draws: int = MAX_CHECK_DRAWS) -> Convergence:
    """Bulk ESS and R-hat of every coordinate of ``draws`` ``(n_chains, n_draws, n_dim)``.

    At most ``max_draws`` draws per chain are used, evenly thinned from the end backwards
    (the last draw is always kept); the ESS of thinned draws is not above that of all.
    Needs at least 4 draws per chain (NaN otherwise).
    """
    draws = np.asarray(draws)
    n_draws = draws.shape[1]
    stride = max(1, math.ceil(n_draws / max_draws))
    kept = draws[:, ::-1][:, ::stride][:, ::-1]
    if kept.shape[1] < 4:
        return Convergence(math.nan, math.nan, int(kept.shape[1]))
    ess, rhat = arviz_export.ess_bulk_and_rhat(kept)
    return Convergence(float(np.min(ess)), float(np.max(rhat)), int(kept.shape[1]))
