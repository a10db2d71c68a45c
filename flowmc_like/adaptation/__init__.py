"""Adaptation of local-kernel params in the training loops: its type, builders, estimators."""

from flowmc_like.adaptation.base import Adaptation, AdaptationState, no_adaptation
from flowmc_like.adaptation.builders import step_size_adaptation, step_size_and_mass_adaptation
from flowmc_like.adaptation.mass_matrix import (
    WelfordState,
    WindowedMassState,
    close_mass_window,
    regularize_variance,
    welford_init,
    welford_update,
    welford_variance,
    windowed_mass_init,
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
    "Adaptation",
    "AdaptationState",
    "DualAveragingState",
    "WelfordState",
    "WindowedMassState",
    "dual_averaging_current",
    "dual_averaging_final",
    "dual_averaging_init",
    "dual_averaging_restart",
    "dual_averaging_update",
    "close_mass_window",
    "no_adaptation",
    "regularize_variance",
    "step_size_adaptation",
    "step_size_and_mass_adaptation",
    "welford_init",
    "welford_update",
    "welford_variance",
    "windowed_mass_init",
]
