"""Runs whose length the sampler decides: frozen production, decisions recorded, resumable."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like import schedule
from flowmc_like.driver import drive
from flowmc_like.records import RunProgress

N_CHAINS, N_DIM = 16, 2


def log_prob(x):
    return -0.5 * jnp.sum((x / jnp.array([1.0, 2.0])) ** 2)


def automatic_sampler(**kwargs):
    settings = dict(n_local_steps=10, n_global_steps=10, target_ess=400, progress_bar=False)
    return fm.Sampler(log_prob, n_dim=N_DIM, n_chains=N_CHAINS, **{**settings, **kwargs})


def start():
    return jax.random.normal(jax.random.key(1), (N_CHAINS, N_DIM))


class ParamsRecorder:
    """Keeps the kernel and model params the next loop starts from, after every loop."""

    def __init__(self):
        self.loops = []

    def loop_done(self, loop_index, output, state, progress):
        params = (state.frozen_params, state.train_state.params)
        self.loops.append((output.record.is_training, jax.device_get(params)))


@pytest.fixture(scope="module")
def recorded_and_result():
    """One automatic run: its loops (with the params after each) and its result."""
    sampler = automatic_sampler()
    prepared = sampler._prepare(jax.random.key(0), start())
    recorder = ParamsRecorder()
    progress = RunProgress()
    result = drive(
        prepared, sampler.config, prepared.initial_state, progress, recorder, None,
        time.perf_counter(),
    )  # fmt: skip
    return progress, recorder, result


@pytest.fixture(scope="module")
def recorded_run(recorded_and_result):
    return recorded_and_result[:2]


def test_the_run_chooses_both_lengths_and_says_why(recorded_run):
    progress, _ = recorded_run
    records = [output.record for output in progress.outputs]
    n_training = sum(record.is_training for record in records)
    assert schedule.MIN_TRAINING_LOOPS <= n_training <= 50
    assert records[n_training - 1].ends_phase
    assert records[n_training - 1].decision.startswith("training ends")
    assert records[-1].ends_phase and records[-1].decision.startswith("run ends")
    assert records[-1].min_ess >= 400 and records[-1].max_rhat <= 1.01
    # training ended only once the flow covered the target (the check the schedule makes);
    # production's k-hat, over ever more weights of the frozen flow, is not a decision input
    assert records[n_training - 1].pareto_k <= schedule.TRAINED_PARETO_K
    assert sum(record.ends_phase for record in records) == 2


def test_the_run_chooses_the_latent_space_once_and_keeps_it_in_production(recorded_run):
    progress, _ = recorded_run
    records = [output.record for output in progress.outputs]
    in_latent = [record.in_latent_space for record in records]
    # x-space until the flow has trained once, the flow's space from then on, never back
    assert not in_latent[0] and all(in_latent[1:])
    production = [record for record in records if not record.is_training]
    assert all(record.in_latent_space == production[0].in_latent_space for record in production)


def test_an_explicit_choice_of_space_wins():
    result = automatic_sampler(
        local_in_latent_space=False, n_training_loops=2, n_production_loops=1
    ).run(jax.random.key(0), start())
    assert not result.history.in_latent_space.any()


def test_production_is_a_fixed_markov_chain(recorded_run):
    """Nothing adapts in production: kernel and model params stay exactly as trained."""
    _, recorder = recorded_run
    n_training = sum(is_training for is_training, _ in recorder.loops)
    # the first production loop freezes the kernel's adapted params; from then on nothing moves
    frozen = recorder.loops[n_training][1]
    for _, params in recorder.loops[n_training + 1 :]:
        for a, b in zip(jax.tree.leaves(frozen), jax.tree.leaves(params), strict=True):
            np.testing.assert_array_equal(a, b)
    assert len(recorder.loops) > n_training + 1


@pytest.fixture(scope="module")
def automatic_result(recorded_and_result):
    return recorded_and_result[2]


def test_the_result_reports_the_decisions(automatic_result):
    result = automatic_result
    verdict = result.diagnostics
    assert verdict.is_trusted, verdict.warnings
    assert verdict.run_ended.startswith("run ends")
    assert verdict.n_production_loops == int(np.sum(~result.history.is_training))
    assert result.history.decision.shape == result.history.is_training.shape
    production_steps = result.history.step_size[~result.history.is_training]
    assert np.all(production_steps == production_steps[0])


def test_an_unconverged_run_warns_and_says_what_to_try():
    sampler = automatic_sampler(n_training_loops=1, max_production_loops=5, target_ess=1e6)
    with pytest.warns(RuntimeWarning, match="did not reach target_ess=1e"):
        result = sampler.run(jax.random.key(0), start())
    assert not result.diagnostics.is_trusted
    assert result.diagnostics.run_ended.startswith("run ends: max_production_loops=5 reached")


def test_a_warm_start_trains_fewer_loops_and_says_so(automatic_result):
    cold = automatic_result
    warm = automatic_sampler().run(jax.random.key(1), warm_start=cold)  # no compile either
    n_cold, n_warm = cold.history.is_training.sum(), warm.history.is_training.sum()
    assert n_cold >= schedule.MIN_TRAINING_LOOPS
    assert schedule.WARM_MIN_TRAINING_LOOPS <= n_warm < schedule.MIN_TRAINING_LOOPS
    assert "warm start" in warm.history.decision[0]
    assert warm.timings["compile"] < 0.05
    assert warm.diagnostics.is_trusted, warm.diagnostics.warnings
