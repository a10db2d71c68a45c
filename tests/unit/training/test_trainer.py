import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like.models.rq_spline import RQSpline
from flowmc_like.training.data import append_draws, init_buffer, select_training_data
from flowmc_like.training.optim import make_optimizer
from flowmc_like.training.trainer import init_train_state, train_model


def _bimodal(key, n):
    k1, k2 = jax.random.split(key)
    sign = jnp.where(jax.random.uniform(k1, (n, 1)) < 0.5, -1.0, 1.0)
    return sign * 2.0 + 0.5 * jax.random.normal(k2, (n, 2))


def test_buffer_keeps_the_most_recent_draws():
    buffer = init_buffer(n_chains=2, window_size=5, n_dim=1, dtype=jnp.float32)
    for step in range(4):
        new = jnp.full((2, 2, 1), float(step))
        buffer = append_draws(buffer, new)
    assert int(buffer.n_filled) == 5
    np.testing.assert_array_equal(np.asarray(buffer.draws[0, :, 0]), [1, 2, 2, 3, 3])


def test_selection_only_uses_filled_draws():
    buffer = init_buffer(n_chains=3, window_size=10, n_dim=1, dtype=jnp.float32)
    buffer = append_draws(buffer, jnp.ones((3, 4, 1)))
    examples = select_training_data(jax.random.key(0), buffer, 500)
    assert examples.shape == (500, 1)
    np.testing.assert_array_equal(np.asarray(examples), 1.0)


def test_training_decreases_the_loss():
    model = RQSpline(n_layers=2, hidden_sizes=(16,), n_bins=6)
    optimizer = make_optimizer(3e-3)
    state = init_train_state(model.init(jax.random.key(0), 2), optimizer)
    data = _bimodal(jax.random.key(1), 2048)
    train = jax.jit(lambda k, s: train_model(model, optimizer, k, s, data, 10, 256))
    state, first, ok = train(jax.random.key(2), state)
    for i in range(5):
        state, losses, ok = train(jax.random.key(3 + i), state)
    assert bool(ok)
    assert losses[-1] < first[0] - 0.3


def test_non_finite_update_is_flagged():
    model = RQSpline(n_layers=2, hidden_sizes=(8,), n_bins=4)
    optimizer = make_optimizer(1e-3)
    state = init_train_state(model.init(jax.random.key(0), 2), optimizer)
    data = _bimodal(jax.random.key(1), 512).at[3].set(jnp.nan)
    _, _, ok = jax.jit(lambda k, s: train_model(model, optimizer, k, s, data, 2, 128))(
        jax.random.key(2), state
    )
    assert not bool(ok)
