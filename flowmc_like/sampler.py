"""`Sampler`: the public entry point. It holds the settings and runs them.

`run` checks the start and binds the target (`flowmc_like.target`), compiles the programs
(`flowmc_like.compiler`, `flowmc_like.programs`), drives the loops (`flowmc_like.driver`),
checkpoints them if asked (`flowmc_like.checkpoint`) and assembles the `SamplerResult`
(`flowmc_like.result`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import os
import time
import types
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from flowmc_like import _sharding, _validation
from flowmc_like._types import PRNGKey, PyTree
from flowmc_like.adapters.ppl import ModelLogDensity, ModelTarget
from flowmc_like.checkpoint import files as checkpoint_files
from flowmc_like.checkpoint import run as checkpoint
from flowmc_like.compiler import PreparedRun, WarmStart, prepare_run
from flowmc_like.config import SamplerConfig
from flowmc_like.driver import drive
from flowmc_like.kernels.base import AbstractLocalKernel
from flowmc_like.models.base import AbstractGlobalModel
from flowmc_like.programs import LoopState, has_global_moves, state_shardings
from flowmc_like.records import RunProgress
from flowmc_like.result import SamplerResult
from flowmc_like.sampler_arguments import (
    DEFAULT_MODEL,
    check_moves,
    check_tempering,
    default_steps,
    optional_count,
    program_identity,
    resolve_kernel_and_model,
    unwrap_model_target,
    warm_start_of,
)
from flowmc_like.symmetry import resolve_symmetric
from flowmc_like.target import bind_target, check_start, n_categories_of

__all__ = ["Sampler"]


class _class_or_instance_method:
    """A method bound to the instance when called on one, and to the class otherwise."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        functools.update_wrapper(self, function)

    def __get__(self, instance: Any, owner: type) -> Callable[..., Any]:
        return types.MethodType(self.function, owner if instance is None else instance)


class Sampler:
    """Many parallel chains mixing a local kernel with a normalizing-flow global proposal.

    A run is training loops of (local phase, global phase, train the model on the recent
    draws) while the local kernel adapts, then production loops of (local phase, global
    phase) with the kernel params and the model frozen; the production draws are the result.
    By default the run decides how many of each (`flowmc_like.schedule`): training ends when
    the global acceptance levels off and the flow covers the target, production when every
    coordinate reaches ``target_ess`` and ``target_rhat``; it also decides where the local
    kernel runs (in the flow's latent space once the flow has trained).
    ``result.history.decision`` says why, and ``result.diagnostics`` (also issued as
    warnings) says whether the draws can be trusted. The global move is
    independence Metropolis-Hastings with the model as proposal: accept x' ~ q with
    probability min(1, p(x') q(x) / (p(x) q(x'))).

    Args:
        log_prob: unnormalised log density of one position -> scalar; ``log_prob(x)`` or, when
            ``data`` is given, ``log_prob(x, data)``. ``x`` is a ``(n_dim,)`` array or one
            chain's pytree when ``initial_position`` is a pytree. A `ModelTarget` from
            `from_numpyro` / `from_pymc` is accepted too (its ``n_dim`` then need not be
            given), as is its ``log_prob``; the result then exports the model's named,
            constrained variables.
        n_dim: flat dimension of a position; inferred from ``initial_position`` if omitted.
            Continuous positions are floats; discrete ones integers in ``[0, n_categories)``
            (stored as int32).
        n_chains: number of chains; inferred from ``initial_position`` if omitted.
        local_kernel: `MALA` (default), `HMC` or `RandomWalk` for continuous states;
            `SiteFlip` for discrete ones (the default when ``global_model`` is discrete).
        global_model: `RealNVP` (default), `RQSpline`, or ``None`` for local moves only.
            RealNVP trains several times faster per step on CPU and, in the benchmarks,
            gives more effective samples per second; RQSpline is the more expressive flow.
            For discrete states: `Autoregressive` (the default with a `SiteFlip` kernel).
            Kernel and model must work on the same space, and for discrete states agree on
            ``n_categories``; otherwise construction raises a ValueError.
        n_training_loops: loops while training the model and adapting the kernel; None (the
            default): until the global acceptance levels off and the flow covers the target
            (Pareto k-hat of its importance weights at most 0.6), 20 to
            ``max_training_loops``.
        n_production_loops: loops whose draws are returned; None (the default): until every
            coordinate's bulk ESS reaches ``target_ess`` and its R-hat ``target_rhat``, 5 to
            ``max_production_loops``.
        max_training_loops: cap on automatic training loops (default 50).
        max_production_loops: cap on automatic production loops (default 100).
        target_ess: bulk ESS every coordinate must reach (default 1000).
        target_rhat: R-hat every coordinate must be at or below (default 1.01).
        n_local_steps: local steps per chain per loop (sweeps of ``n_dim`` site updates for
            `SiteFlip`); 0 runs global moves only, which needs a model. None (the default):
            50, or 10 with a discrete model (see ``n_global_steps``).
        n_global_steps: global proposals per chain per loop (ignored without a model). None
            (the default): 25, or 40 with a discrete model: a discrete model's proposal is a
            whole new state, which decorrelates a chain much more than a sweep does once
            the model is good.
        n_epochs: training epochs per training loop.
        batch_size: training minibatch size.
        learning_rate: Adam learning rate.
        n_max_examples: examples resampled from the recent draws for each training loop.
        n_window_loops: how many recent loops' draws form the training window; None (the
            default): ``n_dim // 8`` clipped to [3, 20] for a flow, 3 for a discrete model.
        global_chunk_size: proposals evaluated per vmapped batch (bounds memory).
        reverse_kl_weight: ``lambda >= 0``; when positive, each training step minimises
            ``NLL(chain draws) + lambda * KL(q || p)``, the reverse (variational) KL estimated
            from ``batch_size`` fresh model draws with a leave-one-out score-function
            gradient (extra target evaluations). It helps when the chains' draws are too
            correlated to teach the model much, e.g. the Ising model near its critical point
            (see the docs); default 0 (maximum likelihood only).
        n_variational_steps: optimiser steps of variational pre-training before the first
            loop: the model learns the target from its own draws by reverse KL, the target
            annealed as ``p^beta`` with ``beta`` rising to 1, before any chain has to have
            explored (near a critical point or in a spin glass, single-site chains
            decorrelate too slowly to teach it). None (the default): for a discrete model,
            200 annealing steps, then on until the estimated acceptance levels off (at most
            1000); none for a continuous flow. 0 disables it. What it did is in
            ``result.diagnostics.choices``.
        validation_fraction: share of the chains held out (a fresh random choice each
            training loop) to validate the model; each training loop keeps the epoch with
            the lowest validation loss, so the model never keeps an update that fits the
            chains' visited regions at the expense of the target (early stopping). 0
            disables it. Default 0.2.
        local_in_latent_space: run the local kernel on ``z = T^{-1}(x)``, the target seen
            through the current flow ``T`` (the trained flow as a preconditioner: funnels,
            ill-conditioned targets); each local step then also costs a pass through the
            flow. True needs a continuous flow model. None (the default): the run decides,
            in the flow's space from the first training loop after the flow has trained
            (``result.history.in_latent_space``); see the docs' "Hard targets".
        n_temperatures: ``K >= 1``; with ``K > 1`` replica-exchange tempering: every chain
            gets ``K - 1`` replicas at inverse temperatures ``1 > beta_1 > ... >
            beta_{K-1}``, sampling ``log_prior(x) + beta * (log_prob(x) - log_prior(x))``
            (``beta * log_prob(x)`` without ``log_prior``) with the same local kernel (each
            level adapts its own step size); neighbouring levels exchange positions
            (non-reversible even/odd scheme). The ladder adapts during training to equal
            exchange rates and is frozen in production; hot replicas find modes no chain
            starts in and pass them down. Only the ``beta = 1`` chains are returned, take
            global moves and train the model. ``result.history`` records the exchange
            rates, the ladder and the round trips. Costs about ``K`` times the local phase.
            Default 1 (no tempering). See the docs' "My chains all start in one mode".
        max_temperature: ``1 / beta_{K-1} > 1`` when the whole density is tempered;
            None (the default): 100. Not used with ``log_prior``.
        log_prior: ``log_prior(x)`` (or ``log_prior(x, data)``), the part of ``log_prob``
            tempering keeps at every temperature, so only the likelihood is tempered and the
            hottest replica samples this prior (it must be proper). Taken from the model
            for `from_numpyro` / `from_pymc` targets. Default None: the whole density.
        thinning: keep every ``thinning``-th draw of each local and global phase (steps
            ``thinning - 1, 2 * thinning - 1, ...``; at most ``n_local_steps`` and
            ``n_global_steps``). It divides the memory the draws take on the device and in
            the result; the model then trains on the kept draws, and acceptance rates and
            non-finite counts still cover every step. Default 1 (keep all).
        data: any pytree passed to ``log_prob`` as its second argument (traced, never baked in).
        devices: the devices to shard the chains over, e.g. ``jax.devices()[:4]``. The
            default ``None`` takes every GPU or TPU JAX sees (with ``jax.distributed``, the
            devices of every process); on a CPU, the default device only (extra CPU devices
            share the same cores; pass ``devices=jax.devices()`` to shard over them anyway).
            ``n_chains`` must be a multiple of their number. Each device runs its own block
            of chains; the model's parameters are replicated and its training is data
            parallel. The default device alone (``jax.devices()[0]``, e.g. on a laptop) runs
            the plain single-device program.
        progress_bar: show a tqdm progress bar.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import flowmc_like as fm
        >>> def log_prob(x):
        ...     return -0.5 * jnp.sum(x**2)
        >>> sampler = fm.Sampler(log_prob, n_dim=2, n_chains=4, n_training_loops=2,
        ...                      n_production_loops=2, n_local_steps=5, n_global_steps=5,
        ...                      progress_bar=False)
        >>> result = sampler.run(jax.random.key(0), jnp.zeros((4, 2)))
        >>> result.samples.shape
        (4, 20, 2)
    """

    def __init__(
        self,
        log_prob: Callable[..., Any] | ModelTarget,
        n_dim: int | None = None,
        n_chains: int | None = None,
        *,
        local_kernel: AbstractLocalKernel | None = None,
        global_model: AbstractGlobalModel | None = DEFAULT_MODEL,
        n_training_loops: int | None = SamplerConfig.n_training_loops,
        n_production_loops: int | None = SamplerConfig.n_production_loops,
        max_training_loops: int = SamplerConfig.max_training_loops,
        max_production_loops: int = SamplerConfig.max_production_loops,
        target_ess: float = SamplerConfig.target_ess,
        target_rhat: float = SamplerConfig.target_rhat,
        n_local_steps: int | None = None,
        n_global_steps: int | None = None,
        n_epochs: int = SamplerConfig.n_epochs,
        batch_size: int = SamplerConfig.batch_size,
        learning_rate: float = SamplerConfig.learning_rate,
        n_max_examples: int = SamplerConfig.n_max_examples,
        n_window_loops: int | None = SamplerConfig.n_window_loops,
        global_chunk_size: int = SamplerConfig.global_chunk_size,
        reverse_kl_weight: float = SamplerConfig.reverse_kl_weight,
        n_variational_steps: int | None = SamplerConfig.n_variational_steps,
        validation_fraction: float = SamplerConfig.validation_fraction,
        local_in_latent_space: bool | None = SamplerConfig.local_in_latent_space,
        n_temperatures: int = SamplerConfig.n_temperatures,
        max_temperature: float | None = SamplerConfig.max_temperature,
        log_prior: Callable[..., Any] | None = None,
        thinning: int = SamplerConfig.thinning,
        data: PyTree = None,
        devices: Sequence[jax.Device] | None = None,
        progress_bar: bool = SamplerConfig.progress_bar,
    ) -> None:
        log_prob, n_dim = unwrap_model_target(log_prob, n_dim)
        self.log_prob = _validation.check_callable("log_prob", log_prob, owner="Sampler")
        if log_prior is None and isinstance(log_prob, ModelLogDensity):
            log_prior = getattr(log_prob, "log_prior", None)  # the PPL model's prior
        self.log_prior = _validation.check_callable(
            "log_prior", log_prior, owner="Sampler", allow_none=True
        )
        # A PPL model's log density carries the map back to its constrained variables, and
        # its data (traced: a new dataset of the same shapes reuses the compiled run).
        self._is_model = isinstance(log_prob, ModelLogDensity)
        if self._is_model and data is None:
            data = getattr(log_prob, "data", None)
        self.n_dim = optional_count("n_dim", n_dim)
        self.n_chains = optional_count("n_chains", n_chains)
        self.local_kernel, self.global_model = resolve_kernel_and_model(local_kernel, global_model)
        n_local_steps, n_global_steps = default_steps(
            self.global_model, n_local_steps, n_global_steps
        )
        self.config = SamplerConfig(
            n_training_loops=n_training_loops,
            n_production_loops=n_production_loops,
            max_training_loops=max_training_loops,
            max_production_loops=max_production_loops,
            target_ess=target_ess,
            target_rhat=target_rhat,
            n_local_steps=n_local_steps,
            n_global_steps=n_global_steps,
            n_epochs=n_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            n_max_examples=n_max_examples,
            n_window_loops=n_window_loops,
            global_chunk_size=global_chunk_size,
            reverse_kl_weight=reverse_kl_weight,
            n_variational_steps=n_variational_steps,
            validation_fraction=validation_fraction,
            local_in_latent_space=local_in_latent_space,
            n_temperatures=n_temperatures,
            max_temperature=max_temperature,
            thinning=thinning,
            progress_bar=progress_bar,
        )
        check_moves(self.global_model, self.config)
        check_tempering(self.local_kernel, self.config, self.log_prior)
        self.data = _validation.check_data(data)
        self.devices = _sharding.check_devices(devices)
        if self.n_chains is not None:
            devices = _sharding.default_devices() if self.devices is None else self.devices
            _sharding.check_divisible(self.n_chains, len(devices))

    def __repr__(self) -> str:
        return (
            f"Sampler(n_dim={self.n_dim}, n_chains={self.n_chains}, "
            f"local_kernel={self.local_kernel!r}, global_model={self.global_model!r}, "
            f"config={self.config!r})"
        )

    def run(
        self,
        key: PRNGKey,
        initial_position: PyTree = None,
        *,
        data: PyTree = None,
        warm_start: SamplerResult | None = None,
        checkpoint_path: str | os.PathLike[str] | None = None,
    ) -> SamplerResult:
        """Run the training loops, then the production loops, and return the result.

        The same key gives identical results; the Sampler object is not modified. The
        compiled programs are kept for the process: another run with inputs of the same
        shapes and dtypes (new data, another key, a warm start), or a new `Sampler` with
        the same ``log_prob`` object and settings, compiles nothing.

        Args:
            key: a JAX PRNG key (``jax.random.key(seed)``).
            initial_position: ``(n_chains, n_dim)`` array, or a pytree whose leaves have the
                leading axis ``n_chains``. May be left out with ``warm_start``: the chains
                then start from the last draws of the earlier run.
            data: the ``data`` pytree for this run (replacing the sampler's ``data``); it
                is traced, so new values of the same shapes reuse the compiled run. For a
                `from_numpyro` / `from_pymc` target: the model's data (``target.data``).
            warm_start: an earlier `SamplerResult` (or one read by `load_result`) of a
                sampler with the same model and kernel: training continues from its trained
                model, the kernel's adaptation from its adapted step size (and mass
                matrix), and an automatic run trains at least ``WARM_MIN_TRAINING_LOOPS``
                loops instead of 20 (it still trains until the acceptance levels off and
                the model covers the target). The draws are exact whatever the start.
            checkpoint_path: a directory (created; it must not hold a checkpoint already)
                where the full state is saved atomically after every loop; continue an
                interrupted run with `Sampler.resume`. See `flowmc_like.checkpoint` for
                the format.

        Returns:
            A `SamplerResult`.
        """
        start = time.perf_counter()
        key = _validation.check_key(key)
        sampler = self._with_data(data)
        warm = warm_start_of(warm_start, sampler)
        if initial_position is None:
            if warm_start is None:
                raise TypeError(
                    "Sampler.run: initial_position is required (an (n_chains, n_dim) array or "
                    "a pytree of them), unless warm_start gives the earlier run's last draws"
                )
            initial_position = warm_start.last_positions
        directory = None
        if checkpoint_path is not None:
            directory = checkpoint.start_directory(checkpoint_path)
        prepared = sampler._prepare(key, initial_position, warm)
        if directory is not None:
            checkpoint.write_header(
                directory, prepared, sampler.config, sampler._init_kwargs(),
                sampler._fingerprint(), log_prob=sampler.log_prob, key=key,
                initial_position=initial_position, warm_start=warm,
            )  # fmt: skip
        return sampler._drive(prepared, prepared.initial_state, RunProgress(), directory, start)

    def _with_data(self, data: PyTree) -> Sampler:
        """This sampler, or a copy running on ``data`` instead of its own."""
        if data is None:
            return self
        sampler = copy.copy(self)
        sampler.data = _validation.check_data(data)
        return sampler

    @_class_or_instance_method
    def resume(
        owner: Any,
        path: str | os.PathLike[str],
        *,
        log_prob: Callable[..., Any] | ModelTarget | None = None,
        data: PyTree = None,
        devices: Sequence[jax.Device] | None = None,
    ) -> SamplerResult:
        """Continue the run saved in the checkpoint directory ``path`` to its end.

        ``fm.Sampler.resume(path)`` rebuilds the sampler from the checkpoint;
        ``sampler.resume(path)`` uses ``sampler`` (its settings must match the checkpoint's).
        The loops already finished are read back, the rest are run and saved to ``path``
        as before; the result is identical to that of an uninterrupted run with the same
        key.

        Args:
            path: the ``checkpoint_path`` given to `run`.
            log_prob: the log density, needed when the checkpoint could not store it (a
                lambda, a function defined inside another, a `ModelTarget`) or when the
                module defining it is not importable here.
            data: the ``data`` pytree, to replace the stored one.
            devices: the devices to run on (``Sampler(devices=...)``; devices are not
                stored in a checkpoint). With ``fm.Sampler.resume`` the default is every
                device; on an instance, the instance's devices.

        Returns:
            The `SamplerResult` of the whole run.

        Raises:
            ValueError: ``path`` is not a checkpoint, is corrupt, or does not match the
                sampler.
        """
        start = time.perf_counter()
        directory = Path(path)
        info = checkpoint_files.load_run_info(directory)
        stored = checkpoint.read_sampler_args(directory)
        sampler = _reopen(owner, directory, info, stored, log_prob, data, devices)
        checkpoint.check_matches(directory, info, sampler._fingerprint())
        with warnings.catch_warnings():  # warned when the run started
            warnings.simplefilter("ignore", UserWarning)
            prepared = sampler._prepare(
                stored["key"], stored["initial_position"], stored.get("warm_start")
            )
        has_global = has_global_moves(sampler.global_model, sampler.config)
        shardings = state_shardings(prepared.layout, has_global, sampler.config.is_tempered)
        state, progress = checkpoint.load_progress(
            directory, prepared.initial_state, prepared.layout, shardings
        )
        return sampler._drive(prepared, state, progress, directory, start)

    def _fingerprint(self) -> dict[str, Any]:
        return checkpoint.settings_fingerprint(self.config, self.local_kernel, self.global_model)

    def _init_kwargs(self) -> dict[str, Any]:
        """The constructor arguments (besides ``log_prob``) that rebuild this sampler."""
        accepted = inspect.signature(Sampler.__init__).parameters
        settings = dataclasses.asdict(self.config)
        return {
            "n_dim": self.n_dim,
            "n_chains": self.n_chains,
            "local_kernel": self.local_kernel,
            "global_model": self.global_model,
            "data": self.data,
            "log_prior": self.log_prior,
            **{name: value for name, value in settings.items() if name in accepted},
        }

    def _prepare(
        self, key: PRNGKey, initial_position: PyTree, warm_start: WarmStart | None = None
    ) -> PreparedRun:
        """Check the start, bind the target and compile the run (`prepare_run`)."""
        n_categories = n_categories_of(self.local_kernel)
        spec, positions = check_start(initial_position, self.n_chains, self.n_dim, n_categories)
        with_data = self.data is not None
        target = bind_target(self.log_prob, spec, with_data=with_data)
        log_prior = None
        if self.config.is_tempered and self.log_prior is not None:
            log_prior = bind_target(self.log_prior, spec, with_data=with_data).flat_log_prob
        kernel, config = self.local_kernel, self.config
        model, choices = self.global_model, ()
        if warm_start is not None and warm_start.model is not None:
            model = warm_start.model  # as the earlier run resolved it
        else:
            model, choices = resolve_symmetric(model, target.flat_log_prob, self.data, positions)
        program_key = (
            program_identity(self.log_prob),
            program_identity(log_prior and self.log_prior),
            with_data,
            spec.cache_key,
        )
        prepared = prepare_run(
            target, kernel, model, config, key, spec, positions, self.data, self.devices,
            log_prior=log_prior, program_key=program_key, warm_start=warm_start,
        )  # fmt: skip
        return prepared._replace(global_model=model, choices=choices)

    def _drive(
        self,
        prepared: PreparedRun,
        state: LoopState,
        progress: RunProgress,
        directory: Path | None,
        start: float,
    ) -> SamplerResult:
        """Run the remaining loops (checkpointing into ``directory``) and assemble the result."""
        observer = None
        if directory is not None:
            observer = checkpoint.RunCheckpoint(directory, prepared.layout, start)
        constrain = None
        if self._is_model:  # the map back to the model's variables, on this run's data
            data = self.data
            constrain = self.log_prob.constrain
            if data is not None and "data" in inspect.signature(constrain).parameters:
                constrain = functools.partial(constrain, data=data)
        result = drive(prepared, self.config, state, progress, observer, constrain, start)
        return dataclasses.replace(
            result,
            local_kernel=self.local_kernel,
            global_model=prepared.global_model,
            log_density=self.log_prob,
            target_data=self.data,
        )


def _reopen(
    owner: Any,
    directory: Path,
    info: dict[str, Any],
    stored: dict[str, Any],
    log_prob: Any,
    data: PyTree,
    devices: Sequence[jax.Device] | None,
) -> Sampler:
    """The sampler a resume continues with: a copy of ``owner`` or one rebuilt from ``stored``."""
    if isinstance(owner, Sampler):
        if log_prob is not None:
            raise TypeError(
                "log_prob is taken from the sampler when resume is called on an instance; "
                "call fm.Sampler.resume(path, log_prob=...) instead"
            )
        sampler = copy.copy(owner)
        if data is not None:
            sampler.data = _validation.check_data(data)
        if devices is not None:
            sampler.devices = _sharding.check_devices(devices)
        return sampler
    log_prob = checkpoint.read_log_prob(directory, info) if log_prob is None else log_prob
    kwargs = dict(stored["init_kwargs"], **({} if data is None else {"data": data}))
    return owner(log_prob, devices=devices, **kwargs)
