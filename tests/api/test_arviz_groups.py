"""ArviZ groups of a plain log density: a pointwise log likelihood and predictive draws.

The model is a linear regression ``y ~ N(a + b t, 1)`` written as a plain JAX log density
with ``data=(t, y)``. The exported log likelihood must equal the Normal log density at every
draw, ``az.loo`` must run on it, and the replicated observations of `posterior_predictive`
must be ``a + b t`` plus fresh unit noise at every draw.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import flowmc_like as fm

T = np.linspace(-1.0, 1.0, 12)
Y = 0.5 + 2.0 * T + np.random.default_rng(0).normal(size=T.size)


def pointwise(params, data):
    """``(n_obs,)`` log N(y_i; a + b t_i, 1) at one position ``{"a": (), "b": ()}``."""
    t, y = data
    return jax.scipy.stats.norm.logpdf(y, params["a"] + params["b"] * t)


def log_prob(params, data):
    prior = jax.scipy.stats.norm.logpdf(params["a"], 0, 5) + jax.scipy.stats.norm.logpdf(
        params["b"], 0, 5
    )
    return prior + jnp.sum(pointwise(params, data))


def simulate(key, params, data):
    t, _ = data
    return params["a"] + params["b"] * t + jax.random.normal(key, t.shape)


@pytest.fixture(scope="module")
def result():
    sampler = fm.Sampler(
        log_prob,
        n_chains=8,
        data=(jnp.asarray(T), jnp.asarray(Y)),
        n_training_loops=2,
        n_production_loops=2,
        n_local_steps=20,
        n_global_steps=10,
        progress_bar=False,
    )
    start = {"a": jnp.zeros(8), "b": jnp.zeros(8)}
    with pytest.warns(RuntimeWarning):  # a short run: the diagnostics warn
        return sampler.run(jax.random.key(0), start)


def test_the_pointwise_log_likelihood_is_evaluated_at_every_draw(result):
    az = pytest.importorskip("arviz")
    idata = result.to_arviz(log_likelihood=pointwise, observed_data={"y": Y})
    values = np.asarray(idata.log_likelihood["y"])
    a, b = result.samples["a"], result.samples["b"]
    expected = stats.norm.logpdf(Y, a[..., None] + b[..., None] * T)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(idata.observed_data["y"]), Y)
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.n_data_points == T.size


def test_precomputed_groups_are_taken_as_given(result):
    given = np.zeros((result.n_chains, result.n_draws, T.size))
    idata = result.to_arviz(
        log_likelihood={"obs": given}, constant_data={"t": T}, observed_data={"obs": Y}
    )
    assert np.asarray(idata.log_likelihood["obs"]).shape == given.shape
    np.testing.assert_array_equal(np.asarray(idata.constant_data["t"]), T)
    plain = result.to_arviz()
    assert "log_likelihood" not in plain.groups() and "observed_data" not in plain.groups()


def test_posterior_predictive_draws_fresh_noise_at_every_draw(result):
    replicated = result.posterior_predictive(jax.random.key(5), simulate=simulate)["y"]
    assert replicated.shape == (result.n_chains, result.n_draws, T.size)
    a, b = result.samples["a"], result.samples["b"]
    noise = replicated - (a[..., None] + b[..., None] * T)
    n = noise.size  # independent unit normals if every draw has its own key
    assert abs(noise.mean()) < 4 / np.sqrt(n)
    assert abs(noise.var() - 1.0) < 4 * np.sqrt(2.0 / n)
    assert np.std(noise[:, :, 0]) > 0.5  # not one noise vector shared by all draws
    idata = result.to_arviz(posterior_predictive={"y": replicated}, observed_data={"y": Y})
    assert np.asarray(idata.posterior_predictive["y"]).shape == replicated.shape


def test_bad_arguments_are_named(result):
    with pytest.raises(ValueError, match="simulate"):
        result.posterior_predictive()
    with pytest.raises(TypeError, match="simulate"):
        result.posterior_predictive(simulate="not a function")
