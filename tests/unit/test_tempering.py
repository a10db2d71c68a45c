"""The tempering move's exactness by enumeration, and its pieces (ladder, exchanges, targets)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.tempering import (
    TemperedTarget,
    adapted_ladder,
    exchange_probabilities,
    exchange_source,
    init_ladder,
    tempered_log_prob,
)

# A 3-state space with an unnormalised log density split into prior and likelihood.
LOG_PRIOR = np.array([-0.2, -1.0, -0.5])
LOG_LIKELIHOOD = np.array([0.0, -3.0, 1.2])
BETAS = np.array([1.0, 0.3])


def tempered_marginal(beta: float) -> np.ndarray:
    weights = np.exp(LOG_PRIOR + beta * LOG_LIKELIHOOD)
    return weights / weights.sum()


def local_matrix(beta: float) -> np.ndarray:
    """Metropolis with a uniform proposal over the other states, exact for one level."""
    log_p = LOG_PRIOR + beta * LOG_LIKELIHOOD
    n = len(log_p)
    matrix = np.zeros((n, n))
    for i, j in itertools.product(range(n), range(n)):
        if i != j:
            matrix[i, j] = min(1.0, np.exp(log_p[j] - log_p[i])) / (n - 1)
    matrix[np.diag_indices(n)] = 1 - matrix.sum(1)
    return matrix


def exchange_matrix(flip_sign: bool = False) -> np.ndarray:
    """The exchange move on the joint space (x_cold, x_hot), from the library's probabilities."""
    n = len(LOG_PRIOR)
    states = list(itertools.product(range(n), range(n)))
    matrix = np.zeros((len(states), len(states)))
    for index, (cold, hot) in enumerate(states):
        log_likelihood = jnp.asarray([LOG_LIKELIHOOD[cold], LOG_LIKELIHOOD[hot]])
        betas = jnp.asarray(BETAS[::-1] if flip_sign else BETAS)
        probability = float(exchange_probabilities(log_likelihood, betas)[0])
        matrix[index, states.index((hot, cold))] += probability
        matrix[index, index] += 1 - probability
    return matrix


def joint_transition(flip_sign: bool = False) -> np.ndarray:
    """Local moves at both levels, then an exchange."""
    local = np.kron(local_matrix(BETAS[0]), local_matrix(BETAS[1]))
    return local @ exchange_matrix(flip_sign)


def stationary(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eig(matrix.T)
    vector = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    return vector / vector.sum()


def test_exchange_leaves_the_product_of_tempered_marginals_invariant() -> None:
    with jax.enable_x64(True):
        expected = np.kron(tempered_marginal(BETAS[0]), tempered_marginal(BETAS[1]))
        np.testing.assert_allclose(stationary(joint_transition()), expected, atol=1e-10)
        np.testing.assert_allclose(expected @ exchange_matrix(), expected, atol=1e-12)


def test_the_enumeration_catches_a_flipped_exchange_ratio() -> None:
    with jax.enable_x64(True):
        expected = np.kron(tempered_marginal(BETAS[0]), tempered_marginal(BETAS[1]))
        error = np.max(np.abs(stationary(joint_transition(flip_sign=True)) - expected))
    assert error > 1e-3


def test_exchange_probabilities_reject_non_finite_ratios() -> None:
    log_likelihood = jnp.asarray([[0.0, -jnp.inf, jnp.nan], [1.0, 2.0, 0.0]])
    probability = exchange_probabilities(log_likelihood, jnp.asarray([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(probability[0], [0.0, 0.0])
    np.testing.assert_allclose(probability[1], [1.0, np.exp(0.5 * -2.0)], rtol=1e-6)


def test_exchange_source_swaps_the_chosen_pairs() -> None:
    swapped = jnp.asarray([[True, False, True], [False, False, False], [False, True, False]])
    np.testing.assert_array_equal(
        exchange_source(swapped), [[1, 0, 3, 2], [0, 1, 2, 3], [0, 2, 1, 3]]
    )


def test_initial_ladders() -> None:
    ladder = np.asarray(init_ladder(5, 100.0, jnp.float32))
    np.testing.assert_allclose(ladder, 100.0 ** -(np.arange(5) / 4), rtol=1e-6)
    prior = np.asarray(init_ladder(4, float("inf"), jnp.float32))
    assert prior[0] == 1.0 and prior[-1] == 0.0 and np.all(np.diff(prior) < 0)
    np.testing.assert_array_equal(init_ladder(2, float("inf"), jnp.float32), [1.0, 0.0])


def test_the_ladder_moves_levels_towards_the_hard_pair() -> None:
    betas = jnp.asarray([1.0, 0.5, 0.25, 0.125])
    same = adapted_ladder(betas, jnp.full(3, 0.3))
    np.testing.assert_allclose(same, betas, rtol=1e-6)
    # the first pair rejects most: the levels crowd towards beta = 1
    moved = np.asarray(adapted_ladder(betas, jnp.asarray([0.9, 0.1, 0.1])))
    assert moved[0] == 1.0 and moved[-1] == pytest.approx(0.125)
    assert np.all(np.diff(moved) < 0)
    assert moved[1] > 0.5 and moved[2] > 0.25


def test_tempered_log_prob_is_exact_at_the_ends() -> None:
    def log_prob(x, data):
        return -0.5 * jnp.sum(x**2) - 3.0

    def log_prior(x, data):
        return -0.1 * jnp.sum(x**2)

    x = jnp.asarray([0.3, -1.2])
    whole = TemperedTarget(log_prob)
    split = TemperedTarget(log_prob, log_prior)
    assert tempered_log_prob(whole, jnp.asarray(1.0), None)(x) == log_prob(x, None)
    assert tempered_log_prob(split, jnp.asarray(1.0), None)(x) == log_prob(x, None)
    assert tempered_log_prob(split, jnp.asarray(0.0), None)(x) == log_prior(x, None)
    half = tempered_log_prob(split, jnp.asarray(0.5), None)(x)
    expected = log_prior(x, None) + 0.5 * (log_prob(x, None) - log_prior(x, None))
    np.testing.assert_allclose(half, expected, rtol=1e-6)
    np.testing.assert_allclose(
        tempered_log_prob(whole, jnp.asarray(0.25), None)(x), 0.25 * log_prob(x, None)
    )


def test_site_flip_tempers_its_local_difference() -> None:
    ising = fm.make_ising(4, 0.4)
    kernel = fm.SiteFlip(delta_log_prob=ising.delta_log_prob)
    s = jnp.zeros(16, jnp.int32).at[3].set(1)
    delta = kernel.delta_log_prob(s, jnp.asarray(5), jnp.asarray(1))
    hot = kernel.tempered(jnp.asarray(0.25))
    np.testing.assert_allclose(hot.delta_log_prob(s, jnp.asarray(5), jnp.asarray(1)), delta / 4)
    assert fm.SiteFlip().tempered(jnp.asarray(0.5)) == fm.SiteFlip()


def test_a_tempered_run_records_the_exchanges() -> None:
    centres = jnp.asarray([[-4.0], [4.0]])

    def log_prob(x):
        return jax.scipy.special.logsumexp(-0.5 * jnp.sum((x - centres) ** 2, axis=1))

    sampler = fm.Sampler(
        log_prob, n_dim=1, n_chains=4, n_temperatures=3, global_model=None,
        n_training_loops=3, n_production_loops=2, n_local_steps=10, progress_bar=False,
    )  # fmt: skip
    result = sampler.run(jax.random.key(0), jnp.full((4, 1), -4.0))
    history = result.history
    assert history.exchange_rate.shape == (5, 2)
    assert history.ladder.shape == (5, 3)
    assert history.round_trips.shape == (5,)
    assert np.all((history.exchange_rate >= 0) & (history.exchange_rate <= 1))
    np.testing.assert_array_equal(history.ladder[:, 0], 1.0)
    np.testing.assert_allclose(history.ladder[:, -1], 0.01, rtol=1e-6)
    # training adapts the ladder; production keeps the last one
    np.testing.assert_array_equal(history.ladder[3], history.ladder[2])
    np.testing.assert_array_equal(history.ladder[4], history.ladder[2])
    assert result.samples.shape == (4, 20, 1)


def test_tempering_rejects_a_latent_local_kernel() -> None:
    with pytest.raises(ValueError, match="local_in_latent_space"):
        fm.Sampler(lambda x: -jnp.sum(x**2), n_dim=2, n_temperatures=4, local_in_latent_space=True)


def test_log_prior_cannot_temper_a_delta_log_prob() -> None:
    ising = fm.make_ising(4, 0.4)
    with pytest.raises(ValueError, match="delta_log_prob"):
        fm.Sampler(
            ising.log_prob,
            local_kernel=fm.SiteFlip(delta_log_prob=ising.delta_log_prob),
            n_temperatures=3,
            log_prior=lambda s: 0.0,
        )


def test_a_ladder_without_round_trips_warns() -> None:
    """200-D Gaussian, 3 levels down to beta = 0.01: neighbours never exchange."""
    sampler = fm.Sampler(
        lambda x: -0.5 * jnp.sum(x**2), n_dim=200, n_chains=4, n_temperatures=3,
        global_model=None, n_training_loops=2, n_production_loops=2, n_local_steps=10,
        progress_bar=False,
    )  # fmt: skip
    with pytest.warns(RuntimeWarning, match="no round trip"):
        result = sampler.run(jax.random.key(0), jnp.zeros((4, 200)))
    assert result.diagnostics.round_trips == 0
    assert result.diagnostics.barrier > 1.5


def test_partial_weights_keep_half_the_draws_effective() -> None:
    from flowmc_like.tempering_examples import _partial_weights

    benign = jnp.log(jnp.linspace(1.0, 2.0, 100))[:, None]
    np.testing.assert_allclose(
        _partial_weights(benign, 0.5)[:, 0], jnp.linspace(1.0, 2.0, 100) / 150.0, rtol=1e-5
    )
    collapsed = jnp.concatenate([jnp.zeros(99), jnp.asarray([40.0])])[:, None]
    weight = _partial_weights(collapsed, 0.5)[:, 0]
    ess = 1.0 / np.sum(np.asarray(weight) ** 2)
    assert 49 <= ess <= 55 and float(weight[-1]) > float(weight[0])
    excluded = jnp.full((4, 1), -jnp.inf)
    np.testing.assert_array_equal(_partial_weights(excluded, 0.5), 0.0)


def test_hot_examples_come_from_the_hot_draws_and_favour_cold_levels() -> None:
    from flowmc_like.tempering import HotDraws, reweighted_hot_examples

    # level 1 (beta 0.5) at x = +1, level 2 (beta 0.1) at x = -1, equal likelihoods
    position = jnp.stack([jnp.ones((8, 5, 1)), -jnp.ones((8, 5, 1))], axis=2)
    hot = HotDraws(position, jnp.zeros((8, 5, 2)))
    examples = reweighted_hot_examples(jax.random.key(0), hot, jnp.asarray([1.0, 0.5, 0.1]), 3000)
    assert examples.shape == (3000, 1)
    assert set(np.unique(np.asarray(examples))) == {-1.0, 1.0}
    share = float(np.mean(np.asarray(examples) > 0))
    assert abs(share - 0.5 / 0.6) < 0.03  # level shares proportional to beta
