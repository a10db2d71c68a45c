"""One test per promise of docs/spec/API.md about discrete targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.lattice import make_ising, make_potts
from tests.conftest import TINY

ISING = make_ising(L=3, beta=0.3)
POTTS = make_potts(L=3, beta=0.5, n_categories=3)
N_CHAINS = 4


def _spins(n_categories=2, n_dim=9, seed=0):
    values = np.random.default_rng(seed).integers(0, n_categories, (N_CHAINS, n_dim))
    return jnp.asarray(values, jnp.int32)


def _run(log_prob=ISING.log_prob, x0=None, **overrides):
    """A tiny discrete run; pre-training off unless asked for (tests/unit/training covers it)."""
    config = {
        **TINY,
        "n_variational_steps": 0,
        "local_kernel": fm.SiteFlip(n_categories=2),
        "global_model": fm.Autoregressive(n_categories=2, hidden_sizes=(8,)),
        **overrides,
    }
    return fm.Sampler(log_prob, **config).run(jax.random.key(0), _spins() if x0 is None else x0)


def test_public_names():
    for name in ["SiteFlip", "Autoregressive"]:
        assert name in fm.__all__ and hasattr(fm, name)


def test_discrete_run_through_the_same_result_and_arviz_path():
    result = _run(n_variational_steps=None)  # the default: pre-trained, then the loops
    n_draws = 2 * (5 + 5)
    assert result.samples.shape == (N_CHAINS, n_draws, 9)
    assert result.samples.dtype == np.int32
    assert set(np.unique(result.samples)) <= {0, 1}
    assert result.warmup_samples.shape == (N_CHAINS, n_draws, 9)
    assert result.log_prob.dtype == jnp.result_type(float)  # float64 under jax_enable_x64
    np.testing.assert_allclose(
        result.log_prob, np.asarray(jax.vmap(jax.vmap(ISING.log_prob))(result.samples)), atol=1e-5
    )
    assert result.local_acceptance.shape == (N_CHAINS,)
    assert np.all((result.global_acceptance >= 0) & (result.global_acceptance <= 1))
    assert np.isfinite(result.history.loss[:2]).all()
    assert np.isnan(result.history.step_size).all()  # SiteFlip has no step size
    stats = result.is_global[0].reshape(2, 10)
    assert not stats[:, :5].any() and stats[:, 5:].all()
    idata = result.to_arviz()
    assert {"posterior", "sample_stats", "warmup_posterior"} <= set(idata.groups())
    assert idata.posterior["x"].shape == (N_CHAINS, n_draws, 9)
    summary = result.summary()
    assert {"mean", "sd", "ess_bulk", "ess_tail", "r_hat"} <= set(summary.columns)


@pytest.mark.parametrize("mode", ["metropolis", "gibbs"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_potts_with_each_mode_and_symmetry(mode, symmetric):
    result = _run(
        POTTS.log_prob,
        _spins(3),
        local_kernel=fm.SiteFlip(3, mode=mode, delta_log_prob=POTTS.delta_log_prob),
        global_model=fm.Autoregressive(3, hidden_sizes=(8,), symmetric=symmetric),
    )
    assert set(np.unique(result.samples)) <= {0, 1, 2}
    np.testing.assert_allclose(
        result.log_prob, np.asarray(jax.vmap(jax.vmap(POTTS.log_prob))(result.samples)), atol=1e-5
    )


def test_local_only_and_global_only():
    local_only = _run(global_model=None)
    assert local_only.samples.shape == (N_CHAINS, 10, 9)
    assert np.isnan(local_only.global_acceptance).all()
    global_only = _run(n_local_steps=0)
    assert global_only.samples.shape == (N_CHAINS, 10, 9)
    assert global_only.is_global.all()
    assert np.isnan(global_only.local_acceptance).all()


def test_reverse_kl_term_runs_and_keeps_the_chain_exact():
    result = _run(reverse_kl_weight=10.0)
    assert np.isfinite(result.history.loss[:2]).all()
    np.testing.assert_allclose(
        result.log_prob, np.asarray(jax.vmap(jax.vmap(ISING.log_prob))(result.samples)), atol=1e-5
    )


def test_defaults_follow_the_space():
    sampler = fm.Sampler(POTTS.log_prob, local_kernel=fm.SiteFlip(3))
    assert sampler.global_model == fm.Autoregressive(n_categories=3)
    sampler = fm.Sampler(POTTS.log_prob, global_model=fm.Autoregressive(3))
    assert sampler.local_kernel == fm.SiteFlip(n_categories=3)
    sampler = fm.Sampler(lambda x: -jnp.sum(x**2))
    assert isinstance(sampler.local_kernel, fm.MALA) and isinstance(
        sampler.global_model, fm.RealNVP
    )


def test_pytree_of_integer_leaves():
    x0 = {"spins": _spins().reshape(N_CHAINS, 3, 3)}
    result = fm.Sampler(
        lambda s: ISING.log_prob(s["spins"].reshape(-1)),
        **TINY,
        local_kernel=fm.SiteFlip(2),
        global_model=fm.Autoregressive(2, hidden_sizes=(8,)),
        n_variational_steps=0,
    ).run(jax.random.key(0), x0)
    assert result.samples["spins"].shape == (N_CHAINS, 20, 3, 3)
    assert result.samples["spins"].dtype == np.int32
    assert "spins" in result.to_arviz().posterior


# --- Refused with a clear message, before compilation ----------------------------------------


@pytest.mark.parametrize(
    "kernel, model",
    [
        (fm.MALA(), fm.Autoregressive(2)),
        (fm.HMC(), fm.Autoregressive(2)),
        (fm.SiteFlip(2), fm.RealNVP()),
        (fm.SiteFlip(2), fm.RQSpline()),
    ],
)
def test_kernel_and_model_of_different_spaces_are_refused(kernel, model):
    expected = r"must work on the same space.*; got local_kernel \w+ on a"
    with pytest.raises(ValueError, match=expected):
        fm.Sampler(ISING.log_prob, local_kernel=kernel, global_model=model)


def test_category_mismatch_is_refused():
    expected = "got local_kernel n_categories=3, global_model n_categories=2"
    with pytest.raises(ValueError, match=expected):
        fm.Sampler(ISING.log_prob, local_kernel=fm.SiteFlip(3), global_model=fm.Autoregressive(2))


def test_float_positions_are_refused_for_a_discrete_kernel():
    with pytest.raises(TypeError, match=r"must hold integers in \[0, 2\) .* got dtype float32"):
        _run(x0=jnp.zeros((N_CHAINS, 9), jnp.float32))


def test_bool_positions_are_refused():
    with pytest.raises(TypeError, match="must hold integers"):
        _run(x0=jnp.zeros((N_CHAINS, 9), bool))


def test_integer_positions_are_refused_for_a_continuous_kernel():
    with pytest.raises(TypeError, match="floating-point values for a continuous kernel"):
        fm.Sampler(lambda x: -jnp.sum(x**2), **TINY).run(
            jax.random.key(0), jnp.zeros((4, 2), jnp.int32)
        )


@pytest.mark.parametrize("bad_value", [-1, 2, 7])
def test_values_outside_the_categories_are_refused(bad_value):
    x0 = _spins().at[2, 5].set(bad_value)
    with pytest.raises(ValueError, match=r"values outside \[0, 2\) .* chains \[2\]"):
        _run(x0=x0)


def test_delta_log_prob_that_disagrees_with_log_prob_is_refused():
    def wrong_delta(s, i, k):
        return 0.5 * ISING.delta_log_prob(s, i, k)

    with pytest.raises(ValueError, match="delta_log_prob disagrees with log_prob"):
        _run(local_kernel=fm.SiteFlip(2, delta_log_prob=wrong_delta))


def test_delta_log_prob_returning_a_vector_is_refused():
    with pytest.raises(ValueError, match=r"delta_log_prob.* must return a scalar"):
        _run(local_kernel=fm.SiteFlip(2, delta_log_prob=lambda s, i, k: jnp.zeros(3)))


@pytest.mark.parametrize(
    "factory, error, match",
    [
        (lambda: fm.Autoregressive(n_categories=1), ValueError, "n_categories"),
        (lambda: fm.Autoregressive(hidden_sizes=(0,)), ValueError, "hidden_sizes"),
        (lambda: fm.Autoregressive(symmetric="yes"), TypeError, "symmetric"),
        (lambda: fm.SiteFlip(n_categories=1), ValueError, "n_categories"),
        (lambda: fm.SiteFlip(mode="wolff"), ValueError, "mode"),
    ],
)
def test_bad_discrete_settings(factory, error, match):
    with pytest.raises(error, match=match):
        factory()
