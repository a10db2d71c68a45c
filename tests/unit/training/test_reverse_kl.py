"""The reverse-KL (variational) term: an unbiased gradient, and it trains a model toward p."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like.models.autoregressive import Autoregressive
from flowmc_like.models.base import ModelParams
from flowmc_like.training.optim import make_optimizer
from flowmc_like.training.trainer import (
    ReverseKL,
    init_train_state,
    reverse_kl_surrogate,
    train_model,
)

N_DIM = 4
STATES = jnp.asarray(list(itertools.product(range(2), repeat=N_DIM)), jnp.int32)


def chain_log_prob(s):
    """An open Ising chain with a field: unnormalised, flip-asymmetric."""
    sigma = (2 * s - 1).astype(jnp.float32)
    return 0.8 * jnp.sum(sigma[1:] * sigma[:-1]) + 0.3 * jnp.sum(sigma)


def random_params(model, seed):
    params = model.init(jax.random.key(seed), N_DIM)
    rng = np.random.default_rng(seed)
    noisy = jax.tree.map(
        lambda leaf: leaf + jnp.asarray(0.5 * rng.standard_normal(leaf.shape), leaf.dtype),
        params.trainable,
    )
    return ModelParams(noisy, params.frozen)


def exact_kl(model, params):
    log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(params, STATES)
    log_p = jax.vmap(chain_log_prob)(STATES)
    log_p = log_p - jax.nn.logsumexp(log_p)
    return jnp.sum(jnp.exp(log_q) * (log_q - log_p))


def test_surrogate_gradient_is_unbiased():
    """Mean of the score-function gradients over many draws = the exact gradient of KL(q||p)."""
    model = Autoregressive(2, (6,))
    params = random_params(model, 0)
    reverse_kl = ReverseKL(chain_log_prob, 1.0, 64)

    def estimate(key):
        return jax.grad(
            lambda trainable: reverse_kl_surrogate(
                model, ModelParams(trainable, params.frozen), key, reverse_kl
            )[0]
        )(params.trainable)

    estimates = jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.key(1), 400))
    exact = jax.grad(lambda trainable: exact_kl(model, ModelParams(trainable, ())))(
        params.trainable
    )
    mean = np.concatenate([np.ravel(x.mean(0)) for x in jax.tree.leaves(estimates)])
    sem = np.concatenate(
        [np.ravel(x.std(0)) / np.sqrt(x.shape[0]) for x in jax.tree.leaves(estimates)]
    )
    target = np.concatenate([np.ravel(x) for x in jax.tree.leaves(exact)])
    informative = sem > 1e-6  # masked weights have exactly zero gradient in both
    z = (mean[informative] - target[informative]) / sem[informative]
    assert np.abs(target[~informative]).max() < 1e-6
    assert np.mean(np.abs(z) < 3) > 0.97 and np.abs(z).max() < 6, np.abs(z).max()
    # ...and it is not trivially zero: the gradient points somewhere.
    assert np.linalg.norm(target) > 0.1


def test_free_energy_estimate_is_kl_minus_log_z():
    model = Autoregressive(2, (6,))
    params = random_params(model, 1)
    values = jax.jit(
        jax.vmap(
            lambda key: reverse_kl_surrogate(
                model, params, key, ReverseKL(chain_log_prob, 1.0, 256)
            )[1]
        )
    )(jax.random.split(jax.random.key(2), 64))
    log_z = jax.nn.logsumexp(jax.vmap(chain_log_prob)(STATES))
    expected = exact_kl(model, params) - log_z
    np.testing.assert_allclose(np.mean(values), expected, atol=4 * np.std(values) / 8)


def test_training_with_only_reverse_kl_moves_q_to_p():
    """No useful data (a single repeated state) and a large weight: the variational term alone
    brings q close to p."""
    model = Autoregressive(2, (8,), symmetric=False)
    optimizer = make_optimizer(1e-2)
    state = init_train_state(model.init(jax.random.key(0), N_DIM), optimizer)
    examples = jnp.zeros((256, N_DIM), jnp.int32)
    reverse_kl = ReverseKL(chain_log_prob, 100.0, 128)
    train = jax.jit(
        lambda key, state: train_model(model, optimizer, key, state, examples, 10, 64, reverse_kl)
    )
    before = float(exact_kl(model, state.params))
    for i in range(4):
        state, _, is_finite = train(jax.random.key(10 + i), state)
        assert bool(is_finite)
    after = float(exact_kl(model, state.params))
    assert after < 0.05 < before, (before, after)
