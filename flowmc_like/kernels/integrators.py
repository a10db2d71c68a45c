"""Leapfrog (velocity Verlet) integration of Hamiltonian dynamics with a diagonal mass.

For ``H(x, p) = -log p(x) + 0.5 * sum(inverse_mass * p^2)``, one leapfrog step of size ``eps``
is::

    p_half = p + (eps / 2) grad log p(x)
    x'     = x + eps * inverse_mass * p_half
    p'     = p_half + (eps / 2) grad log p(x')

It is reversible (integrating from ``(x', -p')`` returns to ``(x, -p)``), volume preserving, and
its energy error after a fixed integration time is ``O(eps^2)``. Each step evaluates the log
density and its gradient once, at ``x'``; the gradient at the start is taken from the
`IntegratorState`, so ``n_steps`` steps cost ``n_steps`` evaluations.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like._types import Array, ArrayLike, LogProbFn

__all__ = ["IntegratorState", "leapfrog", "leapfrog_step"]


class IntegratorState(NamedTuple):
    """A point in phase space with the log density and gradient at its position.

    Attributes:
        position: ``(n_dim,)``.
        momentum: ``(n_dim,)``.
        log_prob: ``()`` log density at ``position``.
        grad: ``(n_dim,)`` gradient of the log density at ``position``.
    """

    position: Array
    momentum: Array
    log_prob: Array
    grad: Array


def leapfrog_step(
    state: IntegratorState, step_size: ArrayLike, inverse_mass: ArrayLike, log_prob_fn: LogProbFn
) -> IntegratorState:
    """One leapfrog step (one value-and-gradient evaluation).

    Args:
        state: the starting point, with the gradient at its position.
        step_size: ``()`` step size ``eps``.
        inverse_mass: ``(n_dim,)`` diagonal of the inverse mass matrix.
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.

    Returns:
        The point after one step.
    """
    dtype = state.position.dtype
    eps = jnp.asarray(step_size, dtype=dtype)
    inverse_mass = jnp.asarray(inverse_mass, dtype=dtype)
    momentum = state.momentum + 0.5 * eps * state.grad
    position = state.position + eps * inverse_mass * momentum
    log_prob, grad = jax.value_and_grad(log_prob_fn)(position)
    momentum = momentum + 0.5 * eps * grad
    return IntegratorState(position=position, momentum=momentum, log_prob=log_prob, grad=grad)


def leapfrog(
    state: IntegratorState,
    step_size: ArrayLike,
    inverse_mass: ArrayLike,
    n_steps: int,
    log_prob_fn: LogProbFn,
) -> IntegratorState:
    """``n_steps`` leapfrog steps, run with ``lax.fori_loop``.

    Args:
        state: the starting point, with the gradient at its position.
        step_size: ``()`` step size ``eps``.
        inverse_mass: ``(n_dim,)`` diagonal of the inverse mass matrix.
        n_steps: static number of steps (``n_steps`` gradient evaluations).
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.

    Returns:
        The end point of the trajectory. Non-finite values propagate (the caller rejects).
    """
    return jax.lax.fori_loop(
        0,
        n_steps,
        lambda _, s: leapfrog_step(s, step_size, inverse_mass, log_prob_fn),
        state,
    )
