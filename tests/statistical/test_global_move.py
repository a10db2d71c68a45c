"""Independence Metropolis-Hastings is exact: an analytic proposal on a Gaussian target."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.phases import GlobalState, run_global_phase
from tests.helpers.mcse import mean_z_scores, variance_z_scores
from tests.statistical.stub_models import MissingDensityModel, NaNRegionGaussian, StudentTModel

pytestmark = pytest.mark.statistical

MEAN = np.array([1.0, -2.0, 0.5])
SD = np.array([1.0, 0.5, 2.0])


def log_prob(x):
    return -0.5 * jnp.sum(((x - MEAN) / SD) ** 2)


def _run_imh(model, seed=0, n_chains=64, n_steps=1500):
    key_start, key_run = jax.random.split(jax.random.key(seed))
    start = jnp.asarray(MEAN) + jnp.asarray(SD) * jax.random.normal(key_start, (n_chains, 3))
    current = GlobalState(start, jax.vmap(log_prob)(start))
    params = model.init(jax.random.key(0), 3)
    run = jax.jit(lambda k, c: run_global_phase(model, log_prob, n_steps, 512, k, c, params))
    _, trace, _ = run(key_run, current)
    return np.asarray(trace.position), np.asarray(trace.acceptance_prob)


# A proposal that is off-centre and too wide: q varies across the target, so a ratio that
# forgets q is visibly biased.
LOC = tuple(MEAN + SD)
SCALE = tuple(1.5 * SD)


@pytest.mark.parametrize("seed", [0, 1])
def test_imh_with_student_t_proposal_is_exact(seed):
    draws, acceptance = _run_imh(StudentTModel(loc=LOC, scale=SCALE), seed=seed)
    assert 0.2 < acceptance.mean() < 0.9
    z_mean = mean_z_scores(draws, MEAN, SD)
    z_var = variance_z_scores(draws, MEAN, SD**2)
    assert np.max(np.abs(z_mean)) < 4, z_mean
    assert np.max(np.abs(z_var)) < 4, z_var


def test_imh_test_catches_a_ratio_without_proposal_densities():
    draws, _ = _run_imh(MissingDensityModel(loc=LOC, scale=SCALE))
    z_mean = mean_z_scores(draws, MEAN, SD)
    assert np.max(np.abs(z_mean)) > 8, z_mean


def test_failed_training_keeps_the_last_good_model_and_says_so():
    x0 = jnp.asarray(MEAN) + jnp.zeros((16, 3))
    sampler = fm.Sampler(
        log_prob,
        global_model=NaNRegionGaussian(),
        n_training_loops=4,
        n_production_loops=10,
        n_local_steps=30,
        n_global_steps=30,
        n_epochs=2,
        batch_size=256,
        n_max_examples=512,
        progress_bar=False,
    )
    with pytest.warns(RuntimeWarning, match="4 of 4 training loops .* last good model kept"):
        result = sampler.run(jax.random.key(0), x0)
    assert result.history.global_nonfinite.sum() > 0  # proposals where the model is NaN
    assert result.history.training_discarded[:4].all()
    assert result.history.n_training_discarded == 4
    fresh = NaNRegionGaussian().init(jax.random.key(0), 3).trainable
    np.testing.assert_array_equal(result.model_params.trainable["loc"], fresh["loc"])
    assert np.isfinite(result.flat_samples).all()
    # The chains are still a valid sampler of the target.
    z = mean_z_scores(result.flat_samples, MEAN, SD)
    assert np.max(np.abs(z)) < 4, z
