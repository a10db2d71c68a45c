"""Autoregressive (MADE) discrete model: exactness, autoregressive property, sampling, training.

Compilation dominates the runtime of these tests (a vmapped threefry alone takes ~0.5 s to
compile on CPU), so tests share model objects, params (`params_for`, cached) and batch sizes
(`N_SAMPLES`): the conformance checks cache ``jit(vmap(...))`` per model, and equal shapes then
reuse the compiled code.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like.models as models
from flowmc_like import conformance as cf
from flowmc_like._types import Space
from flowmc_like.models import AbstractGlobalModel, Autoregressive, ModelParams
from flowmc_like.models.masks import made_hidden_degrees, made_masks, made_site_degrees
from flowmc_like.models.networks import MaskedDense
from flowmc_like.training.optim import make_optimizer
from flowmc_like.training.trainer import init_train_state, train_model

N_SAMPLES = 20_000
"""One batch size for every sampling check (shared compilations; 20000 for the chi-square)."""


def perturb(params: ModelParams, seed: int, sigma: float = 1.5) -> ModelParams:
    """Add noise to every leaf: kernels N(0, sigma^2 / fan_in), biases N(0, sigma^2).

    The zero-initialised output layer then gives O(sigma) logits, far from uniform. numpy
    noise: no eager JAX random op to compile per leaf shape.
    """
    rng = np.random.default_rng(seed)

    def noisy(leaf):
        std = sigma / np.sqrt(leaf.shape[0]) if leaf.ndim == 2 else sigma
        return leaf + jnp.asarray(std * rng.standard_normal(leaf.shape), leaf.dtype)

    return ModelParams(jax.tree.map(noisy, params.trainable), params.frozen)


@functools.cache
def params_for(n_categories, hidden_sizes, n_dim, seed=0, sigma=1.5):
    """Perturbed params, shared by the symmetric and plain model of one architecture."""
    model = Autoregressive(n_categories, hidden_sizes)
    return perturb(model.init(jax.random.key(seed), n_dim), seed, sigma)


def shift(states, c, n_categories):
    return (states + c) % n_categories


CONFIGS = [  # (hidden_sizes, n_dim, n_categories)
    ((16,), 4, 3),
    ((16,), 6, 2),
    ((8, 8), 4, 3),
    ((), 6, 2),
    ((16,), 1, 3),
]
CONFIG_IDS = [f"h{'x'.join(map(str, h)) or '0'}-d{d}-k{k}" for h, d, k in CONFIGS]
parametrize_configs = pytest.mark.parametrize(
    ("hidden_sizes", "n_dim", "n_categories"), CONFIGS, ids=CONFIG_IDS
)
parametrize_symmetric = pytest.mark.parametrize("symmetric", [False, True], ids=["q", "qsym"])


# --------------------------------------------------------------------------- exactness


@parametrize_configs
@parametrize_symmetric
def test_normalized_by_enumeration(hidden_sizes, n_dim, n_categories, symmetric):
    model = Autoregressive(n_categories, hidden_sizes, symmetric)
    params = params_for(n_categories, hidden_sizes, n_dim)
    log_q = cf.check_discrete_model_normalized(model, params, n_dim, n_categories)
    # guards the test: the perturbed model is far from uniform (except q_sym on one site,
    # which the group makes exactly uniform)
    if n_dim > 1 or not symmetric:
        assert np.ptp(log_q) > 0.5, np.ptp(log_q)
    else:
        np.testing.assert_allclose(log_q, -np.log(n_categories), atol=1e-6)


@pytest.mark.parametrize(
    ("n_dim", "n_categories", "symmetric"), [(4, 3, False), (4, 3, True), (1, 3, False)]
)
def test_uniform_at_init(n_dim, n_categories, symmetric):
    model = Autoregressive(n_categories, (16,), symmetric)  # shares compilations with others
    cf.check_discrete_model_uniform_at_init(
        model, jax.random.key(1), n_dim, n_categories, n_samples=N_SAMPLES
    )


@parametrize_configs
def test_autoregressive_property(hidden_sizes, n_dim, n_categories):
    model = Autoregressive(n_categories, hidden_sizes)
    params = params_for(n_categories, hidden_sizes, n_dim)
    noise = np.random.default_rng(3).standard_normal((n_dim, n_categories))
    relaxed = jax.nn.softmax(jnp.asarray(noise, jnp.float32), axis=-1)  # every input "on"
    jac = cf.check_discrete_model_autoregressive(functools.partial(model.logits, params), relaxed)
    assert jac.shape == (n_dim, n_categories, n_dim, n_categories)
    if n_dim > 1:
        # cyclic degrees with H >= n_dim - 1 (or no hidden layer): site i reads every site < i
        assert hidden_sizes == () or min(hidden_sizes) >= n_dim - 1
        strictly_earlier = np.abs(np.asarray(jac)).max(axis=(1, 3))[np.tril_indices(n_dim, -1)]
        assert np.all(strictly_earlier > 0), strictly_earlier


def test_masks_follow_the_made_degree_rule():
    n_dim, k, sizes = 4, 2, (5, 3)
    masks = made_masks(n_dim, k, sizes)
    assert [m.shape for m in masks] == [(8, 5), (5, 3), (3, 8)]
    sites = made_site_degrees(n_dim, k)
    np.testing.assert_array_equal(sites, [0, 0, 1, 1, 2, 2, 3, 3])
    h1, h2 = made_hidden_degrees(n_dim, 5), made_hidden_degrees(n_dim, 3)
    np.testing.assert_array_equal(h1, [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(masks[0], sites[:, None] <= h1[None, :])
    np.testing.assert_array_equal(masks[1], h1[:, None] <= h2[None, :])
    np.testing.assert_array_equal(masks[2], h2[:, None] < sites[None, :])
    # site 0 reads nothing; the last site's inputs feed nothing
    assert not masks[2][:, :k].any() and not masks[0][-k:].any()
    # one site: hidden units see the site but reach no output
    first, output = made_masks(1, 3, (4,))
    assert first.all() and not output.any()
    (linear,) = made_masks(3, 1, ())
    np.testing.assert_array_equal(linear, np.triu(np.ones((3, 3), bool), 1))
    with pytest.raises(ValueError, match="size must be an integer >= 1; got 0"):
        made_masks(3, 2, (4, 0))


def test_masked_dense_rejects_a_mask_of_the_wrong_shape():
    layer = MaskedDense(3, mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 2\); expected .* \(4, 3\)"):
        layer.init(jax.random.key(0), jnp.zeros(4))


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    ("hidden_sizes", "n_dim", "n_categories", "symmetric"),
    [((16,), 4, 3, True), ((8, 8), 4, 3, False), ((), 6, 2, False)],
    ids=["h16-d4-k3-qsym", "h8x8-d4-k3-q", "h0-d6-k2-q"],
)
def test_sample_and_log_prob_agree_and_incremental_equals_naive(
    hidden_sizes, n_dim, n_categories, symmetric
):
    model = Autoregressive(n_categories, hidden_sizes, symmetric)
    params = params_for(n_categories, hidden_sizes, n_dim)
    key = jax.random.key(5)
    s, log_q = cf.check_discrete_model_sample_and_log_prob_agree(
        model, params, key, n_categories, n_samples=N_SAMPLES
    )
    n_naive = 512  # the reference costs n_dim forward passes per draw
    naive = jax.jit(jax.vmap(model._sample_and_log_prob_naive, in_axes=(None, 0)))
    s_naive, log_q_naive = naive(params, jax.random.split(key, N_SAMPLES)[:n_naive])
    np.testing.assert_array_equal(np.asarray(s[:n_naive]), np.asarray(s_naive))
    np.testing.assert_allclose(
        np.asarray(log_q[:n_naive]), np.asarray(log_q_naive), rtol=1e-5, atol=1e-5
    )
    assert len(np.unique(np.asarray(s), axis=0)) > 1


def test_without_direct_connections():
    """``direct_connections=False``: no "direct" weights; still normalised, autoregressive,
    and the incremental sampler still equals the naive one."""
    model = Autoregressive(3, (16,), direct_connections=False)
    params = perturb(model.init(jax.random.key(0), 4), 0, 1.5)
    assert "direct" not in params.trainable
    assert "direct" in Autoregressive(3, (16,)).init(jax.random.key(0), 4).trainable
    cf.check_discrete_model_normalized(model, params, 4, 3)
    relaxed = jax.nn.softmax(jnp.asarray(np.random.default_rng(3).standard_normal((4, 3))))
    cf.check_discrete_model_autoregressive(functools.partial(model.logits, params), relaxed)
    keys = jax.random.split(jax.random.key(3), 256)
    fast = jax.jit(jax.vmap(model.sample_and_log_prob, in_axes=(None, 0)))(params, keys)
    naive = jax.jit(jax.vmap(model._sample_and_log_prob_naive, in_axes=(None, 0)))(params, keys)
    np.testing.assert_array_equal(np.asarray(fast[0]), np.asarray(naive[0]))


@parametrize_symmetric
def test_sample_frequencies_match_log_prob(symmetric):
    model = Autoregressive(3, (16,), symmetric)
    params = params_for(3, (16,), 4)
    p_value = cf.check_discrete_model_sample_frequencies(
        model, params, jax.random.key(7), n_dim=4, n_categories=3, n_samples=N_SAMPLES
    )
    assert 0.0 < p_value <= 1.0


def test_jit_vmap_lax_map_and_determinism():
    """The sampler's pattern: ``lax.map(..., batch_size)`` over keys inside jit."""
    model = Autoregressive(3, (16,), symmetric=True)
    params = params_for(3, (16,), 4)
    keys = jax.random.split(jax.random.key(5), N_SAMPLES)
    s_vmap, lq_vmap = cf.check_discrete_model_sample_and_log_prob_agree(
        model, params, jax.random.key(5), 3, n_samples=N_SAMPLES
    )
    s_map, lq_map = jax.jit(
        lambda p, k: jax.lax.map(lambda key: model.sample_and_log_prob(p, key), k, batch_size=500)
    )(params, keys)
    assert s_map.shape == (N_SAMPLES, 4) and s_map.dtype == jnp.int32
    assert lq_map.shape == (N_SAMPLES,) and lq_map.dtype == jnp.float32
    # same key -> same draw, whatever the batching; different keys -> different draws
    np.testing.assert_array_equal(np.asarray(s_vmap), np.asarray(s_map))
    np.testing.assert_allclose(np.asarray(lq_vmap), np.asarray(lq_map), rtol=1e-5)
    assert len(np.unique(np.asarray(s_map[:100]), axis=0)) > 1


# --------------------------------------------------------------------------- symmetry


@pytest.mark.parametrize(("hidden_sizes", "n_dim", "n_categories"), CONFIGS[:2])
def test_symmetric_model_is_invariant_under_relabelling(hidden_sizes, n_dim, n_categories):
    model = Autoregressive(n_categories, hidden_sizes, symmetric=True)
    params = params_for(n_categories, hidden_sizes, n_dim)
    states = cf.enumerate_states(n_dim, n_categories)
    for c in range(1, n_categories):
        cf.check_discrete_model_invariant(
            model, params, states, functools.partial(shift, c=c, n_categories=n_categories)
        )


def test_symmetric_model_balances_a_state_and_its_flip():
    """The same network: q puts unequal mass on s and 1 - s, q_sym their mean on both."""
    n_dim = 6
    params = params_for(2, (16,), n_dim)
    log_q = cf.check_discrete_model_normalized(Autoregressive(2, (16,)), params, n_dim, 2)
    log_q_sym = cf.check_discrete_model_normalized(
        Autoregressive(2, (16,), symmetric=True), params, n_dim, 2
    )
    flip = log_q.size - 1 - np.arange(log_q.size)  # index of 1 - s in enumeration order
    assert np.max(np.abs(log_q - log_q[flip])) > 1.0
    np.testing.assert_allclose(log_q_sym, log_q_sym[flip], rtol=1e-6)
    np.testing.assert_allclose(
        np.exp(log_q_sym), 0.5 * (np.exp(log_q) + np.exp(log_q[flip])), rtol=1e-5
    )


def test_symmetric_sampling_draws_the_relabelled_modes():
    """q concentrated on all-zeros almost never draws all-ones or all-twos; q_sym draws the
    three relabellings of all-zeros equally often (each with a third of q's mass)."""
    n_dim, k = 4, 3
    params = params_for(k, (16,), n_dim)  # same shapes as other tests: compiled code reused
    output = {"kernel": jnp.zeros_like(params.trainable["output"]["kernel"])}
    output["bias"] = jnp.tile(jnp.array([4.0, 0.0, 0.0]), n_dim)  # every site: P(0) = e^4/(e^4+2)
    direct = {"kernel": jnp.zeros_like(params.trainable["direct"]["kernel"])}
    params = ModelParams({**params.trainable, "output": output, "direct": direct}, ())
    p_zeros = (np.exp(4.0) / (np.exp(4.0) + 2.0)) ** n_dim
    for symmetric, expected in [(False, [p_zeros, 0, 0]), (True, [p_zeros / 3] * 3)]:
        model = Autoregressive(k, (16,), symmetric)
        s, _ = cf.check_discrete_model_sample_and_log_prob_agree(
            model, params, jax.random.key(12), k, n_samples=N_SAMPLES
        )
        shares = [float(jnp.mean(jnp.all(s == c, axis=1))) for c in range(k)]
        mcse = np.sqrt(p_zeros / N_SAMPLES)
        np.testing.assert_allclose(shares, expected, atol=5 * mcse, err_msg=str(symmetric))


# --------------------------------------------------------------------------- training


def ising_chain(n_dim, coupling):
    """Exact distribution of an open Ising chain (spins 2s - 1); flip-symmetric."""
    states = cf.enumerate_states(n_dim, 2)
    spins = 2.0 * states - 1.0
    energy = coupling * np.sum(spins[:, 1:] * spins[:, :-1], axis=1)
    probs = np.exp(energy - energy.max())
    return states, probs / probs.sum()


@parametrize_symmetric
def test_training_decreases_loss_to_the_entropy(symmetric):
    n_dim = 5
    states, probs = ising_chain(n_dim, coupling=1.0)
    rng = np.random.default_rng(0)
    examples = states[rng.choice(len(states), size=2048, p=probs)]
    _, counts = np.unique(examples, axis=0, return_counts=True)
    freq = counts / counts.sum()
    empirical_entropy = float(-np.sum(freq * np.log(freq)))
    initial_loss = n_dim * np.log(2.0)  # a fresh model is uniform

    model = Autoregressive(2, (32,), symmetric)
    optimizer = make_optimizer(1e-2)
    state = init_train_state(model.init(jax.random.key(13), n_dim), optimizer)
    train = jax.jit(train_model, static_argnums=(0, 1, 5, 6))
    state, losses, is_finite = train(
        model, optimizer, jax.random.key(14), state, jnp.asarray(examples), 40, 256
    )
    losses = np.asarray(losses)
    assert bool(is_finite)
    assert losses[0] < initial_loss and losses[-1] < initial_loss - 1.0, losses
    assert np.all(np.diff(losses[:5]) < 0), losses  # steady decrease at first
    assert losses[-1] - empirical_entropy < 0.03, (losses[-1], empirical_entropy)
    # the fitted model is normalised and close to the target in total variation
    log_q = cf.check_discrete_model_normalized(model, state.params, n_dim, 2)
    assert 0.5 * np.abs(np.exp(log_q) - probs).sum() < 0.05


def test_gradients_reach_every_layer():
    model = Autoregressive(3, (8, 8))
    params = params_for(3, (8, 8), 4)
    xs = jnp.asarray(cf.enumerate_states(4, 3)[::7])

    def nll(trainable):
        log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(ModelParams(trainable, ()), xs)
        return -jnp.mean(log_q)

    grads = jax.jit(jax.grad(nll))(params.trainable)
    assert jax.tree.structure(grads) == jax.tree.structure(params.trainable)
    for name in ("hidden_0", "hidden_1", "output"):
        assert bool(jnp.all(jnp.isfinite(grads[name]["kernel"]))), name
        assert float(jnp.abs(grads[name]["kernel"]).max()) > 0, name


# --------------------------------------------------------------------------- dtypes


def test_float64_under_x64():
    with jax.enable_x64(True):
        model = Autoregressive(3, (8,), symmetric=True)
        params = perturb(model.init(jax.random.key(19), 3), seed=19)
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))
        s, log_q = jax.jit(model.sample_and_log_prob)(params, jax.random.key(20))
        assert s.dtype == jnp.int32 and log_q.dtype == jnp.float64
        log_q_all = cf.check_discrete_model_normalized(model, params, 3, 3, atol=1e-12)
        index = int(np.asarray(s) @ (3 ** np.arange(2, -1, -1)))
        np.testing.assert_allclose(log_q_all[index], float(log_q), rtol=1e-12)


def test_float32_params_stay_float32_under_x64():
    model = Autoregressive(2, (16,))
    params = params_for(2, (16,), 6)  # created under float32 defaults
    with jax.enable_x64(True):
        s, log_q = jax.jit(model.sample_and_log_prob)(params, jax.random.key(21))
        assert s.dtype == jnp.int32 and log_q.dtype == jnp.float32
        log_prob = jax.jit(model.log_prob)(params, s.astype(jnp.int64))
        assert log_prob.dtype == jnp.float32
        np.testing.assert_allclose(float(log_prob), float(log_q), rtol=1e-5)


# ------------------------------------------------------------ protocol, config, input errors


def test_protocol_space_and_export():
    model = Autoregressive(2, (16,))
    assert isinstance(model, AbstractGlobalModel)
    assert model.space is Space.DISCRETE and Autoregressive.space is Space.DISCRETE
    assert models.Autoregressive is Autoregressive and "Autoregressive" in models.__all__
    params = params_for(2, (16,), 6)
    assert params.frozen == ()
    assert model.prepare(params, jnp.zeros((10, 6), jnp.int32)) is params
    assert cf.check_model_shapes(model, params, jax.random.key(1)) == 6


def test_defaults_and_value_semantics():
    model = Autoregressive()
    assert model == Autoregressive(n_categories=2, hidden_sizes=(128,), symmetric=None)
    assert Autoregressive(hidden_sizes=[16, 8]).hidden_sizes == (16, 8)
    assert Autoregressive(n_categories=np.int64(3)).n_categories == 3
    assert Autoregressive(symmetric=np.bool_(True)).symmetric is True
    assert hash(model) == hash(dataclasses.replace(model))
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.n_categories = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"n_categories": 1}, ValueError, r"n_categories must be an integer >= 2; got 1"),
        ({"n_categories": 2.0}, TypeError, r"n_categories must be an integer >= 2; got 2.0"),
        ({"n_categories": True}, TypeError, r"n_categories .* got True"),
        ({"hidden_sizes": (16, 0)}, ValueError, r"hidden_sizes must be a tuple of integers >= 1"),
        ({"hidden_sizes": (-3,)}, ValueError, r"hidden_sizes .* got \(-3,\)"),
        ({"hidden_sizes": (8.0,)}, TypeError, r"hidden_sizes .*element 8.0 is of type float"),
        ({"hidden_sizes": 64}, TypeError, r"hidden_sizes .* got 64"),
        ({"hidden_sizes": "64"}, TypeError, r"hidden_sizes .* got '64'"),
        ({"symmetric": 1}, TypeError, r"symmetric must be a bool .*; got 1 \(of type int\)"),
        ({"symmetric": "yes"}, TypeError, r"symmetric must be a bool"),
    ],
)
def test_bad_config_raises(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Autoregressive(**kwargs)


@parametrize_symmetric
def test_bad_inputs_raise_or_have_zero_probability(symmetric):
    model = Autoregressive(3, (16,), symmetric)
    params = params_for(3, (16,), 4)
    with pytest.raises(ValueError, match=r"n_dim must be an integer >= 1; got 0"):
        model.init(jax.random.key(0), 0)
    with pytest.raises(ValueError, match=r"expected one event of shape \(n_dim,\) = \(4,\)"):
        model.log_prob(params, jnp.zeros((2, 4), jnp.int32))
    with pytest.raises(TypeError, match=r"x has dtype float32; expected an integer array"):
        model.log_prob(params, jnp.zeros(4))
    with pytest.raises(ValueError, match=r"one_hot has shape \(4, 2\); expected"):
        model.logits(params, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"data has shape \(5, 3\)"):
        model.prepare(params, jnp.zeros((5, 3), jnp.int32))
    # values outside [0, K) have probability zero (the shifts of q_sym must not wrap them in)
    states = jnp.array([[0, 1, 3, 0], [0, -1, 0, 0], [2, 2, 2, 2]], jnp.int32)
    log_q = jax.jit(jax.vmap(model.log_prob, in_axes=(None, 0)))(params, states)
    assert np.array_equal(np.isneginf(np.asarray(log_q)), [True, True, False])
