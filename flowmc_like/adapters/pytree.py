"""Flat <-> pytree positions, and the variable names ArviZ shows."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from flowmc_like._types import Array, PyTree

__all__ = ["PositionSpec"]


def _leaf_name(path: tuple[Any, ...]) -> str:
    parts = []
    for entry in path:
        if isinstance(entry, jax.tree_util.DictKey):
            parts.append(str(entry.key))
        elif isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(str(entry.name))
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(str(entry.idx))
        else:
            parts.append(str(entry))
    return ".".join(parts) if parts else "x"


@dataclasses.dataclass(frozen=True)
class PositionSpec:
    """How one chain's position maps to a flat ``(n_dim,)`` vector and back.

    Attributes:
        n_dim: length of the flat vector.
        is_pytree: False when positions are a plain ``(n_chains, n_dim)`` array.
        names: one variable name per leaf (``"x"`` for a plain array).
        shapes: per-leaf event shape (without the chain axis).
        unravel: flat ``(n_dim,)`` -> one chain's pytree.
        treedef: the pytree structure of one position.
    """

    n_dim: int
    is_pytree: bool
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    unravel: Callable[[Array], PyTree]
    treedef: Any

    @property
    def cache_key(self) -> tuple[Any, ...]:
        """What the flat layout depends on (``unravel`` follows from it): hashable."""
        return (self.n_dim, self.is_pytree, self.names, self.shapes, self.treedef)

    @classmethod
    def from_batched(cls, positions: PyTree) -> tuple[PositionSpec, Array]:
        """Build the spec from positions with a leading chain axis; return it and the flat array.

        Args:
            positions: an array ``(n_chains, n_dim)`` or a pytree whose leaves all have the
                leading axis ``n_chains``.

        Returns:
            The spec and the flat positions ``(n_chains, n_dim)``.
        """
        if isinstance(positions, jax.Array | np.ndarray):
            flat = jnp.asarray(positions)
            n_dim = int(flat.shape[-1])
            spec = cls(
                n_dim=n_dim,
                is_pytree=False,
                names=("x",),
                shapes=((n_dim,),),
                unravel=lambda x: x,
                treedef=None,
            )
            return spec, flat
        first = jax.tree.map(lambda leaf: jnp.asarray(leaf)[0], positions)
        _, unravel = ravel_pytree(first)
        flat = jax.vmap(lambda p: ravel_pytree(p)[0])(jax.tree.map(jnp.asarray, positions))
        paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(first)
        names = tuple(_leaf_name(path) for path, _ in paths_leaves)
        shapes = tuple(tuple(np.shape(leaf)) for _, leaf in paths_leaves)
        spec = cls(
            n_dim=int(flat.shape[-1]),
            is_pytree=True,
            names=names,
            shapes=shapes,
            unravel=unravel,
            treedef=treedef,
        )
        return spec, flat

    def split_leaves(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Split flat draws ``(..., n_dim)`` into named leaves ``(..., *leaf_shape)``."""
        out: dict[str, np.ndarray] = {}
        start = 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = int(np.prod(shape, dtype=int))
            out[name] = flat[..., start : start + size].reshape(*flat.shape[:-1], *shape)
            start += size
        return out

    def to_user(self, flat: np.ndarray) -> Any:
        """Flat draws ``(..., n_dim)`` -> the user's layout (an array or the pytree)."""
        if not self.is_pytree:
            return flat
        leaves = list(self.split_leaves(flat).values())
        return jax.tree_util.tree_unflatten(self.treedef, leaves)
