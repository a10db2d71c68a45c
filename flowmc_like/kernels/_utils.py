"""Private helper for the continuous kernels: position casting."""

from __future__ import annotations

import jax.numpy as jnp

from flowmc_like._types import Array, ArrayLike

__all__ = ["as_float_position"]


def as_float_position(position: ArrayLike) -> Array:
    """``position`` as a JAX array with a floating dtype (integers go to the default float)."""
    position = jnp.asarray(position)
    if not jnp.issubdtype(position.dtype, jnp.floating):
        position = position.astype(jnp.result_type(float))
    return position
