"""Model comparison in ArviZ on numpyro models fitted here, against numpyro's NUTS.

``to_arviz()`` of a `fm.from_numpyro` target has a ``log_likelihood`` group (per
observation) and ``observed_data``, so ``az.loo``, ``az.waic`` and ``az.compare`` work; the
PSIS-LOO of each model and the difference between them agree with NUTS's within 2 SE.
`result.posterior_predictive` replicates the observations; their mean agrees with the
posterior predictive of NUTS's draws.
"""

import warnings

import jax
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.exporters.arviz import ess_bulk

numpyro = pytest.importorskip("numpyro")
az = pytest.importorskip("arviz")
dist = numpyro.distributions

pytestmark = pytest.mark.statistical

RNG = np.random.default_rng(0)
X = RNG.normal(size=40)
Y = 0.5 + 0.8 * X + RNG.normal(0.0, 0.7, size=40)
SCHEDULE = dict(
    n_chains=16,
    n_training_loops=6,
    n_production_loops=6,
    n_local_steps=20,
    n_global_steps=20,
    progress_bar=False,
)


def linear(x, y):
    a = numpyro.sample("a", dist.Normal(0.0, 2.0))
    b = numpyro.sample("b", dist.Normal(0.0, 2.0))
    s = numpyro.sample("s", dist.HalfNormal(2.0))
    with numpyro.plate("n", len(x)):
        numpyro.sample("y", dist.Normal(a + b * x, s), obs=y)


def constant(x, y):
    a = numpyro.sample("a", dist.Normal(0.0, 2.0))
    s = numpyro.sample("s", dist.HalfNormal(2.0))
    with numpyro.plate("n", len(x)):
        numpyro.sample("y", dist.Normal(a + 0.0 * x, s), obs=y)


def _ours(model):
    target = fm.from_numpyro(model, X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a short run
        result = fm.Sampler(target, **SCHEDULE).run(
            jax.random.key(0), target.initial_position(jax.random.key(1), 16)
        )
    return result


def _nuts(model):
    from numpyro.infer import MCMC, NUTS

    mcmc = MCMC(
        NUTS(model),
        num_warmup=500,
        num_samples=1000,
        num_chains=4,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(2), X, Y)
    return mcmc


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_loo_waic_and_compare_agree_with_numpyro_nuts():
    results = {"linear": _ours(linear), "constant": _ours(constant)}
    fits = {"linear": _nuts(linear), "constant": _nuts(constant)}
    ours = {name: result.to_arviz() for name, result in results.items()}
    theirs = {name: az.from_numpyro(mcmc) for name, mcmc in fits.items()}
    idata = ours["linear"]
    assert idata.log_likelihood["y"].shape == (16, idata.posterior.sizes["draw"], 40)
    np.testing.assert_allclose(idata.observed_data["y"], Y)
    for name in ours:
        mine, reference = az.loo(ours[name]), az.loo(theirs[name])
        z = (mine.elpd_loo - reference.elpd_loo) / np.hypot(mine.se, reference.se)
        assert abs(z) < 2, (name, mine, reference)
        assert np.isfinite(az.waic(ours[name]).elpd_waic)
    compared, expected = az.compare(ours), az.compare(theirs)
    assert list(compared.index) == list(expected.index) == ["linear", "constant"]
    difference = compared.loc["constant", "elpd_diff"] - expected.loc["constant", "elpd_diff"]
    assert abs(difference) < 2 * expected.loc["constant", "dse"], (compared, expected)

    # posterior predictive: the mean over observations of each replicated data set
    replicated = results["linear"].posterior_predictive(jax.random.key(3))["y"]
    assert replicated.shape == (16, results["linear"].n_draws, 40)
    with_ppc = results["linear"].to_arviz(posterior_predictive={"y": replicated})
    assert with_ppc.posterior_predictive["y"].shape == replicated.shape
    samples = fits["linear"].get_samples(group_by_chain=True)
    flat_samples = {name: value.reshape(-1, *value.shape[2:]) for name, value in samples.items()}
    nuts_replicated = numpyro.infer.Predictive(linear, flat_samples)(jax.random.key(4), X, None)
    nuts_means = np.asarray(nuts_replicated["y"]).mean(axis=-1).reshape(4, -1)
    our_means = replicated.mean(axis=-1)

    def mean_and_se(draws):
        ess = ess_bulk(draws[..., None])[0]
        return draws.mean(), draws.std() / np.sqrt(ess)

    (mine, mine_se), (reference, reference_se) = mean_and_se(our_means), mean_and_se(nuts_means)
    assert abs(mine - reference) < 4 * np.hypot(mine_se, reference_se), (mine, reference)
