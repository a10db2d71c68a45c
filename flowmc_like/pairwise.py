"""Pairwise discrete targets: spin glasses, Boltzmann machines, Potts models on any graph.

A state ``s`` is an integer vector ``(N,)`` in ``{0, ..., K-1}``. The energy is a sum over
pairs and sites, ``log p(s) = -beta E(s)`` (unnormalised):

- binary spins (``K = 2``, ``spins=True``): ``sigma = 2 s - 1`` and
  ``E(s) = -(1/2) sigma^T J sigma - h . sigma`` (Ising, Sherrington-Kirkpatrick);
- binary units (``K = 2``, ``spins=False``): ``x = s`` in ``{0, 1}`` and
  ``E(s) = -(1/2) x^T W x - b . x`` (a Boltzmann machine);
- categories (any ``K``): ``E(s) = -(1/2) sum_{i != j} W[i, j, s_i, s_j] - sum_i h[i, s_i]``
  with ``W[i, j, a, b] = W[j, i, b, a]`` (Potts and clock models, categorical MRFs).

Couplings are dense (``(N, N)`` or ``(N, N, K, K)``) or sparse, ``(edges, weights)`` with
``edges`` ``(E, 2)`` listing each bond once. `make_pairwise` checks them, and the target's
``delta_log_prob(s, i, k)`` costs O(degree of i) (a row of the dense matrix, or the padded
neighbour list of the sparse one), so `flowmc_like.SiteFlip` sweeps cost O(number of bonds).

Example:
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> import flowmc_like as fm
    >>> J = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, -0.5], [0.0, -0.5, 0.0]])
    >>> target = fm.make_pairwise(J, fields=np.array([0.1, 0.0, 0.0]), beta=2.0)
    >>> s = jnp.array([1, 1, 0], jnp.int32)
    >>> round(float(target.energy(s)), 5)  # -(1*1*1 + (-0.5)*1*(-1)) - 0.1 * 1
    -1.6
    >>> float(target.delta_log_prob(s, 2, 1)) == float(
    ...     target.log_prob(s.at[2].set(1)) - target.log_prob(s))
    True
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, ArrayLike

__all__ = ["PairwiseTarget", "make_pairwise"]

_SYMMETRY_TOLERANCE = 1e-6


def _float_dtype() -> Any:
    """JAX's default float dtype at trace time: float32, or float64 under x64."""
    return jnp.result_type(float)


@dataclasses.dataclass(frozen=True, eq=False)
class PairwiseTarget:
    """A pairwise target over ``{0..K-1}^N`` (see the module docstring for the energy).

    Attributes:
        log_prob: ``s (N,) int -> ()``, ``-beta E(s)``.
        delta_log_prob: ``(s (N,), i (), k ()) -> ()``, ``log p(s with s_i = k) - log p(s)``
            in O(degree of ``i``); traced ``i``, ``k`` are fine under ``jit``, ``vmap`` and
            ``lax.scan``.
        energy: ``s (..., N) -> (...)``, ``E(s)``.
        n_categories: ``K``.
        beta: inverse temperature.
        couplings: the dense couplings ``(N, N, K, K)`` (numpy float64, the binary forms
            rewritten in this general form), also for a sparse target (for reference;
            the target itself uses ``neighbours``).
        fields: ``(N, K)`` the site terms in the same general form.
        neighbours: ``(N, D)`` int32, each site's neighbours padded with ``N`` (sparse
            input), or None (dense).
        spins: True for the ``sigma = 2 s - 1`` convention of the binary form.
    """

    log_prob: Callable[[Array], Array]
    delta_log_prob: Callable[[Array, Array, Array], Array]
    energy: Callable[[Array], Array]
    n_categories: int
    beta: float
    couplings: np.ndarray
    fields: np.ndarray
    neighbours: np.ndarray | None
    spins: bool

    @property
    def n_dim(self) -> int:
        """Number of sites ``N``."""
        return int(self.fields.shape[0])


def _fail(name: str, message: str) -> ValueError:
    return ValueError(f"make_pairwise: {name} {message}")


def _as_float_array(name: str, value: ArrayLike) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"make_pairwise: {name} must be an array of real numbers") from None
    if not np.all(np.isfinite(array)):
        raise _fail(name, "must be finite everywhere (found NaN or inf)")
    return array


def _check_scalar(name: str, value: object, minimum: int | None = None) -> Any:
    if minimum is not None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(
                f"make_pairwise: {name} must be an integer >= {minimum}; got {value!r}"
            )
        return int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"make_pairwise: {name} must be a finite real number; got {value!r}")
    return float(value)


def _general_form(
    couplings: np.ndarray, fields: np.ndarray | None, n_categories: int, spins: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Dense couplings ``(N, N, K, K)`` and fields ``(N, K)`` from any accepted form."""
    k = n_categories
    if couplings.ndim == 2:
        if k != 2:
            raise _fail(
                "couplings",
                f"of shape (N, N) needs n_categories=2; got n_categories={k} (give (N, N, K, K))",
            )
        values = np.array([-1.0, 1.0]) if spins else np.array([0.0, 1.0])
        general = couplings[:, :, None, None] * values[:, None] * values[None, :]
    elif couplings.ndim == 4 and couplings.shape[2:] == (k, k):
        general = couplings
    else:
        raise _fail(
            "couplings",
            f"must have shape (N, N) (binary) or (N, N, K, K) with K = {k}; got {couplings.shape}",
        )
    n = general.shape[0]
    if general.shape[1] != n:
        raise _fail("couplings", f"must be square in its first two axes; got {couplings.shape}")
    if np.any(np.abs(general[np.arange(n), np.arange(n)]) > 0):
        raise _fail("couplings", "must have a zero diagonal (no site couples to itself)")
    transposed = np.transpose(general, (1, 0, 3, 2))
    scale = max(float(np.max(np.abs(general), initial=0.0)), 1.0)
    if np.max(np.abs(general - transposed), initial=0.0) > _SYMMETRY_TOLERANCE * scale:
        raise _fail(
            "couplings",
            "must be symmetric: J[i, j] == J[j, i] (or W[i, j, a, b] == W[j, i, b, a])",
        )
    general = 0.5 * (general + transposed)
    if fields is None:
        site = np.zeros((n, k))
    elif fields.shape == (n,) and k == 2:
        values = np.array([-1.0, 1.0]) if spins else np.array([0.0, 1.0])
        site = fields[:, None] * values[None, :]
    elif fields.shape == (n, k):
        site = fields
    else:
        expected = f"(N,) = ({n},) or (N, K) = ({n}, {k})" if k == 2 else f"(N, K) = ({n}, {k})"
        raise _fail("fields", f"must have shape {expected}; got {fields.shape}")
    return general, site


def _sparse_form(
    edges: ArrayLike, weights: ArrayLike, n_sites: int | None, n_categories: int, spins: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(E, 2)`` and weights ``(E,)`` or ``(E, K, K)`` -> per-edge ``(E, K, K)``."""
    edge_array = np.asarray(edges)
    if edge_array.ndim != 2 or edge_array.shape[1] != 2:
        raise _fail("couplings", f"edges must have shape (E, 2); got {edge_array.shape}")
    if not np.issubdtype(edge_array.dtype, np.integer):
        raise _fail("couplings", f"edges must be integers; got dtype {edge_array.dtype}")
    weight_array = _as_float_array("couplings (weights)", weights)
    k = n_categories
    if weight_array.shape == (edge_array.shape[0],) and k == 2:
        values = np.array([-1.0, 1.0]) if spins else np.array([0.0, 1.0])
        weight_array = weight_array[:, None, None] * values[:, None] * values[None, :]
    elif weight_array.shape != (edge_array.shape[0], k, k):
        raise _fail(
            "couplings",
            f"weights must have shape (E,) (binary) or (E, K, K) = ({edge_array.shape[0]}, "
            f"{k}, {k}); got {weight_array.shape}",
        )
    if np.any(edge_array[:, 0] == edge_array[:, 1]):
        raise _fail("couplings", "edges must join two different sites (found i == j)")
    if np.any(edge_array < 0) or (n_sites is not None and np.any(edge_array >= n_sites)):
        raise _fail("couplings", f"edges must hold site indices in [0, N) with N = {n_sites}")
    return edge_array.astype(np.int64), weight_array


def make_pairwise(
    couplings: ArrayLike | tuple[ArrayLike, ArrayLike],
    fields: ArrayLike | None = None,
    *,
    beta: float = 1.0,
    n_categories: int = 2,
    spins: bool = True,
    n_sites: int | None = None,
) -> PairwiseTarget:
    """A `PairwiseTarget` from dense or sparse couplings (see the module docstring).

    Args:
        couplings: dense ``(N, N)`` (binary) or ``(N, N, K, K)``, symmetric with a zero
            diagonal; or sparse ``(edges (E, 2) int, weights (E,) or (E, K, K))`` listing
            each bond once (the bond ``(i, j)`` with weights ``W[a, b]`` couples ``s_i = a``
            with ``s_j = b``).
        fields: ``(N,)`` (binary) or ``(N, K)`` site terms; None for none.
        beta: inverse temperature.
        n_categories: ``K >= 2``.
        spins: binary form only: True for ``sigma = 2 s - 1`` (Ising convention), False for
            ``x = s`` in ``{0, 1}`` (Boltzmann machine convention).
        n_sites: ``N`` for sparse couplings (default: from ``fields``, else the largest
            index in ``edges`` plus one).

    Returns:
        The target, with ``log_prob``, ``delta_log_prob`` and ``energy``.

    Raises:
        ValueError: naming the argument, for wrong shapes, a non-symmetric or non-zero
            diagonal coupling matrix, non-finite values, out-of-range edges or a bad beta.
        TypeError: for couplings or fields that are not arrays of numbers.
    """
    beta = _check_scalar("beta", beta)
    k = _check_scalar("n_categories", n_categories, minimum=2)
    if not isinstance(spins, (bool, np.bool_)):
        raise TypeError(f"make_pairwise: spins must be True or False; got {spins!r}")
    field_array = None if fields is None else _as_float_array("fields", fields)
    if isinstance(couplings, tuple):
        if len(couplings) != 2:
            raise _fail("couplings", "given as a tuple must be (edges, weights)")
        if n_sites is None and field_array is not None:
            n_sites = int(field_array.shape[0])
        edges, weights = _sparse_form(couplings[0], couplings[1], n_sites, k, bool(spins))
        n = int(n_sites) if n_sites is not None else int(edges.max()) + 1
        dense = np.zeros((n, n, k, k))
        np.add.at(dense, (edges[:, 0], edges[:, 1]), weights)
        np.add.at(dense, (edges[:, 1], edges[:, 0]), np.transpose(weights, (0, 2, 1)))
        general, site = _general_form(dense, field_array, k, bool(spins))
        neighbours, neighbour_weights = _neighbour_lists(edges, weights, n, k)
    else:
        general, site = _general_form(
            _as_float_array("couplings", couplings), field_array, k, bool(spins)
        )
        neighbours = neighbour_weights = None
    return _build(general, site, neighbours, neighbour_weights, beta, k, bool(spins))


def _neighbour_lists(
    edges: np.ndarray, weights: np.ndarray, n: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` neighbour indices padded with ``N`` and their ``(N, D, K, K)`` weights."""
    lists: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n)]
    for (i, j), w in zip(edges, weights, strict=True):
        lists[i].append((int(j), w))
        lists[j].append((int(i), w.T))
    degree = max((len(entries) for entries in lists), default=0)
    degree = max(degree, 1)
    indices = np.full((n, degree), n, dtype=np.int32)
    neighbour_weights = np.zeros((n, degree, k, k))
    for i, entries in enumerate(lists):
        for slot, (j, w) in enumerate(entries):
            indices[i, slot] = j
            neighbour_weights[i, slot] = w
    return indices, neighbour_weights


def _build(
    couplings: np.ndarray,
    fields: np.ndarray,
    neighbours: np.ndarray | None,
    neighbour_weights: np.ndarray | None,
    beta: float,
    k: int,
    spins: bool,
) -> PairwiseTarget:
    n = fields.shape[0]
    # Binary targets in the spin form evaluate sigma^T J sigma directly (one matrix product).
    binary_j = couplings[:, :, 1, 1] if k == 2 else None
    is_spin_form = k == 2 and spins and _is_spin_form(couplings, fields)

    def energy(s: ArrayLike) -> Array:
        s = jnp.asarray(s)
        if s.shape[-1] != n:
            raise ValueError(f"s has shape {s.shape}; expected (..., N) = (..., {n})")
        dtype = _float_dtype()
        if is_spin_form:
            sigma = 2.0 * s.astype(dtype) - 1.0
            j = jnp.asarray(binary_j, dtype)
            h = jnp.asarray(fields[:, 1], dtype)
            pair = jnp.einsum("...i,ij,...j->...", sigma, j, sigma)
            return -0.5 * pair - sigma @ h
        one_hot = (s[..., None] == jnp.arange(k)).astype(dtype)
        w = jnp.asarray(couplings, dtype)
        pair = jnp.einsum("...ia,ijab,...jb->...", one_hot, w, one_hot)
        site = jnp.einsum("...ia,ia->...", one_hot, jnp.asarray(fields, dtype))
        return -0.5 * pair - site

    def log_prob(s: Array) -> Array:
        return -beta * energy(s)

    if neighbours is None:

        def local_field(s: Array, i: Array) -> Array:
            """``(K,)``: ``sum_j W[i, j, :, s_j] + h[i, :]`` (a row of the dense couplings)."""
            dtype = _float_dtype()
            row = jnp.asarray(couplings, dtype)[i]  # (N, K, K)
            picked = jnp.take_along_axis(row, s[:, None, None].astype(jnp.int32), axis=2)[..., 0]
            return jnp.sum(picked, axis=0) + jnp.asarray(fields, dtype)[i]

    else:

        def local_field(s: Array, i: Array) -> Array:
            """``(K,)`` from the padded neighbour list of ``i`` (padding: weight 0)."""
            dtype = _float_dtype()
            index = jnp.asarray(neighbours)[i]  # (D,)
            values = jnp.asarray(s)[jnp.minimum(index, n - 1)]
            w = jnp.asarray(neighbour_weights, dtype)[i]  # (D, K, K)
            picked = jnp.take_along_axis(w, values[:, None, None].astype(jnp.int32), axis=2)
            picked = jnp.where((index < n)[:, None], picked[..., 0], 0.0)
            return jnp.sum(picked, axis=0) + jnp.asarray(fields, dtype)[i]

    def delta_log_prob(s: Array, i: Array, k_new: Array) -> Array:
        s = jnp.asarray(s)
        field = local_field(s, i)
        return beta * (field[k_new] - field[s[i]])

    return PairwiseTarget(
        log_prob=log_prob,
        delta_log_prob=delta_log_prob,
        energy=energy,
        n_categories=k,
        beta=beta,
        couplings=couplings,
        fields=fields,
        neighbours=neighbours,
        spins=spins,
    )


def _is_spin_form(couplings: np.ndarray, fields: np.ndarray) -> bool:
    """Whether the binary couplings are ``J sigma_i sigma_j`` and fields ``h sigma_i``."""
    j = couplings[:, :, 1, 1]
    signs = np.array([[1.0, -1.0], [-1.0, 1.0]])
    same_pairs = np.allclose(couplings, j[:, :, None, None] * signs, rtol=0, atol=1e-12)
    same_fields = np.allclose(fields[:, 0], -fields[:, 1], rtol=0, atol=1e-12)
    return bool(same_pairs and same_fields)
