"""The defaults, with nothing set, on a funnel and an ill-conditioned Gaussian: exact moments.

These are the shapes whose defaults used to be wrong (a step size that fits the funnel's
mouth never enters its neck; an axis-aligned flow and local step on a rotated Gaussian with
condition number 1e4). With no setting the run must choose its own preconditioning (a
whitened flow, local moves in the flow's latent space once it has trained), and be right
within Monte Carlo error: z-scores of the means against the MCSE with ArviZ's bulk ESS.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from tests.helpers.mcse import mean_z_scores, variance_z_scores

pytestmark = [pytest.mark.statistical, pytest.mark.slow]

N_CHAINS = 32
FUNNEL_DIM = 10
EULER_GAMMA = 0.5772156649015329
LOG_ABS_NORMAL_MEAN = -(EULER_GAMMA + math.log(2.0)) / 2.0  # E log|z|, z ~ N(0, 1)
LOG_ABS_NORMAL_VAR = math.pi**2 / 8.0  # Var log|z|


def funnel(x):
    """Neal's funnel: v ~ N(0, 9), x_i | v ~ N(0, e^v), i = 1..9."""
    v, rest = x[0], x[1:]
    return -(v**2) / 18.0 - 0.5 * jnp.exp(-v) * jnp.sum(rest**2) - 0.5 * rest.shape[0] * v


def ill_conditioned_gaussian(d: int = 10, seed: int = 3):
    """``N(m, Q diag(logspace(-2, 2, d)) Q^T)`` (condition number 1e4), and its moments."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    mean = rng.normal(size=d)
    variances = np.logspace(-2, 2, d)
    covariance = (q * variances) @ q.T
    precision = jnp.asarray((q / variances) @ q.T, jnp.float32)
    loc = jnp.asarray(mean, jnp.float32)

    def log_prob(x):
        y = x - loc
        return -0.5 * y @ precision @ y

    return log_prob, mean, covariance


def run_defaults(log_prob, n_dim, seed):
    start = jax.random.uniform(jax.random.key(seed + 100), (N_CHAINS, n_dim), minval=-5, maxval=5)
    sampler = fm.Sampler(log_prob, n_dim=n_dim, n_chains=N_CHAINS, progress_bar=False)
    return sampler.run(jax.random.key(seed), start)


def test_the_defaults_sample_a_funnel_neck_and_mouth():
    result = run_defaults(funnel, FUNNEL_DIM, seed=0)
    draws = np.asarray(result.samples, np.float64)
    # (v, log|x_i|): the funnel's scales, light-tailed where x_i has kurtosis 3 e^9
    scales = np.concatenate([draws[..., :1], np.log(np.abs(draws[..., 1:]))], axis=-1)
    true_mean = np.full(FUNNEL_DIM, LOG_ABS_NORMAL_MEAN)
    true_mean[0] = 0.0
    true_sd = np.full(FUNNEL_DIM, math.sqrt(9.0 / 4.0 + LOG_ABS_NORMAL_VAR))
    true_sd[0] = 3.0
    z = mean_z_scores(scales, true_mean, true_sd)
    assert np.all(np.abs(z) < 4), z
    sd = scales.reshape(-1, FUNNEL_DIM).std(axis=0)
    assert np.all(np.abs(sd / true_sd - 1.0) < 0.15), sd / true_sd
    assert result.history.in_latent_space[~result.history.is_training].all()
    assert result.diagnostics.is_trusted, result.diagnostics.warnings


def test_the_defaults_sample_an_ill_conditioned_gaussian():
    log_prob, mean, covariance = ill_conditioned_gaussian()
    result = run_defaults(log_prob, mean.size, seed=1)
    draws = np.asarray(result.samples, np.float64)
    variances = np.diag(covariance)
    assert np.all(np.abs(mean_z_scores(draws, mean, np.sqrt(variances))) < 4)
    assert np.all(np.abs(variance_z_scores(draws, mean, variances)) < 4)
    # whitened by the flow, the proposals are nearly independent draws of the target
    assert result.diagnostics.global_acceptance > 0.5
    assert result.diagnostics.is_trusted, result.diagnostics.warnings
