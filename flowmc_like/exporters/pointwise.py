"""A user's function evaluated at every draw: pointwise log likelihoods, predictive draws.

`evaluate_at_draws` maps a function of one position (in the layout ``initial_position``
had) over draws ``(n_chains, n_draws, n_dim)``, jitted and vmapped in fixed-size chunks so
memory stays bounded and every chunk reuses one compilation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, PRNGKey, PyTree
from flowmc_like.adapters.pytree import PositionSpec

__all__ = ["CHUNK_SIZE", "as_named", "evaluate_at_draws"]

CHUNK_SIZE = 1024
"""Draws evaluated per vmapped call."""


def as_named(values: Any, default_name: str, owner: str) -> dict[str, np.ndarray]:
    """``values`` as ``{name: array}``: a dict as it is, an array under ``default_name``."""
    if isinstance(values, dict):
        if not all(isinstance(name, str) for name in values):
            raise TypeError(f"{owner}: the dict's keys must be str names; got {list(values)}")
        return {name: np.asarray(value) for name, value in values.items()}
    return {default_name: np.asarray(values)}


def evaluate_at_draws(
    function: Callable[..., Any],
    spec: PositionSpec,
    flat: np.ndarray,
    data: PyTree = None,
    key: PRNGKey | None = None,
    default_name: str = "y",
    owner: str = "evaluate_at_draws",
) -> dict[str, np.ndarray]:
    """``function`` at every draw, as named arrays ``(n_chains, n_draws, ...)``.

    Args:
        function: ``f(x)``, ``f(x, data)`` (when ``data`` is not None), ``f(key, x)`` or
            ``f(key, x, data)`` (when ``key`` is given: one key per draw) of one position
            ``x`` in the user's layout, returning an array or a dict of arrays (JAX-traceable).
        spec: the positions' layout.
        flat: ``(n_chains, n_draws, n_dim)`` flat draws.
        data: the data passed to ``function``, or None.
        key: a PRNG key split into one key per draw, or None.
        default_name: the name of an array output.
        owner: the calling method, for error messages.

    Returns:
        ``{name: (n_chains, n_draws, *shape)}`` numpy arrays.
    """
    flat = np.asarray(flat)
    if flat.ndim != 3 or flat.shape[-1] != spec.n_dim:
        raise ValueError(
            f"{owner}: draws must be (n_chains, n_draws, {spec.n_dim}); got {flat.shape}"
        )
    n_chains, n_draws, _ = flat.shape
    if n_chains * n_draws == 0:
        raise ValueError(f"{owner}: there are no draws to evaluate at")
    rows = flat.reshape(-1, spec.n_dim)
    keys = None if key is None else jax.random.split(key, rows.shape[0])

    def one(x: Array, draw_key: PRNGKey | None) -> Any:
        position = spec.unravel(x)
        arguments = (position,) if data is None else (position, data)
        return function(*arguments) if draw_key is None else function(draw_key, *arguments)

    if keys is None:
        chunk_fn = jax.jit(jax.vmap(lambda x: one(x, None)))
    else:
        chunk_fn = jax.jit(jax.vmap(one))
    size = min(CHUNK_SIZE, rows.shape[0])
    pieces = []
    for start in range(0, rows.shape[0], size):
        stop = min(start + size, rows.shape[0])
        padded = _pad(rows[start:stop], size)
        if keys is None:
            out = chunk_fn(padded)
        else:
            out = chunk_fn(padded, _pad(keys[start:stop], size))
        pieces.append(jax.tree.map(lambda leaf, n=stop - start: np.asarray(leaf)[:n], out))
    stacked = jax.tree.map(lambda *leaves: np.concatenate(leaves), *pieces)
    named = as_named(stacked, default_name, owner)
    return {
        name: value.reshape(n_chains, n_draws, *value.shape[1:]) for name, value in named.items()
    }


def _pad(rows: Any, size: int) -> Any:
    """``rows`` ``(m, ...)`` padded to ``(size, ...)`` by repeating its first row."""
    rows = jnp.asarray(rows) if not isinstance(rows, jax.Array) else rows
    missing = size - rows.shape[0]
    if missing == 0:
        return rows
    return jnp.concatenate([rows, jnp.repeat(rows[:1], missing, axis=0)])
