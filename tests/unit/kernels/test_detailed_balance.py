"""Exact detailed balance of MALA and RandomWalk on a non-Gaussian target.

For random pairs (x, x') the check is
``log p(x) + log q(x'|x) + log a(x,x') == log p(x') + log q(x|x') + log a(x',x)``
with q written here from the documented formulas (independently of the kernels) and
a(x, x') = min(1, exp(kernel.log_acceptance_ratio)).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

from flowmc_like.conformance import (
    check_kernel_detailed_balance,
    detailed_balance_residual,
)
from flowmc_like.kernels import MALA, MALAParams, MALAState, RandomWalk

N_PAIRS = 512
# (atol, rtol relative to the summed |log densities| of a pair): float32 rounding vs float64.
TOLERANCES = {"float32": (1e-5, 2e-6), "float64": (1e-11, 1e-13)}


CASES = [(0.3, "float32"), (1.0, "float32"), (0.6, "float64")]


@pytest.fixture
def precision(request):
    with jax.enable_x64(request.param == "float64"):
        yield TOLERANCES[request.param]


def banana_log_prob(x):
    """x0 ~ N(0, 2^2), x1 | x0 ~ N((x0^2 - 4) / 2, 1), x2 ~ N(0, 0.5^2)."""
    return (
        -0.5 * (x[0] / 2.0) ** 2
        - 0.5 * (x[1] - 0.5 * (x[0] ** 2 - 4.0)) ** 2
        - 0.5 * (x[2] / 0.5) ** 2
    )


def banana_draws(rng, n):
    z = rng.standard_normal((n, 3))
    x0 = 2.0 * z[:, 0]
    return np.stack([x0, 0.5 * (x0**2 - 4.0) + z[:, 1], 0.5 * z[:, 2]], axis=1)


def langevin_log_q(h):
    """Documented MALA proposal: x' ~ N(x + (h^2/2) grad log p(x), h^2 I)."""

    def log_q(x_to, x_from):
        mean = x_from + 0.5 * h**2 * jax.grad(banana_log_prob)(x_from)
        return jnp.sum(norm.logpdf(x_to, loc=mean, scale=h))

    return log_q


def gaussian_increment_log_q(scale):
    """Documented random-walk proposal: x' ~ N(x, scale^2 I)."""

    def log_q(x_to, x_from):
        return jnp.sum(norm.logpdf(x_to, loc=x_from, scale=scale))

    return log_q


@jax.jit
def banana_grads(x):
    return jax.vmap(jax.grad(banana_log_prob))(x)


def pairs(h, seed=0):
    """Pairs near the typical set: half Langevin proposals, half plain Gaussian increments."""
    rng = np.random.default_rng(seed)
    x = banana_draws(rng, N_PAIRS)
    half = N_PAIRS // 2
    x_prime = x + h * rng.standard_normal(x.shape)
    x_prime[:half] += 0.5 * h**2 * np.asarray(banana_grads(x[:half]), dtype=np.float64)
    dtype = jnp.result_type(float)
    return jnp.asarray(x, dtype), jnp.asarray(x_prime, dtype)


def forward_acceptance(kernel, params, x, x_prime):
    def one(a, b):
        current, proposed = kernel.init(a, banana_log_prob), kernel.init(b, banana_log_prob)
        return jnp.minimum(1.0, jnp.exp(kernel.log_acceptance_ratio(params, current, proposed)))

    return np.asarray(jax.jit(jax.vmap(one))(x, x_prime))


@pytest.mark.parametrize(("h", "precision"), CASES, indirect=["precision"])
def test_mala_detailed_balance(h, precision):
    atol, rtol = precision
    kernel = MALA(step_size=h)
    params = kernel.init_params(3)
    x, x_prime = pairs(h)
    check_kernel_detailed_balance(
        kernel, banana_log_prob, params, langevin_log_q(h), x, x_prime, atol=atol, rtol=rtol
    )
    # The check is meaningful: many moves are not accepted with certainty in either direction.
    acceptance = forward_acceptance(kernel, params, x, x_prime)
    assert 0.2 < np.mean(acceptance < 0.999) < 0.9


@pytest.mark.parametrize(("scale", "precision"), CASES, indirect=["precision"])
def test_random_walk_detailed_balance(scale, precision):
    atol, rtol = precision
    kernel = RandomWalk(scale=scale)
    params = kernel.init_params(3)
    x, x_prime = pairs(scale, seed=1)
    log_q = gaussian_increment_log_q(scale)
    check_kernel_detailed_balance(
        kernel, banana_log_prob, params, log_q, x, x_prime, atol=atol, rtol=rtol
    )
    acceptance = forward_acceptance(kernel, params, x, x_prime)
    assert 0.2 < np.mean(acceptance < 0.999) < 0.9


@dataclasses.dataclass(frozen=True)
class MALAWithoutReverseDensity(MALA):
    """Bug: the ratio omits log q(x | x')."""

    def log_acceptance_ratio(self, params, current, proposed):
        log_q_forward = self.proposal_log_density(
            params, proposed.position, current.position, current.grad
        )
        return proposed.log_prob - current.log_prob - log_q_forward


@dataclasses.dataclass(frozen=True)
class MALAWithoutHastings(MALA):
    """Bug: the proposal is treated as symmetric (no Hastings correction at all)."""

    def log_acceptance_ratio(self, params, current, proposed):
        return proposed.log_prob - current.log_prob


@pytest.mark.parametrize("buggy_cls", [MALAWithoutReverseDensity, MALAWithoutHastings])
def test_detailed_balance_check_catches_a_wrong_mala_ratio(buggy_cls):
    h = 0.6
    kernel = buggy_cls(step_size=h)
    params = kernel.init_params(3)
    x, x_prime = pairs(h)

    def log_ratio(a, b):
        return kernel.log_acceptance_ratio(
            params, kernel.init(a, banana_log_prob), kernel.init(b, banana_log_prob)
        )

    residual_fn = jax.jit(
        lambda a, b: detailed_balance_residual(banana_log_prob, langevin_log_q(h), log_ratio, a, b)
    )
    residuals = np.abs(np.asarray(residual_fn(x, x_prime)))
    # Typical discrepancies are O(0.1-1) in log space, far above float32 rounding.
    assert np.median(residuals) > 0.05
    assert np.max(residuals) > 1.0
    with pytest.raises(AssertionError, match="detailed balance violated"):
        check_kernel_detailed_balance(
            kernel, banana_log_prob, params, langevin_log_q(h), x, x_prime
        )


def test_mala_proposal_density_matches_formula():
    h = 0.7
    kernel = MALA(step_size=h)
    params = kernel.init_params(3)
    x, x_prime = pairs(h, seed=2)

    @jax.jit
    def both(x, x_prime):
        grads = jax.vmap(jax.grad(banana_log_prob))(x)
        ours = jax.vmap(kernel.proposal_log_density, in_axes=(None, 0, 0, 0))
        return ours(params, x_prime, x, grads), jax.vmap(langevin_log_q(h))(x_prime, x)

    ours, expected = both(x, x_prime)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), rtol=1e-5, atol=1e-4)


def test_mala_ratio_is_antisymmetric():
    h = 0.5
    kernel = MALA(step_size=h)
    params = MALAParams(jnp.asarray(h))
    x, x_prime = pairs(h, seed=3)

    def both(a, b):
        sa = kernel.init(a, banana_log_prob)
        sb = kernel.init(b, banana_log_prob)
        assert isinstance(sa, MALAState)
        return kernel.log_acceptance_ratio(params, sa, sb), kernel.log_acceptance_ratio(
            params, sb, sa
        )

    forward, reverse = jax.jit(jax.vmap(both))(x, x_prime)
    np.testing.assert_allclose(np.asarray(forward), -np.asarray(reverse), atol=1e-4)
