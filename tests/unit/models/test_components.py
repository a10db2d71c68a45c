"""Unit tests of the flow building blocks: masks, standardisation, conditioner network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like.models.masks import alternating_masks, coupling_mask
from flowmc_like.models.networks import MLP
from flowmc_like.models.standardize import (
    fit_standardization,
    init_standardization,
    standardize,
    unstandardize,
)


@pytest.mark.parametrize("n_dim", [2, 3, 6])
def test_alternating_masks_cover_every_coordinate(n_dim):
    masks = alternating_masks(n_dim, 4)
    assert masks.shape == (4, n_dim) and masks.dtype == bool
    np.testing.assert_array_equal(masks[0], np.arange(n_dim) % 2 == 0)
    np.testing.assert_array_equal(masks[1], ~masks[0])
    np.testing.assert_array_equal(masks[2], masks[0])
    # every layer conditions on something and transforms something
    assert np.all(masks.any(axis=1)) and np.all((~masks).any(axis=1))


def test_one_dimensional_masks_always_transform():
    masks = alternating_masks(1, 3)
    np.testing.assert_array_equal(masks, np.zeros((3, 1), dtype=bool))
    np.testing.assert_array_equal(coupling_mask(1, parity=1), [False])


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        ((0, 2), ValueError, "n_dim"),
        ((2, 0), ValueError, "n_layers"),
        ((2.0, 2), TypeError, "n_dim"),
    ],
)
def test_masks_reject_bad_sizes(args, error, name):
    with pytest.raises(error, match=name):
        alternating_masks(*args)


def test_fit_standardization_matches_numpy():
    data = np.random.default_rng(0).gamma(2.0, 3.0, size=(500, 3)).astype(np.float32)
    params = fit_standardization(data)
    np.testing.assert_allclose(params.mean, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(params.scale, data.std(0), rtol=1e-4)
    assert params.mean.dtype == jnp.float32


def test_fit_standardization_floors_constant_columns():
    data = jnp.stack([jnp.full(10, 3.0), jnp.arange(10.0)], axis=1)
    params = fit_standardization(data)
    assert float(params.scale[0]) > 0.0 and np.isfinite(float(params.scale[0]))
    assert float(params.scale[0]) < 1e-4
    y, log_det = standardize(params, data[0])
    assert bool(jnp.all(jnp.isfinite(y))) and np.isfinite(float(log_det))


def test_fit_standardization_rejects_bad_shapes():
    with pytest.raises(ValueError, match="n_examples, n_dim"):
        fit_standardization(jnp.zeros(5))
    with pytest.raises(ValueError, match="n_examples, n_dim"):
        fit_standardization(jnp.zeros((0, 2)))


def test_standardize_round_trip_and_log_det():
    params = fit_standardization(jnp.array([[0.0, 10.0], [4.0, 30.0]]))
    x = jnp.array([1.0, -2.0])
    y, log_det = standardize(params, x)
    np.testing.assert_allclose(y, (x - jnp.array([2.0, 20.0])) / jnp.array([2.0, 10.0]))
    np.testing.assert_allclose(log_det, -np.log(20.0), rtol=1e-6)
    jac = jax.jacfwd(lambda x: standardize(params, x)[0])(x)
    np.testing.assert_allclose(log_det, jnp.linalg.slogdet(jac)[1], rtol=1e-6)
    x_back, inverse_log_det = unstandardize(params, y)
    np.testing.assert_allclose(x_back, x, rtol=1e-6)
    np.testing.assert_allclose(inverse_log_det, -log_det, rtol=1e-6)


def test_init_standardization_is_identity():
    params = init_standardization(3)
    np.testing.assert_array_equal(params.mean, np.zeros(3))
    np.testing.assert_array_equal(params.scale, np.ones(3))


def test_mlp_head_is_zero_and_trainable():
    net = MLP(hidden_sizes=(8, 8), out_size=5)
    variables = net.init(jax.random.key(0), jnp.zeros(3))
    head = variables["params"]["Dense_2"]
    assert not jnp.any(head["kernel"]) and not jnp.any(head["bias"])
    x = jnp.array([0.3, -1.0, 2.0])
    np.testing.assert_array_equal(net.apply(variables, x), np.zeros(5))
    grads = jax.grad(lambda v: jnp.sum(net.apply(v, x)))(variables)["params"]
    assert jnp.any(grads["Dense_2"]["kernel"]) and jnp.any(grads["Dense_2"]["bias"])


def test_whitening_decorrelates_and_has_the_covariance_log_det():
    rng = np.random.default_rng(1)
    mixing = np.array([[3.0, 0.0, 0.0], [2.9, 0.5, 0.0], [-1.0, 0.5, 0.3]])
    data = jnp.asarray(rng.normal(size=(20_000, 3)) @ mixing.T + [5.0, -1.0, 2.0], jnp.float32)
    params = fit_standardization(data, whiten=True)
    y, log_det = jax.vmap(lambda x: standardize(params, x))(data)
    np.testing.assert_allclose(np.cov(np.asarray(y, np.float64).T), np.eye(3), atol=2e-3)
    expected = -0.5 * np.linalg.slogdet(np.cov(np.asarray(data, np.float64).T, bias=True))[1]
    np.testing.assert_allclose(float(log_det[0]), expected, atol=2e-3)
    x, log_det_back = unstandardize(params, y[0])
    np.testing.assert_allclose(x, data[0], rtol=1e-4, atol=1e-4)
    assert abs(float(log_det_back + log_det[0])) < 1e-6


def test_whitening_identity_init_and_degenerate_data():
    params = init_standardization(2, whiten=True)
    np.testing.assert_array_equal(params.cholesky, np.eye(2))
    # two identical columns: singular covariance; the fit stays finite and invertible
    column = jnp.arange(10.0)
    params = fit_standardization(jnp.stack([column, column], axis=1), whiten=True)
    y, log_det = standardize(params, jnp.array([3.0, 3.0]))
    assert bool(jnp.all(jnp.isfinite(y))) and np.isfinite(float(log_det))
    x, _ = unstandardize(params, y)
    np.testing.assert_allclose(x, [3.0, 3.0], atol=1e-3)
