"""Welford moments, the regularised variance and the windowed inverse-mass estimate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like.adaptation import (
    WelfordState,
    regularize_variance,
    welford_init,
    welford_update,
    welford_variance,
    windowed_mass_init,
    windowed_mass_update,
)


@jax.jit
def welford_over(values):
    """Feed ``values[t]`` for every t; return the final state."""
    state = welford_init(values.shape[1:], values.dtype)
    state, _ = jax.lax.scan(lambda s, v: (welford_update(s, v), None), state, values)
    return state


def test_welford_matches_numpy_per_chain():
    rng = np.random.default_rng(0)
    values = rng.normal(loc=[1.0, -3.0, 20.0], scale=[0.1, 2.0, 5.0], size=(200, 4, 3))
    state = welford_over(jnp.asarray(values, jnp.float32))
    assert isinstance(state, WelfordState)
    assert int(state.count) == 200
    np.testing.assert_allclose(np.asarray(state.mean), values.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(welford_variance(state)), values.var(axis=0, ddof=1), rtol=1e-4
    )


def test_welford_is_stable_for_a_large_offset():
    rng = np.random.default_rng(1)
    values = 1e4 + rng.standard_normal((500, 2))
    state = welford_over(jnp.asarray(values, jnp.float32))
    np.testing.assert_allclose(
        np.asarray(welford_variance(state)), values.var(axis=0, ddof=1), rtol=0.02
    )


def test_welford_variance_of_fewer_than_two_values_is_zero():
    state = welford_init((2,))
    np.testing.assert_array_equal(np.asarray(welford_variance(state)), [0.0, 0.0])
    state = welford_update(state, jnp.array([1.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(welford_variance(state)), [0.0, 0.0])


def test_regularize_variance_formula():
    variance = jnp.array([1e-2, 1.0, 1e2])
    n = 45
    expected = n / (n + 5) * np.asarray(variance) + 1e-3 * 5 / (n + 5)
    np.testing.assert_allclose(np.asarray(regularize_variance(variance, n)), expected, rtol=1e-6)
    assert float(regularize_variance(jnp.zeros(()), 0)) == pytest.approx(1e-3)


@jax.jit
def windowed_over(positions):
    """Feed positions ``(n_steps, n_chains, n_dim)`` to the windowed estimate (window 3)."""
    state = windowed_mass_init(jnp.ones(positions.shape[-1]), positions.shape[1])

    def body(state, x):
        state, is_closed = windowed_mass_update(state, x, 3)
        return state, (state.inverse_mass, is_closed, state.welford.count)

    return jax.lax.scan(body, state, positions)


def test_windowed_mass_closes_after_window_size_updates():
    rng = np.random.default_rng(2)
    positions = rng.normal(size=(7, 5, 2)) * [0.5, 3.0]
    _, (inverse_mass, is_closed, count) = windowed_over(jnp.asarray(positions, jnp.float32))
    np.testing.assert_array_equal(np.asarray(is_closed), [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(count), [1, 2, 0, 1, 2, 0, 1])
    for step, window in ((2, positions[0:3]), (5, positions[3:6])):
        within = window.var(axis=0, ddof=1).mean(axis=0)  # chain-averaged within-chain variance
        expected = regularize_variance(within, 5 * 3)
        np.testing.assert_allclose(np.asarray(inverse_mass[step]), expected, rtol=1e-5)
    # Unchanged between closes; the initial value before the first close.
    np.testing.assert_array_equal(np.asarray(inverse_mass[:2]), np.ones((2, 2)))
    np.testing.assert_array_equal(np.asarray(inverse_mass[3]), np.asarray(inverse_mass[2]))


def test_windowed_mass_uses_within_chain_variance():
    """Two groups of chains in modes 20 apart: the local scale (1), not the spread (~100)."""
    rng = np.random.default_rng(3)
    n_chains = 8
    modes = np.where(np.arange(n_chains) < 4, -10.0, 10.0)[:, None]
    positions = modes + rng.standard_normal((3, n_chains, 1))
    state = windowed_mass_init(jnp.ones(1), n_chains)
    for x in positions:
        state, _ = windowed_mass_update(state, jnp.asarray(x, jnp.float32), 3)
    assert 0.3 < float(state.inverse_mass[0]) < 3.0


def test_windowed_mass_with_a_window_below_two_never_updates():
    state = windowed_mass_init(jnp.array([2.0]), 3)
    for x in np.random.default_rng(4).normal(size=(4, 3, 1)):
        state, is_closed = windowed_mass_update(state, jnp.asarray(x, jnp.float32), 1)
        assert not bool(is_closed)
    assert float(state.inverse_mass[0]) == 2.0


def test_windowed_mass_rejects_positions_of_the_wrong_shape():
    state = windowed_mass_init(jnp.ones(2), n_chains=4)
    with pytest.raises(ValueError, match=r"expected \(n_chains, n_dim\) = \(4, 2\)"):
        windowed_mass_update(state, jnp.zeros((3, 2)), 10)
