"""Per-dimension affine standardisation, with its log-determinant.

``y = (x - mean) / scale`` maps the data to roughly zero mean and unit variance before
the coupling layers (a spline is the identity outside ``[-B, B]``, so this matters).
Its Jacobian log-determinant ``-sum(log scale)`` is part of the model density; leaving it
out (as flowMC's ``MaskedCouplingRQSpline.log_prob`` does) gives an unnormalised density.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from flowmc_like._types import Array, ArrayLike

__all__ = [
    "StandardizationParams",
    "fit_standardization",
    "init_standardization",
    "standardize",
    "unstandardize",
]

_FLOOR_ULPS = 64.0
"""Scale floor, in units of ``eps(dtype) * (1 + |mean|)`` (about 7.6e-6 relative in float32)."""


class StandardizationParams(NamedTuple):
    """Statistics of the standardisation (the ``frozen`` part of a flow's `ModelParams`).

    Attributes:
        mean: ``(n_dim,)`` per-dimension location.
        scale: ``(n_dim,)`` per-dimension scale, strictly positive.
    """

    mean: Array
    scale: Array


def init_standardization(n_dim: int, dtype: Any = None) -> StandardizationParams:
    """The identity standardisation: ``mean = 0``, ``scale = 1``, each ``(n_dim,)``.

    Args:
        n_dim: number of coordinates.
        dtype: floating dtype; JAX's default float dtype when ``None``.

    Returns:
        `StandardizationParams` of zeros and ones.
    """
    dtype = jnp.zeros((), dtype=dtype if dtype is not None else float).dtype
    return StandardizationParams(jnp.zeros((n_dim,), dtype), jnp.ones((n_dim,), dtype))


def fit_standardization(data: ArrayLike, dtype: Any = None) -> StandardizationParams:
    """Fit mean and scale to data.

    ``mean = mean(data, 0)``, ``scale = max(std(data, 0), 64 * eps * (1 + |mean|))``; the
    floor keeps a constant (or nearly constant) coordinate from giving a zero or
    rounding-dominated scale.

    Args:
        data: ``(n_examples, n_dim)`` floating array, all finite.
        dtype: dtype of the returned statistics; the data's (floating) dtype when ``None``.

    Returns:
        `StandardizationParams` with ``(n_dim,)`` arrays.

    Raises:
        ValueError: if ``data`` is not two-dimensional with at least one row.
    """
    data = jnp.asarray(data)
    if data.ndim != 2 or data.shape[0] < 1:
        raise ValueError(
            f"data has shape {data.shape}; expected (n_examples, n_dim) with n_examples >= 1."
        )
    if not jnp.issubdtype(data.dtype, jnp.floating):
        data = data.astype(jnp.zeros((), dtype=float).dtype)
    mean = jnp.mean(data, axis=0)
    std = jnp.sqrt(jnp.mean(jnp.square(data - mean), axis=0))
    floor = _FLOOR_ULPS * jnp.finfo(data.dtype).eps * (1.0 + jnp.abs(mean))
    scale = jnp.maximum(std, floor)
    if dtype is not None:
        mean, scale = mean.astype(dtype), scale.astype(dtype)
    return StandardizationParams(mean, scale)


def standardize(params: StandardizationParams, x: Array) -> tuple[Array, Array]:
    """``y = (x - mean) / scale`` and ``log|det dy/dx| = -sum(log scale)``.

    Args:
        params: the statistics, ``(n_dim,)`` each.
        x: ``(n_dim,)`` event.

    Returns:
        ``y`` of shape ``(n_dim,)`` and the scalar log-determinant.
    """
    return (x - params.mean) / params.scale, -jnp.sum(jnp.log(params.scale))


def unstandardize(params: StandardizationParams, y: Array) -> tuple[Array, Array]:
    """``x = mean + scale * y`` and ``log|det dx/dy| = sum(log scale)``.

    Args:
        params: the statistics, ``(n_dim,)`` each.
        y: ``(n_dim,)`` standardised event.

    Returns:
        ``x`` of shape ``(n_dim,)`` and the scalar log-determinant.
    """
    return params.mean + params.scale * y, jnp.sum(jnp.log(params.scale))
