"""SiteFlip with ``delta_log_prob(s, i, k, data)``: the run's data reach the local difference.

The target is an Ising chain on a ring whose bond couplings are the data: ``log p(s) =
sum_i J_i sigma_i sigma_{i+1}`` with ``sigma = 2 s - 1``. A run on other couplings of the
same shape must reuse the compiled programs: the delta function is traced once.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.kernels import SiteFlip, SiteFlipState
from flowmc_like.kernels.site_flip import bound_data

N_SITES = 10


def ring_log_prob(s, coupling):
    sigma = (2 * s - 1).astype(jnp.result_type(float))
    return jnp.sum(coupling * sigma * jnp.roll(sigma, -1))


def flat_log_prob(s, data):
    return ring_log_prob(s, data)


def ring_delta(s, i, k, coupling):
    """Only the two bonds of site i change: (J_{i-1} sigma_{i-1} + J_i sigma_{i+1}) dsigma_i."""
    sigma = (2 * s - 1).astype(jnp.result_type(float))
    before, after = (i - 1) % N_SITES, (i + 1) % N_SITES
    change = (2 * k - 1) - sigma[i]
    return change * (coupling[before] * sigma[before] + coupling[i] * sigma[after])


def _couplings(seed):
    return jnp.asarray(np.random.default_rng(seed).normal(0.0, 1.0, N_SITES))


def test_delta_with_data_agrees_with_log_prob_differences():
    rng = np.random.default_rng(0)
    kernel = SiteFlip(delta_log_prob=ring_delta)
    assert kernel.delta_takes_data
    for seed in (1, 2):
        coupling = _couplings(seed)
        log_prob_fn = functools.partial(flat_log_prob, data=coupling)  # as the Sampler binds it
        for _ in range(20):
            s = jnp.asarray(rng.integers(0, 2, N_SITES), jnp.int32)
            i, k = int(rng.integers(N_SITES)), int(rng.integers(2))
            direct = ring_log_prob(s.at[i].set(k), coupling) - ring_log_prob(s, coupling)
            np.testing.assert_allclose(ring_delta(s, i, k, coupling), direct, atol=1e-5)
            state = SiteFlipState(s, ring_log_prob(s, coupling))
            differences = kernel.log_prob_differences(
                state, jnp.asarray(i), jnp.arange(2, dtype=jnp.int32), log_prob_fn
            )
            full = [ring_log_prob(s.at[i].set(c), coupling) - state.log_prob for c in (0, 1)]
            np.testing.assert_allclose(differences, full, atol=1e-5)
        positions = jnp.asarray(rng.integers(0, 2, (4, N_SITES)), jnp.int32)
        kernel.check_target(log_prob_fn, positions)  # the Sampler's pre-compile check passes

    def wrong_sign(s, i, k, coupling):
        return ring_delta(s, i, k, -coupling)

    with pytest.raises(ValueError, match="disagrees with log_prob"):
        SiteFlip(delta_log_prob=wrong_sign).check_target(log_prob_fn, positions)


def test_the_signature_decides_whether_the_data_are_passed():
    def three(s, i, k):
        return 0.0

    def with_default(s, i, k, data=None):
        return 0.0

    def variadic(*args):
        return 0.0

    assert not SiteFlip(delta_log_prob=three).delta_takes_data
    assert SiteFlip(delta_log_prob=with_default).delta_takes_data
    assert not SiteFlip(delta_log_prob=variadic).delta_takes_data
    assert not SiteFlip(delta_log_prob=functools.partial(ring_delta, coupling=1.0)).delta_takes_data
    assert not SiteFlip().delta_takes_data
    for bad in (lambda s, i: 0.0, lambda s, i, k, data, extra: 0.0, lambda s, i, k, *, data: 0.0):
        with pytest.raises(TypeError, match=r"\(s, i, k\) or \(s, i, k, data\)"):
            SiteFlip(delta_log_prob=bad)


def test_tempering_keeps_the_data_argument():
    kernel = SiteFlip(delta_log_prob=ring_delta)
    hot = kernel.tempered(jnp.asarray(0.25))
    assert hot.delta_takes_data
    s, coupling = jnp.zeros(N_SITES, jnp.int32).at[3].set(1), _couplings(3)
    np.testing.assert_allclose(
        hot.delta_log_prob(s, 4, 1, coupling), 0.25 * ring_delta(s, 4, 1, coupling), rtol=1e-6
    )


def test_a_log_density_without_data_is_a_clear_error():
    kernel = SiteFlip(delta_log_prob=ring_delta)
    s = jnp.zeros(N_SITES, jnp.int32)

    def no_data(s):
        return ring_log_prob(s, jnp.ones(N_SITES))

    state = kernel.init(s, no_data)
    with pytest.raises(TypeError, match="carries none"):
        kernel.step(jax.random.key(0), state, no_data, kernel.init_params(N_SITES))
    coupling = _couplings(4)
    assert bound_data(functools.partial(flat_log_prob, data=coupling)) is coupling


def _mean_bond_agreement(result):
    """Mean of sigma_i sigma_{i+1} over draws, chains and bonds."""
    sigma = 2.0 * np.asarray(result.samples, float) - 1.0
    return float(np.mean(sigma * np.roll(sigma, -1, axis=-1)))


@pytest.mark.parametrize("n_temperatures", [1, 3])
def test_a_run_on_new_couplings_of_the_same_shape_does_not_retrace(n_temperatures):
    """Ferromagnetic then antiferromagnetic couplings (beta J = +-1.5): the second run
    traces nothing (the delta function is not called again in Python) and its draws follow
    the new couplings: neighbours mostly agree, then mostly disagree."""
    n_traced = 0

    def counted_delta(s, i, k, coupling):
        nonlocal n_traced
        n_traced += 1
        return ring_delta(s, i, k, coupling)

    sampler = fm.Sampler(
        ring_log_prob, n_chains=4, local_kernel=SiteFlip(delta_log_prob=counted_delta),
        global_model=None, n_temperatures=n_temperatures, data=jnp.full(N_SITES, 1.5),
        n_training_loops=2, n_production_loops=2, n_local_steps=50, progress_bar=False,
    )  # fmt: skip
    x0 = jnp.zeros((4, N_SITES), jnp.int32)
    ferro = sampler.run(jax.random.key(0), x0)
    assert n_traced > 0
    n_first = n_traced
    anti = sampler.run(jax.random.key(0), x0, data=jnp.full(N_SITES, -1.5))
    assert n_traced == n_first
    # E[sigma_i sigma_{i+1}] = tanh(1.5) = 0.905 on a long ring; +-0.5 is far outside noise.
    assert _mean_bond_agreement(ferro) > 0.5
    assert _mean_bond_agreement(anti) < -0.5
