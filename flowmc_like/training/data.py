"""The training data: a window of recent draws, a memory of older ones, and training sets.

Training on the chains' most recent draws alone forgets a region as soon as no chain is in
it: the flow stops proposing there and the chains never return. So every chain also keeps a
*memory*, a uniform random sample (without replacement) of every draw it has appended since
the run started (a bottom-k reservoir: each draw gets a random priority and the memory keeps
the ``memory_size`` draws of smallest priority), and every training, validation and
statistics set mixes the window with the memory in a fixed proportion (`MEMORY_SHARE`). A
region the chains have left keeps training the flow in proportion to the time the chains
spent there, the flow keeps proposing there, and chains can return; the Metropolis-Hastings
acceptance keeps the draws exact whatever the flow was trained on.

What the memory does not do: bring back a region no chain ever settled in (a mode
visited for a handful of draws weighs that little in a time-uniform sample).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from flowmc_like import _random as random
from flowmc_like._types import Array, PRNGKey

__all__ = [
    "MEMORY_SHARE",
    "DrawBuffer",
    "append_draws",
    "default_memory_size",
    "init_buffer",
    "random_order",
    "select_training_data",
    "split_training_data",
]

MEMORY_SHARE = 0.5
"""Fraction of every training, validation and statistics set drawn from the memory.

Chosen by measurement (2-D, 32 chains, RQSpline 4 layers / 64x64 / 8 bins, 5 epochs,
batch 1000, 8192 examples, windows of 3 loops of 100 draws):

- Retention (tests/statistical/test_mode_memory.py): chains that spent the first 3 of 10
  loops in a mode (a quarter of them) then leave it for good. The share of the flow's
  draws in that mode at loop 10 is 0.000 / 0.001 (two seeds) without memory, 0.026 / 0.023
  with a share of 0.25, 0.052 / 0.067 with 0.5, 0.071 with 0.75: about ``share`` times the
  mode's share of the history (0.075 here), so the flow keeps proposing there.
- Cost, on full runs: 0.5 kept the global acceptance (8-mode mixture with narrow modes,
  12 seeds: 0.517 against 0.510 on the window alone; four 12-mode mixtures, 24 runs: 0.52
  against 0.49; a 10-D two-mode mixture: 0.66 / 0.59 against 0.57 / 0.55; a correlated
  16-D Gaussian: 0.69 against 0.72, in 34 loops instead of 42) and the mode-weight errors;
  0.75 made them worse (median worst mode-weight error 0.038 against 0.027, 7 of 12 seeds
  off by more than 0.03 against 5), the old draws then outweighing the current fit.
"""

_EMPTY = np.iinfo(np.uint32).max
"""Priority of an empty memory slot; drawn priorities are 31-bit, so always below it."""


class DrawBuffer(NamedTuple):
    """The most recent draws of every chain, and a uniform sample of all its older ones.

    Attributes:
        draws: ``(n_chains, window_size, n_dim)``, oldest first; only the last ``n_filled``
            columns are draws.
        n_filled: ``()`` int32, how many of the ``window_size`` columns hold draws.
        memory: ``(n_chains, memory_size, n_dim)``, per chain a uniform random sample without
            replacement of every draw appended so far (the window's included); only the first
            ``n_remembered`` columns are draws.
        priorities: ``(n_chains, memory_size)`` uint32, the random priority of each remembered
            draw, ascending along a row (empty slots: the largest uint32).
        n_remembered: ``()`` int32, how many of the ``memory_size`` columns hold draws
            (``min(draws appended per chain, memory_size)``).
    """

    draws: Array
    n_filled: Array
    memory: Array
    priorities: Array
    n_remembered: Array


def default_memory_size(window_size: int) -> int:
    """Memory columns per chain for a window of ``window_size`` columns: as many.

    The memory then costs what the window costs, and with the default 8192 examples and a
    few dozen chains holds more distinct draws than one loop resamples from it. A memory of
    a quarter of the window measured about the same on the 8-mode mixture of `MEMORY_SHARE`
    (about as many seeds with mode weights off, about the same global acceptance).
    """
    return window_size


def init_buffer(
    n_chains: int, window_size: int, n_dim: int, dtype: jnp.dtype, memory_size: int | None = None
) -> DrawBuffer:
    """An empty buffer (``n_filled = n_remembered = 0``).

    Args:
        n_chains: number of chains.
        window_size: recent draws kept per chain.
        n_dim: dimension of a draw.
        dtype: dtype of the draws.
        memory_size: older draws remembered per chain (0: no memory); None:
            `default_memory_size` of ``window_size``.
    """
    if memory_size is None:
        memory_size = default_memory_size(window_size)
    return DrawBuffer(
        draws=jnp.zeros((n_chains, window_size, n_dim), dtype=dtype),
        n_filled=jnp.zeros((), dtype=jnp.int32),
        memory=jnp.zeros((n_chains, memory_size, n_dim), dtype=dtype),
        priorities=jnp.full((n_chains, memory_size), _EMPTY, dtype=jnp.uint32),
        n_remembered=jnp.zeros((), dtype=jnp.int32),
    )


def _keep_smallest(priorities: Array, values: Array, size: int) -> tuple[Array, Array]:
    """Per row, the ``size`` entries of smallest priority, in ascending priority.

    Args:
        priorities: ``(n_rows, n)`` uint32.
        values: ``(n_rows, n, n_dim)``.
        size: entries kept, ``<= n``.

    Returns:
        ``(priorities (n_rows, size), values (n_rows, size, n_dim))``.
    """
    order = jnp.argsort(priorities, axis=1)[:, :size]
    kept_values = jnp.take_along_axis(values, order[..., None], axis=1)
    return jnp.take_along_axis(priorities, order, axis=1), kept_values


def append_draws(key: PRNGKey, buffer: DrawBuffer, new_draws: Array) -> DrawBuffer:
    """Append ``new_draws`` to the window (dropping its oldest) and offer them to the memory.

    Every new draw gets an independent uniform 31-bit priority; each chain's memory keeps
    the ``memory_size`` draws of smallest priority among its remembered and new ones, so
    after any number of calls it is a uniform random sample without replacement of all the
    draws the chain was given (exactly so up to ties of two priorities, probability below
    ``n**2 / 2**32`` for ``n`` draws per chain). Fixed shapes: one draw of random words
    and one sort of ``memory_size + n_new`` entries per chain.

    Args:
        key: PRNG key of the priorities.
        buffer: the current buffer.
        new_draws: ``(n_chains, n_new, n_dim)``.

    Returns:
        The new buffer.
    """
    window_size = buffer.draws.shape[1]
    n_chains, n_new, _ = new_draws.shape
    new_draws = new_draws.astype(buffer.draws.dtype)
    if n_new >= window_size:
        draws = new_draws[:, n_new - window_size :]
    else:
        draws = jnp.concatenate([buffer.draws[:, n_new:], new_draws], 1)
    n_filled = jnp.minimum(buffer.n_filled + n_new, window_size).astype(jnp.int32)
    memory_size = buffer.memory.shape[1]
    memory, priorities, n_remembered = buffer.memory, buffer.priorities, buffer.n_remembered
    if memory_size:
        new_priorities = random.bits(key, (n_chains, n_new)) >> 1
        priorities, memory = _keep_smallest(
            jnp.concatenate([priorities, new_priorities], 1),
            jnp.concatenate([memory, new_draws], 1),
            memory_size,
        )
        n_remembered = jnp.minimum(n_remembered + n_new, memory_size).astype(jnp.int32)
    return DrawBuffer(draws, n_filled, memory, priorities, n_remembered)


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


def _n_from_memory(buffer: DrawBuffer, n_examples: int, memory_share: float) -> int:
    """How many of ``n_examples`` come from the memory (static): ``round(share * n)``."""
    if buffer.memory.shape[1] == 0:
        return 0
    return min(max(round(memory_share * n_examples), 0), n_examples)


def _memory_slots(n_examples: int, n_memory: int) -> np.ndarray:
    """Which of ``n_examples`` examples come from the memory: ``n_memory``, evenly spread.

    Any contiguous slice (the tail the tempered training overwrites with hot examples, a
    minibatch) then keeps the proportion to within one example.

    Returns:
        ``(n_examples,)`` bool.
    """
    index = np.arange(n_examples + 1) * n_memory // max(n_examples, 1)
    return np.diff(index) > 0


def _resample(
    buffer: DrawBuffer, chains: Array, chain_bits: Array, time_bits: Array, n_memory: int
) -> Array:
    """Draws resampled with replacement from ``chains``, ``n_memory`` of them from the memory.

    Args:
        buffer: the buffer (``n_filled >= 1``; ``n_remembered >= 1`` if ``n_memory``).
        chains: ``(n_candidates,)`` int32 indices of the chains to resample from.
        chain_bits: ``(n,)`` uint32 random words choosing the chain of each example.
        time_bits: ``(n,)`` uint32 random words choosing the column of each example.
        n_memory: how many examples come from the memory (static), at the positions of
            `_memory_slots`; the others come from the filled part of the window.

    Returns:
        ``(n, n_dim)`` examples.
    """
    window_size = buffer.draws.shape[1]
    chain_index = chains[_indices(chain_bits, 0, chains.shape[0])]
    first_filled = window_size - jnp.maximum(buffer.n_filled, 1)
    examples = buffer.draws[chain_index, _indices(time_bits, first_filled, window_size)]
    if n_memory:
        memory_time = _indices(time_bits, 0, jnp.maximum(buffer.n_remembered, 1))
        remembered = buffer.memory[chain_index, memory_time]
        from_memory = jnp.asarray(_memory_slots(chain_bits.shape[0], n_memory))
        examples = jnp.where(from_memory[:, None], remembered, examples)
    return examples


def select_training_data(
    key: PRNGKey, buffer: DrawBuffer, n_examples: int, memory_share: float = MEMORY_SHARE
) -> Array:
    """Resample ``n_examples`` draws uniformly, with replacement, from the window and the memory.

    ``round(memory_share * n_examples)`` of them (evenly spread) come from the filled part
    of the memory, the others from the filled part of the window. The output shape is fixed whatever
    ``n_filled`` is, so the training step compiles once.

    Args:
        key: PRNG key.
        buffer: the buffer (must have ``n_filled >= 1``).
        n_examples: number of examples returned.
        memory_share: fraction of the examples drawn from the memory (static).

    Returns:
        Training examples ``(n_examples, n_dim)``.
    """
    n_chains = buffer.draws.shape[0]
    chain_bits, time_bits = random.bits(key, (2, n_examples))
    n_memory = _n_from_memory(buffer, n_examples, memory_share)
    chains = jnp.arange(n_chains, dtype=jnp.int32)
    return _resample(buffer, chains, chain_bits, time_bits, n_memory)


def split_training_data(
    key: PRNGKey,
    buffer: DrawBuffer,
    n_examples: int,
    n_validation: int,
    n_held_out_chains: int,
    memory_share: float = MEMORY_SHARE,
) -> tuple[Array, Array]:
    """Training and validation examples from disjoint, randomly chosen chains.

    Draws of one chain are strongly correlated, so a validation set drawn from the same
    chains as the training set cannot reveal overfitting; one from other chains can.
    ``n_held_out_chains`` chains (a fresh random choice every call) supply the validation
    examples, the others the training examples, both resampled uniformly with replacement
    from the filled part of the window and of the memory, ``memory_share`` of each set from
    the memory (fixed output shapes).

    Args:
        key: PRNG key.
        buffer: the buffer (``n_filled >= 1``), ``n_chains > n_held_out_chains``.
        n_examples: training examples returned.
        n_validation: validation examples returned.
        n_held_out_chains: chains reserved for validation (static, ``>= 1``).
        memory_share: fraction of each set drawn from the memory (static).

    Returns:
        ``(training (n_examples, n_dim), validation (n_validation, n_dim))``.
    """
    n_chains = buffer.draws.shape[0]
    n_training_chains = n_chains - n_held_out_chains
    n_picks = n_examples + n_validation
    # One draw of random words for the chain order and every index (each random call
    # compiles its own generator); the order is the argsort of the first n_chains words.
    words = random.bits(key, (n_chains + 2 * n_picks,))
    order = jnp.argsort(words[:n_chains]).astype(jnp.int32)
    chain_bits, time_bits = words[n_chains:].reshape(2, n_picks)
    training = _resample(
        buffer,
        order[:n_training_chains],
        chain_bits[:n_examples],
        time_bits[:n_examples],
        _n_from_memory(buffer, n_examples, memory_share),
    )
    validation = _resample(
        buffer,
        order[n_training_chains:],
        chain_bits[n_examples:],
        time_bits[n_examples:],
        _n_from_memory(buffer, n_validation, memory_share),
    )
    return training, validation
