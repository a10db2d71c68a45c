"""Ising and Potts models on a periodic square lattice, as JAX targets for `SiteFlip`.

Conventions (shared with the exact references in `flowmc_like.exact`):

- The lattice is an ``L x L`` torus with ``N = L * L`` sites, site ``i = row * L + col``.
- A state ``s`` is an integer vector ``(N,)`` with values in ``{0, ..., K-1}``
  (``K = n_categories``). For Ising (``K = 2``) the spin is ``sigma_i = 2 s_i - 1``.
- Each site bonds to its right and its down neighbour, so there are ``2N`` bonds (for a side of
  length 2 the two bonds between the same pair are both counted, as ``jnp.roll`` does).
- Ising: ``E(s) = -sum_bonds sigma_i sigma_j``. Potts: ``E(s) = -sum_bonds delta(s_i, s_j)``.
  In both, ``log p(s) = -beta E(s)`` (unnormalised) and ``Z = sum_s exp(-beta E(s))``.
- Ising magnetisation ``m = mean(sigma)``; Potts order parameter
  ``m = (K max_c n_c / N - 1) / (K - 1)`` with ``n_c`` the number of sites in state ``c``
  (0 when all states are equally frequent, 1 when ordered).

`make_ising` and `make_potts` return a `LatticeTarget` with an O(N) ``log_prob`` and an O(1)
``delta_log_prob`` for `flowmc_like.SiteFlip`.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import flowmc_like as fm
    >>> target = make_ising(L=4, beta=BETA_C)
    >>> kernel = fm.SiteFlip(n_categories=2, delta_log_prob=target.delta_log_prob)
    >>> s = jnp.zeros(target.n_dim, dtype=jnp.int32)
    >>> state = kernel.init(s, target.log_prob)
    >>> state, info = kernel.step(jax.random.key(0), state, target.log_prob, kernel.init_params(16))
    >>> state.position.shape
    (16,)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, ArrayLike

__all__ = [
    "BETA_C",
    "LatticeTarget",
    "ising_energy",
    "make_ising",
    "make_potts",
    "potts_energy",
]

BETA_C: float = math.log1p(math.sqrt(2.0)) / 2.0
"""Critical inverse temperature of the infinite square-lattice Ising model, ``ln(1+sqrt 2)/2``."""


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def _check_int(owner: str, name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int; TypeError if it is not an integer, ValueError if too small."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_float(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a float; TypeError unless a real number, ValueError unless finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a finite real number; got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite real number; got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# JAX targets
# ---------------------------------------------------------------------------------------------


def _float_dtype() -> np.dtype:
    """JAX's default float dtype at trace time: float32, or float64 under x64."""
    return jnp.result_type(float)


def _as_grid(s: ArrayLike, L: int) -> Array:
    """Reshape states ``(..., L*L)`` to ``(..., L, L)``, checking the last axis."""
    s = jnp.asarray(s)
    if s.ndim < 1 or s.shape[-1] != L * L:
        raise ValueError(f"s has shape {s.shape}; expected (..., L*L) = (..., {L * L})")
    return jnp.reshape(s, (*s.shape[:-1], L, L))


def ising_energy(s: ArrayLike, L: int) -> Array:
    """Ising energy ``E(s) = -sum_bonds sigma_i sigma_j`` with ``sigma = 2 s - 1``.

    Args:
        s: ``(..., L*L)`` integer states in ``{0, 1}``.
        L: side of the torus.

    Returns:
        ``(...)`` energies in the default float dtype.
    """
    sigma = 2.0 * _as_grid(s, L).astype(_float_dtype()) - 1.0
    right = sigma * jnp.roll(sigma, -1, axis=-1)
    down = sigma * jnp.roll(sigma, -1, axis=-2)
    return -jnp.sum(right + down, axis=(-2, -1))


def potts_energy(s: ArrayLike, L: int) -> Array:
    """Potts energy ``E(s) = -sum_bonds delta(s_i, s_j)``.

    Args:
        s: ``(..., L*L)`` integer states in ``{0, ..., K-1}``.
        L: side of the torus.

    Returns:
        ``(...)`` energies in the default float dtype.
    """
    grid = _as_grid(s, L)
    right = grid == jnp.roll(grid, -1, axis=-1)
    down = grid == jnp.roll(grid, -1, axis=-2)
    n_satisfied = jnp.sum(right, axis=(-2, -1)) + jnp.sum(down, axis=(-2, -1))
    return -n_satisfied.astype(_float_dtype())


def _ising_magnetization(s: ArrayLike) -> Array:
    """``mean(2 s - 1)`` over the last axis: ``(..., N)`` -> ``(...)``."""
    return jnp.mean(2.0 * jnp.asarray(s).astype(_float_dtype()) - 1.0, axis=-1)


def _potts_order_parameter(s: ArrayLike, n_categories: int) -> Array:
    """``(K max_c frac_c - 1) / (K - 1)`` over the last axis: ``(..., N)`` -> ``(...)``."""
    s = jnp.asarray(s)
    is_state = s[..., None] == jnp.arange(n_categories, dtype=s.dtype)
    fractions = jnp.mean(is_state.astype(_float_dtype()), axis=-2)
    return (n_categories * jnp.max(fractions, axis=-1) - 1.0) / (n_categories - 1)


def _neighbours(i: Array, L: int) -> Array:
    """Sites above, below, left and right of site ``i`` on the ``L x L`` torus -> ``(4,)``."""
    row, col = i // L, i % L
    return jnp.stack(
        [
            ((row - 1) % L) * L + col,
            ((row + 1) % L) * L + col,
            row * L + (col - 1) % L,
            row * L + (col + 1) % L,
        ]
    )


def _local_delta(coupling: float, L: int) -> Callable[[Array, Array, Array], Array]:
    """``delta_log_prob`` of ``log p = coupling * n_satisfied`` (up to a constant).

    Both models are of this form: Ising has ``coupling = 2 beta`` (as
    ``sigma_i sigma_j = 2 delta(s_i, s_j) - 1``) and Potts ``coupling = beta``.
    """

    def delta_log_prob(s: Array, i: Array, k: Array) -> Array:
        s = jnp.asarray(s)
        neighbour_values = s[_neighbours(jnp.asarray(i), L)]
        gained = jnp.sum(neighbour_values == k)
        lost = jnp.sum(neighbour_values == s[i])
        return coupling * (gained - lost).astype(_float_dtype())

    return delta_log_prob


@dataclasses.dataclass(frozen=True)
class LatticeTarget:
    """An Ising or Potts target on the ``L x L`` torus (see the module docstring).

    Attributes:
        log_prob: ``s (N,) int -> ()``, ``-beta E(s)`` (unnormalised), O(N).
        delta_log_prob: ``(s (N,), i (), k ()) -> ()``, ``log p(s with s_i = k) - log p(s)``
            from the four neighbours of ``i`` in O(1); traced ``i``, ``k`` are fine under
            ``jit``, ``vmap`` and ``lax.scan``.
        energy: ``s (..., N) -> (...)``, ``E(s)``.
        magnetization: ``s (..., N) -> (...)``; Ising ``mean(sigma)``, Potts the order
            parameter ``(K max_c frac_c - 1) / (K - 1)``.
        n_categories: ``K`` (2 for Ising).
        L: side of the torus.
        beta: inverse temperature.

    Example:
        >>> import jax.numpy as jnp
        >>> target = make_ising(L=4, beta=0.4)
        >>> s = jnp.ones(target.n_dim, dtype=jnp.int32)
        >>> float(target.energy(s)), float(target.log_prob(s)), float(target.magnetization(s))
        (-32.0, 12.800000190734863, 1.0)
    """

    log_prob: Callable[[Array], Array]
    delta_log_prob: Callable[[Array, Array, Array], Array]
    energy: Callable[[Array], Array]
    magnetization: Callable[[Array], Array]
    n_categories: int
    L: int
    beta: float

    @property
    def n_dim(self) -> int:
        """Number of sites ``N = L * L``."""
        return self.L * self.L


def make_ising(L: int, beta: float) -> LatticeTarget:
    """The Ising model ``log p(s) = beta sum_bonds sigma_i sigma_j`` on the ``L x L`` torus.

    Args:
        L: side of the torus, ``>= 2`` (the O(1) update needs four neighbour bonds).
        beta: inverse temperature (coupling ``J = 1``); `BETA_C` is the critical point.

    Returns:
        The `LatticeTarget` with ``n_categories = 2``.
    """
    L = _check_int("make_ising", "L", L, 2)
    beta = _check_float("make_ising", "beta", beta)

    def energy(s: Array) -> Array:
        return ising_energy(s, L)

    def log_prob(s: Array) -> Array:
        return -beta * ising_energy(s, L)

    return LatticeTarget(
        log_prob=log_prob,
        delta_log_prob=_local_delta(2.0 * beta, L),
        energy=energy,
        magnetization=_ising_magnetization,
        n_categories=2,
        L=L,
        beta=beta,
    )


def make_potts(L: int, beta: float, n_categories: int) -> LatticeTarget:
    """The ``K``-state Potts model ``log p(s) = beta sum_bonds delta(s_i, s_j)`` on the torus.

    Args:
        L: side of the torus, ``>= 2``.
        beta: inverse temperature (the square-lattice transition is at
            ``beta = ln(1 + sqrt K)``).
        n_categories: ``K >= 2``.

    Returns:
        The `LatticeTarget`.
    """
    L = _check_int("make_potts", "L", L, 2)
    beta = _check_float("make_potts", "beta", beta)
    n_categories = _check_int("make_potts", "n_categories", n_categories, 2)

    def energy(s: Array) -> Array:
        return potts_energy(s, L)

    def log_prob(s: Array) -> Array:
        return -beta * potts_energy(s, L)

    def magnetization(s: Array) -> Array:
        return _potts_order_parameter(s, n_categories)

    return LatticeTarget(
        log_prob=log_prob,
        delta_log_prob=_local_delta(beta, L),
        energy=energy,
        magnetization=magnetization,
        n_categories=n_categories,
        L=L,
        beta=beta,
    )
