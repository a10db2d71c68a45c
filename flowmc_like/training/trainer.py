"""Maximum-likelihood training of a global model: all epochs of a loop in one jitted call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from flowmc_like._types import Array, PRNGKey
from flowmc_like.models.base import AbstractGlobalModel, ModelParams
from flowmc_like.training.data import random_order

__all__ = [
    "ReverseKL",
    "TrainState",
    "all_finite",
    "init_train_state",
    "reverse_kl_surrogate",
    "train_model",
]


class TrainState(NamedTuple):
    """Model parameters and the optimiser state of their trainable part.

    The optimiser works on the trainable leaves raveled into one vector
    (`jax.flatten_util.ravel_pytree`), so ``opt_state`` holds ``(n_trainable,)`` arrays:
    one fused update for all the parameters, instead of one per leaf, keeps the compiled
    training step small.
    """

    params: ModelParams
    opt_state: Any


def init_train_state(params: ModelParams, optimizer: optax.GradientTransformation) -> TrainState:
    """Wrap fresh model params with a fresh optimiser state (of the raveled trainable leaves)."""
    flat_trainable, _ = ravel_pytree(params.trainable)
    return TrainState(params=params, opt_state=optimizer.init(flat_trainable))


def all_finite(tree: Any) -> Array:
    """``()`` bool: every inexact leaf of ``tree`` is finite."""
    leaves = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def negative_log_likelihood(
    model: AbstractGlobalModel, trainable: Any, frozen: Any, batch: Array
) -> Array:
    """``-mean log q(x)`` over a batch ``(batch_size, n_dim)``."""
    params = ModelParams(trainable=trainable, frozen=frozen)
    log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(params, batch)
    return -jnp.mean(log_q)


class ReverseKL(NamedTuple):
    """A reverse-KL (variational) term added to the maximum-likelihood loss.

    Attributes:
        log_prob_fn: the target, one event ``(n_dim,)`` -> scalar unnormalised log density.
        weight: the term's weight ``lambda > 0`` in ``NLL + lambda * KL(q || p)``.
        n_samples: model samples per optimiser step (>= 2, for the leave-one-out baseline).
    """

    log_prob_fn: Callable[[Array], Array]
    weight: float
    n_samples: int


def reverse_kl_surrogate(
    model: AbstractGlobalModel, params: ModelParams, key: PRNGKey, reverse_kl: ReverseKL
) -> tuple[Array, Array]:
    """A surrogate whose gradient in ``params.trainable`` estimates that of KL(q || p).

    With ``x_j ~ q`` (``j = 1..n``, not differentiated) and ``f_j = log q(x_j) - log p(x_j)``,
    the score-function identity gives ``grad KL(q || p) = E_q[(f - b) grad log q(x)]`` for
    any ``b`` independent of ``x``; ``b_j`` is the mean of the other ``n - 1`` values of
    ``f`` (leave-one-out baseline), so the estimate is unbiased and its variance is much
    lower than with ``b = 0``. It needs only ``sample_and_log_prob`` and ``log_prob``, so it
    serves discrete models (no reparameterisation exists there) and continuous ones alike.
    Draws where the target is not finite are left out of the estimate.

    Args:
        model: the global model (static).
        params: its current params.
        key: PRNG key for the ``n`` draws.
        reverse_kl: the target, weight and number of draws.

    Returns:
        ``(surrogate, free_energy)``: the surrogate ``mean((f - b) log q(x))`` (differentiable
        in ``params.trainable``) and ``mean(f)``, an estimate of ``KL(q || p) - log Z``
        (not differentiated).
    """
    n = reverse_kl.n_samples
    frozen_params = jax.lax.stop_gradient(params)
    # The sampler's own log q is not used (so XLA drops its computation): the value comes
    # from the differentiable evaluation below.
    draws, _ = jax.vmap(lambda k: model.sample_and_log_prob(frozen_params, k))(
        jax.random.split(key, n)
    )
    log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(params, draws)
    log_p = jax.vmap(reverse_kl.log_prob_fn)(draws).astype(log_q.dtype)
    f = jax.lax.stop_gradient(log_q) - log_p
    is_valid = jnp.isfinite(f)
    n_valid = jnp.maximum(jnp.sum(is_valid), 2)
    f = jnp.where(is_valid, f, 0.0)
    baseline = (jnp.sum(f) - f) / (n_valid - 1)
    advantage = jax.lax.stop_gradient(jnp.where(is_valid, f - baseline, 0.0))
    surrogate = jnp.sum(advantage * jnp.where(is_valid, log_q, 0.0)) / n_valid
    return surrogate, jnp.sum(f) / n_valid


def train_model(
    model: AbstractGlobalModel,
    optimizer: optax.GradientTransformation,
    key: PRNGKey,
    train_state: TrainState,
    examples: Array,
    n_epochs: int,
    batch_size: int,
    reverse_kl: ReverseKL | None = None,
    validation: Array | None = None,
    batch_sharding: jax.sharding.Sharding | None = None,
    statistics_examples: Array | None = None,
) -> tuple[TrainState, Array, Array]:
    """Run ``n_epochs`` of minibatch maximum likelihood on ``examples``.

    With ``validation`` (examples from chains not in ``examples``), the negative
    log-likelihood of the validation set is measured before the first epoch and after each
    one, and the params (and optimiser state) of the best of these are returned: early
    stopping, so a loop never keeps an update that generalises worse than what it started
    from. Chains' draws are correlated, so without it a flow can fit the few regions the
    chains have visited (its training loss falls below the target's entropy) and the local
    and global moves then explore less, not more.

    The model's frozen statistics are first refreshed with `AbstractGlobalModel.prepare`, on
    ``statistics_examples`` when given (more draws than the network trains on: a whitening
    covariance in ``d`` dimensions needs of order ``d^2`` of them), else on ``examples``.
    Each epoch shuffles the examples and scans over ``n_examples // batch_size`` batches
    (the ragged remainder is dropped). With ``reverse_kl`` every step minimises
    ``NLL(batch) + weight * KL(q || p)``, the second term estimated by
    `reverse_kl_surrogate` from fresh model draws (costing ``n_samples`` target evaluations
    per step).

    Args:
        model: the global model (static).
        optimizer: the optax transformation (static).
        key: PRNG key for shuffling.
        train_state: current params and optimiser state.
        examples: ``(n_examples, n_dim)`` training data.
        n_epochs: passes over the examples (static).
        batch_size: examples per optimiser step (static, ``<= n_examples``).
        reverse_kl: optional reverse-KL term (static).
        validation: optional ``(n_validation, n_dim)`` held-out examples for early stopping.
        statistics_examples: optional ``(n_statistics, n_dim)`` draws for ``prepare``.
        batch_sharding: optional sharding of the ``(n_batches, batch_size, n_dim)`` minibatches
            of an epoch (data-parallel training on several devices: each device computes
            the loss and gradient of its slice of every batch, and the compiler reduces the
            gradients over the devices); None leaves the layout to the compiler.

    Returns:
        ``(new_train_state, losses, is_finite)``: ``losses`` is ``(n_epochs,)``, the mean batch
        negative log-likelihood of each epoch (without the reverse-KL term); ``is_finite`` is
        ``()`` bool, true when every loss and every parameter is finite. The caller discards
        the update when it is false.
    """
    n_examples, n_dim = examples.shape
    n_batches = n_examples // batch_size
    statistics_data = examples if statistics_examples is None else statistics_examples
    params = model.prepare(train_state.params, statistics_data)
    frozen = params.frozen
    # Every step below works on one parameter vector (see `TrainState`).
    flat_trainable, unravel = ravel_pytree(params.trainable)

    def loss_fn(flat: Array, batch: Array, step_key: PRNGKey) -> tuple[Array, Array]:
        trainable = unravel(flat)
        nll = negative_log_likelihood(model, trainable, frozen, batch)
        if reverse_kl is None:
            return nll, nll
        surrogate, _ = reverse_kl_surrogate(
            model, ModelParams(trainable, frozen), step_key, reverse_kl
        )
        return nll + reverse_kl.weight * surrogate, nll

    loss_and_grad = jax.grad(loss_fn, has_aux=True)

    def batch_step(carry, inputs):
        trainable, opt_state = carry
        batch, step_key = inputs
        grads, nll = loss_and_grad(trainable, batch, step_key)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return (optax.apply_updates(trainable, updates), opt_state), nll

    # Every epoch's shuffle (and the reverse-KL steps' keys) drawn at once, outside the loop.
    if reverse_kl is None:  # no per-step randomness: no extra RNG to compile
        key_order, step_keys = key, jnp.zeros((n_epochs, n_batches))
    else:
        key_order, key_steps = jax.random.split(key)
        step_keys = jax.random.split(key_steps, (n_epochs, n_batches))
    orders = random_order(key_order, (n_epochs, n_examples))[:, : n_batches * batch_size]

    def epoch_step(carry, epoch_inputs):
        order, epoch_step_keys = epoch_inputs
        batches = examples[order].reshape(n_batches, batch_size, n_dim)
        if batch_sharding is not None:
            batches = jax.lax.with_sharding_constraint(batches, batch_sharding)
        carry, losses = jax.lax.scan(batch_step, carry, (batches, epoch_step_keys))
        return carry, jnp.mean(losses)

    epoch_inputs = (orders, step_keys)
    if validation is None:
        (flat_trainable, opt_state), losses = jax.lax.scan(
            epoch_step, (flat_trainable, train_state.opt_state), epoch_inputs
        )
    else:

        def validation_loss(flat: Array) -> Array:
            loss = negative_log_likelihood(model, unravel(flat), frozen, validation)
            return jnp.where(jnp.isfinite(loss), loss, jnp.inf)

        def epoch_with_validation(carry, inputs):
            current, best, best_loss = carry
            current, loss = epoch_step(current, inputs)
            current_loss = validation_loss(current[0])
            is_better = current_loss < best_loss
            best = jax.tree.map(lambda a, b: jnp.where(is_better, a, b), current, best)
            return (current, best, jnp.minimum(current_loss, best_loss)), loss

        start = (flat_trainable, train_state.opt_state)
        (_, (flat_trainable, opt_state), _), losses = jax.lax.scan(
            epoch_with_validation, (start, start, validation_loss(start[0])), epoch_inputs
        )
    new_state = TrainState(params=ModelParams(unravel(flat_trainable), frozen), opt_state=opt_state)
    is_finite = jnp.all(jnp.isfinite(losses)) & all_finite(flat_trainable) & all_finite(frozen)
    return new_state, losses, is_finite
