"""LatticeAutoregressive: conformance, exact normalisation, sampling, the stencil, errors."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.models.lattice_autoregressive import _stencil


@pytest.mark.parametrize(
    ("model", "n_dim"),
    [
        pytest.param(fm.LatticeAutoregressive((2, 3), hidden_size=8, radius=1), 6, id="k2"),
        pytest.param(
            fm.LatticeAutoregressive((2, 2), 3, radius=1, hidden_size=8, symmetric=True),
            4,
            id="k3_sym",
        ),
    ],
)
def test_conformance(model, n_dim):
    report = fm.check_model(model, n_dim=n_dim)
    assert "normalized" in report.passed and "fit_decreases_loss" in report.passed


def _random_params(model, n_dim, seed=0):
    params = model.init(jax.random.key(seed), n_dim)
    leaves, treedef = jax.tree.flatten(params.trainable)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    pairs = zip(leaves, keys, strict=True)
    noisy = [leaf + 0.5 * jax.random.normal(k, leaf.shape) for leaf, k in pairs]
    return fm.ModelParams(jax.tree.unflatten(treedef, noisy), ())


@pytest.mark.parametrize("symmetric", [False, True])
def test_exactly_normalised_and_sampling_agrees_with_log_prob(symmetric):
    model = fm.LatticeAutoregressive((3, 3), radius=1, hidden_size=8, symmetric=symmetric)
    params = _random_params(model, 9)
    states = jnp.asarray(list(itertools.product([0, 1], repeat=9)), jnp.int32)
    log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(params, states)
    assert float(jax.nn.logsumexp(log_q)) == pytest.approx(0.0, abs=1e-5)
    draws, log_q_draws = jax.vmap(lambda k: model.sample_and_log_prob(params, k))(
        jax.random.split(jax.random.key(3), 64)
    )
    again = jax.vmap(model.log_prob, in_axes=(None, 0))(params, draws)
    np.testing.assert_allclose(log_q_draws, again, rtol=1e-5, atol=1e-5)


def test_draw_frequencies_follow_the_density():
    model = fm.LatticeAutoregressive((2, 3), radius=1, hidden_size=8)
    params = _random_params(model, 6, seed=4)
    draws, _ = jax.jit(jax.vmap(lambda k: model.sample_and_log_prob(params, k)))(
        jax.random.split(jax.random.key(5), 40000)
    )
    codes = np.asarray(draws) @ (1 << np.arange(6)[::-1])
    counts = np.bincount(codes, minlength=64)
    states = jnp.asarray(list(itertools.product([0, 1], repeat=6)), jnp.int32)
    log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(params, states)
    expected = 40000 * np.exp(np.asarray(log_q))
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 63 + 5 * np.sqrt(2 * 63), chi2  # 63 degrees of freedom


def test_uniform_at_init_and_the_uniform_path_matches_the_key_path():
    model = fm.LatticeAutoregressive((4, 4), hidden_size=8, symmetric=True)
    params = model.init(jax.random.key(0), 16)
    _, log_q = model.sample_and_log_prob(params, jax.random.key(1))
    assert float(log_q) == pytest.approx(-16 * np.log(2.0), rel=1e-6)
    u = jax.random.uniform(jax.random.key(2), (model.n_uniforms(16),))
    s_u, log_q_u = model.sample_and_log_prob_from_uniform(params, u)
    assert s_u.shape == (16,) and s_u.dtype == jnp.int32
    assert float(log_q_u) == pytest.approx(float(model.log_prob(params, s_u)), abs=1e-5)


def test_stencil_wraps_around_the_torus_and_sees_only_earlier_sites():
    index, available = _stencil((4, 5), 1)
    assert index.shape == (20, 8)
    # site 0's neighbours wrap to the last row and column; none is drawn before it
    assert set(index[0]) == {19, 15, 16, 4, 1, 9, 5, 6}
    assert not available[0].any()
    # the last site sees all 8 of its neighbours
    assert available[19].all()
    assert np.all(available == (index < np.arange(20)[:, None]))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"shape": (4,)}, "shape must be"),
        ({"shape": (4, 4), "radius": 0}, "radius must be an integer >= 1"),
        ({"shape": (4, 4), "hidden_size": 0}, "hidden_size must be an integer >= 1"),
        ({"shape": (4, 4), "n_categories": 1}, "n_categories must be an integer >= 2"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        fm.LatticeAutoregressive(**kwargs)


def test_wrong_n_dim_names_the_shape():
    with pytest.raises(ValueError, match=r"n_dim=15 does not match shape=\(4, 4\)"):
        fm.LatticeAutoregressive((4, 4)).init(jax.random.key(0), 15)
