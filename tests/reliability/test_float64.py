"""float64: the core tests pass under ``jax_enable_x64``, and result dtypes follow the input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from tests.api import test_contract, test_contract_discrete
from tests.statistical import test_global_move

CORE_TESTS = [
    test_contract.test_same_key_same_result_and_sampler_not_mutated,
    test_contract_discrete.test_discrete_run_through_the_same_result_and_arviz_path,
    functools.partial(test_global_move.test_imh_with_student_t_proposal_is_exact, 0),
    test_global_move.test_imh_test_catches_a_ratio_without_proposal_densities,
]
"""A continuous run (same key, same result) and a discrete one through the result and
ArviZ path, and the global move's exactness with the test that catches a missing proposal
density. The kernels' detailed balance and the flows' densities are tested in float64
in-process (tests/unit), and `test_result_dtypes_follow_the_input_under_x64` below runs
whole samplers under x64."""


def log_prob(x: jax.Array) -> jax.Array:
    return -0.5 * jnp.sum(x**2)


@pytest.mark.slow
@pytest.mark.parametrize(
    "core_test", CORE_TESTS, ids=[getattr(t, "func", t).__name__[5:] for t in CORE_TESTS]
)
def test_core_case_passes_under_x64(core_test):
    """A core test run with ``jax_enable_x64`` switched on: every array it creates is
    64-bit unless asked otherwise (its module's constants were made before, at import), and
    the flag is restored afterwards."""
    with jax.enable_x64(True):
        assert jnp.zeros(1).dtype == jnp.float64
        core_test()


@pytest.mark.parametrize(
    "kernel, model, dtype, n_temperatures",
    [
        (fm.MALA(), fm.RealNVP(), np.float32, 1),
        (fm.RandomWalk(), None, np.float64, 1),
        (fm.HMC(), fm.RealNVP(), np.float64, 3),
    ],
    ids=["mala-realnvp-f32", "rw-local-f64", "hmc-tempered-f64"],
)
def test_result_dtypes_follow_the_input_under_x64(kernel, model, dtype, n_temperatures):
    """With x64 on, float32 positions stay float32 and float64 ones float64 (tempered too)."""
    with jax.enable_x64(True):
        sampler = fm.Sampler(
            log_prob,
            n_temperatures=n_temperatures,
            n_dim=2,
            n_chains=4,
            local_kernel=kernel,
            global_model=model,
            n_training_loops=2,
            n_production_loops=2,
            n_local_steps=3,
            n_global_steps=3,
            progress_bar=False,
        )
        result = sampler.run(jax.random.key(0), np.zeros((4, 2), dtype))
    for name in ("flat_samples", "flat_warmup_samples", "log_prob", "warmup_log_prob"):
        assert getattr(result, name).dtype == dtype, name
    assert np.isfinite(result.flat_samples).all()
    for name in ("acceptance_rate", "step_size", "energy", "log_q"):
        assert result.draw_stats[name].dtype == dtype, name
    if n_temperatures > 1:  # the per-draw stats of a tempered run are the cold level's
        is_local = ~result.is_global[0]
        assert np.all(np.isfinite(result.draw_stats["energy"][:, is_local]))
        assert np.all(result.draw_stats["step_size"][:, is_local] > 0)
