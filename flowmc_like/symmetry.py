"""Whether a discrete target is invariant under relabelling, so the model can be symmetrised.

An Ising model without a field is invariant under the global spin flip ``s -> 1 - s``, a
Potts model under every relabelling of its ``K`` states. A model that is not told so must
learn both (all ``K``) ordered phases separately; reverse-KL training, which is
mode-seeking, learns one. `Autoregressive(symmetric=None)` (the default) therefore asks the
run to test the target on random states and on the chains' starts before compiling, and
averages the model over the cyclic relabellings ``s -> (s + c) mod K`` when every test
holds (`resolve_symmetric`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from flowmc_like._types import Array, PyTree
from flowmc_like.models.base import AbstractGlobalModel

__all__ = ["N_RANDOM_STATES", "is_relabelling_invariant", "resolve_symmetric"]

N_RANDOM_STATES = 32
"""Uniformly random states the invariance is tested on (besides up to 32 chain starts)."""

_RELATIVE_TOLERANCE = 1e-4
"""``|log p(s) - log p(shifted s)|`` allowed, relative to ``1 + |log p(s)|`` (float32 sums)."""


def is_relabelling_invariant(
    flat_log_prob: Callable[[Array, PyTree], Array],
    data: PyTree,
    positions: np.ndarray,
    n_categories: int,
) -> bool:
    """Whether ``log p((s + c) mod K) == log p(s)`` for every tested ``s`` and ``c``.

    Args:
        flat_log_prob: the bound target ``(s (n_dim,), data) -> ()``.
        data: the run's data.
        positions: ``(n_chains, n_dim)`` int chain starts (the first 32 are tested).
        n_categories: ``K``.

    Returns:
        True when every test holds (to a relative tolerance of 1e-4) and every tested value
        is finite or matched by an equal infinity.
    """
    positions = np.asarray(positions)
    n_dim = positions.shape[1]
    rng = np.random.default_rng(0)
    random_states = rng.integers(0, n_categories, size=(N_RANDOM_STATES, n_dim))
    states = np.concatenate([positions[:32], random_states]).astype(np.int32)
    shifts = np.arange(1, n_categories, dtype=np.int32)
    shifted = (states[None, :, :] + shifts[:, None, None]) % n_categories

    @jax.jit
    def differences(states: Array, shifted: Array, data: PyTree) -> tuple[Array, Array]:
        log_p = jax.vmap(lambda s: flat_log_prob(s, data))(states)
        log_p_shifted = jax.vmap(jax.vmap(lambda s: flat_log_prob(s, data)))(shifted)
        return log_p, log_p_shifted

    log_p, log_p_shifted = (np.asarray(v, np.float64) for v in differences(states, shifted, data))
    same_infinity = np.isinf(log_p) & (log_p_shifted == log_p)
    scale = 1.0 + np.abs(np.where(np.isfinite(log_p), log_p, 0.0))
    close = np.abs(log_p_shifted - log_p) <= _RELATIVE_TOLERANCE * scale
    return bool(np.all(close | same_infinity))


def resolve_symmetric(
    model: AbstractGlobalModel | None,
    flat_log_prob: Callable[[Array, PyTree], Array],
    data: PyTree,
    positions: np.ndarray,
) -> tuple[Any, tuple[str, ...]]:
    """``model`` with ``symmetric=None`` replaced by what the target's invariance says.

    Returns:
        ``(model, choices)``: the model (unchanged unless it has a ``symmetric`` attribute
        that is None) and a sentence saying what was chosen (empty if nothing was).
    """
    if model is None or getattr(model, "symmetric", False) is not None:
        return model, ()
    k = int(model.n_categories)
    is_invariant = is_relabelling_invariant(flat_log_prob, data, positions, k)
    name = type(model).__name__
    what = "the global spin flip" if k == 2 else f"the cyclic relabelling of its {k} states"
    if is_invariant:
        choice = f"the target is invariant under {what}: {name}(symmetric=True)"
    else:
        choice = f"the target is not invariant under {what}: {name}(symmetric=False)"
    return dataclasses.replace(model, symmetric=is_invariant), (choice,)
