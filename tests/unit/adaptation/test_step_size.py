"""Dual averaging, alone and driving each kernel's adaptation to its target acceptance."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like.adaptation import (
    AdaptationState,
    DualAveragingState,
    dual_averaging_current,
    dual_averaging_final,
    dual_averaging_init,
    dual_averaging_restart,
    dual_averaging_update,
)
from flowmc_like.kernels import HMC, MALA, RandomWalk, StepInfo

# --- Dual averaging alone -------------------------------------------------------------------


def test_init_starts_at_the_initial_step_size():
    state = dual_averaging_init(0.3)
    assert isinstance(state, DualAveragingState)
    assert float(dual_averaging_current(state)) == pytest.approx(0.3)
    assert float(dual_averaging_final(state)) == pytest.approx(0.3)
    assert float(state.mu) == pytest.approx(np.log(3.0))
    assert int(state.count) == 0


def test_update_direction_follows_the_acceptance():
    state = dual_averaging_init(0.3)
    too_high = dual_averaging_update(state, 0.95, 0.574)
    too_low = dual_averaging_update(state, 0.1, 0.574)
    assert float(dual_averaging_current(too_high)) > float(dual_averaging_current(too_low))
    # Repeated low acceptance shrinks the step size below where it started.
    for _ in range(20):
        too_low = dual_averaging_update(too_low, 0.1, 0.574)
    assert float(dual_averaging_current(too_low)) < 0.3


def test_nan_acceptance_counts_as_zero():
    state = dual_averaging_init(0.3)
    from_nan = dual_averaging_update(state, jnp.nan, 0.65)
    from_zero = dual_averaging_update(state, 0.0, 0.65)
    for a, b in zip(from_nan, from_zero, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in from_nan)


def test_restart_equals_init_at_the_averaged_step_size():
    state = dual_averaging_init(0.3)
    for acceptance in (0.9, 0.2, 0.7):
        state = dual_averaging_update(state, acceptance, 0.65)
    restarted = dual_averaging_restart(state)
    expected = dual_averaging_init(dual_averaging_final(state))
    for a, b in zip(restarted, expected, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


@jax.jit
def converge_on_a_smooth_acceptance_curve(h0):
    """acceptance(h) = exp(-h); the root of exp(-h) = 0.574 is h* = -log(0.574)."""

    def body(state, _):
        acceptance = jnp.exp(-dual_averaging_current(state))
        return dual_averaging_update(state, acceptance, 0.574), None

    state, _ = jax.lax.scan(body, dual_averaging_init(h0), None, length=2000)
    return state


@pytest.mark.parametrize("h0", [1e-3, 0.5, 30.0])
def test_dual_averaging_finds_the_root(h0):
    state = converge_on_a_smooth_acceptance_curve(jnp.float32(h0))
    assert float(dual_averaging_final(state)) == pytest.approx(-np.log(0.574), rel=0.02)
    assert float(dual_averaging_current(state)) == pytest.approx(-np.log(0.574), rel=0.05)


# --- Each kernel's adaptation on a badly scaled 2-D Gaussian -------------------------------

N_CHAINS = 32
PHASE = 100  # steps per local phase; HMC's mass window
EVERY_WINDOW = 100  # n_phases for end_phase large enough that every phase closes a window
SD = np.array([0.1, 10.0])


def gaussian(x):
    return -0.5 * jnp.sum((x / jnp.asarray(SD, x.dtype)) ** 2)


@functools.lru_cache
def phase_runner(kernel):
    """Like a sampler's local phase: vmapped steps, scanned, adapting iff ``is_adapting``."""
    adaptation = kernel.adaptation()
    step_chains = jax.vmap(kernel.step, in_axes=(0, 0, None, None))

    def select(flag, if_true, if_false):
        return jax.tree.map(lambda a, b: jnp.where(flag, a, b), if_true, if_false)

    @jax.jit
    def run(key, positions, adapt_state, frozen_params, is_adapting):
        states = jax.vmap(kernel.init, in_axes=(0, None))(positions, gaussian)

        def one_step(carry, step_key):
            states, adapt_state = carry
            params = select(is_adapting, adaptation.current(adapt_state), frozen_params)
            keys = jax.random.split(step_key, N_CHAINS)
            states, infos = step_chains(keys, states, gaussian, params)
            assert isinstance(infos, StepInfo) and infos.acceptance_prob.shape == (N_CHAINS,)
            updated = adaptation.update(adapt_state, states.position, infos)
            adapt_state = select(is_adapting, updated, adapt_state)
            return (states, adapt_state), jnp.mean(infos.acceptance_prob)

        (states, adapt_state), acceptance = jax.lax.scan(
            one_step, (states, adapt_state), jax.random.split(key, PHASE)
        )
        ended = adaptation.end_phase(adapt_state, EVERY_WINDOW)
        return states.position, select(is_adapting, ended, adapt_state), acceptance

    return adaptation, run


def adapt_then_freeze(kernel, n_adapting_phases, n_frozen_phases=2, seed=0):
    """Returns (mean acceptance per adapting step, per frozen step, final params, state)."""
    adaptation, run = phase_runner(kernel)
    params = kernel.init_params(2)
    # Start under-dispersed in the wide direction and over-dispersed in the narrow one.
    positions = jnp.asarray(np.random.default_rng(seed).standard_normal((N_CHAINS, 2)))
    adapt_state = adaptation.init(params, positions)
    keys = jax.random.split(jax.random.key(seed), n_adapting_phases + n_frozen_phases)
    adapting, frozen = [], []
    for key in keys[:n_adapting_phases]:
        positions, adapt_state, acceptance = run(key, positions, adapt_state, params, True)
        adapting.append(np.asarray(acceptance))
    final_params = adaptation.final(adapt_state)
    for key in keys[n_adapting_phases:]:
        positions, same_state, acceptance = run(key, positions, adapt_state, final_params, False)
        frozen.append(np.asarray(acceptance))
    jax.tree.map(np.testing.assert_array_equal, same_state, adapt_state)  # frozen: untouched
    return np.concatenate(adapting), np.concatenate(frozen), final_params, adapt_state


@pytest.mark.parametrize(
    "kernel", [MALA(step_size=1.0), RandomWalk(scale=0.01)], ids=["mala", "random_walk"]
)
def test_step_size_adaptation_reaches_the_target_acceptance(kernel):
    adapting, frozen, final_params, adapt_state = adapt_then_freeze(kernel, n_adapting_phases=4)
    assert isinstance(adapt_state, AdaptationState) and adapt_state.mass is None
    initial, final = float(kernel.init_params(2)[0]), float(final_params[0])
    assert np.isfinite(final) and abs(np.log(final / initial)) > np.log(2.0)  # it moved
    target = kernel.target_acceptance
    # Last 200 of 400 adapting steps, then 200 steps with the frozen final params.
    assert abs(adapting[-200:].mean() - target) < 0.05
    assert abs(frozen.mean() - target) < 0.05


def test_hmc_adaptation_reaches_the_target_and_recovers_the_variances():
    kernel = HMC(step_size=1.0, n_leapfrog=10)
    adapting, frozen, final_params, adapt_state = adapt_then_freeze(kernel, n_adapting_phases=6)
    # Windows closed at every phase end: Welford and dual averaging were restarted.
    assert int(adapt_state.mass.welford.count) == 0
    assert int(adapt_state.step_size.count) == 0
    np.testing.assert_allclose(np.asarray(final_params.inverse_mass), SD**2, rtol=0.3)
    assert abs(adapting[-200:].mean() - kernel.target_acceptance) < 0.05
    # With a fixed number of leapfrog steps, acceptance on a 2-D Gaussian is not monotone in
    # the step size (resonances), so the frozen averaged step size need not give exactly 0.65;
    # it must still be a sound, well-accepted setting.
    assert 0.5 < frozen.mean() < 0.99


def test_hmc_window_close_resets_welford_and_restarts_dual_averaging():
    window_size, n_chains = 3, 4
    adaptation = HMC(step_size=0.5).adaptation()
    rng = np.random.default_rng(0)
    positions = jnp.asarray(rng.normal(size=(window_size, n_chains, 2)) * [2.0, 0.5], jnp.float32)
    state = adaptation.init(HMC(step_size=0.5).init_params(2), positions[0])
    infos = StepInfo(
        jnp.full((n_chains,), 0.9), jnp.ones((n_chains,), bool), jnp.zeros((n_chains,), bool)
    )
    update = jax.jit(adaptation.update)
    for t in range(window_size):
        before = state
        state = update(state, positions[t], infos)
        assert int(state.step_size.count) == t + 1
        np.testing.assert_array_equal(np.asarray(adaptation.current(state).inverse_mass), 1.0)
    # A run of one adapting phase (n_phases // 2 = 0 windows) never changes the mass.
    unchanged = adaptation.end_phase(state, 1)
    np.testing.assert_array_equal(np.asarray(adaptation.current(unchanged).inverse_mass), 1.0)
    assert int(unchanged.mass.welford.count) == 0 and int(unchanged.step_size.count) == window_size
    state = jax.jit(adaptation.end_phase, static_argnums=1)(state, 2)
    # The window closed: the new inverse mass is in use, dual averaging restarted from the
    # averaged step size of the closed window (which includes the last update).
    assert int(state.mass.welford.count) == 0
    assert int(state.step_size.count) == 0
    last = dual_averaging_update(before.step_size, 0.9, HMC.target_acceptance)
    restart = float(dual_averaging_final(last))
    assert float(adaptation.current(state).step_size) == pytest.approx(restart, rel=1e-6)
    assert float(adaptation.final(state).step_size) == pytest.approx(restart, rel=1e-6)
    assert float(state.step_size.mu) == pytest.approx(np.log(10 * restart), rel=1e-6)
    expected = np.asarray(positions).var(axis=0, ddof=1).mean(axis=0)
    np.testing.assert_allclose(
        np.asarray(adaptation.current(state).inverse_mass),
        n_chains * window_size / (n_chains * window_size + 5) * expected
        + 1e-3 * 5 / (n_chains * window_size + 5),
        rtol=1e-5,
    )
