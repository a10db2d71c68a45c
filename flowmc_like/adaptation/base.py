"""The `Adaptation` type every local kernel returns, and the state its builders carry."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from flowmc_like._types import Array, PyTree, StepInfo
from flowmc_like.adaptation.mass_matrix import WindowedMassState
from flowmc_like.adaptation.step_size import DualAveragingState

__all__ = ["Adaptation", "AdaptationState", "no_adaptation"]


def _keep(state: PyTree, n_phases: int) -> PyTree:
    del n_phases
    return state


class Adaptation(NamedTuple):
    """Pure functions that tune a kernel's params during the training loops.

    Attributes:
        init: ``(params, positions (n_chains, n_dim)) -> adapt_state``; the positions give
            estimators that track each chain their sizes.
        update: ``(adapt_state, positions (n_chains, n_dim), infos: StepInfo batched over
            chains) -> adapt_state``; called after every local step while adapting.
        current: ``(adapt_state) -> params`` used for the next step while adapting.
        final: ``(adapt_state) -> params`` frozen for production.
        end_phase: ``(adapt_state, n_phases) -> adapt_state``, called after every adapting
            local phase (one per training loop); ``n_phases`` (static) is how many adapting
            phases the run has. Windowed estimators close their window here. Default: keep.
    """

    init: Callable[[PyTree, Array], PyTree]
    update: Callable[[PyTree, Array, StepInfo], PyTree]
    current: Callable[[PyTree], PyTree]
    final: Callable[[PyTree], PyTree]
    end_phase: Callable[[PyTree, int], PyTree] = _keep


def no_adaptation() -> Adaptation:
    """An `Adaptation` that leaves the params unchanged (e.g. for ``SiteFlip``)."""
    return Adaptation(
        init=lambda params, positions: params,
        update=lambda state, positions, infos: state,
        current=lambda state: state,
        final=lambda state: state,
    )


class AdaptationState(NamedTuple):
    """Adaptation state of a continuous local kernel (a pytree of arrays).

    Attributes:
        step_size: dual-averaging state of the step size (MALA, HMC) or scale (RandomWalk).
        mass: windowed diagonal inverse-mass estimate (HMC); ``None`` for kernels without one.
    """

    step_size: DualAveragingState
    mass: WindowedMassState | None = None
