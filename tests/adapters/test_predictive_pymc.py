"""PyMC targets: pointwise log likelihood, observed and constant data, posterior predictive.

The predictive draws are checked on a conjugate model with draws given directly from the
exact posterior (no sampler run): mu ~ N(m0, s0), y_i ~ N(mu, sigma) with sigma known, so
mu | y ~ N(m_n, s_n^2) and a new observation is N(m_n, s_n^2 + sigma^2).
"""

import os

import jax
import numpy as np
import pytest
from scipy import stats

import flowmc_like as fm
from tests.helpers.mcse import iid_z_scores

pm = pytest.importorskip("pymc")

M0, S0, SIGMA = 1.0, 2.0, 0.5
Y = np.random.default_rng(0).normal(0.3, SIGMA, 8)
N_CHAINS, N_DRAWS = 2, 1000


@pytest.fixture(scope="module", autouse=True)
def _restore_x64_and_xla_flags():
    """PyMC's JAX export turns on jax_enable_x64 and sets XLA_FLAGS; restore both after the
    module (the targets are shared between its tests, so not after each test)."""
    enabled, flags = jax.config.jax_enable_x64, os.environ.get("XLA_FLAGS")
    yield
    jax.config.update("jax_enable_x64", enabled)
    if flags is None:
        os.environ.pop("XLA_FLAGS", None)
    else:
        os.environ["XLA_FLAGS"] = flags


def exact_posterior(y):
    """Mean and variance of mu | y."""
    precision = 1 / S0**2 + len(y) / SIGMA**2
    return (M0 / S0**2 + y.sum() / SIGMA**2) / precision, 1 / precision


@pytest.fixture(scope="module")
def conjugate():
    """The target and (n_chains, n_draws, 1) draws of mu from its exact posterior."""
    with pm.Model() as model:
        mu = pm.Normal("mu", M0, S0)
        pm.Normal("y", mu, SIGMA, observed=Y)
    mean, variance = exact_posterior(Y)
    draws = np.random.default_rng(1).normal(mean, np.sqrt(variance), (N_CHAINS, N_DRAWS, 1))
    return fm.from_pymc(model), draws


def test_replicates_match_the_exact_posterior_predictive(conjugate):
    target, draws = conjugate
    replicated = target.posterior_predictive(jax.random.key(2), draws)
    assert set(replicated) == {"y"}
    assert replicated["y"].shape == (N_CHAINS, N_DRAWS, len(Y))
    mean, variance = exact_posterior(Y)
    for i in (0, len(Y) - 1):
        z_mean, z_variance = iid_z_scores(replicated["y"][..., i], mean, variance + SIGMA**2)
        assert abs(z_mean) < 4 and abs(z_variance) < 4, (i, z_mean, z_variance)
    z_mean, z_variance = iid_z_scores(replicated["y"] - draws, 0.0, SIGMA**2)  # at each draw
    assert abs(z_mean) < 4 and abs(z_variance) < 4
    again = target.posterior_predictive(jax.random.key(2), draws)
    np.testing.assert_array_equal(again["y"], replicated["y"])  # a key fixes the draws


def test_bad_draws_and_keys_raise_value_errors_naming_them(conjugate):
    target, draws = conjugate
    with pytest.raises(ValueError, match=r"flat_draws has shape \(2, 3, 2\).*n_dim = 1"):
        target.posterior_predictive(jax.random.key(0), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match=r"flat_draws has shape \(3, 1\); expected"):
        target.posterior_predictive(jax.random.key(0), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
        target.posterior_predictive(np.random.default_rng(0), draws)
    with pytest.raises(ValueError, match=r"flat has shape \(3, 2\)"):
        target.log_likelihood(np.zeros((3, 2)))


def regression(X, y):
    """y ~ N(X b, s), b ~ N(0, prior_scale) with X, y and prior_scale as pm.Data, and a
    second, baked-in observed variable."""
    with pm.Model() as model:
        X_data = pm.Data("X", X)
        y_data = pm.Data("y", y)
        prior_scale = pm.Data("prior_scale", 1.0)
        b = pm.Normal("b", 0.0, prior_scale, shape=2)
        s = pm.HalfNormal("s", 1.0)
        pm.Normal("obs", X_data @ b, s, observed=y_data, shape=X_data.shape[0])
        pm.Normal("extra", b[0], 1.0, observed=np.array([0.5, -0.2]))
    return model


@pytest.fixture(scope="module")
def regression_target():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 2))
    model = regression(X, X @ np.array([1.0, -0.5]) + rng.normal(0.0, 0.3, 6))
    return model, fm.from_pymc(model)


def test_log_likelihood_is_scipys_elementwise_log_density(regression_target):
    """Per observation, at the constrained values of each draw, on the target's data."""
    _, target = regression_target
    draws = np.random.default_rng(4).normal(size=(2, 3, 3))
    values = target.constrain(draws)
    b, s = values["b"], values["s"][..., None]
    log_likelihood = target.log_likelihood(draws)
    assert set(log_likelihood) == {"obs", "extra"}
    X, y = target.data["X"], target.data["y"]
    np.testing.assert_allclose(log_likelihood["obs"], stats.norm.logpdf(y, b @ X.T, s), rtol=1e-6)
    np.testing.assert_allclose(
        log_likelihood["extra"], stats.norm.logpdf([0.5, -0.2], b[..., :1], 1.0), rtol=1e-6
    )
    observed = target.observed_data()
    np.testing.assert_array_equal(observed["obs"], y)
    np.testing.assert_array_equal(observed["extra"], [0.5, -0.2])


def test_constant_data_and_replicates_follow_the_data(regression_target):
    """constant_data: the pm.Data that are not only observed values (not y); the
    replicates use the data given (new covariates; a new prior scale does not redraw b, which
    stays at its draws), and the model's own pm.Data values are restored."""
    model, target = regression_target
    X_new = np.ones((6, 2))
    other = target.with_data(X=X_new, prior_scale=100.0)
    assert set(target.constant_data()) == {"X", "prior_scale"}
    np.testing.assert_array_equal(target.constant_data()["X"], target.data["X"])
    np.testing.assert_array_equal(other.constant_data()["X"], X_new)
    draws = np.zeros((1, 200, 3))
    draws[..., :2] = [3.0, 1.0]  # b = (3, 1), s = exp(0) = 1: mean X_new @ b = 4
    replicated = target.posterior_predictive(jax.random.key(0), draws, other.data)
    assert {name: value.shape for name, value in replicated.items()} == {
        "obs": (1, 200, 6),
        "extra": (1, 200, 2),
    }
    z_mean, _ = iid_z_scores(replicated["obs"], 4.0, 1.0)
    assert abs(z_mean) < 4
    z_mean, _ = iid_z_scores(replicated["extra"], 3.0, 1.0)  # N(b[0], 1)
    assert abs(z_mean) < 4
    np.testing.assert_array_equal(model["X"].get_value(), target.data["X"])
    assert float(model["prior_scale"].get_value()) == 1.0


def test_a_model_without_pm_data_has_no_constant_data(conjugate):
    target, _ = conjugate
    assert target.constant_data() is None
    np.testing.assert_array_equal(target.observed_data()["y"], Y)
