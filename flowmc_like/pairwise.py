"""Pairwise discrete targets: spin glasses, Boltzmann machines, Potts models on any graph.

A state ``s`` is an integer vector ``(N,)`` in ``{0, ..., K-1}`` (``K = n_categories``). The
energy is a sum over pairs and sites, and ``log p(s) = -beta E(s)`` (unnormalised):

- binary spins (``K = 2``, ``spins=True``): ``sigma = 2 s - 1`` and
  ``E(s) = -(1/2) sigma^T J sigma - h . sigma`` (Ising, Sherrington-Kirkpatrick);
- binary units (``K = 2``, ``spins=False``): ``x = s`` in ``{0, 1}`` and
  ``E(s) = -(1/2) x^T W x - b . x`` (a Boltzmann machine);
- categories (any ``K``): ``E(s) = -(1/2) sum_{i != j} W[i, j, s_i, s_j] - sum_i h[i, s_i]``
  with ``W[i, j, a, b] = W[j, i, b, a]`` (Potts and clock models, categorical MRFs).

Couplings are dense (``(N, N)`` or ``(N, N, K, K)``) or sparse, ``(edges, weights)``.
`make_pairwise` checks them and rewrites the binary forms in the general one
(``W[i, j, a, b] = J_ij v_a v_b``, ``v = (-1, 1)`` for spins, ``(0, 1)`` for units). The
target's ``delta_log_prob(s, i, k)`` costs O(degree of ``i``) (a row of the dense matrix, or
a padded neighbour list), so a `flowmc_like.SiteFlip` sweep costs O(number of bonds).

Example:
    >>> import jax.numpy as jnp, numpy as np
    >>> import flowmc_like as fm
    >>> J = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, -0.5], [0.0, -0.5, 0.0]])
    >>> target = fm.make_pairwise(J, fields=np.array([0.1, 0.0, 0.0]), beta=2.0)
    >>> s = jnp.array([1, 1, 0], jnp.int32)
    >>> round(float(target.energy(s)), 5)  # -(1*1*1 + (-0.5)*1*(-1)) - 0.1 * 1
    -1.6
    >>> round(float(target.delta_log_prob(s, 2, 1)), 5)  # = log_prob(s with s_2 = 1) - log_prob(s)
    -2.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, ArrayLike
from flowmc_like.lattice import _check_float, _check_int

__all__ = ["PairwiseTarget", "make_pairwise"]

_OWNER = "make_pairwise"
_SYMMETRY_TOLERANCE = 1e-6
"""Largest accepted ``|W - W^T|``, relative to ``max |W|`` (the stored matrix is symmetrised)."""


def _float_dtype() -> Any:
    """JAX's default float dtype at trace time: float32, or float64 under x64."""
    return jnp.result_type(float)


@dataclasses.dataclass(frozen=True, eq=False)
class PairwiseTarget:
    """A pairwise target over ``{0..K-1}^N`` (see the module docstring for the energy).

    Build one with `make_pairwise`. The arrays are numpy float64 in the general form, cast to
    JAX's default float dtype when traced (so the target works with and without x64).

    Attributes:
        log_prob: ``s (N,) int -> ()``, ``-beta E(s)``; O(N^2) dense, O(N + E) sparse.
        delta_log_prob: ``(s (N,), i (), k ()) -> ()``, ``log p(s with s_i = k) - log p(s)``
            in O(degree of ``i``); traced ``i``, ``k`` are fine under ``jit``, ``vmap`` and
            ``lax.scan``.
        energy: ``s (..., N) -> (...)``, ``E(s)``, vectorised over the leading axes.
        n_categories: ``K``.
        beta: inverse temperature.
        couplings: dense input: ``(N, N, K, K)`` symmetric couplings ``W`` (for binary spins
            ``J = couplings[:, :, 1, 1]``); None for sparse input (see `dense_couplings`).
        fields: ``(N, K)`` site terms ``h[i, a]`` (binary: ``h_i v_a``).
        spins: the binary convention: True for ``sigma = 2 s - 1``, False for ``x = s``.
        edges: sparse input: ``(E, 2)`` int64 bonds, each once; None for dense input.
        edge_weights: sparse input: ``(E, K, K)``, bond ``(i, j)`` adds
            ``-edge_weights[e, s_i, s_j]`` to the energy; None for dense input.
        neighbours: sparse input: ``(N, D)`` int32 neighbours of each site padded with ``N``
            (``D`` the largest degree); None for dense input.
        neighbour_weights: sparse input: ``(N, D, K, K)``, ``[i, d, a, b]`` couples ``s_i = a``
            with ``s_{neighbours[i, d]} = b`` (0 for padding); None for dense input.

    Example:
        >>> import numpy as np
        >>> edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])  # a ring of four spins
        >>> target = make_pairwise((edges, np.ones(4)), beta=0.5)
        >>> target.n_dim, target.neighbours.shape, float(target.energy(np.ones(4, np.int32)))
        (4, (4, 2), -4.0)
    """

    log_prob: Callable[[Array], Array]
    delta_log_prob: Callable[[Array, Array, Array], Array]
    energy: Callable[[Array], Array]
    n_categories: int
    beta: float
    couplings: np.ndarray | None
    fields: np.ndarray
    spins: bool
    edges: np.ndarray | None = None
    edge_weights: np.ndarray | None = None
    neighbours: np.ndarray | None = None
    neighbour_weights: np.ndarray | None = None

    @property
    def n_dim(self) -> int:
        """Number of sites ``N``."""
        return int(self.fields.shape[0])

    def dense_couplings(self) -> np.ndarray:
        """``(N, N, K, K)`` float64 ``W`` of either form (O(N^2 K^2) memory for a sparse one)."""
        if self.couplings is not None:
            return self.couplings
        n, k = self.fields.shape
        dense = np.zeros((n, n, k, k))
        assert self.edges is not None and self.edge_weights is not None
        np.add.at(dense, (self.edges[:, 0], self.edges[:, 1]), self.edge_weights)
        np.add.at(dense, (self.edges[:, 1], self.edges[:, 0]), np.swapaxes(self.edge_weights, 1, 2))
        return dense


def _fail(name: str, message: str) -> ValueError:
    return ValueError(f"{_OWNER}: {name} {message}")


def _as_float_array(name: str, value: object) -> np.ndarray:
    """``value`` as float64; TypeError unless numbers, ValueError unless finite."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{_OWNER}: {name} must be an array of real numbers; got {type(value).__name__}"
        ) from None
    if not np.all(np.isfinite(array)):
        raise _fail(name, "must be finite everywhere (found NaN or inf)")
    return array


def _binary_values(spins: bool) -> np.ndarray:
    """Values ``v_a`` of the two states: ``(-1, 1)`` for spins, ``(0, 1)`` for units."""
    return np.array([-1.0, 1.0]) if spins else np.array([0.0, 1.0])


def _dense_form(couplings: np.ndarray, k: int, spins: bool) -> np.ndarray:
    """Checked, symmetrised ``(N, N, K, K)`` couplings from ``(N, N)`` or ``(N, N, K, K)``."""
    if couplings.ndim == 2 and k != 2:
        raise _fail("couplings", f"of shape (N, N) needs n_categories=2; got {k} categories")
    if couplings.ndim not in (2, 4) or (couplings.ndim == 4 and couplings.shape[2:] != (k, k)):
        raise _fail(
            "couplings",
            f"must have shape (N, N) (binary) or (N, N, K, K) with K = {k}; got {couplings.shape}",
        )
    n = couplings.shape[0]
    if couplings.shape[1] != n:
        raise _fail("couplings", f"must be square in its first two axes; got {couplings.shape}")
    if couplings.ndim == 2:
        v = _binary_values(spins)
        couplings = couplings[:, :, None, None] * v[:, None] * v[None, :]
    if np.any(couplings[np.arange(n), np.arange(n)] != 0):
        raise _fail("couplings", "must have a zero diagonal (no site couples to itself)")
    transposed = np.transpose(couplings, (1, 0, 3, 2))
    scale = float(np.max(np.abs(couplings), initial=0.0))
    if np.max(np.abs(couplings - transposed), initial=0.0) > _SYMMETRY_TOLERANCE * scale:
        raise _fail(
            "couplings",
            "must be symmetric: J[i, j] == J[j, i] (or W[i, j, a, b] == W[j, i, b, a])",
        )
    return 0.5 * (couplings + transposed)


def _sparse_form(
    couplings: tuple[Any, ...], n_sites: int | None, k: int, spins: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """Checked ``edges (E, 2)``, ``weights (E, K, K)`` and ``N`` from ``(edges, weights)``."""
    if len(couplings) != 2:
        raise _fail("couplings", "given as a tuple must be (edges, weights)")
    edges = np.asarray(couplings[0])
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise _fail("couplings (edges)", f"must have shape (E, 2); got {edges.shape}")
    if not np.issubdtype(edges.dtype, np.integer):
        raise _fail("couplings (edges)", f"must be integers; got dtype {edges.dtype}")
    weights = _as_float_array("couplings (weights)", couplings[1])
    n_edges = edges.shape[0]
    if weights.shape == (n_edges,) and k == 2:
        v = _binary_values(spins)
        weights = weights[:, None, None] * v[:, None] * v[None, :]
    elif weights.shape != (n_edges, k, k):
        shape = ("(E,) or " if k == 2 else "") + f"(E, K, K) = ({n_edges}, {k}, {k})"
        raise _fail("couplings (weights)", f"must have shape {shape}; got {weights.shape}")
    if np.any(edges[:, 0] == edges[:, 1]):
        raise _fail("couplings (edges)", "must join two different sites (found i == j)")
    n = n_sites if n_sites is not None else int(edges.max(initial=-1)) + 1
    if n < 1 or np.any(edges < 0) or np.any(edges >= n):
        raise _fail("couplings (edges)", f"must hold site indices in [0, N) with N = {n}")
    return edges.astype(np.int64), weights, n


def _fields_form(fields: ArrayLike | None, n: int, k: int, spins: bool) -> np.ndarray:
    """Checked ``(N, K)`` fields from None, ``(N,)`` (binary) or ``(N, K)``."""
    if fields is None:
        return np.zeros((n, k))
    array = _as_float_array("fields", fields)
    if array.shape == (n,) and k == 2:
        return array[:, None] * _binary_values(spins)[None, :]
    if array.shape == (n, k):
        return array
    expected = f"(N,) = ({n},) or (N, K) = ({n}, {k})" if k == 2 else f"(N, K) = ({n}, {k})"
    raise _fail("fields", f"must have shape {expected}; got {array.shape}")


def _neighbour_lists(
    edges: np.ndarray, weights: np.ndarray, n: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` int32 neighbours padded with ``N`` and their ``(N, D, K, K)`` weights."""
    sources = np.concatenate([edges[:, 0], edges[:, 1]])
    targets = np.concatenate([edges[:, 1], edges[:, 0]])
    directed = np.concatenate([weights, np.swapaxes(weights, 1, 2)])  # [a, b]: s_src=a, s_tgt=b
    order = np.argsort(sources, kind="stable")
    sources, targets, directed = sources[order], targets[order], directed[order]
    degree = np.bincount(sources, minlength=n)
    starts = np.concatenate([[0], np.cumsum(degree)[:-1]])
    slots = np.arange(sources.size) - starts[sources]
    width = max(int(degree.max(initial=0)), 1)
    neighbours = np.full((n, width), n, dtype=np.int32)
    neighbour_weights = np.zeros((n, width, k, k))
    neighbours[sources, slots] = targets
    neighbour_weights[sources, slots] = directed
    return neighbours, neighbour_weights


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
        couplings: dense ``(N, N)`` (binary) or ``(N, N, K, K)``, symmetric (up to a relative
            1e-6) with a zero diagonal; or a tuple ``(edges (E, 2) int, weights (E,) or
            (E, K, K))`` listing each bond once, where the bond ``(i, j)`` with weights
            ``w[a, b]`` adds ``-w[s_i, s_j]`` to the energy (a bond listed twice counts twice).
        fields: ``(N,)`` (binary) or ``(N, K)`` site terms; None for none.
        beta: inverse temperature, a finite real number.
        n_categories: ``K >= 2``.
        spins: binary ``(N, N)`` / ``(E,)`` / ``(N,)`` input only: True for
            ``sigma = 2 s - 1`` (Ising convention), False for ``x = s`` in ``{0, 1}``
            (Boltzmann-machine convention).
        n_sites: ``N`` for sparse couplings (default: from ``fields``, else the largest
            index in ``edges`` plus one); if given with dense ones, it must match them.

    Returns:
        The target, with ``log_prob``, ``delta_log_prob`` and ``energy``.

    Raises:
        ValueError: naming the argument: wrong shapes, asymmetric couplings or a non-zero
            diagonal, non-finite values, out-of-range edges, ``beta`` or ``n_categories``.
        TypeError: naming the argument, for a value of the wrong type.

    Example:
        >>> import numpy as np
        >>> W = np.zeros((2, 2, 3, 3))
        >>> W[0, 1] = W[1, 0] = np.eye(3)  # a two-site, three-state Potts bond
        >>> target = make_pairwise(W, n_categories=3, beta=1.0)
        >>> float(target.log_prob(np.array([2, 2]))), float(target.log_prob(np.array([0, 2])))
        (1.0, 0.0)
    """
    beta = _check_float(_OWNER, "beta", beta)
    k = _check_int(_OWNER, "n_categories", n_categories, 2)
    if not isinstance(spins, bool | np.bool_):
        raise TypeError(f"{_OWNER}: spins must be True or False; got {spins!r}")
    spins = bool(spins)
    n_sites = None if n_sites is None else _check_int(_OWNER, "n_sites", n_sites, 1)
    if isinstance(couplings, tuple):
        if n_sites is None and fields is not None and np.ndim(fields) >= 1:
            n_sites = int(np.shape(fields)[0])
        edges, weights, n = _sparse_form(couplings, n_sites, k, spins)
        site = _fields_form(fields, n, k, spins)
        neighbours, neighbour_weights = _neighbour_lists(edges, weights, n, k)
        return _sparse_target(edges, weights, neighbours, neighbour_weights, site, beta, spins)
    dense = _dense_form(_as_float_array("couplings", couplings), k, spins)
    if n_sites not in (None, dense.shape[0]):
        raise _fail("n_sites", f"is {n_sites} but the couplings have N = {dense.shape[0]}")
    site = _fields_form(fields, dense.shape[0], k, spins)
    return _dense_target(dense, site, beta, spins)


def _checked_states(s: ArrayLike, n: int) -> Array:
    """``s (..., N)`` as int32, checking the last axis."""
    s = jnp.asarray(s)
    if s.ndim < 1 or s.shape[-1] != n:
        raise ValueError(f"s has shape {s.shape}; expected (..., N) = (..., {n})")
    return s.astype(jnp.int32)


def _assemble(
    fields: np.ndarray,
    beta: float,
    spins: bool,
    pair_energy: Callable[[Array], Array],
    local_field: Callable[[Array, Array], Array],
    **arrays: np.ndarray | None,
) -> PairwiseTarget:
    """The target from the pair energy ``(..., N) -> (...)`` and the pairs' local field.

    ``local_field(s, i)`` is ``(K,)``: ``f[a] = sum_j W[i, j, a, s_j]``, so that with the
    field ``h[i, a]`` added, ``delta_log_prob = beta (f[k] - f[s_i])``.
    """
    n, k = fields.shape

    def energy(s: ArrayLike) -> Array:
        s = _checked_states(s, n)
        h = jnp.asarray(fields, _float_dtype())
        return pair_energy(s) - jnp.sum(h[jnp.arange(n), s], axis=-1)

    def log_prob(s: Array) -> Array:
        return -beta * energy(s)

    def delta_log_prob(s: Array, i: Array, k_new: Array) -> Array:
        s = jnp.asarray(s).astype(jnp.int32)
        field = local_field(s, i) + jnp.asarray(fields, _float_dtype())[i]
        return beta * (field[k_new] - field[s[i]])

    return PairwiseTarget(
        log_prob=log_prob,
        delta_log_prob=delta_log_prob,
        energy=energy,
        n_categories=k,
        beta=beta,
        fields=fields,
        spins=spins,
        **arrays,
    )


def _spin_couplings(couplings: np.ndarray) -> np.ndarray | None:
    """``J`` if binary ``W[i, j] = J_ij [[1, -1], [-1, 1]]`` (``sigma_i sigma_j``), else None."""
    if couplings.shape[2:] != (2, 2):
        return None
    j = couplings[:, :, 1, 1]
    signs = np.array([[1.0, -1.0], [-1.0, 1.0]])
    return j if np.array_equal(couplings, j[:, :, None, None] * signs) else None


def _dense_target(
    couplings: np.ndarray, fields: np.ndarray, beta: float, spins: bool
) -> PairwiseTarget:
    n, k = fields.shape
    j_matrix = _spin_couplings(couplings)  # spins: sigma^T J sigma, and the row J[i] for a flip

    def pair_energy(s: Array) -> Array:
        dtype = _float_dtype()
        if j_matrix is not None:
            sigma = 2.0 * s.astype(dtype) - 1.0
            return -0.5 * jnp.sum((sigma @ jnp.asarray(j_matrix, dtype)) * sigma, axis=-1)
        one_hot = (s[..., None] == jnp.arange(k)).astype(dtype)
        w = jnp.asarray(couplings, dtype)
        return -0.5 * jnp.einsum("...ia,ijab,...jb->...", one_hot, w, one_hot)

    def local_field(s: Array, i: Array) -> Array:
        dtype = _float_dtype()
        if j_matrix is not None:
            up = jnp.asarray(j_matrix, dtype)[i] @ (2.0 * s.astype(dtype) - 1.0)
            return jnp.stack([-up, up])
        row = jnp.asarray(couplings, dtype)[i]  # (N, K, K): [j, a, b]
        return jnp.sum(row[jnp.arange(n), :, s], axis=0)  # sum_j W[i, j, a, s_j]

    return _assemble(fields, beta, spins, pair_energy, local_field, couplings=couplings)


def _sparse_target(
    edges: np.ndarray,
    weights: np.ndarray,
    neighbours: np.ndarray,
    neighbour_weights: np.ndarray,
    fields: np.ndarray,
    beta: float,
    spins: bool,
) -> PairwiseTarget:
    n = fields.shape[0]
    pairs = edges.astype(np.int32)

    def pair_energy(s: Array) -> Array:
        w = jnp.asarray(weights, _float_dtype())
        left, right = s[..., pairs[:, 0]], s[..., pairs[:, 1]]  # (..., E)
        return -jnp.sum(w[jnp.arange(pairs.shape[0]), left, right], axis=-1)

    def local_field(s: Array, i: Array) -> Array:
        index = jnp.asarray(neighbours)[i]  # (D,)
        # Padding (index N) reads any site: its weights are zero, so it adds nothing.
        values = s[jnp.minimum(index, n - 1)]
        w = jnp.asarray(neighbour_weights, _float_dtype())[i]  # (D, K, K): [d, a, b]
        return jnp.sum(w[jnp.arange(index.shape[0]), :, values], axis=0)

    arrays = {"edges": edges, "edge_weights": weights, "neighbours": neighbours}
    arrays |= {"couplings": None, "neighbour_weights": neighbour_weights}
    return _assemble(fields, beta, spins, pair_energy, local_field, **arrays)
