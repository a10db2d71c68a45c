"""The marginal likelihood ``log Z`` from a trained global model, with its standard error.

A trained flow (or autoregressive model) ``q`` is exactly normalised and close to the
target ``p(x) = f(x) / Z``. Two estimators of ``Z = integral f``:

- **Importance sampling** (``method="importance"``): ``n`` independent draws ``x_i ~ q``,
  weights ``w_i = f(x_i) / q(x_i)``, ``Z_hat = mean(w)``. Its standard error on the log scale
  is the delta-method ``sd(w) / (sqrt(n) mean(w))``. That error bar is only honest when the
  weights have a finite variance, i.e. when ``q`` has tails at least as heavy as ``p``; the
  Pareto k-hat of the weights' right tail (PSIS, computed by ArviZ) measures it: below
  ``min(1 - 1 / log10(n), 0.7)`` the estimate is reliable (Vehtari, Simpson, Gelman, Yao and
  Gabry, Pareto smoothed importance sampling, 2024).
- **Bridge sampling** (``method="bridge"``): the optimal bridge of Meng and Wong (1996), which
  uses the same draws from ``q`` and the run's MCMC draws from ``p`` (whose ``f`` the run
  already computed). It stays finite-variance when ``q`` is lighter-tailed than ``p`` in
  places; its relative error follows Fruehwirth-Schnatter (2004), with the MCMC draws
  counted by their effective sample size.

For a flow the proposal is a defensive mixture of the flow and the flow pushed forward
from a widened base (`DEFENSIVE_SHARE`), still exactly normalised. Both estimators work on
the sampler's flat positions, so for a `flowmc_like.from_numpyro` target
(whose density on the unconstrained space includes the Jacobian of the map to the
constrained one) ``Z`` is the model's evidence, prior times likelihood; for a discrete
target ``q`` is a probability mass function and ``Z`` the partition function.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import typing
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, PRNGKey, PyTree
from flowmc_like.exporters.arviz import ess_bulk, pareto_k
from flowmc_like.models.base import AbstractFlow, AbstractGlobalModel, ModelParams

__all__ = [
    "EvidenceWarning",
    "LogEvidence",
    "bridge_log_evidence",
    "draw_weights",
    "estimate_log_evidence",
    "importance_log_evidence",
    "pareto_threshold",
    "proposal_log_prob",
    "proposal_sample_and_log_prob",
]

BATCH_SIZE = 1024
"""Draws per compiled batch (the last batch is padded, so any ``n_samples`` compiles once)."""

DEFENSIVE_SHARE = 0.2
"""Share of the evidence's proposal drawn through a flow from a widened base.

For a flow ``x = T(z)`` the proposal is ``(1 - a) q + a q_wide`` with ``q_wide`` the
push-forward of ``N(0, s^2 I)`` (``a`` this share, ``s`` `DEFENSIVE_SCALE`): a defensive
mixture (Hesterberg, 1995) whose density is exact (``|dz/dx|`` times the base mixture) and
whose tails are heavier than the flow's, so a flow slightly too narrow somewhere does not
give importance weights of infinite variance. Discrete models are used as they are (their
weights are bounded on a finite space)."""

DEFENSIVE_SCALE = 2.0
"""Base-space widening of the defensive component (see `DEFENSIVE_SHARE`)."""

BRIDGE_MAX_PARETO_K = 1.0
"""Pareto k of the importance weights above which a bridge estimate is not trusted.

The bridge's own terms are bounded, so it tolerates weights of infinite variance (k up to
1) where importance sampling does not; beyond 1 the weights have no finite mean: the model
misses part of the target's mass and the two sets of draws barely overlap."""

MAX_BRIDGE_ITERATIONS = 1000
BRIDGE_TOLERANCE = 1e-10


class EvidenceWarning(UserWarning):
    """The evidence estimate cannot be trusted (its diagnostic is past the threshold)."""


@dataclasses.dataclass(frozen=True)
class LogEvidence:
    """An estimate of ``log Z`` with its standard error and reliability diagnostic.

    Attributes:
        log_z: the estimate of ``log Z``.
        standard_error: its Monte Carlo standard error (on the log scale).
        pareto_k: Pareto k-hat of the importance weights ``f / q`` of the model's draws.
        k_threshold: the k-hat above which the estimate is not trusted: importance
            sampling ``min(1 - 1 / log10(n_samples), 0.7)``, bridge sampling 1.
        ess: effective number of the importance draws, ``(sum w)^2 / sum w^2``.
        n_samples: draws from the model.
        n_evaluations: target evaluations the estimate made (the MCMC draws a bridge
            estimate also uses were evaluated by the run).
        method: ``"importance"`` or ``"bridge"``.
        is_reliable: ``pareto_k`` is finite and at most ``k_threshold`` and every weight
            is finite.
        seconds: wall time of the estimate, compilation included.
        n_nonfinite: model draws where the target's log density was NaN (counted as
            weight 0).
    """

    log_z: float
    standard_error: float
    pareto_k: float
    k_threshold: float
    ess: float
    n_samples: int
    n_evaluations: int
    method: str
    is_reliable: bool
    seconds: float = 0.0
    n_nonfinite: int = 0

    def __str__(self) -> str:
        verdict = "reliable" if self.is_reliable else "NOT reliable"
        return (
            f"log Z = {self.log_z:.4f} +- {self.standard_error:.4f} ({self.method}, "
            f"{self.n_samples} draws, Pareto k {self.pareto_k:.2f} vs {self.k_threshold:.2f}: "
            f"{verdict})"
        )


def pareto_threshold(n_samples: int) -> float:
    """The k-hat above which ``n_samples`` importance draws are not trusted (PSIS rule)."""
    return float(min(1.0 - 1.0 / math.log10(max(n_samples, 11)), 0.7))


def _log_base_mixture(z: Array) -> Array:
    """Log density of ``(1 - a) N(0, I) + a N(0, s^2 I)`` at ``z (n_dim,)``; ``()``."""
    n_dim = z.shape[-1]
    log_normal = -0.5 * jnp.sum(z**2) - 0.5 * n_dim * jnp.log(2 * jnp.pi)
    log_wide = log_normal + 0.5 * jnp.sum(z**2) * (1 - DEFENSIVE_SCALE**-2)
    log_wide = log_wide - n_dim * jnp.log(DEFENSIVE_SCALE)
    return jnp.logaddexp(
        jnp.log1p(-DEFENSIVE_SHARE) + log_normal, jnp.log(DEFENSIVE_SHARE) + log_wide
    )


def proposal_sample_and_log_prob(
    model: AbstractGlobalModel, params: ModelParams, key: PRNGKey, n_dim: int
) -> tuple[Array, Array]:
    """One draw of the evidence's proposal and its log density (see `DEFENSIVE_SHARE`)."""
    if not isinstance(model, AbstractFlow):
        return model.sample_and_log_prob(params, key)
    normal_key, choice_key = jax.random.split(key)
    z = jax.random.normal(normal_key, (n_dim,), _float_dtype(params))
    z = jnp.where(jax.random.uniform(choice_key) < DEFENSIVE_SHARE, DEFENSIVE_SCALE * z, z)
    x, log_det = model.forward_and_log_det(params, z)
    return x, _log_base_mixture(z) - log_det


def proposal_log_prob(model: AbstractGlobalModel, params: ModelParams, x: Array) -> Array:
    """The evidence proposal's log density at ``x (n_dim,)``; ``()``."""
    if not isinstance(model, AbstractFlow):
        return model.log_prob(params, x)
    z, log_det = model.inverse_and_log_det(params, x)
    return _log_base_mixture(z) + log_det


def _float_dtype(params: ModelParams) -> typing.Any:
    leaves = [leaf for leaf in jax.tree.leaves(params) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return leaves[0].dtype if leaves else jnp.result_type(float)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _draw_batch(
    model: AbstractGlobalModel,
    flat_log_prob: Callable[[Array, PyTree], Array],
    n_dim: int,
    params: ModelParams,
    data: PyTree,
    keys: Array,
) -> tuple[Array, Array, Array]:
    """``(x (B, n_dim), log q (B,), log f (B,))`` for one batch of keys ``(B,)``."""

    def one(key: PRNGKey) -> tuple[Array, Array]:
        return proposal_sample_and_log_prob(model, params, key, n_dim)

    x, log_q = jax.vmap(one)(keys)
    log_f = jax.vmap(flat_log_prob, in_axes=(0, None))(x, data)
    return x, log_q, log_f


def draw_weights(
    model: AbstractGlobalModel,
    params: ModelParams,
    flat_log_prob: Callable[[Array, PyTree], Array],
    data: PyTree,
    key: PRNGKey,
    n_samples: int,
    n_dim: int,
    batch_size: int = BATCH_SIZE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_samples`` draws of the proposal with their ``log q`` and the target's ``log f``.

    Args:
        model: the global model; ``params`` its params.
        params: `ModelParams`.
        flat_log_prob: ``(x (n_dim,), data) -> ()`` the target on flat positions.
        data: the target's data (None without).
        key: PRNG key.
        n_samples: number of draws.
        n_dim: length of a flat position.
        batch_size: draws per compiled batch.

    Returns:
        numpy ``x (n_samples, n_dim)``, ``log_q (n_samples,)``, ``log_f (n_samples,)``.
    """
    batch_size = int(min(batch_size, n_samples))
    n_batches = -(-n_samples // batch_size)
    keys = jax.random.split(key, n_batches * batch_size).reshape((n_batches, batch_size))
    params = jax.tree.map(jnp.asarray, params)
    parts = [_draw_batch(model, flat_log_prob, n_dim, params, data, batch) for batch in keys]
    x, log_q, log_f = (np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(3))
    return x[:n_samples], log_q[:n_samples], log_f[:n_samples]


def _log_mean_exp(values: np.ndarray) -> float:
    top = float(np.max(values))
    return top + math.log(float(np.mean(np.exp(values - top))))


def _relative_variance(log_values: np.ndarray) -> float:
    """``Var(v) / E(v)^2`` of ``v = exp(log_values)``, computed stably."""
    scaled = np.exp(log_values - np.max(log_values))
    mean = float(np.mean(scaled))
    return float(np.var(scaled, ddof=1)) / mean**2


def _clean(log_f: np.ndarray, log_q: np.ndarray, where: str) -> tuple[np.ndarray, int]:
    """``log f - log q`` with NaN as weight 0 (counted); +inf or a bad ``log q`` raise."""
    if not np.all(np.isfinite(log_q)):
        raise ValueError(f"{where}: the model's log q is not finite at some of its own draws")
    if np.any(log_f == np.inf):
        raise ValueError(f"{where}: the target's log density is +inf at some model draws")
    is_nan = np.isnan(log_f)
    return np.where(is_nan, -np.inf, log_f - log_q), int(is_nan.sum())


def _verdict(pareto_k_hat: float, threshold: float, n_nonfinite: int, where: str) -> bool:
    """True when trusted; otherwise an `EvidenceWarning` says why."""
    is_reliable = bool(np.isfinite(pareto_k_hat) and pareto_k_hat <= threshold)
    if not is_reliable:
        also = "" if "bridge" in where else ", or try method='bridge'"
        warnings.warn(
            f"{where}: the importance weights have Pareto k = {pareto_k_hat:.2f} > "
            f"{threshold:.2f}: the model misses part of the target's mass, so log Z and its "
            "standard error cannot be trusted. Train longer (more training loops) or use a "
            f"more flexible global model{also}.",
            EvidenceWarning,
            stacklevel=5,
        )
    if n_nonfinite:
        warnings.warn(
            f"{where}: the target's log density was NaN at {n_nonfinite} of the model's "
            "draws; they count as weight 0, which biases log Z if the target has mass there.",
            EvidenceWarning,
            stacklevel=5,
        )
    return is_reliable


def importance_log_evidence(
    log_q: np.ndarray, log_f: np.ndarray, *, seconds: float = 0.0
) -> LogEvidence:
    """``log Z`` by importance sampling from draws of the model.

    Args:
        log_q: ``(n,)`` the model's normalised log density at its own draws.
        log_f: ``(n,)`` the target's unnormalised log density at the same draws.
        seconds: wall time spent drawing, reported in the estimate.

    Returns:
        `LogEvidence` (warns with `EvidenceWarning` when it is not reliable).
    """
    log_f, log_q = np.asarray(log_f, np.float64), np.asarray(log_q, np.float64)
    log_w, n_nan = _clean(log_f, log_q, "log_evidence")
    n = log_w.size
    if not np.any(np.isfinite(log_w)):
        raise ValueError("log_evidence: the target's density is 0 at every draw of the model")
    log_z = _log_mean_exp(log_w)
    standard_error = math.sqrt(_relative_variance(log_w) / n)
    scaled = np.exp(log_w - np.max(log_w))
    ess = float(scaled.sum() ** 2 / np.sum(scaled**2))
    k_hat = pareto_k(log_w, max_weights=None)
    threshold = pareto_threshold(n)
    return LogEvidence(
        log_z=log_z,
        standard_error=standard_error,
        pareto_k=k_hat,
        k_threshold=threshold,
        ess=ess,
        n_samples=n,
        n_evaluations=n,
        method="importance",
        is_reliable=_verdict(k_hat, threshold, n_nan, "log_evidence"),
        seconds=seconds,
        n_nonfinite=n_nan,
    )


def bridge_log_evidence(
    log_q: np.ndarray,
    log_f: np.ndarray,
    chain_log_q: np.ndarray,
    chain_log_f: np.ndarray,
    *,
    seconds: float = 0.0,
) -> LogEvidence:
    """``log Z`` by optimal bridge sampling between the model and the MCMC draws.

    Iterates Meng and Wong's fixed point ``r = mean_q[l / (s1 l + s2 r)] / mean_p[1 / (s1 l
    + s2 r)]`` with ``l = f / q``, ``s1, s2`` the shares of the two sets of draws (the
    MCMC one counted by its effective size). The relative squared error is Fruehwirth-
    Schnatter's ``Var_q(g1) / (n2 E_q(g1)^2) + Var_p(g2) / (ESS E_p(g2)^2)``.

    Args:
        log_q: ``(n,)`` the model's log density at its own draws.
        log_f: ``(n,)`` the target's log density at the same draws.
        chain_log_q: ``(n_chains, n_draws)`` the model's log density at the MCMC draws.
        chain_log_f: ``(n_chains, n_draws)`` the target's at the MCMC draws.
        seconds: wall time spent drawing, reported in the estimate.

    Returns:
        `LogEvidence` with ``method="bridge"``; its ``pareto_k`` is that of the importance
        weights of the model's draws, trusted up to `BRIDGE_MAX_PARETO_K` (an
        `EvidenceWarning` above).
    """
    log_l2, n_nan = _clean(np.asarray(log_f, np.float64), np.asarray(log_q, np.float64), "bridge")
    log_l1 = np.asarray(chain_log_f, np.float64) - np.asarray(chain_log_q, np.float64)
    if not np.all(np.isfinite(log_l1)):
        raise ValueError("log_evidence: a non-finite log density at the run's MCMC draws")
    n2 = log_l2.size
    n1 = float(np.clip(np.min(ess_bulk(log_l1[..., None])), 1.0, log_l1.size))
    s1, s2 = n1 / (n1 + n2), n2 / (n1 + n2)
    log_s1, log_s2 = math.log(s1), math.log(s2)
    flat_l1 = log_l1.ravel()
    log_r = _log_mean_exp(log_l2)  # the importance estimate starts the iteration
    for _ in range(MAX_BRIDGE_ITERATIONS):
        denominator_q = np.logaddexp(log_s1 + log_l2, log_s2 + log_r)
        denominator_p = np.logaddexp(log_s1 + flat_l1, log_s2 + log_r)
        new = _log_mean_exp(log_l2 - denominator_q) - _log_mean_exp(-denominator_p)
        if abs(new - log_r) < BRIDGE_TOLERANCE:
            log_r = new
            break
        log_r = new
    g1 = log_l2 - np.logaddexp(log_s1 + log_l2, log_s2 + log_r)
    g2 = -np.logaddexp(log_s1 + flat_l1, log_s2 + log_r)
    relative_variance = _relative_variance(g1) / n2 + _relative_variance(g2) / n1
    scaled = np.exp(log_l2 - np.max(log_l2))
    k_hat = pareto_k(log_l2, max_weights=None)
    is_reliable = _verdict(k_hat, BRIDGE_MAX_PARETO_K, n_nan, "log_evidence(method='bridge')")
    return LogEvidence(
        log_z=float(log_r),
        standard_error=math.sqrt(relative_variance),
        pareto_k=k_hat,
        k_threshold=BRIDGE_MAX_PARETO_K,
        ess=float(scaled.sum() ** 2 / np.sum(scaled**2)),
        n_samples=n2,
        n_evaluations=n2,
        method="bridge",
        is_reliable=is_reliable and bool(np.isfinite(relative_variance)) and n_nan == 0,
        seconds=seconds,
        n_nonfinite=n_nan,
    )


def estimate_log_evidence(
    model: AbstractGlobalModel,
    params: ModelParams,
    flat_log_prob: Callable[[Array, PyTree], Array],
    data: PyTree,
    key: PRNGKey,
    n_samples: int,
    n_dim: int,
    method: str = "importance",
    chain_positions: np.ndarray | None = None,
    chain_log_prob: np.ndarray | None = None,
) -> LogEvidence:
    """Draw from the model, evaluate the target and estimate ``log Z`` by ``method``.

    Args:
        model: the trained global model.
        params: its params.
        flat_log_prob: ``(x (n_dim,), data) -> ()`` the target on flat positions.
        data: the target's data.
        key: PRNG key of the draws.
        n_samples: draws from the model.
        n_dim: length of a flat position.
        method: ``"importance"`` or ``"bridge"``.
        chain_positions: ``(n_chains, n_draws, n_dim)`` MCMC draws (bridge only).
        chain_log_prob: ``(n_chains, n_draws)`` their target log density (bridge only).
    """
    start = time.perf_counter()
    _, log_q, log_f = draw_weights(model, params, flat_log_prob, data, key, n_samples, n_dim)
    if method == "importance":
        return importance_log_evidence(log_q, log_f, seconds=time.perf_counter() - start)
    assert chain_positions is not None and chain_log_prob is not None
    n_chains, n_draws = chain_positions.shape[:2]
    chain_log_q = _model_log_prob(model, params, chain_positions.reshape((-1, n_dim)))
    return bridge_log_evidence(
        log_q,
        log_f,
        chain_log_q.reshape((n_chains, n_draws)),
        chain_log_prob,
        seconds=time.perf_counter() - start,
    )


@functools.partial(jax.jit, static_argnums=0)
def _model_log_prob_batch(model: AbstractGlobalModel, params: ModelParams, x: Array) -> Array:
    return jax.vmap(functools.partial(proposal_log_prob, model), in_axes=(None, 0))(params, x)


def _model_log_prob(model: AbstractGlobalModel, params: ModelParams, x: np.ndarray) -> np.ndarray:
    """``log q`` of many positions ``(m, n_dim)`` in padded batches (one compile)."""
    params = jax.tree.map(jnp.asarray, params)
    m = x.shape[0]
    batch = min(BATCH_SIZE, m)
    n_padded = -(-m // batch) * batch
    padded = np.concatenate([x, np.repeat(x[:1], n_padded - m, axis=0)])
    parts = [
        np.asarray(_model_log_prob_batch(model, params, jnp.asarray(padded[i : i + batch])))
        for i in range(0, n_padded, batch)
    ]
    return np.concatenate(parts)[:m]
