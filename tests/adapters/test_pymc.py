"""fm.from_pymc: exact unconstrained density, support and names, through PyMC's JAX export."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from tests.conftest import TINY

pm = pytest.importorskip("pymc")


@pytest.fixture(autouse=True)
def _restore_x64_and_xla_flags(monkeypatch):
    """PyMC's JAX export turns on jax_enable_x64 (pytensor's floatX is float64) for the whole
    process, and importing ``pymc.sampling.jax`` sets ``XLA_FLAGS`` to ask for 100 CPU
    devices (which every subprocess started later would get); restore both, so that the
    tests after these run as they would alone."""
    enabled = jax.config.jax_enable_x64
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    yield
    jax.config.update("jax_enable_x64", enabled)


def test_log_density_includes_the_jacobian():
    """sigma = exp(u): log p(u) = log HalfNormal(exp(u); 2) + u."""
    with pm.Model() as model:
        pm.HalfNormal("sigma", 2.0)
    target = fm.from_pymc(model)
    assert target.n_dim == 1 and target.names == ("sigma_log__",)
    for u in (-2.0, 0.0, 0.7, 2.5):
        sigma = math.exp(u)
        expected = 0.5 * math.log(2 / math.pi) - math.log(2.0) - sigma**2 / 8.0 + u
        assert float(target.log_prob(jnp.array([u]))) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(
        target.constrain(np.array([[0.0], [1.0]]))["sigma"], [1.0, math.e], rtol=1e-6
    )


def test_constrained_draws_stay_in_the_support_and_keep_their_names():
    with pm.Model() as model:
        scale = pm.LogNormal("scale", 0.0, 1.0)
        weights = pm.Dirichlet("weights", np.ones(3))
        pm.Multinomial("obs", n=20, p=weights, observed=np.array([12, 3, 5]))
        pm.Normal("noise", 0.0, scale, observed=np.array([0.3, -1.2, 0.8]))
        pm.Deterministic("log_scale", pm.math.log(scale))
    target = fm.from_pymc(model)
    assert target.n_dim == 1 + 2
    x0 = target.initial_position(jax.random.key(0), 8)
    result = fm.Sampler(target, n_chains=8, **TINY).run(jax.random.key(1), x0)
    samples = result.samples
    assert {"scale", "weights", "log_scale"} <= set(samples)
    assert np.all(samples["scale"] > 0)
    assert np.all(samples["weights"] >= 0)
    np.testing.assert_allclose(samples["weights"].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(samples["log_scale"], np.log(samples["scale"]), rtol=1e-4)
    assert {"scale", "weights", "log_scale"} <= set(result.to_arviz().posterior.data_vars)


def test_log_prior_is_the_free_variables_with_their_jacobian():
    """mu ~ N(0, 2), sigma ~ HalfNormal(1) (sampled as log sigma), 20 observations and a
    Potential: log_prior = prior + log sigma; log_prob - log_prior = observations + Potential."""
    y = np.random.default_rng(0).normal(1.0, 0.7, 20)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 2.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", mu, sigma, observed=y)
        pm.Potential("penalty", -0.5 * mu**2)
        pm.Deterministic("precision", 1.0 / sigma**2)
    target = fm.from_pymc(model)
    assert target.names == ("mu", "sigma_log__")
    assert target.log_prior is target.log_prob.log_prior

    def normal_logpdf(x, loc, scale):
        return -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)

    for mu_value, log_sigma in ((0.3, -0.2), (-1.5, 0.8), (2.0, -1.1)):
        x = jnp.array([mu_value, log_sigma])
        sigma_value = math.exp(log_sigma)
        prior = (
            normal_logpdf(mu_value, 0.0, 2.0)
            + math.log(2.0)
            + normal_logpdf(sigma_value, 0.0, 1.0)  # HalfNormal(1)
            + log_sigma  # Jacobian of sigma = exp(u)
        )
        likelihood = normal_logpdf(y, mu_value, sigma_value).sum() - 0.5 * mu_value**2
        np.testing.assert_allclose(float(target.log_prior(x)), prior, rtol=1e-5)
        np.testing.assert_allclose(
            float(target.log_prob(x) - target.log_prior(x)), likelihood, rtol=1e-5
        )
    xs = jax.random.normal(jax.random.key(0), (4, 2))
    batched = jax.jit(jax.vmap(target.log_prior))(xs)
    np.testing.assert_allclose(batched, [float(target.log_prior(row)) for row in xs], rtol=1e-6)
    gradient = jax.grad(target.log_prior)(jnp.array([0.3, -0.2]))
    np.testing.assert_allclose(gradient, [-0.3 / 4, 1 - math.exp(-0.4)], rtol=1e-5)
