"""Conformance of the continuous flows (RealNVP, RQSpline) via flowmc_like.conformance."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like import conformance as cf
from flowmc_like._types import Space
from flowmc_like.models import AbstractGlobalModel, ModelParams, RealNVP, RQSpline

ALL_MODELS = [
    RealNVP(n_layers=4, hidden_sizes=(32, 32)),
    RQSpline(n_layers=4, hidden_sizes=(32, 32), n_bins=8),
]
IDS = [type(model).__name__ for model in ALL_MODELS]
parametrize_models = pytest.mark.parametrize("model", ALL_MODELS, ids=IDS)


def skewed_data(key, n_dim, n=4096, scale=1.0):
    """Skewed, shifted data with unequal scales: non-trivial standardisation statistics."""
    key_a, key_b = jax.random.split(key)
    lognormal = jnp.exp(0.5 * jax.random.normal(key_a, (n, n_dim)))
    gauss = jax.random.normal(key_b, (n, n_dim))
    columns = [
        (1.0 + 2.0 * lognormal[:, i]) if i % 2 == 0 else (-3.0 + 0.5 * gauss[:, i])
        for i in range(n_dim)
    ]
    return scale * jnp.stack(columns, axis=1)


def perturb(params: ModelParams, key, sigma=1.0) -> ModelParams:
    """Randomise the zero-initialised leaves (conditioner head, biases): the flow is then far
    from the identity (see `test_flow_is_far_from_identity`).

    Kernels ``(n_layers, fan_in, fan_out)`` get N(0, sigma^2 / fan_in) noise (so the head's
    outputs are O(sigma)), biases N(0, sigma^2).
    """
    leaves, treedef = jax.tree.flatten(params.trainable)
    keys = jax.random.split(key, len(leaves))
    noisy = []
    for leaf, k in zip(leaves, keys, strict=True):
        std = sigma / np.sqrt(leaf.shape[1]) if leaf.ndim == 3 else sigma
        noise = std * jax.random.normal(k, leaf.shape, leaf.dtype)
        noisy.append(jnp.where(jnp.all(leaf == 0), leaf + noise, leaf))
    return ModelParams(jax.tree.unflatten(treedef, noisy), params.frozen)


def random_params(model, n_dim, seed=0, scale=1.0, sigma=0.5):
    """Init, prepare on skewed data, perturb (`perturb`)."""
    key_init, key_noise, key_data = jax.random.split(jax.random.key(seed), 3)
    params = model.init(key_init, n_dim)
    params = model.prepare(params, skewed_data(key_data, n_dim, scale=scale))
    return perturb(params, key_noise, sigma)


def typical_points(params, key, n=128, spread=1.5):
    """Points where the prepared model has most of its mass: mean + spread * scale * N(0, 1)."""
    mean, scale = params.frozen.mean, params.frozen.scale
    return mean + spread * scale * jax.random.normal(key, (n, mean.shape[0]), mean.dtype)


def box(params, width=8.0):
    mean, scale = np.asarray(params.frozen.mean), np.asarray(params.frozen.scale)
    return mean - width * scale, mean + width * scale


@parametrize_models
def test_protocol_and_space(model):
    assert isinstance(model, AbstractGlobalModel)
    assert model.space is Space.CONTINUOUS
    params = random_params(model, 2)
    assert cf.check_model_shapes(model, params, jax.random.key(1)) == 2


FAR = jnp.array([[8.0, -7.0, 1.0], [-9.0, 0.3, 6.0], [0.1, 12.0, -20.0], [20.0, 20.0, 9.0]])
"""Standardised points far outside the spline range [-B, B]."""


def far_points(params):
    n_dim = params.frozen.mean.shape[0]
    return params.frozen.mean + params.frozen.scale * FAR[:, :n_dim].astype(
        params.frozen.mean.dtype
    )


@parametrize_models
@pytest.mark.parametrize("n_dim", [1, 3])  # one coordinate; an odd split (2-D: below)
def test_change_of_variables_and_round_trip(model, n_dim):
    params = random_params(model, n_dim, seed=n_dim)
    xs = typical_points(params, jax.random.key(10 + n_dim))
    cf.check_model_change_of_variables(model, params, xs, atol=2e-3, rtol=1e-4)


@parametrize_models
def test_normalized_on_grid(model):
    # sigma = 0.3: far from the identity but without spikes a 300 x 300 grid cannot resolve
    params = random_params(model, 2, sigma=0.3)
    lower, upper = box(params)
    cf.check_model_normalized_2d(model, params, lower, upper, n_grid=300, atol=1e-2)


@parametrize_models
def test_standardization_log_det_included(model):
    """Data with scale ~10: the density still integrates to 1 (it would be ~1/|det| without)."""
    params = random_params(model, 2, seed=3, scale=10.0, sigma=0.3)
    assert float(jnp.min(params.frozen.scale)) > 4.0
    lower, upper = box(params)
    cf.check_model_normalized_2d(model, params, lower, upper, n_grid=300, atol=1e-2)


@parametrize_models
def test_normalized_in_one_dimension(model):
    params = random_params(model, 1, seed=7)
    (lower,), (upper,) = box(params, width=10.0)
    grid = jnp.linspace(lower, upper, 20_001)[:, None]
    density = jnp.exp(jax.jit(jax.vmap(model.log_prob, in_axes=(None, 0)))(params, grid))
    integral = float(jnp.trapezoid(density, grid[:, 0]))
    assert abs(integral - 1.0) < 1e-3, integral


@parametrize_models
def test_identity_at_init(model):
    data = skewed_data(jax.random.key(2), 2)
    cf.check_model_identity_at_init(model, jax.random.key(3), data)


@parametrize_models
def test_sample_and_log_prob_agree(model):
    params = random_params(model, 2)
    x, log_q = cf.check_model_sample_and_log_prob_agree(model, params, jax.random.key(4))
    assert x.shape == (4096, 2) and log_q.shape == (4096,)
    # guards the other tests: the perturbed flow is far from the prepared Gaussian
    mean, scale = params.frozen.mean, params.frozen.scale
    log_gauss = -0.5 * jnp.sum(((x - mean) / scale) ** 2 + jnp.log(2 * jnp.pi * scale**2), axis=1)
    assert float(jnp.mean(jnp.abs(log_q - log_gauss))) > 0.5


@parametrize_models
def test_jit_vmap_grad(model):
    params = random_params(model, 2)
    xs = skewed_data(jax.random.key(6), 2, n=32)
    cf.check_model_jit_vmap_grad(model, params, xs, jax.random.key(7))


@parametrize_models
def test_deterministic_sampling(model):
    params = random_params(model, 2)
    a = model.sample_and_log_prob(params, jax.random.key(8))
    b = model.sample_and_log_prob(params, jax.random.key(8))
    c = model.sample_and_log_prob(params, jax.random.key(9))
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))


@parametrize_models
def test_prepare_keeps_trainable_and_fits_statistics(model):
    params = random_params(model, 2)
    data = skewed_data(jax.random.key(11), 2)
    prepared = model.prepare(params, data)
    assert prepared.trainable is params.trainable
    np.testing.assert_allclose(prepared.frozen.mean, np.mean(np.asarray(data), 0), rtol=1e-5)
    # whitening (the default): L L^T is the data's covariance; per dimension: scale is the std
    covariance = np.cov(np.asarray(data, np.float64).T, bias=True)
    if model.whiten:
        cholesky = np.asarray(prepared.frozen.cholesky, np.float64)
        np.testing.assert_allclose(cholesky @ cholesky.T, covariance, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(prepared.frozen.scale, np.diag(cholesky), rtol=1e-6)
    else:
        np.testing.assert_allclose(prepared.frozen.scale, np.sqrt(np.diag(covariance)), rtol=1e-4)
    assert prepared.frozen.mean.dtype == params.frozen.mean.dtype


@parametrize_models
def test_fit_two_mode_mixture_decreases_loss(model):
    key_mode, key_noise = jax.random.split(jax.random.key(12))
    n = 512
    centers = jnp.where(jax.random.bernoulli(key_mode, 0.5, (n, 1)), 2.0, -2.0)
    data = jnp.concatenate([centers, jnp.zeros((n, 1))], axis=1)
    data = data + 0.4 * jax.random.normal(key_noise, (n, 2))
    params = model.prepare(model.init(jax.random.key(13), 2), data)
    fit = cf.check_model_fit_decreases_loss(
        model, params, data, n_steps=200, learning_rate=5e-3, min_decrease=0.4
    )
    assert fit.initial_loss > fit.final_loss


@parametrize_models
def test_bad_event_shape_raises(model):
    params = random_params(model, 2)
    with pytest.raises(ValueError, match=r"expected one event of shape \(n_dim,\) = \(2,\)"):
        model.log_prob(params, jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"data has shape \(5, 3\)"):
        model.prepare(params, jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="n_dim"):
        model.init(jax.random.key(0), 0)


@pytest.mark.parametrize("model", ALL_MODELS[1:], ids=IDS[1:])  # RealNVP: test_float64.py
def test_float64_under_x64(model):
    with jax.enable_x64(True):
        params = random_params(model, 2)
        for leaf in jax.tree.leaves(params):
            assert leaf.dtype == jnp.float64
        xs = jnp.concatenate([typical_points(params, jax.random.key(14), n=32), far_points(params)])
        assert xs.dtype == jnp.float64
        # Far points make the Jacobian ill-conditioned (float32 slogdet is then the inaccurate
        # side), so they are checked here, in float64.
        cf.check_model_change_of_variables(model, params, xs, atol=1e-8, rtol=1e-8)
        x, log_q = model.sample_and_log_prob(params, jax.random.key(15))
        assert x.dtype == log_q.dtype == jnp.float64
        # float32 input under x64: computed in float32
        assert model.log_prob(params, xs[0].astype(jnp.float32)).dtype == jnp.float32


@parametrize_models
def test_config_is_hashable_value(model):
    assert hash(model) == hash(dataclasses.replace(model))
    assert model == dataclasses.replace(model)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.n_layers = 3  # type: ignore[misc]


def test_hidden_sizes_list_becomes_tuple():
    assert RQSpline(hidden_sizes=[16, 16]).hidden_sizes == (16, 16)
    assert RealNVP(hidden_sizes=()).hidden_sizes == ()


def test_defaults():
    assert RQSpline() == RQSpline(n_layers=4, hidden_sizes=(64, 64), n_bins=8, range_limit=5.0)
    assert RealNVP() == RealNVP(n_layers=8, hidden_sizes=(64, 64), log_scale_limit=2.0)


@pytest.mark.parametrize(
    ("factory", "error", "name"),
    [
        (lambda: RealNVP(n_layers=0), ValueError, "n_layers"),
        (lambda: RealNVP(n_layers=2.0), TypeError, "n_layers"),
        (lambda: RealNVP(n_layers=True), TypeError, "n_layers"),
        (lambda: RealNVP(hidden_sizes=(32, 0)), ValueError, "hidden_sizes"),
        (lambda: RealNVP(hidden_sizes=5), TypeError, "hidden_sizes"),
        (lambda: RealNVP(hidden_sizes="64"), TypeError, "hidden_sizes"),
        (lambda: RealNVP(log_scale_limit=0.0), ValueError, "log_scale_limit"),
        (lambda: RealNVP(log_scale_limit=float("inf")), ValueError, "log_scale_limit"),
        (lambda: RQSpline(n_layers=-1), ValueError, "n_layers"),
        (lambda: RQSpline(hidden_sizes=(-4,)), ValueError, "hidden_sizes"),
        (lambda: RQSpline(n_bins=1), ValueError, "n_bins"),
        (lambda: RQSpline(n_bins=0), ValueError, "n_bins"),
        (lambda: RQSpline(n_bins=8.5), TypeError, "n_bins"),
        (lambda: RQSpline(range_limit=0), ValueError, "range_limit"),
        (lambda: RQSpline(range_limit=float("nan")), ValueError, "range_limit"),
        (lambda: RQSpline(range_limit="5"), TypeError, "range_limit"),
    ],
)
def test_bad_config_raises(factory, error, name):
    with pytest.raises(error, match=name):
        factory()


@pytest.mark.parametrize("flow_type", [RealNVP, RQSpline])
def test_whitened_flow_is_normalized_and_invertible(flow_type):
    model = flow_type(n_layers=2, hidden_sizes=(16,), whiten=True)
    key_init, key_data, key_noise = jax.random.split(jax.random.key(4), 3)
    correlated = jax.random.multivariate_normal(
        key_data, jnp.array([1.0, -2.0]), jnp.array([[4.0, 3.8], [3.8, 4.0]]), (4096,)
    )
    params = perturb(model.prepare(model.init(key_init, 2), correlated), key_noise, 0.3)
    assert params.frozen.cholesky.shape == (2, 2)
    cf.check_model_change_of_variables(model, params, correlated[:64], atol=2e-3, rtol=1e-4)
    cf.check_model_normalized_2d(model, params, (-9.0, -12.0), (11.0, 8.0), n_grid=300, atol=1e-2)
