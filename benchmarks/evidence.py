"""Marginal likelihood ``log Z`` side by side: flowmc_like's evidence and two nested samplers.

Usage::

    python -m benchmarks.evidence [--out benchmarks/results/evidence.md] [--seed 0]
        [--targets mixture_10d eight_schools eight_schools_pooled logistic_regression]
        [--samplers flowmc_like dynesty dynesty_nlive5000 jaxns] [--n-chains 32]
        [--reference benchmarks/results/evidence_reference.json] [--recompute-reference]
        [--in-process] [--quick]

Writes ``--out`` (Markdown), the same path with ``.json`` (every number) and with
``_comparison.md`` (the eight schools model comparison table alone, which the evidence
how-to includes).

Problem: estimate the marginal likelihood ``Z`` of four targets whose ``log Z`` is known
exactly or from a long reference computation, with three samplers, each with its defaults:

- ``mixture_10d``: ``0.3 N(-2.5 * 1, I) + 0.7 N(2.5 * 1, I)`` in 10-D, scaled by a known
  factor: ``log_prob(x) = log(mixture density) + LOG_Z_TRUE`` with ``LOG_Z_TRUE = 3.7``, so
  ``log Z = 3.7`` exactly. The nested samplers need a proper prior: uniform on
  ``[-10, 10]^10`` (density ``20^-10``) with likelihood ``exp(log_prob)``; their evidence is
  ``Z / 20^10``, converted here by ``log Z = log Z_nested + 10 log 20``. The mixture's mass
  outside the box is about ``3e-13`` (``box_mass_outside`` in the reference), negligible.
- ``eight_schools``: the eight schools data, the non-centred hierarchical model
  ``mu ~ N(0, 5)``, ``tau ~ HalfCauchy(5)``, ``theta_tilde_j ~ N(0, 1)``,
  ``y_j ~ N(mu + tau theta_tilde_j, sigma_j)`` (numpyro; flowmc_like samples its
  unconstrained space, ``log tau``, whose density carries the Jacobian, so its ``Z`` is the
  model's evidence). Exact: given ``tau``, ``y ~ MVN(0, diag(sigma^2 + tau^2) + 25 11^T)``;
  the integral over ``tau`` is one-dimensional quadrature after ``tau = 5 tan(pi u / 2)``
  (which makes the HalfCauchy(5) prior uniform in ``u`` on ``[0, 1]``), float64
  ``scipy.integrate.quad``, checked against quadrature in ``tau`` on ``[0, inf)``.
- ``eight_schools_pooled``: complete pooling, ``mu ~ N(0, 5)``, ``y_j ~ N(mu, sigma_j)``:
  ``y ~ MVN(0, diag(sigma^2) + 25 11^T)`` in closed form. With ``eight_schools`` it gives the
  model comparison table (log Bayes factor hierarchical vs pooled).
- ``logistic_regression``: dataset 0 of `benchmarks.reuse` (500 points, 21 parameters,
  ``N(0, 1)`` priors). ``reuse.log_prob`` leaves out the prior's normalising constant, so
  flowmc_like's ``log Z`` is converted by ``- (21 / 2) log(2 pi)``. Reference: importance
  sampling with a multivariate Student-t proposal (``REFERENCE["df"]`` degrees of freedom,
  centred on the posterior mode with the inverse Hessian there as scale matrix; Newton's
  method in float64), ``REFERENCE["n_draws"]`` draws in float64, with its standard error
  and Pareto k; cached in ``--reference`` against a fingerprint of the data and the
  settings (``--recompute-reference`` redoes it).

The nested samplers see the prior through a transform of the unit cube (normal ppf, sd 5
for ``mu``; ``5 tan(pi u / 2)`` for ``tau``; the normal ppf for ``theta_tilde`` and the
regression coefficients; ``20 u - 10`` for the mixture) and the likelihood alone (the sum
of the normal log densities of ``y``; the Bernoulli log-likelihood; the mixture's
``log_prob``); their ``log Z`` is the model evidence (after the box conversion for the
mixture).

Samplers, each run timed by wall clock after the imports (target construction, starts,
compilation and the run included):

- ``flowmc_like``: ``fm.Sampler(log_prob, n_dim=d, progress_bar=False)`` (for numpyro:
  ``fm.Sampler(fm.from_numpyro(model, sigma, y), progress_bar=False)``, starts
  ``target.initial_position``), library defaults otherwise (automatic schedule, MALA +
  RealNVP), ``--n-chains`` chains (32) starting uniformly in ``[-5, 5]^10`` (mixture) or
  from ``N(0, 0.5^2)`` (regression); then ``result.log_evidence(jax.random.key(seed + 1))``
  (importance sampling, 10,000 flow draws) and, as an extra row, the same with
  ``method="bridge"``. Wall = the run plus that estimate; the estimate's own time is in
  the evidence column. Evaluations = the run's (from the algorithm:
  `benchmarks.peers.flowmc_like_peer.expected_evals`) plus the estimate's.
- ``dynesty``: ``dynesty.NestedSampler(loglike, prior_transform, ndim,
  rstate=np.random.default_rng(seed))`` with its defaults (500 live points, multi-ellipsoid
  bounds, sampling method chosen by dimension), ``run_nested(print_progress=False)``;
  ``log Z = results.logz[-1]``, SE ``results.logzerr[-1]``, evaluations
  ``sum(results.ncall)``. The likelihoods and prior transforms are NumPy float64 functions
  of one point (``scipy.special.ndtri`` for the normal ppf), the form dynesty calls.
- ``dynesty_nlive5000``: the same with ``nlive=5000`` (10x), to measure how dynesty's error
  and time scale with its live points; left out on the regression (about 13 min) unless
  ``--samplers`` and ``--targets`` both name it.
- ``jaxns`` 3.0: ``jaxns.core.NestedSampler(model=Model(prior_model))`` with its defaults,
  ``run(key=jax.random.PRNGKey(seed), args=data)``, ``state.to_result().trim()``; priors
  ``jaxns.priors.Prior`` of TFP-on-JAX distributions (``Uniform``, ``Normal``,
  ``HalfCauchy``), likelihood a JAX function; ``log Z = log_Z_mean``, SE ``log_Z_uncert``,
  evaluations ``total_num_likelihood_evaluations``. jaxns switches JAX to float64 when it
  is imported.

Each run is a fresh process (``python -m benchmarks.evidence --worker TARGET SAMPLER``, in a
scratch directory: jaxns writes an ``application.log`` where it runs), so each pays its own
compilation and jaxns's float64 does not reach the other samplers; JAX's persistent
compilation cache is off in it, and the imports (the sampler's package, numpyro, TFP) come
before the clock. ``--in-process`` runs everything in this process instead, sampler by
sampler in the order given (jaxns last by default), with the library's and JAX's caches
cleared before each flowmc_like run (the smoke test uses it).

Measured per target and sampler: ``log Z`` in the model's convention, its stated standard
error, the exact or reference value (and its SE), the error, ``|error| / SE`` with
``SE = sqrt(SE_sampler^2 + SE_reference^2)``, wall seconds, target or likelihood evaluations,
and for flowmc_like the Pareto k of the importance weights against its threshold and
whether the library calls the estimate reliable. Summary: per sampler and target whether
the error is within 2 SE (or 3 SE), the wall-time ratio nested sampler / flowmc_like, and
the same at equal accuracy: a nested run's wall time times ``(SE / SE_flowmc_like)^2``
(its error falls as ``1 / sqrt(n_live)``, its cost grows as ``n_live``; the 10x dynesty
runs check the scaling).

``--quick`` (the smoke test): flowmc_like with ``n_training_loops=2, n_production_loops=2,
n_local_steps=5, n_global_steps=5`` and 1,000 evidence draws, dynesty with ``nlive=50`` and
``maxiter=300``, jaxns with ``root_allocation_degree=20`` and ``max_samples=1000``, a short
reference for the regression (not cached); numbers meaningless.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import reuse
from benchmarks.jsonable import json_default
from benchmarks.report import fmt, machine_section

__all__ = [
    "LOG_Z_TRUE",
    "SAMPLERS",
    "TARGETS",
    "eight_schools_log_z",
    "logistic_log_lik",
    "logistic_reference",
    "main",
    "make_problem",
    "mixture_log_prob",
    "pooled_log_z",
    "references",
]

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parent.parent
DEFAULT_OUT = RESULTS / "evidence.md"
DEFAULT_REFERENCE = RESULTS / "evidence_reference.json"

TARGETS = ("mixture_10d", "eight_schools", "eight_schools_pooled", "logistic_regression")
SAMPLERS = ("flowmc_like", "dynesty", "dynesty_nlive5000", "jaxns")
DYNESTY_MORE_LIVE = 5000
"""Live points of the ``dynesty_nlive5000`` runs (10x dynesty's default)."""
SKIPPED_BY_DEFAULT = {("logistic_regression", "dynesty_nlive5000")}
"""Runs left out unless both are named (about 13 min: 10x the default run's 79 s)."""

# mixture_10d
MIX_DIM = 10
MIX_WEIGHTS = (0.3, 0.7)
MIX_CENTRES = (-2.5, 2.5)  # component k has mean MIX_CENTRES[k] * ones(10), covariance I
LOG_Z_TRUE = 3.7
BOX = 10.0  # the nested samplers' prior: uniform on [-BOX, BOX]^10
MIX_START = 5.0  # flowmc_like's starts: uniform on [-MIX_START, MIX_START]^10

# eight schools
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
MU_SD = 5.0
TAU_SCALE = 5.0

# logistic regression
LOGREG_DATASET = 0
LOGREG_START_SD = reuse.INIT_SD
REFERENCE = {"n_draws": 2_000_000, "df": 10, "seed": 20250, "chunk": 50_000}
QUICK_REFERENCE = {"n_draws": 20_000, "df": 10, "seed": 20250, "chunk": 20_000}

N_CHAINS = 32
EVIDENCE_SAMPLES = 10_000
QUICK_FLOWMC = {
    "n_training_loops": 2,
    "n_production_loops": 2,
    "n_local_steps": 5,
    "n_global_steps": 5,
}
QUICK_EVIDENCE_SAMPLES = 1_000
QUICK_DYNESTY = {"nlive": 50, "maxiter": 300}
QUICK_JAXNS = {"root_allocation_degree": 20, "max_samples": 1000}
RUN_TIMEOUT_S = 3600


# ----------------------------------------------------------------------------- targets
def mixture_log_prob(x: jax.Array) -> jax.Array:
    """``log`` of the two-component mixture density plus `LOG_Z_TRUE` at ``x (..., d)``.

    Components ``N(c 1, I)`` for ``c`` in `MIX_CENTRES`, weights `MIX_WEIGHTS`; the target
    is ``d = 10``, any ``d`` integrates to ``exp(LOG_Z_TRUE)`` (the tests check ``d = 2``).
    """
    centres = jnp.asarray(MIX_CENTRES)
    d2 = jnp.sum((x[..., None, :] - centres[:, None]) ** 2, axis=-1)
    log_w = jnp.log(jnp.asarray(MIX_WEIGHTS))
    log_norm = -0.5 * x.shape[-1] * math.log(2 * math.pi)
    return jax.nn.logsumexp(log_w - 0.5 * d2, axis=-1) + log_norm + LOG_Z_TRUE


def _mixture_log_prob_np(x: np.ndarray) -> float:
    d2 = [float(np.sum((x - c) ** 2)) for c in MIX_CENTRES]
    terms = [math.log(w) - 0.5 * d for w, d in zip(MIX_WEIGHTS, d2, strict=True)]
    return float(np.logaddexp(*terms)) - 0.5 * MIX_DIM * math.log(2 * math.pi) + LOG_Z_TRUE


def eight_schools_model(sigma: Any, y: Any = None) -> None:
    """The hierarchical eight schools model, non-centred (numpyro)."""
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, MU_SD))
    tau = numpyro.sample("tau", dist.HalfCauchy(TAU_SCALE))
    with numpyro.plate("school", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


def eight_schools_pooled_model(sigma: Any, y: Any = None) -> None:
    """Complete pooling: one effect ``mu`` for every school (numpyro)."""
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, MU_SD))
    with numpyro.plate("school", len(sigma)):
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def _normal_log_lik_np(theta: np.ndarray | float) -> float:
    z = (Y - theta) / SIGMA
    return float(np.sum(-0.5 * z * z - np.log(SIGMA)) - 4.0 * math.log(2 * math.pi))


def _normal_log_lik(theta: Any, sigma: jax.Array, y: jax.Array) -> jax.Array:
    """``sum_j log N(y_j; theta_j, sigma_j)`` (JAX; dtypes promote)."""
    z = (y - theta) / sigma
    return jnp.sum(-0.5 * z * z - jnp.log(sigma)) - 0.5 * len(Y) * math.log(2 * math.pi)


def logistic_log_lik(theta: jax.Array, data: tuple[jax.Array, jax.Array]) -> jax.Array:
    """The Bernoulli log-likelihood of `benchmarks.reuse`'s regression (its ``log_prob``
    without the prior)."""
    x, y = data
    eta = theta[0] + x @ theta[1:]
    return jnp.sum(y * eta - jnp.logaddexp(0.0, eta))


@dataclasses.dataclass(frozen=True)
class Problem:
    """One target as each sampler sees it.

    ``offset_flowmc`` and ``offset_nested`` convert a sampler's ``log Z`` to the model's
    (``log Z = log Z_sampler + offset``).
    """

    name: str
    n_dim: int
    offset_flowmc: float
    offset_nested: float
    flowmc_setup: Callable[[jax.Array, int], tuple[Any, dict[str, Any], jax.Array]]
    log_like_np: Callable[[np.ndarray], float]
    prior_transform_np: Callable[[np.ndarray], np.ndarray]
    jaxns_prior_model: Callable[..., Any]
    jaxns_args: Callable[[], tuple[Any, ...]]


def make_problem(name: str) -> Problem:
    """The `Problem` called ``name`` (one of `TARGETS`)."""
    from scipy.special import ndtri

    if name == "mixture_10d":

        def fm_setup(key: jax.Array, n_chains: int) -> tuple[Any, dict[str, Any], jax.Array]:
            x0 = jax.random.uniform(key, (n_chains, MIX_DIM), minval=-MIX_START, maxval=MIX_START)
            return mixture_log_prob, {"n_dim": MIX_DIM}, x0

        def mix_prior(u: np.ndarray) -> np.ndarray:
            return 2.0 * BOX * u - BOX

        def mix_jaxns() -> Any:
            x = _prior(
                _tfpd().Uniform(low=-BOX * jnp.ones(MIX_DIM), high=BOX * jnp.ones(MIX_DIM)), "x"
            )
            return mixture_log_prob(x)

        return Problem(
            name, MIX_DIM, 0.0, MIX_DIM * math.log(2 * BOX), fm_setup, _mixture_log_prob_np,
            mix_prior, mix_jaxns, tuple,
        )  # fmt: skip

    if name in ("eight_schools", "eight_schools_pooled"):
        pooled = name == "eight_schools_pooled"
        model = eight_schools_pooled_model if pooled else eight_schools_model
        n_dim = 1 if pooled else 10

        def es_setup(key: jax.Array, n_chains: int) -> tuple[Any, dict[str, Any], jax.Array]:
            import flowmc_like as fm

            target = fm.from_numpyro(model, SIGMA, Y)
            return target, {}, target.initial_position(key, n_chains)

        def es_like(x: np.ndarray) -> float:
            return _normal_log_lik_np(x[0] if pooled else x[0] + x[1] * x[2:])

        def es_prior(u: np.ndarray) -> np.ndarray:
            x = ndtri(u)  # theta_tilde (and mu before scaling)
            x[0] = MU_SD * x[0]
            if not pooled:
                x[1] = TAU_SCALE * math.tan(0.5 * math.pi * u[1])
            return x

        def es_jaxns(sigma: jax.Array, y: jax.Array) -> Any:
            tfpd = _tfpd()
            mu = _prior(tfpd.Normal(0.0, MU_SD), "mu")
            if pooled:
                theta = mu
            else:
                tau = _prior(tfpd.HalfCauchy(0.0, TAU_SCALE), "tau")
                theta = mu + tau * _prior(tfpd.Normal(jnp.zeros(len(Y)), 1.0), "theta_tilde")
            return _normal_log_lik(theta, sigma, y)

        return Problem(
            name, n_dim, 0.0, 0.0, es_setup, es_like, es_prior, es_jaxns,
            lambda: (jnp.asarray(SIGMA), jnp.asarray(Y)),
        )  # fmt: skip

    if name == "logistic_regression":
        x_np, y_np = reuse.make_dataset(LOGREG_DATASET)
        x64, y64 = x_np.astype(np.float64), y_np.astype(np.float64)

        def lr_setup(key: jax.Array, n_chains: int) -> tuple[Any, dict[str, Any], jax.Array]:
            x0 = LOGREG_START_SD * jax.random.normal(key, (n_chains, reuse.N_DIM))
            return reuse.log_prob, {"n_dim": reuse.N_DIM, "data": reuse.as_jax((x_np, y_np))}, x0

        def lr_like(theta: np.ndarray) -> float:
            eta = theta[0] + x64 @ theta[1:]
            return float(np.sum(y64 * eta - np.logaddexp(0.0, eta)))

        def lr_jaxns(x: jax.Array, y: jax.Array) -> Any:
            theta = _prior(_tfpd().Normal(jnp.zeros(reuse.N_DIM), 1.0), "theta")
            return logistic_log_lik(theta, (x, y))

        return Problem(
            name, reuse.N_DIM, -0.5 * reuse.N_DIM * math.log(2 * math.pi), 0.0, lr_setup,
            lr_like, ndtri, lr_jaxns, lambda: (jnp.asarray(x64), jnp.asarray(y64)),
        )  # fmt: skip

    raise ValueError(f"unknown target {name!r}; choose from {TARGETS}")


def _tfpd() -> Any:
    from tensorflow_probability.substrates import jax as tfp

    return tfp.distributions


def _prior(distribution: Any, name: str) -> Any:
    from jaxns.priors import Prior

    return Prior(distribution, name=name).realise()


# ----------------------------------------------------------------------------- exact values
def _log_mvn_zero_mean(cov: np.ndarray, y: np.ndarray) -> float:
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, y)
    return float(
        -0.5 * z @ z - np.sum(np.log(np.diag(chol))) - 0.5 * len(y) * math.log(2 * math.pi)
    )


def _log_marginal_given_tau(tau: float) -> float:
    """``log p(y | tau)`` of the hierarchical model (``mu`` and ``theta`` integrated out)."""
    cov = np.diag(SIGMA**2 + tau**2) + MU_SD**2 * np.ones((len(Y), len(Y)))
    return _log_mvn_zero_mean(cov, Y)


def pooled_log_z() -> float:
    """Exact ``log Z`` of ``eight_schools_pooled``: ``y ~ MVN(0, diag(sigma^2) + 25 11^T)``."""
    return _log_marginal_given_tau(0.0)


def eight_schools_log_z() -> dict[str, float]:
    """Exact ``log Z`` of ``eight_schools`` by quadrature over ``u = (2 / pi) atan(tau / 5)``.

    Returns ``log_z`` (quadrature in ``u`` on ``[0, 1]``, where the HalfCauchy(5) prior is
    uniform), ``quad_error`` (quad's bound on the relative error) and ``log_z_tau`` (the
    same integral in ``tau`` on ``[0, inf)`` with the HalfCauchy density, a check).
    """
    from scipy import integrate

    shift = _log_marginal_given_tau(TAU_SCALE)

    def in_u(u: float) -> float:
        return math.exp(_log_marginal_given_tau(TAU_SCALE * math.tan(0.5 * math.pi * u)) - shift)

    def in_tau(tau: float) -> float:
        density = 2.0 / (math.pi * TAU_SCALE * (1.0 + (tau / TAU_SCALE) ** 2))
        return math.exp(_log_marginal_given_tau(tau) - shift) * density

    kw = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 500}
    v_u, e_u = integrate.quad(in_u, 0.0, 1.0, **kw)
    v_tau, _ = integrate.quad(in_tau, 0.0, math.inf, **kw)
    return {
        "log_z": math.log(v_u) + shift,
        "quad_error": e_u / v_u,
        "log_z_tau": math.log(v_tau) + shift,
    }


def mixture_box_mass_outside() -> float:
    """The mixture's probability mass outside ``[-BOX, BOX]^10``."""
    from scipy.special import log_ndtr

    inside = 0.0
    for w, c in zip(MIX_WEIGHTS, MIX_CENTRES, strict=True):
        # per coordinate, P(outside) = Phi(-BOX - c) + Phi(c - BOX)
        out_1d = math.exp(log_ndtr(-BOX - c)) + math.exp(log_ndtr(c - BOX))
        inside += w * math.exp(MIX_DIM * math.log1p(-out_1d))
    return -math.expm1(math.log(inside))


# ----------------------------------------------------------------------------- regression reference
def _logistic_log_post_np(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log prior (normalised ``N(0, I)``) plus log-likelihood at ``theta (n, 21)``; ``(n,)``."""
    eta = theta[:, :1] + theta[:, 1:] @ x.T
    log_lik = np.sum(y * eta - np.logaddexp(0.0, eta), axis=1)
    d = theta.shape[1]
    return log_lik - 0.5 * np.sum(theta**2, axis=1) - 0.5 * d * math.log(2 * math.pi)


def _logistic_mode(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode and the Hessian of the negative log posterior there (Newton, float64)."""
    xa = np.hstack([np.ones((len(x), 1)), x])
    theta = np.zeros(xa.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(xa @ theta)))
        grad = xa.T @ (y - p) - theta
        hess = (xa * (p * (1 - p))[:, None]).T @ xa + np.eye(len(theta))
        step = np.linalg.solve(hess, grad)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-13:
            break
    p = 1.0 / (1.0 + np.exp(-(xa @ theta)))
    hess = (xa * (p * (1 - p))[:, None]).T @ xa + np.eye(len(theta))
    return theta, hess


def logistic_reference(data: tuple[np.ndarray, np.ndarray], settings: dict[str, Any]) -> dict:
    """``log Z`` of the regression by importance sampling from a multivariate Student-t.

    Proposal: ``t_df(mode, H^-1)``, ``H`` the Hessian of the negative log posterior at its
    mode. ``settings``: ``n_draws``, ``df``, ``seed``, ``chunk`` (draws per batch). Returns
    ``log_z``, ``standard_error`` (delta method, ``sd(w) / (sqrt(n) mean(w))``), the Pareto
    k and effective sample size of the weights, the Laplace approximation's ``log Z`` and
    the seconds it took.
    """
    from scipy.special import gammaln, logsumexp

    from flowmc_like.exporters.arviz import pareto_k

    t0 = time.time()
    x, y = (np.asarray(a, dtype=np.float64) for a in data)
    mode, hess = _logistic_mode(x, y)
    d, df = len(mode), float(settings["df"])
    chol_h = np.linalg.cholesky(hess)  # H = C C^T; draws: mode + C^-T z
    half_logdet_cov = -float(np.sum(np.log(np.diag(chol_h))))
    log_t_norm = (
        gammaln(0.5 * (df + d)) - gammaln(0.5 * df) - 0.5 * d * math.log(df * math.pi)
        - half_logdet_cov
    )  # fmt: skip
    rng = np.random.default_rng(settings["seed"])
    log_w = np.empty(settings["n_draws"])
    for start in range(0, settings["n_draws"], settings["chunk"]):
        n = min(settings["chunk"], settings["n_draws"] - start)
        z = rng.standard_normal((n, d)) / np.sqrt(rng.chisquare(df, n) / df)[:, None]
        theta = mode + np.linalg.solve(chol_h.T, z.T).T
        log_q = log_t_norm - 0.5 * (df + d) * np.log1p(np.sum(z**2, axis=1) / df)
        log_w[start : start + n] = _logistic_log_post_np(theta, x, y) - log_q
    n = len(log_w)
    log_z = float(logsumexp(log_w) - math.log(n))
    w = np.exp(log_w - log_w.max())
    rel_sd = float(np.std(w) / np.mean(w))
    laplace = float(
        _logistic_log_post_np(mode[None], x, y)[0] + 0.5 * d * math.log(2 * math.pi)
        - np.sum(np.log(np.diag(chol_h)))
    )  # fmt: skip
    return {
        "log_z": log_z,
        "standard_error": rel_sd / math.sqrt(n),
        "pareto_k": float(pareto_k(log_w)),
        "ess": float(np.sum(w) ** 2 / np.sum(w**2)),
        "laplace_log_z": laplace,
        "mode": mode.tolist(),
        "settings": dict(settings),
        "seconds": time.time() - t0,
    }


def references(
    targets: list[str], path: Path, recompute: bool = False, quick: bool = False
) -> dict[str, dict[str, Any]]:
    """The exact or reference ``log Z`` of each target (``log_z``, ``standard_error``, how).

    The regression's reference is read from ``path`` when it holds one for the same data
    (fingerprint) and settings, else computed and ``path`` rewritten. In quick mode a short
    reference is computed unless ``path`` holds one for the same data, and ``path`` is
    never written.
    """
    out: dict[str, dict[str, Any]] = {}
    cached: dict[str, Any] = {}
    if path.exists() and not recompute:
        cached = json.loads(path.read_text()).get("targets", {})
    changed = False
    for name in targets:
        if name == "mixture_10d":
            out[name] = {
                "log_z": LOG_Z_TRUE,
                "standard_error": 0.0,
                "how": "exact (known scale factor)",
                "box_mass_outside": mixture_box_mass_outside(),
            }
        elif name == "eight_schools":
            q = eight_schools_log_z()
            out[name] = {
                **q,
                "standard_error": 0.0,
                "how": "quadrature in u = (2/pi) atan(tau/5) of p(y | tau) in closed form",
            }
        elif name == "eight_schools_pooled":
            out[name] = {"log_z": pooled_log_z(), "standard_error": 0.0, "how": "closed form"}
        elif name == "logistic_regression":
            data = reuse.make_dataset(LOGREG_DATASET)
            fp = reuse.fingerprint(data)
            settings = QUICK_REFERENCE if quick else REFERENCE
            ref = cached.get(name)
            usable = ref is not None and ref.get("fingerprint") == fp
            if not (usable and (quick or ref.get("settings") == settings)):
                print(f"[evidence] importance-sampling reference for {name} ...", flush=True)
                ref = {
                    "fingerprint": fp,
                    "how": f"importance sampling, multivariate t (df {settings['df']}) "
                    f"around the mode with the inverse Hessian, {settings['n_draws']} draws",
                    **logistic_reference(data, settings),
                }
                if not quick:
                    cached[name] = ref
                    changed = True
            out[name] = ref
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "description": "reference log Z of benchmarks/evidence.py (the regression's by "
            "importance sampling; fingerprint of benchmarks.reuse.make_dataset(0))",
            "generator": reuse.generator_info(),
            "targets": cached,
        }
        path.write_text(json.dumps(payload, indent=1, default=json_default) + "\n")
    return out


# ----------------------------------------------------------------------------- samplers
def _warning_texts(caught: list[warnings.WarningMessage]) -> list[str]:
    return sorted(
        {
            f"{w.category.__name__}: {w.message}"
            for w in caught
            if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
        }
    )


def _short(text: str, limit: int = 110) -> str:
    """The first clause of a warning (up to its first colon after the category, or
    ``limit`` characters)."""
    head, _, rest = text.partition(": ")
    first = rest.split(": ")[0] if rest else head
    if head.startswith("EvidenceWarning") and ": " in rest:
        first = ": ".join(rest.split(": ")[:2])
    first = first if len(first) <= limit else first[: limit - 3] + "..."
    return f"{head}: {first}" if rest else first


def run_flowmc_like(
    problem: Problem, seed: int, n_chains: int, quick: bool
) -> list[dict[str, Any]]:
    """The library's defaults, then ``log_evidence`` by importance and by bridge sampling."""
    import flowmc_like as fm
    from benchmarks.peers.flowmc_like_peer import expected_evals
    from benchmarks.timing import CompileTracker

    settings = dict(QUICK_FLOWMC) if quick else {}
    n_samples = QUICK_EVIDENCE_SAMPLES if quick else EVIDENCE_SAMPLES
    key = jax.random.key(seed)
    with CompileTracker() as tr, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = tr.stamp("start")
        log_prob, kwargs, x0 = problem.flowmc_setup(jax.random.fold_in(key, 1), n_chains)
        sampler = fm.Sampler(log_prob, progress_bar=False, **kwargs, **settings)
        result = sampler.run(key, x0)
        jax.block_until_ready(result.flat_samples)
        t1 = tr.stamp("run")
        estimates = []
        for method in ("importance", "bridge"):
            ta = time.time()
            ev = result.log_evidence(jax.random.key(seed + 1), n_samples=n_samples, method=method)
            estimates.append((ev, time.time() - ta, tr.compile_seconds(ta, time.time())))
    h = result.history
    is_tr = np.asarray(h.is_training, bool)
    run_evals = sum(expected_evals(sampler, n_chains, h).values())
    common = {
        "run_s": t1 - t0,
        "timings": {k: float(v) for k, v in dict(result.timings).items()},
        "run_compile_s_observed": tr.compile_seconds(t0, t1),
        "n_chains": n_chains,
        "n_training_loops": int(is_tr.sum()),
        "n_production_loops": int((~is_tr).sum()),
        "n_draws_per_chain": int(result.n_draws),
        "run_evaluations": run_evals,
        "settings": {"passed": settings, "n_evidence_samples": n_samples},
        "warnings": _warning_texts(caught),
    }
    rows = []
    for ev, seconds, compile_s in estimates:
        rows.append(
            {
                "sampler": "flowmc_like",
                "method": ev.method,
                "log_z_sampler": ev.log_z,
                "log_z": ev.log_z + problem.offset_flowmc,
                "offset": problem.offset_flowmc,
                "standard_error": ev.standard_error,
                "wall_s": t1 - t0 + seconds,
                "evidence_s": seconds,
                "evidence_compile_s_observed": compile_s,
                "n_evaluations": run_evals + int(ev.n_evaluations),
                "evidence": dataclasses.asdict(ev),
                **common,
            }
        )
    return rows


def run_dynesty(
    problem: Problem, seed: int, quick: bool, nlive: int | None = None
) -> list[dict[str, Any]]:
    """``dynesty.NestedSampler`` with its defaults (NumPy likelihood and prior transform).

    ``nlive`` (if given) is the one setting changed: more live points, smaller error.
    """
    import dynesty

    init_kw = {"nlive": QUICK_DYNESTY["nlive"]} if quick else {}
    if nlive is not None:
        init_kw = {"nlive": 2 * QUICK_DYNESTY["nlive"] if quick else nlive}
    run_kw = {"maxiter": QUICK_DYNESTY["maxiter"]} if quick else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        ns = dynesty.NestedSampler(
            problem.log_like_np, problem.prior_transform_np, problem.n_dim,
            rstate=np.random.default_rng(seed), **init_kw,
        )  # fmt: skip
        ns.run_nested(print_progress=False, **run_kw)
        res = ns.results
        wall = time.perf_counter() - t0
    log_z = float(res.logz[-1])
    return [
        {
            "sampler": "dynesty" if nlive is None else f"dynesty_nlive{nlive}",
            "method": "nested",
            "log_z_sampler": log_z,
            "log_z": log_z + problem.offset_nested,
            "offset": problem.offset_nested,
            "standard_error": float(res.logzerr[-1]),
            "wall_s": wall,
            "evidence_s": None,
            "n_evaluations": int(np.sum(res.ncall)),
            "n_iterations": int(res.niter),
            "efficiency_percent": float(res.eff),
            "information": float(res.information[-1]),
            "settings": {
                "passed": {**init_kw, **run_kw},
                "nlive": int(ns.nlive),
                "bound": str(ns.bounding),
                "sample": type(ns.sampling).__name__
                if not isinstance(ns.sampling, str)
                else ns.sampling,
            },
            "warnings": _warning_texts(caught),
        }
    ]


def run_jaxns(problem: Problem, seed: int, quick: bool) -> list[dict[str, Any]]:
    """jaxns 3.0's ``NestedSampler`` with its defaults (priors of TFP distributions)."""
    from jaxns.core import NestedSampler
    from jaxns.model import Model

    kw = dict(QUICK_JAXNS) if quick else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        args = problem.jaxns_args()
        model = Model(prior_model=problem.jaxns_prior_model)
        state = NestedSampler(model=model, **kw).run(key=jax.random.PRNGKey(seed), args=args)
        res = state.to_result().trim()
        log_z = float(res.log_Z_mean)
        wall = time.perf_counter() - t0
    return [
        {
            "sampler": "jaxns",
            "method": "nested",
            "log_z_sampler": log_z,
            "log_z": log_z + problem.offset_nested,
            "offset": problem.offset_nested,
            "standard_error": float(res.log_Z_uncert),
            "wall_s": wall,
            "evidence_s": None,
            "n_evaluations": int(res.total_num_likelihood_evaluations),
            "n_samples": int(res.total_num_samples),
            "ess": float(res.ess),
            "information": float(res.H_mean),
            "termination_reason": int(res.termination_reason),
            "settings": {"passed": kw, "x64": bool(jax.config.jax_enable_x64)},
            "warnings": _warning_texts(caught),
        }
    ]


def run_one(target: str, sampler: str, seed: int, n_chains: int, quick: bool) -> list[dict]:
    """One sampler on one target in this process; its rows (``FAILED`` row on an error)."""
    base = {"target": target, "sampler": sampler, "seed": seed}
    t_import = time.time()
    try:
        _import_sampler(sampler)
    except Exception as e:
        return [{**base, "method": "-", "failed": f"{type(e).__name__}: {e}"}]
    import_s = time.time() - t_import
    load0, cpu0 = os.getloadavg(), time.process_time()
    try:
        problem = make_problem(target)
        if sampler == "flowmc_like":
            from benchmarks.reuse import clear_all_caches, no_persistent_cache

            clear_all_caches()
            with no_persistent_cache():
                rows = run_flowmc_like(problem, seed, n_chains, quick)
        elif sampler == "dynesty":
            rows = run_dynesty(problem, seed, quick)
        elif sampler == "dynesty_nlive5000":
            rows = run_dynesty(problem, seed, quick, nlive=DYNESTY_MORE_LIVE)
        elif sampler == "jaxns":
            from benchmarks.reuse import no_persistent_cache

            with no_persistent_cache():
                rows = run_jaxns(problem, seed, quick)
        else:
            raise ValueError(f"unknown sampler {sampler!r}; choose from {SAMPLERS}")
    except Exception as e:  # a failed run is reported, not fatal
        return [
            {
                **base,
                "method": "-",
                "failed": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(),
            }
        ]
    extra = {
        "import_s": import_s,
        "cpu_s": time.process_time() - cpu0,
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
    }
    return [{**base, **row, **extra} for row in rows]


def _import_sampler(sampler: str) -> None:
    """Import what a sampler's run needs, before its clock starts."""
    import scipy.special  # noqa: F401

    if sampler == "jaxns":
        import jaxns.core  # (switches JAX to float64)
        import jaxns.model
        import jaxns.priors  # noqa: F401
        import tensorflow_probability.substrates.jax  # noqa: F401
    elif sampler.startswith("dynesty"):
        import dynesty  # noqa: F401
    elif sampler == "flowmc_like":
        import numpyro
        import numpyro.distributions  # noqa: F401

        import flowmc_like
        import flowmc_like.evidence  # noqa: F401


def run_in_subprocess(target: str, sampler: str, args: argparse.Namespace) -> list[dict]:
    """`run_one` in a fresh ``python -m benchmarks.evidence --worker`` process."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "record.json"
        cmd = [
            sys.executable, "-m", "benchmarks.evidence", "--worker", target, sampler,
            "--seed", str(args.seed), "--n-chains", str(args.n_chains), "--record", str(record),
        ]  # fmt: skip
        if args.quick:
            cmd.append("--quick")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
        t0 = time.time()
        try:
            # cwd: a scratch directory (jaxns writes an application.log where it runs)
            proc = subprocess.run(
                cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return [_failed(target, sampler, args.seed, f"timed out after {RUN_TIMEOUT_S} s")]
        if record.exists():
            rows = json.loads(record.read_text())
            for r in rows:
                r["process_s"] = time.time() - t0
            return rows
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        return [_failed(target, sampler, args.seed, f"exit {proc.returncode}: {' | '.join(tail)}")]


def _failed(target: str, sampler: str, seed: int, text: str) -> dict[str, Any]:
    return {"target": target, "sampler": sampler, "seed": seed, "method": "-", "failed": text}


def _worker(args: argparse.Namespace) -> int:
    target, sampler = args.worker
    rows = run_one(target, sampler, args.seed, args.n_chains, args.quick)
    Path(args.record).write_text(json.dumps(rows, default=json_default))
    return 0


# ----------------------------------------------------------------------------- scoring
def score(row: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """Error against the reference, ``|error| / SE`` (SEs combined) and the verdict."""
    if row.get("failed"):
        return row
    err = row["log_z"] - ref["log_z"]
    se = math.hypot(row["standard_error"], ref.get("standard_error") or 0.0)
    z = abs(err) / se if se > 0 else math.inf
    verdict = "within 2 SE" if z < 2 else "within 3 SE" if z < 3 else "beyond 3 SE"
    return {
        **row,
        "reference": ref["log_z"],
        "reference_se": ref.get("standard_error", 0.0),
        "error": err,
        "combined_se": se,
        "abs_error_over_se": z,
        "verdict": verdict,
    }


def model_comparison(rows: list[dict[str, Any]], refs: dict[str, Any]) -> list[dict[str, Any]]:
    """log Bayes factor hierarchical vs pooled per sampler (and flowmc_like method)."""
    if "eight_schools" not in refs or "eight_schools_pooled" not in refs:
        return []
    exact = refs["eight_schools"]["log_z"] - refs["eight_schools_pooled"]["log_z"]
    out = []
    keys = []
    for r in rows:
        if r["target"] == "eight_schools" and (r["sampler"], r["method"]) not in keys:
            keys.append((r["sampler"], r["method"]))
    for sampler, method in keys:
        pair = {}
        for t in ("eight_schools", "eight_schools_pooled"):
            match = [
                r for r in rows
                if r["target"] == t and r["sampler"] == sampler and r["method"] == method
            ]  # fmt: skip
            pair[t] = match[0] if match and not match[0].get("failed") else None
        a, b = pair["eight_schools"], pair["eight_schools_pooled"]
        if a is None or b is None:
            out.append({"sampler": sampler, "method": method, "failed": True, "exact": exact})
            continue
        bf = a["log_z"] - b["log_z"]
        se = math.hypot(a["standard_error"], b["standard_error"])
        out.append(
            {
                "sampler": sampler,
                "method": method,
                "log_z_hierarchical": a["log_z"],
                "se_hierarchical": a["standard_error"],
                "log_z_pooled": b["log_z"],
                "se_pooled": b["standard_error"],
                "log_bayes_factor": bf,
                "standard_error": se,
                "exact": exact,
                "error": bf - exact,
                "abs_error_over_se": abs(bf - exact) / se if se > 0 else math.inf,
                "wall_s": a["wall_s"] + b["wall_s"],
            }
        )
    return out


def summarize(rows: list[dict[str, Any]], targets: list[str]) -> dict[str, Any]:
    """Verdicts per sampler and target, and the wall-time ratios nested / flowmc_like."""
    verdicts = [
        {
            "target": r["target"],
            "sampler": r["sampler"],
            "method": r["method"],
            "verdict": "FAILED" if r.get("failed") else r["verdict"],
        }
        for r in rows
    ]
    ratios: list[dict[str, Any]] = []
    equal: list[dict[str, Any]] = []
    for t in targets:
        fm_rows = [
            r for r in rows
            if r["target"] == t and r["sampler"] == "flowmc_like"
            and r["method"] == "importance" and not r.get("failed")
        ]  # fmt: skip
        if not fm_rows:
            continue
        fm_row = fm_rows[0]
        entry: dict[str, Any] = {"target": t, "flowmc_like_wall_s": fm_row["wall_s"]}
        for s in NESTED:
            nr = [r for r in rows if r["target"] == t and r["sampler"] == s and not r.get("failed")]
            entry[f"{s}_over_flowmc_like"] = nr[0]["wall_s"] / fm_row["wall_s"] if nr else None
            if nr:
                equal.append(equal_accuracy(nr[0], fm_row))
        ratios.append(entry)
    return {"verdicts": verdicts, "wall_ratios": ratios, "equal_accuracy": equal}


NESTED = ("dynesty", "dynesty_nlive5000", "jaxns")


def equal_accuracy(nested: dict[str, Any], fm_row: dict[str, Any]) -> dict[str, Any]:
    """A nested run's wall time scaled to flowmc_like's standard error.

    A nested sampler's error of log Z is ``sqrt(H / n_live)`` (``H`` the information) and its
    cost grows as ``n_live``, so reaching a standard error ``SE_fm`` from a run that gave
    ``SE`` in ``t`` seconds takes about ``t (SE / SE_fm)^2``; the ``dynesty_nlive5000`` rows
    check that scaling against the default runs.
    """
    factor = (nested["standard_error"] / fm_row["standard_error"]) ** 2
    return {
        "target": nested["target"],
        "sampler": nested["sampler"],
        "method": nested["method"],
        "standard_error": nested["standard_error"],
        "wall_s": nested["wall_s"],
        "flowmc_like_standard_error": fm_row["standard_error"],
        "flowmc_like_wall_s": fm_row["wall_s"],
        "cost_factor": factor,
        "equal_accuracy_wall_s": nested["wall_s"] * factor,
        "equal_accuracy_ratio": nested["wall_s"] * factor / fm_row["wall_s"],
    }


def scaling_checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target: the default dynesty run against the one with 10x the live points."""
    out = []
    for target in TARGETS:
        pair = {
            r["sampler"]: r
            for r in rows
            if r["target"] == target and r["sampler"].startswith("dynesty") and not r.get("failed")
        }
        if {"dynesty", "dynesty_nlive5000"} <= set(pair):
            default, more = pair["dynesty"], pair["dynesty_nlive5000"]
            out.append(
                {
                    "target": target,
                    "se_ratio": default["standard_error"] / more["standard_error"],
                    "wall_ratio": more["wall_s"] / default["wall_s"],
                }
            )
    return out


# ----------------------------------------------------------------------------- report
def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _f(v: Any, nd: int = 4) -> str:
    """A log Z-scale number with ``nd`` decimals ("-" for None)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{nd}f}"


def _se_digits(se: float | None) -> int:
    if se is None or not math.isfinite(se) or se <= 0:
        return 4
    return max(3, min(6, 2 - math.floor(math.log10(se))))


def _label(r: dict[str, Any]) -> str:
    if r["sampler"] == "flowmc_like":
        return f"{r['sampler']} ({r['method']})"
    if r["sampler"] == "dynesty_nlive5000":
        return f"dynesty (nlive {DYNESTY_MORE_LIVE})"
    return r["sampler"]


MAIN_HEADER = [
    "target",
    "sampler",
    "log Z",
    "SE",
    "exact / reference",
    "error",
    "\\|err\\| / SE",
    "verdict",
    "wall s",
    "evidence s",
    "evaluations",
    "Pareto k (threshold)",
    "reliable",
]


def _main_row(r: dict[str, Any]) -> list[str]:
    if r.get("failed"):
        return [r["target"], _label(r), f"FAILED: {r['failed']}", *["-"] * 10]
    nd = _se_digits(r["standard_error"])
    ref = _f(r["reference"], 4)
    if r.get("reference_se"):
        ref += f" ± {_f(r['reference_se'], _se_digits(r['reference_se']))}"
    ev = r.get("evidence")
    verdict = r["verdict"] if r["verdict"] != "beyond 3 SE" else "**beyond 3 SE**"
    return [
        r["target"],
        _label(r),
        _f(r["log_z"], nd),
        _f(r["standard_error"], nd),
        ref,
        _f(r["error"], nd),
        fmt(r["abs_error_over_se"], 2),
        verdict,
        fmt(r["wall_s"]),
        fmt(r["evidence_s"]),
        f"{r['n_evaluations']:,}",
        f"{ev['pareto_k']:.2f} ({ev['k_threshold']:.2f})" if ev else "-",
        ("yes" if ev["is_reliable"] else "**no**") if ev else "-",
    ]


def comparison_markdown(comparison: list[dict[str, Any]]) -> str:
    """The eight schools model comparison table (hierarchical vs pooled)."""
    if not comparison:
        return ""
    exact = comparison[0]["exact"]
    rows = []
    for c in comparison:
        if c.get("failed"):
            rows.append([_label(c), "FAILED", "-", "-", _f(exact, 4), "-", "-", "-"])
            continue
        nd = _se_digits(c["standard_error"])
        rows.append(
            [
                _label(c),
                f"{_f(c['log_z_hierarchical'], nd)} ± {_f(c['se_hierarchical'], nd)}",
                f"{_f(c['log_z_pooled'], nd)} ± {_f(c['se_pooled'], nd)}",
                f"{_f(c['log_bayes_factor'], nd)} ± {_f(c['standard_error'], nd)}",
                _f(exact, 4),
                _f(c["error"], nd),
                fmt(c["abs_error_over_se"], 2),
                fmt(c["wall_s"]),
            ]
        )
    lines = _table(
        [
            "sampler",
            "log Z hierarchical",
            "log Z pooled",
            "log Bayes factor",
            "exact",
            "error",
            "\\|err\\| / SE",
            "wall s (both)",
        ],
        rows,
    )
    return "\n".join(lines) + "\n"


def build_markdown(payload: dict[str, Any]) -> str:
    """The Markdown report of `main`'s payload."""
    meta, rows, refs = payload["meta"], payload["rows"], payload["references"]
    git = meta["git"]
    lines = [
        "# Marginal likelihood: flowmc_like's evidence next to nested sampling",
        "",
        f"Generated {meta['generated']} by `{meta['command']}` ({meta['elapsed_s']:.0f} s) "
        f"at commit {(git['commit'] or '?')[:10]}"
        + (
            f" with uncommitted changes to {', '.join(git['library_changes'])}"
            if git["library_changes"]
            else ""
        )
        + f", seed {meta['seed']}.",
        "",
    ]
    if meta["quick"]:
        lines += ["**Quick mode** (smoke test): tiny settings, numbers meaningless.", ""]
    lines += [
        "Each sampler with its defaults; wall s = everything after the imports (target, "
        "starts, compilation, run and, for flowmc_like, the evidence estimate, whose own time "
        "is the evidence column), "
        + ("each run in a fresh process" if not meta["in_process"] else "all in one process")
        + ". SE = the sampler's stated standard error of log Z; \\|err\\| / SE divides by "
        "sqrt(SE^2 + SE_reference^2). Evaluations: flowmc_like's run (counted from the "
        "algorithm) plus its evidence draws; the nested samplers' likelihood calls. Pareto k: "
        "of the importance weights, against the library's threshold min(1 - 1/log10 n, 0.7). "
        "The problem, the priors the nested samplers use and every setting are in "
        "`benchmarks/evidence.py`'s docstring and below.",
        "",
        "## Results",
        "",
    ]
    lines += _table(MAIN_HEADER, [_main_row(r) for r in rows])
    s = payload["summary"]
    lines += ["", "## Summary", ""]
    by_target: dict[str, list[str]] = {}
    for v in s["verdicts"]:
        by_target.setdefault(v["target"], []).append(
            f"{_label(v)} {v['verdict'] if v['verdict'] != 'beyond 3 SE' else '**beyond 3 SE**'}"
        )
    lines += [f"- {t}: " + "; ".join(items) + "." for t, items in by_target.items()]
    if s["wall_ratios"]:
        lines += ["", "Wall-time ratio nested sampler / flowmc_like (importance row):", ""]
        for w in s["wall_ratios"]:
            parts = [
                f"{name} {fmt(w[f'{name}_over_flowmc_like'], 2)}"
                for name in NESTED
                if w.get(f"{name}_over_flowmc_like") is not None
            ]
            lines.append(
                f"- {w['target']} (flowmc_like {fmt(w['flowmc_like_wall_s'])} s): "
                + (", ".join(parts) or "no nested run")
                + "."
            )
    if s.get("equal_accuracy"):
        lines += ["", "## The same accuracy", ""]
        lines += [
            "Defaults give standard errors that differ by one to two orders of magnitude. "
            "A nested sampler's error falls as 1/sqrt(live points) and its cost grows as the "
            "live points, so its wall time to flowmc_like's (importance) standard error is "
            "about wall s x (SE / SE_flowmc_like)^2. The dynesty runs with "
            f"{DYNESTY_MORE_LIVE} live points (10x the default) measure that scaling.",
            "",
        ]
        lines += _table(
            [
                "target",
                "sampler",
                "SE",
                "wall s",
                "flowmc_like SE",
                "flowmc_like wall s",
                "wall s at flowmc_like's SE",
                "ratio to flowmc_like",
            ],
            [
                [
                    e["target"],
                    _label(e),
                    _f(e["standard_error"], _se_digits(e["standard_error"])),
                    fmt(e["wall_s"]),
                    _f(e["flowmc_like_standard_error"], 4),
                    fmt(e["flowmc_like_wall_s"]),
                    fmt(e["equal_accuracy_wall_s"]),
                    fmt(e["equal_accuracy_ratio"], 2),
                ]
                for e in s["equal_accuracy"]
            ],
        )
        checks = scaling_checks(rows)
        if checks:
            lines += ["", "Scaling check, dynesty default (500 live points) to 10x:", ""]
            lines += [
                f"- {c['target']}: SE {c['se_ratio']:.2f}x smaller (1/sqrt(n_live) predicts "
                f"{math.sqrt(10):.2f}x), wall time {c['wall_ratio']:.1f}x longer (n_live "
                "predicts 10x)."
                for c in checks
            ]
    if payload["comparison"]:
        lines += [
            "",
            "## Model comparison: eight schools, hierarchical vs complete pooling",
            "",
            "log Bayes factor = log Z(hierarchical) - log Z(pooled), SE = the two estimates' "
            "SEs combined (independent runs); exact from quadrature and the closed form.",
            "",
            comparison_markdown(payload["comparison"]).rstrip("\n"),
        ]
    lines += ["", "## References", ""]
    for name, ref in refs.items():
        if name == "mixture_10d":
            text = (
                f"exact {LOG_Z_TRUE} (log_prob = log mixture density + {LOG_Z_TRUE}); the "
                f"mixture's mass outside the nested samplers' box [-{BOX:g}, {BOX:g}]^"
                f"{MIX_DIM}: {ref['box_mass_outside']:.1e}; their log Z + {MIX_DIM} log "
                f"{2 * BOX:g} = + {MIX_DIM * math.log(2 * BOX):.4f}"
            )
        elif name == "eight_schools":
            text = (
                f"{ref['log_z']:.6f} by quadrature in u (quad's relative error bound "
                f"{ref['quad_error']:.0e}); in tau on [0, inf): {ref['log_z_tau']:.6f}"
            )
        elif name == "eight_schools_pooled":
            text = f"{ref['log_z']:.6f} in closed form"
        else:
            text = (
                f"{ref['log_z']:.5f} ± {ref['standard_error']:.5f}: {ref['how']}, seed "
                f"{ref['settings']['seed']}; Pareto k of its weights {ref['pareto_k']:.2f}, "
                f"ESS {ref['ess']:.3g}; Laplace approximation {ref['laplace_log_z']:.4f}; "
                f"flowmc_like's log Z (of reuse.log_prob, prior constant left out) converted "
                f"by {-0.5 * reuse.N_DIM * math.log(2 * math.pi):.4f}"
            )
        lines.append(f"- {name}: {text}.")
    lines += ["", "## Runs", ""]
    run_rows = []
    seen = set()
    for r in rows:
        if r.get("failed") or (r["target"], r["sampler"]) in seen:
            continue
        seen.add((r["target"], r["sampler"]))
        if r["sampler"] == "flowmc_like":
            detail = (
                f"{r['n_chains']} chains, {r['n_training_loops']} + {r['n_production_loops']} "
                f"loops ({r['n_draws_per_chain']} draws per chain), run {fmt(r['run_s'])} s "
                f"(compile {fmt(r['timings'].get('compile'))} s), run evaluations "
                f"{r['run_evaluations']:,}"
            )
        elif r["sampler"].startswith("dynesty"):
            st = r["settings"]
            detail = (
                f"nlive {st['nlive']}, bound {st['bound']}, sampler {st['sample']}, "
                f"{r['n_iterations']:,} iterations, efficiency {r['efficiency_percent']:.2f}%, "
                f"information {r['information']:.2f} nats"
            )
        else:
            detail = (
                f"{r['n_samples']:,} samples, ESS {r['ess']:.0f}, information "
                f"{r['information']:.2f} nats, termination reason {r['termination_reason']}"
            )
        if r.get("warnings"):
            detail += "; warnings: " + " / ".join(_short(w) for w in r["warnings"])
        load = r.get("loadavg_start")
        run_rows.append(
            [
                r["target"],
                r["sampler"],
                detail,
                fmt(r.get("import_s")),
                fmt(r.get("cpu_s")),
                "-" if load is None else f"{load[0]:.2f}",
            ]
        )
    lines += _table(
        ["target", "sampler", "run", "import s", "CPU s", "load average (1 min) at start"],
        run_rows,
    )
    failed = [r for r in rows if r.get("failed")]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {r['target']} / {r['sampler']}: FAILED: {r['failed']}" for r in failed]
    lines += ["", "## Machine", "", machine_section(meta["machine"]), ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- driver
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.evidence", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown path (+ .json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    p.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    p.add_argument("--n-chains", type=int, default=None, help=f"{N_CHAINS} (--quick: 8)")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    p.add_argument("--recompute-reference", action="store_true")
    p.add_argument("--in-process", action="store_true", help="no subprocess per run")
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    p.add_argument("--worker", nargs=2, metavar=("TARGET", "SAMPLER"), help=argparse.SUPPRESS)
    p.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    args.samplers_given = "--samplers" in given
    args.targets_given = "--targets" in given
    if args.n_chains is None:
        args.n_chains = 8 if args.quick else N_CHAINS
    return args


def _versions() -> dict[str, str | None]:
    out = {}
    for name in ("dynesty", "jaxns", "numpyro", "scipy", "tfp-nightly"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every sampler on every target, write the Markdown and the JSON."""
    args = _parse_args(argv)
    if args.worker:
        return _worker(args)
    from benchmarks.run import machine_info
    from benchmarks.worker import _cpu_model

    load0 = os.getloadavg()
    t0 = time.time()
    refs = references(args.targets, args.reference, args.recompute_reference, args.quick)
    rows: list[dict[str, Any]] = []
    # sampler-major: in one process jaxns (which switches JAX to float64) comes last
    named_both = args.samplers_given and args.targets_given
    for sampler in args.samplers:
        for target in args.targets:
            if (target, sampler) in SKIPPED_BY_DEFAULT and not named_both:
                continue
            print(f"[evidence] {sampler} on {target} ...", flush=True)
            got = (
                run_one(target, sampler, args.seed, args.n_chains, args.quick)
                if args.in_process
                else run_in_subprocess(target, sampler, args)
            )
            for r in got:
                r = score(r, refs[target])
                rows.append(r)
                if r.get("failed"):
                    print(f"  FAILED: {r['failed']}", flush=True)
                else:
                    print(
                        f"  {_label(r)}: log Z {r['log_z']:.4f} ± {r['standard_error']:.4f} "
                        f"(reference {r['reference']:.4f}, |err|/SE "
                        f"{r['abs_error_over_se']:.2f}), wall {r['wall_s']:.1f} s",
                        flush=True,
                    )
    order = {t: i for i, t in enumerate(TARGETS)}
    rows.sort(key=lambda r: order[r["target"]])  # stable: sampler order kept per target
    env = {"cpu": _cpu_model(), "backend": jax.default_backend(), "x64": False}
    machine = machine_info(env, load0)
    machine["versions"].update(_versions())
    meta = {
        "generated": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m benchmarks.evidence", *(sys.argv[1:] if argv is None else argv)]
        ),
        "elapsed_s": time.time() - t0,
        "quick": args.quick,
        "seed": args.seed,
        "n_chains": args.n_chains,
        "targets": args.targets,
        "samplers": args.samplers,
        "in_process": args.in_process,
        "reference_path": reuse._display_path(args.reference),
        "settings": {
            "flowmc_like": QUICK_FLOWMC if args.quick else "library defaults",
            "evidence_samples": QUICK_EVIDENCE_SAMPLES if args.quick else EVIDENCE_SAMPLES,
            "dynesty": QUICK_DYNESTY if args.quick else "defaults",
            "jaxns": QUICK_JAXNS if args.quick else "defaults",
        },
        "machine": machine,
        "platform": platform.platform(),
        "git": reuse.git_state(),
    }
    payload = {
        "meta": meta,
        "references": refs,
        "summary": summarize(rows, args.targets),
        "comparison": model_comparison(rows, refs),
        "rows": rows,
    }
    out_md = Path(args.out)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.with_suffix(".json").write_text(
        json.dumps(payload, indent=1, default=json_default) + "\n"
    )
    out_md.write_text(build_markdown(payload))
    written = [out_md, out_md.with_suffix(".json")]
    if payload["comparison"]:
        comp = out_md.with_name(out_md.stem + "_comparison.md")
        comp.write_text(comparison_markdown(payload["comparison"]))
        written.append(comp)
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if any(r.get("failed") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
