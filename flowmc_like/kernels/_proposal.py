"""Kernels whose step is: propose, compute the Metropolis-Hastings ratio, accept (private)."""

from __future__ import annotations

import abc
from typing import Any

import jax

from flowmc_like._types import Array, LogProbFn, PRNGKey, PyTree
from flowmc_like.kernels.base import AbstractLocalKernel, StepInfo
from flowmc_like.kernels.metropolis import mh_accept

__all__ = ["AbstractProposalKernel"]


class AbstractProposalKernel(AbstractLocalKernel):
    """A kernel defined by a proposal and its log acceptance ratio (MALA, RandomWalk)."""

    @abc.abstractmethod
    def propose(self, key: PRNGKey, state: Any, log_prob_fn: LogProbFn, params: PyTree) -> Any:
        """Draw a proposed state of one chain (target evaluated there, not yet accepted)."""

    @abc.abstractmethod
    def log_acceptance_ratio(self, params: PyTree, current: Any, proposed: Any) -> Array:
        """``()`` log Metropolis-Hastings ratio of the move ``current -> proposed``."""

    def step(
        self, key: PRNGKey, state: Any, log_prob_fn: LogProbFn, params: PyTree
    ) -> tuple[Any, StepInfo]:
        """One transition of one chain: `propose`, `log_acceptance_ratio`, `mh_accept`.

        Args:
            key: PRNG key.
            state: current state.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
            params: current params.

        Returns:
            The next state and its `StepInfo`.
        """
        key_propose, key_accept = jax.random.split(key)
        proposed = self.propose(key_propose, state, log_prob_fn, params)
        log_ratio = self.log_acceptance_ratio(params, state, proposed)
        return mh_accept(key_accept, log_ratio, proposed, state)
