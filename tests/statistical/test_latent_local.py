"""The local kernel run through a flow (``local_in_latent_space``) samples the target exactly.

The phase is tested directly with a fixed, far-from-identity RealNVP ``T`` (random
conditioner weights, so its Jacobian varies by a factor of several). The target is that
flow's own density ``q``: non-Gaussian, with moments known to high precision from 400,000
exact draws, and seen through ``T`` it is exactly ``N(0, I)``, so a correct latent kernel
mixes fast. z-scores of the means and variances must be small; with the flow's
log-determinant dropped from the latent density (a plausible bug) the kernel samples
``q(T(z))`` instead and the same test fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.phases import GlobalState, run_latent_local_phase
from tests.conftest import TINY
from tests.helpers.mcse import mean_z_scores, variance_z_scores
from tests.unit.models.test_flows import perturb

pytestmark = pytest.mark.statistical

MEAN = np.array([1.0, -2.0])
COV = np.array([[4.0, 2.7], [2.7, 2.0]])
PRECISION = np.linalg.inv(COV)
SIGMA = 1.5
"""Scale of the random conditioner weights: the flow's Jacobian varies by a factor of several."""


def correlated_gaussian(x):
    d = x - MEAN
    return -0.5 * d @ PRECISION @ d


class _NoLogDet:
    """A flow whose forward map forgets its log-determinant (the bug the test must catch)."""

    def __init__(self, flow):
        self._flow = flow

    def forward_and_log_det(self, params, z):
        x, log_det = self._flow.forward_and_log_det(params, z)
        return x, jnp.zeros_like(log_det)

    def inverse_and_log_det(self, params, x):
        return self._flow.inverse_and_log_det(params, x)


def _random_flow(seed=0):
    flow = fm.RealNVP(n_layers=4, hidden_sizes=(16,))
    key_init, key_noise, key_data = jax.random.split(jax.random.key(seed), 3)
    data = jax.random.multivariate_normal(key_data, MEAN, COV, (4096,))
    params = flow.prepare(flow.init(key_init, 2), data)
    return flow, perturb(params, key_noise, sigma=SIGMA)


def _reference_moments(flow, params, n=400_000):
    draws, _ = jax.jit(jax.vmap(lambda k: flow.sample_and_log_prob(params, k)))(
        jax.random.split(jax.random.key(123), n)
    )
    draws = np.asarray(draws, dtype=np.float64)
    mean, var = draws.mean(0), draws.var(0)
    kurtosis = ((draws - mean) ** 4).mean(0) / var**2
    return mean, var, kurtosis


def _latent_draws(model, flow, params, n_chains=64, n_warmup=2, n_loops=4, n_steps=200):
    def log_prob(x):
        return flow.log_prob(params, x)

    kernel = fm.MALA(step_size=0.5)
    adaptation = kernel.adaptation()
    kernel_params = kernel.init_params(2)

    @jax.jit
    def phase(key, current, adapt_state, frozen_params, is_adapting):
        return run_latent_local_phase(
            kernel,
            adaptation,
            model,
            params,
            log_prob,
            n_steps,
            key,
            current,
            adapt_state,
            frozen_params,
            is_adapting,
            n_warmup,
        )

    start, _ = jax.vmap(lambda k: flow.sample_and_log_prob(params, k))(
        jax.random.split(jax.random.key(1), n_chains)
    )
    current = GlobalState(start, jax.vmap(log_prob)(start))
    adapt_state = adaptation.init(kernel_params, current.position)
    draws = []
    for i, key in enumerate(jax.random.split(jax.random.key(2), n_warmup + n_loops)):
        is_adapting = i < n_warmup
        if i == n_warmup:
            kernel_params = adaptation.final(adapt_state)
        current, adapt_state, trace = phase(
            key, current, adapt_state, kernel_params, jnp.asarray(is_adapting)
        )
        np.testing.assert_allclose(
            trace.log_prob, jax.vmap(jax.vmap(log_prob))(trace.position), atol=2e-3
        )
        if not is_adapting:
            draws.append(np.asarray(trace.position))
    return np.concatenate(draws, axis=1)


def _z_scores(draws, reference):
    mean, var, kurtosis = reference
    return np.concatenate(
        [
            mean_z_scores(draws, mean, np.sqrt(var)),
            variance_z_scores(draws, mean, var, kurtosis=float(np.max(kurtosis))),
        ]
    )


@pytest.fixture(scope="module")
def random_flow():
    flow, params = _random_flow()
    return flow, params, _reference_moments(flow, params)


def test_latent_local_phase_is_exact(random_flow):
    flow, params, reference = random_flow
    z = _z_scores(_latent_draws(flow, flow, params), reference)
    assert np.all(np.abs(z) < 4.0), z


def test_dropping_the_flow_log_det_is_caught(random_flow):
    flow, params, reference = random_flow
    z = _z_scores(_latent_draws(_NoLogDet(flow), flow, params), reference)
    assert np.max(np.abs(z)) > 8.0, z


def test_sampler_in_latent_space_runs_and_records_target_log_prob():
    config = {**TINY, "local_in_latent_space": True}
    result = fm.Sampler(correlated_gaussian, n_dim=2, n_chains=4, **config).run(
        jax.random.key(0), jnp.zeros((4, 2))
    )
    expected = jax.vmap(jax.vmap(correlated_gaussian))(jnp.asarray(result.samples))
    np.testing.assert_allclose(result.log_prob, expected, atol=2e-3)
    assert np.isfinite(result.samples).all()


@pytest.mark.parametrize(
    "overrides",
    [
        {"global_model": None},
        {"n_global_steps": 0},
        {"local_kernel": fm.SiteFlip(2), "global_model": fm.Autoregressive(2)},
    ],
    ids=["no-model", "no-global-steps", "discrete"],
)
def test_latent_space_needs_a_flow(overrides):
    with pytest.raises(ValueError, match="local_in_latent_space"):
        fm.Sampler(
            correlated_gaussian, n_dim=2, local_in_latent_space=True, **{**TINY, **overrides}
        )


def test_latent_space_flag_must_be_bool():
    with pytest.raises(TypeError, match="local_in_latent_space must be a bool"):
        fm.Sampler(correlated_gaussian, n_dim=2, local_in_latent_space=1)
