"""The local-kernel protocol: a frozen config object plus pure one-chain functions.

A kernel is a frozen dataclass holding *initial* values only (e.g. a step size). Adaptable
values live in a ``*Params`` NamedTuple of arrays, so adapting them never recompiles.
Every kernel state is a NamedTuple whose first two fields are ``position`` and ``log_prob``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from flowmc_like._types import Array, LogProbFn, PRNGKey, PyTree, Space

__all__ = ["AbstractLocalKernel", "Adaptation", "StepInfo", "no_adaptation"]


class StepInfo(NamedTuple):
    """Per-step diagnostics shared by every kernel and by the global move.

    Attributes:
        acceptance_prob: ``()`` float in [0, 1], min(1, exp(log_ratio)); 0 for non-finite ratios.
        is_accepted: ``()`` bool.
        is_nonfinite: ``()`` bool, true when the proposal was rejected because its log density
            (or the log ratio) was NaN or infinite; for `SiteFlip`, when any site's proposal
            in the sweep was.
    """

    acceptance_prob: Array
    is_accepted: Array
    is_nonfinite: Array


class Adaptation(NamedTuple):
    """Pure functions that tune a kernel's params during the training loops.

    Attributes:
        init: ``(params) -> adapt_state``.
        update: ``(adapt_state, positions (n_chains, n_dim), infos: StepInfo batched over
            chains) -> adapt_state``; called after every local step while adapting.
        current: ``(adapt_state) -> params`` used for the next step while adapting.
        final: ``(adapt_state) -> params`` frozen for production.
    """

    init: Callable[[PyTree], PyTree]
    update: Callable[[PyTree, Array, StepInfo], PyTree]
    current: Callable[[PyTree], PyTree]
    final: Callable[[PyTree], PyTree]


def no_adaptation() -> Adaptation:
    """An `Adaptation` that leaves the params unchanged (e.g. for ``SiteFlip``)."""
    return Adaptation(
        init=lambda params: params,
        update=lambda state, positions, infos: state,
        current=lambda state: state,
        final=lambda state: state,
    )


class AbstractLocalKernel(abc.ABC):
    """A Markov kernel that updates one chain and leaves the target invariant.

    Concrete kernels are frozen dataclasses; every method works on ONE chain and is
    vmapped over chains by `flowmc_like.phases` only.
    """

    space: ClassVar[Space]
    target_acceptance: ClassVar[float]

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

    @abc.abstractmethod
    def adaptation(
        self,
        n_dim: int,
        window_size: int,
        n_chains: int | None = None,
        n_windows: int | None = None,
    ) -> Adaptation:
        """The adaptation used in training loops.

        Args:
            n_dim: dimension of one position.
            window_size: number of adapting steps per local phase (``n_local_steps``);
                windowed estimators (e.g. HMC's mass matrix) close a window after this many.
            n_chains: number of chains, for estimators that track each chain (HMC's mass).
            n_windows: number of adapting local phases in the run (``n_training_loops``).
        """
