"""The local phase draws every step's noise in one batch; the chain equals the per-step one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like import loop


def _banana(x):
    return -0.5 * (x[0] ** 2 / 4.0 + (x[1] - 0.5 * x[0] ** 2) ** 2)


@pytest.mark.parametrize("kernel", [fm.MALA(step_size=0.7), fm.RandomWalk(scale=0.8)])
def test_bulk_noise_gives_the_same_chain_as_per_step_noise(kernel, monkeypatch):
    n_chains, n_steps = 5, 12
    positions = jax.random.normal(jax.random.key(0), (n_chains, 2))
    states = loop.init_kernel_states(kernel, _banana, positions)
    adaptation = kernel.adaptation(2, n_steps)
    params = kernel.init_params(2)

    def run():
        return jax.jit(
            lambda key, st: loop.run_local_phase(
                kernel,
                adaptation,
                _banana,
                n_steps,
                key,
                st,
                adaptation.init(params),
                params,
                jnp.asarray(True),
            )
        )(jax.random.key(3), states)

    bulk = run()
    monkeypatch.setattr(loop, "BULK_NOISE_BYTES", 0)
    per_step = run()
    # Same random bits, so the same decisions; XLA may fuse the arithmetic of the two
    # programs differently, so values agree to rounding rather than bit for bit.
    np.testing.assert_array_equal(bulk[2].is_accepted, per_step[2].is_accepted)
    for a, b in zip(jax.tree.leaves(bulk), jax.tree.leaves(per_step), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert 0 < float(np.mean(bulk[2].is_accepted)) < 1


def test_step_is_step_with_drawn_noise():
    kernel = fm.MALA(step_size=0.5)
    state = kernel.init(jnp.array([0.3, -0.2]), _banana)
    params = kernel.init_params(2)
    key = jax.random.key(7)
    via_step = kernel.step(key, state, _banana, params)
    via_noise = kernel.step_with_noise(
        kernel.draw_noise(key, state.position), state, _banana, params
    )
    for a, b in zip(jax.tree.leaves(via_step), jax.tree.leaves(via_noise), strict=True):
        np.testing.assert_array_equal(a, b)
