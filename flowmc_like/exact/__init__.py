"""Exact reference values for Ising and Potts models on a small periodic lattice.

A discrete sampler can look right and still be biased: a wrong acceptance rule or a proposal
that is not exactly normalised shifts the energy or the magnetisation by a few percent, which
a plot or a comparison between two samplers does not reveal. This subpackage gives the exact
answers for the targets of `flowmc_like.lattice`, so a sampler (ours, or one being benchmarked
against it) can be judged by how far its estimates are from the truth in Monte Carlo standard
errors:

- `enumerate_lattice`: exact means and standard deviations of the per-draw `OBSERVABLES`
  (energy per site, squared energy deviation, ``|m|``, ``m``) by brute-force enumeration of
  all ``K^N`` states or by a row-to-row transfer matrix, in float64; `compute_observables`
  evaluates the same observables on draws.
- `exact_ising_torus` / `kaufman_log_z`: Kaufman's (1949) closed-form partition function of
  the Ising torus of any size, differentiated exactly with JAX (energy and specific heat).
- `REFERENCE_VALUES`: tabulated Ising values at the critical point and at ``beta = 0.5``.

Example:
    >>> from flowmc_like.exact import enumerate_lattice
    >>> from flowmc_like.lattice import BETA_C
    >>> exact = enumerate_lattice(L=3, n_categories=2, beta=BETA_C)
    >>> round(exact.e, 6), exact.method
    (-1.611246, 'brute_force')
"""

from flowmc_like.exact.enumeration import enumerate_lattice
from flowmc_like.exact.kaufman import (
    REFERENCE_VALUES,
    IsingReference,
    TorusThermodynamics,
    exact_ising_torus,
    kaufman_log_z,
)
from flowmc_like.exact.moments import (
    OBSERVABLES,
    ExactMoments,
    compute_observables,
    decode_states,
    encode_states,
)

__all__ = [
    "OBSERVABLES",
    "REFERENCE_VALUES",
    "ExactMoments",
    "IsingReference",
    "TorusThermodynamics",
    "compute_observables",
    "decode_states",
    "encode_states",
    "enumerate_lattice",
    "exact_ising_torus",
    "kaufman_log_z",
]
