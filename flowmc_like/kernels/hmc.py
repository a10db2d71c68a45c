"""Hamiltonian Monte Carlo with a fixed number of leapfrog steps and a diagonal mass matrix."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like import _random as random
from flowmc_like._types import Array, ArrayLike, LogProbFn, PRNGKey, Space
from flowmc_like._validation import check_float, check_int
from flowmc_like.adaptation.base import Adaptation
from flowmc_like.adaptation.builders import step_size_and_mass_adaptation
from flowmc_like.kernels._utils import as_float_position
from flowmc_like.kernels.base import AbstractLocalKernel, StepInfo
from flowmc_like.kernels.integrators import IntegratorState, leapfrog
from flowmc_like.kernels.metropolis import mh_accept

__all__ = ["HMC", "HMCParams", "HMCState"]


class HMCState(NamedTuple):
    """State of one HMC chain.

    Attributes:
        position: ``(n_dim,)`` current position.
        log_prob: ``()`` target log density at ``position``.
        grad: ``(n_dim,)`` gradient of the log density at ``position`` (cached: the first
            leapfrog step reuses it).
    """

    position: Array
    log_prob: Array
    grad: Array


class HMCNoise(NamedTuple):
    """The randomness of HMC steps: leading axes ``(n_steps, n_chains)`` as drawn.

    Attributes:
        momentum: ``(..., n_dim)`` standard normals (the momentum before the mass scaling).
        jitter: ``(...)`` uniform of the step-size jitter.
        accept: ``(...)`` uniform of the accept/reject decision.
    """

    momentum: Array
    jitter: Array
    accept: Array


def _noise_from_uniform(draws: Array) -> HMCNoise:
    """`HMCNoise` from uniforms ``(..., n_dim + 2)`` (normals by inverse CDF)."""
    n_dim = draws.shape[-1] - 2
    return HMCNoise(
        momentum=random.normal_from_uniform(draws[..., :n_dim]),
        jitter=draws[..., n_dim],
        accept=draws[..., n_dim + 1],
    )


class HMCParams(NamedTuple):
    """Adaptable HMC parameters.

    Attributes:
        step_size: ``()`` leapfrog step size ``eps``.
        inverse_mass: ``(n_dim,)`` diagonal of the inverse mass matrix ``M^-1`` (ideally the
            target's marginal variances).
    """

    step_size: Array
    inverse_mass: Array


@dataclasses.dataclass(frozen=True)
class HMC(AbstractLocalKernel):
    """Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011) with a diagonal mass matrix.

    With ``M = diag(1 / inverse_mass)``, each step draws a fresh momentum ``p ~ N(0, M)`` (its
    own subkey), integrates ``n_leapfrog`` leapfrog steps of size ``eps`` (see
    `flowmc_like.kernels.integrators`) from ``(x, p)`` to ``(x', p')`` for the Hamiltonian::

        H(x, p) = -log p(x) + K(p),    K(p) = 0.5 * sum(inverse_mass * p^2)

    and accepts ``x'`` with probability ``min(1, exp(log_ratio))``, where::

        log_ratio = H(x, p) - H(x', p')

    Leapfrog is reversible and volume preserving, so this is an exact Metropolis-Hastings
    move in phase space; a non-finite energy is a rejection (`mh_accept`). Each transition
    uses the step size ``eps * (1 + step_size_jitter * u)``, ``u ~ U(-1, 1)`` drawn
    independently of the state (so the move stays exact): with a fixed trajectory the
    acceptance rate is not a monotone function of ``eps`` (trajectories resonate with the
    target's scales), and jitter both smooths it, so step-size adaptation converges, and
    avoids periodic trajectories. Each step costs ``n_leapfrog`` value-and-gradient
    evaluations (the gradient at ``x`` is cached in `HMCState`).

    During the training loops, ``eps`` is tuned by dual averaging toward an acceptance of
    0.65 and ``inverse_mass`` is estimated from windows of adapting steps (see `adaptation`).

    Attributes:
        step_size: initial leapfrog step size ``eps > 0`` (default 0.1).
        n_leapfrog: leapfrog steps per transition, a positive integer (default 10).
        step_size_jitter: relative half-width of the uniform step-size jitter, in [0, 1)
            (default 0.2; 0 disables it).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> kernel = HMC(step_size=0.2, n_leapfrog=5)
        >>> log_prob_fn = lambda x: -0.5 * jnp.sum(x**2)
        >>> state = kernel.init(jnp.zeros(2), log_prob_fn)
        >>> params = kernel.init_params(n_dim=2)
        >>> params.inverse_mass.tolist()
        [1.0, 1.0]
        >>> state, info = kernel.step(jax.random.key(0), state, log_prob_fn, params)
        >>> state.position.shape
        (2,)
    """

    step_size: float = 0.1
    n_leapfrog: int = 10
    step_size_jitter: float = 0.2

    space: ClassVar[Space] = Space.CONTINUOUS
    steps_per_exchange: ClassVar[int] = 1
    target_acceptance: ClassVar[float] = 0.65

    def __post_init__(self) -> None:
        step_size = check_float(
            "step_size", self.step_size, minimum=0.0, open_minimum=True, owner="HMC"
        )
        object.__setattr__(self, "step_size", step_size)
        object.__setattr__(
            self, "n_leapfrog", check_int("n_leapfrog", self.n_leapfrog, owner="HMC")
        )
        jitter = check_float(
            "step_size_jitter",
            self.step_size_jitter,
            minimum=0.0,
            maximum=1.0,
            open_maximum=True,
            owner="HMC",
        )
        object.__setattr__(self, "step_size_jitter", jitter)

    def init_params(self, n_dim: int) -> HMCParams:
        """Initial step size and a unit inverse mass.

        Args:
            n_dim: dimension of one position.

        Returns:
            ``HMCParams(step_size: (), inverse_mass: (n_dim,) ones)``.
        """
        dtype = jnp.result_type(float)
        return HMCParams(
            step_size=jnp.asarray(self.step_size, dtype=dtype),
            inverse_mass=jnp.ones((n_dim,), dtype=dtype),
        )

    def init(self, position: ArrayLike, log_prob_fn: LogProbFn) -> HMCState:
        """State of one chain at ``position`` ``(n_dim,)`` (one value-and-gradient call)."""
        position = as_float_position(position)
        log_prob, grad = jax.value_and_grad(log_prob_fn)(position)
        return HMCState(position=position, log_prob=log_prob, grad=grad)

    def sample_momentum(self, key: PRNGKey, params: HMCParams, position: Array) -> Array:
        """Draw ``p ~ N(0, M)`` with ``M = diag(1 / inverse_mass)``; shape ``(n_dim,)``."""
        noise = jax.random.normal(key, position.shape, dtype=position.dtype)
        return self.momentum_from_normal(params, noise)

    def momentum_from_normal(self, params: HMCParams, noise: Array) -> Array:
        """``p = noise / sqrt(inverse_mass)`` ~ ``N(0, M)`` from standard normals ``(n_dim,)``."""
        return noise / jnp.sqrt(jnp.asarray(params.inverse_mass, dtype=noise.dtype))

    def kinetic_energy(self, params: HMCParams, momentum: Array) -> Array:
        """``K(p) = 0.5 * sum(inverse_mass * p^2)``; shape ``()``."""
        inverse_mass = jnp.asarray(params.inverse_mass, dtype=momentum.dtype)
        return 0.5 * jnp.sum(inverse_mass * momentum**2)

    def integrate(
        self, params: HMCParams, state: HMCState, momentum: Array, log_prob_fn: LogProbFn
    ) -> tuple[HMCState, Array]:
        """Run ``n_leapfrog`` leapfrog steps from ``(state.position, momentum)``.

        Args:
            params: step size and inverse mass.
            state: start of the trajectory.
            momentum: ``(n_dim,)`` initial momentum.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.

        Returns:
            The state at the end of the trajectory and the final momentum ``(n_dim,)``.
        """
        start = IntegratorState(state.position, momentum, state.log_prob, state.grad)
        end = leapfrog(start, params.step_size, params.inverse_mass, self.n_leapfrog, log_prob_fn)
        return HMCState(end.position, end.log_prob, end.grad), end.momentum

    def log_acceptance_ratio(
        self,
        params: HMCParams,
        current: HMCState,
        current_momentum: Array,
        proposed: HMCState,
        proposed_momentum: Array,
    ) -> Array:
        """``H(x, p) - H(x', p')``, the log Metropolis-Hastings ratio in phase space.

        Args:
            params: params holding the inverse mass.
            current: state at ``x``.
            current_momentum: ``(n_dim,)`` momentum ``p`` drawn at ``x``.
            proposed: state at the end of the trajectory ``x'``.
            proposed_momentum: ``(n_dim,)`` momentum ``p'`` there.

        Returns:
            ``()`` log ratio (may be non-finite; `mh_accept` rejects then).
        """
        energy_current = self.hamiltonian(params, current, current_momentum)
        return energy_current - self.hamiltonian(params, proposed, proposed_momentum)

    def hamiltonian(self, params: HMCParams, state: HMCState, momentum: Array) -> Array:
        """``H(x, p) = -log p(x) + K(p)``; shape ``()``."""
        return -state.log_prob + self.kinetic_energy(params, momentum)

    def step(
        self, key: PRNGKey, state: HMCState, log_prob_fn: LogProbFn, params: HMCParams
    ) -> tuple[HMCState, StepInfo]:
        """One HMC transition of one chain.

        Args:
            key: PRNG key.
            state: current state.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
            params: current params.

        Returns:
            The next state and its `StepInfo`.
        """
        position = state.position
        draws = jax.random.uniform(key, (position.shape[0] + 2,), dtype=position.dtype)
        return self.step_with_noise(_noise_from_uniform(draws), state, log_prob_fn, params)

    def draw_noise(self, key: PRNGKey, positions: Array, n_steps: int = 1) -> HMCNoise:
        """The momentum draws and uniforms of ``n_steps`` steps of every chain, in one draw.

        Returns:
            `HMCNoise` with ``momentum (n_steps, n_chains, n_dim)`` standard normals (scaled
            by the mass in `step_with_noise`), ``jitter`` and ``accept`` ``(n_steps,
            n_chains)`` uniforms.
        """
        n_chains, n_dim = positions.shape
        return _noise_from_uniform(
            random.uniform(key, (n_steps, n_chains, n_dim + 2), positions.dtype)
        )

    def step_with_noise(
        self, noise: HMCNoise, state: HMCState, log_prob_fn: LogProbFn, params: HMCParams
    ) -> tuple[HMCState, StepInfo]:
        """One HMC transition of one chain with its randomness given (one step of `draw_noise`).

        Momentum ``noise.momentum / sqrt(inverse_mass)``, step size jittered by the factor
        ``1 + step_size_jitter * (2 jitter - 1)``, accepted iff ``accept < min(1, ratio)``.
        The `StepInfo` carries the Hamiltonian of the state kept (``energy``) and the
        proposal's ``energy_error``.
        """
        momentum = self.momentum_from_normal(params, noise.momentum.astype(state.position.dtype))
        trajectory_params = params
        if self.step_size_jitter > 0:
            u = 2.0 * noise.jitter.astype(params.step_size.dtype) - 1.0
            trajectory_params = params._replace(
                step_size=params.step_size * (1.0 + self.step_size_jitter * u)
            )
        proposed, proposed_momentum = self.integrate(
            trajectory_params, state, momentum, log_prob_fn
        )
        energy_current = self.hamiltonian(params, state, momentum)
        energy_proposed = self.hamiltonian(params, proposed, proposed_momentum)
        next_state, info = mh_accept(
            noise.accept, energy_current - energy_proposed, proposed, state
        )
        energy = jnp.where(info.is_accepted, energy_proposed, energy_current)
        return next_state, info._replace(
            energy=energy, energy_error=energy_proposed - energy_current
        )

    def adaptation(self) -> Adaptation:
        """Dual averaging of ``step_size`` toward 0.65 plus a windowed diagonal inverse mass.

        Each adapting local phase is one mass-matrix window; the first half of the training
        loops' windows set ``inverse_mass`` (see
        `flowmc_like.adaptation.step_size_and_mass_adaptation`).
        """
        return step_size_and_mass_adaptation(
            self.target_acceptance,
            get_step_size_and_mass=lambda params: (params.step_size, params.inverse_mass),
            make_params=HMCParams,
        )

    def step_size_of(self, params: HMCParams) -> Array:
        """The step size."""
        return jnp.mean(jnp.asarray(params.step_size))
