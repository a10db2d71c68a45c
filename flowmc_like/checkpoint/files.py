"""A checkpoint's files: atomic writes and checked reads (the format: the package docstring)."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import jax
import numpy as np

from flowmc_like._types import PyTree

__all__ = [
    "FORMAT_VERSION",
    "load_loop",
    "load_pickle",
    "load_run_info",
    "load_state",
    "save_loop",
    "save_pickle",
    "save_run_info",
    "save_state",
    "start_checkpoint",
]

FORMAT_VERSION = 4
RUN_INFO = "run.json"
SAMPLER = "sampler.pkl"
LOG_PROB = "log_prob.pkl"
STATE = "state.npz"


def _write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file renamed over it (atomic on POSIX and Windows)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _corrupt(path: Path, error: BaseException) -> ValueError:
    return ValueError(
        f"checkpoint file {path} is corrupt or incomplete ({type(error).__name__}: {error}); "
        "it cannot be resumed"
    )


def start_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Create the checkpoint directory ``path``; refuse one that already holds a checkpoint."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise ValueError(
            f"checkpoint_path {str(directory)!r} is a file; a checkpoint is a directory "
            "(give a new path)"
        )
    if (directory / RUN_INFO).exists():
        raise ValueError(
            f"checkpoint_path {str(directory)!r} already holds a checkpoint; continue it with "
            "fm.Sampler.resume(path), or give a new path (or delete the directory)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def save_run_info(directory: Path, info: dict[str, Any]) -> None:
    """Write ``run.json`` (JSON-serialisable ``info``)."""
    text = json.dumps({"format_version": FORMAT_VERSION, **info}, indent=1, sort_keys=True)
    _write_atomic(directory / RUN_INFO, lambda handle: handle.write(text.encode()))


def load_run_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``run.json``; a clear error when ``path`` is not a checkpoint of this format."""
    directory = Path(path)
    file = directory / RUN_INFO
    if not file.exists():
        raise ValueError(
            f"{str(directory)!r} is not a flowmc_like checkpoint (no {RUN_INFO}); pass the "
            "checkpoint_path given to Sampler.run"
        )
    try:
        info = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise _corrupt(file, error) from error
    if info.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {str(directory)!r} has format version {info.get('format_version')}; "
            f"this flowmc_like reads version {FORMAT_VERSION}"
        )
    return info


def save_pickle(directory: Path, name: str, value: Any) -> bool:
    """Pickle ``value`` to ``name``; False (nothing written) when pickle cannot store it."""
    try:
        payload = pickle.dumps(value)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    _write_atomic(directory / name, lambda handle: handle.write(payload))
    return True


def load_pickle(directory: Path, name: str) -> Any:
    """Unpickle ``name`` from the checkpoint (raises what pickle raises)."""
    with open(directory / name, "rb") as handle:
        return pickle.load(handle)


def _leaves(tree: PyTree) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(jax.device_get(tree))]


def save_state(directory: Path, state: PyTree, meta: dict[str, Any]) -> None:
    """Replace ``state.npz`` with the leaves of ``state`` and the JSON ``meta``."""
    arrays = {f"leaf_{i:05d}": leaf for i, leaf in enumerate(_leaves(state))}
    meta_text = np.asarray(json.dumps(meta))
    _write_atomic(directory / STATE, lambda handle: np.savez(handle, meta=meta_text, **arrays))


def load_state(directory: Path, template: PyTree) -> tuple[PyTree, dict[str, Any]]:
    """Read ``state.npz`` into the structure of ``template``; check every leaf's shape/dtype.

    Args:
        directory: the checkpoint directory.
        template: a pytree of the run's state (arrays or ``jax.ShapeDtypeStruct``).

    Returns:
        The state (numpy leaves) and its metadata.
    """
    file = directory / STATE
    if not file.exists():
        raise ValueError(
            f"checkpoint {str(directory)!r} holds no finished loop yet (no {STATE}); start "
            "a new run instead"
        )
    try:
        with np.load(file) as stored:
            meta = json.loads(str(stored["meta"]))
            n_leaves = len([name for name in stored.files if name.startswith("leaf_")])
            leaves = [stored[f"leaf_{i:05d}"] for i in range(n_leaves)]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise _corrupt(file, error) from error
    expected, treedef = jax.tree.flatten(template)
    if len(leaves) != len(expected):
        raise ValueError(
            f"checkpoint {str(directory)!r} holds a state of {len(leaves)} arrays; this "
            f"sampler's state has {len(expected)} (was it written by another sampler "
            "configuration or flowmc_like version?)"
        )
    for index, (leaf, want) in enumerate(zip(leaves, expected, strict=True)):
        if leaf.shape != tuple(want.shape) or leaf.dtype != np.dtype(want.dtype):
            raise ValueError(
                f"checkpoint {str(directory)!r} does not match this sampler: state array "
                f"{index} has shape {leaf.shape} and dtype {leaf.dtype}, expected "
                f"{tuple(want.shape)} and {np.dtype(want.dtype)}"
            )
    return jax.tree.unflatten(treedef, leaves), meta


def _loop_file(directory: Path, loop_index: int) -> Path:
    return directory / f"loop_{loop_index:05d}.npz"


def save_loop(directory: Path, loop_index: int, arrays: dict[str, np.ndarray]) -> None:
    """Write one finished loop's arrays (draws and record) to ``loop_<index>.npz``."""
    _write_atomic(_loop_file(directory, loop_index), lambda handle: np.savez(handle, **arrays))


def load_loop(directory: Path, loop_index: int) -> dict[str, np.ndarray]:
    """Read the arrays of loop ``loop_index``."""
    file = _loop_file(directory, loop_index)
    try:
        with np.load(file) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _corrupt(file, error) from error
