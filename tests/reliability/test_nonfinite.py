"""Non-finite targets: -inf outside a support, NaN in a region, NaN gradients.

No chain may ever hold a non-finite state, every such proposal is rejected and counted in
``result.history``, and the draws still follow the target exactly (z-tests against exact
moments).
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import flowmc_like as fm
from tests.helpers.mcse import mean_z_scores, variance_z_scores

pytestmark = pytest.mark.statistical

N_CHAINS = 16
SCHEDULE = dict(
    n_chains=N_CHAINS,
    n_training_loops=8,
    n_production_loops=12,
    n_local_steps=40,
    n_global_steps=40,
    n_epochs=3,
    batch_size=512,
    n_max_examples=2048,
    progress_bar=False,
)


def positive_orthant_gaussian(x: jax.Array) -> jax.Array:
    """A standard normal restricted to x > 0 in every coordinate (-inf outside)."""
    return jnp.where(jnp.all(x > 0), -0.5 * jnp.sum(x**2), -jnp.inf)


TRUNCATION = 1.0


def nan_above_truncation(x: jax.Array) -> jax.Array:
    """A standard normal whose log density is NaN where x[0] > TRUNCATION."""
    return jnp.where(x[0] > TRUNCATION, jnp.nan, -0.5 * jnp.sum(x**2))


@jax.custom_jvp
def nan_gradient_gaussian(x: jax.Array) -> jax.Array:
    """A standard normal (finite everywhere) whose gradient is NaN where x[0] > 1."""
    return -0.5 * jnp.sum(x**2)


@nan_gradient_gaussian.defjvp
def _nan_gradient_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    gradient = jnp.where(x[0] > 1.0, jnp.nan, -x)
    return nan_gradient_gaussian(x), jnp.dot(gradient, dx)


def _truncated_normal_moments(upper: float) -> tuple[float, float]:
    """Mean and variance of N(0, 1) restricted to x < upper."""
    distribution = stats.truncnorm(-np.inf, upper)
    return float(distribution.mean()), float(distribution.var())


def _run(log_prob, x0, local_kernel, seed=0, **overrides):
    sampler = fm.Sampler(log_prob, n_dim=2, local_kernel=local_kernel, **{**SCHEDULE, **overrides})
    return sampler.run(jax.random.key(seed), x0)


def _assert_all_finite(result: fm.SamplerResult) -> None:
    for name in ("flat_samples", "log_prob", "flat_warmup_samples", "warmup_log_prob"):
        assert np.isfinite(getattr(result, name)).all(), name


@pytest.mark.parametrize("kernel", [fm.MALA()], ids=str)
def test_minus_inf_outside_the_support(kernel):
    """A target that is -inf outside x > 0: all draws stay inside, moments are exact.

    (HMC's and the random walk's rejection of such proposals is in the kernel conformance
    tests; HMC meets NaN below.)
    """
    result = _run(positive_orthant_gaussian, jnp.full((N_CHAINS, 2), 0.5), kernel)
    _assert_all_finite(result)
    assert (result.flat_samples > 0).all() and (result.flat_warmup_samples > 0).all()
    history = result.history
    assert history.local_nonfinite.sum() > 0 and history.global_nonfinite.sum() > 0
    assert history.n_nonfinite_rejected == history.local_nonfinite.sum() + (
        history.global_nonfinite.sum()
    )
    mean, var = math.sqrt(2 / math.pi), 1 - 2 / math.pi
    draws = result.flat_samples
    z_mean = mean_z_scores(draws, np.full(2, mean), np.full(2, math.sqrt(var)))
    half_normal_kurtosis = 3.8691  # E[(x - mu)^4] / var^2 of the half-normal
    z_var = variance_z_scores(draws, np.full(2, mean), np.full(2, var), half_normal_kurtosis)
    assert np.max(np.abs(z_mean)) < 4.5, z_mean
    assert np.max(np.abs(z_var)) < 4.5, z_var


def test_nan_in_a_region_is_a_rejection():
    """NaN where x[0] > 1 acts as zero density: draws match the truncated normal."""
    result = _run(nan_above_truncation, jnp.zeros((N_CHAINS, 2)), fm.MALA())
    _assert_all_finite(result)
    assert (result.flat_samples[..., 0] <= TRUNCATION).all()
    assert result.history.local_nonfinite.sum() > 0
    assert result.history.global_nonfinite.sum() > 0
    mean0, var0 = _truncated_normal_moments(TRUNCATION)
    mean, sd = np.array([mean0, 0.0]), np.sqrt([var0, 1.0])
    z = mean_z_scores(result.flat_samples, mean, sd)
    assert np.max(np.abs(z)) < 4.5, z


@pytest.mark.parametrize("kernel", [fm.MALA(), fm.HMC(n_leapfrog=5)], ids=str)
def test_nan_gradient_is_a_rejection_and_the_target_is_still_exact(kernel):
    """Gradient-based kernels never move from or into NaN-gradient states; globals still do."""
    result = _run(nan_gradient_gaussian, jnp.zeros((N_CHAINS, 2)), kernel)
    _assert_all_finite(result)
    assert result.history.local_nonfinite.sum() > 0
    assert result.history.global_nonfinite.sum() == 0  # the target itself is finite
    # The NaN-gradient region holds mass 1 - Phi(1) = 0.16; the global moves reach it.
    assert np.mean(result.flat_samples[..., 0] > 1.0) > 0.05
    z_mean = mean_z_scores(result.flat_samples, np.zeros(2), np.ones(2))
    z_var = variance_z_scores(result.flat_samples, np.zeros(2), np.ones(2))
    assert np.max(np.abs(z_mean)) < 4.5, z_mean
    assert np.max(np.abs(z_var)) < 4.5, z_var


def test_local_only_counts_nonfinite_proposals():
    """Without a model the local count is still recorded and the global one is zero."""
    result = _run(
        positive_orthant_gaussian, jnp.full((N_CHAINS, 2), 0.5), fm.MALA(), global_model=None
    )
    _assert_all_finite(result)
    assert result.history.local_nonfinite.sum() > 0
    assert (result.history.global_nonfinite == 0).all()


def test_chains_starting_at_nonfinite_points_are_named():
    """Every chain at a -inf start: the error lists the chains and their log densities."""
    # The same programs as test_minus_inf_outside_the_support (compiled once per session).
    sampler = fm.Sampler(positive_orthant_gaussian, n_dim=2, local_kernel=fm.MALA(), **SCHEDULE)
    with pytest.raises(ValueError, match=r"chains \[0, 1, 2, .*, 15\] have log_prob \[-inf"):
        sampler.run(jax.random.key(0), -jnp.ones((N_CHAINS, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match=r"chains \[1, 3, 5"):
            sampler.run(jax.random.key(0), jnp.ones((N_CHAINS, 2)).at[1::2].set(-1.0))
