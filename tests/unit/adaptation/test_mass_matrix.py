"""Welford moments, the regularised variance and the windowed inverse-mass estimate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like.adaptation import (
    WelfordState,
    close_mass_window,
    regularize_variance,
    welford_init,
    welford_update,
    welford_variance,
    windowed_mass_init,
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


def windows_over(positions, window, max_windows=10):
    """Feed positions ``(n_steps, n_chains, n_dim)``, closing a window every ``window`` steps
    (one local phase each); per window: (inverse mass, is_closed) after its close."""
    state = windowed_mass_init(jnp.ones(positions.shape[-1]), positions.shape[1])
    closes = []
    for start in range(0, positions.shape[0], window):
        for x in positions[start : start + window]:
            state = state._replace(welford=welford_update(state.welford, jnp.asarray(x)))
        state, is_closed = close_mass_window(state, max_windows)
        assert int(state.welford.count) == 0  # every close starts an empty window
        closes.append((np.asarray(state.inverse_mass), bool(is_closed)))
    return state, closes


def test_a_window_closes_with_the_chain_averaged_within_chain_variance():
    rng = np.random.default_rng(2)
    positions = np.asarray(rng.normal(size=(6, 5, 2)) * [0.5, 3.0], np.float32)
    _, closes = windows_over(positions, 3)
    windows = (positions[0:3], positions[3:6])
    for (inverse_mass, is_closed), window in zip(closes, windows, strict=True):
        within = window.var(axis=0, ddof=1).mean(axis=0)  # chain-averaged within-chain variance
        expected = regularize_variance(within, 5 * 3)
        assert is_closed
        np.testing.assert_allclose(inverse_mass, expected, rtol=1e-5)


def test_only_the_first_max_windows_windows_change_the_mass():
    positions = np.asarray(np.random.default_rng(5).normal(size=(9, 4, 1)), np.float32)
    _, closes = windows_over(positions, 3, max_windows=2)
    assert [is_closed for _, is_closed in closes] == [True, True, False]
    np.testing.assert_array_equal(closes[2][0], closes[1][0])


def test_windowed_mass_uses_within_chain_variance():
    """Two groups of chains in modes 20 apart: the local scale (1), not the spread (~100)."""
    rng = np.random.default_rng(3)
    n_chains = 8
    modes = np.where(np.arange(n_chains) < 4, -10.0, 10.0)[:, None]
    positions = np.asarray(modes + rng.standard_normal((3, n_chains, 1)), np.float32)
    state, _ = windows_over(positions, 3)
    assert 0.3 < float(state.inverse_mass[0]) < 3.0


def test_a_window_below_two_steps_never_updates():
    positions = np.asarray(np.random.default_rng(4).normal(size=(4, 3, 1)), np.float32)
    state, closes = windows_over(positions, 1)
    assert not any(is_closed for _, is_closed in closes)
    assert float(state.inverse_mass[0]) == 1.0
