"""Write the tutorial notebooks (without outputs) from the cell lists below.

Usage: ``python notebooks/build.py``. Each notebook reads ``FLOWMC_LIKE_NOTEBOOK_QUICK=1``
(set by the test that executes them) to run with small settings.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent

QUICK = '''import os

# The test suite runs every notebook with FLOWMC_LIKE_NOTEBOOK_QUICK=1: small settings, same code.
QUICK = os.environ.get("FLOWMC_LIKE_NOTEBOOK_QUICK") == "1"'''


def md(text: str) -> dict:
    """A markdown cell."""
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")}


def code(text: str) -> dict:
    """A code cell without outputs."""
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": text.strip("\n"),
    }


NOTEBOOKS: dict[str, list[dict]] = {}

NOTEBOOKS["01_quickstart.ipynb"] = [
    md("""
# Quickstart: a bimodal target

Two Gaussian modes far apart in 4 dimensions, with weights 1/2 each. A local sampler started
in one mode stays there; flowmc_like's flow proposals carry chains between the modes, so the
mode weights come out right.
"""),
    code(QUICK),
    code('''
import jax
import jax.numpy as jnp

import flowmc_like as fm


def log_prob(x):
    """Two unit Gaussians at -3 and +3 in every coordinate; x: (n_dim,) -> scalar."""
    return jnp.logaddexp(-0.5 * jnp.sum((x - 3) ** 2), -0.5 * jnp.sum((x + 3) ** 2))


n_chains, n_dim = 32, 4
x0 = jax.random.uniform(jax.random.key(1), (n_chains, n_dim), minval=-6, maxval=6)
schedule = dict(n_training_loops=5, n_production_loops=5) if QUICK else {}
sampler = fm.Sampler(log_prob, n_dim=n_dim, n_chains=n_chains, progress_bar=False, **schedule)
result = sampler.run(jax.random.key(0), x0)
result.samples.shape, result.timings
'''),
    md("""
The production draws are `(n_chains, n_draws, n_dim)`. How often were the flow's proposals
accepted, and what does ArviZ say?
"""),
    code("""
print("global acceptance:", result.global_acceptance.mean().round(3))
print("local acceptance: ", result.local_acceptance.mean().round(3))
result.summary()
"""),
    md("""
The exact mean of every coordinate is 0 and each mode holds half the mass. Assign every draw
to the nearer mode:
"""),
    code("""
in_positive_mode = result.samples.sum(axis=-1) > 0
print("weight of the +3 mode:", in_positive_mode.mean().round(3), "(exact 0.5)")
visited_both = in_positive_mode.any(axis=1) & (~in_positive_mode).any(axis=1)
print("chains that visited both modes:", int(visited_both.sum()), "of", n_chains)
"""),
    code("""
import matplotlib.pyplot as plt

flat = result.samples.reshape(-1, n_dim)
plt.figure(figsize=(4, 4))
plt.scatter(flat[:, 0], flat[:, 1], s=1, alpha=0.2)
plt.xlabel("x0")
plt.ylabel("x1")
plt.title("production draws")
plt.show()
"""),
    code("""
result.plot_diagnostics()
"""),
]

NOTEBOOKS["02_dual_moon_flows.ipynb"] = [
    md("""
# Dual moon: RealNVP, RQSpline, or local moves only

A ring of radius 2 whose mass sits in four lobes, one per quadrant: a target with four modes
separated by low-density arcs. We compare three samplers on the same 32 chains:
the default flow (`fm.RealNVP()`), a rational-quadratic spline flow (`fm.RQSpline()`), and
MALA alone (`global_model=None`). By symmetry each quadrant holds exactly 1/4 of the mass.
"""),
    code(QUICK),
    code('''
import time

import jax
import jax.numpy as jnp
import numpy as np

import flowmc_like as fm


def dual_moon(x):
    """Ring of radius 2 with four lobes; x: (2,) -> scalar, unnormalised."""
    r = jnp.sqrt(jnp.sum(x**2))
    ring = -0.5 * ((r - 2.0) / 0.1) ** 2
    lobes0 = jax.nn.logsumexp(-0.5 * ((x[0] - jnp.array([-3.0, 3.0])) / 0.8) ** 2)
    lobes1 = jax.nn.logsumexp(-0.5 * ((x[1] - jnp.array([-3.0, 3.0])) / 0.6) ** 2)
    return ring + lobes0 + lobes1


n_chains = 32
x0 = jax.random.uniform(jax.random.key(1), (n_chains, 2), minval=-5, maxval=5)
schedule = dict(n_training_loops=4, n_production_loops=4) if QUICK else {}
models = {"RealNVP": fm.RealNVP(), "RQSpline": fm.RQSpline(), "local only": None}
results = {}
for name, model in models.items():
    start = time.perf_counter()
    sampler = fm.Sampler(dual_moon, n_dim=2, n_chains=n_chains, global_model=model,
                         progress_bar=False, **schedule)
    results[name] = sampler.run(jax.random.key(0), x0)
    print(f"{name:10s} {time.perf_counter() - start:5.1f} s")
'''),
    md("""
Quadrant weights (exact: 0.25 each), R-hat and the smallest bulk ESS over the two coordinates:
"""),
    code("""
for name, result in results.items():
    x = result.samples
    quadrant = (x[..., 0] > 0).astype(int) + 2 * (x[..., 1] > 0)
    weights = np.bincount(quadrant.ravel(), minlength=4) / quadrant.size
    summary = result.summary()
    print(f"{name:10s} weights {np.round(weights, 3)}  max R-hat {summary['r_hat'].max():.3f}  "
          f"min ESS {summary['ess_bulk'].min():7.0f}  global acceptance "
          f"{np.nanmean(result.global_acceptance):.2f}")
"""),
    md("""
Without the flow, chains keep to the lobes they started near: the weights reflect the starting
points and R-hat is far above 1. With either flow, every chain visits every lobe.
"""),
    code("""
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True)
for ax, (name, result) in zip(axes, results.items(), strict=True):
    flat = result.samples.reshape(-1, 2)
    ax.scatter(flat[:, 0], flat[:, 1], s=1, alpha=0.1)
    ax.set_title(name)
    ax.set_aspect("equal")
plt.show()
"""),
]

NOTEBOOKS["03_ising_autoregressive.ipynb"] = [
    md("""
# The Ising model with an autoregressive proposal, against exact values

A 4 x 4 Ising model on the torus at the critical inverse temperature: 65,536 states, few
enough to enumerate, so the energy and magnetisation are known exactly. Single-site sweeps
(`fm.SiteFlip`) rarely flip the whole lattice; an exactly normalised autoregressive model
(`fm.Autoregressive`, symmetric under the global spin flip) proposes whole configurations.
"""),
    code(QUICK),
    code("""
import jax
import jax.numpy as jnp
import numpy as np

import flowmc_like as fm
from flowmc_like.exact import compute_observables, enumerate_lattice
from flowmc_like.lattice import BETA_C, make_ising

L = 4
target = make_ising(L, BETA_C)
exact = enumerate_lattice(L, n_categories=2, beta=BETA_C)
print("exact <E/N> =", exact.mean[0].round(5), "  <|m|> =", exact.mean[2].round(5))
"""),
    code("""
n_chains = 64
schedule = (
    dict(n_training_loops=4, n_production_loops=4) if QUICK
    else dict(n_training_loops=20, n_production_loops=20)
)
sampler = fm.Sampler(
    target.log_prob,
    n_dim=target.n_dim,
    n_chains=n_chains,
    local_kernel=fm.SiteFlip(n_categories=2, delta_log_prob=target.delta_log_prob),
    global_model=fm.Autoregressive(n_categories=2, hidden_sizes=(64,), symmetric=True),
    n_local_steps=10,
    n_global_steps=40,
    progress_bar=False,
    **schedule,
)
s0 = jax.random.bernoulli(jax.random.key(1), 0.5, (n_chains, target.n_dim)).astype(jnp.int32)
result = sampler.run(jax.random.key(0), s0)
print("global acceptance:", result.global_acceptance.mean().round(3))
"""),
    md("""
Compare each observable with its exact value, in units of the Monte Carlo standard error
(ArviZ's ESS of that observable):
"""),
    code("""
import arviz as az

observables = compute_observables(result.samples, exact)  # (n_chains, n_draws, 4)
names = ["E/N", "(E - <E>)^2", "|m|", "m"]
for k, name in enumerate(names):
    values = observables[..., k]
    ess = az.ess(values)
    mcse = values.std() / np.sqrt(ess)
    z = (values.mean() - exact.mean[k]) / mcse
    print(f"{name:12s} estimate {values.mean():9.5f}  exact {exact.mean[k]:9.5f}  "
          f"z {z:+5.2f}  ESS {ess:7.0f}")
"""),
    md("""
`z` is the error in standard errors: a correct sampler gives |z| below about 3 for each.
"""),
]

NOTEBOOKS["04_numpyro_adapter.ipynb"] = [
    md("""
# A numpyro model through `fm.from_numpyro`: eight schools

`fm.from_numpyro(model, *args, **kwargs)` turns a numpyro model and its data into a target on
the model's unconstrained space (`tau > 0` becomes `log tau`), with the map back: the result
and its ArviZ export use the model's own variable names and constrained values.
"""),
    code(QUICK),
    code('''
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

import flowmc_like as fm

y = jnp.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma = jnp.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(sigma, y=None):
    """Non-centred eight schools: school effects theta = mu + tau * theta_tilde."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


target = fm.from_numpyro(eight_schools, sigma, y=y)
print("unconstrained dimension:", target.n_dim, " variables:", target.names)
'''),
    code("""
n_chains = 32
schedule = dict(n_training_loops=4, n_production_loops=4) if QUICK else {}
sampler = fm.Sampler(target, n_chains=n_chains, progress_bar=False, **schedule)
result = sampler.run(jax.random.key(0), target.initial_position(jax.random.key(1), n_chains))
idata = result.to_arviz()
idata.posterior
"""),
    code("""
import arviz as az

az.summary(idata, var_names=["mu", "tau", "theta"])
"""),
    md("""
`result.samples` is a dict of constrained draws, `tau` is positive and `theta` (a
deterministic site) is there too. The same posterior from numpyro's NUTS, for comparison:
"""),
    code("""
from numpyro.infer import MCMC, NUTS

n_nuts = 200 if QUICK else 2000
mcmc = MCMC(NUTS(eight_schools), num_warmup=n_nuts, num_samples=n_nuts,
            num_chains=4, chain_method="vectorized", progress_bar=False)
mcmc.run(jax.random.PRNGKey(0), sigma, y=y)
az.summary(az.from_numpyro(mcmc), var_names=["mu", "tau", "theta"])
"""),
]

NOTEBOOKS["05_diagnostics.ipynb"] = [
    md("""
# Diagnostics: ArviZ plots and the run's own record

A run exports to ArviZ (`result.to_arviz()`), so every ArviZ plot and statistic works on it.
`result.history` and `result.plot_diagnostics()` show how training went loop by loop.
"""),
    code(QUICK),
    code('''
import arviz as az
import jax
import jax.numpy as jnp

import flowmc_like as fm


def log_prob(position):
    """A pytree position {"mu": (2,), "log_sigma": ()}: its keys name the ArviZ variables."""
    mu, log_sigma = position["mu"], position["log_sigma"]
    return (jnp.logaddexp(-0.5 * jnp.sum((mu - 2) ** 2), -0.5 * jnp.sum((mu + 2) ** 2))
            - 0.5 * log_sigma**2)


n_chains = 32
key_mu, key_sigma = jax.random.split(jax.random.key(1))
x0 = {
    "mu": jax.random.uniform(key_mu, (n_chains, 2), minval=-4, maxval=4),
    "log_sigma": jax.random.normal(key_sigma, (n_chains,)),
}
schedule = dict(n_training_loops=4, n_production_loops=4) if QUICK else {}
result = fm.Sampler(log_prob, n_chains=n_chains, progress_bar=False, **schedule).run(
    jax.random.key(0), x0
)
idata = result.to_arviz()
az.summary(idata)
'''),
    md("""
`sample_stats` holds `lp` (the log density of each draw), `accepted` and `is_global` (true for
draws made by a flow proposal):
"""),
    code("""
stats = idata.sample_stats
print("share of global draws:", float(stats["is_global"].mean()))
print("acceptance of global moves:", float(stats["accepted"].where(stats["is_global"]).mean()))
"""),
    code("""
az.plot_trace(idata, var_names=["mu"]);
"""),
    code("""
az.plot_pair(idata, var_names=["mu"], kind="hexbin");
"""),
    code("""
az.plot_rank(idata, var_names=["log_sigma"]);
"""),
    md("""
The run's own record: training loss, local and global acceptance and step size per loop
(production loops shaded). A global acceptance still rising at the last training loop would
ask for more `n_training_loops`.
"""),
    code("""
result.plot_diagnostics()
"""),
]

NOTEBOOKS["06_fit_many_datasets.ipynb"] = [
    md("""
# Fitting many datasets: one compile, warm starts, saved results

The same numpyro model fitted to several datasets. `fm.from_numpyro` traces the model's
array arguments (the data), so every dataset of the same shapes reuses the first fit's
compiled programs; `warm_start=` continues from the previous fit's trained flow and
adapted kernel; `result.save` / `fm.load_result` keep a fit on disk without pickle.
"""),
    code(QUICK),
    code('''
import jax
import numpy as np
import numpyro
import numpyro.distributions as dist

import flowmc_like as fm


def logistic_regression(X, y=None):
    """Intercept and coefficients with Normal(0, 1) priors; X (n, d), y (n,) of 0/1."""
    b0 = numpyro.sample("b0", dist.Normal(0.0, 1.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]))
    numpyro.sample("y", dist.Bernoulli(logits=b0 + X @ beta), obs=y)


def dataset(seed, n=300, d=5):
    """One dataset (X, y) of the same generator; seed picks the draw."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    logits = -0.5 + X @ np.linspace(-1.0, 1.0, d)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    return X, y


datasets = [dataset(seed) for seed in range(3 if QUICK else 5)]
target = fm.from_numpyro(logistic_regression, *datasets[0])
print("traced data:", [np.shape(leaf) for leaf in jax.tree.leaves(target.data)])
'''),
    md("""
The first fit compiles and trains from scratch. The others run on new data through
`run(data=...)` (the same shapes: nothing compiles) and start from the previous fit.
"""),
    code("""
n_chains = 32
schedule = dict(max_training_loops=6, max_production_loops=6, target_ess=200) if QUICK else {}
sampler = fm.Sampler(target, n_chains=n_chains, progress_bar=False, **schedule)
result = sampler.run(jax.random.key(0), target.initial_position(jax.random.key(1), n_chains))
rows = [("cold", 0, result)]
for i, (X, y) in enumerate(datasets[1:], start=1):
    data = target.with_data(X, y).data
    result = sampler.run(jax.random.key(i), data=data, warm_start=result)
    rows.append(("warm", i, result))

for kind, i, fit in rows:
    n_training = int(fit.history.is_training.sum())
    print(f"{kind} fit {i}: compile {fit.timings['compile']:.2f} s, {n_training} training "
          f"loops, total {fit.timings['total']:.1f} s, "
          f"global acceptance {np.mean(fit.global_acceptance):.2f}")
"""),
    md("""
Each warm fit says why its training ended (back to the earlier fit's acceptance, or the
usual plateau), and its draws are those of its own dataset:
"""),
    code("""
print(result.history.decision[int(result.history.is_training.sum()) - 1])
result.summary(var_names=["b0", "beta"])
"""),
    md("""
Save the last fit, read it back, and continue from it: the loaded result warm-starts a run
exactly as the one in memory does.
"""),
    code("""
import tempfile

directory = result.save(tempfile.mkdtemp() + "/last_fit")
loaded = fm.load_result(directory, target=target)
print(sorted(p.name for p in directory.iterdir()), loaded.global_model)
again = sampler.run(jax.random.key(9), data=data, warm_start=loaded)
same = sampler.run(jax.random.key(9), data=data, warm_start=result)
print("bit-identical:", np.array_equal(again.flat_samples, same.flat_samples))
"""),
]


def main() -> None:
    """Write every notebook of `NOTEBOOKS` next to this file."""
    for name, cells in NOTEBOOKS.items():
        notebook = {
            "cells": cells,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        for i, cell in enumerate(cells):
            cell["id"] = f"cell-{i}"
        (HERE / name).write_text(json.dumps(notebook, indent=1) + "\n")
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
