"""fm.from_numpyro: exact unconstrained density, support, names, and eight schools vs NUTS."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from tests.conftest import TINY

numpyro = pytest.importorskip("numpyro")
dist = numpyro.distributions


def half_normal_scale():
    numpyro.sample("sigma", dist.HalfNormal(2.0))


def test_log_density_includes_the_jacobian():
    """sigma = exp(u): log p(u) = log HalfNormal(exp(u); 2) + u, at several u."""
    target = fm.from_numpyro(half_normal_scale)
    assert target.n_dim == 1 and target.names == ("sigma",)
    for u in (-2.0, 0.0, 0.7, 2.5):
        sigma = math.exp(u)
        expected = (
            0.5 * math.log(2 / math.pi) - math.log(2.0) - sigma**2 / 8.0 + u  # Jacobian: + u
        )
        assert float(target.log_prob(jnp.array([u]))) == pytest.approx(expected, rel=1e-5)
    constrained = target.constrain(np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(constrained["sigma"], [1.0, math.e], rtol=1e-6)


def positive_and_simplex(counts):
    scale = numpyro.sample("scale", dist.LogNormal(0.0, 1.0))
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.ones(3)))
    numpyro.sample("obs", dist.Multinomial(total_count=counts.sum(), probs=weights), obs=counts)
    numpyro.sample("noise", dist.Normal(0.0, scale), obs=jnp.array([0.3, -1.2, 0.8]))
    numpyro.deterministic("log_scale", jnp.log(scale))


def test_constrained_draws_stay_in_the_support_and_keep_their_names():
    counts = jnp.array([12.0, 3.0, 5.0])
    target = fm.from_numpyro(positive_and_simplex, counts)
    assert target.n_dim == 1 + 2  # log scale, stick-breaking simplex
    x0 = target.initial_position(jax.random.key(0), 8)
    assert x0.shape == (8, 3)
    result = fm.Sampler(target, n_chains=8, **TINY).run(jax.random.key(1), x0)
    samples = result.samples
    assert set(samples) == {"scale", "weights", "log_scale"}
    assert samples["weights"].shape == (8, result.n_draws, 3)
    assert np.all(samples["scale"] > 0)
    assert np.all(samples["weights"] >= 0) and np.all(samples["weights"] <= 1)
    np.testing.assert_allclose(samples["weights"].sum(-1), 1.0, rtol=1e-5)
    # float32 log/exp round trip: relative 1e-5, absolute 1e-7 near log_scale = 0
    np.testing.assert_allclose(samples["log_scale"], np.log(samples["scale"]), rtol=1e-5, atol=1e-7)
    idata = result.to_arviz()
    assert set(idata.posterior.data_vars) == {"scale", "weights", "log_scale"}
    assert set(idata.warmup_posterior.data_vars) == {"scale", "weights", "log_scale"}
    assert any(name.startswith("weights[") for name in result.summary().index)
    # the approximation's density of constrained values (stick-breaking Jacobian included)
    approximation = result.approximation()
    values, log_q = approximation.sample_and_log_prob(jax.random.key(2), 5)
    assert set(values) == {"scale", "weights", "log_scale"}
    np.testing.assert_allclose(values["weights"].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(approximation.log_prob(values), log_q, rtol=1e-4, atol=1e-4)
    flat = approximation.sample_unconstrained(jax.random.key(2), 5)
    assert flat.shape == (5, 3)


def test_bad_n_dim_and_n_chains_are_refused():
    target = fm.from_numpyro(half_normal_scale)
    with pytest.raises(ValueError, match="n_dim=3 disagrees"):
        fm.Sampler(target, n_dim=3)
    with pytest.raises(ValueError, match="n_chains"):
        target.initial_position(jax.random.key(0), 0)


EIGHT_SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
EIGHT_SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools_noncentered(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


# numpyro NUTS, 4 chains x 50,000 draws after 2,000 warm-up (PRNGKey(2024), numpyro 0.22):
# posterior mean, sd and MCSE of the mean (ArviZ), in the order mu, tau, theta[0..7].
# R-hat <= 1.00003 and bulk ESS >= 112,000 for every entry.
NUTS_REFERENCE = {
    "mean": [4.3910, 3.6051, 6.2005, 4.9349, 3.9272, 4.7496, 3.6214, 4.0439, 6.2967, 4.8446],
    "sd": [3.3168, 3.2217, 5.5887, 4.6752, 5.2373, 4.7869, 4.6434, 4.8301, 5.0578, 5.3064],
    "mcse_mean": [0.0074, 0.0088, 0.0132, 0.0098, 0.0119, 0.0101, 0.0100, 0.0105, 0.0112, 0.0119],
}


@pytest.mark.slow
@pytest.mark.statistical
def test_eight_schools_matches_numpyro_nuts():
    """Posterior means (z-score on both MCSEs) and sds (relative) of mu, tau and theta."""
    import arviz as az

    target = fm.from_numpyro(
        eight_schools_noncentered,
        jnp.asarray(EIGHT_SCHOOLS_SIGMA),
        y=jnp.asarray(EIGHT_SCHOOLS_Y),
    )
    x0 = target.initial_position(jax.random.key(2), 32)
    result = fm.Sampler(target, n_chains=32, progress_bar=False).run(jax.random.key(3), x0)
    ours = az.summary(result.to_arviz(), var_names=["mu", "tau", "theta"])
    assert list(ours.index) == ["mu", "tau"] + [f"theta[{i}]" for i in range(8)]
    assert np.all(ours["r_hat"] < 1.05), ours
    mean, sd, mcse = (np.asarray(NUTS_REFERENCE[k]) for k in ("mean", "sd", "mcse_mean"))
    z = np.abs(ours["mean"].to_numpy() - mean) / np.hypot(ours["mcse_mean"].to_numpy(), mcse)
    assert np.all(z < 4.5), dict(zip(ours.index, z.round(2), strict=True))
    sd_rel = np.abs(ours["sd"].to_numpy() / sd - 1)
    assert np.all(sd_rel < 0.15), dict(zip(ours.index, sd_rel.round(3), strict=True))
    # the model's evidence (HalfCauchy tails, Jacobians of tau = exp(u)) against quadrature
    evidence = result.log_evidence(jax.random.key(4))
    assert evidence.is_reliable, evidence
    assert abs(evidence.log_z - eight_schools_log_z()) / evidence.standard_error < 4, evidence


def eight_schools_log_z():
    """log Z of the eight schools: mu and theta integrated in closed form, tau by quadrature."""
    from scipy import integrate, stats

    def log_marginal(tau):
        covariance = np.diag(EIGHT_SCHOOLS_SIGMA**2 + tau**2) + 25.0  # + Var(mu) 1 1^T
        return stats.multivariate_normal(np.zeros(8), covariance).logpdf(EIGHT_SCHOOLS_Y)

    shift = log_marginal(0.0)  # tau = 5 tan(pi u / 2) has u uniform under HalfCauchy(5)
    value, _ = integrate.quad(
        lambda u: math.exp(log_marginal(5.0 * math.tan(math.pi * u / 2)) - shift), 0.0, 1.0
    )
    return shift + math.log(value)


def normal_with_factor(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("n", len(y)):
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)
    numpyro.factor("penalty", -0.5 * mu**2)
    numpyro.deterministic("precision", 1.0 / sigma**2)


def test_log_prior_is_the_prior_with_its_jacobian_and_the_rest_is_the_likelihood():
    """log_prior = prior densities + log-Jacobian; log_prob - log_prior = observations + factor."""
    y = np.random.default_rng(0).normal(1.0, 0.7, 20)
    target = fm.from_numpyro(normal_with_factor, y)
    assert target.log_prior is target.log_prob.log_prior
    for mu, log_sigma in ((0.3, -0.2), (-1.5, 0.8), (2.0, -1.1)):
        x = jnp.array([mu, log_sigma])
        sigma = math.exp(log_sigma)
        prior = dist.Normal(0.0, 2.0).log_prob(mu) + dist.HalfNormal(1.0).log_prob(sigma)
        likelihood = dist.Normal(mu, sigma).log_prob(y).sum() - 0.5 * mu**2
        np.testing.assert_allclose(target.log_prior(x), prior + log_sigma, rtol=1e-5)
        np.testing.assert_allclose(target.log_prob(x) - target.log_prior(x), likelihood, rtol=1e-5)
    values = jax.vmap(jax.jit(target.log_prior))(jnp.zeros((3, 2)))
    assert values.shape == (3,) and np.allclose(values, values[0])


def squared_mean(y):
    """y ~ N(theta^2, sigma): theta and -theta explain the data equally (two modes)."""
    theta = numpyro.sample("theta", dist.Normal(0.0, 3.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    with numpyro.plate("n", len(y)):
        numpyro.sample("y", dist.Normal(theta**2, sigma), obs=y)


@pytest.mark.slow
@pytest.mark.statistical
def test_likelihood_tempering_finds_both_signs_of_a_symmetric_posterior():
    """Every chain starts at theta = +2; the modes at +-2 are ~0.1 wide and 4 apart. With
    the likelihood tempered (the hottest replica samples the prior) both are found, each
    with weight 1/2 by symmetry."""
    from flowmc_like.exporters.arviz import ess_bulk

    y = np.asarray(4.0 + np.random.default_rng(1).normal(0.0, 1.0, 30))
    target = fm.from_numpyro(squared_mean, y)
    sampler = fm.Sampler(target, n_chains=16, n_temperatures=6, target_ess=400, progress_bar=False)
    assert sampler.log_prior is target.log_prior
    x0 = jnp.tile(jnp.array([2.0, 0.0]), (16, 1))
    result = sampler.run(jax.random.key(0), x0)
    positive = (np.asarray(result.samples["theta"]) > 0).astype(float)[..., None]
    share, ess = positive.mean(), float(ess_bulk(positive)[0])
    assert ess > 100
    assert abs(share - 0.5) / math.sqrt(0.25 / ess) < 4, (share, ess)
    assert result.history.ladder[-1, -1] == 0.0  # the hottest level is the prior


def test_log_prior_stays_exact_when_the_likelihood_is_large():
    """100,000 float32 observations: log_prob ~ -1e5, yet log_prior is the prior to ~1 ulp
    (it is not log_prob minus the likelihood, which would lose ~1e-2 to cancellation)."""
    y = np.random.default_rng(1).normal(1.0, 0.7, 100_000).astype(np.float32)
    target = fm.from_numpyro(normal_with_factor, y)
    for mu, log_sigma in ((0.3, -0.2), (2.0, -1.1)):
        x = jnp.array([mu, log_sigma])
        assert float(target.log_prob(x)) < -1e5
        prior = (
            dist.Normal(0.0, 2.0).log_prob(mu)
            + dist.HalfNormal(1.0).log_prob(math.exp(log_sigma))
            + log_sigma
        )
        np.testing.assert_allclose(target.log_prior(x), prior, rtol=1e-6)


def autoregressive(y):
    """rho ~ U(-1, 1); y_t ~ N(rho * y_{t-1}, 1) observed inside a numpyro scan."""
    from numpyro.contrib.control_flow import scan

    rho = numpyro.sample("rho", dist.Uniform(-1.0, 1.0))

    def step(previous, y_t):
        numpyro.sample("y", dist.Normal(rho * previous, 1.0), obs=y_t)
        return y_t, None

    scan(step, 0.0, y)


def test_log_prior_of_scanned_and_conditioned_observations():
    """Observed sites inside a scan and sites fixed by handlers.condition are likelihood;
    U(-1, 1) through the sigmoid keeps its Jacobian 2 s (1 - s) in the prior."""
    y = jnp.array([0.5, 1.0, -0.3, 0.2])
    target = fm.from_numpyro(autoregressive, y)
    for u in (-1.3, 0.4):
        s = 1.0 / (1.0 + math.exp(-u))
        rho = 2.0 * s - 1.0
        previous = jnp.concatenate([jnp.zeros(1), y[:-1]])
        likelihood = dist.Normal(rho * previous, 1.0).log_prob(y).sum()
        x = jnp.array([u])
        np.testing.assert_allclose(target.log_prior(x), math.log(s * (1 - s)), rtol=1e-5)
        np.testing.assert_allclose(target.log_prob(x) - target.log_prior(x), likelihood, rtol=1e-5)

    conditioned = numpyro.handlers.condition(normal_with_factor, {"mu": 0.5})
    target = fm.from_numpyro(conditioned, y)
    assert target.names == ("sigma",)
    x = jnp.array([0.3])
    sigma = math.exp(0.3)
    prior = dist.HalfNormal(1.0).log_prob(sigma) + 0.3
    likelihood = (
        dist.Normal(0.0, 2.0).log_prob(0.5)  # a conditioned latent is data
        + dist.Normal(0.5, sigma).log_prob(y).sum()
        - 0.5 * 0.5**2
    )
    np.testing.assert_allclose(target.log_prior(x), prior, rtol=1e-5)
    np.testing.assert_allclose(target.log_prob(x) - target.log_prior(x), likelihood, rtol=1e-5)


def test_log_prior_has_gradients_and_batches():
    """grad matches the hand derivative; jit(vmap) matches the one-position calls."""
    y = np.random.default_rng(0).normal(1.0, 0.7, 20)
    target = fm.from_numpyro(normal_with_factor, y)
    x = jnp.array([0.3, -0.2])
    # d/dmu: -mu / 4; d/du of (-exp(2u) / 2 + u): -exp(2u) + 1
    np.testing.assert_allclose(
        jax.grad(target.log_prior)(x), [-0.3 / 4, 1 - math.exp(-0.4)], rtol=1e-5
    )
    xs = jax.random.normal(jax.random.key(0), (5, 2))
    batched = jax.jit(jax.vmap(target.log_prior))(xs)
    np.testing.assert_allclose(batched, [target.log_prior(row) for row in xs], rtol=1e-6)


def test_a_model_log_density_without_a_prior_has_none():
    from flowmc_like.adapters.ppl import ModelLogDensity

    density = ModelLogDensity(lambda x, data: -x @ x, lambda x, data: {"x": x}, 2)
    assert density.log_prior is None
    assert density == density and density != ModelLogDensity(density.log_density, None, 2)


# --- The model's data are traced inputs --------------------------------------------------


def regression(X, y=None, prior_scale=1.0, link="identity"):
    """y ~ N(X b, s), with a deterministic site that depends on the data (the mean)."""
    b = numpyro.sample("b", dist.Normal(0.0, prior_scale).expand([X.shape[1]]).to_event(1))
    s = numpyro.sample("s", dist.HalfNormal(1.0))
    mean = numpyro.deterministic("mean", X @ b if link == "identity" else jnp.exp(X @ b))
    with numpyro.plate("n", X.shape[0]):
        numpyro.sample("y", dist.Normal(mean, s), obs=y)


def _dataset(seed, n=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)).astype(np.float32)
    return X, (X @ np.array([1.0, -0.5]) + rng.normal(0.0, 0.3, n)).astype(np.float32)


def _numpyro_potential_fn(model, *args, **kwargs):
    """numpyro's own potential_fn of the model with its data closed over (the reference)."""
    from numpyro.infer.util import initialize_model

    return initialize_model(
        jax.random.PRNGKey(0), model, model_args=args, model_kwargs=kwargs
    ).potential_fn


def test_the_data_are_the_array_arguments_and_the_rest_is_static():
    X, y = _dataset(0)
    target = fm.from_numpyro(regression, X, y=y, prior_scale=np.float32(2.0), link="identity")
    (args, kwargs) = target.data
    assert args[0] is X and kwargs["y"] is y and kwargs["link"] is None
    assert isinstance(kwargs["prior_scale"], np.float32)  # a numpy scalar is traced
    assert target.log_prob.data is target.data and target.log_prior.data is target.data
    assert fm.from_numpyro(regression, X, y, 2.0).data == ((X, y, None), {})


def test_log_density_on_data_equals_numpyro_potential_on_random_points():
    """log_prob(x, data) = -potential_fn(x) of the model with those data closed over, for
    the target's own data and for another dataset; log_prob(x) uses the target's own."""
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    target = fm.from_numpyro(regression, X1, y1, prior_scale=2.0)
    other = fm.from_numpyro(regression, X2, y2, prior_scale=2.0)
    xs = jax.random.normal(jax.random.key(0), (5, 3))
    for (X, y), data in (((X1, y1), target.data), ((X2, y2), other.data)):
        potential_fn = _numpyro_potential_fn(regression, X, y, prior_scale=2.0)
        for x in xs:
            expected = -potential_fn({"b": x[:2], "s": x[2]})
            np.testing.assert_allclose(target.log_prob(x, data), expected, rtol=1e-6)
    for x in xs:
        assert float(target.log_prob(x)) == float(target.log_prob(x, target.data))
        assert float(target.log_prob(x, None)) == float(target.log_prob(x))


def test_equal_programs_share_a_program_key_and_compare_by_identity():
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    first = fm.from_numpyro(regression, X1, y1, prior_scale=2.0)
    second = fm.from_numpyro(regression, X2, y2, prior_scale=2.0)
    assert first.log_prob.program_key == second.log_prob.program_key
    assert hash(first.log_prob.program_key) == hash(second.log_prob.program_key)
    assert first.log_prior.program_key == second.log_prior.program_key
    # each reads its own data when called without: jax.jit must not share their traces
    assert first.log_prob != second.log_prob
    x = jnp.zeros(first.n_dim)
    assert float(jax.jit(first.log_prob)(x)) != float(jax.jit(second.log_prob)(x))
    different = {
        "a shape": fm.from_numpyro(regression, *_dataset(2, n=20), prior_scale=2.0),
        "a dtype": fm.from_numpyro(regression, X2.astype(np.float64), y2, prior_scale=2.0),
        "a static value": fm.from_numpyro(regression, X2, y2, prior_scale=3.0),
        "a structure": fm.from_numpyro(regression, X2, y=y2, prior_scale=2.0),
        "a model": fm.from_numpyro(normal_with_factor, y1),
    }
    for what, target in different.items():
        assert target.log_prob.program_key != first.log_prob.program_key, what
        assert target.log_prior.program_key != first.log_prior.program_key, what


def test_with_data_reuses_the_functions_and_refuses_a_new_program():
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    target = fm.from_numpyro(regression, X1, y=y1, link="exp")
    moved = target.with_data(X2, y=y2, link="exp")
    assert moved.log_prob.program_key == target.log_prob.program_key
    assert moved.log_prob.log_density is target.log_prob.log_density and moved.names == target.names
    assert moved.data[0][0] is X2 and target.data[0][0] is X1  # the target is unchanged
    x = jnp.array([0.2, -0.1, 0.3])
    np.testing.assert_allclose(
        moved.log_prob(x), fm.from_numpyro(regression, X2, y=y2, link="exp").log_prob(x), rtol=1e-6
    )
    assert moved.initial_position(jax.random.key(0), 3).shape == (3, 3)
    refused = [
        ((X2[:5],), {"y": y2[:5], "link": "exp"}, r"argument 0 is traced but has a new shape"),
        ((X2,), {"y": y2.astype(np.float64), "link": "exp"}, r"argument 'y' .* dtype float64"),
        ((X2,), {"y": y2, "link": "identity"}, r"argument 'link' is static .* 'identity'"),
        ((X2,), {"y": None, "link": "exp"}, r"argument 'y' has structure"),
        ((X2, y2), {"link": "exp"}, r"2 positional argument\(s\) given"),
        ((X2,), {"y": y2}, r"keyword arguments \['y'\] given"),
    ]
    for args, kwargs, match in refused:
        with pytest.raises(ValueError, match=match) as error:
            target.with_data(*args, **kwargs)
        assert "compiles a new program; call fm.from_numpyro again" in str(error.value)


def test_constrain_and_log_prior_use_the_data_they_are_given():
    """The deterministic mean X b follows the data passed to constrain; log_prior has no
    observation term and so no data dependence here, log_prob does."""
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    target = fm.from_numpyro(regression, X1, y1)
    other = target.with_data(X2, y2)
    flat = np.asarray(jax.random.normal(jax.random.key(1), (4, 5, 3)))
    mine, theirs = target.constrain(flat), target.constrain(flat, other.data)
    np.testing.assert_allclose(mine["mean"], flat[..., :2] @ X1.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(theirs["mean"], flat[..., :2] @ X2.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(other.constrain(flat)["mean"], theirs["mean"])
    np.testing.assert_allclose(mine["s"], np.exp(flat[..., 2]), rtol=1e-6)
    assert mine["mean"].shape == (4, 5, 12) and target.log_prob.constrain_one(flat[0, 0])
    x = jnp.asarray(flat[0, 0])
    prior = dist.Normal(0.0, 1.0).log_prob(x[:2]).sum() + dist.HalfNormal(1.0).log_prob(
        jnp.exp(x[2])
    )
    np.testing.assert_allclose(target.log_prior(x, other.data), prior + x[2], rtol=1e-5)
    np.testing.assert_allclose(target.log_prior(x), prior + x[2], rtol=1e-5)
    likelihood = dist.Normal(X2 @ x[:2], jnp.exp(x[2])).log_prob(y2).sum()
    np.testing.assert_allclose(
        target.log_prob(x, other.data) - target.log_prior(x, other.data), likelihood, rtol=1e-5
    )


def scaled_prior(y, scale):
    """The prior depends on an array argument: log_prior must read it from the data."""
    mu = numpyro.sample("mu", dist.Normal(0.0, scale))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_log_prior_depends_on_traced_data():
    y = np.array([0.5, 1.5], np.float32)
    target = fm.from_numpyro(scaled_prior, y, np.float32(1.0))
    wide = target.with_data(y, np.float32(4.0))
    x = jnp.array([0.7])
    np.testing.assert_allclose(wide.log_prior(x), dist.Normal(0.0, 4.0).log_prob(0.7), rtol=1e-6)
    np.testing.assert_allclose(
        target.log_prior(x, wide.data), dist.Normal(0.0, 4.0).log_prob(0.7), rtol=1e-6
    )
    np.testing.assert_allclose(target.log_prior(x), dist.Normal(0.0, 1.0).log_prob(0.7), rtol=1e-6)


def test_a_jitted_log_density_traces_once_for_two_datasets():
    (X1, y1), (X2, y2) = _dataset(0), _dataset(1)
    target = fm.from_numpyro(regression, X1, y1)
    other = fm.from_numpyro(regression, X2, y2)
    n_traces = 0

    def log_prob(x, data):
        nonlocal n_traces
        n_traces += 1
        return target.log_prob(x, data)

    jitted = jax.jit(log_prob)
    x = jnp.array([0.2, -0.1, 0.3])
    first, second = jitted(x, target.data), jitted(x, other.data)
    assert n_traces == 1
    np.testing.assert_allclose(first, target.log_prob(x), rtol=1e-6)
    np.testing.assert_allclose(second, other.log_prob(x), rtol=1e-6)
    assert float(first) != float(second)
    # jax.jit of the density itself: JAX shares its trace between equal densities, so the
    # data go in as an argument
    np.testing.assert_allclose(jax.jit(other.log_prob)(x, other.data), second, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(target.log_prob)(x, other.data), second, rtol=1e-6)


N_REGRESSION_CALLS = 0


def counted_regression(X, y=None):
    """`regression`, counting its Python calls (each trace of a program calls it)."""
    global N_REGRESSION_CALLS
    N_REGRESSION_CALLS += 1
    regression(X, y)


def test_runs_on_new_data_reuse_the_compiled_programs():
    """Sampler(target) runs on target.data; run(data=...) and a new Sampler on a target of
    new data (from_numpyro again) trace nothing: the model is not called, and the
    deterministic site is exported on the new data."""
    (X1, y1), (X2, y2), (X3, y3) = _dataset(0), _dataset(1), _dataset(2)
    target = fm.from_numpyro(counted_regression, X1, y1)
    settings = dict(TINY, n_local_steps=20, global_model=None)
    x0 = target.initial_position(jax.random.key(0), 4)
    fm.Sampler(target, n_chains=4, **settings).run(jax.random.key(1), x0)
    n_calls = N_REGRESSION_CALLS
    second = fm.Sampler(target, n_chains=4, **settings).run(
        jax.random.key(1), x0, data=target.with_data(X2, y2).data
    )
    assert N_REGRESSION_CALLS == n_calls
    third_target = fm.from_numpyro(counted_regression, X3, y3)
    n_calls = N_REGRESSION_CALLS
    third = fm.Sampler(third_target, n_chains=4, **settings).run(jax.random.key(1), x0)
    assert N_REGRESSION_CALLS == n_calls
    for result, X in ((second, X2), (third, X3)):
        b = np.asarray(result.samples["b"])
        np.testing.assert_allclose(result.samples["mean"], b @ X.T, rtol=1e-4, atol=1e-5)


def data_dependent_size(groups):
    """Needs a concrete value of its argument: the number of groups from the data."""
    n_groups = int(np.max(groups)) + 1
    effects = numpyro.sample("effects", dist.Normal(0.0, 1.0).expand([n_groups]).to_event(1))
    numpyro.sample("y", dist.Normal(effects[groups], 1.0), obs=jnp.zeros(len(groups)))


def test_a_model_that_needs_concrete_values_bakes_its_data_in_with_a_warning():
    groups = np.array([0, 1, 2, 1])
    with pytest.warns(UserWarning, match="baked into the compiled programs"):
        target = fm.from_numpyro(data_dependent_size, groups)
    assert target.n_dim == 3 and target.data == ((None,), {})
    x = jnp.array([0.1, -0.2, 0.3])
    expected = -_numpyro_potential_fn(data_dependent_size, groups)({"effects": x})
    np.testing.assert_allclose(target.log_prob(x), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="argument 0 is static"):
        target.with_data(np.array([0, 1, 2, 0]))
