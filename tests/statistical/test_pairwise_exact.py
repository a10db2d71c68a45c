"""A spin glass against exact enumeration: the default discrete sampler, and a planted bug.

The SK instance (N = 12, beta = 2: below the spin-glass transition) is enumerated exactly
(`flowmc_like.testing.exact_pairwise`): the energy and the overlap ``q^2`` of chains paired
(0, 1), (2, 3), ... are compared with their exact means, as z-scores against the Monte Carlo
standard error (exact sd over the square root of ArviZ's bulk ESS).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.testing import exact_pairwise, overlap, sherrington_kirkpatrick
from tests.helpers.mcse import mean_z_scores

pytestmark = pytest.mark.statistical

Z_BOUND = 4.0
N_CHAINS = 32
TARGET = sherrington_kirkpatrick(12, beta=2.0, seed=1)


@functools.cache
def _exact():
    return exact_pairwise(TARGET)


def _z_scores(result):
    """z of ``E`` (all chains) and of ``q^2`` (chain pairs)."""
    exact = _exact()
    samples = np.asarray(result.samples)
    energy = np.asarray(TARGET.energy(samples), np.float64)[..., None]
    q2 = overlap(samples[0::2], samples[1::2])[..., None] ** 2
    z_energy = mean_z_scores(energy, np.array([exact.mean_energy]), np.array([exact.energy_sd]))
    z_q2 = mean_z_scores(q2, np.array([exact.q2]), np.array([exact.q2_sd]))
    return float(z_energy[0]), float(z_q2[0])


def _starts():
    values = np.random.default_rng(0).integers(0, 2, (N_CHAINS, TARGET.n_dim))
    return jnp.asarray(values, jnp.int32)


def test_default_discrete_sampler_matches_exact_spin_glass():
    """SiteFlip + Autoregressive with the library's defaults: pre-training, symmetry, split."""
    sampler = fm.Sampler(
        TARGET.log_prob,
        n_chains=N_CHAINS,
        local_kernel=fm.SiteFlip(2, delta_log_prob=TARGET.delta_log_prob),
        global_model=fm.Autoregressive(2, hidden_sizes=(32,)),
        n_training_loops=10,
        n_production_loops=20,
        progress_bar=False,
    )
    result = sampler.run(jax.random.key(0), _starts())
    assert result.global_model.symmetric is True  # SK without fields is flip-invariant
    z = _z_scores(result)
    assert max(abs(v) for v in z) < Z_BOUND, z
    assert result.global_acceptance.mean() > 0.5


def _local_only(delta_log_prob):
    sampler = fm.Sampler(
        TARGET.log_prob,
        n_chains=N_CHAINS,
        local_kernel=fm.SiteFlip(2, delta_log_prob=delta_log_prob),
        global_model=None,
        n_training_loops=2,
        n_production_loops=8,
        n_local_steps=250,
        progress_bar=False,
    )
    return sampler.run(jax.random.key(1), _starts())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_z_test_catches_a_local_move_at_the_wrong_temperature():
    """Single-site sweeps pass; the same sweeps whose difference is 20 % too strong fail."""
    assert max(abs(v) for v in _z_scores(_local_only(TARGET.delta_log_prob))) < Z_BOUND

    def too_cold(s, i, k):
        return 1.2 * TARGET.delta_log_prob(s, i, k)

    # The Sampler spot-checks delta_log_prob against log_prob before compiling and refuses
    # this one; the z-test must catch it when the kernel is driven directly.
    with pytest.raises(ValueError, match="delta_log_prob"):
        _local_only(too_cold)
    kernel = fm.SiteFlip(2, delta_log_prob=too_cold)
    params = kernel.init_params(TARGET.n_dim)

    @jax.jit
    def sweeps(key, positions):
        def one_chain(key, x):
            state = kernel.init(x, TARGET.log_prob)

            def body(state, key):
                state, _ = kernel.step(key, state, TARGET.log_prob, params)
                return state, state.position

            _, trace = jax.lax.scan(body, state, jax.random.split(key, 2000))
            return trace[500:]

        return jax.vmap(one_chain)(jax.random.split(key, positions.shape[0]), positions)

    class Result:
        samples = np.asarray(sweeps(jax.random.key(2), _starts()))

    z = _z_scores(Result)
    assert max(abs(v) for v in z) > Z_BOUND, z
