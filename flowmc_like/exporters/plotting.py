"""The only module that imports matplotlib (lazily): the run's per-loop diagnostics figure."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from flowmc_like.records import History

__all__ = ["plot_history"]


def _import_figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - matplotlib comes with arviz 0.x
        raise ImportError("plot_diagnostics needs matplotlib: pip install matplotlib") from error
    return Figure


def _last_finite(row: np.ndarray) -> float:
    finite = row[np.isfinite(row)]
    return float(finite[-1]) if finite.size else float("nan")


def _shade_production(ax: Any, is_training: np.ndarray) -> None:
    """Grey background over the production loops, so the two stages read apart."""
    n_training = int(np.sum(is_training))
    if n_training < is_training.size:
        ax.axvspan(n_training + 0.5, is_training.size + 0.5, color="0.92", zorder=0)


def plot_history(history: History, path: str | os.PathLike[str] | None = None) -> Any:
    """Panels with one point per loop: training loss, local and global acceptance, step size.

    With tempering, a third row shows the exchange acceptance of each pair of neighbouring
    temperature levels and the ladder (inverse temperature of each level), with the round
    trips of the run in its title.

    Args:
        history: a run's `History` (``n_loops`` entries, training loops first).
        path: if given, the figure is also written there (the format follows the suffix,
            e.g. ``.png``, ``.pdf``).

    Returns:
        The ``matplotlib.figure.Figure`` (built without pyplot: no window opens and the
        global backend is left alone).
    """
    figure_class = _import_figure()
    loops = np.arange(1, history.is_training.size + 1)
    is_tempered = np.asarray(history.exchange_rate).size > 0
    n_rows = 3 if is_tempered else 2
    figure = figure_class(figsize=(10, 3.25 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, 2, sharex=True)
    loss = np.asarray(history.loss, dtype=float)
    trained = np.any(np.isfinite(loss), axis=1) if loss.size else np.zeros(loops.size, bool)

    ax = axes[0, 0]
    if np.any(trained):
        last = np.array([_last_finite(row) for row in loss])
        ax.plot(loops[trained], last[trained], "o-", ms=3, label="last epoch")
        discarded = np.asarray(history.training_discarded, dtype=bool) & trained
        if np.any(discarded):
            ax.plot(loops[discarded], last[discarded], "rx", ms=8, label="update discarded")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no model trained", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("training loss (NLL per example)")

    ax = axes[0, 1]
    ax.plot(loops, history.local_acceptance, "o-", ms=3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("local acceptance")

    ax = axes[1, 0]
    if np.any(np.isfinite(history.global_acceptance)):
        ax.plot(loops, history.global_acceptance, "o-", ms=3)
    else:
        ax.text(0.5, 0.5, "no global moves", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("global acceptance")

    ax = axes[1, 1]
    step_size = np.asarray(history.step_size, dtype=float)
    if np.any(np.isfinite(step_size)):
        ax.plot(loops, step_size, "o-", ms=3)
        if np.all(step_size[np.isfinite(step_size)] > 0):
            ax.set_yscale("log")
    ax.set_title("step size")

    if is_tempered:
        _plot_tempering(axes[2], loops, history)
    for ax in axes.ravel():
        _shade_production(ax, np.asarray(history.is_training, dtype=bool))
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("loop (grey: production)")
    if path is not None:
        figure.savefig(os.fspath(path), dpi=100)
    return figure


def _plot_tempering(axes: Any, loops: np.ndarray, history: History) -> None:
    """Exchange rates per neighbour pair, and the ladder, per loop."""
    rates = np.asarray(history.exchange_rate, dtype=float)
    ax = axes[0]
    colours = np.linspace(0.15, 0.85, rates.shape[1])
    for pair, colour in enumerate(colours):
        ax.plot(loops, rates[:, pair], "-", color=(colour, 0.3, 1 - colour), lw=1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"exchange acceptance, {rates.shape[1]} pairs (cold: blue)")
    ax = axes[1]
    ladder = np.asarray(history.ladder, dtype=float)
    for level in range(1, ladder.shape[1]):
        ax.plot(loops, ladder[:, level], "-", color="0.3", lw=1)
    if np.all(ladder[:, 1:] > 0):
        ax.set_yscale("log")
    total = int(np.sum(history.round_trips))
    ax.set_title(f"ladder (inverse temperatures); {total} round trips")
