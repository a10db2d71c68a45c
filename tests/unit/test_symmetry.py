"""The run decides `Autoregressive(symmetric=None)` from the target's invariance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.symmetry import is_relabelling_invariant, resolve_symmetric


def _flat(log_prob):
    return lambda s, data: log_prob(s)


def _starts(k, n_dim=16, n=4):
    return np.random.default_rng(1).integers(0, k, (n, n_dim)).astype(np.int32)


def test_ising_and_potts_are_invariant_a_field_breaks_it():
    ising = fm.make_ising(4, 0.4)
    potts = fm.make_potts(4, 0.7, 3)
    assert is_relabelling_invariant(_flat(ising.log_prob), None, _starts(2), 2)
    assert is_relabelling_invariant(_flat(potts.log_prob), None, _starts(3), 3)

    def with_field(s):
        return ising.log_prob(s) + 0.01 * jnp.sum(2.0 * s - 1.0)

    assert not is_relabelling_invariant(_flat(with_field), None, _starts(2), 2)


def test_data_reaches_the_check():
    def log_prob(s, data):
        return data * jnp.sum(s)  # invariant only when data == 0

    assert is_relabelling_invariant(log_prob, jnp.float32(0.0), _starts(2), 2)
    assert not is_relabelling_invariant(log_prob, jnp.float32(1.0), _starts(2), 2)


def test_resolve_keeps_an_explicit_choice_and_says_what_it_chose():
    ising = _flat(fm.make_ising(4, 0.4).log_prob)
    explicit = fm.Autoregressive(2, symmetric=False)
    assert resolve_symmetric(explicit, ising, None, _starts(2)) == (explicit, ())
    model, choices = resolve_symmetric(fm.Autoregressive(2), ising, None, _starts(2))
    assert model.symmetric is True
    assert choices == (
        "the target is invariant under the global spin flip: Autoregressive(symmetric=True)",
    )
    assert resolve_symmetric(None, ising, None, _starts(2)) == (None, ())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a short run: few draws
def test_a_run_resolves_the_model_reports_it_and_warm_starts_from_it():
    target = fm.make_ising(4, 0.4)
    sampler = fm.Sampler(
        target.log_prob,
        n_chains=8,
        local_kernel=fm.SiteFlip(2, delta_log_prob=target.delta_log_prob),
        global_model=fm.Autoregressive(2, hidden_sizes=(8,)),
        n_training_loops=1,
        n_production_loops=1,
        n_variational_steps=50,
        progress_bar=False,
    )
    result = sampler.run(jax.random.key(0), jnp.asarray(_starts(2, n=8)))
    assert result.global_model.symmetric is True
    assert sampler.global_model.symmetric is None  # the sampler is not modified
    assert result.diagnostics.choices[0].startswith("the target is invariant")
    assert result.diagnostics.choices[1].startswith("variational pre-training: 50 reverse-KL")
    again = sampler.run(jax.random.key(1), warm_start=result)
    assert again.global_model == result.global_model
    assert again.timings["variational"] == 0.0  # the warm model is not pre-trained again
    assert len(again.diagnostics.choices) == 0
