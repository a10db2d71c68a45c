"""The run's own decisions: when training ends, when production ends, what the verdict says."""

import dataclasses
import itertools
import math

import numpy as np
import pytest

from flowmc_like import schedule
from flowmc_like.config import SamplerConfig
from flowmc_like.diagnostics import diagnose
from flowmc_like.records import LoopRecord


def record(global_acceptance=0.5, is_training=True, **fields):
    base = LoopRecord(
        is_training=is_training,
        loss=np.zeros(2),
        local_acceptance=0.6,
        global_acceptance=global_acceptance,
        step_size=0.1,
        training_discarded=False,
        local_nonfinite=0,
        global_nonfinite=0,
    )
    return dataclasses.replace(base, **fields)


def training(acceptances):
    return [record(a) for a in acceptances]


AUTO = SamplerConfig()


def test_a_set_training_count_wins():
    config = SamplerConfig(n_training_loops=3)
    assert not schedule.training_decision(config, training([0.0, 0.0]), True).ends_phase
    decision = schedule.training_decision(config, training([0.0] * 3), True)
    assert decision.ends_phase and "as set" in decision.reason


def test_training_runs_at_least_the_minimum():
    flat = training([0.5] * (schedule.MIN_TRAINING_LOOPS - 1))
    assert not schedule.training_decision(AUTO, flat, True).ends_phase


def test_training_ends_when_the_acceptance_levels_off():
    n_rising = schedule.MIN_TRAINING_LOOPS - 2 * schedule.PLATEAU_LOOPS
    flat = training([0.1] * n_rising + [0.50, 0.51] * schedule.PLATEAU_LOOPS)
    decision = schedule.training_decision(AUTO, flat, True)
    assert decision.ends_phase and "levelled off" in decision.reason


def test_training_goes_on_while_the_flow_misses_target_mass():
    """A settled acceptance is not enough: the flow's k-hat must say it covers the target."""
    flat = training([0.75] * schedule.MIN_TRAINING_LOOPS)
    light_tailed = [*flat[:-1], dataclasses.replace(flat[-1], pareto_k=0.8)]
    decision = schedule.training_decision(AUTO, light_tailed, True)
    assert not decision.ends_phase and "misses target mass" in decision.reason
    covered = [*flat[:-1], dataclasses.replace(flat[-1], pareto_k=0.4)]
    assert schedule.training_decision(AUTO, covered, True).ends_phase
    # at the cap training ends whatever k-hat says; the verdict then warns
    config = SamplerConfig(max_training_loops=schedule.MIN_TRAINING_LOOPS)
    assert schedule.training_decision(config, light_tailed, True).ends_phase


def test_training_goes_on_while_the_acceptance_rises():
    rising = training(np.linspace(0.05, 0.6, schedule.MIN_TRAINING_LOOPS))
    decision = schedule.training_decision(AUTO, rising, True)
    assert not decision.ends_phase and "rising" in decision.reason


def test_training_ends_at_a_high_acceptance_or_the_cap():
    high = training([0.95] * schedule.MIN_TRAINING_LOOPS)
    assert schedule.training_decision(AUTO, high, True).ends_phase
    config = SamplerConfig(max_training_loops=12)
    rising = training(np.linspace(0.0, 0.8, 12))
    decision = schedule.training_decision(config, rising, True)
    assert decision.ends_phase and "max_training_loops=12" in decision.reason


def test_the_local_kernel_moves_to_the_latent_space_once_the_flow_has_trained():
    assert schedule.latent_decision("auto", []) == (False, False)
    first = training([0.1])
    assert schedule.latent_decision("auto", first) == (True, True)
    switched = [dataclasses.replace(record, in_latent_space=True) for record in training([0.1] * 2)]
    assert schedule.latent_decision("auto", switched) == (True, False)
    discarded = [dataclasses.replace(record, training_discarded=True) for record in first]
    assert schedule.latent_decision("auto", discarded) == (False, False)
    # production keeps the last training loop's choice: it never switches untuned
    assert schedule.latent_decision("auto", first, is_training=False) == (False, False)
    assert schedule.latent_decision("auto", switched, is_training=False) == (True, False)


def test_a_set_latent_choice_wins():
    loops = training([0.5] * 3)
    assert schedule.latent_decision("x", loops) == (False, False)
    assert schedule.latent_decision("latent", []) == (True, False)


def test_without_a_model_training_only_adapts_the_kernel():
    loops = training([math.nan] * schedule.MIN_TRAINING_LOOPS)
    assert schedule.training_decision(AUTO, loops, False).ends_phase


def test_convergence_checks_become_rarer_as_draws_grow():
    due = []
    records = []
    for _ in range(60):
        records.append(record(is_training=False))
        is_due = schedule.is_check_due(AUTO, records)
        if is_due:
            records[-1] = dataclasses.replace(records[-1], min_ess=1.0, max_rhat=2.0)
        due.append(is_due)
    checked = [i + 1 for i, is_due in enumerate(due) if is_due]
    assert checked[0] == schedule.MIN_PRODUCTION_LOOPS
    for before, after in itertools.pairwise(checked):
        assert after == max(before + 1, math.ceil(schedule.CHECK_GROWTH * before))
    assert len(checked) < 15
    assert not schedule.is_check_due(SamplerConfig(n_production_loops=50), records)


def test_production_ends_at_the_targets_or_the_cap():
    good = schedule.Convergence(min_ess=1500.0, max_rhat=1.002, n_draws_used=100)
    poor = schedule.Convergence(min_ess=200.0, max_rhat=1.002, n_draws_used=100)
    assert schedule.production_decision(AUTO, 5, good).ends_phase
    assert not schedule.production_decision(AUTO, 5, poor).ends_phase
    capped = schedule.production_decision(AUTO, AUTO.max_production_loops, poor)
    assert capped.ends_phase and "max_production_loops" in capped.reason
    unstable = schedule.Convergence(min_ess=1500.0, max_rhat=1.05, n_draws_used=100)
    assert not schedule.production_decision(AUTO, 5, unstable).ends_phase


def test_convergence_of_independent_and_of_disagreeing_chains():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(8, 2000, 3))
    checked = schedule.convergence(iid)
    assert checked.n_draws_used == schedule.MAX_CHECK_DRAWS
    assert 0.7 * 8 * 500 < checked.min_ess < 1.3 * 8 * 500
    assert checked.max_rhat < 1.01
    apart = iid + np.arange(8)[:, None, None]
    assert schedule.convergence(apart).max_rhat > 1.5


def test_the_verdict_names_each_failed_check():
    rng = np.random.default_rng(1)
    good_draws = rng.normal(size=(8, 400, 2))
    loops = [record(0.5, ends_phase=True)] + [record(0.5, is_training=False)] * 4
    verdict = diagnose(AUTO, loops, good_draws, has_global=True)
    assert verdict.is_trusted, verdict.warnings
    stuck = good_draws + np.arange(8)[:, None, None]
    rejected = [record(0.001, is_training=False, global_nonfinite=10_000)] * 4
    verdict = diagnose(AUTO, loops[:1] + rejected, stuck, has_global=True)
    text = " | ".join(verdict.warnings)
    assert not verdict.is_trusted
    assert "R-hat" in text and "global acceptance" in text and "NaN or infinite" in text
    assert verdict.n_training_loops == 1 and verdict.n_production_loops == 4


def test_the_verdict_warns_of_a_light_flow_unless_training_checked_its_coverage():
    draws = np.random.default_rng(2).normal(size=(8, 400, 2))
    production = [record(0.5, is_training=False, pareto_k=0.9)] * 4
    unchecked = [record(0.5, ends_phase=True, pareto_k=0.8), *production]
    text = " | ".join(diagnose(AUTO, unchecked, draws, has_global=True).warnings)
    assert "Pareto k" in text and "0.90" in text
    checked = [record(0.5, ends_phase=True, pareto_k=0.5), *production]
    assert diagnose(AUTO, checked, draws, has_global=True).is_trusted
    assert diagnose(AUTO, checked, draws, has_global=True).pareto_k == 0.9


@pytest.mark.parametrize("n_draws", [2, 3])
def test_too_few_draws_give_no_estimate(n_draws):
    checked = schedule.convergence(np.zeros((4, n_draws, 2)))
    assert math.isnan(checked.min_ess) and math.isnan(checked.max_rhat)


def test_pareto_k_tells_a_light_tailed_proposal_from_a_heavy_one():
    """k-hat of p/q: a proposal wider than the target gives bounded weights (k < 0.5), a
    narrower one weights with a heavy tail (k > 0.7), the case the training rule waits out.

    For a N(0, 1) target and a N(0, s^2) proposal with s < 1 the weights' tail index gives
    k = 1 - s^2: 0.91 for s = 0.3.
    """
    from flowmc_like.exporters.arviz import pareto_k

    def log_weights(proposal_sd):
        x = np.random.default_rng(0).normal(0.0, proposal_sd, size=4000)
        return -0.5 * x**2 - (-0.5 * (x / proposal_sd) ** 2 - np.log(proposal_sd))

    assert pareto_k(log_weights(1.5)) < 0.5
    assert pareto_k(log_weights(0.3)) > 0.7
    assert np.isnan(pareto_k(np.full(10, -np.inf)))


def test_a_warm_start_ends_once_the_acceptance_is_back_to_the_earlier_runs():
    rising = [0.0, 0.25, 0.45, 0.6, 0.64, 0.66]  # the earlier run reached 0.7 in production

    def training(acceptances):
        return [record(a, pareto_k=0.3) for a in acceptances]

    for n_done in range(1, schedule.WARM_MIN_TRAINING_LOOPS):
        decision = schedule.training_decision(AUTO, training(rising[:n_done]), True, 0.7)
        assert not decision.ends_phase and "warm start, at least" in decision.reason
    early = schedule.training_decision(AUTO, training(rising[:5]), True, 0.7)
    assert not early.ends_phase  # last three 0.56 < 0.9 * 0.7
    decision = schedule.training_decision(AUTO, training(rising), True, 0.7)
    assert decision.ends_phase and "back to 90% of the warm start's 0.70" in decision.reason
    # the model does not cover the new target yet: training goes on
    light = [*training(rising[:-1]), record(0.66, pareto_k=0.9)]
    assert not schedule.training_decision(AUTO, light, True, 0.7).ends_phase
    # a cold run with the same loops trains at least MIN_TRAINING_LOOPS
    assert not schedule.training_decision(AUTO, training(rising), True).ends_phase


def test_a_short_warm_start_never_claims_a_plateau_from_too_few_loops():
    flat = training([0.3] * schedule.PLATEAU_LOOPS)
    decision = schedule.training_decision(AUTO, flat, True, float("nan"))  # no reference
    assert not decision.ends_phase and "too few" in decision.reason
    longer = training([0.3] * (schedule.PLATEAU_LOOPS + 1))
    assert schedule.training_decision(AUTO, longer, True, float("nan")).ends_phase
