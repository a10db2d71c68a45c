"""The state carried by a kernel's `flowmc_like.kernels.base.Adaptation` functions."""

from __future__ import annotations

from typing import NamedTuple

from flowmc_like.adaptation.mass_matrix import WindowedMassState
from flowmc_like.adaptation.step_size import DualAveragingState

__all__ = ["AdaptationState"]


class AdaptationState(NamedTuple):
    """Adaptation state of a continuous local kernel (a pytree of arrays).

    Attributes:
        step_size: dual-averaging state of the step size (MALA, HMC) or scale (RandomWalk).
        mass: windowed diagonal inverse-mass estimate (HMC); ``None`` for kernels without one.
    """

    step_size: DualAveragingState
    mass: WindowedMassState | None = None
