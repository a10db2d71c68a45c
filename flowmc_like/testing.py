"""Test problems with known answers: spin-glass instances, their observables, exact values.

`sherrington_kirkpatrick` builds a reproducible SK spin glass (a `PairwiseTarget`) from a
seed; `overlap` is the spin-glass order parameter between two replicas; `exact_pairwise`
enumerates a small binary pairwise target (``N <= 20``) for its exact energy, correlations and
overlap moments, to judge a run against.

Example:
    >>> from flowmc_like.testing import exact_pairwise, sherrington_kirkpatrick
    >>> target = sherrington_kirkpatrick(10, beta=1.0, seed=3)
    >>> exact = exact_pairwise(target)
    >>> exact.correlations.shape, round(float(exact.correlations[0, 0]), 6)
    ((10, 10), 1.0)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from flowmc_like._types import ArrayLike
from flowmc_like.pairwise import PairwiseTarget, make_pairwise

__all__ = [
    "MAX_EXACT_SITES",
    "PairwiseExact",
    "exact_pairwise",
    "overlap",
    "sherrington_kirkpatrick",
]

MAX_EXACT_SITES = 20
"""`exact_pairwise` enumerates at most ``2^20`` states."""


def sherrington_kirkpatrick(
    n_spins: int, beta: float, seed: int = 0, *, fields: ArrayLike | None = None
) -> PairwiseTarget:
    """An SK spin glass: ``J_ij = J_ji ~ Normal(0, 1/N)`` for ``i < j``, no self-coupling.

    ``log p(s) = beta ((1/2) sigma^T J sigma + h . sigma)`` with ``sigma = 2 s - 1``; the
    spin-glass transition of the infinite system is at ``beta = 1``. The couplings come from
    ``numpy.random.default_rng(seed)``, so an instance is fixed by its seed on every machine.

    Args:
        n_spins: ``N >= 2``.
        beta: inverse temperature.
        seed: the instance.
        fields: optional ``(N,)`` fields ``h`` (none by default: the target is then invariant
            under the global spin flip).
    """
    if isinstance(n_spins, bool) or not isinstance(n_spins, (int, np.integer)) or n_spins < 2:
        raise ValueError(
            f"sherrington_kirkpatrick: n_spins must be an integer >= 2; got {n_spins!r}"
        )
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.normal(0.0, 1.0 / np.sqrt(n_spins), (n_spins, n_spins)), 1)
    return make_pairwise(upper + upper.T, fields, beta=beta)


def overlap(states_a: ArrayLike, states_b: ArrayLike) -> np.ndarray:
    """The overlap ``q = mean_i sigma^a_i sigma^b_i`` of two replicas' states ``(..., N)``.

    Returns:
        ``(...)`` float64, in ``[-1, 1]``.
    """
    sigma_a = 2.0 * np.asarray(states_a, dtype=np.float64) - 1.0
    sigma_b = 2.0 * np.asarray(states_b, dtype=np.float64) - 1.0
    if sigma_a.shape != sigma_b.shape:
        raise ValueError(f"overlap: the states differ in shape: {sigma_a.shape} vs {sigma_b.shape}")
    return np.mean(sigma_a * sigma_b, axis=-1)


@dataclasses.dataclass(frozen=True)
class PairwiseExact:
    """Exact values of a binary pairwise target by enumeration (`exact_pairwise`).

    Attributes:
        log_z: ``log sum_s exp(log_prob(s))``.
        mean_energy: ``<E>``.
        energy_sd: the standard deviation of ``E``.
        magnetization: ``(N,)`` ``<sigma_i>``.
        correlations: ``(N, N)`` ``<sigma_i sigma_j>``.
        q2: ``<q^2>`` of two independent replicas, ``sum_ij <sigma_i sigma_j>^2 / N^2``.
        q2_sd: the standard deviation of ``q^2`` between two independent replicas.
        abs_q: ``<|q|>`` of two independent replicas.
    """

    log_z: float
    mean_energy: float
    energy_sd: float
    magnetization: np.ndarray
    correlations: np.ndarray
    q2: float
    q2_sd: float
    abs_q: float


def exact_pairwise(target: PairwiseTarget, chunk: int = 1 << 16) -> PairwiseExact:
    """Enumerate every state of a binary pairwise target with ``N <= 20`` (float64 numpy).

    The overlap's distribution is exact too: the overlap of two replicas depends only on
    the states' product ``sigma^a sigma^b``, so ``P(q)`` is a convolution of the state
    probabilities over the ``2^N`` group elements, done by a Walsh-Hadamard transform.
    """
    n = target.n_dim
    if target.n_categories != 2:
        raise ValueError("exact_pairwise: only binary targets (n_categories=2) are enumerated")
    if n > MAX_EXACT_SITES:
        raise ValueError(
            f"exact_pairwise: {n} sites is too many to enumerate (at most {MAX_EXACT_SITES})"
        )
    couplings, fields = target.couplings, target.fields
    n_states = 1 << n
    log_p = np.empty(n_states)
    energies = np.empty(n_states)
    bits = np.arange(n)[::-1]
    for start in range(0, n_states, chunk):
        index = np.arange(start, min(start + chunk, n_states))
        s = (index[:, None] >> bits) & 1
        one_hot = np.stack([1 - s, s], axis=-1).astype(np.float64)
        pair = np.einsum("sia,ijab,sjb->s", one_hot, couplings, one_hot, optimize=True)
        site = np.einsum("sia,ia->s", one_hot, fields)
        energies[index] = -0.5 * pair - site
        log_p[index] = -target.beta * energies[index]
    top = log_p.max()
    weights = np.exp(log_p - top)
    log_z = float(top + np.log(weights.sum()))
    p = weights / weights.sum()
    mean_energy = float(p @ energies)
    energy_sd = float(np.sqrt(max(p @ energies**2 - mean_energy**2, 0.0)))
    magnetization = np.zeros(n)
    correlations = np.zeros((n, n))
    for start in range(0, n_states, chunk):
        index = np.arange(start, min(start + chunk, n_states))
        sigma = 2.0 * ((index[:, None] >> bits) & 1) - 1.0
        magnetization += p[index] @ sigma
        correlations += (sigma * p[index, None]).T @ sigma
    # P(product state) by the XOR convolution of p with itself (Walsh-Hadamard transform).
    spectrum = _walsh_hadamard(p.copy())
    product = _walsh_hadamard(spectrum * spectrum) / n_states
    q = (n - 2.0 * _popcount(n)) / n  # a set bit of the product: the replicas differ there
    q2 = float(product @ q**2)
    q4 = float(product @ q**4)
    return PairwiseExact(
        log_z=log_z,
        mean_energy=mean_energy,
        energy_sd=energy_sd,
        magnetization=magnetization,
        correlations=correlations,
        q2=q2,
        q2_sd=float(np.sqrt(max(q4 - q2 * q2, 0.0))),
        abs_q=float(product @ np.abs(q)),
    )


def _walsh_hadamard(values: np.ndarray) -> np.ndarray:
    """The unnormalised Walsh-Hadamard transform of a vector of length ``2^n``, in place."""
    h = 1
    size = values.size
    while h < size:
        view = values.reshape(-1, 2, h)
        first, second = view[:, 0, :].copy(), view[:, 1, :].copy()
        view[:, 0, :] = first + second
        view[:, 1, :] = first - second
        h *= 2
    return values


def _popcount(n_bits: int) -> np.ndarray:
    """Number of set bits of every integer below ``2^n_bits``."""
    counts = np.zeros(1, dtype=np.int64)
    for _ in range(n_bits):
        counts = np.concatenate([counts, counts + 1])
    return counts
