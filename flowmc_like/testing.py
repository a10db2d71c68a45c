"""Test problems with known answers: spin-glass instances, their overlap, exact values.

`sherrington_kirkpatrick` builds a reproducible SK spin glass (a `PairwiseTarget`) from a
seed; `overlap` is the spin-glass order parameter of two replicas; `exact_pairwise`
enumerates a small pairwise target (at most ``2^20`` states) for its exact log partition
function, energy, correlations and overlap moments, to judge a run against in Monte Carlo
standard errors.

This module is not imported by ``import flowmc_like``; import it as ``flowmc_like.testing``.

Example:
    >>> from flowmc_like.testing import exact_pairwise, overlap, sherrington_kirkpatrick
    >>> target = sherrington_kirkpatrick(10, beta=1.0, seed=3)
    >>> exact = exact_pairwise(target)
    >>> exact.correlations.shape, round(float(exact.correlations[0, 0]), 6)
    ((10, 10), 1.0)
    >>> float(overlap([1, 0, 1, 1], [1, 1, 1, 0]))  # the replicas agree on 2 of 4 sites
    0.0
"""

from __future__ import annotations

import dataclasses

import numpy as np

from flowmc_like._types import ArrayLike
from flowmc_like.exact.moments import decode_states
from flowmc_like.lattice import _check_float, _check_int
from flowmc_like.pairwise import PairwiseTarget, make_pairwise

__all__ = [
    "MAX_EXACT_STATES",
    "PairwiseExact",
    "exact_pairwise",
    "overlap",
    "sherrington_kirkpatrick",
]

MAX_EXACT_STATES = 2**20
"""`exact_pairwise` enumerates at most ``K^N = 2^20`` states (``N <= 20`` binary sites)."""


def sherrington_kirkpatrick(
    n_spins: int, beta: float, seed: int = 0, *, fields: ArrayLike | None = None
) -> PairwiseTarget:
    """An SK spin glass: ``J_ij = J_ji ~ Normal(0, 1/N)`` for ``i < j``, no self-coupling.

    ``log p(s) = beta ((1/2) sigma^T J sigma + h . sigma)`` with ``sigma = 2 s - 1``; the
    spin-glass transition of the infinite system is at ``beta = 1``. The couplings are drawn
    with ``numpy.random.default_rng(seed)``, so an instance is fixed by its seed (on every
    machine, with or without JAX's x64).

    Args:
        n_spins: ``N >= 2``.
        beta: inverse temperature.
        seed: the instance.
        fields: optional ``(N,)`` fields ``h`` (none by default: the target is then invariant
            under the global flip ``s -> 1 - s``).

    Returns:
        The dense binary `PairwiseTarget` (``J = target.couplings[:, :, 1, 1]``).
    """
    n_spins = _check_int("sherrington_kirkpatrick", "n_spins", n_spins, 2)
    beta = _check_float("sherrington_kirkpatrick", "beta", beta)
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.normal(0.0, 1.0 / np.sqrt(n_spins), (n_spins, n_spins)), 1)
    return make_pairwise(upper + upper.T, fields, beta=beta)


def overlap(states_a: ArrayLike, states_b: ArrayLike) -> np.ndarray:
    """The overlap ``q = mean_i sigma^a_i sigma^b_i`` of two replicas' binary states.

    Args:
        states_a: ``(..., N)`` states in ``{0, 1}`` (numpy or JAX).
        states_b: ``(..., N)`` states of the other replica, the same shape.

    Returns:
        ``(...)`` float64 numpy, in ``[-1, 1]``.
    """
    sigma_a = 2.0 * np.asarray(states_a, dtype=np.float64) - 1.0
    sigma_b = 2.0 * np.asarray(states_b, dtype=np.float64) - 1.0
    if sigma_a.shape != sigma_b.shape or sigma_a.ndim < 1:
        raise ValueError(
            f"overlap: states_a and states_b must have one shape (..., N); got {sigma_a.shape} "
            f"and {sigma_b.shape}"
        )
    return np.mean(sigma_a * sigma_b, axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class PairwiseExact:
    """Exact values of a pairwise target by enumeration (`exact_pairwise`), float64.

    The spin observables (``sigma = 2 s - 1``) are for binary targets (``K = 2``) and None
    for ``K > 2``. The overlap is that of two independent replicas ``a``, ``b`` (as two
    chains of one run), ``q = mean_i sigma^a_i sigma^b_i``.

    Attributes:
        log_z: ``log sum_s exp(log_prob(s))``.
        mean_energy: ``<E>``.
        energy_sd: the standard deviation of ``E``.
        magnetization_mean: ``(N,)`` ``<sigma_i>``.
        correlations: ``(N, N)`` ``<sigma_i sigma_j>`` (ones on the diagonal).
        q2: ``<q^2> = sum_ij <sigma_i sigma_j>^2 / N^2``.
        q2_sd: the standard deviation of ``q^2``.
        abs_q: ``<|q|>``.
    """

    log_z: float
    mean_energy: float
    energy_sd: float
    magnetization_mean: np.ndarray | None
    correlations: np.ndarray | None
    q2: float | None
    q2_sd: float | None
    abs_q: float | None


def exact_pairwise(target: PairwiseTarget, chunk: int = 1 << 15) -> PairwiseExact:
    """Enumerate every state of a small pairwise target (``K^N <= 2^20``) in numpy float64.

    The states are visited in chunks of ``chunk``; memory is a few float64 vectors of length
    ``K^N`` (under 100 MB for ``N = 20`` binary sites, which take a few seconds). The overlap
    of two independent replicas depends only on which sites they disagree on, whose
    distribution is the XOR convolution of the state probabilities with themselves; a
    Walsh-Hadamard transform gives it exactly, hence ``q2_sd`` and ``abs_q``.

    Args:
        target: a `PairwiseTarget`, dense or sparse.
        chunk: states per chunk.

    Returns:
        The `PairwiseExact` values.

    Raises:
        ValueError: if ``K^N`` exceeds `MAX_EXACT_STATES` (``N > 20`` for binary sites).
    """
    n, k = target.n_dim, target.n_categories
    if k**n > MAX_EXACT_STATES:
        raise ValueError(
            f"exact_pairwise: target has K^N = {k}^{n} states, too many to enumerate (at most "
            f"{MAX_EXACT_STATES}, i.e. N <= 20 binary sites)"
        )
    chunk = _check_int("exact_pairwise", "chunk", chunk, 1)
    n_states = k**n
    energies = _energies(target, chunk)
    log_p = -target.beta * energies
    top = float(log_p.max())
    weights = np.exp(log_p - top)
    log_z = top + float(np.log(weights.sum()))
    p = weights / weights.sum()
    mean_energy = float(p @ energies)
    energy_sd = float(np.sqrt(max(float(p @ (energies - mean_energy) ** 2), 0.0)))
    if k != 2:
        return PairwiseExact(log_z, mean_energy, energy_sd, None, None, None, None, None)
    magnetization = np.zeros(n)
    correlations = np.zeros((n, n))
    for start in range(0, n_states, chunk):
        index = np.arange(start, min(start + chunk, n_states))
        sigma = _spins(index, n)
        magnetization += p[index] @ sigma
        correlations += (sigma * p[index, None]).T @ sigma
    # P(the replicas disagree on the set d) = sum_s p(s) p(s xor d): the XOR convolution.
    spectrum = _walsh_hadamard(p.copy())
    disagree = _walsh_hadamard(spectrum * spectrum) / n_states
    q = 1.0 - 2.0 * _popcount(n) / n
    q2 = float(disagree @ q**2)
    return PairwiseExact(
        log_z=log_z,
        mean_energy=mean_energy,
        energy_sd=energy_sd,
        magnetization_mean=magnetization,
        correlations=correlations,
        q2=q2,
        q2_sd=float(np.sqrt(max(float(disagree @ q**4) - q2 * q2, 0.0))),
        abs_q=float(disagree @ np.abs(q)),
    )


def _spins(codes: np.ndarray, n: int) -> np.ndarray:
    """``(len(codes), N)`` float64 ``sigma = 2 s - 1`` of binary codes (bit ``i`` is ``s_i``)."""
    return 2.0 * ((codes[:, None] >> np.arange(n)) & 1) - 1.0


def _energies(target: PairwiseTarget, chunk: int) -> np.ndarray:
    """``E(s)`` of all ``K^N`` states in code order (`flowmc_like.exact.decode_states`)."""
    n, k = target.n_dim, target.n_categories
    w, h = target.dense_couplings(), target.fields
    energies = np.empty(k**n)
    if k == 2:
        # With x_ia = (1 + v_a sigma_i) / 2, v = (-1, 1), any binary target is
        # E = offset - b . sigma - (1/2) sigma^T Q sigma (W[i, j, a, b] = W[j, i, b, a]).
        v = np.array([-1.0, 1.0])
        offset = -np.sum(w) / 8.0 - np.sum(h) / 2.0
        b = np.einsum("ijab,a->i", w, v) / 4.0 + h @ v / 2.0
        q = np.einsum("ijab,a,b->ij", w, v, v) / 4.0
        for start in range(0, k**n, chunk):
            sigma = _spins(np.arange(start, min(start + chunk, k**n)), n)
            pair = np.sum((sigma @ q) * sigma, axis=1)
            energies[start : start + len(sigma)] = offset - sigma @ b - 0.5 * pair
        return energies
    matrix = w.transpose(0, 2, 1, 3).reshape(n * k, n * k)  # [(i, a), (j, b)]
    for start in range(0, k**n, chunk):
        states = decode_states(np.arange(start, min(start + chunk, k**n)), n, k)
        one_hot = (states[..., None] == np.arange(k)).reshape(len(states), n * k).astype(float)
        pair = np.sum((one_hot @ matrix) * one_hot, axis=1)
        energies[start : start + len(states)] = -0.5 * pair - one_hot @ h.reshape(n * k)
    return energies


def _walsh_hadamard(values: np.ndarray) -> np.ndarray:
    """The unnormalised Walsh-Hadamard transform of a vector of length ``2^n``, in place."""
    h = 1
    while h < values.size:
        view = values.reshape(-1, 2, h)
        first, second = view[:, 0, :].copy(), view[:, 1, :]
        view[:, 0, :] += second
        view[:, 1, :] = first - second
        h *= 2
    return values


def _popcount(n_bits: int) -> np.ndarray:
    """Number of set bits of every integer below ``2^n_bits``, float64."""
    counts = np.zeros(1)
    for _ in range(n_bits):
        counts = np.concatenate([counts, counts + 1])
    return counts
