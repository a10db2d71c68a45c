import jax
import jax.numpy as jnp
import pytest

TINY = dict(
    n_training_loops=2,
    n_production_loops=2,
    n_local_steps=5,
    n_global_steps=5,
    n_epochs=2,
    batch_size=64,
    n_max_examples=128,
    progress_bar=False,
)


def standard_normal(x):
    return -0.5 * jnp.sum(x**2)


@pytest.fixture
def tiny_config():
    return dict(TINY)


@pytest.fixture
def key():
    return jax.random.key(0)
