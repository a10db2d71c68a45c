"""Static sampler configuration: counts and training settings, validated on construction."""

from __future__ import annotations

import dataclasses

from flowmc_like import _validation

__all__ = ["SamplerConfig"]


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """Every count and training setting of a run (no arrays; hashable).

    Attributes:
        n_training_loops: loops of (local phase, global phase, training) while adapting;
            None (the default): the run decides (`flowmc_like.schedule`), between
            ``MIN_TRAINING_LOOPS`` and ``max_training_loops``.
        n_production_loops: loops of (local phase, global phase) with everything frozen;
            their draws are the result. None (the default): production runs until every
            coordinate has a bulk ESS of ``target_ess`` and an R-hat of at most
            ``target_rhat``, or ``max_production_loops`` loops.
        max_training_loops: the cap on automatic training loops.
        max_production_loops: the cap on automatic production loops.
        target_ess: the bulk ESS every coordinate must reach for automatic production to end.
        target_rhat: the R-hat every coordinate must be at or below for it to end.
        n_local_steps: local-kernel steps per loop (0: global moves only).
        n_global_steps: independence-MH proposals per chain per loop.
        n_epochs: passes over the training examples per training loop.
        batch_size: examples per optimiser step (clamped to ``n_max_examples``).
        learning_rate: Adam learning rate.
        n_max_examples: training examples resampled from the window each loop.
        n_window_loops: the training window holds the draws of this many most recent loops.
            None (the default): for a continuous flow ``n_dim // 8`` clipped to [3, 20], for
            a discrete model 3
            (a flow in more dimensions needs more draws to fit the covariance it whitens
            with: on a 64-D Gaussian 8 loops instead of 3 raised the global acceptance from
            0.15 to 0.38).
        global_chunk_size: proposals evaluated per vmapped batch in the global phase.
        reverse_kl_weight: weight ``lambda >= 0`` of a reverse-KL (variational) term added to
            the maximum-likelihood loss, ``NLL + lambda * KL(q || p)``, estimated from
            ``batch_size`` fresh model draws per optimiser step (0: off).
        n_variational_steps: optimiser steps of variational pre-training before the first
            loop (`flowmc_like.training.variational`): the model is fitted to the target by
            reverse KL from its own draws, with the target annealed as ``p^beta``, ``beta``
            rising linearly to 1. None (the default): for a discrete model, annealing over
            ``ANNEAL_STEPS`` steps, then on until the estimated acceptance levels off
            (at most ``MAX_STEPS``); for a continuous flow none. 0: none. Skipped when the
            run starts from an earlier run's model (``warm_start``).
        validation_fraction: fraction of the chains (at least one) held out each training
            loop to validate the model; each loop keeps the epoch with the lowest validation
            loss (early stopping). 0 disables it (as does a single chain).
        local_in_latent_space: run the local kernel in the flow's base space (the trained
            flow as a preconditioner); needs a continuous flow model. None (the default): the
            run decides (`flowmc_like.schedule.latent_decision`): in the flow's space from the
            first loop after a successful training update, when the model is a flow and the
            loop takes local and global steps; in ``x``-space otherwise.
        n_temperatures: ``K >= 1`` levels of replica-exchange tempering
            (`flowmc_like.tempering`): every chain gets ``K - 1`` replicas at hotter
            temperatures that exchange positions with it; 1 (the default) is no tempering.
        max_temperature: the hottest level's temperature ``1 / beta_{K-1} > 1`` when the
            whole density is tempered; None (the default): 100 without a ``log_prior``,
            infinite (the hottest replica samples the prior) with one.
        thinning: keep every ``thinning``-th draw of each local and global phase (the
            draws at steps ``thinning - 1, 2 * thinning - 1, ...``); the model trains on the
            kept draws. Acceptance rates and non-finite counts still cover every step.
        progress_bar: show a tqdm progress bar.
    """

    n_training_loops: int | None = None
    n_production_loops: int | None = None
    max_training_loops: int = 50
    max_production_loops: int = 100
    target_ess: float = 1000.0
    target_rhat: float = 1.01
    n_local_steps: int = 50
    n_global_steps: int = 25
    n_epochs: int = 5
    batch_size: int = 1024
    learning_rate: float = 1e-3
    n_max_examples: int = 8192
    n_window_loops: int | None = None
    global_chunk_size: int = 4096
    reverse_kl_weight: float = 0.0
    n_variational_steps: int | None = None
    validation_fraction: float = 0.2
    local_in_latent_space: bool | None = None
    n_temperatures: int = 1
    max_temperature: float | None = None
    thinning: int = 1
    progress_bar: bool = True

    def __post_init__(self) -> None:
        owner = "Sampler"  # the Sampler's keyword arguments are checked here
        for name in ("n_training_loops", "n_production_loops", "n_window_loops"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _validation.check_int(name, value, owner=owner))
        for name in (
            "max_training_loops",
            "max_production_loops",
            "n_epochs",
            "batch_size",
            "n_max_examples",
            "global_chunk_size",
            "thinning",
            "n_temperatures",
        ):
            object.__setattr__(
                self, name, _validation.check_int(name, getattr(self, name), owner=owner)
            )
        if self.n_variational_steps is not None:
            object.__setattr__(
                self,
                "n_variational_steps",
                _validation.check_int(
                    "n_variational_steps", self.n_variational_steps, minimum=0, owner=owner
                ),
            )
        for name in ("n_local_steps", "n_global_steps"):
            object.__setattr__(
                self,
                name,
                _validation.check_int(name, getattr(self, name), minimum=0, owner=owner),
            )
        if self.n_local_steps + self.n_global_steps < 1:
            raise ValueError(
                f"{owner}: n_local_steps + n_global_steps must be >= 1 (each loop must take a "
                f"step); got n_local_steps={self.n_local_steps}, "
                f"n_global_steps={self.n_global_steps}"
            )
        for name, n_steps in (
            ("n_local_steps", self.n_local_steps),
            ("n_global_steps", self.n_global_steps),
        ):
            if 0 < n_steps < self.thinning:
                raise ValueError(
                    f"{owner}: thinning={self.thinning} keeps every {self.thinning}-th draw of "
                    f"each phase, so it must be at most {name}={n_steps} (every phase keeps "
                    f"at least one draw); lower thinning or raise {name}"
                )
        floats = {
            "learning_rate": {"minimum": 0.0, "open_minimum": True},
            "reverse_kl_weight": {"minimum": 0.0},
            "validation_fraction": {"minimum": 0.0, "maximum": 1.0, "open_maximum": True},
            "target_ess": {"minimum": 0.0, "open_minimum": True},
            "target_rhat": {"minimum": 1.0, "open_minimum": True},
        }
        for name, bounds in floats.items():
            value = _validation.check_float(name, getattr(self, name), owner=owner, **bounds)
            object.__setattr__(self, name, value)
        if self.max_temperature is not None:
            value = _validation.check_float(
                "max_temperature", self.max_temperature, owner=owner, minimum=1.0,
                open_minimum=True,
            )  # fmt: skip
            object.__setattr__(self, "max_temperature", value)
        if self.local_in_latent_space is not None:
            object.__setattr__(
                self,
                "local_in_latent_space",
                _validation.check_bool(
                    "local_in_latent_space", self.local_in_latent_space, owner=owner
                ),
            )
        progress_bar = _validation.check_bool("progress_bar", self.progress_bar, owner=owner)
        object.__setattr__(self, "progress_bar", progress_bar)

    @property
    def is_tempered(self) -> bool:
        """Whether the run has hot replicas (``n_temperatures > 1``)."""
        return self.n_temperatures > 1

    @property
    def training_cap(self) -> int:
        """The most training loops the run can have (``n_training_loops`` if set)."""
        return self.max_training_loops if self.n_training_loops is None else self.n_training_loops

    @property
    def production_cap(self) -> int:
        """The most production loops the run can have (``n_production_loops`` if set)."""
        if self.n_production_loops is None:
            return self.max_production_loops
        return self.n_production_loops

    @property
    def n_loops_cap(self) -> int:
        """The most loops the run can have: keys are drawn for this many."""
        return self.training_cap + self.production_cap

    def window_loops(self, n_dim: int, is_flow: bool = True) -> int:
        """Loops in the training window: ``n_window_loops``, or chosen from ``n_dim``.

        The automatic window grows with ``n_dim`` for a continuous flow (which fits a
        covariance to the draws); a discrete model keeps 3 loops.
        """
        if self.n_window_loops is not None:
            return self.n_window_loops
        return min(max(n_dim // 8, 3), 20) if is_flow else 3

    def n_statistics_examples(self, n_chains: int, n_dim: int) -> int:
        """Draws the model's statistics (mean, whitening covariance) are fitted to per loop.

        ``2 * n_dim**2`` (a covariance estimated from ``N`` draws costs a Gaussian proposal
        about ``n_dim**2 / (4 N)`` nats of KL), at least ``n_max_examples``, at most the
        training window; ``n_max_examples`` when that is all there is.
        """
        window = n_chains * self.window_loops(n_dim) * self.n_draws_per_loop
        return min(window, max(self.n_max_examples, 2 * n_dim * n_dim))

    @property
    def effective_batch_size(self) -> int:
        """``batch_size`` clamped to ``n_max_examples``."""
        return min(self.batch_size, self.n_max_examples)

    def n_held_out_chains(self, n_chains: int) -> int:
        """Chains held out for validation from ``n_chains``.

        ``round(validation_fraction * n_chains)``, at least 1 when the fraction is positive,
        at most ``n_chains - 2``; 0 when the fraction is 0 or there are fewer than 3 chains.
        """
        if self.validation_fraction <= 0 or n_chains < 3:
            return 0
        return int(min(max(round(self.validation_fraction * n_chains), 1), n_chains - 2))

    @property
    def n_kept_local(self) -> int:
        """Local draws recorded per chain per loop (after thinning)."""
        return self.n_local_steps // self.thinning

    @property
    def n_kept_global(self) -> int:
        """Global draws recorded per chain per loop (after thinning)."""
        return self.n_global_steps // self.thinning

    @property
    def n_draws_per_loop(self) -> int:
        """Draws recorded per chain per loop, local then global (after thinning)."""
        return self.n_kept_local + self.n_kept_global
