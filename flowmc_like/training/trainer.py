"""Maximum-likelihood training of a global model: all epochs of a loop in one jitted call."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from flowmc_like._types import Array, PRNGKey
from flowmc_like.models.base import AbstractGlobalModel, ModelParams

__all__ = ["TrainState", "all_finite", "init_train_state", "train_model"]


class TrainState(NamedTuple):
    """Model parameters and the optimiser state of their trainable part."""

    params: ModelParams
    opt_state: Any


def init_train_state(params: ModelParams, optimizer: optax.GradientTransformation) -> TrainState:
    """Wrap fresh model params with a fresh optimiser state."""
    return TrainState(params=params, opt_state=optimizer.init(params.trainable))


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


def train_model(
    model: AbstractGlobalModel,
    optimizer: optax.GradientTransformation,
    key: PRNGKey,
    train_state: TrainState,
    examples: Array,
    n_epochs: int,
    batch_size: int,
) -> tuple[TrainState, Array, Array]:
    """Run ``n_epochs`` of minibatch maximum likelihood on ``examples``.

    The model's frozen statistics are first refreshed with `AbstractGlobalModel.prepare`.
    Each epoch shuffles the examples and scans over ``n_examples // batch_size`` batches
    (the ragged remainder is dropped).

    Args:
        model: the global model (static).
        optimizer: the optax transformation (static).
        key: PRNG key for shuffling.
        train_state: current params and optimiser state.
        examples: ``(n_examples, n_dim)`` training data.
        n_epochs: passes over the examples (static).
        batch_size: examples per optimiser step (static, ``<= n_examples``).

    Returns:
        ``(new_train_state, losses, is_finite)``: ``losses`` is ``(n_epochs,)``, the mean batch
        loss of each epoch; ``is_finite`` is ``()`` bool, true when every loss and every
        parameter is finite. The caller discards the update when it is false.
    """
    n_examples, n_dim = examples.shape
    n_batches = n_examples // batch_size
    params = model.prepare(train_state.params, examples)
    frozen = params.frozen
    loss_and_grad = jax.value_and_grad(
        lambda trainable, batch: negative_log_likelihood(model, trainable, frozen, batch)
    )

    def batch_step(carry, batch):
        trainable, opt_state = carry
        loss, grads = loss_and_grad(trainable, batch)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return (optax.apply_updates(trainable, updates), opt_state), loss

    def epoch_step(carry, epoch_key):
        order = jax.random.permutation(epoch_key, n_examples)[: n_batches * batch_size]
        batches = examples[order].reshape(n_batches, batch_size, n_dim)
        carry, losses = jax.lax.scan(batch_step, carry, batches)
        return carry, jnp.mean(losses)

    (trainable, opt_state), losses = jax.lax.scan(
        epoch_step, (params.trainable, train_state.opt_state), jax.random.split(key, n_epochs)
    )
    new_state = TrainState(params=ModelParams(trainable, frozen), opt_state=opt_state)
    is_finite = jnp.all(jnp.isfinite(losses)) & all_finite(new_state.params)
    return new_state, losses, is_finite
