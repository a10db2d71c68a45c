"""Conformance checks of discrete global models (``space is Space.DISCRETE``).

Events are integer vectors ``(n_dim,)`` with values in ``[0, n_categories)``; the state
spaces used here are small enough to enumerate, so normalisation and sampling frequencies are
checked exactly. Each check raises `ConformanceError`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, ArrayLike, PRNGKey
from flowmc_like.conformance._core import (
    chi_square_p_value,
    pooled_chi_square,
    require,
    require_close,
)
from flowmc_like.conformance.flows import (
    batched_log_prob,
    batched_sample,
    check_model_sample_and_log_prob_agree,
)
from flowmc_like.models.base import AbstractGlobalModel, ModelParams

__all__ = [
    "check_discrete_model_autoregressive",
    "check_discrete_model_invariant",
    "check_discrete_model_normalized",
    "check_discrete_model_sample_and_log_prob_agree",
    "check_discrete_model_sample_frequencies",
    "check_discrete_model_uniform_at_init",
    "enumerate_states",
]


def enumerate_states(n_dim: int, n_categories: int) -> np.ndarray:
    """Every state of ``{0, ..., n_categories - 1}^n_dim`` in lexicographic order.

    Args:
        n_dim: number of sites.
        n_categories: number of categories per site.

    Returns:
        int32 numpy array ``(n_categories ** n_dim, n_dim)``; row ``r`` is ``r`` written in
        base ``n_categories``, most significant site first.
    """
    index = np.arange(n_categories**n_dim)
    powers = n_categories ** np.arange(n_dim - 1, -1, -1)
    return ((index[:, None] // powers[None, :]) % n_categories).astype(np.int32)


def _all_log_probs(
    model: AbstractGlobalModel, params: ModelParams, n_dim: int, n_categories: int
) -> tuple[np.ndarray, np.ndarray]:
    states = enumerate_states(n_dim, n_categories)
    log_q = batched_log_prob(model, params, jnp.asarray(states))
    return states, np.asarray(log_q, dtype=np.float64)


def _log_sum_exp(values: np.ndarray) -> float:
    top = float(np.max(values))
    return top + float(np.log(np.sum(np.exp(values - top))))


def check_discrete_model_normalized(
    model: AbstractGlobalModel,
    params: ModelParams,
    n_dim: int,
    n_categories: int,
    atol: float = 1e-5,
) -> np.ndarray:
    """``sum_s exp(log_prob(s)) == 1`` by full enumeration of the ``K^n_dim`` states.

    Args:
        model: a discrete model.
        params: its params (for ``n_dim`` sites).
        n_dim: number of sites (keep ``K^n_dim`` small, e.g. ``<= 4096``).
        n_categories: number of categories ``K``.
        atol: tolerance on the total probability.

    Returns:
        ``log_prob`` of every state ``(K^n_dim,)``, float64, in `enumerate_states` order.
    """
    check = "normalized"
    states, log_q = _all_log_probs(model, params, n_dim, n_categories)
    bad = ~np.isfinite(log_q)
    require(
        not np.any(bad),
        check,
        f"log_prob is not finite at {int(bad.sum())} valid states, e.g. {states[bad][:1].tolist()}",
    )
    total = float(np.exp(_log_sum_exp(log_q)))
    require(
        abs(total - 1.0) <= atol,
        check,
        f"exp(log_prob) summed over all {len(states)} states is {total:.6f}; expected 1 "
        f"within {atol}",
    )
    return log_q


def check_discrete_model_uniform_at_init(
    model: AbstractGlobalModel,
    key: PRNGKey,
    n_dim: int,
    n_categories: int,
    n_samples: int = 64,
    atol: float = 1e-5,
) -> None:
    """A fresh model is uniform: ``log_prob(s) = -n_dim log K`` for every state and every draw.

    Args:
        model: a discrete model.
        key: PRNG key.
        n_dim: number of sites (small enough to enumerate).
        n_categories: number of categories ``K``.
        n_samples: number of draws whose ``log_q`` is checked.
        atol: tolerance on log probabilities.
    """
    key_init, key_sample = jax.random.split(key)
    params = model.init(key_init, n_dim)
    expected = -n_dim * np.log(n_categories)
    _, log_q = _all_log_probs(model, params, n_dim, n_categories)
    check = "uniform_at_init"
    require_close(
        check, "log_prob of a fresh model vs -n_dim log K", log_q, expected, rtol=0, atol=atol
    )
    _, sampled = batched_sample(model, params, key_sample, n_samples)
    require_close(
        check,
        "log_q of a fresh model's draws vs -n_dim log K",
        sampled,
        expected,
        rtol=0,
        atol=atol,
    )


def check_discrete_model_sample_and_log_prob_agree(
    model: AbstractGlobalModel,
    params: ModelParams,
    key: PRNGKey,
    n_categories: int,
    n_samples: int = 1024,
    rtol: float = 1e-5,
    atol: float = 1e-4,
) -> tuple[Array, Array]:
    """Draws are int32 in ``[0, K)``, and their ``log_q`` equals ``log_prob`` (jit + vmap).

    Args:
        model: a discrete model.
        params: its params.
        key: PRNG key.
        n_categories: number of categories ``K``.
        n_samples: number of draws.
        rtol: relative tolerance.
        atol: absolute tolerance.

    Returns:
        The draws ``(n_samples, n_dim)`` and their ``log_q`` ``(n_samples,)``.
    """
    s, log_q = check_model_sample_and_log_prob_agree(model, params, key, n_samples, rtol, atol)
    check = "sample_and_log_prob_agree"
    require(s.dtype == jnp.int32, check, f"draws have dtype {s.dtype}; expected int32")
    s_np = np.asarray(s)
    outside = (s_np < 0) | (s_np >= n_categories)
    require(
        not np.any(outside),
        check,
        f"{int(outside.sum())} drawn categories lie outside [0, {n_categories}), e.g. "
        f"{s_np[outside][:3].tolist()}",
    )
    return s, log_q


def check_discrete_model_sample_frequencies(
    model: AbstractGlobalModel,
    params: ModelParams,
    key: PRNGKey,
    n_dim: int,
    n_categories: int,
    n_samples: int = 20_000,
    min_p_value: float = 1e-3,
    min_expected: float = 5.0,
) -> float:
    """Chi-square goodness of fit of sampled state counts against ``exp(log_prob)``.

    States whose expected count is below ``min_expected`` are pooled into one cell (the
    chi-square approximation needs cells of at least about five).

    Args:
        model: a discrete model.
        params: its params.
        key: PRNG key (fix it: the check is statistical).
        n_dim: number of sites (small enough to enumerate).
        n_categories: number of categories ``K``.
        n_samples: number of draws.
        min_p_value: the check fails below this p-value.
        min_expected: smallest expected count of an unpooled cell.

    Returns:
        The p-value.
    """
    check = "sample_frequencies"
    _, log_q = _all_log_probs(model, params, n_dim, n_categories)
    probs = np.exp(log_q - _log_sum_exp(log_q))
    samples, _ = batched_sample(model, params, key, n_samples)
    samples = np.asarray(samples).astype(np.int64)
    index = samples @ (n_categories ** np.arange(n_dim - 1, -1, -1))
    observed = np.bincount(index, minlength=probs.size).astype(np.float64)
    statistic, dof = pooled_chi_square(observed, n_samples * probs, min_expected)
    require(dof >= 1, check, "too few cells for a chi-square test; raise n_samples")
    p_value = chi_square_p_value(statistic, dof)
    require(
        p_value > min_p_value,
        check,
        f"frequencies of {n_samples} draws disagree with exp(log_prob): chi-square "
        f"{statistic:.1f} on {dof} degrees of freedom, p = {p_value:.3g}",
    )
    return p_value


def check_discrete_model_autoregressive(
    logits_fn: Callable[[Array], Array], one_hot: ArrayLike, require_dependence: bool = True
) -> Array:
    """The logits of site ``i`` do not depend on sites ``>= i`` (exact zeros of the Jacobian).

    Args:
        logits_fn: one-hot or relaxed event ``(n_dim, K)`` -> conditional logits ``(n_dim, K)``
            (e.g. ``functools.partial(model.logits, params)``).
        one_hot: the point ``(n_dim, K)`` where the Jacobian is taken (float).
        require_dependence: also require that some site depends on an earlier one (use with
            params away from initialisation, where a zero output layer hides everything).

    Returns:
        The Jacobian ``(n_dim, K, n_dim, K)`` from ``jax.jacfwd``.
    """
    one_hot = jnp.asarray(one_hot)
    n_dim = one_hot.shape[0]
    jac = np.asarray(jax.jit(jax.jacfwd(logits_fn))(one_hot))
    later = np.arange(n_dim)[None, :] >= np.arange(n_dim)[:, None]  # [i, j]: j >= i
    forbidden = np.abs(jac).max(axis=(1, 3))  # (n_dim out, n_dim in)
    bad = np.argwhere(later & (forbidden != 0))
    require(
        bad.size == 0,
        "autoregressive",
        f"the logits of site i depend on site j >= i for (i, j) in {bad.tolist()}",
    )
    if require_dependence and n_dim > 1:
        require(
            np.any(forbidden[~later] != 0), "autoregressive", "no site depends on an earlier one"
        )
    return jnp.asarray(jac)


def check_discrete_model_invariant(
    model: AbstractGlobalModel,
    params: ModelParams,
    states: ArrayLike,
    transform: Callable[[Array], Array],
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> None:
    """``log_prob(transform(s)) == log_prob(s)`` for every state (e.g. a global spin flip).

    Args:
        model: a discrete model.
        params: its params.
        states: ``(n_states, n_dim)`` integer states.
        transform: batched map of states ``(n_states, n_dim) -> (n_states, n_dim)``.
        rtol: relative tolerance.
        atol: absolute tolerance.
    """
    states = jnp.asarray(states)
    require_close(
        "invariant",
        "log_prob(transform(s)) vs log_prob(s)",
        batched_log_prob(model, params, transform(states)),
        batched_log_prob(model, params, states),
        rtol=rtol,
        atol=atol,
    )
