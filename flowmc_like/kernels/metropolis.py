"""The one accept/reject rule of the library, with its non-finite policy."""

from __future__ import annotations

from typing import TypeVar

import jax
import jax.numpy as jnp

from flowmc_like._types import Array
from flowmc_like.kernels.base import StepInfo

__all__ = ["acceptance_probability", "mh_accept"]

State = TypeVar("State")


def acceptance_probability(log_ratio: Array, proposed_log_prob: Array | None = None) -> Array:
    """``min(1, exp(log_ratio))``, and 0 whenever the move is not a finite number.

    Any non-finite ``log_ratio`` (NaN, +inf or -inf) or a non-finite ``proposed_log_prob``
    gives probability 0: a chain never moves to a state whose density or ratio is not finite.

    Args:
        log_ratio: log Metropolis-Hastings ratio of the move current -> proposed (any shape).
        proposed_log_prob: target log density at the proposal (same shape), if known.

    Returns:
        The acceptance probability, same shape and dtype as ``log_ratio``.
    """
    is_valid = jnp.isfinite(log_ratio)
    if proposed_log_prob is not None:
        is_valid = is_valid & jnp.isfinite(proposed_log_prob)
    log_ratio = jnp.where(is_valid, log_ratio, -jnp.inf)
    return jnp.exp(jnp.minimum(log_ratio, 0.0))


def mh_accept(
    uniform: Array, log_ratio: Array, proposed: State, current: State
) -> tuple[State, StepInfo]:
    """Accept ``proposed`` with probability min(1, exp(log_ratio)), else keep ``current``.

    Accepts iff ``uniform < prob``; the probability comes from `acceptance_probability`, so a
    non-finite ratio or a non-finite ``proposed.log_prob`` is always a rejection. Every
    kernel and the global move decide through this function.

    Args:
        uniform: ``()`` a draw ``u ~ U(0, 1)``.
        log_ratio: ``()`` log Metropolis-Hastings ratio of the move current -> proposed.
        proposed: proposed state (a NamedTuple whose second field is ``log_prob``).
        current: current state of the same structure.

    Returns:
        The next state and its `StepInfo`.
    """
    proposed_log_prob = proposed.log_prob  # type: ignore[attr-defined]
    prob = acceptance_probability(log_ratio, proposed_log_prob)
    is_accepted = uniform.astype(prob.dtype) < prob
    state = jax.tree.map(lambda new, old: jnp.where(is_accepted, new, old), proposed, current)
    is_nonfinite = ~(jnp.isfinite(log_ratio) & jnp.isfinite(proposed_log_prob))
    return state, StepInfo(prob, is_accepted, is_nonfinite)
