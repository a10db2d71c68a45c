"""The run's side of a checkpoint: what it stores when it starts and after each loop.

`start_directory` and `write_header` run once when a run starts; a `RunCheckpoint` writes
every finished loop; the ``read_*`` functions and `load_progress` give `Sampler.resume` back
the sampler's settings, its log density and the run so far. Only process 0 writes files.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like import _sharding
from flowmc_like._sharding import ChainLayout
from flowmc_like._types import PRNGKey, PyTree
from flowmc_like.checkpoint import files
from flowmc_like.compiler import PreparedRun
from flowmc_like.config import SamplerConfig
from flowmc_like.programs import LoopState
from flowmc_like.records import LoopOutput, RunProgress

__all__ = [
    "RunCheckpoint",
    "check_matches",
    "load_progress",
    "read_log_prob",
    "read_sampler_args",
    "settings_fingerprint",
    "start_directory",
    "write_header",
]


def start_directory(path: str | os.PathLike[str]) -> Path:
    """The checkpoint directory of a new run (created, and checked empty, by process 0)."""
    return files.start_checkpoint(path) if _sharding.is_main_process() else Path(path)


def settings_fingerprint(config: SamplerConfig, kernel: Any, model: Any) -> dict[str, Any]:
    """What a checkpoint must agree on with the sampler resuming it (JSON-able)."""
    return {
        "config": {k: repr(v) for k, v in dataclasses.asdict(config).items()},
        "local_kernel": repr(kernel),
        "global_model": repr(model),
    }


def write_header(
    directory: Path,
    prepared: PreparedRun,
    config: SamplerConfig,
    init_kwargs: dict[str, Any],
    settings: dict[str, Any],
    *,
    log_prob: Any,
    key: PRNGKey,
    initial_position: PyTree,
    warm_start: Any = None,
) -> None:
    """Write what the run starts from: settings, start, key, log density and ``run.json``.

    Args:
        directory: the checkpoint directory (from `start_directory`).
        prepared: the compiled run (its sizes and key implementation).
        config: the run's settings.
        init_kwargs: the `Sampler` constructor arguments besides ``log_prob``.
        settings: the sampler's `settings_fingerprint`.
        log_prob: the user's log density (stored when pickle can store it by reference).
        key: the run's key.
        initial_position: the user's starting positions.
        warm_start: the `flowmc_like.compiler.WarmStart` the run started from, or None.
    """
    if not _sharding.is_main_process():
        return
    is_typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    stored = {
        "init_kwargs": init_kwargs,
        "initial_position": jax.device_get(initial_position),
        "key": np.asarray(jax.random.key_data(key) if is_typed else key),
        "key_impl": prepared.key_impl if is_typed else None,
        "warm_start": None if warm_start is None else jax.device_get(warm_start),
    }
    info = {
        "n_chains": prepared.n_chains,
        "n_dim": prepared.n_dim,
        "n_loops": config.n_loops_cap,
        "settings": settings,
    }
    if not files.save_pickle(directory, files.SAMPLER, stored):
        stored["init_kwargs"] = {**init_kwargs, "data": None}
        if not files.save_pickle(directory, files.SAMPLER, stored):
            raise ValueError(
                "checkpoint_path: the sampler's settings or initial_position cannot be "
                "pickled, so the run cannot be checkpointed"
            )
        warnings.warn(
            "data cannot be pickled, so the checkpoint does not hold it; pass data= to "
            "Sampler.resume",
            UserWarning,
            stacklevel=4,
        )
    has_log_prob = files.save_pickle(directory, files.LOG_PROB, log_prob)
    files.save_run_info(directory, {**info, "has_log_prob": has_log_prob})


class RunCheckpoint:
    """Writes each finished loop's file, then replaces the state (the checkpoint's commit).

    Args:
        directory: the checkpoint directory.
        layout: the run's chain layout (gathering the state is collective over processes).
        start: ``time.perf_counter()`` when this session of the run started.
    """

    def __init__(self, directory: Path, layout: ChainLayout, start: float) -> None:
        self.directory = directory
        self.layout = layout
        self.start = start

    def loop_done(
        self, loop_index: int, output: LoopOutput, state: LoopState, progress: RunProgress
    ) -> None:
        """Save loop ``loop_index`` and the state the next loop starts from."""
        host_state = self.layout.to_host(state)  # collective on several processes
        if not _sharding.is_main_process():
            return
        files.save_loop(self.directory, loop_index, output.to_arrays())
        seconds = dict(progress.seconds)
        seconds["previous_total"] += time.perf_counter() - self.start
        files.save_state(
            self.directory,
            host_state,
            {"n_done": loop_index + 1, "seconds": seconds, "choices": list(progress.choices)},
        )


def read_sampler_args(directory: Path) -> dict[str, Any]:
    """The pickled constructor arguments, start and key (a JAX key) of the run in ``directory``."""
    stored = _read_sampler_pickle(directory)
    key = stored["key"]
    if stored["key_impl"] is not None:
        key = jax.random.wrap_key_data(key, impl=stored["key_impl"])
    return {**stored, "key": jnp.asarray(key)}


def _read_sampler_pickle(directory: Path) -> dict[str, Any]:
    try:
        return files.load_pickle(directory, files.SAMPLER)
    except FileNotFoundError as error:
        raise ValueError(
            f"checkpoint {str(directory)!r} is incomplete: {files.SAMPLER} is missing"
        ) from error
    except Exception as error:  # pickle raises many kinds
        raise ValueError(
            f"checkpoint file {directory / files.SAMPLER} cannot be read "
            f"({type(error).__name__}: {error})"
        ) from error


def read_log_prob(directory: Path, info: dict[str, Any]) -> Any:
    """The log density pickled in the checkpoint, or a clear error saying to pass it."""
    if not info.get("has_log_prob"):
        raise ValueError(
            f"checkpoint {str(directory)!r} does not hold log_prob (pickle cannot store a "
            "lambda, a function defined inside another one or a model target); pass it: "
            "fm.Sampler.resume(path, log_prob=...)"
        )
    try:
        return files.load_pickle(directory, files.LOG_PROB)
    except Exception as error:  # the defining module is not importable here
        raise ValueError(
            f"the log_prob stored in checkpoint {str(directory)!r} cannot be loaded "
            f"({type(error).__name__}: {error}); make the module defining it importable, "
            "or pass it: fm.Sampler.resume(path, log_prob=...)"
        ) from error


def check_matches(directory: Path, info: dict[str, Any], mine: dict[str, Any]) -> None:
    """Raise unless the checkpoint's settings equal ``mine`` (`settings_fingerprint`)."""
    stored = info["settings"]
    differences = [
        f"{name}: checkpoint {stored[name]!r}, sampler {mine[name]!r}"
        for name in ("local_kernel", "global_model")
        if stored.get(name) != mine[name]
    ]
    for name, value in mine["config"].items():
        if name != "progress_bar" and stored["config"].get(name) != value:
            differences.append(f"{name}: checkpoint {stored['config'].get(name)}, sampler {value}")
    if differences:
        raise ValueError(
            f"checkpoint {str(directory)!r} was written by a sampler with other settings "
            "(" + "; ".join(differences) + "); resume it with the same settings"
        )


def load_progress(
    directory: Path, template: LoopState, layout: ChainLayout, shardings: LoopState
) -> tuple[LoopState, RunProgress]:
    """The saved state (placed on ``layout`` with ``shardings``) and the finished loops."""
    loop_state, meta = files.load_state(directory, template)
    state = layout.put(LoopState(*loop_state), shardings)
    outputs = [
        LoopOutput.from_arrays(files.load_loop(directory, index))
        for index in range(int(meta["n_done"]))
    ]
    return state, RunProgress(outputs, dict(meta["seconds"]), list(meta.get("choices", [])))
