"""The jitted programs of a run, and how their inputs and outputs are sharded.

A run is four programs: ``setup`` (every key of the run and the initial state, once), then
per loop ``local`` (the local phase), ``global_`` (the global phase) and ``train`` (append
the loop's draws to the training window and fit the model). They are built here from the
phase functions of `flowmc_like.phases`, jitted but not compiled (`flowmc_like.compiler`
compiles them; `flowmc_like.driver` calls them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like._sharding import ChainLayout
from flowmc_like._types import Array, PRNGKey, PyTree
from flowmc_like.config import SamplerConfig
from flowmc_like.kernels.base import AbstractLocalKernel
from flowmc_like.models.base import AbstractFlow, AbstractGlobalModel
from flowmc_like.phases import (
    GlobalState,
    init_kernel_states,
    local_trace,
    run_global_phase,
    run_latent_local_phase,
    run_local_phase,
    select_tree,
    summarize_and_thin,
)
from flowmc_like.tempering import (
    DEFAULT_MAX_TEMPERATURE,
    TemperedTarget,
    TemperingState,
    init_ladder,
    init_tempering,
    reweighted_hot_examples,
    run_tempered_local_phase,
)
from flowmc_like.training.data import (
    DrawBuffer,
    append_draws,
    init_buffer,
    select_training_data,
    split_training_data,
)
from flowmc_like.training.optim import make_optimizer
from flowmc_like.training.trainer import ReverseKL, init_train_state, train_model
from flowmc_like.training.variational import (
    train_variational,
    variational_plan,
    variational_samples,
)

__all__ = [
    "LoopState",
    "Programs",
    "build_programs",
    "has_global_moves",
    "latent_mode",
    "program_shardings",
    "state_shardings",
]


class LoopState(NamedTuple):
    """Everything the next loop starts from (a pytree; what a checkpoint stores).

    Attributes:
        states: the kernel states, batched over chains.
        adapt_state: the kernel's adaptation state.
        train_state: the model's parameters and optimiser state (None without global moves).
        buffer: the training window of recent draws (None without global moves).
        frozen_params: the kernel params used when not adapting (production).
        final_params: the adaptation's result so far (frozen when production starts).
        is_adapting: ``()`` bool, true during the training loops.
        tempering: the hot replicas and the ladder (`flowmc_like.tempering`), None without
            tempering. With tempering ``adapt_state``, ``frozen_params`` and
            ``final_params`` have a leading axis of one entry per temperature level.
    """

    states: Any
    adapt_state: PyTree
    train_state: Any
    buffer: Any
    frozen_params: PyTree
    final_params: PyTree
    is_adapting: Any
    tempering: Any = None


class Programs(NamedTuple):
    """The run's programs (jitted functions, or their compiled executables).

    ``global_`` and ``train`` are None for runs without global moves; ``setup`` is None once
    it has run; ``variational`` (the pre-training, `flowmc_like.training.variational`) and
    ``restart`` (chains restarted at the pre-trained model's draws) are None unless the run
    pre-trains its model.
    """

    setup: Callable[..., Any] | None
    local: Callable[..., Any]
    global_: Callable[..., Any] | None
    train: Callable[..., Any] | None
    variational: Callable[..., Any] | None = None
    restart: Callable[..., Any] | None = None


HOT_EXAMPLE_SHARE = 0.25
"""With tempering, the share of each training loop's examples drawn from the hot replicas
(reweighted towards ``beta = 1``); the rest are the chains' own draws."""


def has_global_moves(model: AbstractGlobalModel | None, config: SamplerConfig) -> bool:
    """Whether a run with ``model`` and ``config`` takes global moves (and trains)."""
    return model is not None and config.n_global_steps > 0


def latent_mode(model: AbstractGlobalModel | None, config: SamplerConfig) -> str:
    """Where the local kernel runs: ``"x"``, ``"latent"`` (always) or ``"auto"`` (decided).

    ``local_in_latent_space=True`` gives ``"latent"`` (`flowmc_like.sampler` has checked it
    can), ``False`` gives ``"x"``; None gives ``"auto"`` when the model is a flow and the
    loop takes local and global steps (the run then decides per loop, see
    `flowmc_like.schedule.latent_decision`), ``"x"`` otherwise.
    """
    if config.local_in_latent_space is not None:
        return "latent" if config.local_in_latent_space else "x"
    if config.is_tempered:  # hot replicas run in x-space (`flowmc_like.tempering`)
        return "x"
    is_flow = isinstance(model, AbstractFlow)
    if is_flow and config.n_local_steps > 0 and has_global_moves(model, config):
        return "auto"
    return "x"


def state_shardings(layout: ChainLayout, has_global: bool, tempered: bool = False) -> LoopState:
    """The sharding (prefix) of each part of a `LoopState` on ``layout``'s mesh.

    Hot replicas are stored chain-first, so they split along the chain axis with their chains.
    """
    chains, replicated = layout.chains, layout.replicated
    return LoopState(
        states=chains,
        adapt_state=replicated,
        train_state=replicated,
        buffer=(
            DrawBuffer(chains, replicated, chains, chains, replicated) if has_global else replicated
        ),
        frozen_params=replicated,
        final_params=replicated,
        is_adapting=replicated,
        tempering=TemperingState(
            replicas=chains, betas=replicated, last_end=chains, n_exchanges=replicated
        )
        if tempered
        else replicated,
    )


def program_shardings(
    layout: ChainLayout, has_global: bool, tempered: bool = False
) -> dict[str, tuple[Any, Any]]:
    """``(in_shardings, out_shardings)`` of each program, as prefixes of its arguments/results.

    Kernel states, traces, per-chain summaries and the training window are split along the
    chain axis; keys, kernel and adaptation parameters, the model, the optimiser and ``data``
    are replicated.
    """
    chains, replicated = layout.chains, layout.replicated
    state = state_shardings(layout, has_global, tempered)
    return {
        # (key, positions, kernel_params, data)
        # -> (loop keys, kernel states, adaptation state, train state, window, tempering)
        "setup": (
            (replicated, chains, replicated, replicated),
            (replicated, chains, replicated, replicated, state.buffer, state.tempering),
        ),
        # (key, states, tempering, adapt_state, frozen_params, is_adapting, model_params,
        #  in_latent, restart, data) -> (states, tempering, adapt_state, trace, summary,
        #  step size, final params, exchange summary, hot replicas' draws)
        "local": (
            (replicated, chains, state.tempering, *(replicated,) * 7),
            (chains, state.tempering, replicated, chains, chains, *(replicated,) * 3, chains),
        ),
        # (key, states, model_params, data) -> (states, trace, summary)
        "global": ((replicated, chains, replicated, replicated), (chains, chains, chains)),
        # (key, train_state, window, local draws, global draws, hot draws, ladder, data)
        # -> (window, train_state, losses, is_finite)
        "train": (
            (replicated, replicated, state.buffer, chains, chains, chains, replicated, replicated),
            (state.buffer, replicated, replicated, replicated),
        ),
        # (key, chunk index, train_state, betas, data) -> (train_state, chunk, is_finite)
        "variational": ((replicated,) * 5, (replicated,) * 3),
        # (key, model_params, data) -> kernel states
        "restart": ((replicated,) * 3, chains),
    }


def build_programs(
    flat_log_prob: Callable[[Array, PyTree], Array],
    kernel: AbstractLocalKernel,
    model: AbstractGlobalModel | None,
    config: SamplerConfig,
    n_chains: int,
    n_dim: int,
    key_impl: str,
    layout: ChainLayout,
    flat_log_prior: Callable[[Array, PyTree], Array] | None = None,
) -> Programs:
    """The run's jitted programs, not yet compiled.

    Nothing in a run executes eagerly (each eager op compiles on its own): ``setup`` draws
    every key of the run and builds every initial state in one call, and the programs take
    raw key data (``uint32``; rewrapped inside with ``key_impl``) so the host only indexes
    numpy arrays between calls. On several devices every program is jitted with the
    shardings of `program_shardings`.

    Args:
        flat_log_prob: ``(x (n_dim,), data) -> ()`` the target (`flowmc_like.target`).
        kernel: the local kernel.
        model: the global model (None for local moves only).
        config: the run's settings.
        n_chains: the number of chains.
        n_dim: the flat dimension of a position.
        key_impl: the PRNG implementation of the run's key.
        layout: how the chains are laid out over devices.
        flat_log_prior: ``(x, data) -> ()`` the part of the target tempering keeps at
            every temperature (likelihood tempering), or None (the whole density).
    """
    has_global = has_global_moves(model, config)
    tempered = config.is_tempered
    tempered_target = TemperedTarget(flat_log_prob, flat_log_prior)
    adaptation = kernel.adaptation()
    optimizer = make_optimizer(config.learning_rate)
    n_loops = config.n_loops_cap
    n_held_out_chains = config.n_held_out_chains(n_chains)
    shardings = program_shardings(layout, has_global, tempered)
    batch_sharding = layout.batch_sharding(config.effective_batch_size)

    def jit(program: str) -> Callable[[Callable[..., Any]], Any]:
        if not layout.is_sharded:
            return jax.jit
        in_shardings, out_shardings = shardings[program]
        return functools.partial(jax.jit, in_shardings=in_shardings, out_shardings=out_shardings)

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
        states = init_kernel_states(kernel, functools.partial(flat_log_prob, data=data), positions)
        train_state = buffer = None
        if has_global:
            assert model is not None
            train_state = init_train_state(model.init(key_model, n_dim), optimizer)
            window = config.window_loops(n_dim, isinstance(model, AbstractFlow))
            window *= config.n_draws_per_loop
            buffer = init_buffer(n_chains, window, n_dim, positions.dtype)
        tempering = None
        if tempered:
            betas = init_ladder(config.n_temperatures, max_temperature, positions.dtype)
            if not jnp.issubdtype(positions.dtype, jnp.floating):
                betas = init_ladder(config.n_temperatures, max_temperature, float)
            tempering = init_tempering(kernel, tempered_target, data, positions, betas)
            levels = jnp.concatenate([positions[:, None], tempering.replicas.position], axis=1)
            # kernel_params: one set per level (leading axis K)
            adapt_state = jax.vmap(adaptation.init, in_axes=(0, 1))(kernel_params, levels)
        else:
            adapt_state = adaptation.init(kernel_params, positions)
        return (
            jax.random.key_data(loop_keys),
            states,
            adapt_state,
            train_state,
            buffer,
            tempering,
        )

    mode = latent_mode(model, config)
    initial_kernel_params = kernel.init_params(n_dim)
    max_temperature = config.max_temperature
    if max_temperature is None:
        max_temperature = DEFAULT_MAX_TEMPERATURE if flat_log_prior is None else float("inf")

    def local_tempered(key, states, tempering, adapt_state, frozen_params, is_adapting, data):
        states, tempering, adapt_state, records, exchange, hot = run_tempered_local_phase(
            kernel,
            adaptation,
            tempered_target,
            data,
            config.n_local_steps,
            kernel.steps_per_exchange,
            key,
            states,
            tempering,
            adapt_state,
            frozen_params,
            is_adapting,
            config.training_cap,
        )
        cold, infos, step_size = records
        trace = local_trace(cold.position, cold.log_prob, infos, step_size)
        trace = jax.tree.map(lambda leaf: jnp.swapaxes(leaf, 0, 1), trace)
        return states, tempering, adapt_state, trace, exchange, hot

    def local_in_x(key, states, adapt_state, frozen_params, is_adapting, log_prob_fn):
        return run_local_phase(
            kernel,
            adaptation,
            log_prob_fn,
            config.n_local_steps,
            key,
            states,
            adapt_state,
            frozen_params,
            is_adapting,
            config.training_cap,
        )

    def local_in_latent(key, states, adapt_state, frozen_params, is_adapting, log_prob_fn, params):
        current, adapt_state, trace = run_latent_local_phase(
            kernel,
            adaptation,
            model,
            params,
            log_prob_fn,
            config.n_local_steps,
            key,
            GlobalState(states.position, states.log_prob),
            adapt_state,
            frozen_params,
            is_adapting,
            config.training_cap,
        )
        return init_kernel_states(kernel, log_prob_fn, current.position), adapt_state, trace

    @jit("local")
    def local(
        key_data,
        states,
        tempering,
        adapt_state,
        frozen_params,
        is_adapting,
        model_params,
        in_latent,
        restart,
        data,
    ):
        """One local phase; with ``mode == "auto"`` in the space ``in_latent`` says.

        ``restart`` (auto mode) starts the adaptation again from the kernel's initial params:
        the step size adapted in ``x``-space does not fit the flow's space.
        """
        if tempered:
            states, tempering, adapt_state, trace, exchange, hot = local_tempered(
                wrap(key_data), states, tempering, adapt_state, frozen_params, is_adapting, data
            )
            n_levels = config.n_temperatures
            current = jax.vmap(adaptation.current, axis_size=n_levels)(adapt_state)
            used_params = select_tree(is_adapting, current, frozen_params)
            trace, summary = summarize_and_thin(trace, config.thinning)
            step_size = kernel.step_size_of(jax.tree.map(lambda leaf: leaf[0], used_params))
            final = jax.vmap(adaptation.final, axis_size=n_levels)(adapt_state)
            outputs = (states, tempering, adapt_state, trace, summary, step_size, final)
            return *outputs, exchange, hot
        log_prob_fn = functools.partial(flat_log_prob, data=data)
        if mode == "auto":
            restarted = adaptation.init(initial_kernel_params, states.position)
            adapt_state = select_tree(restart, restarted, adapt_state)
        args = (wrap(key_data), states, adapt_state, frozen_params, is_adapting, log_prob_fn)
        if mode == "latent":
            states, adapt_state, trace = local_in_latent(*args, model_params)
        elif mode == "x":
            states, adapt_state, trace = local_in_x(*args)
        else:
            states, adapt_state, trace = jax.lax.cond(
                in_latent,
                lambda: local_in_latent(*args, model_params),
                lambda: local_in_x(*args),
            )
        used_params = select_tree(is_adapting, adaptation.current(adapt_state), frozen_params)
        trace, summary = summarize_and_thin(trace, config.thinning)
        step_size = kernel.step_size_of(used_params)
        final = adaptation.final(adapt_state)
        return states, tempering, adapt_state, trace, summary, step_size, final, None, None

    if not has_global:
        return Programs(setup, local, None, None)
    assert model is not None

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
    def train(key_data, train_state, buffer, local_draws, global_draws, hot, betas, data):
        """Append the loop's draws to the window and fit the model to examples from it.

        With tempering, `HOT_EXAMPLE_SHARE` of the examples are the hot replicas' draws
        reweighted towards ``beta = 1`` (`reweighted_hot_examples`), so the flow also
        proposes where only the hot replicas have been yet.
        """
        key_select, key_train = wrap(key_data[0]), wrap(key_data[1])
        key_append = jax.random.fold_in(key_select, 2)
        buffer = append_draws(key_append, buffer, jnp.concatenate([local_draws, global_draws], 1))
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
        if hot is not None:
            n_hot = max(int(HOT_EXAMPLE_SHARE * config.n_max_examples), 1)
            key_hot = jax.random.fold_in(key_select, 3)
            hot_examples = reweighted_hot_examples(key_hot, hot, betas, n_hot)
            examples = examples.at[-n_hot:].set(hot_examples.astype(examples.dtype))
        n_statistics = config.n_statistics_examples(n_chains, n_dim)
        statistics_examples = None
        if isinstance(model, AbstractFlow) and n_statistics > config.n_max_examples:
            key_statistics = jax.random.fold_in(key_select, 1)
            statistics_examples = select_training_data(key_statistics, buffer, n_statistics)
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
            statistics_examples,
        )
        return buffer, new_state, losses, is_finite

    variational = restart = None
    if variational_plan(model, config).max_steps > 0:

        @jit("variational")
        def variational(key_data, chunk_index, train_state, betas, data):
            """`train_variational` for one chunk of steps (its key: the chunk's fold-in)."""
            key = jax.random.fold_in(wrap(key_data), chunk_index)
            return train_variational(
                model,
                optimizer,
                key,
                train_state,
                betas,
                functools.partial(flat_log_prob, data=data),
                variational_samples(config),
            )

        @jit("restart")
        def restart(key_data, model_params, data):
            """Kernel states at ``n_chains`` fresh draws of the (pre-trained) model."""
            keys = jax.random.split(jax.random.fold_in(wrap(key_data), 1 << 20), n_chains)
            draws, _ = jax.vmap(lambda k: model.sample_and_log_prob(model_params, k))(keys)
            log_prob_fn = functools.partial(flat_log_prob, data=data)
            return init_kernel_states(kernel, log_prob_fn, draws)

    return Programs(setup, local, global_, train, variational, restart)
