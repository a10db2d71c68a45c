"""The training buffer's memory: a uniform reservoir of every appended draw, mixed into training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like.training.data import (
    DrawBuffer,
    append_draws,
    init_buffer,
    select_training_data,
    split_training_data,
)

N_CHAINS, WINDOW, MEMORY, BATCH, N_BATCHES = 64, 30, 40, 25, 16


def _ids(batch: int) -> jnp.ndarray:
    """``(N_CHAINS, BATCH, 2)`` draws labelled ``(chain, batch * BATCH + column)``."""
    chain = jnp.broadcast_to(jnp.arange(N_CHAINS)[:, None], (N_CHAINS, BATCH))
    draw = jnp.broadcast_to(batch * BATCH + jnp.arange(BATCH)[None], (N_CHAINS, BATCH))
    return jnp.stack([chain, draw], -1).astype(jnp.float32)


@pytest.fixture(scope="module")
def filled():
    """The buffer after every batch (a jitted append: fixed shapes), and after the first."""
    append = jax.jit(append_draws)
    buffer = init_buffer(N_CHAINS, WINDOW, 2, jnp.float32, memory_size=MEMORY)
    keys = jax.random.split(jax.random.key(0), N_BATCHES)
    first = None
    for batch in range(N_BATCHES):
        buffer = append(keys[batch], buffer, _ids(batch))
        first = buffer if first is None else first
    return first, buffer


def test_shapes_and_fill_counts(filled):
    first, last = filled
    for buffer in filled:
        assert buffer.draws.shape == (N_CHAINS, WINDOW, 2)
        assert buffer.memory.shape == (N_CHAINS, MEMORY, 2)
        assert buffer.priorities.shape == (N_CHAINS, MEMORY)
        assert buffer.priorities.dtype == jnp.uint32
    assert (int(first.n_filled), int(first.n_remembered)) == (BATCH, BATCH)
    assert (int(last.n_filled), int(last.n_remembered)) == (WINDOW, MEMORY)
    # not yet full: every draw is remembered, the empty slots last with the empty priority
    kept = np.sort(np.asarray(first.memory[:, :BATCH, 1]), axis=1)
    np.testing.assert_array_equal(kept, np.broadcast_to(np.arange(BATCH), (N_CHAINS, BATCH)))
    assert (np.asarray(first.priorities[:, BATCH:]) == np.iinfo(np.uint32).max).all()
    assert (np.diff(np.asarray(last.priorities, dtype=np.int64), axis=1) >= 0).all()
    # the window still holds the most recent draws, oldest first
    expected = np.arange(N_BATCHES * BATCH - WINDOW, N_BATCHES * BATCH)
    np.testing.assert_array_equal(np.asarray(last.draws[3, :, 1]), expected)


def test_memory_is_a_uniform_sample_without_replacement(filled):
    _, buffer = filled
    memory = np.asarray(buffer.memory)
    # each chain remembers only its own draws, each at most once
    np.testing.assert_array_equal(memory[..., 0], np.arange(N_CHAINS)[:, None] + 0 * memory[..., 0])
    for row in memory[..., 1]:
        assert len(np.unique(row)) == MEMORY
    # which batch each remembered draw came from: uniform over the batches (chi-square, 15
    # degrees of freedom; the 0.999 quantile is 37.7)
    counts = np.bincount((memory[..., 1] // BATCH).astype(int).ravel(), minlength=N_BATCHES)
    expected = N_CHAINS * MEMORY / N_BATCHES
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 37.7, (chi2, counts)
    # sampling without replacement: the first and the last quarter of the draws are equally
    # represented (z-test on the difference of two of the counts' sums)
    quarter = N_BATCHES // 4
    early, late = counts[:quarter].sum(), counts[-quarter:].sum()
    assert abs(early - late) / np.sqrt(early + late) < 4, (early, late)


def test_selection_mixes_window_and_memory_in_the_fixed_share():
    n_chains, window, memory = 8, 10, 6
    buffer = DrawBuffer(
        draws=jnp.ones((n_chains, window, 1)).at[:, :4].set(-1.0),  # 6 columns filled
        n_filled=jnp.asarray(6, jnp.int32),
        memory=jnp.zeros((n_chains, memory, 1)).at[:, 3:].set(-1.0),  # 3 columns filled
        priorities=jnp.zeros((n_chains, memory), jnp.uint32),
        n_remembered=jnp.asarray(3, jnp.int32),
    )
    examples = np.asarray(select_training_data(jax.random.key(0), buffer, 1000, 0.3))
    assert examples.shape == (1000, 1) and -1.0 not in examples
    assert (examples == 0.0).sum() == 300
    # evenly spread: any tail (which tempering overwrites with hot examples) keeps the share
    assert (examples[-250:] == 0.0).sum() in (74, 75, 76)
    training, validation = split_training_data(jax.random.key(1), buffer, 400, 100, 2, 0.25)
    assert (np.asarray(training) == 0.0).sum() == 100
    assert (np.asarray(validation) == 0.0).sum() == 25
    assert -1.0 not in np.asarray(training) and -1.0 not in np.asarray(validation)


def test_no_memory_trains_on_the_window_alone():
    buffer = init_buffer(4, 5, 1, jnp.float32, memory_size=0)
    buffer = append_draws(jax.random.key(0), buffer, jnp.ones((4, 3, 1)))
    assert buffer.memory.shape == (4, 0, 1) and int(buffer.n_remembered) == 0
    examples = select_training_data(jax.random.key(1), buffer, 200)
    np.testing.assert_array_equal(np.asarray(examples), 1.0)
