"""The hot replicas' draws as training examples for the flow.

With tempering, the hot replicas visit modes the chains have not reached yet. Their draws,
importance-reweighted towards ``beta = 1`` with weights tempered down until half of them
stay effective, join the flow's training examples, so the flow learns a mode before any
chain is in it (see `flowmc_like.tempering` for the replicas themselves).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like._types import Array, PRNGKey

__all__ = ["HOT_EXAMPLE_ESS", "HotDraws", "reweighted_hot_examples"]


class HotDraws(NamedTuple):
    """The hot replicas' positions at exchange rounds, with their tempered part.

    Attributes:
        position: ``(..., K - 1, n_dim)`` positions of levels ``1 .. K - 1``.
        log_likelihood: ``(..., K - 1)`` their ``L = log p - log_prior``.
    """

    position: Array
    log_likelihood: Array


HOT_EXAMPLE_ESS = 0.5
"""The share of a level's draws its partial importance weights keep as effective draws."""


def _partial_weights(log_weight: Array, min_ess_share: float, n_bisections: int = 20) -> Array:
    """Normalised weights ``w**gamma`` per column, ``gamma`` as large as the ESS allows.

    ``gamma`` is the largest in [0, 1] keeping an effective sample size of at least
    ``min_ess_share`` of the column's finite entries.

    Args:
        log_weight: ``(n, L)`` log weights (-inf where a draw is excluded).
        min_ess_share: the ESS to keep, as a share of the finite entries.
        n_bisections: bisection steps on ``gamma``.

    Returns:
        ``(n, L)`` weights, each column summing to 1 (0 for a column with no finite entry).
    """
    is_finite = jnp.isfinite(log_weight)
    n_finite = jnp.sum(is_finite, axis=0)
    centred = log_weight - jnp.max(jnp.where(is_finite, log_weight, -jnp.inf), axis=0)
    centred = jnp.where(is_finite, centred, -jnp.inf)

    def normalised(gamma: Array) -> Array:
        weight = jnp.where(is_finite, jnp.exp(gamma * jnp.where(is_finite, centred, 0.0)), 0.0)
        return weight / jnp.maximum(jnp.sum(weight, axis=0), jnp.finfo(weight.dtype).tiny)

    def ess(gamma: Array) -> Array:
        weight = normalised(gamma)
        return 1.0 / jnp.maximum(jnp.sum(weight**2, axis=0), jnp.finfo(weight.dtype).tiny)

    target = min_ess_share * n_finite
    low = jnp.zeros(log_weight.shape[1], log_weight.dtype)
    high = jnp.ones_like(low)
    full = ess(high) >= target

    def bisect(_: int, bounds: tuple[Array, Array]) -> tuple[Array, Array]:
        low, high = bounds
        middle = 0.5 * (low + high)
        keeps = ess(middle) >= target
        return jnp.where(keeps, middle, low), jnp.where(keeps, high, middle)

    low, _ = jax.lax.fori_loop(0, n_bisections, bisect, (low, high))
    weight = normalised(jnp.where(full, 1.0, low))
    return jnp.where(n_finite > 0, weight, 0.0)


def reweighted_hot_examples(key: PRNGKey, hot: HotDraws, betas: Array, n_examples: int) -> Array:
    """Hot replicas' draws resampled with partial importance weights towards ``beta = 1``.

    A draw of level ``k`` (density ``prior * exp(beta_k L)``) has the importance weight
    ``exp((1 - beta_k) L)`` to the target. Exact weights collapse on the few draws of the
    narrowest, densest mode (at a hot level the broad modes hold most draws; that is how the
    hot replicas find them), and would teach the flow nothing new; so each level's weights
    are raised to the largest power ``gamma <= 1`` that keeps half its draws effective
    (`HOT_EXAMPLE_ESS`). Levels are pooled with shares proportional to ``beta_k``, so the
    least tempered (closest in shape to the target) contribute most. The result covers
    where the hot replicas went, modes the chains have not reached included, in shapes
    between the tempered and the target's: a flow trained on them also proposes there. The
    flow is only the global move's proposal, so whatever it trains on, the global move stays
    exact.

    Args:
        key: PRNG key.
        hot: draws with leaves ``(n_chains, n_rounds, K - 1, ...)``.
        betas: ``(K,)`` the ladder.
        n_examples: draws to return (static).

    Returns:
        ``(n_examples, n_dim)`` draws.
    """
    n_levels = betas.shape[0] - 1
    position = hot.position.reshape(-1, n_levels, hot.position.shape[-1])
    log_likelihood = hot.log_likelihood.reshape(-1, n_levels)
    log_weight = (1 - betas[1:].astype(log_likelihood.dtype)) * log_likelihood
    weight = _partial_weights(
        jnp.where(jnp.isfinite(log_weight), log_weight, -jnp.inf), HOT_EXAMPLE_ESS
    )
    level_share = betas[1:].astype(weight.dtype) * (jnp.sum(weight, axis=0) > 0)
    level_share = level_share / jnp.maximum(jnp.sum(level_share), 1e-30)
    pooled = (weight * level_share).reshape(-1)
    total = jnp.sum(pooled)
    probability = jnp.where(total > 0, pooled / jnp.maximum(total, 1e-30), 1.0 / pooled.size)
    cumulative = jnp.cumsum(probability)
    uniforms = jax.random.uniform(key, (n_examples,), cumulative.dtype) * cumulative[-1]
    index = jnp.clip(jnp.searchsorted(cumulative, uniforms, side="right"), 0, pooled.size - 1)
    return position.reshape(-1, position.shape[-1])[index]
