"""Properties every continuous local kernel must have, parametrised over ALL_KERNELS.

All targets here are 3-D and selected by a traced index (``log_prob(x, which)``), so each
kernel's scanned driver compiles once for the whole file (random-number code is slow to
compile on CPU).
"""

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like.conformance import (
    check_kernel_deterministic,
    check_kernel_log_prob_call_sites,
    check_kernel_rejects_non_finite,
    check_kernel_small_step_acceptance,
    check_kernel_state_layout,
)
from flowmc_like.kernels import HMC, MALA, AbstractLocalKernel, RandomWalk
from tests.helpers.chains import run_chains

ALL_KERNELS = [
    pytest.param(MALA(step_size=0.5), id="mala"),
    pytest.param(HMC(step_size=0.2, n_leapfrog=5), id="hmc"),
    pytest.param(RandomWalk(scale=0.5), id="random_walk"),
]
N_DIM = 3
N_CHAINS = 16
N_STEPS = 50

# --- Targets --------------------------------------------------------------------------------

MEAN = np.array([1.0, -1.0, 0.0])
COV = np.array([[1.0, 1.6, 0.0], [1.6, 4.0, 0.0], [0.0, 0.0, 0.25]])  # corr 0.8 in (x0, x1)
PRECISION = np.linalg.inv(COV)


def banana(x):
    return (
        -0.5 * (x[0] / 2.0) ** 2
        - 0.5 * (x[1] - 0.5 * (x[0] ** 2 - 4.0)) ** 2
        - 0.5 * (x[2] / 0.5) ** 2
    )


def correlated_gaussian(x):
    d = x - MEAN
    return -0.5 * d @ jnp.asarray(PRECISION, x.dtype) @ d


def _standard_normal(x):
    return -0.5 * jnp.sum(x**2)


def nan_beyond_one(x):
    return jnp.where(x[0] > 1.0, jnp.nan, _standard_normal(x))


def neg_inf_beyond_one(x):
    return jnp.where(x[0] > 1.0, -jnp.inf, _standard_normal(x))


def log_barrier(x):
    """-inf at x0 = 1 and NaN beyond (log of a negative number), with misleading gradients."""
    return _standard_normal(x) + jnp.log(1.0 - x[0])


TARGETS = [banana, correlated_gaussian, nan_beyond_one, neg_inf_beyond_one, log_barrier]
BANANA, CORRELATED_GAUSSIAN = 0, 1
NON_FINITE = [2, 3, 4]


def log_prob(x, which):
    return jax.lax.switch(which, TARGETS, x)


def banana_positions(seed=0):
    z = np.random.default_rng(seed).standard_normal((N_CHAINS, N_DIM))
    x0 = 2.0 * z[:, 0]
    return np.stack([x0, 0.5 * (x0**2 - 4.0) + z[:, 1], 0.5 * z[:, 2]], axis=1)


def scaled_params(params, factor):
    """Scale the step-size-like field (the first field of every continuous kernel's params)."""
    name = params._fields[0]
    return params._replace(**{name: getattr(params, name) * factor})


def run(kernel, key, positions, params, which):
    return run_chains(kernel, log_prob, key, positions, params, N_STEPS, data=jnp.int32(which))


# --- Checks ---------------------------------------------------------------------------------


def test_all_kernels_are_abstract_local_kernels():
    for case in ALL_KERNELS:
        kernel = case.values[0]
        assert isinstance(kernel, AbstractLocalKernel)
        assert 0.0 < kernel.target_acceptance < 1.0
        hash(kernel)  # static config: hashable, closed over by jit


@pytest.mark.parametrize("kernel", ALL_KERNELS)
@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_state_layout(kernel, x64):
    with jax.enable_x64(x64):
        position = jnp.asarray(banana_positions()[0], jnp.result_type(float))
        assert position.dtype == (jnp.float64 if x64 else jnp.float32)
        check_kernel_state_layout(kernel, banana, position, kernel.init_params(N_DIM))


@pytest.mark.parametrize("kernel", ALL_KERNELS)
def test_one_log_prob_call_site_per_step(kernel):
    position = jnp.asarray(banana_positions()[0], jnp.float32)
    check_kernel_log_prob_call_sites(kernel, banana, position, kernel.init_params(N_DIM))


@pytest.mark.parametrize("kernel", ALL_KERNELS)
def test_deterministic_for_a_fixed_key(kernel):
    params = kernel.init_params(N_DIM)
    check_kernel_deterministic(
        kernel, log_prob, banana_positions(), params, N_STEPS, data=jnp.int32(BANANA)
    )


@pytest.mark.parametrize("kernel", ALL_KERNELS)
def test_acceptance_tends_to_one_as_step_size_vanishes(kernel):
    params = kernel.init_params(N_DIM)
    positions = banana_positions(1)
    acceptance = [
        float(
            jnp.mean(
                run(
                    kernel, jax.random.key(3), positions, scaled_params(params, f), BANANA
                ).acceptance_prob
            )
        )
        for f in (2.0, 0.1)
    ]
    assert acceptance[0] < 0.95  # the check below is not trivially satisfied
    assert acceptance[1] > acceptance[0]
    check_kernel_small_step_acceptance(
        kernel,
        log_prob,
        positions,
        scaled_params(params, 1e-3),
        0.99,
        N_STEPS,
        data=jnp.int32(BANANA),
    )


@pytest.mark.parametrize("kernel", ALL_KERNELS)
@pytest.mark.parametrize("which", NON_FINITE, ids=[TARGETS[i].__name__ for i in NON_FINITE])
def test_non_finite_proposals_are_rejected(kernel, which):
    rng = np.random.default_rng(5)
    positions = np.column_stack(
        [rng.uniform(0.8, 0.99, N_CHAINS), 0.5 * rng.standard_normal((N_CHAINS, N_DIM - 1))]
    )
    params = scaled_params(kernel.init_params(N_DIM), 2.0)  # big steps: cross x0 = 1 often
    result = check_kernel_rejects_non_finite(
        kernel, log_prob, positions, params, N_STEPS, data=jnp.int32(which)
    )
    assert np.all(np.asarray(result.position)[..., 0] < 1.0)
    is_accepted = np.asarray(result.is_accepted)
    assert 0.05 < is_accepted.mean() < 0.95  # chains move, and many moves were refused
    # Non-finite proposals get acceptance_prob exactly 0; there were some.
    assert np.mean(np.asarray(result.acceptance_prob) == 0.0) > 0.01


# --- The kernel alone samples a correlated Gaussian (MCSE z-scores) -----------------------

SAMPLING_CASES = [
    pytest.param(MALA(step_size=0.5), {"step_size": jnp.float32(0.7)}, id="mala"),
    # A non-unit inverse mass checks that the momentum is drawn from N(0, M).
    pytest.param(
        HMC(step_size=0.2, n_leapfrog=5),
        {"step_size": jnp.float32(0.5), "inverse_mass": jnp.array([0.5, 3.0, 0.2])},
        id="hmc",
    ),
    pytest.param(RandomWalk(scale=0.5), {"scale": jnp.float32(0.9)}, id="random_walk"),
]


def z_score(values, truth):
    """(estimate - truth) / MCSE for the mean of ``values`` ``(n_chains, n_draws)``."""
    ess = az.ess(values, method="mean")
    return (values.mean() - truth) / (values.std() / np.sqrt(ess))


@pytest.mark.statistical
@pytest.mark.parametrize(("kernel", "param_values"), SAMPLING_CASES)
def test_kernel_alone_samples_a_correlated_gaussian(kernel, param_values):
    n_calls = 30  # 30 x 50 = 1500 steps per chain, continuing the chains between calls
    rng = np.random.default_rng(7)
    positions = rng.multivariate_normal(MEAN, COV, size=N_CHAINS).astype(np.float32)
    params = kernel.init_params(N_DIM)._replace(**param_values)
    draws, acceptance = [], []
    for i in range(n_calls):
        result = run(kernel, jax.random.key(100 + i), positions, params, CORRELATED_GAUSSIAN)
        positions = result.position[:, -1]
        draws.append(np.asarray(result.position, dtype=np.float64))
        acceptance.append(np.asarray(result.acceptance_prob))
    draws = np.concatenate(draws, axis=1)  # (n_chains, n_draws, n_dim)
    assert 0.2 < np.mean(acceptance) < 0.95
    centred = draws - MEAN
    z = [z_score(draws[..., i], MEAN[i]) for i in range(N_DIM)]
    z += [z_score(centred[..., i] ** 2, COV[i, i]) for i in range(N_DIM)]
    z += [z_score(centred[..., 0] * centred[..., 1], COV[0, 1])]
    assert np.all(np.abs(z) < 4.0), np.round(z, 2)
