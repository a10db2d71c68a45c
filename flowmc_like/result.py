"""Host-side results: numpy arrays, per-loop history, ArviZ export."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from flowmc_like.adapters.pytree import PositionSpec
from flowmc_like.diagnostics import RunDiagnostics
from flowmc_like.exporters import arviz as arviz_export
from flowmc_like.exporters import plotting
from flowmc_like.exporters.groups import (
    DRAW_STATS,
    named_draws,
    observation_groups,
    reported_stats,
)
from flowmc_like.exporters.pointwise import evaluate_at_draws
from flowmc_like.records import History, LoopOutput

__all__ = ["DEFAULT_EVIDENCE_SAMPLES", "History", "SamplerResult", "assemble_result"]

DEFAULT_EVIDENCE_SAMPLES = 10_000
"""Model draws `SamplerResult.log_evidence` makes by default."""


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
        timings: wall seconds: ``compile``, ``training`` (the variational pre-training
            included), ``production``, ``variational`` (the pre-training alone) and ``total``.
        kernel_params: the frozen kernel params used in production (numpy pytree).
        model_params: the final model params (numpy pytree), or None without a model.
        position_spec: how flat positions map to the user's layout and names.
        constrain: for a target from `flowmc_like.from_numpyro` / `from_pymc`, the map from
            flat unconstrained draws ``(..., n_dim)`` to the model's named, constrained
            values; None otherwise.
        diagnostics: the run's verdict on itself (`RunDiagnostics`): why training and
            the run ended, the worst bulk ESS and R-hat, and any warning.
        local_kernel: the run's local kernel (its settings; None if unknown).
        global_model: the run's global model (its settings, which with ``model_params``
            rebuild the trained model), or None.
        log_density: the target's log density as the sampler had it (the user's function,
            or a PPL target's ``log_prob``), for `log_evidence`; None for a result loaded
            without its target.
        target_data: the data the run's log density took (None without).
        draw_stats: per-draw statistics of the production draws, each ``(n_chains,
            n_draws)``: ``acceptance_rate`` (the acceptance probability of the move that
            produced the draw), ``step_size`` (the local kernel's; NaN for global draws),
            ``diverging`` (bool: an `HMC` or `MALA` step whose energy error exceeded
            `flowmc_like.phases.DIVERGENCE_THRESHOLD`, as Stan and numpyro flag them),
            ``energy`` (the Hamiltonian after an `HMC` step; NaN elsewhere) and ``log_q``
            (the global model's log density at a draw a global move produced; NaN for
            local draws).
        warmup_draw_stats: the same for the training-loop draws.

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
        ['acceptance_rate', 'accepted', 'diverging', 'is_global', 'lp', 'step_size']
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
    diagnostics: RunDiagnostics | None = None
    local_kernel: Any = None
    global_model: Any = None
    log_density: Any = None
    target_data: Any = None
    draw_stats: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    warmup_draw_stats: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def last_positions(self) -> Any:
        """The last production draw of each chain, ``(n_chains, n_dim)`` or the pytree.

        In the layout ``initial_position`` had (unconstrained for a PPL target), so it can
        start another run: ``sampler.run(key, result.last_positions)``.
        """
        flat = self.flat_samples if self.n_draws else self.flat_warmup_samples
        if flat.shape[1] == 0:
            raise ValueError("the result holds no draw to start from")
        last = flat[:, -1]
        return last if self.constrain is not None else self.position_spec.to_user(last)

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

    def to_arviz(
        self,
        var_names: list[str] | tuple[str, ...] | None = None,
        *,
        log_likelihood: Callable[..., Any] | dict[str, Any] | None = None,
        observed_data: Any = None,
        constant_data: dict[str, Any] | None = None,
        posterior_predictive: dict[str, Any] | None = None,
    ) -> Any:
        """ArviZ export with groups ``posterior``, ``sample_stats``, ``warmup_posterior``.

        Args:
            var_names: for array positions, one name per dimension (each becomes a scalar
                variable); for pytree positions, the subset of leaf names to keep. By default
                array positions become one variable ``x`` with dim ``x_dim_0`` and pytree
                positions one variable per leaf, named after its key path.
            log_likelihood: the per-observation log likelihood, for ``az.loo``, ``az.waic``
                and ``az.compare``: a function ``f(x)`` (or ``f(x, data)`` for a run with
                ``data``) of one position in the layout of ``initial_position``, returning
                ``(n_obs,)`` (or a dict of such arrays, one per observed variable), which is
                evaluated at every production draw (jitted, in chunks); or a dict of arrays
                ``(n_chains, n_draws, ...)`` already computed. Automatic for
                `flowmc_like.from_numpyro` and `flowmc_like.from_pymc` targets.
            observed_data: the observations, an array or a dict of arrays (named as the
                ``log_likelihood`` outputs; an array is named ``y``, or after the one
                output). Automatic for PPL targets.
            constant_data: ``{name: array}`` of covariates (automatic for PyMC's
                ``pm.Data``).
            posterior_predictive: ``{name: (n_chains, n_draws, ...)}`` replicated
                observations, e.g. from `posterior_predictive`.

        Returns:
            ``arviz.InferenceData`` (arviz 0.x) or an ``xarray.DataTree`` (arviz 1.x), with
            dims ``(chain, draw, ...)`` and ``sample_stats`` variables ``lp``, ``accepted``,
            ``is_global``, ``acceptance_rate``, ``step_size`` and ``diverging``, plus
            ``energy`` for an `HMC` run (so ``az.plot_energy`` and ``az.bfmi`` work on its
            local draws) and ``log_q`` for a run with a global model (see `draw_stats`);
            ``log_likelihood``, ``observed_data``, ``constant_data`` and
            ``posterior_predictive`` when given or known from the model.

        Raises:
            ValueError: a bad ``var_names``, or a ``log_likelihood`` function for a PPL
                target (which has its own).
        """
        groups = observation_groups(
            self, log_likelihood, observed_data, constant_data, posterior_predictive
        )
        return self._inference_data(var_names, groups)

    def posterior_predictive(
        self,
        key: Any = None,
        *,
        simulate: Callable[..., Any] | None = None,
        data: Any = None,
    ) -> dict[str, np.ndarray]:
        """Replicated observations, one set per production draw.

        For a `flowmc_like.from_numpyro` or `flowmc_like.from_pymc` target the model's
        observed variables are drawn from its likelihood at each posterior draw. For a plain
        log density, ``simulate(key, x)`` (or ``simulate(key, x, data)``) draws them at one
        position ``x`` in the layout of ``initial_position`` (JAX-traceable; one key per
        draw). Pass the output to ``to_arviz(posterior_predictive=...)`` for
        ``az.plot_ppc``.

        Args:
            key: PRNG key (``jax.random.key(0)`` if None).
            simulate: the simulator of a plain log density (not used for PPL targets).
            data: the data to predict for (new covariates of a PPL model, or the second
                argument of ``simulate``); by default the run's.

        Returns:
            ``{name: (n_chains, n_draws, *shape)}`` numpy arrays.

        Raises:
            ValueError: no production draws, or a plain log density without ``simulate``.
        """
        import jax

        owner = "SamplerResult.posterior_predictive"
        key = jax.random.key(0) if key is None else key
        if self.n_draws == 0:
            raise ValueError(f"{owner}: the result has no production draws")
        data = self.target_data if data is None else data
        density = self.log_density
        if simulate is None:
            predict = getattr(density, "posterior_predictive", None)
            if predict is None:
                raise ValueError(
                    f"{owner}: simulate must be given for a plain log density: a function "
                    "simulate(key, x) (or simulate(key, x, data)) drawing the observations "
                    "at one position x"
                )
            return predict(key, self.flat_samples, data)
        if not callable(simulate):
            raise TypeError(f"{owner}: simulate must be a function; got {type(simulate).__name__}")
        if self.constrain is not None:
            raise ValueError(f"{owner}: a PPL target draws from its own model; omit simulate")
        return evaluate_at_draws(
            simulate, self.position_spec, self.flat_samples, data, key, owner=owner
        )

    def _inference_data(
        self, var_names: list[str] | tuple[str, ...] | None, groups: dict[str, Any]
    ) -> Any:
        has_warmup = self.flat_warmup_samples.shape[1] > 0
        stats = {"lp": self.log_prob, "accepted": self.is_accepted, "is_global": self.is_global}
        warmup_stats = {
            "lp": self.warmup_log_prob,
            "accepted": self.warmup_is_accepted,
            "is_global": self.warmup_is_global,
        }
        return arviz_export.to_inference_data(
            named_draws(self, self.flat_samples, var_names),
            {**stats, **reported_stats(self.draw_stats)},
            named_draws(self, self.flat_warmup_samples, var_names) if has_warmup else None,
            {**warmup_stats, **reported_stats(self.warmup_draw_stats)} if has_warmup else None,
            **groups,
        )

    def summary(self, var_names: list[str] | tuple[str, ...] | None = None, **kwargs: Any) -> Any:
        """``arviz.summary`` of the production draws (mean, sd, hdi, ess_bulk, ess_tail, r_hat).

        Args:
            var_names: as in `to_arviz`.
            **kwargs: passed to ``arviz.summary``.

        Returns:
            A pandas DataFrame.
        """
        return arviz_export.summarize(self._inference_data(var_names, {}), **kwargs)

    def save(self, path: str | os.PathLike[str]) -> Any:
        """Write the result to the directory ``path`` (json and npz, no pickle).

        Read it back with `flowmc_like.load_result`; see `flowmc_like.saved` for the format.
        The saved result keeps the trained model (``global_model`` and ``model_params``) and
        the adapted kernel, so it can warm-start another run.

        Returns:
            The directory, a ``pathlib.Path``.
        """
        from flowmc_like.saved import save_result

        return save_result(self, path)

    def approximation(self) -> Any:
        """The trained global model as a normalised density in the user's space.

        Returns:
            An `flowmc_like.Approximation` with ``sample(key, n)`` and ``log_prob(x)`` (for a
            PPL target: constrained, named values) and ``save(path)``.

        Raises:
            ValueError: the run had no global model.
        """
        from flowmc_like.approximation import bind

        is_model = self.constrain is not None or hasattr(self.log_density, "constrain_one")
        target = self.log_density if hasattr(self.log_density, "constrain_one") else None
        return bind(self.global_model, self.model_params, self.position_spec, target, is_model)

    def log_evidence(
        self,
        key: Any = None,
        *,
        n_samples: int = DEFAULT_EVIDENCE_SAMPLES,
        method: str = "importance",
        log_prob: Any = None,
        data: Any = None,
    ) -> Any:
        """The marginal likelihood ``log Z`` of the target, with the trained model as proposal.

        ``Z`` is the integral of the target density the run sampled (for a PPL target, the
        model's evidence: prior times likelihood; for a discrete target, the partition
        function). See `flowmc_like.evidence` for the estimators.

        Args:
            key: PRNG key of the model's draws (``jax.random.key(0)`` if None).
            n_samples: draws from the model (each costs one target evaluation).
            method: ``"importance"`` (importance sampling) or ``"bridge"`` (bridge sampling,
                which also uses the run's production draws).
            log_prob: the target's log density, for a result loaded without it (same
                signature as given to the sampler); by default the run's.
            data: the data ``log_prob`` takes; by default the run's.

        Returns:
            `flowmc_like.LogEvidence`: ``log_z``, ``standard_error``, ``pareto_k``,
            ``is_reliable``, ``n_evaluations`` ... An unreliable estimate is returned with a
            `flowmc_like.EvidenceWarning`.

        Raises:
            ValueError: no global model, no log density, or a bad argument.
        """
        import jax

        from flowmc_like.evidence import estimate_log_evidence

        owner = "SamplerResult.log_evidence"
        if method not in ("importance", "bridge"):
            raise ValueError(f"{owner}: method must be 'importance' or 'bridge'; got {method!r}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 100:
            raise ValueError(f"{owner}: n_samples must be an int >= 100; got {n_samples!r}")
        if self.global_model is None or self.model_params is None:
            raise ValueError(f"{owner}: the run has no trained global model to draw from")
        log_density = self.log_density if log_prob is None else log_prob
        if log_density is None:
            raise ValueError(
                f"{owner}: this result has no log density attached (it was loaded without "
                "its target); pass log_prob= (and data= if it takes data)"
            )
        log_density = getattr(log_density, "log_prob", log_density)  # a ModelTarget
        if data is None and log_prob is None:
            data = self.target_data
        if data is None:
            data = getattr(log_density, "data", None)
        if method == "bridge" and self.n_draws == 0:
            raise ValueError(f"{owner}: method='bridge' needs production draws; the run has none")
        flat_log_prob = _flat_log_prob(log_density, self.position_spec, data is not None)
        return estimate_log_evidence(
            self.global_model,
            self.model_params,
            flat_log_prob,
            data,
            jax.random.key(0) if key is None else key,
            n_samples,
            self.position_spec.n_dim,
            method,
            self.flat_samples,
            self.log_prob,
        )

    def plot_diagnostics(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Training loss, local and global acceptance and step size per loop, in one figure.

        Production loops are shaded grey. Pair and trace plots of the draws go through ArviZ
        (``az.plot_pair(result.to_arviz())``).

        Args:
            path: if given, the figure is written there (format from the suffix, e.g. PNG).

        Returns:
            The ``matplotlib.figure.Figure``.
        """
        return plotting.plot_history(self.history, path)


@functools.lru_cache(maxsize=8)
def _flat_log_prob(log_density: Any, spec: PositionSpec, with_data: bool) -> Callable[..., Any]:
    """The target on flat positions, one function per (density, layout).

    The evidence's compiled draws are keyed on this function, so later calls reuse them.
    """
    from flowmc_like.target import bind_target

    return bind_target(log_density, spec, with_data=with_data).flat_log_prob


def _stack(loops: list[LoopOutput], field: str, empty: np.ndarray) -> np.ndarray:
    """One `Trace` field of ``loops`` joined along the draw axis (``empty`` if no loops)."""
    if not loops:
        return empty
    return np.concatenate([getattr(output.trace, field) for output in loops], axis=1)


def _stack_is_global(loops: list[LoopOutput], n_chains: int) -> np.ndarray:
    if not loops:
        return np.zeros((n_chains, 0), bool)
    flags = np.concatenate([output.is_global for output in loops])
    return np.broadcast_to(flags, (n_chains, flags.size)).copy()


def assemble_result(
    *,
    outputs: list[LoopOutput],
    spec: PositionSpec,
    constrain: Callable[[Any], dict[str, np.ndarray]] | None,
    kernel_params: Any,
    model_params: Any,
    timings: dict[str, float],
    diagnostics: RunDiagnostics | None = None,
) -> SamplerResult:
    """The `SamplerResult` of a run from its loops' outputs (training loops first)."""
    warm = [output for output in outputs if output.record.is_training]
    prod = [output for output in outputs if not output.record.is_training]
    n_chains, _, n_dim = outputs[0].trace.position.shape
    dtype = outputs[0].trace.position.dtype
    no_draws = np.zeros((n_chains, 0))

    def draw_stats(loops: list[LoopOutput]) -> dict[str, np.ndarray]:
        return {
            name: _stack(loops, field, no_draws.astype(bool if name == "diverging" else float))
            for name, field in DRAW_STATS.items()
        }

    return SamplerResult(
        flat_samples=_stack(prod, "position", no_draws),
        log_prob=_stack(prod, "log_prob", no_draws),
        is_accepted=_stack(prod, "is_accepted", no_draws.astype(bool)),
        is_global=_stack_is_global(prod, n_chains),
        flat_warmup_samples=_stack(warm, "position", np.zeros((n_chains, 0, n_dim), dtype)),
        warmup_log_prob=_stack(warm, "log_prob", np.zeros((n_chains, 0), float)),
        warmup_is_accepted=_stack(warm, "is_accepted", np.zeros((n_chains, 0), bool)),
        warmup_is_global=_stack_is_global(warm, n_chains),
        local_acceptance=np.mean([output.local_acceptance for output in prod], axis=0),
        global_acceptance=np.mean([output.global_acceptance for output in prod], axis=0),
        history=History.from_records([output.record for output in outputs]),
        timings=timings,
        kernel_params=kernel_params,
        model_params=model_params,
        position_spec=spec,
        constrain=constrain,
        diagnostics=diagnostics,
        draw_stats=draw_stats(prod),
        warmup_draw_stats=draw_stats(warm),
    )
