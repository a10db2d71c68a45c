"""Adaptation of local-kernel parameters during the training loops."""

from flowmc_like.adaptation.base import AdaptationState
from flowmc_like.adaptation.mass_matrix import (
    WelfordState,
    WindowedMassState,
    regularize_variance,
    welford_init,
    welford_update,
    welford_variance,
    windowed_mass_init,
    windowed_mass_update,
)
from flowmc_like.adaptation.step_size import (
    DualAveragingState,
    dual_averaging_current,
    dual_averaging_final,
    dual_averaging_init,
    dual_averaging_restart,
    dual_averaging_update,
)

__all__ = [
    "AdaptationState",
    "DualAveragingState",
    "WelfordState",
    "WindowedMassState",
    "dual_averaging_current",
    "dual_averaging_final",
    "dual_averaging_init",
    "dual_averaging_restart",
    "dual_averaging_update",
    "regularize_variance",
    "welford_init",
    "welford_update",
    "welford_variance",
    "windowed_mass_init",
    "windowed_mass_update",
]
