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
        buffer = append_draws(jax.random.key(step), buffer, new)
    assert int(buffer.n_filled) == 5
    np.testing.assert_array_equal(np.asarray(buffer.draws[0, :, 0]), [1, 2, 2, 3, 3])


def test_selection_only_uses_filled_draws():
    buffer = init_buffer(n_chains=3, window_size=10, n_dim=1, dtype=jnp.float32)
    buffer = append_draws(jax.random.key(1), buffer, jnp.ones((3, 4, 1)))
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


def test_split_uses_disjoint_chains_and_filled_draws():
    from flowmc_like.training.data import split_training_data

    n_chains = 10
    buffer = init_buffer(n_chains=n_chains, window_size=8, n_dim=1, dtype=jnp.float32)
    # chain c holds the value c in its 3 filled columns; the empty columns (window and
    # memory) hold -1
    buffer = buffer._replace(draws=buffer.draws - 1.0, memory=buffer.memory - 1.0)
    buffer = append_draws(
        jax.random.key(0),
        buffer,
        jnp.broadcast_to(jnp.arange(float(n_chains))[:, None, None], (n_chains, 3, 1)),
    )
    for seed in range(5):
        train, val = split_training_data(jax.random.key(seed), buffer, 400, 100, 3)
        assert train.shape == (400, 1) and val.shape == (100, 1)
        train_chains, val_chains = set(np.unique(train).tolist()), set(np.unique(val).tolist())
        assert -1.0 not in train_chains | val_chains
        assert not train_chains & val_chains
        assert len(val_chains) <= 3 and len(train_chains) <= 7


def test_early_stopping_keeps_the_best_epoch():
    """Validation data between the two modes of the training data: every epoch fits it worse
    than the untrained (unimodal) model, so the update is not kept. Validation data like the
    training data: it is."""
    model = RQSpline(n_layers=2, hidden_sizes=(16,), n_bins=6)
    optimizer = make_optimizer(3e-3)
    state = init_train_state(model.init(jax.random.key(0), 2), optimizer)
    data = _bimodal(jax.random.key(1), 2048)
    between_modes = 0.1 * jax.random.normal(jax.random.key(5), (256, 2))
    near = _bimodal(jax.random.key(6), 256)

    def train(validation):
        return jax.jit(
            lambda k, s: train_model(model, optimizer, k, s, data, 5, 256, None, validation)
        )(jax.random.key(2), state)

    kept, losses, ok = train(between_modes)
    assert bool(ok) and np.all(np.isfinite(losses))
    for a, b in zip(
        jax.tree.leaves(kept.params.trainable), jax.tree.leaves(state.params.trainable), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    trained, _, _ = train(near)
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(trained.params.trainable),
            jax.tree.leaves(state.params.trainable),
            strict=True,
        )
    ]
    assert any(changed)


def test_held_out_chain_count():
    from flowmc_like.config import SamplerConfig

    config = SamplerConfig()
    assert [config.n_held_out_chains(n) for n in (1, 2, 3, 4, 10, 32)] == [0, 0, 1, 1, 2, 6]
    assert SamplerConfig(validation_fraction=0.0).n_held_out_chains(32) == 0
