"""Targets on which `check_kernel` runs a kernel, with exact draws from them (private).

Each space has one ``log_prob(x, which)`` that selects its target with a traced index, so a
kernel's chain driver compiles once for every check.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array

__all__ = [
    "CONTINUOUS_N_DIM",
    "DiscreteSystem",
    "banana",
    "banana_draws",
    "continuous_data",
    "continuous_log_prob",
    "discrete_data",
    "discrete_system",
]

CONTINUOUS_N_DIM = 3
BANANA, NAN_BEYOND_ONE, NEG_INF_BEYOND_ONE, LOG_BARRIER = range(4)


def banana(x: Array) -> Array:
    """``x0 ~ N(0, 2^2)``, ``x1 | x0 ~ N((x0^2 - 4) / 2, 1)``, ``x2 ~ N(0, 0.5^2)`` (unnormalised).

    Curved and with unequal scales, so a wrong acceptance ratio shows in its moments.
    """
    return (
        -0.5 * (x[0] / 2.0) ** 2
        - 0.5 * (x[1] - 0.5 * (x[0] ** 2 - 4.0)) ** 2
        - 0.5 * (x[2] / 0.5) ** 2
    )


def banana_draws(seed: int, n: int) -> np.ndarray:
    """``(n, 3)`` exact independent draws from `banana`, float32."""
    z = np.random.default_rng(seed).standard_normal((n, 3))
    x0 = 2.0 * z[:, 0]
    return np.stack([x0, 0.5 * (x0**2 - 4.0) + z[:, 1], 0.5 * z[:, 2]], axis=1).astype(np.float32)


def _standard_normal(x: Array) -> Array:
    return -0.5 * jnp.sum(x**2)


def _nan_beyond_one(x: Array) -> Array:
    return jnp.where(x[0] > 1.0, jnp.nan, _standard_normal(x))


def _neg_inf_beyond_one(x: Array) -> Array:
    return jnp.where(x[0] > 1.0, -jnp.inf, _standard_normal(x))


def _log_barrier(x: Array) -> Array:
    """-inf at ``x0 = 1`` and NaN beyond (log of a negative number), misleading gradients."""
    return _standard_normal(x) + jnp.log(1.0 - x[0])


CONTINUOUS_TARGETS = (banana, _nan_beyond_one, _neg_inf_beyond_one, _log_barrier)
NON_FINITE_TARGETS = {
    "nan_beyond_one": NAN_BEYOND_ONE,
    "neg_inf_beyond_one": NEG_INF_BEYOND_ONE,
    "log_barrier": LOG_BARRIER,
}


def continuous_log_prob(x: Array, which: Array) -> Array:
    """The continuous target number ``which`` (traced) at one position ``(3,)``."""
    return jax.lax.switch(which, CONTINUOUS_TARGETS, x)


def non_finite_start(seed: int, n: int) -> np.ndarray:
    """``(n, 3)`` points with ``x0`` in ``[0.8, 0.99)``: close to the non-finite region."""
    rng = np.random.default_rng(seed)
    rest = 0.5 * rng.standard_normal((n, CONTINUOUS_N_DIM - 1))
    return np.column_stack([rng.uniform(0.8, 0.99, n), rest]).astype(np.float32)


class DiscreteSystem(NamedTuple):
    """A random pairwise model on ``n_dim`` sites with ``K`` categories, small enough to enumerate.

    ``log p(s) = 1/2 sum_{i != j} pair[i, j, s_i, s_j] + sum_i field[i, s_i]``.

    Attributes:
        n_dim: number of sites.
        n_categories: ``K``.
        log_prob: ``(s (n_dim,) int, which ()) -> ()``; ``which`` 0 is the model, 1 is NaN and
            2 is -inf wherever site 0 is not in category 0.
        states: ``(K^n_dim, n_dim)`` int32, every state.
        probabilities: ``(K^n_dim,)`` float64 exact probabilities of ``states``.
    """

    n_dim: int
    n_categories: int
    log_prob: object
    states: np.ndarray
    probabilities: np.ndarray


@functools.lru_cache(maxsize=16)
def discrete_system(n_categories: int) -> DiscreteSystem:
    """The `DiscreteSystem` for ``K = n_categories``: at most about 100 states, >= 2 sites."""
    n_dim = max(2, int(math.log(100.0) / math.log(n_categories)))
    rng = np.random.default_rng(34)
    pair = rng.normal(0.0, 0.8, (n_dim, n_dim, n_categories, n_categories))
    pair = 0.5 * (pair + pair.transpose(1, 0, 3, 2))
    pair[np.arange(n_dim), np.arange(n_dim)] = 0.0
    field = rng.normal(0.0, 0.5, (n_dim, n_categories))
    sites = np.arange(n_dim)

    def model(s: Array) -> Array:
        dtype = jnp.result_type(float)
        pairs = jnp.asarray(pair, dtype)[sites[:, None], sites[None, :], s[:, None], s[None, :]]
        return 0.5 * jnp.sum(pairs) + jnp.sum(jnp.asarray(field, dtype)[sites, s])

    def nan_if_site_zero_moves(s: Array) -> Array:
        return jnp.where(s[0] != 0, jnp.nan, model(s))

    def neg_inf_if_site_zero_moves(s: Array) -> Array:
        return jnp.where(s[0] != 0, -jnp.inf, model(s))

    branches = (model, nan_if_site_zero_moves, neg_inf_if_site_zero_moves)

    def log_prob(s: Array, which: Array) -> Array:
        return jax.lax.switch(which, branches, s)

    n_states = n_categories**n_dim
    powers = n_categories ** np.arange(n_dim - 1, -1, -1)
    states = ((np.arange(n_states)[:, None] // powers) % n_categories).astype(np.int32)
    rows, cols = sites[None, :, None], sites[None, None, :]
    pair_terms = pair[rows, cols, states[:, :, None], states[:, None, :]]
    log_p = 0.5 * pair_terms.sum(axis=(1, 2)) + field[sites, states].sum(axis=1)
    probabilities = np.exp(log_p - log_p.max())
    return DiscreteSystem(
        n_dim, n_categories, log_prob, states, probabilities / probabilities.sum()
    )


def continuous_data(n_dim: int, seed: int, n_examples: int) -> np.ndarray:
    """Two modes along ``x0`` (at -1 and 3), unequal scales, correlated coordinates."""
    rng = np.random.default_rng(seed)
    mode = np.where(rng.random(n_examples) < 0.4, -1.0, 3.0)
    x0 = mode + 0.5 * rng.standard_normal(n_examples)
    rest = [
        -1.0 + 0.3 * (i + 1) * x0 + 0.5 * rng.standard_normal(n_examples) for i in range(n_dim - 1)
    ]
    return np.column_stack([x0, *rest]).astype(np.dtype(jnp.result_type(float)))


def discrete_data(n_dim: int, n_categories: int, seed: int, n_examples: int) -> np.ndarray:
    """A Markov chain along the sites: each site repeats the previous one with probability 0.7."""
    rng = np.random.default_rng(seed)
    states = np.empty((n_examples, n_dim), np.int32)
    states[:, 0] = rng.integers(0, n_categories, n_examples)
    for i in range(1, n_dim):
        repeat = rng.random(n_examples) < 0.7
        states[:, i] = np.where(repeat, states[:, i - 1], rng.integers(0, n_categories, n_examples))
    return states
