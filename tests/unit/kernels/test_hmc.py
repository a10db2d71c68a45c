"""HMC and its leapfrog integrator: reversibility, O(eps^2) energy error, phase-space balance."""

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like.kernels import HMC, HMCParams
from flowmc_like.kernels.integrators import IntegratorState, leapfrog

INVERSE_MASS = jnp.array([0.5, 2.0, 1.5])


def banana_log_prob(x):
    return (
        -0.5 * (x[0] / 2.0) ** 2
        - 0.5 * (x[1] - 0.5 * (x[0] ** 2 - 4.0)) ** 2
        - 0.5 * (x[2] / 0.5) ** 2
    )


def hamiltonian(x, p, inverse_mass):
    """Written from the documented formula, independently of the kernel."""
    return -banana_log_prob(x) + 0.5 * jnp.sum(inverse_mass * p**2)


def phase_space_points(n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    x0 = 2.0 * z[:, 0]
    x = np.stack([x0, 0.5 * (x0**2 - 4.0) + z[:, 1], 0.5 * z[:, 2]], axis=1)
    p = rng.standard_normal((n, 3)) / np.sqrt(np.asarray(INVERSE_MASS))
    dtype = jnp.result_type(float)
    return jnp.asarray(x, dtype), jnp.asarray(p, dtype)


def start(x, p):
    log_prob, grad = jax.value_and_grad(banana_log_prob)(x)
    return IntegratorState(x, p, log_prob, grad)


@jax.jit
def forward_and_back(x, p):
    def one(x, p):
        end = leapfrog(start(x, p), 0.05, INVERSE_MASS, 20, banana_log_prob)
        back = leapfrog(start(end.position, -end.momentum), 0.05, INVERSE_MASS, 20, banana_log_prob)
        return end, back

    return jax.vmap(one)(x, p)


def test_leapfrog_is_reversible():
    x, p = phase_space_points(64)
    end, back = forward_and_back(x, p)
    assert float(jnp.max(jnp.abs(end.position - x))) > 0.1  # it moved
    np.testing.assert_allclose(np.asarray(back.position), np.asarray(x), atol=2e-4)
    np.testing.assert_allclose(np.asarray(-back.momentum), np.asarray(p), atol=2e-4)
    # The cached log density and gradient belong to the end point.
    log_prob, grad = jax.vmap(jax.value_and_grad(banana_log_prob))(end.position)
    np.testing.assert_allclose(np.asarray(end.log_prob), np.asarray(log_prob), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(end.grad), np.asarray(grad), rtol=1e-6, atol=1e-6)


def test_leapfrog_energy_error_is_second_order():
    with jax.enable_x64(True):
        x, p = phase_space_points(64, seed=1)
        errors = []
        for n_steps in (10, 20, 40):  # fixed integration time 0.5
            eps = 0.5 / n_steps

            def energy_error(x, p, eps=eps, n_steps=n_steps):
                end = leapfrog(start(x, p), eps, INVERSE_MASS, n_steps, banana_log_prob)
                return hamiltonian(end.position, end.momentum, INVERSE_MASS) - hamiltonian(
                    x, p, INVERSE_MASS
                )

            errors.append(float(jnp.mean(jnp.abs(jax.jit(jax.vmap(energy_error))(x, p)))))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 4.0, rtol=0.1)


def test_leapfrog_evaluates_the_gradient_once_per_step():
    calls = []

    def counting_log_prob(x):
        calls.append(1)  # runs at trace time only: once per traced call site
        return banana_log_prob(x)

    x, p = phase_space_points(1)
    state = IntegratorState(x[0], p[0], jnp.zeros(()), jnp.zeros(3))
    jax.make_jaxpr(lambda s: leapfrog(s, 0.1, INVERSE_MASS, 7, counting_log_prob))(state)
    assert len(calls) == 1  # one value_and_grad in the loop body, none outside it


def test_hmc_phase_space_detailed_balance():
    kernel = HMC(step_size=0.15, n_leapfrog=8)
    params = HMCParams(step_size=jnp.asarray(0.15), inverse_mass=INVERSE_MASS)
    x, p = phase_space_points(256, seed=2)

    @jax.jit
    def check(x, p):
        def one(x, p):
            current = kernel.init(x, banana_log_prob)
            proposed, p_end = kernel.integrate(params, current, p, banana_log_prob)
            forward = kernel.log_acceptance_ratio(params, current, p, proposed, p_end)
            # Reverse move: from (x', -p') the trajectory returns to (x, -p).
            returned, p_back = kernel.integrate(params, proposed, -p_end, banana_log_prob)
            reverse = kernel.log_acceptance_ratio(params, proposed, -p_end, returned, p_back)
            lhs = -hamiltonian(x, p, INVERSE_MASS) + jnp.minimum(0.0, forward)
            rhs = -hamiltonian(proposed.position, p_end, INVERSE_MASS) + jnp.minimum(0.0, reverse)
            scale = jnp.abs(hamiltonian(x, p, INVERSE_MASS))
            return lhs - rhs, scale, forward, returned.position

        return jax.vmap(one)(x, p)

    residual, scale, forward, returned = check(x, p)
    np.testing.assert_allclose(np.asarray(returned), np.asarray(x), atol=2e-4)
    assert np.all(np.abs(np.asarray(residual)) <= 1e-4 + 1e-5 * np.asarray(scale))
    acceptance = np.minimum(1.0, np.exp(np.asarray(forward)))
    assert 0.1 < np.mean(acceptance < 0.999) < 0.9  # meaningful: many moves not certain


def test_hmc_ratio_matches_hamiltonian_formula():
    kernel = HMC(step_size=0.2, n_leapfrog=5)
    params = HMCParams(step_size=jnp.asarray(0.2), inverse_mass=INVERSE_MASS)
    x, p = phase_space_points(32, seed=3)
    y, q = phase_space_points(32, seed=4)

    @jax.jit
    def ratios(x, p, y, q):
        def one(x, p, y, q):
            a, b = kernel.init(x, banana_log_prob), kernel.init(y, banana_log_prob)
            expected = hamiltonian(x, p, INVERSE_MASS) - hamiltonian(y, q, INVERSE_MASS)
            return kernel.log_acceptance_ratio(params, a, p, b, q), expected

        return jax.vmap(one)(x, p, y, q)

    ours, expected = ratios(x, p, y, q)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), rtol=1e-5, atol=1e-4)


def test_hmc_momentum_has_covariance_mass_matrix():
    kernel = HMC()
    params = HMCParams(step_size=jnp.asarray(0.1), inverse_mass=jnp.array([0.25, 4.0]))
    keys = jax.random.split(jax.random.key(0), 20_000)
    momenta = jax.jit(jax.vmap(lambda k: kernel.sample_momentum(k, params, jnp.zeros(2))))(keys)
    np.testing.assert_allclose(np.var(np.asarray(momenta), axis=0), [4.0, 0.25], rtol=0.05)
