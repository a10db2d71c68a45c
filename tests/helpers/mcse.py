"""Monte Carlo standard-error z-scores with ArviZ effective sample sizes."""

from __future__ import annotations

import numpy as np

from flowmc_like.exporters.arviz import ess_bulk

__all__ = ["iid_z_scores", "mean_z_scores", "variance_z_scores"]


def mean_z_scores(draws: np.ndarray, true_mean: np.ndarray, true_sd: np.ndarray) -> np.ndarray:
    """``(mean_est - true_mean) / (true_sd / sqrt(ESS))`` per dimension.

    Args:
        draws: ``(n_chains, n_draws, n_dim)``.
        true_mean: ``(n_dim,)`` exact mean.
        true_sd: ``(n_dim,)`` exact standard deviations.

    Returns:
        ``(n_dim,)`` z-scores; a correct sampler gives |z| below about 4.
    """
    draws = np.asarray(draws, dtype=np.float64)
    ess = ess_bulk(draws)
    estimate = draws.mean(axis=(0, 1))
    return (estimate - np.asarray(true_mean)) / (np.asarray(true_sd) / np.sqrt(ess))


def variance_z_scores(
    draws: np.ndarray, true_mean: np.ndarray, true_var: np.ndarray, kurtosis: float = 3.0
) -> np.ndarray:
    """z-scores of the variance estimate, from the ESS of the squared deviations.

    The estimator is mean((x - mu)^2) with the exact mean mu; its standard deviation per draw
    is ``var * sqrt(kurtosis - 1)`` (``sqrt(2) var`` for a Gaussian).

    Args:
        draws: ``(n_chains, n_draws, n_dim)``.
        true_mean: ``(n_dim,)`` exact mean.
        true_var: ``(n_dim,)`` exact variances.
        kurtosis: the marginals' kurtosis (3 for Gaussians).

    Returns:
        ``(n_dim,)`` z-scores.
    """
    squared = (np.asarray(draws, dtype=np.float64) - np.asarray(true_mean)) ** 2
    ess = ess_bulk(squared)
    estimate = squared.mean(axis=(0, 1))
    sd_per_draw = np.asarray(true_var) * np.sqrt(kurtosis - 1.0)
    return (estimate - np.asarray(true_var)) / (sd_per_draw / np.sqrt(ess))


def iid_z_scores(values: np.ndarray, mean: float, variance: float) -> tuple[float, float]:
    """z of the sample mean and sample variance of independent Gaussian ``values``.

    Args:
        values: independent draws (any shape; all are pooled).
        mean: their exact mean.
        variance: their exact variance (the variance's z assumes Gaussian draws).

    Returns:
        ``(z_mean, z_variance)``; a correct draw gives both below about 4 in size.
    """
    n = values.size
    z_mean = (values.mean() - mean) / np.sqrt(variance / n)
    z_variance = (values.var(ddof=1) - variance) / (variance * np.sqrt(2 / (n - 1)))
    return float(z_mean), float(z_variance)
