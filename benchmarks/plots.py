"""PNG figures for the benchmark report (matplotlib, Agg backend, imported lazily).

- `plot_ess_per_s`: grouped bars of ESS/s per target and sampler, log y axis, the median over
  seeds with min/max whiskers (continuous targets: min over dimensions of bulk ESS; lattice
  cases: min of the bulk ESS of E and |m|; both over the whole run's wall time).
- `plot_samples`: for a 2-D target, one panel per sampler: a thinned subset of its production
  draws over contours of the true density (``exp(log_prob)`` on a grid, normalised to its
  maximum; contour levels at 1e-4 ... 0.5 of the peak).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import DISPLAY

__all__ = ["plot_ess_per_s", "plot_samples"]

COLOURS = {
    "flowmc_like": "#1f77b4",
    "flowmc": "#ff7f0e",
    "nuts": "#2ca02c",
    "metropolis": "#9467bd",
    "wolff": "#8c564b",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ess_per_s(
    records: Sequence[dict[str, Any]], samplers: Sequence[str], path: str | Path
) -> Path | None:
    """Grouped bar chart of ESS/s; returns the path, or None if no run has an ESS/s."""
    plt = _pyplot()
    targets = list(dict.fromkeys(r["target"] for r in records))
    stats: dict[tuple[str, str], tuple[float, float, float]] = {}
    for t in targets:
        for s in samplers:
            vals = [
                r["metrics"]["ess_per_s"]
                for r in records
                if r["target"] == t and r["sampler"] == s and r.get("ok")
            ]
            vals = [v for v in vals if v is not None and math.isfinite(v) and v > 0]
            if vals:
                stats[(t, s)] = (float(np.median(vals)), min(vals), max(vals))
    if not stats:
        return None
    present = [s for s in samplers if any((t, s) in stats for t in targets)]
    width = 0.8 / max(len(present), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(targets) + 2), 4.2))
    x = np.arange(len(targets))
    for j, s in enumerate(present):
        xs, med, lo, hi = [], [], [], []
        for i, t in enumerate(targets):
            if (t, s) in stats:
                m, a, b = stats[(t, s)]
                xs.append(x[i] + (j - (len(present) - 1) / 2) * width)
                med.append(m)
                lo.append(m - a)
                hi.append(b - m)
        ax.bar(
            xs,
            med,
            width,
            yerr=[lo, hi],
            capsize=2,
            label=DISPLAY.get(s, s),
            color=COLOURS.get(s),
        )
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(targets, rotation=30, ha="right")
    ax.set_ylabel("ESS / s (whole run)")
    ax.set_title("ESS per second: median over seeds, whiskers min/max")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bounds(target: Any, draws: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Union of the exact mean +- 2 sd, +-2.5 around every mode centre and the draws' 0.5-99.5 %
    ranges (so a sampler that misses part of the mass shows it), clipped to mean +- 6 sd."""
    mean, sd = np.asarray(target.mean), np.asarray(target.sd)
    boxes = [(mean - 2.0 * sd, mean + 2.0 * sd)]
    boxes += [
        (np.percentile(d, 0.5, axis=0), np.percentile(d, 99.5, axis=0)) for d in draws if len(d)
    ]
    if target.mode_centres is not None:
        c = np.asarray(target.mode_centres)
        boxes.append((c.min(axis=0) - 2.5, c.max(axis=0) + 2.5))
    lo = np.maximum(np.min([b[0] for b in boxes], axis=0), mean - 6.0 * sd)
    hi = np.minimum(np.max([b[1] for b in boxes], axis=0), mean + 6.0 * sd)
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def plot_samples(
    target_name: str, draws_by_sampler: dict[str, np.ndarray], path: str | Path
) -> Path | None:
    """Scatter of each sampler's thinned draws over the true density's contours."""
    if not draws_by_sampler:
        return None
    import jax
    import jax.numpy as jnp

    from benchmarks.targets import get_target

    plt = _pyplot()
    target = get_target(target_name)
    if target.n_dim != 2:
        raise ValueError(f"{target_name} is not 2-D")
    draws = [np.asarray(d, dtype=float) for d in draws_by_sampler.values()]
    lo, hi = _bounds(target, draws)
    g0, g1 = np.linspace(lo[0], hi[0], 500), np.linspace(lo[1], hi[1], 500)
    xx, yy = np.meshgrid(g0, g1)
    grid = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=-1), dtype=jnp.float32)
    logp = np.asarray(jax.jit(jax.vmap(target.log_prob))(grid), dtype=float).reshape(xx.shape)
    dens = np.exp(logp - np.nanmax(logp))
    n = len(draws_by_sampler)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.6), squeeze=False, sharex=True, sharey=True)
    for ax, (s, d) in zip(axes[0], draws_by_sampler.items(), strict=True):
        ax.contour(xx, yy, dens, levels=[1e-4, 1e-3, 1e-2, 0.1, 0.5], colors="0.4", linewidths=0.7)
        d = np.asarray(d, dtype=float)
        ax.scatter(d[:, 0], d[:, 1], s=3, alpha=0.5, color=COLOURS.get(s, "C0"))
        ax.set_title(f"{DISPLAY.get(s, s)} ({len(d)} draws)", fontsize=9)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    axes[0][0].set_ylabel(f"{target_name}: x1")
    for ax in axes[0]:
        ax.set_xlabel("x0")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
