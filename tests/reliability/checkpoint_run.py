"""A checkpointed run started as a subprocess by `test_checkpoint` (and killed there).

``python -m tests.reliability.checkpoint_run PATH`` runs `make_sampler()` from `KEY` with
``checkpoint_path=PATH``; `log_prob` lives in this importable module, so the checkpoint
stores it by reference and ``fm.Sampler.resume(PATH)`` needs nothing else.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp

import flowmc_like as fm

SEED = 3
N_CHAINS = 8


def log_prob(x: jax.Array) -> jax.Array:
    """Two well-separated Gaussian modes in 2-D (so the flow's proposals matter)."""
    a = -0.5 * jnp.sum((x - 2.0) ** 2) / 0.5**2
    b = -0.5 * jnp.sum((x + 2.0) ** 2) / 0.5**2
    return jnp.logaddexp(a, b)


def log_prior(x: jax.Array) -> jax.Array:
    """A proper Gaussian prior (for the tempered checkpoint test)."""
    return -0.5 * jnp.sum(x**2) / 3.0**2


def log_prior_and_likelihood(x: jax.Array) -> jax.Array:
    """`log_prior` plus the two-mode `log_prob` as the likelihood."""
    return log_prior(x) + log_prob(x)


def make_sampler() -> fm.Sampler:
    """Loops long enough (a few hundred ms each) to be killed in the middle of one."""
    return fm.Sampler(
        log_prob,
        n_dim=2,
        n_chains=N_CHAINS,
        n_training_loops=8,
        n_production_loops=8,
        n_local_steps=3000,
        n_global_steps=200,
        n_epochs=3,
        batch_size=256,
        n_max_examples=1024,
        progress_bar=False,
    )


def initial_position() -> jax.Array:
    return jax.random.normal(jax.random.key(SEED + 1), (N_CHAINS, 2))


if __name__ == "__main__":
    # Run the module's functions under their importable name (not ``__main__``), so the
    # checkpoint pickles ``log_prob`` as ``tests.reliability.checkpoint_run.log_prob``.
    from tests.reliability import checkpoint_run

    checkpoint_run.make_sampler().run(
        jax.random.key(SEED), checkpoint_run.initial_position(), checkpoint_path=sys.argv[1]
    )
