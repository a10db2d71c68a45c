"""Affine standardisation (per-dimension, or full-covariance whitening), with its log-determinant.

``y = (x - mean) / scale`` maps the data to roughly zero mean and unit variance before
the coupling layers (a spline is the identity outside ``[-B, B]``, so this matters).
With ``whiten=True`` the map is ``y = L^{-1} (x - mean)`` with ``L L^T`` the data's
covariance (Cholesky factor), so correlated coordinates are decorrelated too: a rotated,
ill-conditioned Gaussian becomes a standard normal before any layer is trained.
Its Jacobian log-determinant ``-sum(log scale)`` is part of the model density; leaving it
out (as flowMC's ``MaskedCouplingRQSpline.log_prob`` does) gives an unnormalised density.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg

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
        scale: ``(n_dim,)`` per-dimension scale, strictly positive (the diagonal of
            ``cholesky`` when whitening).
        cholesky: ``(n_dim, n_dim)`` lower-triangular ``L`` with ``L L^T`` the covariance, or
            ``None`` for the per-dimension map.
        inverse_cholesky: ``(n_dim, n_dim)`` ``L^{-1}`` (lower triangular), or ``None``.
    """

    mean: Array
    scale: Array
    cholesky: Array | None = None
    inverse_cholesky: Array | None = None


def init_standardization(
    n_dim: int, dtype: Any = None, whiten: bool = False
) -> StandardizationParams:
    """The identity standardisation: ``mean = 0``, ``scale = 1`` (and ``L = I`` if whitening).

    Args:
        n_dim: number of coordinates.
        dtype: floating dtype; JAX's default float dtype when ``None``.
        whiten: build the full-covariance form (``cholesky`` and its inverse set).

    Returns:
        `StandardizationParams` of zeros and ones.
    """
    dtype = jnp.zeros((), dtype=dtype if dtype is not None else float).dtype
    mean, scale = jnp.zeros((n_dim,), dtype), jnp.ones((n_dim,), dtype)
    if not whiten:
        return StandardizationParams(mean, scale)
    eye = jnp.eye(n_dim, dtype=dtype)
    return StandardizationParams(mean, scale, eye, eye)


def fit_standardization(
    data: ArrayLike, dtype: Any = None, whiten: bool = False
) -> StandardizationParams:
    """Fit mean and scale (or the covariance's Cholesky factor) to data.

    ``mean = mean(data, 0)``, ``scale = max(std(data, 0), 64 * eps * (1 + |mean|))``; the
    floor keeps a constant (or nearly constant) coordinate from giving a zero or
    rounding-dominated scale. With ``whiten``, ``L = chol(C + diag(floor^2))`` where ``C`` is
    the covariance of the data, computed in the standardised coordinates (so its condition
    number is that of the correlation matrix) and scaled back; if the factorisation fails
    (a singular covariance in finite precision) the diagonal ``scale`` is used instead.

    Args:
        data: ``(n_examples, n_dim)`` floating array, all finite.
        dtype: dtype of the returned statistics; the data's (floating) dtype when ``None``.
        whiten: fit the full-covariance form.

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
    if not whiten:
        if dtype is not None:
            mean, scale = mean.astype(dtype), scale.astype(dtype)
        return StandardizationParams(mean, scale)
    n_dim = data.shape[1]
    eye = jnp.eye(n_dim, dtype=data.dtype)
    y = (data - mean) / scale
    correlation = y.T @ y / data.shape[0] + 16.0 * jnp.finfo(data.dtype).eps * eye
    chol_y = jnp.linalg.cholesky(correlation)
    inv_chol_y = jax.scipy.linalg.solve_triangular(chol_y, eye, lower=True)
    is_ok = jnp.all(jnp.isfinite(inv_chol_y)) & jnp.all(jnp.diagonal(chol_y) > 0)
    chol_y = jnp.where(is_ok, chol_y, eye)
    inv_chol_y = jnp.where(is_ok, inv_chol_y, eye)
    cholesky = scale[:, None] * chol_y
    inverse_cholesky = inv_chol_y / scale[None, :]
    params = StandardizationParams(mean, jnp.diagonal(cholesky), cholesky, inverse_cholesky)
    if dtype is not None:
        params = StandardizationParams(*(leaf.astype(dtype) for leaf in params))
    return params


def standardize(params: StandardizationParams, x: Array) -> tuple[Array, Array]:
    """``y = (x - mean) / scale`` and ``log|det dy/dx| = -sum(log scale)``.

    When whitening, ``y = L^{-1} (x - mean)``; ``scale`` is ``diag(L)``, so the
    log-determinant has the same form.

    Args:
        params: the statistics, ``(n_dim,)`` each.
        x: ``(n_dim,)`` event.

    Returns:
        ``y`` of shape ``(n_dim,)`` and the scalar log-determinant.
    """
    log_det = -jnp.sum(jnp.log(params.scale))
    if params.inverse_cholesky is not None:
        return params.inverse_cholesky @ (x - params.mean), log_det
    return (x - params.mean) / params.scale, log_det


def unstandardize(params: StandardizationParams, y: Array) -> tuple[Array, Array]:
    """``x = mean + scale * y`` and ``log|det dx/dy| = sum(log scale)``.

    When whitening, ``x = mean + L y``.

    Args:
        params: the statistics, ``(n_dim,)`` each.
        y: ``(n_dim,)`` standardised event.

    Returns:
        ``x`` of shape ``(n_dim,)`` and the scalar log-determinant.
    """
    log_det = jnp.sum(jnp.log(params.scale))
    if params.cholesky is not None:
        return params.mean + params.cholesky @ y, log_det
    return params.mean + params.scale * y, log_det
