"""Metropolis-adjusted Langevin algorithm (MALA)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like._types import Array, ArrayLike, LogProbFn, Space
from flowmc_like._validation import check_float
from flowmc_like.adaptation.base import Adaptation
from flowmc_like.adaptation.builders import step_size_adaptation
from flowmc_like.kernels._proposal import AbstractProposalKernel
from flowmc_like.kernels._utils import as_float_position

__all__ = ["MALA", "MALAParams", "MALAState"]


class MALAState(NamedTuple):
    """State of one MALA chain.

    Attributes:
        position: ``(n_dim,)`` current position.
        log_prob: ``()`` target log density at ``position``.
        grad: ``(n_dim,)`` gradient of the log density at ``position`` (cached, so each step
            evaluates the target and its gradient once, at the proposal).
    """

    position: Array
    log_prob: Array
    grad: Array


class MALAParams(NamedTuple):
    """Adaptable MALA parameters.

    Attributes:
        step_size: ``()`` step size ``h``, the standard deviation of the proposal noise.
    """

    step_size: Array


@dataclasses.dataclass(frozen=True)
class MALA(AbstractProposalKernel):
    """Metropolis-adjusted Langevin algorithm.

    With step size ``h`` (``step_size``) and ``xi ~ N(0, I)``, the proposal is::

        x' = x + (h^2 / 2) grad log p(x) + h xi

    so ``h`` is the proposal's standard deviation (flowMC's convention; blackjax's
    ``step_size = eps`` is ``h^2 / 2`` here). The proposal density is::

        log q(x' | x) = -|x' - x - (h^2 / 2) grad log p(x)|^2 / (2 h^2)
                        - n_dim log h - (n_dim / 2) log(2 pi)

    and the proposal is accepted with probability ``min(1, exp(log_ratio))`` where::

        log_ratio = log p(x') - log p(x) + log q(x | x') - log q(x' | x)

    Each step evaluates ``log_prob_fn`` and its gradient once (at ``x'``); the current
    gradient is cached in `MALAState`. During the training loops ``h`` is tuned by dual
    averaging toward an acceptance of 0.574, optimal for MALA in high dimension
    (Roberts & Rosenthal 1998).

    Attributes:
        step_size: initial step size ``h > 0`` (default 0.1).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> kernel = MALA(step_size=0.5)
        >>> log_prob_fn = lambda x: -0.5 * jnp.sum(x**2)
        >>> state = kernel.init(jnp.zeros(2), log_prob_fn)
        >>> params = kernel.init_params(n_dim=2)
        >>> state, info = kernel.step(jax.random.key(0), state, log_prob_fn, params)
        >>> state.position.shape, info.acceptance_prob.shape
        ((2,), ())
    """

    step_size: float = 0.1

    space: ClassVar[Space] = Space.CONTINUOUS
    target_acceptance: ClassVar[float] = 0.574
    reports_energy_error: ClassVar[bool] = True

    def __post_init__(self) -> None:
        step_size = check_float(
            "step_size", self.step_size, minimum=0.0, open_minimum=True, owner="MALA"
        )
        object.__setattr__(self, "step_size", step_size)

    def init_params(self, n_dim: int) -> MALAParams:
        """``MALAParams`` holding the initial step size as a ``()`` float array.

        Args:
            n_dim: dimension of one position (unused).

        Returns:
            The initial params.
        """
        del n_dim
        return MALAParams(step_size=jnp.asarray(self.step_size, dtype=jnp.result_type(float)))

    def init(self, position: ArrayLike, log_prob_fn: LogProbFn) -> MALAState:
        """State of one chain at ``position`` ``(n_dim,)`` (one value-and-gradient call)."""
        position = as_float_position(position)
        log_prob, grad = jax.value_and_grad(log_prob_fn)(position)
        return MALAState(position=position, log_prob=log_prob, grad=grad)

    def propose_with_noise(
        self, noise: Array, state: MALAState, log_prob_fn: LogProbFn, params: MALAParams
    ) -> MALAState:
        """``x' = x + (h^2/2) grad + h xi`` from the draw ``xi``; target and gradient at ``x'``.

        Args:
            noise: ``(n_dim,)`` standard-normal draw ``xi``.
            state: current state of one chain.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
            params: current params.

        Returns:
            The proposed state (not yet accepted).
        """
        position = state.position
        h = jnp.asarray(params.step_size, dtype=position.dtype)
        proposed_position = position + 0.5 * h**2 * state.grad + h * noise.astype(position.dtype)
        log_prob, grad = jax.value_and_grad(log_prob_fn)(proposed_position)
        return MALAState(position=proposed_position, log_prob=log_prob, grad=grad)

    def proposal_log_density(
        self, params: MALAParams, x_to: ArrayLike, x_from: ArrayLike, grad_from: ArrayLike
    ) -> Array:
        """Normalised ``log q(x_to | x_from)`` of the Langevin proposal.

        Args:
            params: params holding ``h``.
            x_to: ``(n_dim,)`` destination.
            x_from: ``(n_dim,)`` origin.
            grad_from: ``(n_dim,)`` gradient of the log density at ``x_from``.

        Returns:
            ``()`` log density of ``N(x_to; x_from + (h^2/2) grad_from, h^2 I)``.
        """
        x_to = jnp.asarray(x_to)
        h = jnp.asarray(params.step_size, dtype=x_to.dtype)
        mean = jnp.asarray(x_from) + 0.5 * h**2 * jnp.asarray(grad_from)
        n_dim = x_to.shape[-1]
        return (
            -0.5 * jnp.sum((x_to - mean) ** 2) / h**2
            - n_dim * jnp.log(h)
            - 0.5 * n_dim * math.log(2.0 * math.pi)
        )

    def log_acceptance_ratio(
        self, params: MALAParams, current: MALAState, proposed: MALAState
    ) -> Array:
        """``log p(x') - log p(x) + log q(x | x') - log q(x' | x)`` for the move x -> x'.

        Args:
            params: params holding ``h``.
            current: state at ``x``.
            proposed: state at ``x'``.

        Returns:
            ``()`` log Metropolis-Hastings ratio (may be non-finite; `mh_accept` rejects then).
        """
        log_q_reverse = self.proposal_log_density(
            params, current.position, proposed.position, proposed.grad
        )
        log_q_forward = self.proposal_log_density(
            params, proposed.position, current.position, current.grad
        )
        return proposed.log_prob - current.log_prob + log_q_reverse - log_q_forward

    def adaptation(self) -> Adaptation:
        """Dual averaging of ``step_size`` toward 0.574, updated after every adapting step.

        The update uses the acceptance probability averaged over chains, so all chains share
        one step size; ``final`` returns the averaged iterate ``exp(log hbar)``.
        """
        return step_size_adaptation(
            self.target_acceptance,
            get_step_size=lambda params: params.step_size,
            make_params=lambda step_size: MALAParams(step_size=step_size),
        )

    def step_size_of(self, params: Any) -> Array:
        """The step size."""
        return jnp.mean(jnp.asarray(params.step_size))
