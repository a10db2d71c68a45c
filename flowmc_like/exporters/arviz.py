"""The only module that imports arviz (lazily); supports arviz 0.x and 1.x."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["ess_bulk", "ess_bulk_and_rhat", "pareto_k", "summarize", "to_inference_data"]


def _import_arviz() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def to_inference_data(
    posterior: dict[str, np.ndarray],
    sample_stats: dict[str, np.ndarray],
    warmup_posterior: dict[str, np.ndarray] | None = None,
    warmup_sample_stats: dict[str, np.ndarray] | None = None,
    log_likelihood: dict[str, np.ndarray] | None = None,
    observed_data: dict[str, np.ndarray] | None = None,
    constant_data: dict[str, np.ndarray] | None = None,
    posterior_predictive: dict[str, np.ndarray] | None = None,
) -> Any:
    """Build ArviZ data (InferenceData on arviz 0.x, DataTree on 1.x) from named draws.

    Args:
        posterior: ``{name: (n_chains, n_draws, ...)}`` production draws.
        sample_stats: ``{name: (n_chains, n_draws)}`` per-draw statistics.
        warmup_posterior: the training loops' draws, or None when there are none.
        warmup_sample_stats: their statistics, or None.
        log_likelihood: ``{observed site: (n_chains, n_draws, ...)}`` per-observation log
            likelihood of the production draws (what ``az.loo`` reads), or None.
        observed_data: ``{observed site: values}``, or None.
        constant_data: ``{name: values}`` of the model's covariates, or None.
        posterior_predictive: ``{observed site: (n_chains, n_draws, ...)}`` replicated
            observations, or None.

    Returns:
        The ArviZ object with ``posterior`` and ``sample_stats``, plus ``warmup_posterior``
        and ``warmup_sample_stats`` when warmup draws are given, and the other groups when
        given.
    """
    arviz = _import_arviz()
    has_warmup = warmup_posterior is not None
    if int(arviz.__version__.split(".")[0]) >= 1:
        groups = {"posterior": posterior, "sample_stats": sample_stats}
        if has_warmup:
            groups["warmup_posterior"] = warmup_posterior
            groups["warmup_sample_stats"] = warmup_sample_stats
        extra = {
            "log_likelihood": log_likelihood,
            "observed_data": observed_data,
            "constant_data": constant_data,
            "posterior_predictive": posterior_predictive,
        }
        groups.update({name: group for name, group in extra.items() if group})
        return arviz.from_dict(groups, save_warmup=has_warmup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return arviz.from_dict(
            posterior=posterior,
            sample_stats=sample_stats,
            warmup_posterior=warmup_posterior,
            warmup_sample_stats=warmup_sample_stats,
            log_likelihood=log_likelihood or None,
            observed_data=observed_data or None,
            constant_data=constant_data or None,
            posterior_predictive=posterior_predictive or None,
            save_warmup=has_warmup,
        )


def summarize(data: Any, **kwargs: Any) -> Any:
    """``arviz.summary`` on data from `to_inference_data`."""
    arviz = _import_arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return arviz.summary(data, **kwargs)


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """ArviZ bulk ESS per dimension of draws ``(n_chains, n_draws, n_dim)`` -> ``(n_dim,)``."""
    arviz = _import_arviz()
    draws = np.asarray(draws, dtype=np.float64)
    return np.array(
        [float(arviz.ess(draws[..., i], method="bulk")) for i in range(draws.shape[-1])]
    )


def ess_bulk_and_rhat(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ bulk ESS and rank-normalised split R-hat per dimension.

    Args:
        draws: ``(n_chains, n_draws, n_dim)``.

    Returns:
        ``(ess (n_dim,), rhat (n_dim,))``; NaN where a coordinate never moves.
    """
    arviz = _import_arviz()
    draws = np.asarray(draws, dtype=np.float64)
    ess = np.empty(draws.shape[-1])
    rhat = np.empty(draws.shape[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(draws.shape[-1]):
            ess[i] = float(arviz.ess(draws[..., i], method="bulk"))
            rhat[i] = float(arviz.rhat(draws[..., i]))
    return ess, rhat


MAX_PARETO_WEIGHTS = 4096
"""Most log weights `pareto_k` fits (evenly spaced over the given ones)."""


def pareto_k(log_weights: np.ndarray, max_weights: int | None = MAX_PARETO_WEIGHTS) -> float:
    """ArviZ's Pareto k-hat of importance weights given by their logs (PSIS).

    k-hat estimates the shape of the weights' right tail: below 0.5 the weights have a
    finite variance, above 0.7 the proposal is too light-tailed for the target in some
    direction (Vehtari et al., Pareto smoothed importance sampling, 2024).

    Args:
        log_weights: any shape; non-finite entries are left out, and at most
            ``max_weights`` evenly spaced ones are used (all of them for None).
        max_weights: the most weights fitted.

    Returns:
        k-hat, or NaN when fewer than 20 finite weights are given or ArviZ has no PSIS.
    """
    arviz = _import_arviz()
    values = np.asarray(log_weights, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < 20 or not hasattr(arviz, "psislw"):
        return float("nan")
    if max_weights is not None and values.size > max_weights:
        values = values[np.linspace(0, values.size - 1, max_weights).astype(int)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, k_hat = arviz.psislw(values - values.max())
    return float(np.asarray(k_hat))
