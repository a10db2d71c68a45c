"""The global-model protocol: an exactly normalised density that can be sampled."""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

from flowmc_like._types import Array, PRNGKey, PyTree, Space

__all__ = ["AbstractDiscreteModel", "AbstractFlow", "AbstractGlobalModel", "ModelParams"]


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

    def n_uniforms(self, n_dim: int) -> int | None:
        """How many ``U[0, 1)`` draws `sample_and_log_prob_from_uniform` uses per event.

        None (the default) means the model only samples from a key. A model that gives a
        number lets the global phase draw the randomness of all its proposals (and of their
        accept/reject decisions) in one call, which compiles much faster than one random
        call per proposal.
        """
        del n_dim
        return None

    def sample_and_log_prob_from_uniform(
        self, params: ModelParams, uniform: Array
    ) -> tuple[Array, Array]:
        """`sample_and_log_prob` with its randomness given: ``uniform (n_uniforms,)`` in [0, 1)."""
        raise NotImplementedError(f"{type(self).__name__} samples from a key only")


class AbstractFlow(AbstractGlobalModel):
    """A continuous global model that is a bijection ``x = T(z)`` of a standard normal ``z``.

    Local moves in the flow's base space (``Sampler(local_in_latent_space=True)``) need the
    two maps below; `RealNVP` and `RQSpline` are flows.
    """

    space: ClassVar[Space] = Space.CONTINUOUS

    @abc.abstractmethod
    def forward_and_log_det(self, params: ModelParams, z: Array) -> tuple[Array, Array]:
        """Map a base point to event space: ``z (n_dim,) -> (x (n_dim,), log|det dx/dz| ())``."""

    @abc.abstractmethod
    def inverse_and_log_det(self, params: ModelParams, x: Array) -> tuple[Array, Array]:
        """Map one event to the base space: ``x (n_dim,) -> (z (n_dim,), log|det dz/dx| ())``."""


class AbstractDiscreteModel(AbstractGlobalModel):
    """A global model of integer states in ``[0, n_categories)`` (e.g. `Autoregressive`).

    Attributes:
        n_categories: the number of categories K of every site (the kernel's, if it is
            discrete, must agree).
    """

    space: ClassVar[Space] = Space.DISCRETE
    n_categories: int
