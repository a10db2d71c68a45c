"""The one accept/reject rule of the library, with its non-finite policy."""

from __future__ import annotations

from typing import TypeVar

import jax
import jax.numpy as jnp

from flowmc_like._types import Array, PRNGKey
from flowmc_like.kernels.base import StepInfo

__all__ = ["mh_accept"]

State = TypeVar("State")


def mh_accept(
    key: PRNGKey, log_ratio: Array, proposed: State, current: State
) -> tuple[State, StepInfo]:
    """Accept ``proposed`` with probability min(1, exp(log_ratio)), else keep ``current``.

    Any non-finite ``log_ratio`` (NaN, +inf or -inf) or a non-finite ``proposed.log_prob`` is
    a rejection: a chain never moves to a state whose density or ratio is not a finite number.

    Args:
        key: PRNG key for the uniform draw.
        log_ratio: ``()`` log Metropolis-Hastings ratio of the move current -> proposed.
        proposed: proposed state (a NamedTuple whose second field is ``log_prob``).
        current: current state of the same structure.

    Returns:
        The next state and its `StepInfo`.
    """
    is_valid = jnp.isfinite(log_ratio) & jnp.isfinite(proposed.log_prob)
    log_ratio = jnp.where(is_valid, log_ratio, -jnp.inf)
    acceptance_prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
    is_accepted = jax.random.uniform(key, dtype=acceptance_prob.dtype) < acceptance_prob
    state = jax.tree.map(lambda new, old: jnp.where(is_accepted, new, old), proposed, current)
    return state, StepInfo(acceptance_prob, is_accepted)
