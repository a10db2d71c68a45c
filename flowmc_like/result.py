"""Host-side results: numpy arrays, per-loop history, ArviZ export."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from flowmc_like.adapters.pytree import PositionSpec

__all__ = ["History", "SamplerResult"]


@dataclasses.dataclass(frozen=True)
class History:
    """Per-loop record of a run, training loops first, then production loops.

    Attributes:
        is_training: ``(n_loops,)`` bool, true for training loops.
        loss: ``(n_loops, n_epochs)`` mean training loss per epoch (NaN where nothing was
            trained: production loops, local-only runs, discarded updates keep their losses).
        local_acceptance: ``(n_loops,)`` mean local acceptance probability over chains and steps.
        global_acceptance: ``(n_loops,)`` mean global acceptance probability (NaN if no model).
        step_size: ``(n_loops,)`` the kernel's step size (or scale) used in that loop's last step.
        training_discarded: ``(n_loops,)`` bool, true where the training update was non-finite
            and the previous model was kept.
        local_nonfinite: ``(n_loops,)`` int, local proposals (over all chains) rejected
            because the target's log density, or the move's log ratio, was NaN or infinite.
        global_nonfinite: ``(n_loops,)`` int, the same for global proposals (a NaN or
            infinite target or model density).
    """

    is_training: np.ndarray
    loss: np.ndarray
    local_acceptance: np.ndarray
    global_acceptance: np.ndarray
    step_size: np.ndarray
    training_discarded: np.ndarray
    local_nonfinite: np.ndarray
    global_nonfinite: np.ndarray

    @property
    def n_training_discarded(self) -> int:
        """How many training loops had their update discarded."""
        return int(np.sum(self.training_discarded))

    @property
    def n_nonfinite_rejected(self) -> int:
        """How many proposals, local and global, were rejected for a non-finite value."""
        return int(np.sum(self.local_nonfinite) + np.sum(self.global_nonfinite))

    def as_dict(self) -> dict[str, np.ndarray]:
        """The fields as a plain dict of numpy arrays."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class SamplerResult:
    """Everything a run produced, as numpy arrays.

    Positions are stored flat; `samples` and `warmup_samples` return them in the layout of
    ``initial_position`` (an array ``(n_chains, n_draws, n_dim)`` or the same pytree with
    leaves ``(n_chains, n_draws, *leaf_shape)``).

    Attributes:
        flat_samples: ``(n_chains, n_draws, n_dim)`` production draws.
        log_prob: ``(n_chains, n_draws)`` target log density of each production draw.
        is_accepted: ``(n_chains, n_draws)`` bool, the move that produced each draw was accepted.
        is_global: ``(n_chains, n_draws)`` bool, the draw came from the global move.
        flat_warmup_samples: ``(n_chains, n_warmup_draws, n_dim)`` training-loop draws.
        warmup_log_prob: ``(n_chains, n_warmup_draws)``.
        warmup_is_accepted: ``(n_chains, n_warmup_draws)`` bool.
        warmup_is_global: ``(n_chains, n_warmup_draws)`` bool.
        local_acceptance: ``(n_chains,)`` mean local acceptance probability in production.
        global_acceptance: ``(n_chains,)`` mean global acceptance probability in production
            (NaN without a global model).
        history: per-loop `History`.
        timings: wall seconds: ``compile``, ``training``, ``production``, ``total``.
        kernel_params: the frozen kernel params used in production (numpy pytree).
        model_params: the final model params (numpy pytree), or None without a model.
        position_spec: how flat positions map to the user's layout and names.
        constrain: for a target from `flowmc_like.from_numpyro` / `from_pymc`, the map from
            flat unconstrained draws ``(..., n_dim)`` to the model's named, constrained
            values; None otherwise.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import flowmc_like as fm
        >>> sampler = fm.Sampler(lambda x: -0.5 * jnp.sum(x**2), n_dim=3, n_chains=4,
        ...                      global_model=None, n_training_loops=1, n_production_loops=2,
        ...                      n_local_steps=10, progress_bar=False)
        >>> result = sampler.run(jax.random.key(0), jnp.zeros((4, 3)))
        >>> result.samples.shape, result.log_prob.shape, result.history.is_training.tolist()
        ((4, 20, 3), (4, 20), [True, False, False])
        >>> sorted(result.to_arviz().sample_stats.data_vars)
        ['accepted', 'is_global', 'lp']
    """

    flat_samples: np.ndarray
    log_prob: np.ndarray
    is_accepted: np.ndarray
    is_global: np.ndarray
    flat_warmup_samples: np.ndarray
    warmup_log_prob: np.ndarray
    warmup_is_accepted: np.ndarray
    warmup_is_global: np.ndarray
    local_acceptance: np.ndarray
    global_acceptance: np.ndarray
    history: History
    timings: dict[str, float]
    kernel_params: Any
    model_params: Any
    position_spec: PositionSpec
    constrain: Callable[[Any], dict[str, np.ndarray]] | None = None

    @property
    def samples(self) -> Any:
        """Production draws in the layout of ``initial_position``.

        For a PPL target: ``{name: (n_chains, n_draws, *shape)}`` of constrained values
        (deterministic sites included); the unconstrained draws are ``flat_samples``.
        """
        if self.constrain is not None:
            return self.constrain(self.flat_samples)
        return self.position_spec.to_user(self.flat_samples)

    @property
    def warmup_samples(self) -> Any:
        """Training-loop draws in the layout of ``initial_position`` (constrained for PPLs)."""
        if self.constrain is not None:
            return self.constrain(self.flat_warmup_samples)
        return self.position_spec.to_user(self.flat_warmup_samples)

    @property
    def n_chains(self) -> int:
        """Number of chains."""
        return int(self.flat_samples.shape[0])

    @property
    def n_draws(self) -> int:
        """Production draws per chain."""
        return int(self.flat_samples.shape[1])

    def to_arviz(self, var_names: list[str] | tuple[str, ...] | None = None) -> Any:
        """ArviZ export with groups ``posterior``, ``sample_stats``, ``warmup_posterior``.

        Args:
            var_names: for array positions, one name per dimension (each becomes a scalar
                variable); for pytree positions, the subset of leaf names to keep. By default
                array positions become one variable ``x`` with dim ``x_dim_0`` and pytree
                positions one variable per leaf, named after its key path.

        Returns:
            ``arviz.InferenceData`` (arviz 0.x) or an ``xarray.DataTree`` (arviz 1.x), with
            dims ``(chain, draw, ...)`` and ``sample_stats`` variables ``lp``, ``accepted``
            and ``is_global``.
        """
        from flowmc_like.adapters.arviz import to_inference_data

        return to_inference_data(self, var_names)

    def summary(self, var_names: list[str] | tuple[str, ...] | None = None, **kwargs: Any) -> Any:
        """``arviz.summary`` of the production draws (mean, sd, hdi, ess_bulk, ess_tail, r_hat).

        Args:
            var_names: as in `to_arviz`.
            **kwargs: passed to ``arviz.summary``.

        Returns:
            A pandas DataFrame.
        """
        from flowmc_like.adapters.arviz import summarize

        return summarize(self.to_arviz(var_names), **kwargs)

    def plot_diagnostics(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Training loss, local and global acceptance and step size per loop, in one figure.

        Production loops are shaded grey. Pair and trace plots of the draws go through ArviZ
        (``az.plot_pair(result.to_arviz())``).

        Args:
            path: if given, the figure is written there (format from the suffix, e.g. PNG).

        Returns:
            The ``matplotlib.figure.Figure``.
        """
        from flowmc_like.adapters.plotting import plot_history

        return plot_history(self.history, path)
