"""Type aliases, the `Space` enum and `StepInfo`, shared by kernels, models and the sampler."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

__all__ = ["Array", "ArrayLike", "LogProbFn", "PRNGKey", "PyTree", "Space", "StepInfo"]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PRNGKey = jax.Array
PyTree = Any
LogProbFn = Callable[[Array], Array]
"""One event ``(n_dim,)`` -> scalar unnormalised log density (data already bound)."""


class Space(enum.Enum):
    """The kind of state space a kernel or a model works on."""

    CONTINUOUS = "continuous"
    DISCRETE = "discrete"


class StepInfo(NamedTuple):
    """Per-step diagnostics shared by every kernel and by the global move.

    Attributes:
        acceptance_prob: ``()`` float in [0, 1], min(1, exp(log_ratio)); 0 for non-finite ratios.
        is_accepted: ``()`` bool.
        is_nonfinite: ``()`` bool, true when the proposal was rejected because its log density
            (or the log ratio) was NaN or infinite; for `SiteFlip`, when any site's proposal
            in the sweep was.
        energy: ``()`` for Hamiltonian kernels (`HMC`), the Hamiltonian ``-log p(x) + K(p)``
            of the state the step ends in, with its momentum (what Stan and numpyro report
            as ``energy``); None for other kernels.
        energy_error: ``()`` for kernels that integrate Hamiltonian dynamics (`HMC`,
            `MALA`), ``H(x', p') - H(x, p)`` of the proposal, which is ``-log_ratio``; a
            value above `flowmc_like.phases.DIVERGENCE_THRESHOLD` (or not finite) is a
            divergent transition. None for other kernels.
    """

    acceptance_prob: Array
    is_accepted: Array
    is_nonfinite: Array
    energy: Array | None = None
    energy_error: Array | None = None
