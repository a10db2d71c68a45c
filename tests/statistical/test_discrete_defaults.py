"""The default discrete sampler on a spin glass against exact enumeration.

`SiteFlip` + `Autoregressive` with the library's defaults (variational pre-training, the
symmetry found in the target, the discrete loop split) on an SK instance (N = 12, beta = 2,
below the spin-glass transition), enumerated exactly by `flowmc_like.testing.exact_pairwise`:
the energy and the overlap ``q^2`` of chains paired (0, 1), (2, 3), ... against their exact
means, as z-scores against the Monte Carlo standard error (exact sd over the square root of
ArviZ's bulk ESS).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.testing import exact_pairwise, overlap, sherrington_kirkpatrick
from tests.helpers.mcse import mean_z_scores

pytestmark = pytest.mark.statistical

Z_BOUND = 4.0
N_CHAINS = 32


def test_default_discrete_sampler_matches_an_exact_spin_glass():
    target = sherrington_kirkpatrick(12, beta=2.0, seed=1)
    exact = exact_pairwise(target)
    sampler = fm.Sampler(
        target.log_prob,
        n_chains=N_CHAINS,
        local_kernel=fm.SiteFlip(2, delta_log_prob=target.delta_log_prob),
        global_model=fm.Autoregressive(2, hidden_sizes=(32,)),
        n_training_loops=10,
        n_production_loops=20,
        progress_bar=False,
    )
    starts = np.random.default_rng(0).integers(0, 2, (N_CHAINS, target.n_dim))
    result = sampler.run(jax.random.key(0), jnp.asarray(starts, jnp.int32))
    assert result.global_model.symmetric is True  # SK without fields is flip-invariant
    assert result.diagnostics.choices[1].startswith("variational pre-training")
    samples = np.asarray(result.samples)
    energy = np.asarray(target.energy(samples), np.float64)[..., None]
    q2 = overlap(samples[0::2], samples[1::2])[..., None] ** 2
    z_energy = mean_z_scores(energy, np.array([exact.mean_energy]), np.array([exact.energy_sd]))
    z_q2 = mean_z_scores(q2, np.array([exact.q2]), np.array([exact.q2_sd]))
    assert abs(float(z_energy[0])) < Z_BOUND and abs(float(z_q2[0])) < Z_BOUND, (z_energy, z_q2)
    assert result.global_acceptance.mean() > 0.5
