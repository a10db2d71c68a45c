"""Analytic targets with exactly known moments or mode weights, for tests and examples."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array

__all__ = ["GaussianTarget", "MixtureTarget", "correlated_gaussian", "two_mode_mixture"]


@dataclasses.dataclass(frozen=True)
class GaussianTarget:
    """A multivariate normal N(mean, cov) with its exact moments.

    Attributes:
        log_prob: ``(n_dim,)`` -> scalar unnormalised log density.
        mean: ``(n_dim,)``.
        cov: ``(n_dim, n_dim)``.
    """

    log_prob: Callable[[Array], Array]
    mean: np.ndarray
    cov: np.ndarray

    @property
    def n_dim(self) -> int:
        """Dimension."""
        return int(self.mean.shape[0])

    @property
    def sd(self) -> np.ndarray:
        """Marginal standard deviations ``(n_dim,)``."""
        return np.sqrt(np.diag(self.cov))


def correlated_gaussian(n_dim: int = 5, seed: int = 0, max_scale: float = 2.0) -> GaussianTarget:
    """A correlated Gaussian with scales in [0.5, max_scale] and a random correlation matrix.

    Args:
        n_dim: dimension.
        seed: numpy seed for the mean, scales and correlations.
        max_scale: largest marginal standard deviation.

    Returns:
        The target with exact mean and covariance.
    """
    rng = np.random.default_rng(seed)
    mean = rng.uniform(-2.0, 2.0, n_dim)
    factor = rng.normal(size=(n_dim, n_dim))
    corr = factor @ factor.T + 0.5 * np.eye(n_dim)
    d = np.sqrt(np.diag(corr))
    corr = corr / d[:, None] / d[None, :]
    scales = np.linspace(0.5, max_scale, n_dim)
    cov = corr * scales[:, None] * scales[None, :]
    precision = np.linalg.inv(cov)

    def log_prob(x: Array) -> Array:
        delta = x - jnp.asarray(mean, dtype=x.dtype)
        return -0.5 * delta @ (jnp.asarray(precision, dtype=x.dtype) @ delta)

    return GaussianTarget(log_prob=log_prob, mean=mean, cov=cov)


@dataclasses.dataclass(frozen=True)
class MixtureTarget:
    """A mixture of isotropic unit-free Gaussians with known weights.

    Attributes:
        log_prob: ``(n_dim,)`` -> scalar normalised log density.
        centres: ``(n_modes, n_dim)``.
        weights: ``(n_modes,)``.
        scale: common component standard deviation.
    """

    log_prob: Callable[[Array], Array]
    centres: np.ndarray
    weights: np.ndarray
    scale: float

    def mode_weights(self, draws: np.ndarray) -> np.ndarray:
        """Fraction of draws ``(..., n_dim)`` nearest to each centre -> ``(n_modes,)``."""
        flat = np.asarray(draws).reshape(-1, self.centres.shape[1])
        distance = ((flat[:, None, :] - self.centres[None]) ** 2).sum(-1)
        nearest = np.argmin(distance, axis=1)
        return np.bincount(nearest, minlength=len(self.weights)) / len(nearest)


def two_mode_mixture(
    n_dim: int = 10, offset: float = 2.5, weights: tuple[float, float] = (0.3, 0.7)
) -> MixtureTarget:
    """``w0 N(-offset*1, I) + w1 N(+offset*1, I)`` in ``n_dim`` dimensions."""
    centres = np.stack([-offset * np.ones(n_dim), offset * np.ones(n_dim)])
    log_weights = np.log(np.asarray(weights))

    def log_prob(x: Array) -> Array:
        c = jnp.asarray(centres, dtype=x.dtype)
        log_components = -0.5 * jnp.sum((x - c) ** 2, axis=-1) - 0.5 * n_dim * jnp.log(2 * jnp.pi)
        return jax.nn.logsumexp(log_components + jnp.asarray(log_weights, dtype=x.dtype))

    return MixtureTarget(log_prob=log_prob, centres=centres, weights=np.asarray(weights), scale=1.0)
