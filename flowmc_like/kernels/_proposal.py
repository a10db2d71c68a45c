"""Kernels whose step is: propose, compute the Metropolis-Hastings ratio, accept (private)."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, NamedTuple

import jax

from flowmc_like._random import normal_from_uniform, uniform
from flowmc_like._types import Array, LogProbFn, PRNGKey, PyTree
from flowmc_like.kernels.base import AbstractLocalKernel, StepInfo
from flowmc_like.kernels.metropolis import mh_accept

__all__ = ["AbstractProposalKernel", "StepNoise"]


class StepNoise(NamedTuple):
    """The randomness of proposal-kernel steps.

    Leading axes ``(n_steps, n_chains)`` as drawn, none for one step of one chain.

    Attributes:
        proposal: ``(..., n_dim)`` standard-normal draws of the proposals.
        uniform: ``(...)`` uniform draws of the accept/reject decisions.
    """

    proposal: Array
    uniform: Array


def _noise_from_uniform(draws: Array) -> StepNoise:
    """`StepNoise` from uniforms ``(..., n_dim + 1)``: normals by inverse CDF, last column."""
    n_dim = draws.shape[-1] - 1
    return StepNoise(proposal=normal_from_uniform(draws[..., :n_dim]), uniform=draws[..., n_dim])


class AbstractProposalKernel(AbstractLocalKernel):
    """A kernel defined by a Gaussian proposal and its log acceptance ratio (MALA, RandomWalk).

    A step's randomness is one standard-normal vector and one uniform per chain, drawn for
    all chains at once by `draw_noise` and consumed by `step_with_noise`.
    """

    reports_energy_error: ClassVar[bool] = False
    """The move discretises Hamiltonian (Langevin) dynamics, so ``-log_ratio`` is its energy
    error and a huge one is a divergence (MALA: one leapfrog step with a fresh momentum)."""

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

    def draw_noise(self, key: PRNGKey, positions: Array, n_steps: int = 1) -> StepNoise:
        """The normal vectors and uniforms of ``n_steps`` steps of every chain, in one draw.

        Args:
            key: PRNG key.
            positions: ``(n_chains, n_dim)`` current positions (for shape and dtype).
            n_steps: number of steps.

        Returns:
            `StepNoise` with ``proposal (n_steps, n_chains, n_dim)`` and ``uniform (n_steps,
            n_chains)``.
        """
        n_chains, n_dim = positions.shape
        return _noise_from_uniform(uniform(key, (n_steps, n_chains, n_dim + 1), positions.dtype))

    def step_with_noise(
        self, noise: StepNoise, state: Any, log_prob_fn: LogProbFn, params: PyTree
    ) -> tuple[Any, StepInfo]:
        """One transition of one chain from its noise (one row of `draw_noise`'s output).

        A kernel with ``reports_energy_error`` (a discretised Langevin or Hamiltonian move)
        reports ``-log_ratio`` as the step's ``energy_error``.
        """
        proposed = self.propose_with_noise(noise.proposal, state, log_prob_fn, params)
        log_ratio = self.log_acceptance_ratio(params, state, proposed)
        state, info = mh_accept(noise.uniform, log_ratio, proposed, state)
        if self.reports_energy_error:
            info = info._replace(energy_error=-log_ratio)
        return state, info

    def step(
        self, key: PRNGKey, state: Any, log_prob_fn: LogProbFn, params: PyTree
    ) -> tuple[Any, StepInfo]:
        """One transition of one chain: its noise drawn from ``key``, then `step_with_noise`.

        The noise is transformed as in `draw_noise` from ``n_dim + 1`` uniforms drawn with
        `jax.random.uniform` (per-key draws, consistent under `jax.vmap`).

        Args:
            key: PRNG key.
            state: current state.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
            params: current params.

        Returns:
            The next state and its `StepInfo`.
        """
        position = state.position
        draws = jax.random.uniform(key, (position.shape[0] + 1,), dtype=position.dtype)
        return self.step_with_noise(_noise_from_uniform(draws), state, log_prob_fn, params)
