"""The user's target as the programs see it: a flat log density, checked starts.

`bind_target` wraps the user's ``log_prob`` (of an array or of one chain's pytree, with or
without ``data``) as a function of a flat ``(n_dim,)`` position and the data; `check_start`
turns ``initial_position`` into flat ``(n_chains, n_dim)`` positions, checking it before
anything is compiled; `restart_nonfinite_chains` moves chains that start where the density
is not finite.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like import _validation
from flowmc_like._sharding import ChainLayout
from flowmc_like._types import Array, PyTree
from flowmc_like.adapters.pytree import PositionSpec
from flowmc_like.kernels.base import AbstractDiscreteKernel, AbstractLocalKernel

__all__ = [
    "BoundTarget",
    "bind_target",
    "check_start",
    "check_target",
    "n_categories_of",
    "restart_nonfinite_chains",
    "restart_nonfinite_replicas",
]


def n_categories_of(kernel: AbstractLocalKernel) -> int | None:
    """K for a discrete kernel (positions are checked against ``[0, K)``), else None."""
    if isinstance(kernel, AbstractDiscreteKernel):
        return int(kernel.n_categories)
    return None


class BoundTarget(NamedTuple):
    """The user's log density on flat positions.

    Attributes:
        user_log_prob: ``(x (n_dim,), data) -> Any``, the user's function on the unravelled
            position, its output unchecked (for the checks made before compiling).
        flat_log_prob: ``(x (n_dim,), data) -> ()`` the same as a scalar of the position's
            float dtype (the default float dtype for integer positions).
    """

    user_log_prob: Callable[[Array, PyTree], Any]
    flat_log_prob: Callable[[Array, PyTree], Array]


def bind_target(log_prob: Callable[..., Any], spec: PositionSpec, with_data: bool) -> BoundTarget:
    """``log_prob`` of one chain's position in ``spec``'s layout, as a `BoundTarget`.

    Args:
        log_prob: ``log_prob(position)``, or ``log_prob(position, data)`` when ``with_data``.
        spec: how a flat ``(n_dim,)`` position maps to the user's layout.
        with_data: pass the data as the second argument.
    """

    def user_log_prob(x: Array, data: PyTree) -> Any:
        position = spec.unravel(x)
        return log_prob(position, data) if with_data else log_prob(position)

    def flat_log_prob(x: Array, data: PyTree) -> Array:
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
        return jnp.reshape(jnp.asarray(user_log_prob(x, data)), ()).astype(dtype)

    return BoundTarget(user_log_prob, flat_log_prob)


def check_start(
    initial_position: PyTree,
    n_chains: int | None,
    n_dim: int | None,
    n_categories: int | None,
) -> tuple[PositionSpec, Array]:
    """Check ``initial_position`` and flatten it to ``(n_chains, n_dim)``.

    Args:
        initial_position: an ``(n_chains, n_dim)`` array or a pytree of arrays with leading
            axis ``n_chains``.
        n_chains: the number of chains the sampler was given, or None.
        n_dim: the dimension the sampler was given, or None.
        n_categories: K for discrete positions (values must lie in ``[0, K)``), else None.

    Returns:
        The position spec and the flat positions (int32 for discrete states).
    """
    leaves = jax.tree.leaves(initial_position)
    if not leaves:
        raise ValueError("initial_position is empty; expected an (n_chains, n_dim) array")
    for leaf in leaves:
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            raise TypeError(
                "initial_position must be an array (n_chains, n_dim) or a pytree of arrays "
                f"with leading axis n_chains; got a leaf of type {type(leaf).__name__}"
            )
    _validation.check_position_leaves("initial_position", leaves, n_categories)
    if not isinstance(initial_position, jax.Array | np.ndarray):
        sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
        if len(sizes) != 1 or -1 in sizes:
            shapes = [tuple(np.shape(leaf)) for leaf in leaves]
            raise ValueError(
                "initial_position leaves must share a leading axis of size n_chains; "
                f"got leaf shapes {shapes}"
            )
    elif np.ndim(initial_position) != 2:
        raise ValueError(
            f"initial_position has shape {tuple(np.shape(initial_position))}; expected "
            f"(n_chains, n_dim) = ({n_chains or 'n_chains'}, {n_dim or 'n_dim'})"
        )
    spec, flat = PositionSpec.from_batched(initial_position)
    _validation.check_position_values(flat, n_chains, n_dim, "initial_position", n_categories)
    if n_categories is not None:
        flat = flat.astype(jnp.int32)
    return spec, flat


def check_target(
    target: BoundTarget, kernel: AbstractLocalKernel, positions: Array, data: PyTree
) -> None:
    """Check the target before compiling: its output at the first start, and the kernel's needs.

    The kernel's needs are those of `AbstractLocalKernel.check_target`.
    """
    _validation.check_log_prob_output(
        functools.partial(target.user_log_prob, data=data), positions[0]
    )
    kernel.check_target(functools.partial(target.flat_log_prob, data=data), positions)


def restart_nonfinite_chains(states: Any, layout: ChainLayout) -> Any:
    """Chains whose initial log density is not finite restart from copies of finite ones.

    Works on the host: the kernel states (target evaluated at every start by ``setup``) are
    gathered with numpy, so nothing is compiled. Raises if no chain starts at a finite value.
    """
    values = np.asarray(layout.to_host(states.log_prob))
    bad = ~np.isfinite(values)
    if bad.all():
        shown = ", ".join(str(v) for v in values[:20])
        raise ValueError(
            "log_prob is not finite at any initial_position: chains "
            f"{np.arange(values.shape[0]).tolist()[:20]} have log_prob [{shown}]"
            f"{' ...' if values.shape[0] > 20 else ''}; start the chains inside the "
            "support of the target"
        )
    if not bad.any():
        return states
    chains = np.flatnonzero(bad)
    good = np.flatnonzero(~bad)
    source = np.arange(values.shape[0])
    source[chains] = good[np.arange(len(chains)) % len(good)]
    warnings.warn(
        f"log_prob is not finite at initial_position for chains {chains.tolist()[:20]}; "
        "they start from copies of chains with a finite log_prob instead",
        UserWarning,
        stacklevel=4,
    )
    host_states = layout.to_host(states)
    replaced = jax.tree.map(lambda leaf: np.asarray(leaf)[source], host_states)
    return layout.put(replaced, layout.chains)


def restart_nonfinite_replicas(replicas: Any, layout: ChainLayout) -> Any:
    """Hot replicas with a non-finite tempered log density restart from finite copies.

    ``replicas`` has leaves ``(n_chains, K - 1, ...)``; a bad replica is replaced (on the
    host) by a finite replica of the same temperature.

    A level with no finite replica keeps its states (its chains are restarted with the
    chains at ``beta = 1``, whose check raises first).
    """
    host = layout.to_host(replicas)
    values = np.asarray(host.log_prob)
    bad = ~np.isfinite(values)
    if not bad.any():
        return replicas
    source = np.broadcast_to(np.arange(values.shape[0])[:, None], values.shape).copy()
    for level in range(values.shape[1]):
        good = np.flatnonzero(~bad[:, level])
        chains = np.flatnonzero(bad[:, level])
        if len(good):
            source[chains, level] = good[np.arange(len(chains)) % len(good)]
    levels = np.arange(values.shape[1])[None, :]
    replaced = jax.tree.map(lambda leaf: np.asarray(leaf)[source, levels], host)
    return layout.put(replaced, layout.chains)
