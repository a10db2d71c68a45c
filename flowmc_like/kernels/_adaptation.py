"""Building blocks for the kernels' `Adaptation` triples (private)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from flowmc_like._types import Array, PyTree
from flowmc_like.adaptation.base import AdaptationState
from flowmc_like.adaptation.step_size import (
    dual_averaging_current,
    dual_averaging_final,
    dual_averaging_init,
    dual_averaging_update,
)
from flowmc_like.kernels.base import Adaptation, StepInfo

__all__ = ["step_size_adaptation"]


def step_size_adaptation(
    target_acceptance: float,
    get_step_size: Callable[[PyTree], Array],
    make_params: Callable[[Array], PyTree],
) -> Adaptation:
    """Dual averaging of a single step-size-like parameter, updated on every call.

    Args:
        target_acceptance: the acceptance probability to reach.
        get_step_size: reads the ``()`` step size from the kernel's params.
        make_params: builds the kernel's params from a ``()`` step size.

    Returns:
        An `Adaptation` whose state is an `AdaptationState` with ``mass=None``.
    """

    def init(params: PyTree) -> AdaptationState:
        return AdaptationState(step_size=dual_averaging_init(get_step_size(params)))

    def update(state: AdaptationState, positions: Array, infos: StepInfo) -> AdaptationState:
        del positions
        # A NaN acceptance probability (never produced by mh_accept) counts as a rejection.
        acceptance_prob = jnp.nan_to_num(infos.acceptance_prob, nan=0.0)
        mean_acceptance_prob = jnp.mean(acceptance_prob)
        return state._replace(
            step_size=dual_averaging_update(
                state.step_size, mean_acceptance_prob, target_acceptance
            )
        )

    def current(state: AdaptationState) -> PyTree:
        return make_params(dual_averaging_current(state.step_size))

    def final(state: AdaptationState) -> PyTree:
        return make_params(dual_averaging_final(state.step_size))

    return Adaptation(init=init, update=update, current=current, final=final)
