"""Metrics of ``docs/spec/BENCHMARKS.md`` computed from production draws and an exact reference.

All statistics use every production draw of every chain, ``draws`` shaped
``(n_chains, n_draws, n_dim)``; ESS and R-hat are ArviZ's (rank-normalised bulk/tail ESS,
rank-normalised split R-hat).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import arviz as az
import numpy as np

from benchmarks.targets import Target

__all__ = ["compute_metrics", "ess_and_rhat", "mode_weights"]


def ess_and_rhat(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension ArviZ ``ess_bulk``, ``ess_tail`` and ``r_hat`` of ``(chains, draws, dim)``."""
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim != 3:
        raise ValueError(f"draws must be (n_chains, n_draws, n_dim), got {draws.shape}")
    ds = az.convert_to_dataset({"x": draws})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns on constant chains etc.; NaN says enough
        bulk = az.ess(ds, method="bulk")["x"].values
        tail = az.ess(ds, method="tail")["x"].values
        rhat = az.rhat(ds)["x"].values
    return {"ess_bulk": np.asarray(bulk), "ess_tail": np.asarray(tail), "r_hat": np.asarray(rhat)}


def mode_weights(draws: np.ndarray, target: Target) -> np.ndarray:
    """Fraction of all draws whose nearest mode centre is each of the target's centres."""
    labels = target.assign_modes(np.asarray(draws).reshape(-1, target.n_dim))
    n_modes = len(target.mode_centres)  # type: ignore[arg-type]
    return np.bincount(labels, minlength=n_modes) / labels.size


def _nanmin(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=float)
    return float("nan") if np.all(np.isnan(a)) else float(np.nanmin(a))


def _nanmax(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=float)
    return float("nan") if np.all(np.isnan(a)) else float(np.nanmax(a))


def _ratio(num: float, den: float | None) -> float | None:
    if den is None or not den > 0 or not math.isfinite(num):
        return None
    return num / den


def compute_metrics(
    draws: np.ndarray,
    target: Target,
    wall_seconds: float | None = None,
    n_evals: float | None = None,
    n_evals_production: float | None = None,
) -> dict[str, Any]:
    """All benchmark metrics of ``draws`` against ``target``'s exact reference.

    Args:
        draws: ``(n_chains, n_draws, n_dim)`` production draws.
        target: the benchmark target (reference mean, sd, modes).
        wall_seconds: wall time of the whole run (compile + warm-up/training + sampling);
            gives ``ess_per_s``.
        n_evals: target evaluations (log_prob calls, with or without gradient) of the whole
            run; gives ``ess_per_1k_evals``.
        n_evals_production: evaluations of the production phase only; gives
            ``ess_per_1k_evals_production``.

    Returns:
        A JSON-ready dict. Per-dimension lists: ``ess_bulk``, ``ess_tail``, ``r_hat``,
        ``mean_est``, ``sd_est``, ``mean_z``, ``sd_rel_err``. Scalars: ``min_ess_bulk``,
        ``min_ess_tail``, ``max_abs_z`` (max over dims of |mean_est - mean_true| /
        (sd_true / sqrt(ess_bulk))), ``max_sd_rel_err`` (max |sd_est / sd_true - 1|, on
        the target's ``scale_statistic`` where it has one; the raw ``sd_rel_err_raw`` and
        ``max_sd_rel_err_raw`` are kept),
        ``max_r_hat``, ``mode_weight_err`` (max over modes |w_est - w_true|, None without
        modes), ``ess_per_s``, ``ess_per_1k_evals``, ``ess_per_1k_evals_production``,
        ``n_nonfinite`` (draws with a NaN/inf coordinate; they are kept, so they show up
        as NaN statistics rather than being hidden).
    """
    x = np.asarray(draws, dtype=np.float64)
    n_chains, n_draws, n_dim = x.shape
    if n_dim != target.n_dim:
        raise ValueError(f"draws have n_dim={n_dim}, target {target.name} has {target.n_dim}")
    er = ess_and_rhat(x)
    flat = x.reshape(-1, n_dim)
    mean_est = flat.mean(axis=0)
    sd_est = flat.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(mean_est - target.mean) / (target.sd / np.sqrt(er["ess_bulk"]))
        sd_err_raw = np.abs(sd_est / target.sd - 1.0)
        sd_err = sd_err_raw
        if target.scale_statistic is not None and target.scale_statistic_sd is not None:
            scale_sd = target.scale_statistic(flat).std(axis=0, ddof=1)
            sd_err = np.abs(scale_sd / target.scale_statistic_sd - 1.0)
    out: dict[str, Any] = {
        "n_chains": n_chains,
        "n_draws": n_draws,
        "n_dim": n_dim,
        "n_nonfinite": int(np.sum(~np.all(np.isfinite(flat), axis=-1))),
        "ess_bulk": er["ess_bulk"].tolist(),
        "ess_tail": er["ess_tail"].tolist(),
        "r_hat": er["r_hat"].tolist(),
        "mean_est": mean_est.tolist(),
        "sd_est": sd_est.tolist(),
        "mean_z": z.tolist(),
        "sd_rel_err": sd_err.tolist(),
        "sd_rel_err_raw": sd_err_raw.tolist(),
        "min_ess_bulk": _nanmin(er["ess_bulk"]),
        "min_ess_tail": _nanmin(er["ess_tail"]),
        "max_abs_z": _nanmax(z),
        "max_sd_rel_err": _nanmax(sd_err),
        "max_sd_rel_err_raw": _nanmax(sd_err_raw),
        "max_r_hat": _nanmax(er["r_hat"]),
        "mode_weights_est": None,
        "mode_weights_true": None,
        "mode_weight_err": None,
    }
    if target.mode_centres is not None and target.mode_weights is not None:
        w = mode_weights(x, target)
        out["mode_weights_est"] = w.tolist()
        out["mode_weights_true"] = np.asarray(target.mode_weights).tolist()
        out["mode_weight_err"] = float(np.max(np.abs(w - target.mode_weights)))
        # Per-chain view: how many chains ever visit more than one mode.
        labels = target.assign_modes(x)
        out["chains_visiting_several_modes"] = int(
            sum(len(np.unique(labels[c])) > 1 for c in range(n_chains))
        )
    out["ess_per_s"] = _ratio(out["min_ess_bulk"], wall_seconds)
    e1k = _ratio(out["min_ess_bulk"], n_evals)
    out["ess_per_1k_evals"] = None if e1k is None else 1000.0 * e1k
    e1kp = _ratio(out["min_ess_bulk"], n_evals_production)
    out["ess_per_1k_evals_production"] = None if e1kp is None else 1000.0 * e1kp
    return out
