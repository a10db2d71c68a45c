"""The local phase draws every step's noise in one batch, or step by step above a size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like import phases as loop


def _banana(x):
    return -0.5 * (x[0] ** 2 / 4.0 + (x[1] - 0.5 * x[0] ** 2) ** 2)


@pytest.mark.parametrize("kernel", [fm.MALA(step_size=0.7), fm.RandomWalk(scale=0.8)])
def test_bulk_and_per_step_noise_both_sample_the_target(kernel, monkeypatch):
    """Both noise paths (all steps drawn at once; each step drawing its own, used above
    `BULK_NOISE_BYTES`) keep a standard normal invariant: chains started from it stay
    N(0, 1) after 20 steps, to within the Monte Carlo error of 4000 independent chains."""
    n_chains, n_steps = 4000, 20
    positions = jax.random.normal(jax.random.key(0), (n_chains, 1))
    states = loop.init_kernel_states(kernel, _standard_normal, positions)
    adaptation = kernel.adaptation()
    params = kernel.init_params(1)

    def run():
        return jax.jit(
            lambda key, st: loop.run_local_phase(
                kernel,
                adaptation,
                _standard_normal,
                n_steps,
                key,
                st,
                adaptation.init(params, st.position),
                params,
                jnp.asarray(False),
                1,
            )
        )(jax.random.key(3), states)

    bulk = run()
    monkeypatch.setattr(loop, "BULK_NOISE_BYTES", 0)
    per_step = run()
    for final, trace in (bulk[:1] + bulk[2:], per_step[:1] + per_step[2:]):
        x = np.asarray(final.position[:, 0], dtype=np.float64)
        assert abs(x.mean()) / np.sqrt(1 / n_chains) < 4
        assert abs(x.var() - 1) / np.sqrt(2 / n_chains) < 4
        assert 0.2 < float(np.mean(trace.is_accepted)) < 1
    # the two paths use different draws
    assert not np.array_equal(bulk[0].position, per_step[0].position)


def _standard_normal(x):
    return -0.5 * jnp.sum(x**2)


def test_step_is_step_with_its_per_key_noise():
    """``step(key)`` = ``step_with_noise`` of the noise made from ``jax.random.uniform(key)``."""
    from flowmc_like.kernels._proposal import _noise_from_uniform

    kernel = fm.MALA(step_size=0.5)
    state = kernel.init(jnp.array([0.3, -0.2]), _banana)
    params = kernel.init_params(2)
    key = jax.random.key(7)
    via_step = kernel.step(key, state, _banana, params)
    noise = _noise_from_uniform(jax.random.uniform(key, (3,)))
    via_noise = kernel.step_with_noise(noise, state, _banana, params)
    for a, b in zip(jax.tree.leaves(via_step), jax.tree.leaves(via_noise), strict=True):
        np.testing.assert_array_equal(a, b)
