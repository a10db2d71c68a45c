"""Bounded memory: the global phase works in fixed-size blocks, and draws can be thinned."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.phases import GlobalState, global_block_size, run_global_phase
from tests.statistical.stub_models import StudentTModel

N_DIM = 4


def log_prob(x: jax.Array) -> jax.Array:
    return -0.5 * jnp.sum(x**2)


MODEL = StudentTModel(loc=(0.2,) * N_DIM, scale=(1.3,) * N_DIM)


def _global_phase(n_chains: int, n_steps: int, chunk_size: int, thinning: int):
    params = MODEL.init(jax.random.key(0), N_DIM)

    def run(key, current):
        return run_global_phase(
            MODEL, log_prob, n_steps, chunk_size, key, current, params, thinning
        )

    start = jax.random.normal(jax.random.key(1), (n_chains, N_DIM))
    current = GlobalState(start, jax.vmap(log_prob)(start))
    return jax.jit(run), current


def _compiled_bytes(n_chains: int, n_steps: int, chunk_size: int, thinning: int) -> tuple[int, int]:
    """(temporary, output) bytes XLA allocates for one global phase."""
    run, current = _global_phase(n_chains, n_steps, chunk_size, thinning)
    stats = run.lower(jax.random.key(2), current).compile().memory_analysis()
    return stats.temp_size_in_bytes, stats.output_size_in_bytes


def test_block_size():
    assert global_block_size(25, 32, 4096) == 25  # one block: the whole phase
    assert global_block_size(1000, 32, 4096) == 128
    assert global_block_size(1000, 32, 4096, thinning=10) == 120
    assert global_block_size(1000, 4096, 1024, thinning=3) == 3
    assert global_block_size(1000, 64, 32) == 1


def test_global_phase_memory_is_flat_when_steps_grow_tenfold():
    """With thinning 10x, 10x the steps takes the same memory; without blocks it would not."""
    n_chains, chunk = 256, 4096
    temp_1x, out_1x = _compiled_bytes(n_chains, 200, chunk, thinning=1)
    temp_10x, out_10x = _compiled_bytes(n_chains, 2000, chunk, thinning=10)
    assert out_10x == out_1x
    assert temp_10x <= 1.1 * temp_1x, (temp_1x, temp_10x)
    # One block holding every proposal (the chunk as large as the phase) grows ~10x.
    temp_unblocked, _ = _compiled_bytes(n_chains, 2000, n_chains * 2000, thinning=10)
    assert temp_unblocked > 5 * temp_1x, (temp_1x, temp_unblocked)


def test_thinned_blocks_keep_exactly_every_kth_step():
    """Several blocks (the last one padded): thinning keeps steps k-1, 2k-1, ... exactly."""
    n_chains, n_steps, chunk, thinning = 8, 37, 80, 5  # 10 steps per block, 4 blocks
    full_run, current = _global_phase(n_chains, n_steps, chunk, 1)
    thin_run, _ = _global_phase(n_chains, n_steps, chunk, thinning)
    key = jax.random.key(3)
    final, trace, summary = full_run(key, current)
    thin_final, thin_trace, thin_summary = thin_run(key, current)
    jax.tree.map(np.testing.assert_array_equal, thin_final, final)
    for got, full in zip(thin_trace, trace, strict=True):
        assert got.shape[1] == n_steps // thinning
        np.testing.assert_array_equal(got, np.asarray(full)[:, thinning - 1 :: thinning])
    np.testing.assert_allclose(thin_summary.acceptance_prob, summary.acceptance_prob, rtol=1e-6)
    np.testing.assert_allclose(
        summary.acceptance_prob, np.asarray(trace.acceptance_prob).mean(axis=1), rtol=1e-6
    )
    assert trace.position.shape[1] == n_steps


def test_sampler_thinning_keeps_every_kth_draw_of_each_phase():
    """A local-only run thinned by 5 keeps the unthinned run's steps 4, 9, ... of each loop."""
    settings = dict(
        n_dim=2,
        n_chains=4,
        global_model=None,
        n_training_loops=2,
        n_production_loops=3,
        n_local_steps=10,
        progress_bar=False,
    )
    key, x0 = jax.random.key(0), jnp.zeros((4, 2))
    full = fm.Sampler(log_prob, **settings).run(key, x0)
    thinned = fm.Sampler(log_prob, thinning=5, **settings).run(key, x0)
    assert thinned.samples.shape == (4, 3 * 2, 2)
    np.testing.assert_array_equal(thinned.samples, full.samples[:, 4::5])
    np.testing.assert_array_equal(thinned.warmup_samples, full.warmup_samples[:, 4::5])
    np.testing.assert_array_equal(thinned.local_acceptance, full.local_acceptance)
    np.testing.assert_array_equal(thinned.history.local_acceptance, full.history.local_acceptance)


def test_thinning_with_a_flow_marks_global_draws():
    sampler = fm.Sampler(
        log_prob,
        n_dim=2,
        n_chains=4,
        n_training_loops=2,
        n_production_loops=2,
        n_local_steps=10,
        n_global_steps=6,
        thinning=3,
        progress_bar=False,
    )
    result = sampler.run(jax.random.key(0), jnp.zeros((4, 2)))
    per_loop = np.array([False] * 3 + [True] * 2)
    np.testing.assert_array_equal(result.is_global, np.tile(per_loop, (4, 2)))
    assert np.isfinite(result.global_acceptance).all()


def test_thinning_larger_than_a_phase_is_refused():
    with pytest.raises(ValueError, match=r"thinning=30 .* at most n_global_steps=25"):
        fm.Sampler(log_prob, n_dim=2, thinning=30)
