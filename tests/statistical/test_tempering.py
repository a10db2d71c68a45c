"""Replica-exchange tempering finds modes no chain starts in, with the exact weights.

Every chain starts in one mode; the tests check the weights of the others against their
exact values (|z| < 4 with the ESS of the mode indicator from ArviZ, or the issue's absolute
bounds), and that the same run without tempering fails, so the test can tell the two apart.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.exporters.arviz import ess_bulk

GAUSS4_WEIGHTS = np.array([0.4, 0.3, 0.2, 0.1])
GAUSS4_CENTRES = 10 / np.sqrt(2) * np.eye(4, 8)  # pairwise 10 apart, in 8-D
TWO_MODE_CENTRES = np.array([[-4.0, 0.0], [4.0, 0.0]])
TWO_MODE_WEIGHTS = np.array([0.3, 0.7])


def mixture_log_prob(x: jax.Array, centres: np.ndarray, weights: np.ndarray) -> jax.Array:
    """Unit-covariance Gaussian mixture."""
    squared = jnp.sum((x - jnp.asarray(centres, x.dtype)) ** 2, axis=1)
    return jax.scipy.special.logsumexp(-0.5 * squared + jnp.log(jnp.asarray(weights, x.dtype)))


def mode_of(draws: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every draw ``(..., n_dim)``."""
    return np.argmin(((draws[..., None, :] - centres) ** 2).sum(-1), axis=-1)


def weight_z_scores(samples: np.ndarray, centres: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """z-score of each mode's weight, from the ESS of its indicator."""
    labels = mode_of(np.asarray(samples, np.float64), centres)
    indicators = np.stack([labels == k for k in range(len(weights))], -1).astype(float)
    ess = ess_bulk(indicators)
    estimate = indicators.mean(axis=(0, 1))
    se = np.sqrt(weights * (1 - weights) / ess)
    return (estimate - weights) / se


def start_in(centre: np.ndarray, n_chains: int, seed: int = 1) -> jax.Array:
    jitter = 0.1 * jax.random.normal(jax.random.key(seed), (n_chains, centre.shape[0]))
    return jnp.asarray(centre) + jitter


@functools.cache
def gauss4_result(n_temperatures: int) -> fm.SamplerResult:
    """The 4-mode 8-D mixture from the 0.1 mode, with the sampler's defaults otherwise."""
    sampler = fm.Sampler(
        functools.partial(mixture_log_prob, centres=GAUSS4_CENTRES, weights=GAUSS4_WEIGHTS),
        n_dim=8,
        n_chains=32,
        n_temperatures=n_temperatures,
        progress_bar=False,
    )
    return sampler.run(jax.random.key(0), start_in(GAUSS4_CENTRES[3], 32))


@pytest.mark.slow
def test_tempering_finds_modes_no_chain_starts_in() -> None:
    result = gauss4_result(8)
    labels = mode_of(np.asarray(result.samples), GAUSS4_CENTRES)
    weights = np.bincount(labels.ravel(), minlength=4) / labels.size
    np.testing.assert_allclose(weights, GAUSS4_WEIGHTS, atol=0.03)
    assert np.all(np.abs(weight_z_scores(result.samples, GAUSS4_CENTRES, GAUSS4_WEIGHTS)) < 4)
    history = result.history
    assert history.round_trips[~history.is_training].sum() > 0


@pytest.mark.slow
def test_without_tempering_the_start_mode_keeps_every_draw() -> None:
    """The failure the tempering test guards against: the same run with one temperature."""
    labels = mode_of(np.asarray(gauss4_result(1).samples), GAUSS4_CENTRES)
    assert np.mean(labels == 3) > 0.9


@pytest.mark.slow
@pytest.mark.parametrize(
    "kernel", [fm.MALA(), fm.HMC(), fm.RandomWalk()], ids=["mala", "hmc", "random_walk"]
)
def test_every_continuous_kernel_tempers_exactly(kernel: fm.AbstractLocalKernel) -> None:
    """Local moves and exchanges only (no model): the weights of two modes 8 apart."""
    sampler = fm.Sampler(
        functools.partial(mixture_log_prob, centres=TWO_MODE_CENTRES, weights=TWO_MODE_WEIGHTS),
        n_dim=2,
        n_chains=16,
        local_kernel=kernel,
        global_model=None,
        n_temperatures=6,
        n_training_loops=10,
        n_production_loops=30,
        progress_bar=False,
    )
    result = sampler.run(jax.random.key(2), start_in(TWO_MODE_CENTRES[0], 16))
    z = weight_z_scores(result.samples, TWO_MODE_CENTRES, TWO_MODE_WEIGHTS)
    assert np.all(np.abs(z) < 4), z


@pytest.mark.slow
def test_ising_below_tc_balances_the_sign_of_the_magnetization() -> None:
    """Ising 8x8 at T = 2 from all-up starts: SiteFlip and exchanges only, no global model.

    Below T_c single-site sweeps keep the sign of m for thousands of sweeps; the hot
    replicas (above T_c) flip it, so P(m > 0) = 1/2 by symmetry.
    """
    ising = fm.make_ising(8, 0.5)
    sampler = fm.Sampler(
        ising.log_prob,
        n_dim=64,
        n_chains=16,
        local_kernel=fm.SiteFlip(delta_log_prob=ising.delta_log_prob),
        global_model=None,
        n_temperatures=8,
        n_training_loops=10,
        n_production_loops=20,
        progress_bar=False,
    )
    result = sampler.run(jax.random.key(0), jnp.ones((16, 64), jnp.int32))
    magnetization = (2 * np.asarray(result.samples) - 1).mean(-1)
    positive = (magnetization > 0).astype(float)[..., None]
    ess = float(ess_bulk(positive)[0])
    z = (positive.mean() - 0.5) / np.sqrt(0.25 / ess)
    assert ess > 100
    assert abs(z) < 4, (positive.mean(), ess)
    # the magnetization's size stays that of the ordered phase (exact: <|m|> = 0.911 at L=8)
    assert 0.85 < np.abs(magnetization).mean() < 0.95
