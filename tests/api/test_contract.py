"""One test per promise of docs/spec/API.md (continuous half)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from tests.conftest import TINY, standard_normal


def _run(log_prob=standard_normal, x0=None, **overrides):
    config = {**TINY, **overrides}
    if x0 is None:
        x0 = jnp.zeros((4, 2))
    return fm.Sampler(log_prob, **config).run(jax.random.key(0), x0)


def test_public_names():
    for name in ["Sampler", "MALA", "HMC", "RandomWalk", "RQSpline", "RealNVP"]:
        assert name in fm.__all__ and hasattr(fm, name)


def test_result_fields_and_shapes():
    result = _run(n_dim=2, n_chains=4)
    n_draws = 2 * (5 + 5)
    assert result.samples.shape == (4, n_draws, 2)
    assert result.log_prob.shape == (4, n_draws)
    assert result.warmup_samples.shape == (4, n_draws, 2)
    assert result.local_acceptance.shape == (4,)
    assert result.global_acceptance.shape == (4,)
    assert isinstance(result.samples, np.ndarray)
    history = result.history
    assert history.loss.shape == (4, 2)
    assert history.is_training.tolist() == [True, True, False, False]
    assert np.isfinite(history.loss[:2]).all() and np.isnan(history.loss[2:]).all()
    assert set(result.timings) == {"compile", "training", "production", "variational", "total"}
    # log_prob field matches the target at the draws
    np.testing.assert_allclose(
        result.log_prob, -0.5 * (result.samples**2).sum(-1), rtol=1e-5, atol=1e-5
    )


def test_is_global_marks_global_draws_and_local_only_runs():
    result = _run()
    stats = result.is_global[0].reshape(2, 10)
    assert not stats[:, :5].any() and stats[:, 5:].all()
    local_only = _run(global_model=None)
    assert local_only.samples.shape == (4, 10, 2)
    assert not local_only.is_global.any()
    assert np.isnan(local_only.global_acceptance).all()


def test_defaults_infer_sizes():
    result = fm.Sampler(
        standard_normal,
        progress_bar=False,
        n_training_loops=1,
        n_production_loops=1,
        n_local_steps=2,
        n_global_steps=2,
        n_epochs=1,
    ).run(jax.random.key(1), jnp.ones((3, 2)))
    assert result.samples.shape == (3, 4, 2)


def test_data_argument_is_passed_through():
    def log_prob(x, data):
        return -0.5 * jnp.sum((x - data["mu"]) ** 2)

    result = _run(log_prob, data={"mu": jnp.array([3.0, -3.0])}, x0=jnp.ones((4, 2)) * 3)
    np.testing.assert_allclose(
        result.log_prob,
        -0.5 * ((result.samples - np.array([3.0, -3.0])) ** 2).sum(-1),
        rtol=1e-5,
        atol=1e-5,
    )


def test_pytree_positions_round_trip_and_arviz_names():
    def log_prob(p):
        return -0.5 * (p["mu"] ** 2 + jnp.sum(p["theta"] ** 2))

    x0 = {"mu": jnp.zeros(4), "theta": jnp.zeros((4, 3))}
    result = _run(log_prob, x0=x0)
    assert result.samples["mu"].shape == (4, 20)
    assert result.samples["theta"].shape == (4, 20, 3)
    idata = result.to_arviz()
    assert set(idata.posterior.data_vars) == {"mu", "theta"}
    assert idata.posterior["theta"].dims[:2] == ("chain", "draw")
    # the trained model as a density of the same pytrees
    approximation = result.approximation()
    draws, log_q = approximation.sample_and_log_prob(jax.random.key(1), 7)
    assert draws["mu"].shape == (7,) and draws["theta"].shape == (7, 3)
    np.testing.assert_allclose(approximation.log_prob(draws), log_q, atol=1e-5)
    flat = jnp.concatenate([draws["mu"][:, None], draws["theta"]], axis=-1)
    np.testing.assert_allclose(approximation.log_prob_unconstrained(flat), log_q, atol=1e-5)


def _group_names(idata):
    # arviz 0.x InferenceData has groups(); arviz 1.x returns an xarray DataTree.
    return set(idata.children) if hasattr(idata, "children") else set(idata.groups())


def test_to_arviz_groups_dims_and_summary():
    result = _run()
    idata = result.to_arviz()
    assert {"posterior", "sample_stats", "warmup_posterior"} <= _group_names(idata)
    assert idata.posterior["x"].shape == (4, 20, 2)
    assert set(idata.sample_stats.data_vars) >= {"lp", "accepted", "is_global"}
    named = result.to_arviz(var_names=["a", "b"])
    assert set(named.posterior.data_vars) == {"a", "b"}
    summary = result.summary()
    for column in ["mean", "sd", "ess_bulk", "ess_tail", "r_hat"]:
        assert column in summary.columns


def test_same_key_same_result_and_sampler_not_mutated():
    sampler = fm.Sampler(standard_normal, **TINY)
    before = repr(sampler)
    x0 = jnp.zeros((4, 2))
    first = sampler.run(jax.random.key(3), x0)
    second = sampler.run(jax.random.key(3), x0)
    np.testing.assert_array_equal(first.flat_samples, second.flat_samples)
    np.testing.assert_array_equal(first.history.loss, second.history.loss)
    assert repr(sampler) == before
    third = sampler.run(jax.random.key(4), x0)
    assert not np.array_equal(first.flat_samples, third.flat_samples)


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "x0, match",
    [
        (
            jnp.zeros((4, 3)),
            r"initial_position has shape \(4, 3\); expected \(n_chains, n_dim\) = \(4, 2\)",
        ),
        (jnp.zeros((5, 2)), r"initial_position has shape \(5, 2\); expected .* \(4, 2\)"),
        (jnp.zeros((4,)), r"initial_position has shape \(4,\)"),
        (jnp.zeros((4, 2, 1)), r"initial_position has shape \(4, 2, 1\)"),
    ],
)
def test_wrong_initial_shape(x0, match):
    sampler = fm.Sampler(standard_normal, n_dim=2, n_chains=4, **TINY)
    with pytest.raises(ValueError, match=match):
        sampler.run(jax.random.key(0), x0)


def test_wrong_initial_dtype():
    sampler = fm.Sampler(standard_normal, n_dim=2, n_chains=4, **TINY)
    with pytest.raises(TypeError, match="initial_position must hold floating-point"):
        sampler.run(jax.random.key(0), jnp.zeros((4, 2), dtype=jnp.int32))


def test_nan_in_initial_position():
    with pytest.raises(
        ValueError, match=r"initial_position holds NaN or inf values for chains \[1\]"
    ):
        _run(x0=jnp.zeros((4, 2)).at[1, 0].set(jnp.nan))


def test_nonfinite_log_prob_everywhere():
    with pytest.raises(ValueError, match="log_prob is not finite at any initial_position"):
        _run(lambda x: -jnp.inf * jnp.sum(x**2), x0=jnp.ones((4, 2)))


def test_nonfinite_log_prob_at_some_starts_warns_and_recovers():
    def log_prob(x):
        return jnp.where(x[0] > 10.0, jnp.nan, -0.5 * jnp.sum(x**2))

    x0 = jnp.zeros((4, 2)).at[2, 0].set(20.0)
    with pytest.warns(UserWarning, match=r"chains \[2\]"):
        result = _run(log_prob, x0=x0)
    assert np.isfinite(result.log_prob).all()


def test_non_scalar_log_prob():
    with pytest.raises(ValueError, match="log_prob must return a scalar"):
        _run(lambda x: -0.5 * x**2)


def test_log_prob_that_fails_on_one_position():
    with pytest.raises(TypeError, match="log_prob could not be evaluated"):
        _run(lambda x: x @ jnp.ones(7))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_dim": 0}, ValueError, "n_dim must be an integer >= 1; got 0"),
        ({"n_chains": -3}, ValueError, "n_chains must be an integer >= 1; got -3"),
        ({"n_chains": 2.5}, TypeError, "n_chains must be an integer >= 1; got 2.5"),
        ({"n_training_loops": 0}, ValueError, "n_training_loops must be an integer >= 1"),
        ({"n_production_loops": -1}, ValueError, "n_production_loops"),
        ({"n_local_steps": -1}, ValueError, "n_local_steps must be an integer >= 0"),
        ({"n_local_steps": 0, "global_model": None}, ValueError, "n_local_steps=0 runs global"),
        ({"n_local_steps": 0, "n_global_steps": 0}, ValueError, "n_local_steps \\+ n_global"),
        ({"n_global_steps": -1}, ValueError, "n_global_steps must be an integer >= 0"),
        ({"n_epochs": 0}, ValueError, "n_epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be a finite number > 0"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
        ({"reverse_kl_weight": -1.0}, ValueError, "reverse_kl_weight must be a finite number >= 0"),
        ({"reverse_kl_weight": "high"}, TypeError, "reverse_kl_weight"),
        ({"local_kernel": "mala"}, TypeError, "local_kernel must be a flowmc_like kernel"),
        ({"global_model": "flow"}, TypeError, "global_model must be a flowmc_like model"),
        ({"progress_bar": "yes"}, TypeError, "progress_bar must be a bool"),
    ],
)
def test_bad_sampler_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fm.Sampler(standard_normal, **kwargs)


def test_log_prob_not_callable():
    with pytest.raises(TypeError, match=r"log_prob must be a callable; got 3\.0"):
        fm.Sampler(3.0, n_dim=2)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: fm.MALA(step_size=0.0), "step_size"),
        (lambda: fm.MALA(step_size=-1.0), "step_size"),
        (lambda: fm.HMC(step_size=-0.1), "step_size"),
        (lambda: fm.HMC(step_size=0.1, n_leapfrog=0), "n_leapfrog"),
        (lambda: fm.RandomWalk(scale=0.0), "scale"),
    ],
)
def test_bad_kernel_settings(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_key():
    sampler = fm.Sampler(standard_normal, **TINY)
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        sampler.run(0, jnp.zeros((4, 2)))


def test_bad_input_raises_before_compilation(monkeypatch):
    compiled = []
    original = jax.jit

    def spy(*args, **kwargs):
        compiled.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(jax, "jit", spy)
    sampler = fm.Sampler(standard_normal, n_dim=2, n_chains=4, **TINY)
    with pytest.raises(ValueError):
        sampler.run(jax.random.key(0), jnp.zeros((4, 3)))
    with pytest.raises(ValueError):
        sampler.run(jax.random.key(0), jnp.zeros((4, 2)).at[0, 0].set(jnp.inf))
    assert compiled == []


@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan")])
def test_bad_validation_fraction(value):
    with pytest.raises(ValueError, match="validation_fraction"):
        fm.Sampler(lambda x: -0.5 * jnp.sum(x**2), n_dim=2, validation_fraction=value)
