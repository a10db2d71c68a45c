"""Gaussian random-walk Metropolis."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import jax.numpy as jnp

from flowmc_like._types import Array, ArrayLike, LogProbFn, Space
from flowmc_like._validation import check_float
from flowmc_like.adaptation.base import Adaptation
from flowmc_like.adaptation.builders import step_size_adaptation
from flowmc_like.kernels._proposal import AbstractProposalKernel
from flowmc_like.kernels._utils import as_float_position

__all__ = ["RandomWalk", "RandomWalkParams", "RandomWalkState"]


class RandomWalkState(NamedTuple):
    """State of one random-walk chain.

    Attributes:
        position: ``(n_dim,)`` current position.
        log_prob: ``()`` target log density at ``position``.
    """

    position: Array
    log_prob: Array


class RandomWalkParams(NamedTuple):
    """Adaptable random-walk parameters.

    Attributes:
        scale: ``()`` standard deviation ``s`` of the isotropic Gaussian increment.
    """

    scale: Array


@dataclasses.dataclass(frozen=True)
class RandomWalk(AbstractProposalKernel):
    """Random-walk Metropolis with an isotropic Gaussian increment.

    With scale ``s`` and ``xi ~ N(0, I)``, the proposal is ``x' = x + s xi``, with density::

        log q(x' | x) = -|x' - x|^2 / (2 s^2) - n_dim log s - (n_dim / 2) log(2 pi)

    accepted with probability ``min(1, exp(log_ratio))``, where::

        log_ratio = log p(x') - log p(x) + log q(x | x') - log q(x' | x)

    (the proposal terms cancel exactly because the increment is symmetric). Each step evaluates
    ``log_prob_fn`` once, without gradients. During the training loops ``s`` is tuned by dual
    averaging toward an acceptance of 0.234 (Roberts, Gelman & Gilks 1997).

    Attributes:
        scale: initial increment standard deviation ``s > 0`` (default 0.1).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> kernel = RandomWalk(scale=1.0)
        >>> log_prob_fn = lambda x: -0.5 * jnp.sum(x**2)
        >>> state = kernel.init(jnp.zeros(3), log_prob_fn)
        >>> state, info = kernel.step(jax.random.key(0), state, log_prob_fn, kernel.init_params(3))
        >>> state.position.shape
        (3,)
    """

    scale: float = 0.1

    space: ClassVar[Space] = Space.CONTINUOUS
    target_acceptance: ClassVar[float] = 0.234

    def __post_init__(self) -> None:
        scale = check_float("scale", self.scale, minimum=0.0, open_minimum=True, owner="RandomWalk")
        object.__setattr__(self, "scale", scale)

    def init_params(self, n_dim: int) -> RandomWalkParams:
        """``RandomWalkParams`` holding the initial scale as a ``()`` float array.

        Args:
            n_dim: dimension of one position (unused).

        Returns:
            The initial params.
        """
        del n_dim
        return RandomWalkParams(scale=jnp.asarray(self.scale, dtype=jnp.result_type(float)))

    def init(self, position: ArrayLike, log_prob_fn: LogProbFn) -> RandomWalkState:
        """State of one chain at ``position`` ``(n_dim,)`` (one log-density call)."""
        position = as_float_position(position)
        return RandomWalkState(position=position, log_prob=log_prob_fn(position))

    def propose_with_noise(
        self,
        noise: Array,
        state: RandomWalkState,
        log_prob_fn: LogProbFn,
        params: RandomWalkParams,
    ) -> RandomWalkState:
        """``x' = x + s xi`` for the draw ``xi`` ``(n_dim,)``, with the target evaluated there.

        Args:
            noise: ``(n_dim,)`` standard-normal draw ``xi``.
            state: current state of one chain.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
            params: current params.

        Returns:
            The proposed state (not yet accepted).
        """
        position = state.position
        scale = jnp.asarray(params.scale, dtype=position.dtype)
        proposed_position = position + scale * noise.astype(position.dtype)
        return RandomWalkState(position=proposed_position, log_prob=log_prob_fn(proposed_position))

    def proposal_log_density(
        self, params: RandomWalkParams, x_to: ArrayLike, x_from: ArrayLike
    ) -> Array:
        """Normalised ``log q(x_to | x_from)`` of the Gaussian increment.

        Args:
            params: params holding ``s``.
            x_to: ``(n_dim,)`` destination.
            x_from: ``(n_dim,)`` origin.

        Returns:
            ``()`` log density of ``N(x_to; x_from, s^2 I)``.
        """
        x_to = jnp.asarray(x_to)
        scale = jnp.asarray(params.scale, dtype=x_to.dtype)
        n_dim = x_to.shape[-1]
        return (
            -0.5 * jnp.sum((x_to - jnp.asarray(x_from)) ** 2) / scale**2
            - n_dim * jnp.log(scale)
            - 0.5 * n_dim * math.log(2.0 * math.pi)
        )

    def log_acceptance_ratio(
        self, params: RandomWalkParams, current: RandomWalkState, proposed: RandomWalkState
    ) -> Array:
        """``log p(x') - log p(x) + log q(x | x') - log q(x' | x)`` for the move x -> x'.

        Args:
            params: params holding ``s``.
            current: state at ``x``.
            proposed: state at ``x'``.

        Returns:
            ``()`` log Metropolis-Hastings ratio (may be non-finite; `mh_accept` rejects then).
        """
        log_q_reverse = self.proposal_log_density(params, current.position, proposed.position)
        log_q_forward = self.proposal_log_density(params, proposed.position, current.position)
        return proposed.log_prob - current.log_prob + log_q_reverse - log_q_forward

    def adaptation(self) -> Adaptation:
        """Dual averaging of ``scale`` toward 0.234, updated after every adapting step.

        The update uses the acceptance probability averaged over chains, so all chains share
        one scale; ``final`` returns the averaged iterate.
        """
        return step_size_adaptation(
            self.target_acceptance,
            get_step_size=lambda params: params.scale,
            make_params=lambda scale: RandomWalkParams(scale=scale),
        )

    def step_size_of(self, params: Any) -> Array:
        """The scale."""
        return jnp.mean(jnp.asarray(params.scale))
