"""Compiling a run's programs ahead of time and building its initial state.

`prepare_run` checks the inputs, builds the programs (`flowmc_like.programs`), lowers and
compiles them on background threads, runs ``setup`` once and returns a `PreparedRun`:
compiled programs, every loop's keys and the state the first loop starts from. Nothing
compiles after it returns.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
import time
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._sharding import ChainLayout
from flowmc_like._types import Array, PRNGKey, PyTree
from flowmc_like.adapters.pytree import PositionSpec
from flowmc_like.config import SamplerConfig
from flowmc_like.kernels.base import AbstractLocalKernel
from flowmc_like.models.base import AbstractGlobalModel
from flowmc_like.programs import (
    LoopState,
    Programs,
    build_programs,
    has_global_moves,
    latent_mode,
)
from flowmc_like.target import (
    BoundTarget,
    check_target,
    restart_nonfinite_chains,
    restart_nonfinite_replicas,
)
from flowmc_like.tempering import HotDraws
from flowmc_like.training.variational import CHUNK_STEPS, VariationalPlan, variational_plan

__all__ = ["PreparedRun", "WarmStart", "clear_compile_cache", "prepare_run"]


class PreparedRun(NamedTuple):
    """A run ready to loop: compiled programs, keys and initial state.

    Attributes:
        programs: the compiled ``local``, ``global_`` and ``train`` programs.
        spec: how flat positions map to the user's layout.
        n_chains / n_dim: the run's sizes.
        key_impl: the PRNG implementation of the run's key.
        loop_keys: ``(n_loops, 4, ...)`` raw key data of every loop (local, global,
            data selection, training), on the host.
        initial_state: the `LoopState` the first loop starts from.
        compile_seconds: wall seconds spent lowering and compiling.
        layout: how the chains are laid out over devices.
        data: the ``data`` pytree, placed on the devices.
        latent_mode: where the local kernel runs (`flowmc_like.programs.latent_mode`).
        warm_start: what the run took over from an earlier one, or None.
        variational: the model's pre-training before the first loop
            (`flowmc_like.training.variational`; none after a warm start with a model).
        global_model: the model the run uses (``symmetric`` resolved), set by the `Sampler`.
        choices: what the run chose before compiling (`flowmc_like.symmetry`).
    """

    programs: Programs
    spec: PositionSpec
    n_chains: int
    n_dim: int
    key_impl: str
    loop_keys: np.ndarray
    initial_state: LoopState
    compile_seconds: float
    layout: ChainLayout
    data: PyTree
    latent_mode: str = "x"
    warm_start: Any = None
    variational: VariationalPlan = VariationalPlan(0, 0, False)
    global_model: Any = None
    choices: tuple[str, ...] = ()


class WarmStart(NamedTuple):
    """What a run takes over from an earlier one (`flowmc_like.warm_start`).

    Attributes:
        model_params: the trained model's params (numpy pytree), or None.
        kernel_params: the kernel's adapted params (step size, metric; with tempering one
            set per level), the adaptation's starting point.
        in_latent_space: the earlier run's production ran the local kernel in the flow's
            latent space (an automatic run then starts there).
        global_acceptance: the earlier run's mean global acceptance in production (NaN
            without one): what its model achieved, which an automatic warm-started run
            trains back to (`flowmc_like.schedule.training_decision`).
        model: the earlier run's global model as it resolved it (``symmetric`` decided).
    """

    model_params: Any
    kernel_params: Any
    in_latent_space: bool = False
    global_acceptance: float = float("nan")
    model: Any = None


_CACHE_SIZE = 8
"""Compiled runs kept per process (least recently used dropped first)."""

_compiled_cache: collections.OrderedDict[Hashable, dict[str, Any]] = collections.OrderedDict()


def clear_compile_cache() -> None:
    """Forget every compiled run of this process (the next run of each compiles again)."""
    _compiled_cache.clear()


def _abstract(tree: PyTree) -> Hashable:
    """The structure, shapes and dtypes of ``tree`` (what a compiled program depends on)."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(
        (tuple(np.shape(leaf)), str(jnp.result_type(leaf)), bool(getattr(leaf, "weak_type", False)))
        for leaf in leaves
    )


def _cache_key(program_key: Hashable, kernel, model, config, key, positions, data, layout) -> Any:
    """What makes two runs share compiled programs; None when something is unhashable."""
    settings = dataclasses.replace(config, progress_bar=False)
    parts = (
        program_key, kernel, model, settings, _abstract(key), _abstract(positions),
        _abstract(data), layout.cache_key, bool(jax.config.jax_enable_x64),
    )  # fmt: skip
    try:
        hash(parts)
    except TypeError:
        return None
    return parts


def prepare_run(
    target: BoundTarget,
    kernel: AbstractLocalKernel,
    model: AbstractGlobalModel | None,
    config: SamplerConfig,
    key: PRNGKey,
    spec: PositionSpec,
    positions: Array,
    data: PyTree,
    devices: Any,
    log_prior: Callable[[Array, PyTree], Array] | None = None,
    *,
    program_key: Hashable | None = None,
    warm_start: WarmStart | None = None,
) -> PreparedRun:
    """Check the target, compile every program (or reuse them) and build the initial state.

    Compiled programs are kept per process, keyed on ``program_key`` (what identifies the
    target: the user's log density and how it is bound) and everything else the programs
    depend on: kernel, model, settings, and the shapes and dtypes of key, positions and
    data. A later run with the same key compiles nothing (``compile_seconds`` is then the
    lookup's).

    Args:
        target: the bound target (`flowmc_like.target.bind_target`).
        kernel: the local kernel.
        model: the global model, or None.
        config: the run's settings.
        key: the run's key (typed or raw).
        spec: how flat positions map to the user's layout.
        positions: ``(n_chains, n_dim)`` the checked start (`flowmc_like.target.check_start`).
        data: the ``data`` pytree passed to the target.
        devices: the devices to shard the chains over, or None for the default.
        log_prior: ``(x (n_dim,), data) -> ()`` the part tempering keeps at every
            temperature (`flowmc_like.tempering`), or None.
        program_key: identifies ``target`` and ``log_prior`` across runs (hashable); None
            compiles afresh and caches nothing.
        warm_start: params an earlier run trained and adapted, or None for a cold start.
    """
    n_chains, n_dim = (int(s) for s in positions.shape)
    is_typed_key = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    key_impl = (
        str(jax.random.key_impl(key)) if is_typed_key else str(jax.config.jax_default_prng_impl)
    )
    layout = ChainLayout(devices, n_chains)
    has_global = has_global_moves(model, config)
    level_params = _level_params(kernel, config, n_dim, warm_start)
    is_adapting = np.asarray(True)
    compile_start = time.perf_counter()
    cache_key = None
    if program_key is not None:
        cache_key = _cache_key(program_key, kernel, model, config, key, positions, data, layout)
    compiled = _compiled_cache.get(cache_key) if cache_key is not None else None
    if compiled is None:  # (a cached run passed these checks with the same shapes)
        check_target(target, kernel, positions, data)
    if layout.is_sharded:  # every input as a global array on the mesh
        key = layout.put(jax.random.key_data(key) if is_typed_key else key, layout.replicated)
        positions = layout.put(positions, layout.chains)
        level_params, is_adapting, data = layout.put(
            (level_params, is_adapting, data), layout.replicated
        )

    if compiled is None:
        programs = build_programs(
            target.flat_log_prob, kernel, model, config, n_chains, n_dim, key_impl, layout,
            flat_log_prior=log_prior,
        )  # fmt: skip
        platform = (devices[0] if devices else jax.devices()[0]).platform
        compiled = _compile(
            programs, kernel, model, config, key, positions, level_params, data, platform
        )
        if cache_key is not None:
            _compiled_cache[cache_key] = compiled
            while len(_compiled_cache) > _CACHE_SIZE:
                _compiled_cache.popitem(last=False)
    else:
        _compiled_cache.move_to_end(cache_key)
    compile_seconds = time.perf_counter() - compile_start
    loop_keys, states, adapt_state, train_state, buffer, tempering = compiled["setup"](
        key, positions, level_params, data
    )
    states = restart_nonfinite_chains(states, layout)
    if tempering is not None:
        tempering = tempering._replace(
            replicas=restart_nonfinite_replicas(tempering.replicas, layout)
        )
    if warm_start is not None and warm_start.model_params is not None and has_global:
        train_state = train_state._replace(
            params=_warm_model_params(train_state.params, warm_start.model_params, layout)
        )
    plan = variational_plan(model, config)
    if warm_start is not None and warm_start.model_params is not None:
        plan = VariationalPlan(0, 0, False)  # the model has trained already
    initial_state = LoopState(
        states=states,
        adapt_state=adapt_state,
        train_state=train_state,
        buffer=buffer,
        frozen_params=level_params,
        final_params=level_params,
        is_adapting=is_adapting,
        tempering=tempering,
    )
    return PreparedRun(
        programs=Programs(
            None,
            compiled["local"],
            compiled.get("global"),
            compiled.get("train"),
            compiled.get("variational"),
            compiled.get("restart"),
        ),
        spec=spec,
        n_chains=n_chains,
        n_dim=n_dim,
        key_impl=key_impl,
        loop_keys=np.asarray(layout.to_host(loop_keys)),
        initial_state=initial_state,
        compile_seconds=compile_seconds,
        layout=layout,
        data=data,
        latent_mode=latent_mode(model, config),
        warm_start=warm_start,
        variational=plan,
    )


def _level_params(
    kernel: AbstractLocalKernel, config: SamplerConfig, n_dim: int, warm_start: WarmStart | None
) -> PyTree:
    """The kernel params adaptation starts from: one set, or one per temperature level."""
    fresh = kernel.init_params(n_dim)
    if config.is_tempered:
        fresh = jax.tree.map(
            lambda leaf: np.broadcast_to(leaf, (config.n_temperatures, *np.shape(leaf))), fresh
        )
    if warm_start is None:
        return fresh
    warm = warm_start.kernel_params
    warm_ndim = [np.ndim(leaf) for leaf in jax.tree.leaves(warm)]
    fresh_ndim = [np.ndim(leaf) for leaf in jax.tree.leaves(fresh)]
    if jax.tree.structure(warm) == jax.tree.structure(fresh) and warm_ndim != fresh_ndim:
        if config.is_tempered:  # from an untempered run: every level starts from its params
            warm = jax.tree.map(lambda w, f: np.broadcast_to(w, np.shape(f)), warm, fresh)
        else:  # from a tempered run: the beta = 1 level's params
            warm = jax.tree.map(lambda w: np.asarray(w)[0], warm)
    _check_like("kernel_params", warm, fresh, f"{type(kernel).__name__}.init_params")
    return jax.tree.map(lambda w, f: np.asarray(w, dtype=np.asarray(f).dtype), warm, fresh)


def _warm_model_params(fresh: PyTree, warm: PyTree, layout: ChainLayout) -> PyTree:
    """``warm`` model params checked against the run's model and placed like ``fresh``."""
    _check_like("model_params", warm, fresh, "the sampler's global_model")
    warm = jax.tree.map(lambda w, f: np.asarray(w, dtype=f.dtype), warm, fresh)
    return layout.put(warm, layout.replicated) if layout.is_sharded else jax.device_put(warm)


def _check_like(name: str, given: PyTree, expected: PyTree, what: str) -> None:
    """Raise a ValueError naming ``warm_start`` when ``given`` differs in structure or shapes."""
    given_leaves, given_def = jax.tree.flatten(given)
    expected_leaves, expected_def = jax.tree.flatten(expected)
    shapes_given = [tuple(np.shape(leaf)) for leaf in given_leaves]
    shapes_expected = [tuple(np.shape(leaf)) for leaf in expected_leaves]
    if given_def != expected_def or shapes_given != shapes_expected:
        raise ValueError(
            f"warm_start: its {name} do not fit this sampler ({what} has structure "
            f"{expected_def} with shapes {shapes_expected}; got {given_def} with shapes "
            f"{shapes_given}); warm-start from a run with the same model, kernel and n_dim"
        )


def _compile(
    programs: Programs,
    kernel: AbstractLocalKernel,
    model: AbstractGlobalModel | None,
    config: SamplerConfig,
    key: Array,
    positions: Array,
    level_params: PyTree,
    data: PyTree,
    platform: str,
) -> dict[str, Any]:
    """Lower and compile every program; the executables by name.

    Each program is handed to a compiler thread as soon as it is lowered (XLA compiles
    outside the GIL, so compiling overlaps the tracing of the next); setup (small) goes
    first, then the largest (train). Nothing later compiles (no eager op runs in the loop).
    """
    n_chains, n_dim = (int(s) for s in positions.shape)
    has_global = has_global_moves(model, config)
    is_adapting = np.asarray(True)
    with _ProgramCompiler() as compiler:
        lowered_setup = programs.setup.lower(key, positions, level_params, data)
        compiler.submit("setup", lowered_setup, _run_once_options(platform))
        key_data_info, states, adapt_state, train_state, buffer, tempering = lowered_setup.out_info
        loop_key = key_data_info.update(shape=key_data_info.shape[2:])
        if has_global:
            dtype = positions.dtype
            local_draws = jax.ShapeDtypeStruct((n_chains, config.n_kept_local, n_dim), dtype)
            global_draws = jax.ShapeDtypeStruct((n_chains, config.n_kept_global, n_dim), dtype)
            train_keys = key_data_info.update(shape=(2, *loop_key.shape))
            hot = betas = None
            if config.is_tempered:
                hot = _hot_draws_info(kernel, config, n_chains, n_dim, dtype)
                betas = tempering.betas
            compiler.submit(
                "train",
                programs.train.lower(
                    train_keys, train_state, buffer, local_draws, global_draws, hot, betas, data
                ),
            )
            compiler.submit(
                "global", programs.global_.lower(loop_key, states, train_state.params, data)
            )
            if programs.variational is not None:
                betas_info = jax.ShapeDtypeStruct((CHUNK_STEPS,), jnp.result_type(float))
                compiler.submit(
                    "variational",
                    programs.variational.lower(
                        loop_key, np.int32(0), train_state, betas_info, data
                    ),
                )
                compiler.submit(
                    "restart", programs.restart.lower(loop_key, train_state.params, data)
                )
        latent_params = train_state.params if latent_mode(model, config) != "x" else None
        compiler.submit(
            "local",
            programs.local.lower(
                loop_key,
                states,
                tempering,
                adapt_state,
                level_params,
                is_adapting,
                latent_params,
                is_adapting,  # in_latent: a () bool like it
                is_adapting,  # restart
                data,
            ),
        )
        return compiler.results()


def _hot_draws_info(
    kernel: AbstractLocalKernel, config: SamplerConfig, n_chains: int, n_dim: int, dtype: Any
) -> HotDraws:
    """Shapes of the hot replicas' draws a tempered local phase returns (`HotDraws`)."""
    n_rounds = config.n_local_steps // kernel.steps_per_exchange
    shape = (n_chains, n_rounds, config.n_temperatures - 1)
    log_dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)
    return HotDraws(
        jax.ShapeDtypeStruct((*shape, n_dim), dtype), jax.ShapeDtypeStruct(shape, log_dtype)
    )


def _run_once_options(platform: str) -> dict[str, Any]:
    """XLA options for programs that run once (``setup``), whose run time does not matter.

    Skipping LLVM's optimisations cuts their compile time; on CPU, XLA's older loop
    emitters compile faster still (they run slower, which is why the loop programs keep the
    default emitters).
    """
    options: dict[str, Any] = {"xla_backend_optimization_level": 0}
    if platform == "cpu":
        options["xla_cpu_use_fusion_emitters"] = False
    return options


class _ProgramCompiler:
    """Compiles lowered programs on background threads while the caller lowers the next.

    XLA compiles outside the GIL, so a program compiles while Python traces the following
    one. Use as a context manager: `submit` each lowered program, then `results` waits for
    all of them and raises the first compile error. Leaving the block on an exception drops
    the compiles not yet started and waits for the running ones.
    """

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}

    def __enter__(self) -> _ProgramCompiler:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)

    def submit(self, name: str, lowered: Any, options: dict[str, Any] | None = None) -> None:
        """Start compiling ``lowered`` (a ``jax.stages.Lowered``) with XLA ``options``."""
        self._futures[name] = self._pool.submit(lowered.compile, compiler_options=options)

    def results(self) -> dict[str, Callable[..., Any]]:
        """Every submitted program, compiled, by name."""
        return {name: future.result() for name, future in self._futures.items()}
