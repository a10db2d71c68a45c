"""`Sampler`: a thin orchestrator driving jitted phases from a Python loop over loops."""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like import _validation
from flowmc_like._types import Array, PRNGKey, PyTree, Space
from flowmc_like.adapters.ppl import ModelLogDensity, ModelTarget
from flowmc_like.adapters.pytree import PositionSpec
from flowmc_like.config import SamplerConfig
from flowmc_like.kernels.base import AbstractLocalKernel
from flowmc_like.kernels.mala import MALA
from flowmc_like.kernels.site_flip import SiteFlip
from flowmc_like.loop import (
    GlobalState,
    Trace,
    init_kernel_states,
    run_global_phase,
    run_latent_local_phase,
    run_local_phase,
)
from flowmc_like.models.autoregressive import Autoregressive
from flowmc_like.models.base import AbstractGlobalModel
from flowmc_like.models.real_nvp import RealNVP
from flowmc_like.result import History, SamplerResult
from flowmc_like.training.data import (
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
    trace: Trace
    is_global: np.ndarray


class _CompiledPhases(NamedTuple):
    setup: Callable[..., Any]
    local: Callable[..., Any]
    global_: Callable[..., Any] | None
    train: Callable[..., Any] | None


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
            when the target's local scale varies or its shape is curved or ill-conditioned
            (funnels, banana-shaped ridges, strongly correlated Gaussians); each local step
            then also costs a pass through the flow. Needs a continuous flow model. Default
            False.
        data: any pytree passed to ``log_prob`` as its second argument (traced, never baked in).
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
        data: PyTree = None,
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
        self.data = data

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
        if not isinstance(initial_position, jax.Array | np.ndarray):
            sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
            if len(sizes) != 1 or -1 in sizes:
                shapes = [tuple(np.shape(leaf)) for leaf in leaves]
                raise ValueError(
                    "initial_position leaves must share a leading axis of size n_chains; "
                    f"got leaf shapes {shapes}"
                )
            for leaf in leaves:
                _validation.check_position_dtype(
                    "initial_position", np.asarray(leaf).dtype, self._n_categories
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
        self, spec: PositionSpec, n_chains: int, n_dim: int, key_impl: str
    ) -> _CompiledPhases:
        """The run's jitted phases, not yet compiled.

        Nothing in a run executes eagerly (each eager op compiles on its own): `setup` draws
        every key of the run and builds every initial state in one call, and the phases take
        raw key data (``uint32``; rewrapped inside with ``key_impl``) so the host only indexes
        numpy arrays between calls.
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

        def wrap(key_data: Array) -> PRNGKey:
            return jax.random.wrap_key_data(key_data, impl=key_impl)

        @jax.jit
        def setup(key, positions, kernel_params, data):
            if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
                key = wrap(key)
            _, key_model, key_loops = jax.random.split(key, 3)
            loop_keys = jax.vmap(lambda k: jax.random.split(k, 3))(
                jax.random.split(key_loops, n_loops)
            )
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

        @jax.jit
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
            return states, adapt_state, trace, used_params, adaptation.final(adapt_state)

        global_ = train = None
        if has_global:

            @jax.jit
            def global_(key_data, states, model_params, data):
                log_prob_fn = functools.partial(flat_log_prob, data=data)
                current = GlobalState(states.position, states.log_prob)
                final, trace = run_global_phase(
                    model,
                    log_prob_fn,
                    config.n_global_steps,
                    config.global_chunk_size,
                    wrap(key_data),
                    current,
                    model_params,
                )
                return init_kernel_states(kernel, log_prob_fn, final.position), trace

            @jax.jit
            def train(key_data, train_state, buffer, local_draws, global_draws, data):
                buffer = append_draws(buffer, jnp.concatenate([local_draws, global_draws], 1))
                key_select, key_train = jax.random.split(wrap(key_data))
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
                )
                return buffer, new_state, losses, is_finite

        return _CompiledPhases(setup, local, global_, train)

    # ------------------------------------------------------------------ run

    def run(self, key: PRNGKey, initial_position: PyTree) -> SamplerResult:
        """Run the training loops, then the production loops, and return the result.

        The same key gives identical results; the Sampler object is not modified.

        Args:
            key: a JAX PRNG key (``jax.random.key(seed)``).
            initial_position: ``(n_chains, n_dim)`` array, or a pytree whose leaves have the
                leading axis ``n_chains``.

        Returns:
            A `SamplerResult`.
        """
        start = time.perf_counter()
        key = _validation.check_key(key)
        spec, positions = self._prepare_positions(initial_position)
        n_chains, n_dim = (int(s) for s in positions.shape)
        if self.data is not None:
            jax.tree.map(jnp.asarray, self.data)  # fails early on non-array leaves
        _validation.check_log_prob_output(
            functools.partial(self._user_log_prob(spec), data=self.data), positions[0]
        )
        flat_log_prob = self._flat_log_prob(spec)
        self.local_kernel.check_target(functools.partial(flat_log_prob, data=self.data), positions)

        config = self.config
        key_impl = (
            str(jax.random.key_impl(key))
            if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
            else str(jax.config.jax_default_prng_impl)
        )
        phases = self._build_phases(spec, n_chains, n_dim, key_impl)
        kernel_params = self.local_kernel.init_params(n_dim)
        is_adapting = np.asarray(True)

        # Lower every phase, then compile them all concurrently, so that compilation is
        # measured on its own and nothing later compiles (no eager op runs in the loop).
        compile_start = time.perf_counter()
        lowered = {"setup": phases.setup.lower(key, positions, kernel_params, self.data)}
        key_data_info, states, adapt_state, train_state, buffer = lowered["setup"].out_info
        loop_key = key_data_info.update(shape=key_data_info.shape[2:])
        latent_params = train_state.params if config.local_in_latent_space else None
        lowered["local"] = phases.local.lower(
            loop_key, states, adapt_state, kernel_params, is_adapting, latent_params, self.data
        )
        if self._has_global:
            dtype = positions.dtype
            lowered["global"] = phases.global_.lower(
                loop_key, states, train_state.params, self.data
            )
            local_draws = jax.ShapeDtypeStruct((n_chains, config.n_local_steps, n_dim), dtype)
            global_draws = jax.ShapeDtypeStruct((n_chains, config.n_global_steps, n_dim), dtype)
            lowered["train"] = phases.train.lower(
                loop_key, train_state, buffer, local_draws, global_draws, self.data
            )
        compiled = _compile_all(lowered)
        local, global_, train = compiled["local"], compiled.get("global"), compiled.get("train")
        loop_keys, states, adapt_state, train_state, buffer = compiled["setup"](
            key, positions, kernel_params, self.data
        )
        loop_keys = np.asarray(loop_keys)
        states = _replace_nonfinite_starts(states)
        compile_seconds = time.perf_counter() - compile_start

        n_loops = config.n_training_loops + config.n_production_loops
        records: list[dict[str, Any]] = []
        traces: list[_LoopOutput] = []
        progress = _progress_bar(n_loops, config.progress_bar)
        phase_seconds = {"training": 0.0, "production": 0.0}
        frozen_params = final_params = kernel_params
        try:
            for loop_index in range(n_loops):
                loop_start = time.perf_counter()
                is_training = loop_index < config.n_training_loops
                if loop_index == config.n_training_loops:
                    frozen_params = final_params
                    is_adapting = np.asarray(False)
                key_local, key_global, key_train = loop_keys[loop_index]
                states, adapt_state, local_trace, used_params, final_params = local(
                    key_local,
                    states,
                    adapt_state,
                    frozen_params,
                    is_adapting,
                    train_state.params if config.local_in_latent_space else None,
                    self.data,
                )
                global_trace = losses = is_finite = None
                if global_ is not None:
                    states, global_trace = global_(
                        key_global, states, train_state.params, self.data
                    )
                    if is_training:
                        buffer, new_state, losses, is_finite = train(
                            key_train,
                            train_state,
                            buffer,
                            local_trace.position,
                            global_trace.position,
                            self.data,
                        )
                host = jax.device_get(
                    {
                        "traces": [t for t in (local_trace, global_trace) if t is not None],
                        "losses": losses,
                        "is_finite": is_finite,
                        "step_size": used_params,
                    }
                )
                host["trace"] = Trace(
                    *(
                        np.concatenate(fields, axis=1)
                        for fields in zip(*host["traces"], strict=True)
                    )
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
                records.append(
                    _loop_record(host, is_training, discarded, config, global_ is not None)
                )
                is_global = np.zeros(
                    config.n_draws_per_loop if global_ else config.n_local_steps, bool
                )
                is_global[config.n_local_steps :] = True
                traces.append(_LoopOutput(host["trace"], is_global))
                phase_seconds["training" if is_training else "production"] += (
                    time.perf_counter() - loop_start
                )
                _update_progress(progress, loop_index, records[-1], config)
        finally:
            if progress is not None:
                progress.close()

        return _assemble_result(
            traces=traces,
            records=records,
            config=config,
            spec=spec,
            constrain=self._constrain,
            kernel_params=jax.device_get(frozen_params),
            model_params=None if train_state is None else jax.device_get(train_state.params),
            timings={
                "compile": compile_seconds,
                "training": phase_seconds["training"],
                "production": phase_seconds["production"],
                "total": time.perf_counter() - start,
            },
        )


# ---------------------------------------------------------------------- host-side helpers


_RUN_ONCE_OPTIONS = {"xla_backend_optimization_level": 0}
"""XLA options for phases that run once (``setup``): skipping LLVM's optimisations halves
their compile time, and their run time (one target evaluation per chain) does not matter."""


def _compile_all(lowered: dict[str, Any]) -> dict[str, Any]:
    """Compile the lowered phases concurrently (XLA compiles outside the GIL), one per core."""

    def compile_phase(name: str) -> Any:
        options = _RUN_ONCE_OPTIONS if name == "setup" else None
        return lowered[name].compile(compiler_options=options)

    n_workers = min(len(lowered), os.cpu_count() or 1)
    if n_workers <= 1:
        return {name: compile_phase(name) for name in lowered}
    with concurrent.futures.ThreadPoolExecutor(max_workers=n_workers) as pool:
        futures = {name: pool.submit(compile_phase, name) for name in lowered}
        return {name: future.result() for name, future in futures.items()}


def _replace_nonfinite_starts(states: Any) -> Any:
    """Chains whose initial log density is not finite restart from copies of finite ones.

    Works on the host: the kernel states (target evaluated at every start by `setup`) are
    gathered with numpy, so nothing is compiled. Raises if no chain starts at a finite value.
    """
    values = np.asarray(states.log_prob)
    bad = ~np.isfinite(values)
    if bad.all():
        raise ValueError(
            "log_prob is not finite at any initial_position (every chain starts where the target "
            "is NaN or +-inf); start the chains inside the support of the target"
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
    return jax.tree.map(lambda leaf: np.asarray(leaf)[source], states)


def _loop_record(
    host: dict[str, Any],
    is_training: bool,
    discarded: bool,
    config: SamplerConfig,
    has_global: bool,
) -> dict[str, Any]:
    trace = host["trace"]
    local_prob = trace.acceptance_prob[:, : config.n_local_steps]
    global_prob = trace.acceptance_prob[:, config.n_local_steps :]
    losses = host["losses"]
    return {
        "is_training": is_training,
        "loss": np.full(config.n_epochs, np.nan) if losses is None else np.asarray(losses),
        "local_acceptance": float(np.mean(local_prob)) if local_prob.size else float("nan"),
        "global_acceptance": float(np.mean(global_prob)) if has_global else float("nan"),
        "step_size": _step_size_of(host["step_size"]),
        "training_discarded": discarded,
    }


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="flowmc_like", unit="loop")


def _update_progress(
    progress: Any, loop_index: int, record: dict[str, Any], config: SamplerConfig
) -> None:
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
    traces: list[_LoopOutput],
    records: list[dict[str, Any]],
    config: SamplerConfig,
    spec: PositionSpec,
    constrain: Callable[[Any], dict[str, np.ndarray]] | None,
    kernel_params: Any,
    model_params: Any,
    timings: dict[str, float],
) -> SamplerResult:
    n_training = config.n_training_loops

    def stack(outputs: list[_LoopOutput], field: str) -> np.ndarray:
        if not outputs:
            return np.zeros((0,))
        return np.concatenate([getattr(o.trace, field) for o in outputs], axis=1)

    def stack_is_global(outputs: list[_LoopOutput], n_chains: int) -> np.ndarray:
        if not outputs:
            return np.zeros((n_chains, 0), bool)
        flags = np.concatenate([o.is_global for o in outputs])
        return np.broadcast_to(flags, (n_chains, flags.size)).copy()

    warm, prod = traces[:n_training], traces[n_training:]
    n_chains = traces[0].trace.position.shape[0]
    n_dim = traces[0].trace.position.shape[2]
    dtype = traces[0].trace.position.dtype

    def empty_positions() -> np.ndarray:
        return np.zeros((n_chains, 0, n_dim), dtype)

    def empty_stats(kind: type) -> np.ndarray:
        return np.zeros((n_chains, 0), kind)

    prod_probs = stack(prod, "acceptance_prob")
    local_probs = prod_probs[:, np.tile(~prod[0].is_global, len(prod))]
    global_probs = prod_probs[:, np.tile(prod[0].is_global, len(prod))]
    history = History(
        is_training=np.array([r["is_training"] for r in records]),
        loss=np.stack([r["loss"] for r in records]),
        local_acceptance=np.array([r["local_acceptance"] for r in records]),
        global_acceptance=np.array([r["global_acceptance"] for r in records]),
        step_size=np.array([r["step_size"] for r in records]),
        training_discarded=np.array([r["training_discarded"] for r in records]),
    )
    return SamplerResult(
        flat_samples=stack(prod, "position"),
        log_prob=stack(prod, "log_prob"),
        is_accepted=stack(prod, "is_accepted"),
        is_global=stack_is_global(prod, n_chains),
        flat_warmup_samples=stack(warm, "position") if warm else empty_positions(),
        warmup_log_prob=stack(warm, "log_prob") if warm else empty_stats(float),
        warmup_is_accepted=stack(warm, "is_accepted") if warm else empty_stats(bool),
        warmup_is_global=stack_is_global(warm, n_chains),
        local_acceptance=(
            local_probs.mean(axis=1) if local_probs.shape[1] else np.full(n_chains, np.nan)
        ),
        global_acceptance=(
            global_probs.mean(axis=1) if global_probs.shape[1] else np.full(n_chains, np.nan)
        ),
        history=history,
        timings=timings,
        kernel_params=kernel_params,
        model_params=model_params,
        position_spec=spec,
        constrain=constrain,
    )
