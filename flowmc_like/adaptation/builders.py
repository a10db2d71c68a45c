"""The adaptations the built-in kernels use, built from the estimators of this package.

`step_size_adaptation`: dual averaging of one step size (MALA, RandomWalk).
`step_size_and_mass_adaptation`: the same plus a windowed diagonal inverse mass (HMC).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from flowmc_like._types import Array, PyTree, StepInfo
from flowmc_like.adaptation.base import Adaptation, AdaptationState
from flowmc_like.adaptation.mass_matrix import (
    close_mass_window,
    welford_update,
    windowed_mass_init,
)
from flowmc_like.adaptation.step_size import (
    dual_averaging_current,
    dual_averaging_final,
    dual_averaging_init,
    dual_averaging_restart,
    dual_averaging_update,
)

__all__ = ["step_size_adaptation", "step_size_and_mass_adaptation"]


def _update_step_size(
    state: AdaptationState, infos: StepInfo, target_acceptance: float
) -> AdaptationState:
    # A NaN acceptance probability (never produced by mh_accept) counts as a rejection.
    acceptance_prob = jnp.nan_to_num(infos.acceptance_prob, nan=0.0)
    step_size = dual_averaging_update(state.step_size, jnp.mean(acceptance_prob), target_acceptance)
    return state._replace(step_size=step_size)


def step_size_adaptation(
    target_acceptance: float,
    get_step_size: Callable[[PyTree], Array],
    make_params: Callable[[Array], PyTree],
) -> Adaptation:
    """Dual averaging of a single step-size-like parameter, updated after every step.

    The update uses the acceptance probability averaged over chains, so all chains share
    one step size; ``final`` gives the averaged iterate.

    Args:
        target_acceptance: the acceptance probability to reach.
        get_step_size: reads the ``()`` step size from the kernel's params.
        make_params: builds the kernel's params from a ``()`` step size.

    Returns:
        An `Adaptation` whose state is an `AdaptationState` with ``mass=None``.
    """

    def init(params: PyTree, positions: Array) -> AdaptationState:
        del positions
        return AdaptationState(step_size=dual_averaging_init(get_step_size(params)))

    def update(state: AdaptationState, positions: Array, infos: StepInfo) -> AdaptationState:
        del positions
        return _update_step_size(state, infos, target_acceptance)

    def current(state: AdaptationState) -> PyTree:
        return make_params(dual_averaging_current(state.step_size))

    def final(state: AdaptationState) -> PyTree:
        return make_params(dual_averaging_final(state.step_size))

    return Adaptation(init=init, update=update, current=current, final=final)


def step_size_and_mass_adaptation(
    target_acceptance: float,
    get_step_size_and_mass: Callable[[PyTree], tuple[Array, Array]],
    make_params: Callable[[Array, Array], PyTree],
) -> Adaptation:
    """Dual averaging of the step size plus a windowed diagonal inverse mass.

    On every ``update``: dual averaging toward ``target_acceptance`` from the acceptance
    probability averaged over chains, and a per-chain Welford update with the new positions.
    Each local phase is one window; ``end_phase`` closes it: ``inverse_mass`` becomes the
    chain-averaged within-chain variance of the window, regularised toward 1e-3 with weight
    ``5 / (n + 5)``, ``n = n_chains * n_steps``; the Welford state is reset; and dual
    averaging restarts (``mu = log(10 h)``) from ``h``, its averaged step size so far,
    because the optimal step size changes with the mass matrix.

    Only the first ``n_phases // 2`` windows update the mass: the second half of the
    adapting steps tunes the step size for the final mass without restarts, so the averaged
    step size that production uses has converged. A window of fewer than two steps changes
    nothing (a within-chain variance needs two draws).

    Args:
        target_acceptance: the acceptance probability to reach.
        get_step_size_and_mass: reads ``(step_size (), inverse_mass (n_dim,))`` from params.
        make_params: builds the kernel's params from a step size and an inverse mass.

    Returns:
        An `Adaptation` whose state is an `AdaptationState` with a
        `flowmc_like.adaptation.mass_matrix.WindowedMassState` as ``mass``.
    """

    def init(params: PyTree, positions: Array) -> AdaptationState:
        step_size, inverse_mass = get_step_size_and_mass(params)
        return AdaptationState(
            step_size=dual_averaging_init(step_size),
            mass=windowed_mass_init(inverse_mass, positions.shape[0]),
        )

    def update(state: AdaptationState, positions: Array, infos: StepInfo) -> AdaptationState:
        state = _update_step_size(state, infos, target_acceptance)
        mass = state.mass._replace(welford=welford_update(state.mass.welford, positions))
        return state._replace(mass=mass)

    def end_phase(state: AdaptationState, n_phases: int) -> AdaptationState:
        mass, is_closed = close_mass_window(state.mass, n_phases // 2)
        step_size = jax.tree.map(
            lambda new, old: jnp.where(is_closed, new, old),
            dual_averaging_restart(state.step_size),
            state.step_size,
        )
        return AdaptationState(step_size=step_size, mass=mass)

    def current(state: AdaptationState) -> PyTree:
        return make_params(dual_averaging_current(state.step_size), state.mass.inverse_mass)

    def final(state: AdaptationState) -> PyTree:
        return make_params(dual_averaging_final(state.step_size), state.mass.inverse_mass)

    return Adaptation(init, update, current, final, end_phase)
