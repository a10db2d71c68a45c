"""The log-density is traced a bounded number of times, whatever the loop counts."""

import jax
import jax.numpy as jnp
import pytest

import flowmc_like as fm
from tests.conftest import TINY


def _count_traces(**overrides):
    count = {"n": 0}

    def log_prob(x, data):
        count["n"] += 1
        return -0.5 * jnp.sum((x - data) ** 2)

    config = {**TINY, **overrides}
    data = config.pop("data", jnp.zeros(2))
    fm.Sampler(log_prob, data=data, **config).run(jax.random.key(0), jnp.zeros((4, 2)))
    return count["n"]


# RandomWalk runs through the same proposal-kernel phase as MALA.
@pytest.mark.parametrize("kernel", [fm.MALA(), fm.HMC(n_leapfrog=3)])
def test_trace_count_does_not_grow_with_loops(kernel):
    short = _count_traces(local_kernel=kernel, n_training_loops=2, n_production_loops=1)
    long = _count_traces(local_kernel=kernel, n_training_loops=4, n_production_loops=3)
    assert short == long
    assert short <= 10


def test_trace_count_does_not_change_with_data_values():
    first = _count_traces(data=jnp.zeros(2))
    second = _count_traces(data=jnp.ones(2) * 5)
    assert first == second
