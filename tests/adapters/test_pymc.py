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
    idata = result.to_arviz()
    assert {"scale", "weights", "log_scale"} <= set(idata.posterior.data_vars)
    n_draws = idata.posterior.sizes["draw"]  # per observation: a Multinomial count vector is one
    assert idata.log_likelihood["noise"].shape == (8, n_draws, 3)
    assert idata.log_likelihood["obs"].shape == (8, n_draws)
    np.testing.assert_array_equal(idata.observed_data["obs"], [12, 3, 5])
    approximation = result.approximation()  # draws map to the model's values; no way back
    values = approximation.sample(jax.random.key(2), 4)
    np.testing.assert_allclose(values["weights"].sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(NotImplementedError, match="log_prob_unconstrained"):
        approximation.log_prob(values)
    assert approximation.log_prob_unconstrained(jnp.zeros((4, 3))).shape == (4,)


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


# --- pm.Data containers are traced inputs ----------------------------------------------------


def _dataset(seed, n=15):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, X @ np.array([1.0, -0.5]) + rng.normal(0.0, 0.3, n)


def regression(X, y, prior_scale=1.0):
    """y ~ N(X b, s) with X and y as pm.Data, a deterministic mean and a baked-in constant."""
    with pm.Model() as model:
        X_data = pm.Data("X", X)
        y_data = pm.Data("y", y)
        b = pm.Normal("b", 0.0, prior_scale, shape=2)
        s = pm.HalfNormal("s", 1.0)
        mean = pm.Deterministic("mean", X_data @ b)
        pm.Normal("obs", mean, s, observed=y_data, shape=X_data.shape[0])
        pm.Normal("extra", b[0], 1.0, observed=np.array([0.5, -0.2]))  # baked in
    return model


def test_pm_data_are_the_data_and_the_log_density_equals_pymc():
    """target.data = {name: value} of the pm.Data; log_prob(x, data) is PyMC's logp of the
    model with those values set, on random points; log_prob(x) uses the target's own."""
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    model = regression(X1, y1)
    target = fm.from_pymc(model)
    assert set(target.data) == {"X", "y"}
    np.testing.assert_array_equal(target.data["X"], X1)
    assert target.log_prob.data is target.data and target.log_prior.data is target.data
    other = target.with_data(X=X2, y=y2)
    xs = np.random.default_rng(2).normal(size=(4, 3))
    for X, y, data in ((X1, y1, target.data), (X2, y2, other.data)):
        with model:
            pm.set_data({"X": X, "y": y})
        reference = model.compile_logp()
        for x in xs:
            point = {"b": x[:2], "s_log__": x[2]}
            np.testing.assert_allclose(
                float(target.log_prob(jnp.asarray(x), data)), reference(point), rtol=1e-5
            )
    for x in xs:
        assert float(target.log_prob(jnp.asarray(x))) == float(
            target.log_prob(jnp.asarray(x), target.data)
        )


def test_equal_programs_share_a_program_key_and_with_data_refuses_a_new_one():
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    model = regression(X1, y1)
    target = fm.from_pymc(model)
    key = target.log_prob.program_key
    assert fm.from_pymc(model).log_prob.program_key == key
    moved = target.with_data(X=X2)  # y kept
    assert moved.log_prob.program_key == key and hash(moved.log_prob.program_key) == hash(key)
    assert moved.log_prior.program_key == target.log_prior.program_key
    assert moved.log_prob != target.log_prob  # compared by identity (each has its data)
    np.testing.assert_array_equal(moved.data["y"], y1)
    assert fm.from_pymc(regression(X1, y1)).log_prob.program_key != key  # another model
    with model:
        pm.set_data({"X": X2[:10], "y": y2[:10]})
    assert fm.from_pymc(model).log_prob.program_key != key  # other shapes
    with pytest.raises(ValueError, match=r"'X' has shape \(10, 2\) instead of \(15, 2\)"):
        target.with_data(X=X2[:10])
    with pytest.raises(ValueError, match=r"no pm.Data named \['z'\]"):
        target.with_data(z=1.0)
    with pytest.raises(TypeError, match="by name"):
        target.with_data(X2)


def test_constrain_log_prior_and_a_jitted_log_density_take_the_data():
    """The deterministic mean follows the data given to constrain; a jitted function of
    (x, data) traces once for two datasets."""
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    target = fm.from_pymc(regression(X1, y1, prior_scale=2.0))
    other = target.with_data(X=X2, y=y2)
    flat = np.random.default_rng(3).normal(size=(3, 4, 3))
    np.testing.assert_allclose(
        target.constrain(flat, other.data)["mean"], flat[..., :2] @ X2.T, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        target.constrain(flat)["mean"], flat[..., :2] @ X1.T, rtol=1e-5, atol=1e-5
    )
    x = jnp.asarray(flat[0, 0])
    np.testing.assert_allclose(
        float(target.log_prior(x, other.data)), float(target.log_prior(x)), rtol=1e-6
    )
    n_traces = 0

    def log_prob(x, data):
        nonlocal n_traces
        n_traces += 1
        return target.log_prob(x, data)

    jitted = jax.jit(log_prob)
    first, second = jitted(x, target.data), jitted(x, other.data)
    assert n_traces == 1
    np.testing.assert_allclose(float(first), float(target.log_prob(x)), rtol=1e-5)
    np.testing.assert_allclose(float(second), float(other.log_prob(x)), rtol=1e-5)
    assert float(first) != float(second)


def test_a_run_on_new_pm_data_exports_on_them():
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    target = fm.from_pymc(regression(X1, y1))
    other = target.with_data(X=X2, y=y2)
    sampler = fm.Sampler(target, n_chains=4, global_model=None, **TINY)
    x0 = target.initial_position(jax.random.key(0), 4)
    first = sampler.run(jax.random.key(1), x0)
    second = sampler.run(jax.random.key(1), x0, data=other.data)
    assert second.timings["compile"] < 0.5 * first.timings["compile"]
    for result, X in ((first, X1), (second, X2)):
        b = np.asarray(result.samples["b"])
        np.testing.assert_allclose(result.samples["mean"], b @ X.T, rtol=1e-4, atol=1e-5)
