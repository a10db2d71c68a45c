"""A fixed-shape window of recent draws, and fixed-size training sets drawn from it."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from flowmc_like import _random as random
from flowmc_like._types import Array, PRNGKey

__all__ = [
    "DrawBuffer",
    "append_draws",
    "init_buffer",
    "random_order",
    "select_training_data",
    "split_training_data",
]


class DrawBuffer(NamedTuple):
    """The most recent draws of every chain, oldest first.

    Attributes:
        draws: ``(n_chains, window_size, n_dim)``; only the last ``n_filled`` columns are draws.
        n_filled: ``()`` int32, how many of the ``window_size`` columns hold draws.
    """

    draws: Array
    n_filled: Array


def init_buffer(n_chains: int, window_size: int, n_dim: int, dtype: jnp.dtype) -> DrawBuffer:
    """An empty buffer (``n_filled = 0``)."""
    return DrawBuffer(
        draws=jnp.zeros((n_chains, window_size, n_dim), dtype=dtype),
        n_filled=jnp.zeros((), dtype=jnp.int32),
    )


def append_draws(buffer: DrawBuffer, new_draws: Array) -> DrawBuffer:
    """Append ``new_draws`` ``(n_chains, n_new, n_dim)``, dropping the oldest columns."""
    window_size = buffer.draws.shape[1]
    n_new = new_draws.shape[1]
    if n_new >= window_size:
        draws = new_draws[:, n_new - window_size :]
    else:
        draws = jnp.concatenate([buffer.draws[:, n_new:], new_draws.astype(buffer.draws.dtype)], 1)
    n_filled = jnp.minimum(buffer.n_filled + n_new, window_size).astype(jnp.int32)
    return DrawBuffer(draws=draws, n_filled=n_filled)


def random_order(key: PRNGKey, shape: tuple[int, ...]) -> Array:
    """Uniformly random permutations of ``range(shape[-1])``, one per leading index.

    ``argsort`` of 32-bit random words: one draw and one sort, where
    `jax.random.permutation` compiles several rounds of both (the compiled training step
    stays small). Ties (probability below ``n**2 / 2**33``) keep index order.

    Returns:
        ``shape`` int32 array.
    """
    return jnp.argsort(random.bits(key, shape), axis=-1).astype(jnp.int32)


def _indices(bits: Array, low: Array | int, high: Array | int) -> Array:
    """Integers in ``[low, high)`` from uint32 ``bits`` (modulo bias below ``(high-low)/2**32``)."""
    span = jnp.asarray(high - low, dtype=jnp.uint32)
    return (low + (bits % span).astype(jnp.int32)).astype(jnp.int32)


def select_training_data(key: PRNGKey, buffer: DrawBuffer, n_examples: int) -> Array:
    """Resample ``n_examples`` draws uniformly, with replacement, from the filled part.

    The output shape is fixed whatever ``n_filled`` is, so the training step compiles once.

    Args:
        key: PRNG key.
        buffer: the window of draws (must have ``n_filled >= 1``).
        n_examples: number of examples returned.

    Returns:
        Training examples ``(n_examples, n_dim)``.
    """
    n_chains, window_size, _ = buffer.draws.shape
    chain_bits, time_bits = random.bits(key, (2, n_examples))
    first_filled = window_size - jnp.maximum(buffer.n_filled, 1)
    chain_index = _indices(chain_bits, 0, n_chains)
    time_index = _indices(time_bits, first_filled, window_size)
    return buffer.draws[chain_index, time_index]


def split_training_data(
    key: PRNGKey, buffer: DrawBuffer, n_examples: int, n_validation: int, n_held_out_chains: int
) -> tuple[Array, Array]:
    """Training and validation examples from disjoint, randomly chosen chains.

    Draws of one chain are strongly correlated, so a validation set drawn from the same
    chains as the training set cannot reveal overfitting; one from other chains can.
    ``n_held_out_chains`` chains (a fresh random choice every call) supply the validation
    examples, the others the training examples, both resampled uniformly with replacement
    from the filled part of the window (fixed output shapes).

    Args:
        key: PRNG key.
        buffer: the window of draws (``n_filled >= 1``), ``n_chains > n_held_out_chains``.
        n_examples: training examples returned.
        n_validation: validation examples returned.
        n_held_out_chains: chains reserved for validation (static, ``>= 1``).

    Returns:
        ``(training (n_examples, n_dim), validation (n_validation, n_dim))``.
    """
    n_chains, window_size, _ = buffer.draws.shape
    n_training_chains = n_chains - n_held_out_chains
    n_picks = n_examples + n_validation
    # One draw of random words for the chain order and every index (each random call
    # compiles its own generator); the order is the argsort of the first n_chains words.
    words = random.bits(key, (n_chains + 2 * n_picks,))
    order = jnp.argsort(words[:n_chains]).astype(jnp.int32)
    chain_bits, time_bits = words[n_chains:].reshape(2, n_picks)
    first_filled = window_size - jnp.maximum(buffer.n_filled, 1)

    def resample(chains: Array, rows: slice) -> Array:
        chain_index = chains[_indices(chain_bits[rows], 0, chains.shape[0])]
        time_index = _indices(time_bits[rows], first_filled, window_size)
        return buffer.draws[chain_index, time_index]

    return (
        resample(order[:n_training_chains], slice(0, n_examples)),
        resample(order[n_training_chains:], slice(n_examples, None)),
    )
