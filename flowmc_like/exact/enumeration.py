"""Exact moments of Ising and Potts observables: brute-force enumeration or transfer matrix."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from flowmc_like.exact.moments import (
    ExactMoments,
    _assemble_moments,
    _BondMoments,
    _count_codes,
    _model,
    _n_satisfied_np,
    decode_states,
    lattice_shape,
)
from flowmc_like.exact.transfer_matrix import _enumerate_transfer_matrix, _transfer_matrix_entries
from flowmc_like.lattice import _check_float, _check_int

__all__ = ["enumerate_lattice"]

_MAX_BRUTE_FORCE_STATES = 2**22
_MAX_PROBABILITY_STATES = 2**16
_MAX_TRANSFER_ENTRIES = 2**22
_CHUNK_SIZE = 2**15


def _enumerate_brute_force(
    shape: tuple[int, int], n_categories: int, beta: float, with_probabilities: bool
) -> ExactMoments:
    """Enumerate all ``K^N`` states in chunks into a joint (n_satisfied, count code) histogram."""
    n_rows, n_cols = shape
    n_sites = n_rows * n_cols
    n_states = n_categories**n_sites
    n_levels = 2 * n_sites + 1
    n_codes = (n_sites + 1) ** (n_categories - 1)
    histogram = np.zeros(n_levels * n_codes, dtype=np.int64)
    n_satisfied_all = np.empty(n_states, dtype=np.int16) if with_probabilities else None
    for start in range(0, n_states, _CHUNK_SIZE):
        codes = np.arange(start, min(start + _CHUNK_SIZE, n_states), dtype=np.int64)
        states = decode_states(codes, n_sites, n_categories)
        n_satisfied = _n_satisfied_np(states, n_rows, n_cols)
        joint = n_satisfied * n_codes + _count_codes(states, n_sites, n_categories)
        histogram += np.bincount(joint, minlength=n_levels * n_codes)
        if n_satisfied_all is not None:
            n_satisfied_all[start : start + len(codes)] = n_satisfied
    histogram = histogram.reshape(n_levels, n_codes).astype(np.float64)

    model = _model(n_sites, n_categories, beta)
    levels = np.arange(n_levels, dtype=np.float64)
    log_weight = model.coupling * levels
    top = float(log_weight.max())  # weights relative to the heaviest level never overflow
    joint_weights = histogram * np.exp(log_weight - top)[:, None]
    total = joint_weights.sum()
    joint_probabilities = joint_weights / total
    log_z = math.log(total) + top - beta * model.offset

    level_probabilities = joint_probabilities.sum(axis=1)
    mean = float(level_probabilities @ levels)
    centred = levels - mean
    var = float(level_probabilities @ centred**2)
    bond_moments = _BondMoments(mean=mean, var=var, fourth=float(level_probabilities @ centred**4))

    probabilities = None
    if n_satisfied_all is not None:
        log_p = model.coupling * n_satisfied_all.astype(np.float64) - beta * model.offset - log_z
        probabilities = np.exp(log_p)
    return _assemble_moments(
        shape,
        n_categories,
        beta,
        bond_moments,
        joint_probabilities.sum(axis=0),
        log_z,
        probabilities,
        "brute_force",
    )


def enumerate_lattice(
    L: int,
    n_categories: int,
    beta: float,
    *,
    n_cols: int | None = None,
    method: Literal["auto", "brute_force", "transfer_matrix"] = "auto",
) -> ExactMoments:
    """Exact moments of `OBSERVABLES` for Ising (``K = 2``) or Potts (``K > 2``) in float64.

    Two exact methods:

    - ``"brute_force"``: every one of the ``K^N`` states, vectorised in chunks of ``2^15``,
      accumulated into an integer histogram over (satisfied bonds, category counts). Up to
      ``2^22`` states (seconds at ``2^20`` on a CPU). Also returns the probability vector
      over states when there are at most ``2^16`` of them.
    - ``"transfer_matrix"``: a row-to-row transfer matrix over the ``R = K^n`` configurations
      of a row along the shorter side ``n``. Energy moments up to order 4 come from the trace
      of a matrix-polynomial power; the distribution of category counts from carrying the first
      row (one per rotation class, to close the torus) and the counts so far. Costs about
      ``n_long (R/n) R^2 (N+1)^(K-1)`` flops: Potts ``K = 3`` on ``4 x 4`` (``3^16`` states)
      in a fraction of a second, Ising ``8 x 8`` or ``9 x 9`` in about a second. No
      probability vector.

    ``"auto"`` uses brute force up to ``2^16`` states (so the probabilities are included),
    otherwise the transfer matrix if its largest array holds at most ``2^22`` entries (Ising up
    to ``9 x 9``, Potts ``K = 3`` with a side of at most 4), otherwise brute force.

    Args:
        L: number of rows (and of columns, unless ``n_cols`` is given).
        n_categories: ``K >= 2``; 2 means Ising.
        beta: inverse temperature.
        n_cols: number of columns for an ``L x n_cols`` torus (default ``L``). States of a
            rectangle are indexed ``i = row * n_cols + col``.
        method: ``"auto"``, ``"brute_force"`` or ``"transfer_matrix"``.

    Returns:
        The `ExactMoments`.

    Raises:
        ValueError: if the lattice is too large for the chosen method.
    """
    shape = lattice_shape("enumerate_lattice", L, n_cols)
    n_categories = _check_int("enumerate_lattice", "n_categories", n_categories, 2)
    beta = _check_float("enumerate_lattice", "beta", beta)
    n_states = n_categories ** (shape[0] * shape[1])
    entries = _transfer_matrix_entries(shape, n_categories)
    if method == "auto":
        if n_states <= _MAX_PROBABILITY_STATES or entries > _MAX_TRANSFER_ENTRIES:
            method = "brute_force"
        else:
            method = "transfer_matrix"
    if method == "brute_force":
        if n_states > _MAX_BRUTE_FORCE_STATES:
            raise ValueError(
                f"brute-force enumeration of {shape[0]}x{shape[1]} with K={n_categories} has "
                f"{n_states} states; at most {_MAX_BRUTE_FORCE_STATES} are supported"
            )
        return _enumerate_brute_force(
            shape, n_categories, beta, n_states <= _MAX_PROBABILITY_STATES
        )
    if method == "transfer_matrix":
        if entries > _MAX_TRANSFER_ENTRIES:
            raise ValueError(
                f"the transfer matrix for {shape[0]}x{shape[1]} with K={n_categories} needs "
                f"{entries} entries; at most {_MAX_TRANSFER_ENTRIES} are supported"
            )
        return _enumerate_transfer_matrix(shape, n_categories, beta)
    raise ValueError(f"method must be 'auto', 'brute_force' or 'transfer_matrix'; got {method!r}")
