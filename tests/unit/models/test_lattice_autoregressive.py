"""LatticeAutoregressive: conformance, exactness, sampling, the stencil, symmetry, errors.

Compilation dominates: tests share models and params (`perturbed`, cached) and batch sizes.
"""

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like import conformance as cf
from flowmc_like._types import Space
from flowmc_like.conformance.flows import batched_log_prob, batched_sample
from flowmc_like.models.lattice_autoregressive import LatticeAutoregressive, _stencil


@functools.cache
def perturbed(shape, n_categories=2, radius=1, hidden_size=8, seed=0, sigma=1.0):
    """Params far from the uniform init: every leaf plus noise (kernels scaled by fan-in)."""
    model = LatticeAutoregressive(shape, n_categories, radius, hidden_size)
    params = model.init(jax.random.key(seed), shape[0] * shape[1])
    rng = np.random.default_rng(seed)

    def noisy(leaf):
        std = sigma / np.sqrt(leaf.shape[0]) if leaf.ndim == 2 and leaf.shape[0] > 1 else sigma
        return leaf + jnp.asarray(std * rng.standard_normal(leaf.shape), leaf.dtype)

    return fm.ModelParams(jax.tree.map(noisy, params.trainable), ())


def all_states(n_dim, n_categories):
    return jnp.asarray(list(itertools.product(range(n_categories), repeat=n_dim)), jnp.int32)


def batch_log_prob(model, params, states):
    """Cached ``jit(vmap(log_prob))`` in chunks (shared with the conformance checks)."""
    return batched_log_prob(model, params, states)


def batch_sample(model, params, seed, n_samples):
    return batched_sample(model, params, jax.random.key(seed), n_samples)


@functools.cache
def reference_log_q(model):
    """``jit(vmap(log q or log q_sym))`` through the public `logits` (one-hot stencil)."""
    k = model.n_categories
    shifts = range(k) if model.symmetric else range(1)

    def log_q(params, s):
        def unsymmetrised(s_c):
            one_hot = jax.nn.one_hot(s_c, k)
            log_cond = jax.nn.log_softmax(model.logits(params, one_hot), axis=-1)
            return jnp.sum(one_hot * log_cond)

        values = jnp.stack([unsymmetrised((s + c) % k) for c in shifts])
        return jax.nn.logsumexp(values) - jnp.log(float(len(values)))

    return jax.jit(jax.vmap(log_q, in_axes=(None, 0)))


K2 = LatticeAutoregressive((2, 3), radius=1, hidden_size=8)
K3_SYM = LatticeAutoregressive((2, 3), n_categories=3, radius=1, hidden_size=8, symmetric=True)


# ------------------------------------------------------------------------------ conformance


@pytest.mark.parametrize("model", [K2, K3_SYM], ids=["k2", "k3-sym"])
def test_conformance(model):
    report = cf.check_model(model, n_dim=6)
    for check in ("normalized", "sample_and_log_prob_agree", "sample_frequencies"):
        assert check in report.passed


# ------------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("symmetric", [False, True], ids=["q", "qsym"])
def test_exactly_normalised_and_draws_carry_their_log_prob(symmetric):
    model = LatticeAutoregressive((3, 3), radius=1, hidden_size=8, symmetric=symmetric)
    params = perturbed((3, 3))
    log_q = batch_log_prob(model, params, all_states(9, 2))
    assert float(jax.nn.logsumexp(log_q)) == pytest.approx(0.0, abs=1e-5)
    assert float(jnp.max(log_q) - jnp.min(log_q)) > 1.0  # far from uniform
    draws, log_q_draws = batch_sample(model, params, 3, 512)
    assert draws.shape == (512, 9) and draws.dtype == jnp.int32
    np.testing.assert_allclose(log_q_draws, batch_log_prob(model, params, draws), atol=2e-5)


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        (LatticeAutoregressive((3, 3), radius=1, hidden_size=8, symmetric=True), (3, 3)),
        (LatticeAutoregressive((3, 4), 3, radius=2, hidden_size=8, symmetric=True), (3, 4)),
        (LatticeAutoregressive((1, 5), 3, radius=1, hidden_size=8), (1, 5)),
    ],
    ids=["k2-sym", "k3-sym", "k3-one-row"],
)
def test_fast_log_prob_equals_the_one_hot_network(model, shape):
    params = perturbed(shape, model.n_categories, model.radius)
    states = jax.random.randint(jax.random.key(0), (16, shape[0] * shape[1]), 0, model.n_categories)
    expected = reference_log_q(model)(params, states)
    np.testing.assert_allclose(batch_log_prob(model, params, states), expected, atol=2e-5)


def test_logits_are_autoregressive_and_see_earlier_sites():
    model = LatticeAutoregressive((3, 4), 3, radius=2, hidden_size=8)
    params = perturbed((3, 4), 3, 2)
    one_hot = jax.nn.one_hot(jax.random.randint(jax.random.key(1), (12,), 0, 3), 3)
    jac = cf.check_discrete_model_autoregressive(functools.partial(model.logits, params), one_hot)
    # the last site depends on every earlier site (its stencil covers the 3 x 4 torus)
    assert np.all(np.abs(np.asarray(jac))[11, :, :11].max(axis=(0, 2)) > 0)


def test_draw_frequencies_follow_the_density():
    params = perturbed((2, 3))
    n = 4 * 4096
    draws, _ = batch_sample(K2, params, 5, n)
    counts = np.bincount(np.asarray(draws) @ (1 << np.arange(6)[::-1]), minlength=64)
    expected = n * np.exp(np.asarray(batch_log_prob(K2, params, all_states(6, 2)), float))
    assert expected.sum() == pytest.approx(n, rel=1e-4)
    rare = expected < 5  # pooled into one cell, for the chi-square approximation
    observed = np.append(counts[~rare], counts[rare].sum())
    expected = np.append(expected[~rare], expected[rare].sum())
    dof = len(observed) - 1
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    assert dof > 40 and chi2 < dof + 5 * np.sqrt(2 * dof), (chi2, dof)  # about 5 sigma


@pytest.mark.parametrize("model", [K2, K3_SYM], ids=["k2", "k3-sym"])
def test_fresh_model_is_uniform(model):
    # log_prob of every state and of draws is -n_dim log K
    cf.check_discrete_model_uniform_at_init(model, jax.random.key(0), 6, model.n_categories)


@pytest.mark.parametrize("symmetric", [False, True], ids=["q", "qsym"])
def test_uniform_path_matches_the_key_path(symmetric):
    model = LatticeAutoregressive((3, 3), radius=1, hidden_size=8, symmetric=symmetric)
    params = perturbed((3, 3))
    assert model.n_uniforms(9) == (9 + symmetric) * 2
    key = jax.random.key(4)
    gumbel = jax.random.gumbel(key, (9 + symmetric, 2))
    uniform = jnp.exp(-jnp.exp(-gumbel)).reshape(-1)  # -log(-log u) gives these draws back
    s_key, log_q_key = model.sample_and_log_prob(params, key)
    s_u, log_q_u = model.sample_and_log_prob_from_uniform(params, uniform)
    np.testing.assert_array_equal(s_u, s_key)
    assert float(log_q_u) == pytest.approx(float(log_q_key), abs=1e-5)


# -------------------------------------------------------------------------------- symmetry


def test_symmetric_model_is_invariant_and_draws_every_relabelling():
    params = perturbed((2, 3), 3)
    states = all_states(6, 3)[::7]
    for c in (1, 2):
        cf.check_discrete_model_invariant(K3_SYM, params, states, lambda s, c=c: (s + c) % 3)
    draws, _ = batch_sample(K3_SYM, params, 6, 4096)
    # site 0 is uniform under q_sym: each category about a third of the time
    frequencies = np.bincount(np.asarray(draws[:, 0]), minlength=3) / 4096
    np.testing.assert_allclose(frequencies, 1 / 3, atol=0.03)


# -------------------------------------------------------------------------------- stencil


def test_stencil_wraps_around_the_torus_and_sees_only_earlier_sites():
    index, available = _stencil((4, 5), 1)
    assert index.shape == (20, 8) and index.dtype == np.int32
    # offsets in raster order: (-1,-1) (-1,0) (-1,1) (0,-1) (0,1) (1,-1) (1,0) (1,1)
    np.testing.assert_array_equal(index[0], [19, 15, 16, 4, 1, 9, 5, 6])
    assert not available[0].any()
    # the first site of row 1 sees row 0 and, through the wrap, (0, 4) but not (1, 4)
    np.testing.assert_array_equal(available[5], [True, True, True, False, False] + [False] * 3)
    # the last row sees the first row through the periodic boundary
    np.testing.assert_array_equal(index[16, 5:], [0, 1, 2])
    assert available[16, 5:].all()
    assert available[19].all()
    np.testing.assert_array_equal(available, index < np.arange(20)[:, None])
    # a narrow lattice: no site twice, never the site itself
    index, _ = _stencil((2, 3), 3)
    assert index.shape == (6, 5)
    assert all(len(set(row)) == 5 and i not in row for i, row in enumerate(index))


def test_parameter_count_does_not_grow_with_the_lattice_but_for_the_site_bias():
    model = LatticeAutoregressive((8, 8), radius=2, hidden_size=16)
    params = model.init(jax.random.key(0), 64)
    shapes = jax.tree.map(jnp.shape, params.trainable)
    n_in = 24 * 2 + 3 * 2 + 2
    assert shapes == {
        "input": {"kernel": (n_in, 16 + 2), "bias": (16,)},
        "output": {"kernel": (16, 2), "bias": (2,)},
        "site_bias": (64, 2),
    }
    big = LatticeAutoregressive((16, 16), radius=2, hidden_size=16).init(jax.random.key(0), 256)
    assert big.trainable["input"]["kernel"].shape == (n_in, 18)


# -------------------------------------------------------------------- protocol and errors


def test_protocol_defaults_and_export():
    model = LatticeAutoregressive((4, 4))
    assert isinstance(model, fm.AbstractGlobalModel) and model.space is Space.DISCRETE
    assert fm.LatticeAutoregressive is LatticeAutoregressive
    assert "LatticeAutoregressive" in fm.__all__
    assert model == LatticeAutoregressive(
        shape=(4, 4), n_categories=2, radius=3, hidden_size=64, symmetric=None
    )
    assert LatticeAutoregressive([4, np.int64(5)]).shape == (4, 5)
    assert hash(model) == hash(dataclasses.replace(model))
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.radius = 2  # type: ignore[misc]
    params = perturbed((2, 3))
    assert K2.prepare(params, jnp.zeros((5, 6), jnp.int32)) is params
    assert cf.check_model_shapes(K2, params, jax.random.key(0)) == 6


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"shape": (4,)}, ValueError, r"shape must be \(rows, cols\).*got \(4,\)"),
        ({"shape": (4, 4, 4)}, ValueError, r"shape must be \(rows, cols\)"),
        ({"shape": (4, 0)}, ValueError, r"shape must be a tuple of integers >= 1"),
        ({"shape": 16}, TypeError, r"shape must be a tuple of integers"),
        ({"shape": (4.0, 4)}, TypeError, r"shape .*element 4.0 is of type float"),
        ({"shape": (4, 4), "radius": 0}, ValueError, r"radius must be an integer >= 1; got 0"),
        ({"shape": (4, 4), "radius": 1.5}, TypeError, r"radius must be an integer"),
        ({"shape": (4, 4), "hidden_size": 0}, ValueError, r"hidden_size must be an integer >= 1"),
        ({"shape": (4, 4), "n_categories": 1}, ValueError, r"n_categories must be an integer >= 2"),
        ({"shape": (4, 4), "symmetric": 1}, TypeError, r"symmetric must be a bool"),
    ],
)
def test_bad_config_raises(kwargs, error, pattern):
    with pytest.raises(error, match=rf"LatticeAutoregressive: {pattern}"):
        LatticeAutoregressive(**kwargs)


def test_bad_inputs_raise_or_have_zero_probability():
    model = K3_SYM
    with pytest.raises(ValueError, match=r"n_dim=5 does not match shape=\(2, 3\)"):
        model.init(jax.random.key(0), 5)
    with pytest.raises(ValueError, match=r"n_dim must be an integer >= 1; got 0"):
        model.init(jax.random.key(0), 0)
    params = perturbed((2, 3), 3)
    with pytest.raises(ValueError, match=r"expected one event of shape \(n_dim,\) = \(6,\)"):
        model.log_prob(params, jnp.zeros((2, 6), jnp.int32))
    with pytest.raises(TypeError, match=r"x has dtype float32; expected an integer array"):
        model.log_prob(params, jnp.zeros(6))
    with pytest.raises(ValueError, match=r"one_hot has shape \(6, 2\); expected"):
        model.logits(params, jnp.zeros((6, 2)))
    with pytest.raises(ValueError, match=r"data has shape \(5, 4\)"):
        model.prepare(params, jnp.zeros((5, 4), jnp.int32))
    states = jnp.array([[0, 1, 3, 0, 0, 0], [0, -1, 0, 0, 0, 0], [2, 2, 2, 2, 1, 0]], jnp.int32)
    log_q = batch_log_prob(model, params, states)
    np.testing.assert_array_equal(np.isneginf(np.asarray(log_q)), [True, True, False])
