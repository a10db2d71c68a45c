"""Type aliases and the `Space` enum shared by kernels, models and the sampler."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["Array", "ArrayLike", "LogProbFn", "PRNGKey", "PyTree", "Space"]

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
