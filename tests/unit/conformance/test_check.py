"""check_kernel / check_model pass on every built-in kernel and model, and catch broken ones."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest
from jax.scipy.stats import norm

import flowmc_like as fm
from flowmc_like._types import Space
from flowmc_like.conformance import (
    KERNEL_CHECKS,
    ConformanceError,
    ConformanceReport,
    check_kernel,
    check_model,
)
from flowmc_like.models import AbstractGlobalModel, ModelParams

# --------------------------------------------------------------------------- kernels


@pytest.mark.parametrize(
    ("kernel", "n_passed"),
    [
        pytest.param(fm.MALA(step_size=0.5), 6, id="mala"),
        pytest.param(fm.HMC(step_size=0.2, n_leapfrog=5), 6, id="hmc"),
        pytest.param(fm.RandomWalk(scale=0.5), 6, id="random_walk"),
        pytest.param(fm.SiteFlip(n_categories=2), 4, id="site_flip_k2"),
        pytest.param(fm.SiteFlip(n_categories=3, mode="gibbs"), 4, id="site_flip_k3_gibbs"),
    ],
)
def test_check_kernel_passes_on_built_in_kernels(kernel, n_passed):
    report = check_kernel(kernel)
    assert isinstance(report, ConformanceReport)
    assert len(report.passed) == n_passed
    assert "detailed_balance" in report.passed and "rejects_non_finite" in report.passed
    assert set(report.passed) | {name for name, _ in report.skipped} == set(KERNEL_CHECKS)
    assert type(kernel).__name__ in str(report)


@dataclasses.dataclass(frozen=True)
class MALAWithoutReverseDensity(fm.MALA):
    """Bug: the ratio omits log q(x | x')."""

    def log_acceptance_ratio(self, params, current, proposed):
        log_q_forward = self.proposal_log_density(
            params, proposed.position, current.position, current.grad
        )
        return proposed.log_prob - current.log_prob - log_q_forward


@dataclasses.dataclass(frozen=True)
class MALAWithoutHastings(fm.MALA):
    """Bug: both proposal densities are missing (the Langevin proposal treated as symmetric)."""

    def log_acceptance_ratio(self, params, current, proposed):
        return proposed.log_prob - current.log_prob


def test_check_kernel_catches_a_missing_proposal_density_term():
    with pytest.raises(ConformanceError) as caught:
        check_kernel(MALAWithoutReverseDensity(step_size=0.5))
    assert isinstance(caught.value, AssertionError)
    assert caught.value.check in KERNEL_CHECKS
    # Even with the check that fails first skipped, detailed balance catches it.
    with pytest.raises(ConformanceError, match="detailed_balance") as caught:
        check_kernel(MALAWithoutReverseDensity(step_size=0.5), skip=["small_step_acceptance"])
    assert caught.value.check == "detailed_balance"
    assert "standard errors" in caught.value.details


def test_check_kernel_catches_a_missing_hastings_correction():
    with pytest.raises(ConformanceError, match=r"detailed_balance: .* z = "):
        check_kernel(MALAWithoutHastings(step_size=0.3))


class HalfDeltaSiteFlip(fm.SiteFlip):
    """Bug: Metropolis acceptance with min(1, exp(Delta / 2))."""

    def log_prob_differences(self, state, site, categories, log_prob_fn):
        return 0.5 * super().log_prob_differences(state, site, categories, log_prob_fn)


def test_check_kernel_catches_a_wrong_discrete_acceptance():
    with pytest.raises(ConformanceError, match=r"detailed_balance: .*chi-square"):
        check_kernel(HalfDeltaSiteFlip(n_categories=2))


def test_check_kernel_arguments():
    with pytest.raises(ValueError, match="unknown check names"):
        check_kernel(fm.RandomWalk(), skip=["balance"])
    with pytest.raises(ValueError, match="delta_log_prob"):
        check_kernel(fm.SiteFlip(delta_log_prob=lambda s, i, k: 0.0))
    report = check_kernel(fm.RandomWalk(scale=0.5), skip=KERNEL_CHECKS)
    assert report.passed == ()


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    ("model", "n_passed"),
    [
        pytest.param(fm.RealNVP(n_layers=4, hidden_sizes=(32, 32)), 7, id="real_nvp"),
        pytest.param(fm.RQSpline(n_layers=4, hidden_sizes=(32, 32), n_bins=8), 7, id="rq_spline"),
        pytest.param(fm.Autoregressive(n_categories=2, hidden_sizes=(16,)), 6, id="ar_k2"),
        pytest.param(
            fm.Autoregressive(n_categories=3, hidden_sizes=(16,), symmetric=True), 6, id="ar_k3"
        ),
    ],
)
def test_check_model_passes_on_built_in_models(model, n_passed):
    report = check_model(model)
    assert len(report.passed) == n_passed
    assert "normalized" in report.passed and "fit_decreases_loss" in report.passed
    if model.space is Space.CONTINUOUS:
        assert "change_of_variables" in report.passed
    else:
        assert "sample_frequencies" in report.passed


@dataclasses.dataclass(frozen=True)
class Affine(AbstractGlobalModel):
    """x = shift + exp(log_scale) * z, elementwise; ``sign = -1`` flips both log-dets (a bug)."""

    sign: float = 1.0
    space = Space.CONTINUOUS

    def init(self, key, n_dim):
        zeros = jnp.zeros(n_dim)
        return ModelParams({"shift": zeros, "log_scale": zeros}, None)

    def prepare(self, params, data):
        return params

    def forward_and_log_det(self, params, z):
        shift, log_scale = params.trainable["shift"], params.trainable["log_scale"]
        return shift + jnp.exp(log_scale) * z, self.sign * jnp.sum(log_scale)

    def inverse_and_log_det(self, params, x):
        shift, log_scale = params.trainable["shift"], params.trainable["log_scale"]
        return (x - shift) * jnp.exp(-log_scale), -self.sign * jnp.sum(log_scale)

    def log_prob(self, params, x):
        z, log_det = self.inverse_and_log_det(params, x)
        return jnp.sum(norm.logpdf(z)) + log_det

    def sample_and_log_prob(self, params, key):
        z = jax.random.normal(key, params.trainable["shift"].shape)
        x, log_det = self.forward_and_log_det(params, z)
        return x, jnp.sum(norm.logpdf(z)) - log_det


def test_check_model_passes_on_a_correct_affine_flow():
    report = check_model(Affine())
    assert "change_of_variables" in report.passed and "normalized" in report.passed


def test_check_model_catches_a_log_det_with_the_wrong_sign():
    # log_prob, sampling and the two log-dets agree with each other; only the sign is wrong.
    with pytest.raises(ConformanceError) as caught:
        check_model(Affine(sign=-1.0))
    assert caught.value.check in ("normalized", "change_of_variables")
    with pytest.raises(ConformanceError, match=r"change_of_variables: inverse log-det vs"):
        check_model(Affine(sign=-1.0), skip=["normalized"])


@dataclasses.dataclass(frozen=True)
class UnnormalizedAutoregressive(fm.Autoregressive):
    """Bug: log q is off by a constant (consistently in log_prob and in sampling)."""

    def log_prob(self, params, x):
        return super().log_prob(params, x) + 0.1

    def sample_and_log_prob(self, params, key):
        x, log_q = super().sample_and_log_prob(params, key)
        return x, log_q + 0.1


def test_check_model_catches_an_unnormalized_discrete_model():
    with pytest.raises(ConformanceError, match=r"normalized: exp\(log_prob\) summed over all"):
        check_model(UnnormalizedAutoregressive(n_categories=2, hidden_sizes=(16,)))


def test_check_model_arguments():
    with pytest.raises(ValueError, match="unknown check names"):
        check_model(Affine(), skip=["normalised"])
    with pytest.raises(ValueError, match=r"data has shape \(10,\)"):
        check_model(Affine(), n_dim=2, data=jnp.zeros(10))
    report = check_model(Affine(), n_dim=3)
    assert ("normalized", "integrates on a 2-D grid; n_dim = 3") in report.skipped
