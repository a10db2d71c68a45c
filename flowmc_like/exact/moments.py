"""Exact moments of lattice observables: their container and the pieces every method shares.

Writing ``n_sat`` for the number of satisfied bonds (``s_i == s_j``), Ising has
``E = 2N - 2 n_sat`` and Potts ``E = -n_sat`` (conventions of `flowmc_like.lattice`); the exact
routines work with ``n_sat`` and with the counts of sites per category.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from flowmc_like._types import ArrayLike
from flowmc_like.lattice import _check_int

__all__ = [
    "OBSERVABLES",
    "ExactMoments",
    "compute_observables",
    "decode_states",
    "encode_states",
]

OBSERVABLES: tuple[str, ...] = (
    "energy_per_site",
    "energy_sq_dev",
    "abs_magnetization",
    "magnetization",
)
"""Per-draw observables, in the order used by `ExactMoments` and `compute_observables`:
``E/N``, ``(E - <E>)^2`` (total energy, exact mean), ``|m|`` and ``m``."""


def lattice_shape(owner: str, L: int, n_cols: int | None) -> tuple[int, int]:
    """``(n_rows, n_cols)`` of an ``L x L`` or ``L x n_cols`` torus, validated for ``owner``."""
    n_rows = _check_int(owner, "L", L, 1)
    n_cols = n_rows if n_cols is None else _check_int(owner, "n_cols", n_cols, 1)
    return n_rows, n_cols


class _Model(NamedTuple):
    """``E = offset + slope * n_satisfied`` and ``log p = coupling * n_satisfied + const``."""

    offset: float
    slope: float
    coupling: float


def _model(n_sites: int, n_categories: int, beta: float) -> _Model:
    """Energy as an affine function of the satisfied-bond count (Ising if K = 2)."""
    if n_categories == 2:
        return _Model(offset=2.0 * n_sites, slope=-2.0, coupling=2.0 * beta)
    return _Model(offset=0.0, slope=-1.0, coupling=beta)


def encode_states(s: ArrayLike, n_categories: int) -> np.ndarray:
    """Integer code ``sum_i s_i K^i`` of each state (site 0 is the least significant digit).

    Args:
        s: ``(..., N)`` integer states in ``{0, ..., K-1}``.
        n_categories: ``K``.

    Returns:
        ``(...)`` int64 codes in ``[0, K^N)``; the index into `ExactMoments.probabilities`.
    """
    s = np.asarray(s, dtype=np.int64)
    powers = n_categories ** np.arange(s.shape[-1], dtype=np.int64)
    return s @ powers


def decode_states(codes: ArrayLike, n_sites: int, n_categories: int) -> np.ndarray:
    """Inverse of `encode_states`.

    Args:
        codes: ``(...)`` integer codes in ``[0, K^N)``.
        n_sites: ``N``.
        n_categories: ``K``.

    Returns:
        ``(..., N)`` int32 states.
    """
    codes = np.asarray(codes, dtype=np.int64)
    powers = n_categories ** np.arange(n_sites, dtype=np.int64)
    return ((codes[..., None] // powers) % n_categories).astype(np.int32)


def _n_satisfied_np(states: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """Satisfied bonds of states ``(n, n_rows*n_cols)`` on the torus -> ``(n,)`` int64."""
    grid = states.reshape(-1, n_rows, n_cols)
    right = grid == np.roll(grid, -1, axis=2)
    down = grid == np.roll(grid, -1, axis=1)
    return right.sum(axis=(1, 2), dtype=np.int64) + down.sum(axis=(1, 2), dtype=np.int64)


def _count_code_radix(n_sites: int, n_categories: int) -> np.ndarray:
    """Place values ``(K-1,)`` of the count code ``sum_{c < K-1} n_c (N+1)^c``."""
    return (n_sites + 1) ** np.arange(n_categories - 1, dtype=np.int64)


def _count_codes(states: np.ndarray, n_sites: int, n_categories: int) -> np.ndarray:
    """Count code of each state ``(n, N)`` -> ``(n,)``; the last category is implied."""
    categories = np.arange(n_categories - 1)
    counts = (states[..., None] == categories).sum(axis=-2, dtype=np.int64)
    return counts @ _count_code_radix(n_sites, n_categories)


def _magnetization_of_codes(n_sites: int, n_categories: int) -> np.ndarray:
    """Magnetisation ``m`` for every count code -> ``((N+1)^(K-1),)`` float64.

    Codes whose counts exceed ``N`` are unreachable; their value is finite but irrelevant.
    """
    n_codes = (n_sites + 1) ** (n_categories - 1)
    codes = np.arange(n_codes, dtype=np.int64)
    counts = (codes[:, None] // _count_code_radix(n_sites, n_categories)) % (n_sites + 1)
    last = n_sites - counts.sum(axis=1)
    counts = np.concatenate([counts, last[:, None]], axis=1).astype(np.float64)
    if n_categories == 2:
        return (2.0 * counts[:, 1] - n_sites) / n_sites
    largest = counts.max(axis=1) / n_sites
    return (n_categories * largest - 1.0) / (n_categories - 1)


class _BondMoments(NamedTuple):
    """Mean, variance and fourth central moment of ``n_satisfied`` under ``p``."""

    mean: float
    var: float
    fourth: float


@dataclasses.dataclass(frozen=True)
class ExactMoments:
    """Exact means and standard deviations of `OBSERVABLES` for one lattice and ``beta``.

    Observables per draw ``s``: ``E/N``; ``(E - <E>)^2`` with the *total* energy ``E`` and its
    exact mean, so its mean is ``Var(E)``; ``|m|``; ``m`` (module docstring; for Potts ``m`` is
    the non-negative order parameter, so ``m`` and ``|m|`` coincide). Use `compute_observables`
    for the same quantities on draws, and compare their means with ``mean`` in units of the
    Monte Carlo standard error ``sd / sqrt(ESS)``.

    Attributes:
        n_rows: rows of the torus.
        n_cols: columns of the torus.
        n_categories: ``K`` (2 is Ising).
        beta: inverse temperature.
        mean: ``(4,)`` exact means in `OBSERVABLES` order.
        sd: ``(4,)`` exact standard deviations under ``p``.
        log_z: ``ln Z`` with ``Z = sum_s exp(-beta E(s))``.
        probabilities: ``(K^N,)`` ``p(s)`` indexed by `encode_states`, or ``None`` if not
            computed (more than ``2^16`` states, or the transfer-matrix method).
        method: ``"brute_force"`` or ``"transfer_matrix"``.

    Example:
        >>> from flowmc_like.exact import enumerate_lattice
        >>> exact = enumerate_lattice(L=2, n_categories=2, beta=0.3)
        >>> exact.probabilities.shape, round(float(exact.probabilities.sum()), 12)
        ((16,), 1.0)
    """

    n_rows: int
    n_cols: int
    n_categories: int
    beta: float
    mean: np.ndarray
    sd: np.ndarray
    log_z: float
    probabilities: np.ndarray | None
    method: str

    @property
    def n_sites(self) -> int:
        """``N = n_rows * n_cols``."""
        return self.n_rows * self.n_cols

    @property
    def e(self) -> float:
        """Energy per site ``<E>/N``."""
        return float(self.mean[0])

    @property
    def c_v(self) -> float:
        """Specific heat per site ``beta^2 Var(E) / N``."""
        return float(self.beta**2 * self.mean[1] / self.n_sites)

    @property
    def mean_abs_magnetization(self) -> float:
        """``<|m|>``."""
        return float(self.mean[2])

    def moment(self, name: str) -> tuple[float, float]:
        """``(mean, sd)`` of the observable called ``name`` (one of `OBSERVABLES`)."""
        if name not in OBSERVABLES:
            raise ValueError(f"unknown observable {name!r}; expected one of {OBSERVABLES}")
        index = OBSERVABLES.index(name)
        return float(self.mean[index]), float(self.sd[index])


def _assemble_moments(
    shape: tuple[int, int],
    n_categories: int,
    beta: float,
    bond_moments: _BondMoments,
    count_probabilities: np.ndarray,
    log_z: float,
    probabilities: np.ndarray | None,
    method: str,
) -> ExactMoments:
    """Build `ExactMoments` from the ``n_satisfied`` moments and the count-code distribution."""
    n_sites = shape[0] * shape[1]
    model = _model(n_sites, n_categories, beta)
    energy_mean = (model.offset + model.slope * bond_moments.mean) / n_sites
    energy_sd = abs(model.slope) * math.sqrt(bond_moments.var) / n_sites
    sq_dev_mean = model.slope**2 * bond_moments.var
    sq_dev_sd = model.slope**2 * math.sqrt(max(bond_moments.fourth - bond_moments.var**2, 0.0))
    m = _magnetization_of_codes(n_sites, n_categories)
    m_mean = float(count_probabilities @ m)
    m_sd = math.sqrt(max(float(count_probabilities @ m**2) - m_mean**2, 0.0))
    abs_mean = float(count_probabilities @ np.abs(m))
    abs_sd = math.sqrt(max(float(count_probabilities @ m**2) - abs_mean**2, 0.0))
    return ExactMoments(
        n_rows=shape[0],
        n_cols=shape[1],
        n_categories=n_categories,
        beta=beta,
        mean=np.array([energy_mean, sq_dev_mean, abs_mean, m_mean]),
        sd=np.array([energy_sd, sq_dev_sd, abs_sd, m_sd]),
        log_z=log_z,
        probabilities=probabilities,
        method=method,
    )


def compute_observables(draws: ArrayLike, exact: ExactMoments) -> np.ndarray:
    """`OBSERVABLES` of each draw, matching ``exact.mean`` and ``exact.sd``.

    Args:
        draws: ``(..., N)`` integer states, e.g. ``(n_chains, n_draws, n_dim)``.
        exact: the `ExactMoments` of the same lattice (its ``<E>`` centres ``(E - <E>)^2``).

    Returns:
        ``(..., 4)`` float64 observables in `OBSERVABLES` order.
    """
    draws = np.asarray(draws)
    n_sites = exact.n_sites
    if draws.ndim < 1 or draws.shape[-1] != n_sites:
        raise ValueError(f"draws have shape {draws.shape}; expected (..., N) = (..., {n_sites})")
    flat = draws.reshape(-1, n_sites)
    model = _model(n_sites, exact.n_categories, exact.beta)
    energy = model.offset + model.slope * _n_satisfied_np(flat, exact.n_rows, exact.n_cols)
    codes = _count_codes(flat, n_sites, exact.n_categories)
    m = _magnetization_of_codes(n_sites, exact.n_categories)[codes]
    mean_energy = exact.mean[0] * n_sites
    values = np.stack([energy / n_sites, (energy - mean_energy) ** 2, np.abs(m), m], axis=-1)
    return values.reshape(*draws.shape[:-1], len(OBSERVABLES))
