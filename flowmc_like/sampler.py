"""`Sampler`: a thin orchestrator driving jitted phases from a Python loop over loops."""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import functools
import inspect
import logging
import os
import time
import types
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like import _sharding, _validation, checkpoint
from flowmc_like._sharding import ChainLayout
from flowmc_like._types import Array, PRNGKey, PyTree, Space
from flowmc_like.adapters.ppl import ModelLogDensity, ModelTarget
from flowmc_like.adapters.pytree import PositionSpec
from flowmc_like.config import SamplerConfig
from flowmc_like.kernels.base import AbstractLocalKernel
from flowmc_like.kernels.mala import MALA
from flowmc_like.kernels.site_flip import SiteFlip
from flowmc_like.phases import (
    GlobalState,
    Trace,
    init_kernel_states,
    run_global_phase,
    run_latent_local_phase,
    run_local_phase,
    summarize_and_thin,
)
from flowmc_like.models.autoregressive import Autoregressive
from flowmc_like.models.base import AbstractGlobalModel
from flowmc_like.models.real_nvp import RealNVP
from flowmc_like.result import History, SamplerResult
from flowmc_like.training.data import (
    DrawBuffer,
    append_draws,
    init_buffer,
    select_training_data,
    split_training_data,
)
from flowmc_like.training.optim import make_optimizer
from flowmc_like.training.trainer import ReverseKL, init_train_state, train_model

__all__ = ["Sampler"]

logger = logging.getLogger(__name__)


class _DefaultModel:
    def __repr__(self) -> str:
        return "<default: RealNVP() or Autoregressive(n_categories=K)>"


DEFAULT_MODEL: Any = _DefaultModel()


class _LoopOutput(NamedTuple):
    """One finished loop on the host: its (thinned) draws, acceptances and history record."""

    trace: Trace
    is_global: np.ndarray
    local_acceptance: np.ndarray
    global_acceptance: np.ndarray
    record: dict[str, Any]


class _LoopState(NamedTuple):
    """Everything the next loop starts from (a pytree; what a checkpoint stores)."""

    states: Any
    adapt_state: PyTree
    train_state: Any
    buffer: Any
    frozen_params: PyTree
    final_params: PyTree
    is_adapting: Any


class _CompiledPhases(NamedTuple):
    setup: Callable[..., Any] | None
    local: Callable[..., Any]
    global_: Callable[..., Any] | None
    train: Callable[..., Any] | None


class _PreparedRun(NamedTuple):
    """A run's compiled phases, keys and initial state."""

    phases: _CompiledPhases
    spec: PositionSpec
    n_chains: int
    n_dim: int
    key_impl: str
    loop_keys: np.ndarray
    initial_state: _LoopState
    compile_seconds: float
    layout: ChainLayout
    data: PyTree


class _RunProgress:
    """The host-side part of a run so far: finished loops' outputs and wall time."""

    def __init__(self, outputs: list[_LoopOutput] | None = None, seconds: dict | None = None):
        self.outputs = outputs or []
        self.seconds = seconds or {"training": 0.0, "production": 0.0, "previous_total": 0.0}

    @property
    def n_done(self) -> int:
        return len(self.outputs)

    def add(self, output: _LoopOutput, seconds: float) -> None:
        self.outputs.append(output)
        self.seconds["training" if output.record["is_training"] else "production"] += seconds

    @classmethod
    def from_checkpoint(cls, directory: Path, meta: dict[str, Any]) -> _RunProgress:
        outputs = [
            _loop_output_from_arrays(checkpoint.load_loop(directory, index))
            for index in range(int(meta["n_done"]))
        ]
        return cls(outputs, dict(meta["seconds"]))


class _class_or_instance_method:
    """A method bound to the instance when called on one, and to the class otherwise."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        functools.update_wrapper(self, function)

    def __get__(self, instance: Any, owner: type) -> Callable[..., Any]:
        return types.MethodType(self.function, owner if instance is None else instance)


def _resolve_kernel_and_model(
    local_kernel: Any, global_model: Any
) -> tuple[AbstractLocalKernel, AbstractGlobalModel | None]:
    """Fill in the defaults and check that the kernel and the model work on the same space.

    Defaults follow whichever of the two is given: a discrete model gets
    ``SiteFlip(n_categories=K)``, a discrete kernel gets ``Autoregressive(n_categories=K)``;
    otherwise ``MALA()`` and ``RealNVP()``.
    """
    if global_model is not DEFAULT_MODEL and global_model is not None:
        if not isinstance(global_model, AbstractGlobalModel):
            raise TypeError(
                "global_model must be a flowmc_like model such as fm.RealNVP(), fm.RQSpline() "
                "or fm.Autoregressive(), or None for local moves only; got "
                f"{type(global_model).__name__}"
            )
    if local_kernel is None:
        if isinstance(global_model, AbstractGlobalModel) and global_model.space is Space.DISCRETE:
            local_kernel = SiteFlip(n_categories=global_model.n_categories)  # type: ignore[attr-defined]
        else:
            local_kernel = MALA()
    if not isinstance(local_kernel, AbstractLocalKernel):
        raise TypeError(
            "local_kernel must be a flowmc_like kernel such as fm.MALA(), fm.HMC(), "
            f"fm.RandomWalk() or fm.SiteFlip(); got {type(local_kernel).__name__}"
        )
    if global_model is DEFAULT_MODEL:
        if local_kernel.space is Space.DISCRETE:
            global_model = Autoregressive(n_categories=local_kernel.n_categories)  # type: ignore[attr-defined]
        else:
            global_model = RealNVP()
    if global_model is None:
        return local_kernel, None
    if global_model.space is not local_kernel.space:
        raise ValueError(
            f"local_kernel {type(local_kernel).__name__} works on a {local_kernel.space.value} "
            f"space but global_model {type(global_model).__name__} on a "
            f"{global_model.space.value} space; use a kernel and a model of the same space "
            "(fm.SiteFlip with fm.Autoregressive for discrete states; fm.MALA, fm.HMC or "
            "fm.RandomWalk with fm.RealNVP or fm.RQSpline for continuous ones)"
        )
    if local_kernel.space is Space.DISCRETE:
        kernel_k = local_kernel.n_categories  # type: ignore[attr-defined]
        model_k = global_model.n_categories  # type: ignore[attr-defined]
        if kernel_k != model_k:
            raise ValueError(
                f"local_kernel has n_categories={kernel_k} but global_model has "
                f"n_categories={model_k}; they must agree"
            )
    return local_kernel, global_model


def _check_latent_model(model: AbstractGlobalModel | None, config: SamplerConfig) -> None:
    """``local_in_latent_space`` needs a trained bijective flow and local steps."""
    is_flow = hasattr(model, "forward_and_log_det") and hasattr(model, "inverse_and_log_det")
    if model is None or not is_flow or config.n_global_steps < 1 or config.n_local_steps < 1:
        raise ValueError(
            "local_in_latent_space=True runs the local kernel through the trained flow, so it "
            "needs a continuous flow global_model (fm.RealNVP() or fm.RQSpline()), "
            "n_global_steps >= 1 and n_local_steps >= 1; got "
            f"global_model={model!r}, n_global_steps={config.n_global_steps}, "
            f"n_local_steps={config.n_local_steps}"
        )


def _step_size_of(params: Any) -> float:
    for name in ("step_size", "scale"):
        if hasattr(params, name):
            return float(np.mean(np.asarray(getattr(params, name))))
    return float("nan")


class Sampler:
    """Many parallel chains mixing a local kernel with a normalizing-flow global proposal.

    A run is ``n_training_loops`` loops of (local phase, global phase, train the model on the
    recent draws) while the local kernel adapts, then ``n_production_loops`` loops of (local
    phase, global phase) with the kernel params and the model frozen; the production draws are
    the result. The global move is independence Metropolis-Hastings with the model as
    proposal: accept x' ~ q with probability min(1, p(x') q(x) / (p(x) q(x'))).

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
        n_training_loops: loops while training the model and adapting the kernel.
        n_production_loops: loops whose draws are returned.
        n_local_steps: local steps per chain per loop (sweeps of ``n_dim`` site updates for
            `SiteFlip`); 0 runs global moves only, which needs a model.
        n_global_steps: global proposals per chain per loop (ignored without a model).
        n_epochs: training epochs per training loop.
        batch_size: training minibatch size.
        learning_rate: Adam learning rate.
        n_max_examples: examples resampled from the recent draws for each training loop.
        n_window_loops: how many recent loops' draws form the training window.
        global_chunk_size: proposals evaluated per vmapped batch (bounds memory).
        reverse_kl_weight: ``lambda >= 0``; when positive, each training step minimises
            ``NLL(chain draws) + lambda * KL(q || p)``, the reverse (variational) KL estimated
            from ``batch_size`` fresh model draws with a leave-one-out score-function
            gradient (extra target evaluations). It helps when the chains' draws are too
            correlated to teach the model much, e.g. the Ising model near its critical point
            (see the docs); default 0 (maximum likelihood only).
        validation_fraction: share of the chains held out (a fresh random choice each
            training loop) to validate the model; each training loop keeps the epoch with
            the lowest validation loss, so the model never keeps an update that fits the
            chains' visited regions at the expense of the target (early stopping). 0
            disables it. Default 0.2.
        local_in_latent_space: run the local kernel on ``z = T^{-1}(x)``, the target seen
            through the current flow ``T`` (the trained flow as a preconditioner). It helps
            when the target's local scale varies or it is ill-conditioned (funnels,
            strongly correlated Gaussians); each local step then also costs a pass through
            the flow. The kernel then only reaches what the flow has learned: for a ridge
            with heavy tails (Rosenbrock) keep it off and use HMC (see the docs' "Hard
            targets"). Needs a continuous flow model. Default False.
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
        n_training_loops: int = SamplerConfig.n_training_loops,
        n_production_loops: int = SamplerConfig.n_production_loops,
        n_local_steps: int = SamplerConfig.n_local_steps,
        n_global_steps: int = SamplerConfig.n_global_steps,
        n_epochs: int = SamplerConfig.n_epochs,
        batch_size: int = SamplerConfig.batch_size,
        learning_rate: float = SamplerConfig.learning_rate,
        n_max_examples: int = SamplerConfig.n_max_examples,
        n_window_loops: int = SamplerConfig.n_window_loops,
        global_chunk_size: int = SamplerConfig.global_chunk_size,
        reverse_kl_weight: float = SamplerConfig.reverse_kl_weight,
        validation_fraction: float = SamplerConfig.validation_fraction,
        local_in_latent_space: bool = SamplerConfig.local_in_latent_space,
        thinning: int = SamplerConfig.thinning,
        data: PyTree = None,
        devices: Sequence[jax.Device] | None = None,
        progress_bar: bool = SamplerConfig.progress_bar,
    ) -> None:
        if isinstance(log_prob, ModelTarget):  # fm.Sampler(fm.from_numpyro(model, ...))
            if n_dim is not None and n_dim != log_prob.n_dim:
                raise ValueError(
                    f"n_dim={n_dim} disagrees with the model's unconstrained dimension "
                    f"{log_prob.n_dim}; leave n_dim out"
                )
            n_dim = log_prob.n_dim
            log_prob = log_prob.log_prob
        self.log_prob = _validation.check_callable("log_prob", log_prob)
        # A PPL model's log density carries the map back to its constrained variables.
        self._constrain = log_prob.constrain if isinstance(log_prob, ModelLogDensity) else None
        self.n_dim = None if n_dim is None else _validation.check_positive_int("n_dim", n_dim)
        self.n_chains = (
            None if n_chains is None else _validation.check_positive_int("n_chains", n_chains)
        )
        local_kernel, global_model = _resolve_kernel_and_model(local_kernel, global_model)
        self.local_kernel = local_kernel
        self.global_model = global_model
        self.config = SamplerConfig(
            n_training_loops=n_training_loops,
            n_production_loops=n_production_loops,
            n_local_steps=n_local_steps,
            n_global_steps=n_global_steps,
            n_epochs=n_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            n_max_examples=n_max_examples,
            n_window_loops=n_window_loops,
            global_chunk_size=global_chunk_size,
            reverse_kl_weight=reverse_kl_weight,
            validation_fraction=validation_fraction,
            local_in_latent_space=local_in_latent_space,
            thinning=thinning,
            progress_bar=progress_bar,
        )
        if self.config.n_local_steps == 0 and not self._has_global:
            raise ValueError(
                "n_local_steps=0 runs global moves only, which needs a global_model and "
                f"n_global_steps >= 1; got global_model={global_model!r}, "
                f"n_global_steps={n_global_steps}"
            )
        if self.config.local_in_latent_space:
            _check_latent_model(self.global_model, self.config)
        self.data = _validation.check_data(data)
        self.devices = _sharding.check_devices(devices)
        if self.n_chains is not None:
            devices = _sharding.default_devices() if self.devices is None else self.devices
            n_devices = len(devices)
            _sharding.check_divisible(self.n_chains, n_devices)

    def __repr__(self) -> str:
        return (
            f"Sampler(n_dim={self.n_dim}, n_chains={self.n_chains}, "
            f"local_kernel={self.local_kernel!r}, global_model={self.global_model!r}, "
            f"config={self.config!r})"
        )

    # ------------------------------------------------------------------ helpers

    @property
    def _n_categories(self) -> int | None:
        """K for a discrete kernel (positions are checked against ``[0, K)``), else None."""
        if self.local_kernel.space is Space.DISCRETE:
            return int(self.local_kernel.n_categories)  # type: ignore[attr-defined]
        return None

    @property
    def _has_global(self) -> bool:
        return self.global_model is not None and self.config.n_global_steps > 0

    def _user_log_prob(self, spec: PositionSpec) -> Callable[[Array, PyTree], Any]:
        user_log_prob = self.log_prob
        with_data = self.data is not None

        def raw_log_prob(x: Array, data: PyTree) -> Any:
            position = spec.unravel(x)
            return user_log_prob(position, data) if with_data else user_log_prob(position)

        return raw_log_prob

    def _flat_log_prob(self, spec: PositionSpec) -> Callable[[Array, PyTree], Array]:
        raw_log_prob = self._user_log_prob(spec)

        def flat_log_prob(x: Array, data: PyTree) -> Array:
            dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
            return jnp.reshape(jnp.asarray(raw_log_prob(x, data)), ()).astype(dtype)

        return flat_log_prob

    def _prepare_positions(self, initial_position: PyTree) -> tuple[PositionSpec, Array]:
        leaves = jax.tree.leaves(initial_position)
        if not leaves:
            raise ValueError("initial_position is empty; expected an (n_chains, n_dim) array")
        for leaf in leaves:
            if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
                raise TypeError(
                    "initial_position must be an array (n_chains, n_dim) or a pytree of arrays "
                    f"with leading axis n_chains; got a leaf of type {type(leaf).__name__}"
                )
        _validation.check_position_leaves("initial_position", leaves, self._n_categories)
        if not isinstance(initial_position, jax.Array | np.ndarray):
            sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
            if len(sizes) != 1 or -1 in sizes:
                shapes = [tuple(np.shape(leaf)) for leaf in leaves]
                raise ValueError(
                    "initial_position leaves must share a leading axis of size n_chains; "
                    f"got leaf shapes {shapes}"
                )
        elif np.ndim(initial_position) != 2:
            raise ValueError(
                f"initial_position has shape {tuple(np.shape(initial_position))}; expected "
                f"(n_chains, n_dim) = ({self.n_chains or 'n_chains'}, {self.n_dim or 'n_dim'})"
            )
        spec, flat = PositionSpec.from_batched(initial_position)
        _validation.check_position_values(
            flat, self.n_chains, self.n_dim, "initial_position", self._n_categories
        )
        if self._n_categories is not None:
            flat = flat.astype(jnp.int32)
        return spec, flat

    def _build_phases(
        self,
        spec: PositionSpec,
        n_chains: int,
        n_dim: int,
        key_impl: str,
        layout: ChainLayout,
    ) -> _CompiledPhases:
        """The run's jitted phases, not yet compiled.

        Nothing in a run executes eagerly (each eager op compiles on its own): `setup` draws
        every key of the run and builds every initial state in one call, and the phases take
        raw key data (``uint32``; rewrapped inside with ``key_impl``) so the host only indexes
        numpy arrays between calls. On several devices every phase is jitted with the
        shardings of `_phase_shardings` (chain-batched arrays split over the devices, the
        rest replicated).
        """
        config = self.config
        kernel = self.local_kernel
        model = self.global_model
        has_global = self._has_global
        flat_log_prob = self._flat_log_prob(spec)
        adaptation = kernel.adaptation(
            n_dim, max(config.n_local_steps, 1), n_chains, config.n_training_loops
        )
        optimizer = make_optimizer(config.learning_rate, config.max_grad_norm)
        n_loops = config.n_training_loops + config.n_production_loops
        n_held_out_chains = config.n_held_out_chains(n_chains)

        shardings = _phase_shardings(layout, has_global)
        batch_sharding = layout.batch_sharding(config.effective_batch_size)

        def jit(phase: str) -> Callable[[Callable[..., Any]], Any]:
            if not layout.is_sharded:
                return jax.jit
            in_shardings, out_shardings = shardings[phase]
            return functools.partial(
                jax.jit, in_shardings=in_shardings, out_shardings=out_shardings
            )

        def wrap(key_data: Array) -> PRNGKey:
            return jax.random.wrap_key_data(key_data, impl=key_impl)

        @jit("setup")
        def setup(key, positions, kernel_params, data):
            if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
                key = wrap(key)
            # one split for every key of the run (each random call compiles its own hash):
            # the model's, then per loop the local, global, data-selection and training keys
            keys = jax.random.split(key, 1 + 4 * n_loops)
            key_model, loop_keys = keys[0], keys[1:].reshape(n_loops, 4)
            states = init_kernel_states(
                kernel, functools.partial(flat_log_prob, data=data), positions
            )
            train_state = buffer = None
            if has_global:
                assert model is not None
                train_state = init_train_state(model.init(key_model, n_dim), optimizer)
                window = config.n_window_loops * config.n_draws_per_loop
                buffer = init_buffer(n_chains, window, n_dim, positions.dtype)
            return (
                jax.random.key_data(loop_keys),
                states,
                adaptation.init(kernel_params),
                train_state,
                buffer,
            )

        @jit("local")
        def local(key_data, states, adapt_state, frozen_params, is_adapting, model_params, data):
            log_prob_fn = functools.partial(flat_log_prob, data=data)
            if config.local_in_latent_space:
                current, adapt_state, trace = run_latent_local_phase(
                    kernel,
                    adaptation,
                    model,
                    model_params,
                    log_prob_fn,
                    config.n_local_steps,
                    wrap(key_data),
                    GlobalState(states.position, states.log_prob),
                    adapt_state,
                    frozen_params,
                    is_adapting,
                )
                states = init_kernel_states(kernel, log_prob_fn, current.position)
            else:
                states, adapt_state, trace = run_local_phase(
                    kernel,
                    adaptation,
                    log_prob_fn,
                    config.n_local_steps,
                    wrap(key_data),
                    states,
                    adapt_state,
                    frozen_params,
                    is_adapting,
                )
            used_params = jax.tree.map(
                lambda a, b: jnp.where(is_adapting, a, b),
                adaptation.current(adapt_state),
                frozen_params,
            )
            trace, summary = summarize_and_thin(trace, config.thinning)
            return states, adapt_state, trace, summary, used_params, adaptation.final(adapt_state)

        global_ = train = None
        if has_global:

            @jit("global")
            def global_(key_data, states, model_params, data):
                log_prob_fn = functools.partial(flat_log_prob, data=data)
                current = GlobalState(states.position, states.log_prob)
                final, trace, summary = run_global_phase(
                    model,
                    log_prob_fn,
                    config.n_global_steps,
                    config.global_chunk_size,
                    wrap(key_data),
                    current,
                    model_params,
                    config.thinning,
                )
                return init_kernel_states(kernel, log_prob_fn, final.position), trace, summary

            @jit("train")
            def train(key_data, train_state, buffer, local_draws, global_draws, data):
                buffer = append_draws(buffer, jnp.concatenate([local_draws, global_draws], 1))
                key_select, key_train = wrap(key_data[0]), wrap(key_data[1])
                validation = None
                if n_held_out_chains:
                    examples, validation = split_training_data(
                        key_select,
                        buffer,
                        config.n_max_examples,
                        max(config.n_max_examples // 4, 1),
                        n_held_out_chains,
                    )
                else:
                    examples = select_training_data(key_select, buffer, config.n_max_examples)
                reverse_kl = None
                if config.reverse_kl_weight > 0:
                    reverse_kl = ReverseKL(
                        functools.partial(flat_log_prob, data=data),
                        config.reverse_kl_weight,
                        max(config.effective_batch_size, 2),
                    )
                new_state, losses, is_finite = train_model(
                    model,
                    optimizer,
                    key_train,
                    train_state,
                    examples,
                    config.n_epochs,
                    config.effective_batch_size,
                    reverse_kl,
                    validation,
                    batch_sharding,
                )
                return buffer, new_state, losses, is_finite

        return _CompiledPhases(setup, local, global_, train)

    # ------------------------------------------------------------------ run

    def run(
        self,
        key: PRNGKey,
        initial_position: PyTree,
        *,
        checkpoint_path: str | os.PathLike[str] | None = None,
    ) -> SamplerResult:
        """Run the training loops, then the production loops, and return the result.

        The same key gives identical results; the Sampler object is not modified.

        Args:
            key: a JAX PRNG key (``jax.random.key(seed)``).
            initial_position: ``(n_chains, n_dim)`` array, or a pytree whose leaves have the
                leading axis ``n_chains``.
            checkpoint_path: a directory (created; it must not hold a checkpoint already)
                where the full state is saved atomically after every loop; continue an
                interrupted run with `Sampler.resume`. See `flowmc_like.checkpoint` for
                the format.

        Returns:
            A `SamplerResult`.
        """
        start = time.perf_counter()
        key = _validation.check_key(key)
        directory = None
        if checkpoint_path is not None:  # only process 0 writes files
            directory = (
                checkpoint.start_checkpoint(checkpoint_path)
                if _sharding.is_main_process()
                else Path(checkpoint_path)
            )
        prepared = self._prepare_run(key, initial_position)
        progress = _RunProgress()
        if directory is not None and _sharding.is_main_process():
            self._write_checkpoint_header(directory, key, initial_position, prepared)
        return self._run_loops(prepared, prepared.initial_state, progress, directory, start)

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
        info = checkpoint.load_run_info(directory)
        stored = _load_checkpoint_pickle(directory, checkpoint.SAMPLER)
        if isinstance(owner, Sampler):
            sampler = owner if data is None else owner._with_data(data)
            if log_prob is not None:
                raise TypeError(
                    "log_prob is taken from the sampler when resume is called on an instance; "
                    "call fm.Sampler.resume(path, log_prob=...) instead"
                )
            if devices is not None:
                sampler = copy.copy(sampler)
                sampler.devices = _sharding.check_devices(devices)
        else:
            if log_prob is None:
                log_prob = _stored_log_prob(directory, info)
            kwargs = dict(stored["init_kwargs"])
            if data is not None:
                kwargs["data"] = data
            sampler = owner(log_prob, devices=devices, **kwargs)
        sampler._check_matches_checkpoint(directory, info)
        key = stored["key"]
        if stored["key_impl"] is not None:
            key = jax.random.wrap_key_data(key, impl=stored["key_impl"])
        with warnings.catch_warnings():  # warned when the run started
            warnings.simplefilter("ignore", UserWarning)
            prepared = sampler._prepare_run(jnp.asarray(key), stored["initial_position"])
        template = prepared.initial_state
        loop_state, meta = checkpoint.load_state(directory, template)
        layout = prepared.layout
        loop_state = layout.put(
            _LoopState(*loop_state), _state_shardings(layout, sampler._has_global)
        )
        progress = _RunProgress.from_checkpoint(directory, meta)
        return sampler._run_loops(prepared, loop_state, progress, directory, start)

    # ------------------------------------------------------------------ run internals

    def _with_data(self, data: PyTree) -> Sampler:
        clone = copy.copy(self)
        clone.data = data
        return clone

    def _init_kwargs(self) -> dict[str, Any]:
        """The constructor arguments (besides ``log_prob``) that rebuild this sampler."""
        settings = dataclasses.asdict(self.config)
        accepted = inspect.signature(Sampler.__init__).parameters
        return {
            "n_dim": self.n_dim,
            "n_chains": self.n_chains,
            "local_kernel": self.local_kernel,
            "global_model": self.global_model,
            "data": self.data,
            **{name: value for name, value in settings.items() if name in accepted},
        }

    def _settings_fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree on with the sampler resuming it (JSON-able)."""
        return {
            "config": {k: repr(v) for k, v in dataclasses.asdict(self.config).items()},
            "local_kernel": repr(self.local_kernel),
            "global_model": repr(self.global_model),
        }

    def _write_checkpoint_header(
        self, directory: Path, key: PRNGKey, initial_position: PyTree, prepared: _PreparedRun
    ) -> None:
        is_typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        stored = {
            "init_kwargs": self._init_kwargs(),
            "initial_position": jax.device_get(initial_position),
            "key": np.asarray(jax.random.key_data(key) if is_typed else key),
            "key_impl": prepared.key_impl if is_typed else None,
        }
        if not checkpoint.save_pickle(directory, checkpoint.SAMPLER, stored):
            stored["init_kwargs"]["data"] = None
            if not checkpoint.save_pickle(directory, checkpoint.SAMPLER, stored):
                raise ValueError(
                    "checkpoint_path: the sampler's settings or initial_position cannot be "
                    "pickled, so the run cannot be checkpointed"
                )
            warnings.warn(
                "data cannot be pickled, so the checkpoint does not hold it; pass data= to "
                "Sampler.resume",
                UserWarning,
                stacklevel=3,
            )
        has_log_prob = checkpoint.save_pickle(directory, checkpoint.LOG_PROB, self.log_prob)
        checkpoint.save_run_info(
            directory,
            {
                "n_chains": prepared.n_chains,
                "n_dim": prepared.n_dim,
                "n_loops": self.config.n_training_loops + self.config.n_production_loops,
                "has_log_prob": has_log_prob,
                "settings": self._settings_fingerprint(),
            },
        )

    def _check_matches_checkpoint(self, directory: Path, info: dict[str, Any]) -> None:
        stored, mine = info["settings"], self._settings_fingerprint()
        differences = [
            f"{name}: checkpoint {stored[name]!r}, sampler {mine[name]!r}"
            for name in ("local_kernel", "global_model")
            if stored.get(name) != mine[name]
        ]
        for name, value in mine["config"].items():
            if name != "progress_bar" and stored["config"].get(name) != value:
                differences.append(
                    f"{name}: checkpoint {stored['config'].get(name)}, sampler {value}"
                )
        if differences:
            raise ValueError(
                f"checkpoint {str(directory)!r} was written by a sampler with other settings "
                "(" + "; ".join(differences) + "); resume it with the same settings"
            )

    def _prepare_run(self, key: PRNGKey, initial_position: PyTree) -> _PreparedRun:
        """Check the inputs, compile every phase and build the initial state (``setup``)."""
        spec, positions = self._prepare_positions(initial_position)
        n_chains, n_dim = (int(s) for s in positions.shape)
        _validation.check_data(self.data)
        _validation.check_log_prob_output(
            functools.partial(self._user_log_prob(spec), data=self.data), positions[0]
        )
        flat_log_prob = self._flat_log_prob(spec)
        self.local_kernel.check_target(functools.partial(flat_log_prob, data=self.data), positions)

        config = self.config
        is_typed_key = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        key_impl = (
            str(jax.random.key_impl(key)) if is_typed_key else str(jax.config.jax_default_prng_impl)
        )
        layout = ChainLayout(self.devices, n_chains)
        phases = self._build_phases(spec, n_chains, n_dim, key_impl, layout)
        kernel_params = self.local_kernel.init_params(n_dim)
        is_adapting = np.asarray(True)
        data = self.data
        if layout.is_sharded:  # every input as a global array on the mesh
            key = layout.put(jax.random.key_data(key) if is_typed_key else key, layout.replicated)
            positions = layout.put(positions, layout.chains)
            kernel_params, is_adapting, data = layout.put(
                (kernel_params, is_adapting, data), layout.replicated
            )

        # Lower the phases one by one and hand each to a compiler thread as soon as it is lowered
        # (XLA compiles outside the GIL, so compiling overlaps the tracing of the next phase);
        # setup (small) goes first, then the largest (train). Compilation is measured on its
        # own, and nothing later compiles (no eager op runs in the loop).
        compile_start = time.perf_counter()
        with _PhaseCompiler() as compiler:
            lowered_setup = phases.setup.lower(key, positions, kernel_params, data)
            platform = (self.devices[0] if self.devices else jax.devices()[0]).platform
            compiler.submit("setup", lowered_setup, _run_once_options(platform))
            key_data_info, states, adapt_state, train_state, buffer = lowered_setup.out_info
            loop_key = key_data_info.update(shape=key_data_info.shape[2:])
            if self._has_global:
                dtype = positions.dtype
                local_draws = jax.ShapeDtypeStruct((n_chains, config.n_kept_local, n_dim), dtype)
                global_draws = jax.ShapeDtypeStruct((n_chains, config.n_kept_global, n_dim), dtype)
                train_keys = key_data_info.update(shape=(2, *loop_key.shape))
                compiler.submit(
                    "train",
                    phases.train.lower(
                        train_keys, train_state, buffer, local_draws, global_draws, data
                    ),
                )
                compiler.submit(
                    "global", phases.global_.lower(loop_key, states, train_state.params, data)
                )
            latent_params = train_state.params if config.local_in_latent_space else None
            compiler.submit(
                "local",
                phases.local.lower(
                    loop_key, states, adapt_state, kernel_params, is_adapting, latent_params, data
                ),
            )
            compiled = compiler.results()
        loop_keys, states, adapt_state, train_state, buffer = compiled["setup"](
            key, positions, kernel_params, data
        )
        states = _replace_nonfinite_starts(states, layout)
        initial_state = _LoopState(
            states=states,
            adapt_state=adapt_state,
            train_state=train_state,
            buffer=buffer,
            frozen_params=kernel_params,
            final_params=kernel_params,
            is_adapting=is_adapting,
        )
        return _PreparedRun(
            phases=_CompiledPhases(
                None, compiled["local"], compiled.get("global"), compiled.get("train")
            ),
            spec=spec,
            n_chains=n_chains,
            n_dim=n_dim,
            key_impl=key_impl,
            loop_keys=np.asarray(layout.to_host(loop_keys)),
            initial_state=initial_state,
            compile_seconds=time.perf_counter() - compile_start,
            layout=layout,
            data=data,
        )

    def _run_loops(
        self,
        prepared: _PreparedRun,
        state: _LoopState,
        progress: _RunProgress,
        directory: Path | None,
        start: float,
    ) -> SamplerResult:
        """Run the loops from ``progress.n_done`` on, checkpointing each into ``directory``."""
        config = self.config
        local, global_, train = (
            prepared.phases.local,
            prepared.phases.global_,
            prepared.phases.train,
        )
        n_loops = config.n_training_loops + config.n_production_loops
        bar = _progress_bar(n_loops, config.progress_bar, initial=progress.n_done)
        latent = config.local_in_latent_space
        layout, data = prepared.layout, prepared.data
        writes_files = directory is not None and _sharding.is_main_process()
        try:
            for loop_index in range(progress.n_done, n_loops):
                loop_start = time.perf_counter()
                is_training = loop_index < config.n_training_loops
                if loop_index == config.n_training_loops:
                    state = state._replace(
                        frozen_params=state.final_params,
                        is_adapting=layout.put(np.asarray(False), layout.replicated),
                    )
                loop_keys = prepared.loop_keys[loop_index]  # local, global, select, train
                key_local, key_global, key_train = layout.put(
                    (loop_keys[0], loop_keys[1], loop_keys[2:]), layout.replicated
                )
                train_state = state.train_state
                states, adapt_state, local_trace, local_summary, used_params, final_params = local(
                    key_local,
                    state.states,
                    state.adapt_state,
                    state.frozen_params,
                    state.is_adapting,
                    train_state.params if latent else None,
                    data,
                )
                buffer = state.buffer
                global_trace = global_summary = losses = is_finite = new_state = None
                if global_ is not None:
                    states, global_trace, global_summary = global_(
                        key_global, states, train_state.params, data
                    )
                    if is_training:
                        buffer, new_state, losses, is_finite = train(
                            key_train,
                            train_state,
                            buffer,
                            local_trace.position,
                            global_trace.position,
                            data,
                        )
                host = layout.to_host(
                    {
                        "traces": [t for t in (local_trace, global_trace) if t is not None],
                        "local_summary": local_summary,
                        "global_summary": global_summary,
                        "losses": losses,
                        "is_finite": is_finite,
                        "step_size": used_params,
                    }
                )
                discarded = False
                if losses is not None:
                    if bool(host["is_finite"]):
                        train_state = new_state
                    else:
                        discarded = True
                        logger.warning(
                            "training loop %d produced a non-finite loss or parameters; "
                            "its update was discarded and the previous model kept",
                            loop_index,
                        )
                state = state._replace(
                    states=states,
                    adapt_state=adapt_state,
                    train_state=train_state,
                    buffer=buffer,
                    final_params=final_params,
                )
                output = _loop_output(host, is_training, discarded, config)
                progress.add(output, time.perf_counter() - loop_start)
                if directory is not None:
                    host_state = layout.to_host(state)  # collective on several processes
                    if writes_files:
                        _save_loop_checkpoint(
                            directory,
                            loop_index,
                            output,
                            host_state,
                            progress,
                            time.perf_counter() - start,
                        )
                _update_progress(bar, output.record, config)
        finally:
            if bar is not None:
                bar.close()
        n_discarded = sum(o.record["training_discarded"] for o in progress.outputs)
        if n_discarded:
            warnings.warn(
                f"{n_discarded} of {config.n_training_loops} training loops produced a "
                "non-finite loss or model parameters; their updates were discarded and the "
                "last good model kept (see result.history.training_discarded)",
                RuntimeWarning,
                stacklevel=3,
            )
        return _assemble_result(
            outputs=progress.outputs,
            config=config,
            spec=prepared.spec,
            constrain=self._constrain,
            kernel_params=layout.to_host(state.frozen_params),
            model_params=(
                None if state.train_state is None else layout.to_host(state.train_state.params)
            ),
            timings={
                "compile": prepared.compile_seconds,
                "training": progress.seconds["training"],
                "production": progress.seconds["production"],
                "total": progress.seconds["previous_total"] + time.perf_counter() - start,
            },
        )


# ---------------------------------------------------------------------- shardings


def _state_shardings(layout: ChainLayout, has_global: bool) -> _LoopState:
    """The sharding (prefix) of each part of a `_LoopState` on ``layout``'s mesh."""
    chains, replicated = layout.chains, layout.replicated
    return _LoopState(
        states=chains,
        adapt_state=replicated,
        train_state=replicated,
        buffer=DrawBuffer(draws=chains, n_filled=replicated) if has_global else replicated,
        frozen_params=replicated,
        final_params=replicated,
        is_adapting=replicated,
    )


def _phase_shardings(layout: ChainLayout, has_global: bool) -> dict[str, tuple[Any, Any]]:
    """``(in_shardings, out_shardings)`` of each phase, as prefixes of its arguments/results.

    Kernel states, traces, per-chain summaries and the training window are split along the
    chain axis; keys, kernel and adaptation parameters, the model, the optimiser and ``data``
    are replicated.
    """
    chains, replicated = layout.chains, layout.replicated
    state = _state_shardings(layout, has_global)
    return {
        # (key, positions, kernel_params, data)
        # -> (loop keys, kernel states, adaptation state, train state, window)
        "setup": (
            (replicated, chains, replicated, replicated),
            (replicated, chains, replicated, replicated, state.buffer),
        ),
        # (key, states, adapt_state, frozen_params, is_adapting, model_params, data)
        # -> (states, adapt_state, trace, summary, used params, final params)
        "local": (
            (replicated, chains, replicated, replicated, replicated, replicated, replicated),
            (chains, replicated, chains, chains, replicated, replicated),
        ),
        # (key, states, model_params, data) -> (states, trace, summary)
        "global": ((replicated, chains, replicated, replicated), (chains, chains, chains)),
        # (key, train_state, window, local draws, global draws, data)
        # -> (window, train_state, losses, is_finite)
        "train": (
            (replicated, replicated, state.buffer, chains, chains, replicated),
            (state.buffer, replicated, replicated, replicated),
        ),
    }


# ---------------------------------------------------------------------- host-side helpers


def _run_once_options(platform: str) -> dict[str, Any]:
    """XLA options for phases that run once (``setup``), whose run time does not matter.

    Skipping LLVM's optimisations halves their compile time; on CPU, XLA's older loop
    emitters compile a further 20 % faster (they run slower, which is why the loop phases
    keep the default emitters).
    """
    options: dict[str, Any] = {"xla_backend_optimization_level": 0}
    if platform == "cpu":
        options["xla_cpu_use_fusion_emitters"] = False
    return options


class _PhaseCompiler:
    """Compiles lowered phases on background threads while the caller lowers the next ones.

    XLA compiles outside the GIL, so a phase compiles while Python traces the following one.
    Use as a context manager: `submit` each lowered phase, then `results` waits for all of them
    and raises the first compile error. Leaving the block on an exception drops the compiles
    not yet started and waits for the running ones.
    """

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}

    def __enter__(self) -> _PhaseCompiler:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)

    def submit(self, name: str, lowered: Any, options: dict[str, Any] | None = None) -> None:
        """Start compiling ``lowered`` (a ``jax.stages.Lowered``) with XLA ``options``."""
        self._futures[name] = self._pool.submit(lowered.compile, compiler_options=options)

    def results(self) -> dict[str, Any]:
        """Every submitted phase, compiled, by name."""
        return {name: future.result() for name, future in self._futures.items()}


def _replace_nonfinite_starts(states: Any, layout: ChainLayout) -> Any:
    """Chains whose initial log density is not finite restart from copies of finite ones.

    Works on the host: the kernel states (target evaluated at every start by `setup`) are
    gathered with numpy, so nothing is compiled. Raises if no chain starts at a finite value.
    """
    values = np.asarray(layout.to_host(states.log_prob))
    bad = ~np.isfinite(values)
    if bad.all():
        shown = ", ".join(str(v) for v in values[:20])
        raise ValueError(
            "log_prob is not finite at any initial_position: chains "
            f"{np.arange(values.shape[0]).tolist()[:20]} have log_prob [{shown}]"
            f"{' ...' if values.shape[0] > 20 else ''}; start the chains inside the "
            "support of the target"
        )
    if not bad.any():
        return states
    chains = np.flatnonzero(bad)
    good = np.flatnonzero(~bad)
    source = np.arange(values.shape[0])
    source[chains] = good[np.arange(len(chains)) % len(good)]
    warnings.warn(
        f"log_prob is not finite at initial_position for chains {chains.tolist()[:20]}; "
        "they start from copies of chains with a finite log_prob instead",
        UserWarning,
        stacklevel=3,
    )
    host_states = layout.to_host(states)
    replaced = jax.tree.map(lambda leaf: np.asarray(leaf)[source], host_states)
    return layout.put(replaced, layout.chains)


def _loop_output(
    host: dict[str, Any], is_training: bool, discarded: bool, config: SamplerConfig
) -> _LoopOutput:
    """One loop's host arrays as a `_LoopOutput` with its history record."""
    trace = Trace(*(np.concatenate(fields, axis=1) for fields in zip(*host["traces"], strict=True)))
    n_chains = trace.position.shape[0]
    local, global_ = host["local_summary"], host["global_summary"]
    no_steps = np.full(n_chains, np.nan)
    local_acceptance = local.acceptance_prob if config.n_local_steps else no_steps
    global_acceptance = no_steps if global_ is None else global_.acceptance_prob
    losses = host["losses"]
    record = {
        "is_training": is_training,
        "loss": np.full(config.n_epochs, np.nan) if losses is None else np.asarray(losses),
        "local_acceptance": float(np.mean(local_acceptance)),
        "global_acceptance": float(np.mean(global_acceptance)),
        "step_size": _step_size_of(host["step_size"]),
        "training_discarded": discarded,
        "local_nonfinite": int(np.sum(local.n_nonfinite)),
        "global_nonfinite": 0 if global_ is None else int(np.sum(global_.n_nonfinite)),
    }
    is_global = np.zeros(trace.position.shape[1], bool)
    is_global[config.n_kept_local :] = True
    return _LoopOutput(trace, is_global, local_acceptance, global_acceptance, record)


def _loop_output_arrays(output: _LoopOutput) -> dict[str, np.ndarray]:
    """A `_LoopOutput` as named arrays (one loop file of a checkpoint)."""
    arrays = {f"trace_{name}": np.asarray(v) for name, v in output.trace._asdict().items()}
    arrays.update(
        is_global=output.is_global,
        chain_local_acceptance=np.asarray(output.local_acceptance),
        chain_global_acceptance=np.asarray(output.global_acceptance),
    )
    arrays.update({f"record_{name}": np.asarray(v) for name, v in output.record.items()})
    return arrays


def _loop_output_from_arrays(arrays: dict[str, np.ndarray]) -> _LoopOutput:
    """Inverse of `_loop_output_arrays`."""
    record: dict[str, Any] = {
        name[len("record_") :]: arrays[name] for name in arrays if name.startswith("record_")
    }
    for name, kind in _RECORD_TYPES.items():
        record[name] = kind(record[name])
    return _LoopOutput(
        Trace(*(arrays[f"trace_{name}"] for name in Trace._fields)),
        arrays["is_global"],
        arrays["chain_local_acceptance"],
        arrays["chain_global_acceptance"],
        record,
    )


_RECORD_TYPES: dict[str, Callable[[Any], Any]] = {
    "is_training": bool,
    "loss": np.asarray,
    "local_acceptance": float,
    "global_acceptance": float,
    "step_size": float,
    "training_discarded": bool,
    "local_nonfinite": int,
    "global_nonfinite": int,
}


def _save_loop_checkpoint(
    directory: Path,
    loop_index: int,
    output: _LoopOutput,
    state: _LoopState,
    progress: _RunProgress,
    elapsed: float,
) -> None:
    """Write loop ``loop_index``'s file, then replace the state (the checkpoint's commit)."""
    checkpoint.save_loop(directory, loop_index, _loop_output_arrays(output))
    seconds = dict(progress.seconds)
    seconds["previous_total"] = seconds["previous_total"] + elapsed
    checkpoint.save_state(directory, state, {"n_done": loop_index + 1, "seconds": seconds})


def _load_checkpoint_pickle(directory: Path, name: str) -> Any:
    try:
        return checkpoint.load_pickle(directory, name)
    except FileNotFoundError as error:
        raise ValueError(
            f"checkpoint {str(directory)!r} is incomplete: {name} is missing"
        ) from error
    except Exception as error:  # pickle raises many kinds
        raise ValueError(
            f"checkpoint file {directory / name} cannot be read ({type(error).__name__}: {error})"
        ) from error


def _stored_log_prob(directory: Path, info: dict[str, Any]) -> Any:
    """The log density pickled in the checkpoint, or a clear error saying to pass it."""
    if not info.get("has_log_prob"):
        raise ValueError(
            f"checkpoint {str(directory)!r} does not hold log_prob (pickle cannot store a "
            "lambda, a function defined inside another one or a model target); pass it: "
            "fm.Sampler.resume(path, log_prob=...)"
        )
    try:
        return checkpoint.load_pickle(directory, checkpoint.LOG_PROB)
    except Exception as error:  # the defining module is not importable here
        raise ValueError(
            f"the log_prob stored in checkpoint {str(directory)!r} cannot be loaded "
            f"({type(error).__name__}: {error}); make the module defining it importable, "
            "or pass it: fm.Sampler.resume(path, log_prob=...)"
        ) from error


def _progress_bar(total: int, enabled: bool, initial: int = 0) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="flowmc_like", unit="loop")


def _update_progress(progress: Any, record: dict[str, Any], config: SamplerConfig) -> None:
    if progress is None:
        return
    phase = "training" if record["is_training"] else "production"
    postfix = {
        "phase": phase,
        "local_acc": f"{record['local_acceptance']:.2f}",
        "global_acc": f"{record['global_acceptance']:.2f}",
    }
    if record["is_training"] and np.isfinite(record["loss"][-1]):
        postfix["loss"] = f"{record['loss'][-1]:.3f}"
    progress.set_postfix(postfix, refresh=False)
    progress.update(1)


def _assemble_result(
    *,
    outputs: list[_LoopOutput],
    config: SamplerConfig,
    spec: PositionSpec,
    constrain: Callable[[Any], dict[str, np.ndarray]] | None,
    kernel_params: Any,
    model_params: Any,
    timings: dict[str, float],
) -> SamplerResult:
    n_training = config.n_training_loops

    def stack(loops: list[_LoopOutput], field: str) -> np.ndarray:
        return np.concatenate([getattr(o.trace, field) for o in loops], axis=1)

    def stack_is_global(loops: list[_LoopOutput], n_chains: int) -> np.ndarray:
        if not loops:
            return np.zeros((n_chains, 0), bool)
        flags = np.concatenate([o.is_global for o in loops])
        return np.broadcast_to(flags, (n_chains, flags.size)).copy()

    warm, prod = outputs[:n_training], outputs[n_training:]
    n_chains, _, n_dim = outputs[0].trace.position.shape
    dtype = outputs[0].trace.position.dtype
    records = [o.record for o in outputs]
    history = History(
        is_training=np.array([r["is_training"] for r in records]),
        loss=np.stack([r["loss"] for r in records]),
        local_acceptance=np.array([r["local_acceptance"] for r in records]),
        global_acceptance=np.array([r["global_acceptance"] for r in records]),
        step_size=np.array([r["step_size"] for r in records]),
        training_discarded=np.array([r["training_discarded"] for r in records]),
        local_nonfinite=np.array([r["local_nonfinite"] for r in records], dtype=np.int64),
        global_nonfinite=np.array([r["global_nonfinite"] for r in records], dtype=np.int64),
    )
    return SamplerResult(
        flat_samples=stack(prod, "position"),
        log_prob=stack(prod, "log_prob"),
        is_accepted=stack(prod, "is_accepted"),
        is_global=stack_is_global(prod, n_chains),
        flat_warmup_samples=stack(warm, "position")
        if warm
        else np.zeros((n_chains, 0, n_dim), dtype),
        warmup_log_prob=stack(warm, "log_prob") if warm else np.zeros((n_chains, 0), float),
        warmup_is_accepted=stack(warm, "is_accepted") if warm else np.zeros((n_chains, 0), bool),
        warmup_is_global=stack_is_global(warm, n_chains),
        local_acceptance=np.mean([o.local_acceptance for o in prod], axis=0),
        global_acceptance=np.mean([o.global_acceptance for o in prod], axis=0),
        history=history,
        timings=timings,
        kernel_params=kernel_params,
        model_params=model_params,
        position_spec=spec,
        constrain=constrain,
    )
