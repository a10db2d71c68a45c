"""Train once, reuse: no recompiling, warm starts, saved results (format and errors)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like import saved
from tests.conftest import TINY

N_CHAINS = 8


class CountingTarget:
    """``log_prob(x, data)`` of a Gaussian centred on ``data``, counting its traces."""

    def __init__(self):
        self.n_traces = 0

    def __call__(self, x, data):
        self.n_traces += 1
        return -0.5 * jnp.sum((x - data) ** 2)


def start(n_dim=2, seed=1):
    return jax.random.normal(jax.random.key(seed), (N_CHAINS, n_dim))


def test_a_second_run_and_new_data_of_the_same_shapes_do_not_retrace():
    log_prob = CountingTarget()
    sampler = fm.Sampler(log_prob, data=jnp.zeros(2), **TINY)
    first = sampler.run(jax.random.key(0), start())
    n_first = log_prob.n_traces
    assert n_first > 0 and first.timings["compile"] > 0
    second = sampler.run(jax.random.key(1), start(seed=2))
    on_new_data = sampler.run(jax.random.key(1), start(), data=jnp.array([3.0, -3.0]))
    assert log_prob.n_traces == n_first
    assert second.timings["compile"] < 0.05 and on_new_data.timings["compile"] < 0.05
    # the new data are used, not the compiled-in old ones
    assert np.all(np.abs(on_new_data.flat_samples.mean((0, 1)) - [3.0, -3.0]) < 1.0)


def test_a_new_sampler_with_the_same_settings_does_not_retrace_but_new_shapes_do():
    log_prob = CountingTarget()
    fm.Sampler(log_prob, data=jnp.zeros(2), **TINY).run(jax.random.key(0), start())
    n_first = log_prob.n_traces
    fm.Sampler(log_prob, data=jnp.ones(2), **TINY).run(jax.random.key(3), start())
    assert log_prob.n_traces == n_first
    fm.Sampler(log_prob, data=jnp.zeros(3), **TINY).run(jax.random.key(0), start(n_dim=3))
    assert log_prob.n_traces > n_first


def test_a_warm_start_continues_from_the_trained_model_and_adapted_kernel():
    def log_prob(x):
        return -0.5 * jnp.sum((x / 3.0) ** 2)

    sampler = fm.Sampler(log_prob, **{**TINY, "n_training_loops": 3})
    cold = sampler.run(jax.random.key(0), start())
    warm = sampler.run(jax.random.key(1), warm_start=cold)  # starts from cold's last draws
    # the first warm loop samples with the adapted step size, not the kernel's initial one
    assert warm.history.step_size[0] != pytest.approx(fm.MALA().step_size)
    assert abs(warm.history.step_size[0] / cold.history.step_size[-1] - 1) < 0.5
    # ... and proposes from the trained model: its first-loop global acceptance is the
    # trained model's, far above that of a fresh model on this wide target
    fresh = sampler.run(jax.random.key(1), start())
    assert warm.history.global_acceptance[0] > fresh.history.global_acceptance[0] + 0.1


def test_save_load_continue_is_bit_identical(tmp_path):
    def log_prob(x):
        return -0.5 * jnp.sum((x["a"] / 2) ** 2) - 0.5 * jnp.sum(x["b"] ** 2)

    sampler = fm.Sampler(log_prob, n_chains=N_CHAINS, **TINY)
    x0 = {"a": jnp.zeros((N_CHAINS, 2)), "b": jnp.ones((N_CHAINS,))}
    result = sampler.run(jax.random.key(0), x0)
    loaded = fm.load_result(result.save(tmp_path / "run"))
    for name in ("flat_samples", "log_prob", "is_global", "flat_warmup_samples"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))
    assert loaded.global_model == result.global_model and loaded.local_kernel == result.local_kernel
    jax.tree.map(np.testing.assert_array_equal, loaded.model_params, result.model_params)
    jax.tree.map(np.testing.assert_array_equal, loaded.samples, result.samples)
    assert list(loaded.history.decision) == list(result.history.decision)
    assert repr(loaded.diagnostics) == repr(result.diagnostics)  # (NaN != NaN)
    in_memory = sampler.run(jax.random.key(1), warm_start=result)
    from_disk = sampler.run(jax.random.key(1), warm_start=loaded)
    np.testing.assert_array_equal(from_disk.flat_samples, in_memory.flat_samples)
    np.testing.assert_array_equal(from_disk.log_prob, in_memory.log_prob)


def standard_normal(x):
    return -0.5 * jnp.sum(x**2)


@pytest.fixture(scope="module")
def standard_run():
    sampler = fm.Sampler(standard_normal, **TINY)
    return sampler, sampler.run(jax.random.key(0), start())


def test_a_loaded_model_rebuilds_and_evaluates_like_the_trained_one(tmp_path, standard_run):
    _, result = standard_run
    loaded = fm.load_result(result.save(tmp_path / "run"))
    x = np.asarray(start(seed=4))
    model = loaded.global_model
    assert model == result.global_model and model is not result.global_model
    np.testing.assert_array_equal(
        jax.vmap(model.log_prob, (None, 0))(loaded.model_params, x),
        jax.vmap(result.global_model.log_prob, (None, 0))(result.model_params, x),
    )


def test_saved_results_refuse_a_newer_format_a_wrong_directory_and_a_misfit(tmp_path, standard_run):
    sampler, result = standard_run
    directory = result.save(tmp_path / "run")
    with pytest.raises(ValueError, match="not a saved flowmc_like result"):
        fm.load_result(tmp_path)
    info = json.loads((directory / saved.RESULT_JSON).read_text())
    info["format_version"] = saved.FORMAT_VERSION + 1
    (directory / saved.RESULT_JSON).write_text(json.dumps(info))
    with pytest.raises(ValueError, match="newer than"):
        fm.load_result(directory)
    other = fm.Sampler(standard_normal, global_model=fm.RQSpline(), **TINY)
    with pytest.raises(ValueError, match="warm_start"):
        other.run(jax.random.key(0), start(), warm_start=result)
    with pytest.raises(ValueError, match="warm_start"):  # same model, another n_dim
        sampler.run(jax.random.key(0), start(n_dim=3), warm_start=result)
    with pytest.raises(TypeError, match="warm_start must be a SamplerResult"):
        sampler.run(jax.random.key(0), start(), warm_start={"model_params": 1})
    with pytest.raises(TypeError, match="initial_position is required"):
        sampler.run(jax.random.key(0))
