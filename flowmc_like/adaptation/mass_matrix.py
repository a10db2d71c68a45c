"""Welford running mean and variance, for HMC's diagonal inverse mass matrix.

Pure functions over a `WelfordState`. The update is elementwise, so one state can track
arrays of any shape: with values of shape ``(n_chains, n_dim)`` it keeps every chain's
statistics separately (the chains are updated together, so ``count`` is shared). For one new
value ``x`` (Welford 1962)::

    n    <- n + 1
    d     = x - mean
    mean <- mean + d / n
    m2   <- m2 + d * (x - mean)        # sample variance = m2 / (n - 1)

`regularize_variance` shrinks an estimate from ``n`` draws toward ``1e-3`` with weight
``5 / (n + 5)``, as Stan does for its diagonal metric, so a short or stuck window never
yields a zero inverse mass.

`windowed_mass_init` / `close_mass_window` estimate a diagonal inverse mass from windows of
adapting steps (one window per adapting local phase: the HMC adaptation adds every step's
positions with `welford_update` and closes the window in its ``end_phase``). Within a window a
`WelfordState` of shape ``(n_chains, n_dim)`` tracks each chain separately. When the window
closes the inverse mass becomes the chain-averaged within-chain sample variance, regularised
with ``n = n_chains * window_length`` draws, and the Welford state is reset. Averaging
*within-chain* variances (rather than pooling positions across chains) keeps the local scale
even when different chains sit in different modes.

Example:
    >>> import jax.numpy as jnp
    >>> state = welford_init((2,))
    >>> for x in (jnp.array([0.0, 1.0]), jnp.array([2.0, 1.0]), jnp.array([4.0, 1.0])):
    ...     state = welford_update(state, x)
    >>> welford_variance(state).tolist()
    [4.0, 0.0]
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from flowmc_like._types import Array, ArrayLike

__all__ = [
    "WelfordState",
    "WindowedMassState",
    "regularize_variance",
    "welford_init",
    "welford_update",
    "welford_variance",
    "close_mass_window",
    "windowed_mass_init",
]

SHRINKAGE_TARGET = 1e-3
SHRINKAGE_COUNT = 5.0


class WelfordState(NamedTuple):
    """Running moments of a stream of equally shaped arrays.

    Attributes:
        count: ``()`` int32, number of values seen.
        mean: running mean, shape of one value (e.g. ``(n_chains, n_dim)``).
        m2: running sum of squared deviations from the mean, same shape.
    """

    count: Array
    mean: Array
    m2: Array


def welford_init(shape: tuple[int, ...], dtype: jnp.dtype | None = None) -> WelfordState:
    """An empty `WelfordState` for values of ``shape``.

    Args:
        shape: shape of one value, e.g. ``(n_chains, n_dim)`` to track each chain separately.
        dtype: float dtype of the moments (default: JAX's default float).

    Returns:
        ``count = 0`` and zero moments.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    zeros = jnp.zeros(shape, dtype=dtype)
    return WelfordState(count=jnp.zeros((), dtype=jnp.int32), mean=zeros, m2=zeros)


def welford_update(state: WelfordState, value: ArrayLike) -> WelfordState:
    """Add one value (elementwise) to the running moments.

    Args:
        state: current moments.
        value: new value with the state's shape.

    Returns:
        The updated moments.
    """
    value = jnp.asarray(value, dtype=state.mean.dtype)
    count = state.count + 1
    delta = value - state.mean
    mean = state.mean + delta / count.astype(state.mean.dtype)
    m2 = state.m2 + delta * (value - mean)
    return WelfordState(count=count, mean=mean, m2=m2)


def welford_variance(state: WelfordState) -> Array:
    """Unbiased sample variance ``m2 / (n - 1)``, elementwise.

    Args:
        state: moments of at least two values. With fewer the result is 0 (never NaN), so it
            can be computed unconditionally inside ``jnp.where``.

    Returns:
        Variance with the state's shape.
    """
    denominator = jnp.maximum(state.count - 1, 1).astype(state.m2.dtype)
    return state.m2 / denominator


def regularize_variance(variance: ArrayLike, n: ArrayLike) -> Array:
    """Shrink a variance estimated from ``n`` draws toward ``1e-3``.

    ``(n / (n + 5)) * variance + 1e-3 * (5 / (n + 5))``.

    Args:
        variance: estimated variance, any shape.
        n: number of draws the estimate is based on (``()``, may be traced).

    Returns:
        The regularised variance, same shape as ``variance``; strictly positive.
    """
    variance = jnp.asarray(variance)
    n = jnp.asarray(n, dtype=variance.dtype)
    return (n / (n + SHRINKAGE_COUNT)) * variance + SHRINKAGE_TARGET * (
        SHRINKAGE_COUNT / (n + SHRINKAGE_COUNT)
    )


class WindowedMassState(NamedTuple):
    """Windowed estimate of a diagonal inverse mass matrix.

    Attributes:
        welford: per-chain moments of the current window, ``(n_chains, n_dim)`` arrays.
        inverse_mass: ``(n_dim,)`` estimate from the last closed window (the initial value
            until the first window closes).
        n_closed: ``()`` int32, how many windows have updated ``inverse_mass``.
    """

    welford: WelfordState
    inverse_mass: Array
    n_closed: Array


def windowed_mass_init(inverse_mass: ArrayLike, n_chains: int) -> WindowedMassState:
    """Start the first window.

    Args:
        inverse_mass: ``(n_dim,)`` initial inverse mass, used until the first window closes.
        n_chains: number of chains whose positions are added to the window.

    Returns:
        A state with an empty window.
    """
    inverse_mass = jnp.asarray(inverse_mass, dtype=jnp.result_type(float))
    welford = welford_init((n_chains, *inverse_mass.shape), dtype=inverse_mass.dtype)
    return WindowedMassState(
        welford=welford, inverse_mass=inverse_mass, n_closed=jnp.zeros((), jnp.int32)
    )


def close_mass_window(
    state: WindowedMassState, max_windows: int
) -> tuple[WindowedMassState, Array]:
    """Close the current window: estimate the inverse mass from it and start a new one.

    Args:
        state: the state after the window's steps (added with `welford_update`).
        max_windows: static; only the first ``max_windows`` windows replace
            ``inverse_mass`` (later ones are still reset).

    Returns:
        The new state and ``is_closed`` (``()`` bool): True when ``inverse_mass`` was
        replaced. A window of fewer than two steps (no within-chain variance) or a
        non-finite estimate leaves ``inverse_mass`` unchanged.
    """
    welford = state.welford
    n_chains = welford.mean.shape[0]
    within_chain_variance = jnp.mean(welford_variance(welford), axis=0)
    estimate = regularize_variance(within_chain_variance, n_chains * welford.count)
    is_closed = (welford.count >= 2) & (state.n_closed < max_windows)
    # Positions are finite (mh_accept never moves to a non-finite state), but keep the old value
    # if the estimate is unusable anyway.
    is_usable = is_closed & jnp.all(jnp.isfinite(estimate) & (estimate > 0))
    inverse_mass = jnp.where(is_usable, estimate, state.inverse_mass)
    empty = welford_init(welford.mean.shape, dtype=welford.mean.dtype)
    n_closed = state.n_closed + is_closed.astype(jnp.int32)
    return WindowedMassState(welford=empty, inverse_mass=inverse_mass, n_closed=n_closed), is_closed
