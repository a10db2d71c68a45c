"""The global-model protocol: an exactly normalised density that can be sampled."""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

from flowmc_like._types import Array, PRNGKey, PyTree, Space

__all__ = ["AbstractGlobalModel", "ModelParams"]


class ModelParams(NamedTuple):
    """Parameters of a global model.

    Attributes:
        trainable: pytree optimised by maximum likelihood.
        frozen: pytree of statistics set by `AbstractGlobalModel.prepare` (e.g. the
            standardisation's mean and scale); never differentiated.
    """

    trainable: PyTree
    frozen: PyTree


class AbstractGlobalModel(abc.ABC):
    """A normalised proposal density q used for independence Metropolis-Hastings moves.

    Concrete models are frozen dataclasses (the config); every method works on ONE event.
    """

    space: ClassVar[Space]

    @abc.abstractmethod
    def init(self, key: PRNGKey, n_dim: int) -> ModelParams:
        """Fresh params; a fresh continuous flow is the identity map (standard normal)."""

    @abc.abstractmethod
    def prepare(self, params: ModelParams, data: Array) -> ModelParams:
        """Refresh ``params.frozen`` from training data ``(n_examples, n_dim)``."""

    @abc.abstractmethod
    def log_prob(self, params: ModelParams, x: Array) -> Array:
        """Exact, normalised ``log q(x)`` of one event ``(n_dim,)`` -> ``()``."""

    @abc.abstractmethod
    def sample_and_log_prob(self, params: ModelParams, key: PRNGKey) -> tuple[Array, Array]:
        """One draw ``(n_dim,)`` and its ``log q`` ``()`` in one pass."""
