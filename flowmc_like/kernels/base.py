"""The local-kernel protocol: a frozen config object plus pure one-chain functions.

A kernel is a frozen dataclass holding *initial* values only (e.g. a step size). Adaptable
values live in a ``*Params`` NamedTuple of arrays, so adapting them never recompiles.
Every kernel state is a NamedTuple whose first two fields are ``position`` and ``log_prob``.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import jax.numpy as jnp

from flowmc_like._types import Array, LogProbFn, PRNGKey, PyTree, Space, StepInfo
from flowmc_like.adaptation.base import Adaptation, no_adaptation

__all__ = [
    "AbstractDiscreteKernel",
    "AbstractLocalKernel",
    "Adaptation",
    "StepInfo",
    "no_adaptation",
]


class AbstractLocalKernel(abc.ABC):
    """A Markov kernel that updates one chain and leaves the target invariant.

    Concrete kernels are frozen dataclasses; every method works on ONE chain and is
    vmapped over chains by `flowmc_like.phases` only. Only `init_params`, `init` and `step`
    are required; `adaptation`, `step_size_of`, `check_target` and the bulk-noise pair
    `draw_noise` / `step_with_noise` have defaults.
    """

    space: ClassVar[Space]
    target_acceptance: ClassVar[float]
    steps_per_exchange: ClassVar[int] = 5
    """With tempering, local steps between exchange rounds (an exchange re-evaluates the
    target once or twice per replica: cheap kernels exchange less often)."""

    @abc.abstractmethod
    def init_params(self, n_dim: int) -> PyTree:
        """Initial params (NamedTuple of arrays) from the config's initial values."""

    @abc.abstractmethod
    def init(self, position: Array, log_prob_fn: LogProbFn) -> Any:
        """Kernel state for one chain at ``position`` ``(n_dim,)``."""

    @abc.abstractmethod
    def step(
        self, key: PRNGKey, state: Any, log_prob_fn: LogProbFn, params: PyTree
    ) -> tuple[Any, StepInfo]:
        """One transition of one chain; returns the new state and its `StepInfo`."""

    def draw_noise(self, key: PRNGKey, positions: Array, n_steps: int = 1) -> PyTree | None:
        """All the randomness of ``n_steps`` steps of every chain, or None (the default).

        ``positions`` is ``(n_chains, n_dim)``; the noise is a pytree whose leaves have the
        leading axes ``(n_steps, n_chains)``, drawn in one call (each random call compiles
        its own generator, so fewer calls compile faster). A kernel that returns a pytree
        here must implement `step_with_noise`, taking one step of one chain of it; the
        local phase then draws the noise of all its steps before its loop, which also
        makes each step several times cheaper on CPU. Kernels returning None get one key
        per chain and step in `step`.
        """
        del key, positions, n_steps
        return None

    def step_with_noise(
        self, noise: PyTree, state: Any, log_prob_fn: LogProbFn, params: PyTree
    ) -> tuple[Any, StepInfo]:
        """`step` of one chain with its randomness given (one step and chain of `draw_noise`)."""
        raise NotImplementedError(f"{type(self).__name__} draws its noise inside step")

    def check_target(self, log_prob_fn: LogProbFn, positions: Array) -> None:
        """Check, before anything is compiled, what the kernel needs from the target.

        Called by the `Sampler` with the starting positions ``(n_chains, n_dim)``; raises a
        ValueError or TypeError with a clear message. The default checks nothing.
        """
        del log_prob_fn, positions

    def tempered(self, beta: Array) -> AbstractLocalKernel:
        """This kernel for the tempered target of inverse temperature ``beta`` (traced).

        The tempered log density reaches the kernel as its ``log_prob_fn``; a kernel that
        also holds a function of the target (`SiteFlip`'s ``delta_log_prob``) scales it
        here. The default returns the kernel itself.
        """
        del beta
        return self

    def adaptation(self) -> Adaptation:
        """How the training loops tune the params (default: `no_adaptation`, nothing tuned).

        The sampler calls ``init(params, positions)`` before the first loop, ``update`` after
        every adapting local step, ``end_phase`` after every adapting local phase, ``current``
        for the params of the next adapting step and ``final`` for production's params.
        """
        return no_adaptation()

    def step_size_of(self, params: PyTree) -> Array:
        """The ``()`` step size (or scale) in ``params``, as `History.step_size` reports it.

        The default is NaN (a kernel without one).
        """
        del params
        return jnp.asarray(jnp.nan)


class AbstractDiscreteKernel(AbstractLocalKernel):
    """A local kernel on integer states in ``[0, n_categories)`` (e.g. `SiteFlip`).

    Attributes:
        n_categories: the number of categories K of every site (``n_categories`` of the
            global model, if any, must agree).
    """

    space: ClassVar[Space] = Space.DISCRETE
    n_categories: int
