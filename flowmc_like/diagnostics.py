"""Whether a run's draws can be trusted, by its own measures, and what to try if not.

`diagnose` reads the production draws and the loops' records after a run and returns a
`RunDiagnostics`: how long each phase ran and why it ended, the worst coordinate's bulk ESS
and R-hat, the global acceptance, the share of proposals rejected for a non-finite value,
and one warning per failed check naming what to try. The `Sampler` issues the warnings as a
`RuntimeWarning` and stores the diagnostics in ``result.diagnostics``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from flowmc_like import schedule
from flowmc_like.config import SamplerConfig
from flowmc_like.records import LoopRecord

__all__ = [
    "MIN_GLOBAL_ACCEPTANCE",
    "MIN_TRUSTED_ESS",
    "MAX_DIVERGENT_SHARE",
    "MAX_NONFINITE_SHARE",
    "RunDiagnostics",
    "diagnose",
]

MIN_TRUSTED_ESS = 100.0
MIN_GLOBAL_ACCEPTANCE = 0.01
MAX_NONFINITE_SHARE = 0.05
MAX_DIVERGENT_SHARE = 0.01


@dataclasses.dataclass(frozen=True)
class RunDiagnostics:
    """A run's verdict on itself.

    Attributes:
        n_training_loops: training loops the run took.
        n_production_loops: production loops the run took.
        training_ended: why training ended (the last training loop's decision).
        run_ended: why the run ended (the last loop's decision).
        min_ess: the smallest bulk ESS over coordinates of the production draws (ArviZ; on
            at most ``schedule.MAX_CHECK_DRAWS`` evenly thinned draws per chain).
        max_rhat: the largest rank-normalised split R-hat over coordinates.
        global_acceptance: mean global acceptance in production (NaN without a model).
        nonfinite_share: share of production proposals rejected for a non-finite value.
        pareto_k: the Pareto k-hat of the importance weights of the global proposals of
            all production loops (`LoopRecord.pareto_k`; NaN without a model); above
            ``schedule.MAX_PARETO_K`` the model may miss target mass (a tail, a mode), which
            the chains' R-hat cannot see. It warns when training did not end with the
            flow's k-hat at most ``schedule.TRAINED_PARETO_K`` (the cap was reached, or the
            count was set).
        round_trips: with tempering, replica round trips between the coldest and hottest
            levels in production (0 without tempering); none warns: what the hot replicas
            find cannot reach the chains.
        barrier: with tempering, the communication barrier ``Lambda``, the sum over
            neighbour pairs of the production exchange rejection rates (NaN without
            tempering); the ladder needs about ``2 * Lambda + 1`` levels for replicas to
            travel it freely.
        warnings: one message per failed check, each naming what to try; empty if none.
        n_divergent: production draws whose local step diverged (`HMC` or `MALA`: energy
            error above `flowmc_like.phases.DIVERGENCE_THRESHOLD`). In a run without a
            global model, above ``MAX_DIVERGENT_SHARE`` of the local draws it warns: the
            kernel cannot follow the target's curvature there (a funnel's neck), so that
            region is undersampled. With a global model it only counts them: in the flow's
            latent space the flow's tails make divergent steps common in runs that are
            right, and the count does not separate right runs from wrong ones
            (``python -m benchmarks.divergences``).
        choices: what the run chose by itself before its loops, one sentence each: the
            model's variational pre-training (steps, annealing, the acceptance it reached,
            seconds) and a symmetry found in the target.
    """

    n_training_loops: int
    n_production_loops: int
    training_ended: str
    run_ended: str
    min_ess: float
    max_rhat: float
    global_acceptance: float
    nonfinite_share: float
    pareto_k: float
    warnings: tuple[str, ...]
    round_trips: int = 0
    barrier: float = float("nan")
    n_divergent: int = 0
    choices: tuple[str, ...] = ()

    @property
    def is_trusted(self) -> bool:
        """True when every check passed."""
        return not self.warnings


def diagnose(
    config: SamplerConfig,
    records: Sequence[LoopRecord],
    production_draws: np.ndarray,
    has_global: bool,
    diverging: np.ndarray | None = None,
    is_local: np.ndarray | None = None,
) -> RunDiagnostics:
    """The `RunDiagnostics` of a finished run.

    Args:
        config: the run's settings.
        records: every loop's record, training loops first.
        production_draws: ``(n_chains, n_draws, n_dim)`` flat production draws.
        has_global: the run made global moves.
        diverging: ``(n_chains, n_draws)`` bool, production draws whose step diverged.
        is_local: ``(n_draws,)`` bool, production draws made by local steps.
    """
    training = [record for record in records if record.is_training]
    production = [record for record in records if not record.is_training]
    last = production[-1] if production else None
    if last is not None and np.isfinite(last.min_ess):
        min_ess, max_rhat = last.min_ess, last.max_rhat
    else:
        checked = schedule.convergence(production_draws)
        min_ess, max_rhat = checked.min_ess, checked.max_rhat
    global_acceptance = (
        float(np.mean([record.global_acceptance for record in production]))
        if has_global and production
        else float("nan")
    )
    n_chains = production_draws.shape[0]
    n_proposals = len(production) * n_chains * (config.n_local_steps + config.n_global_steps)
    n_nonfinite = sum(record.local_nonfinite + record.global_nonfinite for record in production)
    nonfinite_share = n_nonfinite / n_proposals if n_proposals else 0.0
    pareto_k = last.pareto_k if last is not None else float("nan")
    messages = _warnings(config, min_ess, max_rhat, global_acceptance, nonfinite_share)
    # Training that ended with the flow's k-hat at most TRAINED_PARETO_K has checked the
    # flow's coverage on fresh proposals; a higher production k-hat is then mostly the noise
    # of the estimate (a crescent or a mixture with its local moves mixing fine). Without that
    # check (the cap reached, or a set count) the production k-hat is the only evidence.
    is_coverage_checked = bool(training) and training[-1].pareto_k <= schedule.TRAINED_PARETO_K
    if pareto_k > schedule.MAX_PARETO_K and not is_coverage_checked:
        messages.append(
            f"the Pareto k of the flow's importance weights is {pareto_k:.2f} (above "
            f"{schedule.MAX_PARETO_K}): the flow misses part of the target (a tail or a "
            "mode), so global moves rarely go there and the draws may underweight it. Train "
            "longer (max_training_loops), or use fm.HMC() for curved, heavy-tailed targets"
        )
    n_divergent = 0 if diverging is None else int(np.sum(diverging))
    n_local = 0 if is_local is None else int(np.sum(is_local)) * production_draws.shape[0]
    # With a global model, local steps in the flow's latent space diverge where the flow's
    # tails extrapolate, in right runs as in wrong ones (benchmarks.divergences): counted,
    # not warned about. Local-only runs warn as Stan does.
    if not has_global and n_local and n_divergent > MAX_DIVERGENT_SHARE * n_local:
        messages.append(
            f"{n_divergent} of {n_local} production local steps diverged (energy error "
            "above 1000): the kernel cannot follow the target's curvature somewhere (a "
            "funnel's neck, a hard boundary), so that region is undersampled. Look where "
            "sample_stats.diverging is true; reparametrise, or train longer so the flow "
            "preconditions the local steps (local_in_latent_space)"
        )
    round_trips, barrier = 0, float("nan")
    if production and production[0].exchange_rate.size:
        round_trips = int(sum(record.round_trips for record in production))
        rates = np.nanmean([record.exchange_rate for record in production], axis=0)
        barrier = float(np.sum(1.0 - rates))
        if round_trips == 0:
            messages.append(
                "the tempered replicas made no round trip between the coldest and the "
                f"hottest of the {config.n_temperatures} temperatures in production "
                f"(communication barrier {barrier:.1f}), so what the hot replicas find may "
                "not reach the chains. Raise n_temperatures (to about "
                f"{int(np.ceil(2 * barrier + 1))}) or the number of production loops"
            )
    return RunDiagnostics(
        n_training_loops=len(training),
        n_production_loops=len(production),
        training_ended=training[-1].decision if training else "",
        run_ended=records[-1].decision if records else "",
        min_ess=float(min_ess),
        max_rhat=float(max_rhat),
        global_acceptance=global_acceptance,
        nonfinite_share=float(nonfinite_share),
        pareto_k=pareto_k,
        warnings=tuple(messages),
        round_trips=round_trips,
        barrier=barrier,
        n_divergent=n_divergent,
    )


def _warnings(
    config: SamplerConfig,
    min_ess: float,
    max_rhat: float,
    global_acceptance: float,
    nonfinite_share: float,
) -> list[str]:
    messages = []
    if not max_rhat <= config.target_rhat:
        messages.append(
            f"max R-hat {max_rhat:.3f} is above target_rhat={config.target_rhat:g}: the chains "
            "disagree, so the draws may miss or misweight part of the posterior. Try more "
            "training (max_training_loops or n_training_loops), more production "
            "(max_production_loops), or fm.HMC() for curved ones"
        )
    if not min_ess >= min(MIN_TRUSTED_ESS, config.target_ess):
        messages.append(
            f"min bulk ESS {min_ess:.0f} is below {min(MIN_TRUSTED_ESS, config.target_ess):g}: "
            "too few effective draws for reliable estimates. Run longer "
            "(max_production_loops or n_production_loops) or train longer"
        )
    elif config.n_production_loops is None and min_ess < config.target_ess:
        messages.append(
            f"min bulk ESS {min_ess:.0f} did not reach target_ess={config.target_ess:g} within "
            f"max_production_loops={config.max_production_loops}; raise max_production_loops"
        )
    if global_acceptance < MIN_GLOBAL_ACCEPTANCE:
        messages.append(
            f"the global acceptance is {global_acceptance:.3f}: the flow's proposals are almost "
            "never accepted, so modes that local moves cannot cross are not mixed. Train "
            "longer (max_training_loops) on more draws (n_window_loops, n_max_examples), or "
            "give the flow more layers (RealNVP(n_layers=...))"
        )
    if nonfinite_share > MAX_NONFINITE_SHARE:
        messages.append(
            f"{nonfinite_share:.1%} of the production proposals met a NaN or infinite log "
            "density and were rejected: check log_prob at the edges of its support (or "
            "sample an unconstrained parametrisation)"
        )
    return messages
