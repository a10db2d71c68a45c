"""numpyro targets: posterior predictive draws, constant data and input checks.

The draws are given directly from the exact posterior of a conjugate model (no sampler
run): mu ~ N(m0, s0), y_i ~ N(mu, sigma) with sigma known, so mu | y ~ N(m_n, s_n^2) and a
new observation is N(m_n, s_n^2 + sigma^2).
"""

import jax
import numpy as np
import pytest

import flowmc_like as fm
from tests.helpers.mcse import iid_z_scores

numpyro = pytest.importorskip("numpyro")
dist = numpyro.distributions

M0, S0, SIGMA = 1.0, 2.0, 0.5
Y = np.random.default_rng(0).normal(0.3, SIGMA, 8).astype(np.float32)
N_CHAINS, N_DRAWS = 4, 1000


def conjugate_normal(y):
    mu = numpyro.sample("mu", dist.Normal(M0, S0))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, SIGMA), obs=y)


def exact_posterior(y):
    """Mean and variance of mu | y."""
    precision = 1 / S0**2 + len(y) / SIGMA**2
    return (M0 / S0**2 + y.sum() / SIGMA**2) / precision, 1 / precision


@pytest.fixture(scope="module")
def conjugate():
    """The target and (n_chains, n_draws, 1) draws of mu from its exact posterior."""
    mean, variance = exact_posterior(Y)
    rng = np.random.default_rng(1)
    draws = rng.normal(mean, np.sqrt(variance), (N_CHAINS, N_DRAWS, 1)).astype(np.float32)
    return fm.from_numpyro(conjugate_normal, Y), draws


def test_replicates_match_the_exact_posterior_predictive(conjugate):
    """Each replicated y_i ~ N(m_n, s_n^2 + sigma^2) over draws (z-tests), and y_rep - mu
    ~ N(0, sigma^2) at each draw: drawn from the likelihood at the draw, not the prior."""
    target, draws = conjugate
    replicated = target.posterior_predictive(jax.random.key(2), draws)
    assert set(replicated) == {"y"}
    assert replicated["y"].shape == (N_CHAINS, N_DRAWS, len(Y))
    mean, variance = exact_posterior(Y)
    for i in (0, len(Y) - 1):
        z_mean, z_variance = iid_z_scores(
            replicated["y"][..., i].astype(float), mean, variance + SIGMA**2
        )
        assert abs(z_mean) < 4 and abs(z_variance) < 4, (i, z_mean, z_variance)
    residual = (replicated["y"] - draws).astype(float)
    z_mean, z_variance = iid_z_scores(residual, 0.0, SIGMA**2)
    assert abs(z_mean) < 4 and abs(z_variance) < 4
    again = target.posterior_predictive(jax.random.key(2), draws)
    np.testing.assert_array_equal(again["y"], replicated["y"])  # a key fixes the draws
    other = target.posterior_predictive(jax.random.key(3), draws)
    assert not np.array_equal(other["y"], replicated["y"])


def test_replicates_follow_new_data_and_constant_data_is_none(conjugate):
    """data= (here of another length: a new program) is used, and constant data is not
    known for numpyro targets."""
    target, draws = conjugate
    assert target.constant_data() is None and target.log_prob.constant_data() is None
    y_new = np.zeros(3, np.float32)
    replicated = target.posterior_predictive(jax.random.key(0), draws[:, :5], (((y_new,), {})))
    assert replicated["y"].shape == (N_CHAINS, 5, 3)
    np.testing.assert_array_equal(target.observed_data()["y"], Y)


def several_sites(y, z):
    """An observed site in a plate, one broadcast against its distribution (no plate), a
    factor, a deterministic and a positive latent."""
    loc = numpyro.sample("loc", dist.Normal(0.0, 1.0))
    scale = numpyro.sample("scale", dist.HalfNormal(1.0))
    numpyro.deterministic("twice", 2 * loc)
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(loc, scale), obs=y)
    numpyro.sample("z", dist.Normal(loc, scale), obs=z)  # batch shape () against obs (2, 3)
    numpyro.factor("penalty", -(loc**2))


def test_names_and_shapes_of_every_observed_site():
    y, z = np.ones(4, np.float32), np.ones((2, 3), np.float32)
    target = fm.from_numpyro(several_sites, y, z)
    draws = np.random.default_rng(0).normal(size=(2, 3, 2)).astype(np.float32)
    replicated = target.posterior_predictive(jax.random.key(0), draws)
    assert {name: value.shape for name, value in replicated.items()} == {
        "y": (2, 3, 4),
        "z": (2, 3, 2, 3),
    }
    assert len(np.unique(replicated["z"])) == replicated["z"].size  # drawn, not broadcast
    log_likelihood = target.log_likelihood(draws)
    assert log_likelihood["y"].shape == (2, 3, 4)


def test_bad_draws_and_keys_raise_value_errors_naming_them(conjugate):
    target, draws = conjugate
    with pytest.raises(ValueError, match=r"flat_draws has shape \(4, 1000, 2\).*n_dim = 1"):
        target.posterior_predictive(jax.random.key(0), np.zeros((4, 1000, 2)))
    with pytest.raises(ValueError, match=r"flat_draws has shape \(1000, 1\); expected"):
        target.posterior_predictive(jax.random.key(0), draws[0])
    with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
        target.posterior_predictive(0, draws)
    with pytest.raises(ValueError, match=r"flat has shape \(3, 2\)"):
        target.log_likelihood(np.zeros((3, 2)))
