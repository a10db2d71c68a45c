"""flowmc_like's algorithmic evaluation count equals what a run executes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from benchmarks.peers.flowmc_like_peer import expected_evals


def _counted_run(n_chains: int, **kwargs) -> tuple[int, dict[str, int]]:
    n_dim = 2
    counter = {"n": 0}

    def count(x):
        counter["n"] += int(np.size(x)) // n_dim

    def log_prob(x):
        jax.debug.callback(count, x)
        return -0.5 * jnp.sum(x**2)

    sampler = fm.Sampler(
        log_prob,
        n_dim=n_dim,
        n_chains=n_chains,
        n_training_loops=2,
        n_production_loops=1,
        n_local_steps=3,
        n_global_steps=4,
        n_epochs=1,
        n_max_examples=64,
        batch_size=32,
        progress_bar=False,
        **kwargs,
    )
    result = sampler.run(jax.random.key(0), jax.random.normal(jax.random.key(1), (n_chains, n_dim)))
    jax.effects_barrier()
    return counter["n"], expected_evals(sampler, n_chains, result.history)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"local_in_latent_space": True},  # MALA steps plus the latent phase's two rebuilds
        {"local_kernel": fm.HMC(n_leapfrog=3)},
        {"global_model": None},
    ],
    ids=["mala_latent", "hmc", "local_only"],
)
def test_expected_evals_match_a_counted_run(kwargs):
    n_counted, expected = _counted_run(8, **kwargs)
    assert n_counted == expected["training"] + expected["production"], (n_counted, expected)
