"""Exact moments through a row-to-row transfer matrix along the longer side of the torus."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from flowmc_like.exact.moments import (
    ExactMoments,
    _assemble_moments,
    _BondMoments,
    _count_codes,
    _model,
    decode_states,
    encode_states,
)

__all__: list[str] = []


class _RowTables(NamedTuple):
    """Per-row tables for the transfer matrix over rows of ``n_cols`` sites.

    Attributes:
        log_transfer: ``(R, R)`` ``coupling * (vertical(a, b) + horizontal(b) - 2 n_cols)``,
            the log weight (shifted to be <= 0) of entering row ``b`` from row ``a``.
        increment: ``(R, R)`` int, satisfied bonds gained on entering ``b`` from ``a``.
        count_offset: ``(R,)`` count code of each row's categories.
    """

    log_transfer: np.ndarray
    increment: np.ndarray
    count_offset: np.ndarray


def _row_tables(n_cols: int, n_categories: int, n_sites: int, coupling: float) -> _RowTables:
    """Build `_RowTables` for rows of ``n_cols`` sites, ``R = K^n_cols`` row states."""
    rows = decode_states(np.arange(n_categories**n_cols), n_cols, n_categories)
    horizontal = (rows == np.roll(rows, -1, axis=1)).sum(axis=1)
    vertical = (rows[:, None, :] == rows[None, :, :]).sum(axis=2)
    increment = vertical + horizontal[None, :]
    log_transfer = coupling * (increment - 2 * n_cols).astype(np.float64)
    count_offset = _count_codes(rows, n_sites, n_categories)
    return _RowTables(log_transfer, increment, count_offset)


def _polynomial_matmul(left: list[np.ndarray], right: list[np.ndarray]) -> list[np.ndarray]:
    """Product of matrix polynomials ``sum_k A_k t^k``, truncated at their common degree."""
    return [sum(left[j] @ right[k - j] for j in range(k + 1)) for k in range(len(left))]


def _normalised(polynomial: list[np.ndarray], log_scale: float) -> tuple[list[np.ndarray], float]:
    """Divide a matrix polynomial by ``max |A_0|``, adding the log divisor to ``log_scale``."""
    divisor = float(np.abs(polynomial[0]).max())
    return [coefficient / divisor for coefficient in polynomial], log_scale + math.log(divisor)


def _energy_moments_transfer(
    tables: _RowTables, n_rows: int, shift_per_row: float, degree: int
) -> tuple[np.ndarray, float]:
    """Raw moments of ``S = n_satisfied - n_rows * shift_per_row`` and ``ln sum of weights``.

    With ``T(t)[a, b] = T[a, b] exp(t (increment[a, b] - shift_per_row))``,
    ``Tr T(t)^n_rows = sum_s w(s) exp(t S(s))``, so ``E[S^k] = k! A_k / A_0`` with ``A_k`` the
    ``t^k`` coefficient of the trace. The power is taken by repeated squaring of matrix
    polynomials truncated at ``degree``; each product is rescaled (scale tracked in logs).

    Returns:
        ``((degree + 1,)`` moments ``E[S^k]``, the log of the total weight).
    """
    transfer = np.exp(tables.log_transfer)
    step = tables.increment.astype(np.float64) - shift_per_row
    base = [transfer * step**k / math.factorial(k) for k in range(degree + 1)]
    base_log = 0.0
    result: list[np.ndarray] | None = None
    result_log = 0.0
    exponent = n_rows
    while True:
        if exponent & 1:
            if result is None:
                result, result_log = base, base_log
            else:
                result, result_log = _normalised(_polynomial_matmul(result, base), result_log)
                result_log += base_log
        exponent >>= 1
        if not exponent:
            break
        base, base_log = _normalised(_polynomial_matmul(base, base), 2.0 * base_log)
    traces = np.array([np.trace(coefficient) for coefficient in result])
    factorials = np.array([math.factorial(k) for k in range(degree + 1)], dtype=np.float64)
    return factorials * traces / traces[0], result_log + math.log(traces[0])


def _rotation_classes(n_cols: int, n_categories: int) -> tuple[np.ndarray, np.ndarray]:
    """Row states up to a cyclic shift of the columns: representatives and class sizes."""
    rows = decode_states(np.arange(n_categories**n_cols), n_cols, n_categories)
    rotated = [encode_states(np.roll(rows, shift, axis=1), n_categories) for shift in range(n_cols)]
    representatives, sizes = np.unique(np.min(rotated, axis=0), return_counts=True)
    return representatives, sizes.astype(np.float64)


def _count_distribution_transfer(
    tables: _RowTables, n_rows: int, n_cols: int, n_categories: int, n_codes: int
) -> np.ndarray:
    """Distribution ``(n_codes,)`` of the count code under ``p``.

    Carries weights ``X[r0, a, code]``: first row ``r0``, current row ``a``, count code of the
    rows entered so far. Entering row ``b`` multiplies by the transfer weight and shifts the code
    by ``count_offset[b]`` (codes never overflow a digit, as counts are at most ``N``). Rotating
    every row by the same number of columns maps the configurations with first row ``r0`` onto
    those with a rotated first row without changing energies or counts, so only one first row
    per rotation class is carried, weighted by the class size.
    """
    transfer = np.exp(tables.log_transfer)
    n_row_states = transfer.shape[0]
    first_rows, class_sizes = _rotation_classes(n_cols, n_categories)
    n_first = len(first_rows)
    weights = np.zeros((n_first, n_row_states, n_codes))
    weights[np.arange(n_first), first_rows, 0] = 1.0
    offsets = np.unique(tables.count_offset)
    for _ in range(n_rows):
        # moved[r0, b, code] = sum_a weights[r0, a, code] * transfer[a, b]
        flat = weights.transpose(0, 2, 1).reshape(-1, n_row_states) @ transfer
        moved = flat.reshape(n_first, n_codes, n_row_states).transpose(0, 2, 1)
        weights = np.zeros_like(moved)
        for offset in offsets:
            rows = tables.count_offset == offset
            weights[:, rows, offset:] = moved[:, rows, : n_codes - offset]
        weights /= weights.max()
    closed = class_sizes @ weights[np.arange(n_first), first_rows]
    return closed / closed.sum()


def _transfer_matrix_entries(shape: tuple[int, int], n_categories: int) -> int:
    """Size of the largest array `_count_distribution_transfer` allocates (rows transposed)."""
    n_rows, n_cols = sorted(shape, reverse=True)
    n_codes = (n_rows * n_cols + 1) ** (n_categories - 1)
    n_row_states = n_categories**n_cols
    return -(-n_row_states // n_cols) * n_row_states * n_codes  # about one first row per class


def _enumerate_transfer_matrix(
    shape: tuple[int, int], n_categories: int, beta: float
) -> ExactMoments:
    """Exact moments through a transfer matrix along the longer side of the torus."""
    # Every observable is invariant under transposing the torus: rows run along the shorter side.
    n_rows, n_cols = sorted(shape, reverse=True)
    n_sites = n_rows * n_cols
    model = _model(n_sites, n_categories, beta)
    tables = _row_tables(n_cols, n_categories, n_sites, model.coupling)
    # Two passes: the mean first, then moments about it (no cancellation in the variance).
    raw, log_total = _energy_moments_transfer(tables, n_rows, shift_per_row=0.0, degree=1)
    mean = raw[1]
    central, _ = _energy_moments_transfer(tables, n_rows, mean / n_rows, degree=4)
    bond_moments = _BondMoments(
        mean=float(mean + central[1]),
        var=float(central[2] - central[1] ** 2),
        fourth=float(central[4]),
    )
    log_z = log_total + model.coupling * 2 * n_sites - beta * model.offset
    n_codes = (n_sites + 1) ** (n_categories - 1)
    counts = _count_distribution_transfer(tables, n_rows, n_cols, n_categories, n_codes)
    return _assemble_moments(
        shape, n_categories, beta, bond_moments, counts, log_z, None, "transfer_matrix"
    )
