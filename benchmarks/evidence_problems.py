"""The targets of `benchmarks.evidence`: log densities, priors as nested samplers see
them, exact values and the regression's reference (see that module's docstring)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import reuse
from benchmarks.jsonable import json_default

TARGETS = ("mixture_10d", "eight_schools", "eight_schools_pooled", "logistic_regression")


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
