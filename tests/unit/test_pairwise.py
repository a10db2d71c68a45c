"""`make_pairwise`: the local difference agrees with the energy in every form; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.testing import overlap, sherrington_kirkpatrick

N = 7


def _symmetric(rng, k=None):
    """Random dense couplings ``(N, N)`` (``k`` None) or ``(N, N, k, k)``, symmetric."""
    if k is None:
        w = rng.normal(size=(N, N))
        w = 0.5 * (w + w.T)
    else:
        w = rng.normal(size=(N, N, k, k))
        w = 0.5 * (w + np.transpose(w, (1, 0, 3, 2)))
    w[np.arange(N), np.arange(N)] = 0.0
    return w


def _edges(rng, n_edges=10):
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    chosen = rng.choice(len(pairs), n_edges, replace=False)
    return np.array([pairs[c] for c in chosen])


def _targets():
    rng = np.random.default_rng(0)
    edges = _edges(rng)
    return {
        "dense_spins": fm.make_pairwise(_symmetric(rng), rng.normal(size=N), beta=0.7),
        "dense_units": fm.make_pairwise(_symmetric(rng), rng.normal(size=N), spins=False),
        "dense_binary_general": fm.make_pairwise(_symmetric(rng, 2), rng.normal(size=(N, 2))),
        "dense_categorical": fm.make_pairwise(
            _symmetric(rng, 3), rng.normal(size=(N, 3)), n_categories=3, beta=1.3
        ),
        "sparse_spins": fm.make_pairwise((edges, rng.normal(size=len(edges))), np.zeros(N)),
        "sparse_units": fm.make_pairwise(
            (edges, rng.normal(size=len(edges))), rng.normal(size=N), spins=False, beta=0.5
        ),
        "sparse_categorical": fm.make_pairwise(
            (edges, rng.normal(size=(len(edges), 3, 3))), rng.normal(size=(N, 3)), n_categories=3
        ),
    }


TARGETS = _targets()


@pytest.mark.parametrize("name", list(TARGETS))
def test_delta_log_prob_is_the_difference_of_log_prob_under_jit_and_vmap(name):
    target = TARGETS[name]
    k = target.n_categories
    rng = np.random.default_rng(1)
    s = jnp.asarray(rng.integers(0, k, (64, N)), jnp.int32)
    i = jnp.asarray(rng.integers(0, N, 64), jnp.int32)
    new = jnp.asarray(rng.integers(0, k, 64), jnp.int32)

    @jax.jit
    def evaluate(s, i, new):
        moved = jax.vmap(lambda s, i, v: s.at[i].set(v))(s, i, new)
        current = jax.vmap(target.log_prob)(s)
        return (
            jax.vmap(target.delta_log_prob)(s, i, new),
            jax.vmap(target.log_prob)(moved) - current,
            jax.vmap(target.delta_log_prob)(s, i, s[jnp.arange(s.shape[0]), i]),
            current,
            target.energy(s),
            target.energy(s.reshape(4, 16, N)),
        )

    delta, expected, unmoved, log_prob, energy, energy_grid = evaluate(s, i, new)
    np.testing.assert_allclose(delta, expected, rtol=1e-4, atol=1e-4)
    assert np.all(np.asarray(unmoved) == 0)
    # energy: vectorised over any leading axes, and log_prob = -beta E
    assert energy.shape == (64,) and energy_grid.shape == (4, 16)
    np.testing.assert_allclose(energy_grid.reshape(64), energy, rtol=1e-6)
    np.testing.assert_allclose(log_prob, -target.beta * energy, rtol=1e-5, atol=1e-5)


def test_site_flip_sweeps_keep_the_log_prob_exact_under_scan():
    target = TARGETS["sparse_categorical"]
    s = jnp.asarray(np.random.default_rng(5).integers(0, 3, (8, N)), jnp.int32)
    kernel = fm.SiteFlip(3, delta_log_prob=target.delta_log_prob)
    params = kernel.init_params(N)

    @jax.jit
    def sweeps(s):
        def sweep(state, key):
            return kernel.step(key, state, target.log_prob, params)[0], None

        state = kernel.init(s, target.log_prob)
        return jax.lax.scan(sweep, state, jax.random.split(jax.random.key(0), 5))[0]

    state = sweeps(s[0])
    assert not np.array_equal(state.position, s[0])
    np.testing.assert_allclose(state.log_prob, target.log_prob(state.position), rtol=1e-5)


def test_the_spin_and_unit_conventions():
    rng = np.random.default_rng(3)
    j, h = _symmetric(rng), rng.normal(size=N)
    s = rng.integers(0, 2, (16, N))
    sigma, x = 2.0 * s - 1.0, s.astype(np.float64)
    spins = fm.make_pairwise(j, h, beta=0.9)
    units = fm.make_pairwise(j, h, beta=0.9, spins=False)
    expected_spins = -0.5 * np.einsum("si,ij,sj->s", sigma, j, sigma) - sigma @ h
    expected_units = -0.5 * np.einsum("si,ij,sj->s", x, j, x) - x @ h
    np.testing.assert_allclose(jax.jit(spins.energy)(s), expected_spins, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(units.energy)(s), expected_units, rtol=1e-5, atol=1e-5)
    assert spins.spins and not units.spins
    # the general form of the spin convention: W[i, j, a, b] = J_ij v_a v_b, v = (-1, 1)
    np.testing.assert_allclose(spins.couplings[:, :, 0, 1], -j)
    np.testing.assert_allclose(spins.couplings[:, :, 1, 1], j)
    np.testing.assert_allclose(spins.fields, np.stack([-h, h], axis=1))


def test_sparse_and_dense_forms_of_one_model_agree():
    rng = np.random.default_rng(2)
    edges = _edges(rng)
    s2 = jnp.asarray(rng.integers(0, 2, (16, N)), jnp.int32)
    s3 = jnp.asarray(rng.integers(0, 3, (16, N)), jnp.int32)
    weights = rng.normal(size=len(edges))
    dense = np.zeros((N, N))
    dense[edges[:, 0], edges[:, 1]] = weights
    dense += dense.T
    for spins in (True, False):
        a = fm.make_pairwise(dense, spins=spins)
        b = fm.make_pairwise((edges, weights), spins=spins, n_sites=N)
        np.testing.assert_allclose(a.energy(s2), b.energy(s2), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b.dense_couplings(), a.couplings)
    weights3 = rng.normal(size=(len(edges), 3, 3))  # [a, b]: s_i = a, s_j = b for edge (i, j)
    dense3 = np.zeros((N, N, 3, 3))
    dense3[edges[:, 0], edges[:, 1]] = weights3
    dense3[edges[:, 1], edges[:, 0]] = np.swapaxes(weights3, 1, 2)
    h3 = rng.normal(size=(N, 3))
    a = fm.make_pairwise(dense3, h3, n_categories=3)
    b = fm.make_pairwise((edges, weights3), h3, n_categories=3)
    np.testing.assert_allclose(a.energy(s3), b.energy(s3), rtol=1e-5, atol=1e-5)
    # the reversed edge with transposed weights is the same bond
    c = fm.make_pairwise((edges[:, ::-1], np.swapaxes(weights3, 1, 2)), h3, n_categories=3)
    np.testing.assert_allclose(a.energy(s3), c.energy(s3), rtol=1e-5, atol=1e-5)


def test_sparse_neighbour_lists_are_padded_with_zero_weights():
    edges = np.array([[0, 1], [0, 2], [0, 3], [2, 3]])  # degrees 3, 1, 2, 2; site 4 alone
    target = fm.make_pairwise((edges, np.arange(1.0, 5.0)), n_sites=5)
    assert target.neighbours.shape == (5, 3) and target.neighbours.dtype == np.int32
    assert target.neighbour_weights.shape == (5, 3, 2, 2)
    assert target.couplings is None and target.edges.shape == (4, 2)
    assert sorted(target.neighbours[0].tolist()) == [1, 2, 3]
    assert target.neighbours[1].tolist() == [0, 5, 5]
    assert target.neighbours[4].tolist() == [5, 5, 5]
    padding = target.neighbours == 5
    assert np.all(target.neighbour_weights[padding] == 0)
    s = jnp.asarray([1, 0, 1, 1, 0], jnp.int32)
    i, k = (a.ravel() for a in jnp.meshgrid(jnp.arange(5), jnp.arange(2)))

    @jax.jit
    def both(i, k):
        moved = jax.vmap(lambda i, k: s.at[i].set(k))(i, k)
        delta = jax.vmap(target.delta_log_prob, (None, 0, 0))(s, i, k)
        return delta, jax.vmap(target.log_prob)(moved) - target.log_prob(s)

    delta, direct = both(i, k)
    np.testing.assert_allclose(delta, direct, atol=1e-5)


def test_x64_gives_float64_and_the_same_values():
    target = TARGETS["sparse_categorical"]
    s = np.random.default_rng(4).integers(0, 3, (8, N))
    default = np.asarray(jax.jit(target.energy)(s))
    with jax.enable_x64(True):
        energy = jax.jit(target.energy)(jnp.asarray(s))
        delta = jax.jit(target.delta_log_prob)(jnp.asarray(s[0]), 2, 1)
        assert energy.dtype == jnp.float64 and delta.dtype == jnp.float64
    np.testing.assert_allclose(energy, default, rtol=1e-5, atol=1e-5)


def test_sk_instances_are_fixed_by_their_seed_and_flip_invariant():
    a, b = sherrington_kirkpatrick(16, 1.0, seed=4), sherrington_kirkpatrick(16, 1.0, seed=4)
    np.testing.assert_array_equal(a.couplings, b.couplings)
    assert not np.array_equal(a.couplings, sherrington_kirkpatrick(16, 1.0, seed=5).couplings)
    j = a.couplings[:, :, 1, 1]
    np.testing.assert_array_equal(j, j.T)
    assert np.all(np.diag(j) == 0) and np.all(a.fields == 0)
    assert np.std(j[np.triu_indices(16, 1)]) == pytest.approx(1 / 4, rel=0.3)
    s = jnp.asarray(np.random.default_rng(0).integers(0, 2, (8, 16)), jnp.int32)
    log_prob = jax.jit(jax.vmap(a.log_prob))
    np.testing.assert_allclose(log_prob(s), log_prob(1 - s), atol=1e-5)
    assert overlap(s, s).tolist() == [1.0] * 8
    assert overlap(s, 1 - s).tolist() == [-1.0] * 8
    assert overlap(s.reshape(2, 4, 16), s.reshape(2, 4, 16)).shape == (2, 4)
    with pytest.raises(ValueError, match="one shape"):
        overlap(s, s[:, :4])
    with pytest.raises(TypeError, match="n_spins must be an integer"):
        sherrington_kirkpatrick(4.0, 1.0)


_BAD_INPUT = [
    ({"couplings": np.array([[0.0, 1.0], [0.5, 0.0]])}, ValueError, "couplings must be symmetric"),
    (
        {"couplings": np.array([[0.0, 1.0], [1.0 + 1e-9, 0.0]])},
        None,  # asymmetry within the relative 1e-6 tolerance is accepted
        None,
    ),
    ({"couplings": np.eye(3)}, ValueError, "couplings must have a zero diagonal"),
    ({"couplings": np.zeros((3, 4))}, ValueError, "couplings must be square"),
    ({"couplings": np.zeros((3, 3, 2))}, ValueError, r"couplings must have shape \(N, N\)"),
    (
        {"couplings": np.zeros((3, 3, 2, 2)), "n_categories": 3},
        ValueError,
        r"couplings must have shape .* K = 3",
    ),
    (
        {"couplings": np.array([[0.0, np.nan], [np.nan, 0.0]])},
        ValueError,
        "couplings must be finite",
    ),
    ({"couplings": "abc"}, TypeError, "couplings must be an array of real numbers"),
    ({"couplings": np.zeros((3, 3)), "fields": np.zeros(4)}, ValueError, "fields must have shape"),
    (
        {"couplings": np.zeros((3, 3)), "fields": np.array([0.0, np.inf, 0.0])},
        ValueError,
        "fields must be finite",
    ),
    ({"couplings": np.zeros((3, 3)), "beta": float("inf")}, ValueError, "beta must be a finite"),
    ({"couplings": np.zeros((3, 3)), "beta": "1"}, TypeError, "beta must be a finite"),
    ({"couplings": np.zeros((3, 3)), "n_categories": 1}, ValueError, "n_categories must be"),
    ({"couplings": np.zeros((3, 3)), "n_categories": 2.5}, TypeError, "n_categories must be"),
    (
        {"couplings": np.zeros((3, 3)), "n_categories": 3},
        ValueError,
        r"couplings of shape \(N, N\) needs n_categories=2",
    ),
    ({"couplings": np.zeros((3, 3)), "spins": 1}, TypeError, "spins must be True or False"),
    (
        {"couplings": (np.array([[0, 0]]), np.ones(1))},
        ValueError,
        r"couplings \(edges\) must join two different sites",
    ),
    (
        {"couplings": (np.array([[0, 1]]), np.ones(2))},
        ValueError,
        r"couplings \(weights\) must have shape",
    ),
    (
        {"couplings": (np.array([[0, 1, 2]]), np.ones(1))},
        ValueError,
        r"couplings \(edges\) must have shape \(E, 2\)",
    ),
    (
        {"couplings": (np.array([[0.0, 1.0]]), np.ones(1))},
        ValueError,
        r"couplings \(edges\) must be integers",
    ),
    (
        {"couplings": (np.array([[0, 5]]), np.ones(1)), "n_sites": 3},
        ValueError,
        r"couplings \(edges\) must hold .* \[0, N\)",
    ),
    ({"couplings": (np.array([[0, -1]]), np.ones(1))}, ValueError, r"couplings \(edges\)"),
    (
        {"couplings": (np.array([[0, 1]]),)},
        ValueError,
        r"couplings given as a tuple must be \(edges, weights\)",
    ),
    (
        {"couplings": (np.array([[0, 1]]), np.ones((1, 2, 2))), "fields": np.zeros(3)},
        None,  # N from the fields: site 2 has no bond
        None,
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "pattern"), _BAD_INPUT)
def test_bad_input_names_the_argument(kwargs, error, pattern):
    if error is None:
        fm.make_pairwise(**kwargs)
        return
    with pytest.raises(error, match=f"make_pairwise: {pattern}"):
        fm.make_pairwise(**kwargs)
