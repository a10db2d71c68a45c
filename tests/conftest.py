import tempfile

import jax
import jax.numpy as jnp
import pytest

# Many tests compile identical programs (the same tiny runs of the same kernels and models);
# a session-wide persistent compilation cache in a fresh temporary directory compiles each
# once. Tracing still happens on every run (tests/test_compilation.py counts traces).
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="flowmc_like_tests_"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def pytest_collection_finish(session):
    """Start the subprocess checks the selected tests need (see tests/background.py)."""
    from tests import background

    needed = []
    for item in session.items:
        needed += background.jobs_for(item.nodeid, getattr(item, "fixturenames", ()))
    background.start_jobs(list(dict.fromkeys(needed)))


def pytest_sessionfinish(session):
    from tests import background

    background.stop_jobs()


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
