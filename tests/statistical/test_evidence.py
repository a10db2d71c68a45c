"""The evidence and the approximation against exact answers.

``log Z`` is checked by its z-score against the estimator's own standard error, ``(log_z -
exact) / standard_error``, on targets whose normalising constant is known: a 2-D Gaussian
mixture scaled by a known factor (here), the 10-D mixture (`test_continuous`), Ising 4x4 by
enumeration (`test_discrete`), and a conjugate numpyro model in closed form (here). A
proposal density off by its standardisation's log-determinant is caught.
"""

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import gammaln

import flowmc_like as fm
from flowmc_like.models.real_nvp import RealNVP
from flowmc_like.models.standardize import unstandardize

pytestmark = pytest.mark.statistical

Z_BOUND = 4.0
LOG_Z = 2.3  # the mixture below is a normalised density times exp(LOG_Z)
SCHEDULE = dict(
    n_chains=16,
    n_training_loops=8,
    n_production_loops=4,
    n_local_steps=20,
    n_global_steps=20,
    progress_bar=False,
)


def mixture_2d(x):
    """``0.3 N((-2, 0), diag(0.25, 1)) + 0.7 N((2, 1), diag(0.25, 1))`` times ``exp(LOG_Z)``."""
    centres = jnp.array([[-2.0, 0.0], [2.0, 1.0]])
    scales = jnp.array([0.5, 1.0])
    log_components = -0.5 * jnp.sum(((x - centres) / scales) ** 2, axis=-1)
    log_components = log_components - jnp.log(2 * jnp.pi * 0.5)
    return jax.nn.logsumexp(log_components + jnp.log(jnp.array([0.3, 0.7]))) + LOG_Z


@pytest.fixture(scope="module")
def mixture_result():
    sampler = fm.Sampler(mixture_2d, n_dim=2, global_model=RealNVP(), **SCHEDULE)
    start = 2.0 * jax.random.normal(jax.random.key(1), (SCHEDULE["n_chains"], 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # short run: low ESS is expected
        return sampler.run(jax.random.key(0), start)


@pytest.mark.parametrize("method", ["importance", "bridge"])
def test_log_z_of_a_scaled_mixture(mixture_result, method):
    estimate = mixture_result.log_evidence(jax.random.key(2), method=method)
    z = (estimate.log_z - LOG_Z) / estimate.standard_error
    assert abs(z) < Z_BOUND, (estimate, z)
    assert estimate.is_reliable and estimate.pareto_k < estimate.k_threshold
    assert estimate.standard_error < 0.02
    assert estimate.n_evaluations == estimate.n_samples == 10_000


class MissingLogDetRealNVP(RealNVP):
    """A subtly wrong flow: its push-forward forgets the standardisation's log-determinant."""

    def forward_and_log_det(self, params, z):
        x, log_det = super().forward_and_log_det(params, z)
        return x, log_det - unstandardize(params.frozen, z)[1]

    def inverse_and_log_det(self, params, x):
        z, log_det = super().inverse_and_log_det(params, x)
        return z, log_det + unstandardize(params.frozen, z)[1]


def test_z_test_catches_a_proposal_density_without_its_log_determinant(mixture_result):
    model = mixture_result.global_model
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.init}
    broken = dataclasses.replace(mixture_result, global_model=MissingLogDetRealNVP(**fields))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.EvidenceWarning)
        estimate = broken.log_evidence(jax.random.key(2))
    assert abs(estimate.log_z - LOG_Z) / estimate.standard_error > 10 * Z_BOUND


def test_a_flow_that_misses_the_mass_is_flagged(mixture_result):
    """The trained flow against the mixture moved 6 units away: Pareto k flags it."""

    def moved(x):
        return mixture_2d(x - jnp.array([6.0, 0.0]))

    with pytest.warns(fm.EvidenceWarning, match="Pareto k"):
        estimate = mixture_result.log_evidence(jax.random.key(2), log_prob=moved)
    assert not estimate.is_reliable and estimate.pareto_k > estimate.k_threshold


def test_the_approximation_is_the_run_s_normalised_model(mixture_result, tmp_path):
    approximation = mixture_result.approximation()
    grid = np.linspace(-12.0, 12.0, 241)
    x0, x1 = np.meshgrid(grid, grid)
    points = jnp.asarray(np.stack([x0.ravel(), x1.ravel()], axis=-1), jnp.float32)
    log_q = approximation.log_prob(points)
    assert float(jnp.sum(jnp.exp(log_q))) * (grid[1] - grid[0]) ** 2 == pytest.approx(1, abs=1e-3)
    model, params = mixture_result.global_model, mixture_result.model_params
    direct = jax.vmap(model.log_prob, in_axes=(None, 0))(params, points[:100])
    np.testing.assert_allclose(log_q[:100], direct, rtol=1e-5, atol=1e-5)
    draws, log_q_draws = approximation.sample_and_log_prob(jax.random.key(3), 500)
    assert draws.shape == (500, 2)
    np.testing.assert_allclose(approximation.log_prob(draws), log_q_draws, atol=1e-4)
    # the draws follow the run's target: the weight of the right-hand mode
    assert abs(float(jnp.mean(draws[:, 0] > 0)) - 0.7) < 0.06
    loaded = fm.load_approximation(approximation.save(tmp_path / "approximation"))
    np.testing.assert_allclose(loaded.log_prob(draws), log_q_draws, atol=1e-4)


# --- a conjugate numpyro model: mu | s2 ~ N(m0, s2 / k0), s2 ~ InvGamma(a0, b0) ---------------

M0, K0, A0, B0 = 1.0, 2.0, 3.0, 2.0


def normal_inverse_gamma(y):
    numpyro = pytest.importorskip("numpyro")
    dist = numpyro.distributions
    variance = numpyro.sample("variance", dist.InverseGamma(A0, B0))
    mu = numpyro.sample("mu", dist.Normal(M0, jnp.sqrt(variance / K0)))
    numpyro.sample("y", dist.Normal(mu, jnp.sqrt(variance)), obs=y)


def normal_inverse_gamma_log_z(y):
    """The closed-form marginal likelihood of `normal_inverse_gamma`."""
    n, mean = y.size, float(np.mean(y))
    k_n, a_n = K0 + n, A0 + n / 2
    b_n = B0 + 0.5 * float(np.sum((y - mean) ** 2)) + K0 * n * (mean - M0) ** 2 / (2 * k_n)
    return (
        -n / 2 * math.log(2 * math.pi)
        + 0.5 * math.log(K0 / k_n)
        + A0 * math.log(B0)
        - a_n * math.log(b_n)
        + gammaln(a_n)
        - gammaln(A0)
    )


def test_numpyro_conjugate_model_evidence_and_constrained_density(tmp_path):
    pytest.importorskip("numpyro")
    y = np.random.default_rng(0).normal(0.5, 1.3, 20)
    target = fm.from_numpyro(normal_inverse_gamma, y)
    sampler = fm.Sampler(target, **SCHEDULE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sampler.run(jax.random.key(0), target.initial_position(jax.random.key(1), 16))
    exact = normal_inverse_gamma_log_z(y)
    for method in ("importance", "bridge"):
        estimate = result.log_evidence(jax.random.key(2), method=method)
        assert abs(estimate.log_z - exact) / estimate.standard_error < Z_BOUND, (estimate, exact)
        assert estimate.is_reliable
    # the density of constrained values: q(log variance, mu) - log variance (Jacobian)
    approximation = result.approximation()
    values, log_q = approximation.sample_and_log_prob(jax.random.key(3), 200)
    assert set(values) == {"mu", "variance"} and np.all(values["variance"] > 0)
    flat = jnp.stack([values["mu"], jnp.log(values["variance"])], axis=-1)
    expected = approximation.log_prob_unconstrained(flat) - jnp.log(values["variance"])
    np.testing.assert_allclose(approximation.log_prob(values), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(log_q, expected, rtol=1e-4, atol=1e-4)
    loaded = fm.load_approximation(result.save(tmp_path / "run"), target=target)
    np.testing.assert_allclose(loaded.log_prob(values), expected, rtol=1e-4, atol=1e-4)


def test_bad_requests_get_clear_errors(mixture_result, tmp_path):
    with pytest.raises(ValueError, match="method must be"):
        mixture_result.log_evidence(method="nested")
    with pytest.raises(ValueError, match="n_samples must be"):
        mixture_result.log_evidence(n_samples=10)
    no_model = dataclasses.replace(mixture_result, global_model=None, model_params=None)
    with pytest.raises(ValueError, match="no trained global model"):
        no_model.log_evidence()
    with pytest.raises(ValueError, match="no trained global model"):
        no_model.approximation()
    loaded = fm.load_result(mixture_result.save(tmp_path / "run"))
    with pytest.raises(ValueError, match="pass log_prob="):
        loaded.log_evidence()
    again = loaded.log_evidence(jax.random.key(2), log_prob=mixture_2d)
    assert again == dataclasses.replace(
        mixture_result.log_evidence(jax.random.key(2)), seconds=again.seconds
    )
    with pytest.raises(ValueError, match="not a saved flowmc_like approximation"):
        fm.load_approximation(tmp_path)
    with pytest.raises(ValueError, match="expected \\(\\.\\.\\., 2\\)"):
        mixture_result.approximation().log_prob_unconstrained(jnp.zeros((3, 5)))
