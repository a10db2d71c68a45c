"""The proposals actually drawn follow the documented formulas (moments over many keys)."""

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like.kernels import MALA, RandomWalk

N_DRAWS = 20_000


def banana(x):
    return -0.5 * (x[0] / 2.0) ** 2 - 0.5 * (x[1] - 0.5 * (x[0] ** 2 - 4.0)) ** 2


X = jnp.array([1.5, 0.3])


def draw_proposals(kernel, params):
    """Proposals from X for N_DRAWS keys, and the target's value and gradient at five of them."""

    @jax.jit
    def draw(key):
        state = kernel.init(X, banana)
        keys = jax.random.split(key, N_DRAWS)
        proposed = jax.vmap(lambda k: kernel.propose(k, state, banana, params))(keys)
        some = proposed.position[:5]
        return proposed, jax.vmap(jax.value_and_grad(banana))(some), jax.grad(banana)(X)

    return draw(jax.random.key(0))


def check_gaussian_moments(draws, mean, sd):
    draws = np.asarray(draws, np.float64)
    # 5 standard errors for the mean; ~5 standard errors (sqrt(2/n)) for the covariance.
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=5 * sd / np.sqrt(N_DRAWS))
    cov = np.cov(draws, rowvar=False)
    np.testing.assert_allclose(cov, sd**2 * np.eye(2), atol=5 * sd**2 * np.sqrt(2 / N_DRAWS))


def test_mala_proposal_is_x_plus_half_h_squared_grad_plus_h_noise():
    h = 0.6
    kernel = MALA(step_size=h)
    proposed, (log_prob, grad_at), grad = draw_proposals(kernel, kernel.init_params(2))
    check_gaussian_moments(proposed.position, np.asarray(X) + 0.5 * h**2 * np.asarray(grad), h)
    # The proposed state carries the target's value and gradient at the proposal.
    np.testing.assert_allclose(proposed.log_prob[:5], log_prob, rtol=1e-6)
    np.testing.assert_allclose(proposed.grad[:5], grad_at, rtol=1e-6)


def test_random_walk_proposal_is_x_plus_scale_noise():
    scale = 0.4
    kernel = RandomWalk(scale=scale)
    proposed, (log_prob, _), _ = draw_proposals(kernel, kernel.init_params(2))
    check_gaussian_moments(proposed.position, np.asarray(X), scale)
    np.testing.assert_allclose(proposed.log_prob[:5], log_prob, rtol=1e-6)
