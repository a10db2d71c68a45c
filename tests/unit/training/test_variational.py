"""Variational pre-training: the annealing schedule, the stopping rule, the fit it reaches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.config import SamplerConfig
from flowmc_like.training.optim import make_optimizer
from flowmc_like.training.trainer import init_train_state
from flowmc_like.training.variational import (
    ANNEAL_STEPS,
    CHUNK_STEPS,
    MAX_STEPS,
    VariationalPlan,
    annealing_betas,
    is_variational_done,
    pair_acceptance,
    train_variational,
    variational_plan,
)


def test_annealing_rises_linearly_to_one_and_stays():
    betas = annealing_betas(0, 10, 4)
    np.testing.assert_allclose(betas, [0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(annealing_betas(2, 3, 4), [0.75, 1, 1])
    np.testing.assert_allclose(annealing_betas(0, 3, 0), [1, 1, 1])


def test_plan_is_automatic_for_discrete_models_only_and_counts_round_up():
    discrete, flow = fm.Autoregressive(2), fm.RealNVP()
    assert variational_plan(discrete, SamplerConfig()) == VariationalPlan(
        ANNEAL_STEPS, MAX_STEPS, True
    )
    assert variational_plan(flow, SamplerConfig()).max_steps == 0
    assert variational_plan(None, SamplerConfig()).max_steps == 0
    assert variational_plan(discrete, SamplerConfig(n_variational_steps=0)).max_steps == 0
    explicit = variational_plan(flow, SamplerConfig(n_variational_steps=70))
    assert explicit == VariationalPlan(50, 2 * CHUNK_STEPS, False)


def test_stopping_rule():
    assert is_variational_done(100, [0.1, 0.5], n_anneal=200) == (False, "")
    assert is_variational_done(250, [0.1, 0.5, 0.6], n_anneal=200) == (False, "")
    done, why = is_variational_done(250, [0.5, 0.6, 0.61], n_anneal=200)
    assert done and "levelled off (0.60 -> 0.61" in why
    assert is_variational_done(250, [0.5, 0.85], n_anneal=200)[0]
    assert is_variational_done(MAX_STEPS, [0.1, 0.5], n_anneal=200)[0]


def test_pair_acceptance_of_equal_weights_is_one_and_non_finite_ones_are_rejected():
    assert float(pair_acceptance(jnp.zeros(8))) == pytest.approx(1.0)
    log_w = jnp.array([0.0, jnp.log(0.5), 0.0, -jnp.inf])
    # pairs (0,1): 0.5, (1,2): 1, (2,3): rejected, (3,0): rejected
    assert float(pair_acceptance(log_w)) == pytest.approx(1.5 / 4)


def test_reverse_kl_alone_fits_a_small_ising_chain():
    """Without any target draws, annealed reverse KL brings q close to p on 6 spins."""
    n = 6

    def log_prob(s):
        sigma = 2.0 * s - 1.0
        return 0.8 * jnp.sum(sigma * jnp.roll(sigma, 1)) + 0.3 * sigma[0]

    model = fm.Autoregressive(2, hidden_sizes=(16,))
    optimizer = make_optimizer(1e-2)
    state = init_train_state(model.init(jax.random.key(0), n), optimizer)
    betas = jnp.asarray(annealing_betas(0, 300, 100), jnp.float32)
    run = jax.jit(train_variational, static_argnums=(0, 1, 5, 6))
    state, chunk, is_finite = run(model, optimizer, jax.random.key(1), state, betas, log_prob, 64)
    assert bool(is_finite)
    states = (np.arange(2**n)[:, None] >> np.arange(n)[::-1]) & 1
    states = jnp.asarray(states, jnp.int32)
    log_p = jax.vmap(log_prob)(states)
    log_p = log_p - jax.nn.logsumexp(log_p)
    log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(state.params, states)
    kl = float(jnp.sum(jnp.exp(log_q) * (log_q - log_p)))
    assert kl < 0.02, kl  # a fresh (uniform) model is at about 1.5 nats
    assert float(chunk.acceptance) > 0.85
    # the free energy estimate approaches -log Z from above
    assert (
        float(jnp.mean(chunk.free_energy[-20:]))
        > -float(jax.nn.logsumexp(jax.vmap(log_prob)(states))) - 0.05
    )
