"""Warm-started runs are exact even from a poor start: a model trained on another target."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from tests.helpers.mcse import mean_z_scores, variance_z_scores
from tests.helpers.targets import correlated_gaussian, two_mode_mixture

pytestmark = pytest.mark.statistical

SETTINGS = dict(
    local_kernel=fm.MALA(step_size=0.3),
    global_model=fm.RealNVP(n_layers=4, hidden_sizes=(32, 32)),
    n_local_steps=40,
    n_global_steps=20,
    n_epochs=5,
    batch_size=512,
    n_max_examples=4096,
    progress_bar=False,
)


def shifted_gaussian_result(n_dim):
    """A run on ``N(4, 0.5^2 I)``: its model and kernel are a poor start for the targets."""

    def log_prob(x):
        return -0.5 * jnp.sum(((x - 4.0) / 0.5) ** 2)

    sampler = fm.Sampler(log_prob, n_training_loops=4, n_production_loops=1, **SETTINGS)
    return sampler.run(
        jax.random.key(7), 4.0 + 0.5 * jax.random.normal(jax.random.key(8), (16, n_dim))
    )


def test_warm_started_production_from_a_wrong_model_is_exact_on_a_correlated_gaussian():
    poor = shifted_gaussian_result(5)
    target = correlated_gaussian(n_dim=5, seed=1)
    x0 = jax.random.uniform(jax.random.key(1), (16, 5), minval=-3.0, maxval=3.0)
    # one training loop only: production proposes from a model still far from the target
    sampler = fm.Sampler(target.log_prob, n_training_loops=1, n_production_loops=12, **SETTINGS)
    result = sampler.run(jax.random.key(2), x0, warm_start=poor)
    z_mean = mean_z_scores(result.flat_samples, target.mean, target.sd)
    z_var = variance_z_scores(result.flat_samples, target.mean, target.sd**2)
    assert np.max(np.abs(z_mean)) < 4, z_mean
    assert np.max(np.abs(z_var)) < 4, z_var


def test_warm_started_training_from_a_wrong_model_finds_the_mixture_weights():
    poor = shifted_gaussian_result(4)
    target = two_mode_mixture(n_dim=4)
    x0 = jax.random.uniform(jax.random.key(3), (16, 4), minval=-5.0, maxval=5.0)
    sampler = fm.Sampler(target.log_prob, n_training_loops=10, n_production_loops=10, **SETTINGS)
    result = sampler.run(jax.random.key(4), x0, warm_start=poor)
    weight = target.mode_weights(result.flat_samples)[0]
    assert abs(weight - 0.3) < 0.03, weight
    assert np.mean(result.global_acceptance) > 0.2
