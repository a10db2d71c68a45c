"""`make_pairwise`: the local difference agrees with the energy in every form; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.testing import overlap, sherrington_kirkpatrick

N = 7


def _random_symmetric(rng, shape_tail=()):
    w = rng.normal(size=(N, N, *shape_tail))
    if shape_tail:
        w = 0.5 * (w + np.transpose(w, (1, 0, 3, 2)))
    else:
        w = 0.5 * (w + w.T)
    w[np.arange(N), np.arange(N)] = 0.0
    return w


def _edges(rng, n_edges=10):
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    chosen = rng.choice(len(pairs), n_edges, replace=False)
    return np.array([pairs[c] for c in chosen])


def _targets():
    rng = np.random.default_rng(0)
    edges = _edges(rng)
    w3 = rng.normal(size=(len(edges), 3, 3))
    return {
        "dense_spins": fm.make_pairwise(_random_symmetric(rng), rng.normal(size=N), beta=0.7),
        "dense_binary_units": fm.make_pairwise(
            _random_symmetric(rng), rng.normal(size=N), spins=False
        ),
        "dense_categorical": fm.make_pairwise(
            _random_symmetric(rng, (3, 3)), rng.normal(size=(N, 3)), n_categories=3, beta=1.3
        ),
        "sparse_spins": fm.make_pairwise((edges, rng.normal(size=len(edges))), np.zeros(N)),
        "sparse_categorical": fm.make_pairwise(
            (edges, w3), rng.normal(size=(N, 3)), n_categories=3
        ),
    }


@pytest.mark.parametrize("name", list(_targets()))
def test_delta_log_prob_is_the_difference_of_log_prob_under_jit_and_vmap(name):
    target = _targets()[name]
    k = target.n_categories
    rng = np.random.default_rng(1)
    s = jnp.asarray(rng.integers(0, k, (32, N)), jnp.int32)
    i = jnp.asarray(rng.integers(0, N, 32), jnp.int32)
    new = jnp.asarray(rng.integers(0, k, 32), jnp.int32)
    delta = jax.jit(jax.vmap(target.delta_log_prob))(s, i, new)
    moved = jax.vmap(lambda s, i, v: s.at[i].set(v))(s, i, new)
    expected = jax.vmap(target.log_prob)(moved) - jax.vmap(target.log_prob)(s)
    np.testing.assert_allclose(delta, expected, rtol=1e-4, atol=1e-4)
    assert target.energy(s).shape == (32,)
    assert target.energy(s.reshape(4, 8, N)).shape == (4, 8)


def test_sparse_and_dense_forms_of_one_model_agree_and_conventions_differ():
    rng = np.random.default_rng(2)
    edges = _edges(rng)
    weights = rng.normal(size=len(edges))
    dense = np.zeros((N, N))
    dense[edges[:, 0], edges[:, 1]] = weights
    dense += dense.T
    s = jnp.asarray(rng.integers(0, 2, (16, N)), jnp.int32)
    for spins in (True, False):
        a = fm.make_pairwise(dense, spins=spins)
        b = fm.make_pairwise((edges, weights), spins=spins, n_sites=N)
        np.testing.assert_allclose(jax.vmap(a.log_prob)(s), jax.vmap(b.log_prob)(s), atol=1e-5)
    # {0,1} units: E = -(1/2) x^T W x, here with x = s
    units = fm.make_pairwise(dense, spins=False)
    x = np.asarray(s, np.float64)
    np.testing.assert_allclose(
        units.energy(s), -0.5 * np.einsum("si,ij,sj->s", x, dense, x), atol=1e-4
    )


def test_sk_instances_are_fixed_by_their_seed_and_flip_invariant():
    a, b = sherrington_kirkpatrick(16, 1.0, seed=4), sherrington_kirkpatrick(16, 1.0, seed=4)
    np.testing.assert_array_equal(a.couplings, b.couplings)
    assert not np.array_equal(a.couplings, sherrington_kirkpatrick(16, 1.0, seed=5).couplings)
    j = a.couplings[:, :, 1, 1]
    assert np.std(j[np.triu_indices(16, 1)]) == pytest.approx(1 / 4, rel=0.3)
    s = jnp.asarray(np.random.default_rng(0).integers(0, 2, (8, 16)), jnp.int32)
    np.testing.assert_allclose(jax.vmap(a.log_prob)(s), jax.vmap(a.log_prob)(1 - s), atol=1e-5)
    assert overlap(s, s).tolist() == [1.0] * 8
    assert overlap(s, 1 - s).tolist() == [-1.0] * 8


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        (
            {"couplings": np.array([[0.0, 1.0], [0.5, 0.0]])},
            ValueError,
            "couplings must be symmetric",
        ),
        ({"couplings": np.eye(3)}, ValueError, "couplings must have a zero diagonal"),
        ({"couplings": np.zeros((3, 4))}, ValueError, "couplings must be square"),
        ({"couplings": np.zeros((3, 3, 2))}, ValueError, r"couplings must have shape \(N, N\)"),
        (
            {"couplings": np.array([[0.0, np.nan], [np.nan, 0.0]])},
            ValueError,
            "couplings must be finite",
        ),
        (
            {"couplings": np.zeros((3, 3)), "fields": np.zeros(4)},
            ValueError,
            "fields must have shape",
        ),
        (
            {"couplings": np.zeros((3, 3)), "beta": float("inf")},
            ValueError,
            "beta must be a finite",
        ),
        ({"couplings": np.zeros((3, 3)), "n_categories": 3}, ValueError, "needs n_categories=2"),
        ({"couplings": (np.array([[0, 0]]), np.ones(1))}, ValueError, "two different sites"),
        ({"couplings": (np.array([[0, 1]]), np.ones(2))}, ValueError, "weights must have shape"),
        ({"couplings": (np.array([[0, 5]]), np.ones(1)), "n_sites": 3}, ValueError, r"\[0, N\)"),
        ({"couplings": "abc"}, TypeError, "couplings must be an array of real numbers"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        fm.make_pairwise(**kwargs)
