"""Dual-averaging step-size adaptation (Hoffman & Gelman 2014, Algorithm 5).

Pure functions over a `DualAveragingState`. The adapted quantity is ``log h``; the statistic
driving it is the acceptance probability, averaged over all chains so that every chain shares
one step size. With ``t`` the number of updates so far and ``alpha_t`` the mean acceptance
probability of step ``t``::

    H_t        = (1 - 1/(t + t0)) H_{t-1} + (target - alpha_t) / (t + t0)
    log h_t    = mu - sqrt(t) / gamma * H_t                           # dual_averaging_current
    log hbar_t = t^-kappa log h_t + (1 - t^-kappa) log hbar_{t-1}     # dual_averaging_final

with ``mu = log(10 h0)``, ``gamma = 0.05``, ``t0 = 10``, ``kappa = 0.75`` (the paper's and Stan's
values). ``log hbar_0 = log h0``, so `dual_averaging_final` of a fresh state is ``h0``.

Example:
    >>> import jax.numpy as jnp
    >>> state = dual_averaging_init(0.1)
    >>> for _ in range(3):
    ...     state = dual_averaging_update(state, jnp.asarray(0.9), 0.574)
    >>> bool(dual_averaging_current(state) > 0.1)  # acceptance too high -> bigger steps
    True
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from flowmc_like._types import Array, ArrayLike

__all__ = [
    "DualAveragingState",
    "dual_averaging_current",
    "dual_averaging_final",
    "dual_averaging_init",
    "dual_averaging_restart",
    "dual_averaging_update",
]

GAMMA = 0.05
T0 = 10.0
KAPPA = 0.75


class DualAveragingState(NamedTuple):
    """State of dual averaging; every field is a ``()`` array.

    Attributes:
        log_step_size: ``log h_t``, the iterate used for the next adapting step.
        log_step_size_avg: ``log hbar_t``, the weighted average returned for production.
        error_avg: ``H_t``, running average of ``target - acceptance_prob``.
        count: ``t``, number of updates since the last (re)start (int32).
        mu: shrinkage point ``log(10 h0)``.
    """

    log_step_size: Array
    log_step_size_avg: Array
    error_avg: Array
    count: Array
    mu: Array


def dual_averaging_init(initial_step_size: ArrayLike) -> DualAveragingState:
    """Start (or restart) dual averaging around ``initial_step_size``.

    Args:
        initial_step_size: ``()`` positive step size ``h0``; may be a traced array (restarts
            inside jit use the current step size).

    Returns:
        A state with ``log h = log hbar = log h0``, ``H = 0``, ``t = 0``, ``mu = log(10 h0)``.
    """
    log_step_size = jnp.log(jnp.asarray(initial_step_size, dtype=jnp.result_type(float)))
    return DualAveragingState(
        log_step_size=log_step_size,
        log_step_size_avg=log_step_size,
        error_avg=jnp.zeros_like(log_step_size),
        count=jnp.zeros((), dtype=jnp.int32),
        mu=jnp.log(10.0) + log_step_size,
    )


def dual_averaging_restart(state: DualAveragingState) -> DualAveragingState:
    """Restart around the averaged step size ``hbar`` (e.g. after the mass matrix changed).

    Equivalent to ``dual_averaging_init(dual_averaging_final(state))`` but computed in log
    space, so an extreme step size cannot under- or overflow on the way.

    Args:
        state: current state.

    Returns:
        A fresh state with ``log h = log hbar = state.log_step_size_avg`` and
        ``mu = log(10 hbar)``.
    """
    log_step_size = state.log_step_size_avg
    return DualAveragingState(
        log_step_size=log_step_size,
        log_step_size_avg=log_step_size,
        error_avg=jnp.zeros_like(log_step_size),
        count=jnp.zeros((), dtype=jnp.int32),
        mu=jnp.log(10.0) + log_step_size,
    )


def dual_averaging_update(
    state: DualAveragingState, mean_acceptance_prob: ArrayLike, target: float
) -> DualAveragingState:
    """One dual-averaging update from the acceptance probability of the last step.

    Args:
        state: current state.
        mean_acceptance_prob: ``()`` acceptance probability of the last step averaged over
            chains. A NaN is treated as 0 (the step was a rejection), so the state stays finite.
        target: target acceptance probability in (0, 1) (``kernel.target_acceptance``).

    Returns:
        The updated state.
    """
    dtype = state.log_step_size.dtype
    acceptance_prob = jnp.asarray(mean_acceptance_prob, dtype=dtype)
    acceptance_prob = jnp.clip(jnp.where(jnp.isnan(acceptance_prob), 0.0, acceptance_prob), 0, 1)
    count = state.count + 1
    t = count.astype(dtype)
    eta = 1.0 / (t + T0)
    error_avg = (1.0 - eta) * state.error_avg + eta * (target - acceptance_prob)
    log_step_size = state.mu - jnp.sqrt(t) / GAMMA * error_avg
    weight = t ** (-KAPPA)
    log_step_size_avg = weight * log_step_size + (1.0 - weight) * state.log_step_size_avg
    return DualAveragingState(
        log_step_size=log_step_size,
        log_step_size_avg=log_step_size_avg,
        error_avg=error_avg,
        count=count,
        mu=state.mu,
    )


def dual_averaging_current(state: DualAveragingState) -> Array:
    """Step size for the next adapting step, ``exp(log h_t)``; shape ``()``."""
    return jnp.exp(state.log_step_size)


def dual_averaging_final(state: DualAveragingState) -> Array:
    """Averaged step size ``exp(log hbar_t)`` to freeze for production; shape ``()``."""
    return jnp.exp(state.log_step_size_avg)
