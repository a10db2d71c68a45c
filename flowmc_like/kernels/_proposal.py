"""Kernels whose step is: propose, compute the Metropolis-Hastings ratio, accept (private)."""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import jax

from flowmc_like._types import Array, LogProbFn, PRNGKey, PyTree
from flowmc_like.kernels.base import AbstractLocalKernel, StepInfo
from flowmc_like.kernels.metropolis import mh_accept_with_uniform

__all__ = ["AbstractProposalKernel", "StepNoise"]


class StepNoise(NamedTuple):
    """The randomness of one proposal-kernel step of one chain.

    Attributes:
        proposal: ``(n_dim,)`` standard-normal draw of the proposal.
        uniform: ``()`` uniform draw of the accept/reject decision.
    """

    proposal: Array
    uniform: Array


class AbstractProposalKernel(AbstractLocalKernel):
    """A kernel defined by a Gaussian proposal and its log acceptance ratio (MALA, RandomWalk).

    A step's randomness is one standard-normal vector and one uniform (`draw_noise`), so the
    local phase can draw all steps' noise in one batched call (`step_with_noise`).
    """

    @abc.abstractmethod
    def propose_with_noise(
        self, noise: Array, state: Any, log_prob_fn: LogProbFn, params: PyTree
    ) -> Any:
        """The proposed state of one chain built from a standard-normal ``(n_dim,)`` draw."""

    @abc.abstractmethod
    def log_acceptance_ratio(self, params: PyTree, current: Any, proposed: Any) -> Array:
        """``()`` log Metropolis-Hastings ratio of the move ``current -> proposed``."""

    def propose(self, key: PRNGKey, state: Any, log_prob_fn: LogProbFn, params: PyTree) -> Any:
        """Draw a proposed state of one chain (target evaluated there, not yet accepted)."""
        position = state.position
        noise = jax.random.normal(key, position.shape, dtype=position.dtype)
        return self.propose_with_noise(noise, state, log_prob_fn, params)

    def draw_noise(self, key: PRNGKey, position: Array) -> StepNoise:
        """The normal vector and the uniform of one step (the same bits `step` would use)."""
        key_propose, key_accept = jax.random.split(key)
        return StepNoise(
            proposal=jax.random.normal(key_propose, position.shape, dtype=position.dtype),
            uniform=jax.random.uniform(key_accept, dtype=position.dtype),
        )

    def step_with_noise(
        self, noise: StepNoise, state: Any, log_prob_fn: LogProbFn, params: PyTree
    ) -> tuple[Any, StepInfo]:
        """One transition of one chain from its drawn noise: propose, ratio, accept."""
        proposed = self.propose_with_noise(noise.proposal, state, log_prob_fn, params)
        log_ratio = self.log_acceptance_ratio(params, state, proposed)
        return mh_accept_with_uniform(noise.uniform, log_ratio, proposed, state)

    def step(
        self, key: PRNGKey, state: Any, log_prob_fn: LogProbFn, params: PyTree
    ) -> tuple[Any, StepInfo]:
        """One transition of one chain: `draw_noise`, then `step_with_noise`.

        Args:
            key: PRNG key.
            state: current state.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
            params: current params.

        Returns:
            The next state and its `StepInfo`.
        """
        return self.step_with_noise(
            self.draw_noise(key, state.position), state, log_prob_fn, params
        )
