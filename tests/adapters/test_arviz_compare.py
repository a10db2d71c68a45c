"""Model comparison in ArviZ on numpyro models fitted here, against numpyro's NUTS.

``to_arviz()`` of a `fm.from_numpyro` target has a ``log_likelihood`` group (per
observation) and ``observed_data``, so ``az.loo``, ``az.waic`` and ``az.compare`` work; the
PSIS-LOO of each model and the difference between them agree with NUTS's within 2 SE.
"""

import warnings

import jax
import numpy as np
import pytest

import flowmc_like as fm

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
    return result.to_arviz()


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
    return az.from_numpyro(mcmc)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_loo_waic_and_compare_agree_with_numpyro_nuts():
    ours = {"linear": _ours(linear), "constant": _ours(constant)}
    theirs = {"linear": _nuts(linear), "constant": _nuts(constant)}
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
