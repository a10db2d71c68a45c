"""SiteFlip: exact stationarity of the sweep's transition matrix, sampling, ergodicity, NaN policy.

The transition matrices are built from `SiteFlip.site_transition_probabilities`, the rows the
kernel samples from; `test_one_sweep_samples_the_exact_transition_row` checks that `step`
really draws from them, so together they pin the sweep down exactly.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from flowmc_like.conformance import (
    check_kernel_deterministic,
    check_kernel_rejects_non_finite,
    check_kernel_state_layout,
)
from flowmc_like.kernels import SiteFlip, SiteFlipState
from tests.helpers.chains import run_chains

# --- Small targets with random interactions -------------------------------------------------

SPIN_DIM = 6  # 2^6 = 64 states
POTTS_DIM, POTTS_K = 4, 3  # 3^4 = 81 states


def _spin_parameters():
    rng = np.random.default_rng(6)
    coupling = rng.normal(0.0, 0.7, (SPIN_DIM, SPIN_DIM))
    coupling = np.triu(coupling, 1)
    coupling = coupling + coupling.T
    field = rng.normal(0.0, 0.5, SPIN_DIM)
    return coupling, field


SPIN_COUPLING, SPIN_FIELD = _spin_parameters()


def spin_log_prob(s):
    sigma = (2 * s - 1).astype(jnp.result_type(float))
    coupling = jnp.asarray(SPIN_COUPLING, sigma.dtype)
    return 0.5 * sigma @ coupling @ sigma + jnp.asarray(SPIN_FIELD, sigma.dtype) @ sigma


def spin_delta(s, i, k):
    sigma = (2 * s - 1).astype(jnp.result_type(float))
    local_field = jnp.asarray(SPIN_COUPLING, sigma.dtype)[i] @ sigma + jnp.asarray(SPIN_FIELD)[i]
    return ((2 * k - 1) - sigma[i]) * local_field


def _potts_parameters():
    rng = np.random.default_rng(34)
    pair = rng.normal(0.0, 0.8, (POTTS_DIM, POTTS_DIM, POTTS_K, POTTS_K))
    pair = 0.5 * (pair + pair.transpose(1, 0, 3, 2))
    pair[np.arange(POTTS_DIM), np.arange(POTTS_DIM)] = 0.0
    field = rng.normal(0.0, 0.5, (POTTS_DIM, POTTS_K))
    return pair, field


POTTS_PAIR, POTTS_FIELD = _potts_parameters()


def potts_log_prob(s):
    dtype = jnp.result_type(float)
    pair = jnp.asarray(POTTS_PAIR, dtype)
    sites = jnp.arange(POTTS_DIM)
    pair_terms = pair[sites[:, None], sites[None, :], s[:, None], s[None, :]]
    return 0.5 * jnp.sum(pair_terms) + jnp.sum(jnp.asarray(POTTS_FIELD, dtype)[sites, s])


def potts_delta(s, i, k):
    dtype = jnp.result_type(float)
    pair = jnp.asarray(POTTS_PAIR, dtype)
    field = jnp.asarray(POTTS_FIELD, dtype)
    sites = jnp.arange(POTTS_DIM)
    change = pair[i, sites, k, s] - pair[i, sites, s[i], s]
    return jnp.sum(change) + field[i, k] - field[i, s[i]]


SYSTEMS = {
    "spins_2^6": (spin_log_prob, spin_delta, SPIN_DIM, 2),
    "potts_3^4": (potts_log_prob, potts_delta, POTTS_DIM, POTTS_K),
}


def all_states(n_dim, n_categories):
    return np.array(list(itertools.product(range(n_categories), repeat=n_dim)), dtype=np.int32)


def state_index(states, n_categories):
    """Row index of each state in `all_states` (base-K digits, first site most significant)."""
    weights = n_categories ** np.arange(states.shape[-1] - 1, -1, -1)
    return np.asarray(states) @ weights


def site_matrices(kernel, log_prob, n_dim, n_categories):
    """``(n_dim, S, S)`` exact single-site transition matrices, in float64."""
    states = all_states(n_dim, n_categories)
    with jax.enable_x64(True):

        def rows(position):
            state = kernel.init(position, log_prob)
            return jax.vmap(lambda i: kernel.site_transition_probabilities(state, i, log_prob))(
                jnp.arange(n_dim)
            )

        probs = np.asarray(jax.jit(jax.vmap(rows))(jnp.asarray(states)), np.float64)
        log_p = np.asarray(jax.jit(jax.vmap(log_prob))(jnp.asarray(states)), np.float64)
    n_states = len(states)
    matrices = np.zeros((n_dim, n_states, n_states))
    for site in range(n_dim):
        for k in range(n_categories):
            targets = states.copy()
            targets[:, site] = k
            matrices[site, np.arange(n_states), state_index(targets, n_categories)] += probs[
                :, site, k
            ]
    pi = np.exp(log_p - log_p.max())
    return matrices, pi / pi.sum()


def sweep_matrix(matrices):
    """Transition matrix of a sweep in a uniformly random order: mean over all orders."""
    n_dim, n_states, _ = matrices.shape
    total = np.zeros((n_states, n_states))
    orders = list(itertools.permutations(range(n_dim)))
    for order in orders:
        product = np.eye(n_states)
        for site in order:
            product = product @ matrices[site]
        total += product
    return total / len(orders)


KERNEL_CASES = [
    pytest.param(system, mode, use_delta, id=f"{system}-{mode}-{'delta' if use_delta else 'full'}")
    for system in SYSTEMS
    for mode in ("metropolis", "gibbs")
    for use_delta in (False, True)
]


def make_kernel(system, mode, use_delta):
    log_prob, delta, n_dim, n_categories = SYSTEMS[system]
    kernel = SiteFlip(n_categories, mode=mode, delta_log_prob=delta if use_delta else None)
    return kernel, log_prob, n_dim, n_categories


# --- Exact stationarity ---------------------------------------------------------------------


@pytest.mark.parametrize("system, mode, use_delta", KERNEL_CASES)
def test_sweep_transition_matrix_leaves_target_invariant(system, mode, use_delta):
    kernel, log_prob, n_dim, n_categories = make_kernel(system, mode, use_delta)
    matrices, pi = site_matrices(kernel, log_prob, n_dim, n_categories)
    for site_matrix in matrices:
        np.testing.assert_allclose(site_matrix.sum(axis=1), 1.0, atol=1e-12)
        assert site_matrix.min() >= 0.0
        flow = pi[:, None] * site_matrix  # detailed balance: pi_s T_ss' symmetric
        np.testing.assert_allclose(flow, flow.T, atol=1e-12)
    sweep = sweep_matrix(matrices)
    np.testing.assert_allclose(sweep.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(pi @ sweep, pi, atol=1e-12)
    # Irreducible: every state reachable from every other within n_dim sweeps.
    assert np.all(np.linalg.matrix_power(sweep, n_dim) > 0)


def test_stationarity_check_catches_a_wrong_acceptance():
    """A Metropolis rule accepting with min(1, exp(Delta / 2)) breaks pi T = pi visibly."""
    _, log_prob, n_dim, n_categories = make_kernel("spins_2^6", "metropolis", True)

    class HalfDelta(SiteFlip):
        def log_prob_differences(self, state, site, categories, log_prob_fn):
            return 0.5 * super().log_prob_differences(state, site, categories, log_prob_fn)

    wrong = HalfDelta(n_categories, delta_log_prob=spin_delta)
    matrices, pi = site_matrices(wrong, log_prob, n_dim, n_categories)
    residual = np.abs(pi @ sweep_matrix(matrices) - pi).max()
    assert residual > 1e-3, residual


def test_metropolis_rows_match_their_formula():
    kernel, log_prob, _, _ = make_kernel("potts_3^4", "metropolis", True)
    position = jnp.asarray([0, 2, 1, 1], jnp.int32)

    @jax.jit
    def row_at_site_1(position):
        state = kernel.init(position, log_prob)
        return kernel.site_transition_probabilities(state, jnp.int32(1), log_prob)

    row = np.asarray(row_at_site_1(position))
    for k in (0, 1):
        delta = float(log_prob(position.at[1].set(k)) - log_prob(position))
        np.testing.assert_allclose(row[k], min(1.0, np.exp(delta)) / 2, rtol=1e-5)
    np.testing.assert_allclose(row.sum(), 1.0, rtol=1e-6)


# --- The sweep samples the exact rows ---------------------------------------------------------


@pytest.mark.parametrize(
    "system, mode",
    [("spins_2^6", "metropolis"), ("potts_3^4", "metropolis"), ("potts_3^4", "gibbs")],
)
def test_one_sweep_samples_the_exact_transition_row(system, mode):
    kernel, log_prob, n_dim, n_categories = make_kernel(system, mode, True)
    matrices, _ = site_matrices(kernel, log_prob, n_dim, n_categories)
    sweep = sweep_matrix(matrices)
    start = np.array([1, 0, 2, 1, 0, 1][:n_dim], np.int32) % n_categories
    n_draws = 20_000

    @jax.jit
    def one_sweep(keys):
        state = kernel.init(jnp.asarray(start), log_prob)
        return jax.vmap(lambda key: kernel.step(key, state, log_prob, kernel.init_params(n_dim)))(
            keys
        )[0].position

    ends = np.asarray(one_sweep(jax.random.split(jax.random.key(11), n_draws)))
    counts = np.bincount(state_index(ends, n_categories), minlength=sweep.shape[0])
    expected = n_draws * sweep[state_index(start[None], n_categories)[0]]
    large = expected >= 5
    observed = np.append(counts[large], counts[~large].sum())
    predicted = np.append(expected[large], expected[~large].sum())
    assert counts[expected == 0].sum() == 0
    p_value = stats.chisquare(observed, predicted * observed.sum() / predicted.sum()).pvalue
    assert p_value > 1e-3, p_value


def test_metropolis_never_proposes_the_current_category():
    """On a flat target every proposal is accepted, so every site changes in every sweep."""
    kernel = SiteFlip(n_categories=3)
    flat = lambda s: jnp.zeros((), jnp.float32)  # noqa: E731
    start = jnp.asarray(np.random.default_rng(0).integers(0, 3, (8, 10)), jnp.int32)
    run = run_chains(kernel, flat, jax.random.key(0), start, kernel.init_params(10), 5)
    positions = np.concatenate([np.asarray(start)[:, None], np.asarray(run.position)], axis=1)
    assert np.all(positions[:, 1:] != positions[:, :-1])
    np.testing.assert_allclose(np.asarray(run.acceptance_prob), 1.0)


# --- Ergodicity: the random order escapes the Ising stripe state -------------------------------

L_STRIPE = 8
BETA_C = float(np.log(1.0 + np.sqrt(2.0)) / 2.0)


def ising_log_prob(s):
    sigma = (2 * s - 1).reshape(L_STRIPE, L_STRIPE).astype(jnp.float32)
    bonds = sigma * jnp.roll(sigma, 1, 0) + sigma * jnp.roll(sigma, 1, 1)
    return BETA_C * jnp.sum(bonds)


def stripe_state():
    row, col = np.divmod(np.arange(L_STRIPE * L_STRIPE), L_STRIPE)
    return jnp.asarray(((row + col) % 4 < 2).astype(np.int32))


def test_stripe_state_traps_a_fixed_checkerboard_order_but_not_random_order():
    kernel = SiteFlip(n_categories=2)
    stripe = stripe_state()
    n_sites = stripe.shape[0]
    row, col = np.divmod(np.arange(n_sites), L_STRIPE)
    checkerboard = jnp.asarray(
        np.concatenate([np.flatnonzero((row + col) % 2 == 0), np.flatnonzero((row + col) % 2)])
    )
    assert float(ising_log_prob(stripe)) == 0.0  # every flip has zero energy change

    @jax.jit
    def fixed_order_sweep(state, key):
        uniforms = jax.random.uniform(key, (n_sites,))

        def one_site(state, inputs):
            site, uniform = inputs
            state, _ = kernel._metropolis_update(state, site, 1, uniform, ising_log_prob)
            return state, None

        return jax.lax.scan(one_site, state, (checkerboard, uniforms))[0]

    state = kernel.init(stripe, ising_log_prob)
    for sweep, key in enumerate(jax.random.split(jax.random.key(0), 6)):
        state = fixed_order_sweep(state, key)
        expected = stripe if sweep % 2 else 1 - stripe
        np.testing.assert_array_equal(np.asarray(state.position), np.asarray(expected))

    run = run_chains(
        kernel, ising_log_prob, jax.random.key(1), stripe[None], kernel.init_params(n_sites), 20
    )
    positions = np.asarray(run.position[0])
    is_stripe = np.all(positions == np.asarray(stripe), axis=1)
    is_flipped = np.all(positions == 1 - np.asarray(stripe), axis=1)
    assert not np.any(is_stripe | is_flipped)
    assert len(np.unique(np.asarray(run.log_prob[0]))) > 5


# --- Protocol properties shared with the continuous kernels ----------------------------------


def nan_for_many_ones(s):
    return jnp.where(jnp.sum(s) > 3, jnp.nan, spin_log_prob(s))


def neg_inf_for_site_zero(s):
    return jnp.where(s[0] == 1, -jnp.inf, spin_log_prob(s))


def switched_spin_target(s, which):
    """One function for all three targets, so each kernel compiles once (``which`` is data)."""
    return jax.lax.switch(which, [spin_log_prob, nan_for_many_ones, neg_inf_for_site_zero], s)


@pytest.mark.parametrize("mode", ["metropolis", "gibbs"])
def test_protocol_properties(mode):
    kernel = SiteFlip(n_categories=2, mode=mode)
    params = kernel.init_params(SPIN_DIM)
    start = jnp.zeros((16, SPIN_DIM), jnp.int32)
    check_kernel_state_layout(kernel, spin_log_prob, start[0], params)
    check_kernel_deterministic(kernel, switched_spin_target, start, params, 30, jnp.int32(0))
    nan_run = check_kernel_rejects_non_finite(
        kernel, switched_spin_target, start, params, 30, jnp.int32(1)
    )
    assert np.asarray(nan_run.position).sum(axis=-1).max() == 3
    inf_run = check_kernel_rejects_non_finite(
        kernel, switched_spin_target, start, params, 30, jnp.int32(2)
    )
    assert np.all(np.asarray(inf_run.position)[..., 0] == 0)
    assert np.asarray(inf_run.position).sum(axis=-1).max() == SPIN_DIM - 1


def test_stored_log_prob_is_exact_after_each_sweep():
    kernel = SiteFlip(n_categories=3, delta_log_prob=potts_delta)
    start = jnp.asarray(np.random.default_rng(1).integers(0, 3, (8, POTTS_DIM)), jnp.int32)
    run = run_chains(kernel, potts_log_prob, jax.random.key(2), start, kernel.init_params(4), 30)
    recomputed = jax.vmap(jax.vmap(potts_log_prob))(run.position)
    np.testing.assert_array_equal(np.asarray(recomputed), np.asarray(run.log_prob))


def test_delta_and_full_evaluation_give_the_same_chain():
    full = SiteFlip(n_categories=2)
    local = SiteFlip(n_categories=2, delta_log_prob=spin_delta)
    start = jnp.zeros((4, SPIN_DIM), jnp.int32)
    runs = [
        run_chains(k, spin_log_prob, jax.random.key(5), start, k.init_params(SPIN_DIM), 20)
        for k in (full, local)
    ]
    np.testing.assert_array_equal(np.asarray(runs[0].position), np.asarray(runs[1].position))


# --- Configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_categories": 1}, ValueError, "n_categories must be an integer >= 2; got 1"),
        ({"n_categories": 2.0}, TypeError, "n_categories must be an integer >= 2"),
        ({"n_categories": True}, TypeError, "n_categories"),
        ({"mode": "heatbath"}, ValueError, "mode must be one of"),
        ({"mode": 3}, TypeError, "mode must be one of"),
        ({"delta_log_prob": 3}, TypeError, "delta_log_prob must be a callable"),
    ],
)
def test_bad_configuration(kwargs, error, match):
    with pytest.raises(error, match=match):
        SiteFlip(**kwargs)


def test_float_positions_are_refused():
    with pytest.raises(TypeError, match="SiteFlip positions must hold integers"):
        SiteFlip().init(jnp.zeros(4), spin_log_prob)


def test_state_type():
    state = SiteFlip().init(jnp.zeros(SPIN_DIM, jnp.int32), spin_log_prob)
    assert isinstance(state, SiteFlipState)
