"""A mode the chains have left keeps training the flow (the training buffer's memory).

The chains of one mode of a 2-D mixture leave it for good after 3 of 10 training loops.
Trained like the ``train`` program trains it (the sampler's RQSpline, 5 epochs of batches
of 1000 on 8192 examples, validation on 6 held-out chains of 32, a window of 3 loops of
100 draws), a flow fitted to the window alone stops proposing in that mode once its draws
have left the window; one fitted to the window mixed with the memory keeps proposing there,
at about ``MEMORY_SHARE`` times the mode's share of the history.

Measured (share of 20000 flow draws nearest the abandoned mode at loop 10, seeds 0 / 1):
0.000 / 0.001 on the window alone, 0.026 / 0.023 with a memory share of 0.25, 0.052 /
0.067 with 0.5 (the mode's share of the history is 0.075). Runtime about 40 s on 2 cores.

This is a test of the mechanism, on synthetic chains: full runs on 8-mode 2-D mixtures
whose modes are found by the chains do not lose them on main, and the runs that do end
with a mode missing (narrow modes, scale 0.15-0.22 in a 14 x 14 box) never had a chain
settle there, which no training data can fix (see the MEMORY_SHARE docstring).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.training.data import (
    MEMORY_SHARE,
    append_draws,
    init_buffer,
    split_training_data,
)
from flowmc_like.training.optim import make_optimizer
from flowmc_like.training.trainer import init_train_state, train_model

pytestmark = [pytest.mark.statistical, pytest.mark.slow]

CENTRES = np.array([[-4.0, 4.0], [4.0, 4.0], [0.0, -4.0], [4.0, -3.0]])
SCALES = np.array([0.4, 0.6, 0.8, 0.5])
N_CHAINS, N_DRAWS, N_LOOPS, N_LOOPS_IN_MODE = 32, 100, 10, 3
N_EXAMPLES, N_VALIDATION, N_HELD_OUT = 8192, 2048, 6
MODEL = fm.RQSpline(n_layers=4, hidden_sizes=(64, 64), n_bins=8)
OPTIMIZER = make_optimizer(1e-3)


def _chain_draws(key, loop):
    """``(N_CHAINS, N_DRAWS, 2)``: 8 chains per mode; chains 0-7 leave mode 0 for mode 1."""
    mode = np.repeat(np.arange(4), N_CHAINS // 4)
    if loop >= N_LOOPS_IN_MODE:
        mode[: N_CHAINS // 4] = 1
    noise = jax.random.normal(key, (N_CHAINS, N_DRAWS, 2))
    return jnp.asarray(CENTRES[mode][:, None]) + jnp.asarray(SCALES[mode])[:, None, None] * noise


def _share_of_flow_in_left_mode(memory_share, seed):
    """The share of the flow's draws nearest mode 0 after each training loop ``(N_LOOPS,)``."""
    state = init_train_state(MODEL.init(jax.random.key(seed), 2), OPTIMIZER)
    buffer = init_buffer(N_CHAINS, 3 * N_DRAWS, 2, jnp.float32)

    @jax.jit
    def train_loop(key, state, buffer, draws):
        key_append, key_select, key_train = jax.random.split(key, 3)
        buffer = append_draws(key_append, buffer, draws)
        examples, validation = split_training_data(
            key_select, buffer, N_EXAMPLES, N_VALIDATION, N_HELD_OUT, memory_share
        )
        state, _, _ = train_model(
            MODEL, OPTIMIZER, key_train, state, examples, 5, 1000, None, validation
        )
        return state, buffer

    @jax.jit
    def flow_draws(params):
        keys = jax.random.split(jax.random.key(seed + 7), 20000)
        return jax.vmap(MODEL.sample_and_log_prob, in_axes=(None, 0))(params, keys)[0]

    shares = []
    for loop in range(N_LOOPS):
        key_draws, key_loop = jax.random.split(jax.random.fold_in(jax.random.key(seed), loop))
        state, buffer = train_loop(key_loop, state, buffer, _chain_draws(key_draws, loop))
        x = np.asarray(flow_draws(state.params))
        nearest = ((x[:, None] - CENTRES[None]) ** 2).sum(-1).argmin(1)
        shares.append(float(np.mean(nearest == 0)))
    return np.asarray(shares)


def test_the_flow_keeps_proposing_in_a_mode_the_chains_left():
    # seed 1 passes too (0.067 in data.MEMORY_SHARE's measurements); one seed keeps CI short
    shares = _share_of_flow_in_left_mode(MEMORY_SHARE, 0)
    assert shares[0] > 0.15, shares  # the mode was learnt while the chains were there
    assert shares[-3:].min() > 0.02, shares  # and is still proposed 7 loops after they left


def test_without_memory_the_flow_forgets_it():
    """The control: the window alone (the sampler before the memory) loses the mode."""
    shares = _share_of_flow_in_left_mode(0.0, 0)
    assert shares[0] > 0.15, shares
    assert shares[-3:].max() < 0.01, shares
