"""Saving a `SamplerResult` to a directory without pickle (read back by `flowmc_like.loading`).

A saved result is a directory of two files:

- ``result.json``: the format name and version, the sizes, the layout of positions, the
  run's kernel and model *settings* (class import path and dataclass fields, so the model
  is rebuilt by constructing the class), the timings, the diagnostics, the per-loop
  decisions, and the structure of every pytree of parameters;
- ``arrays.npz``: every array (draws, log densities, acceptances, per-loop history, and the
  leaves of the kernel's and the model's parameters), read with ``allow_pickle=False``.

Only plain data is stored: numbers, strings, arrays, and pytrees made of dicts, lists,
tuples, None and named tuples (rebuilt by importing their class). Nothing is unpickled, so
loading a file runs no code but the import of the named flowmc_like (or user) classes.

A loaded result is a `SamplerResult` like the one saved: its draws and history, its
``model_params`` and ``global_model`` (the trained model), and it can warm-start a run
(``sampler.run(key, warm_start=fm.load_result(path))``), bit-identically to warm-starting
from the result in memory. For a `from_numpyro` / `from_pymc` target, pass ``target=`` to
`load_result` to get the model's named, constrained variables back (a Python function is
not data, so it is not stored).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from flowmc_like.checkpoint.files import _write_atomic
from flowmc_like.records import History

__all__ = ["APPROXIMATION_FORMAT", "FORMAT_VERSION", "save_approximation", "save_result"]

FORMAT = "flowmc_like.result"
FORMAT_VERSION = 1
RESULT_JSON = "result.json"
APPROXIMATION_FORMAT = "flowmc_like.approximation"
APPROXIMATION_JSON = "approximation.json"
ARRAYS = "arrays.npz"

_ARRAY_FIELDS = (
    "flat_samples",
    "log_prob",
    "is_accepted",
    "is_global",
    "flat_warmup_samples",
    "warmup_log_prob",
    "warmup_is_accepted",
    "warmup_is_global",
    "local_acceptance",
    "global_acceptance",
)
_STATS_FIELDS = ("draw_stats", "warmup_draw_stats")  # dicts of arrays, stored as group.name


# --- pytree structure as JSON -------------------------------------------------------------


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(path: str, what: str) -> type:
    """The class at ``module:qualname``; a clear error if it cannot be imported."""
    module_name, _, qualname = path.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            f"load_result: the saved {what} is of class {path}, which cannot be imported here "
            f"({type(error).__name__}: {error})"
        ) from error
    if not isinstance(value, type):
        raise ValueError(f"load_result: the saved {what} class {path} is not a class")
    return value


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _skeleton(tree: Any, what: str) -> Any:
    """``tree`` with its leaves replaced by their flat index, as JSON-able nested values."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=lambda node: node is None)
    indexed = jax.tree.unflatten(treedef, list(range(len(leaves))))
    return _encode(indexed, what)


def _encode(node: Any, what: str) -> Any:
    if isinstance(node, int) and not isinstance(node, bool):
        return node
    if node is None:
        return {"none": True}
    if _is_namedtuple(node):
        fields = [_encode(child, what) for child in node]
        return {"namedtuple": _class_path(type(node)), "fields": fields}
    if isinstance(node, tuple):
        return {"tuple": [_encode(child, what) for child in node]}
    if isinstance(node, list):
        return {"list": [_encode(child, what) for child in node]}
    if isinstance(node, dict):
        if not all(isinstance(key, str) for key in node):
            raise ValueError(f"save: {what} has a dict with non-string keys; it cannot be stored")
        return {"dict": [[key, _encode(child, what)] for key, child in node.items()]}
    raise ValueError(
        f"save: {what} holds a pytree node of type {type(node).__name__}, which is not stored "
        "without pickle (dicts, lists, tuples, named tuples and None are)"
    )


def _decode(node: Any, leaves: list[Any], what: str) -> Any:
    if isinstance(node, int):
        return leaves[node]
    if "none" in node:
        return None
    if "namedtuple" in node:
        cls = _import_class(node["namedtuple"], what)
        return cls(*[_decode(child, leaves, what) for child in node["fields"]])
    if "tuple" in node:
        return tuple(_decode(child, leaves, what) for child in node["tuple"])
    if "list" in node:
        return [_decode(child, leaves, what) for child in node["list"]]
    return {key: _decode(child, leaves, what) for key, child in node["dict"]}


def _tree_leaves(tree: Any) -> list[Any]:
    return jax.tree.leaves(tree, is_leaf=lambda node: node is None)


# --- settings objects (kernels, models) as JSON --------------------------------------------


def _value_to_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_value_to_json(item) for item in value]}
    if isinstance(value, list):
        return [_value_to_json(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def _value_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(_value_from_json(item) for item in value["tuple"])
    if isinstance(value, list):
        return [_value_from_json(item) for item in value]
    return value


def _settings_to_json(obj: Any) -> dict[str, Any] | None:
    """A kernel's or model's class and fields, or a note why it is not stored."""
    if obj is None:
        return None
    description: dict[str, Any] = {"class": _class_path(type(obj)), "repr": repr(obj)}
    if not dataclasses.is_dataclass(obj):
        return {**description, "fields": None, "why": "not a dataclass"}
    fields = {}
    for field in dataclasses.fields(obj):
        if not field.init:
            continue
        try:
            fields[field.name] = _value_to_json(getattr(obj, field.name))
        except TypeError as error:
            why = f"field {field.name} is a {error} (not stored without pickle)"
            return {**description, "fields": None, "why": why}
    return {**description, "fields": fields}


def _settings_from_json(description: dict[str, Any] | None, what: str) -> Any:
    """The object rebuilt from `_settings_to_json`, or None when it was not stored."""
    if description is None or description.get("fields") is None:
        return None
    cls = _import_class(description["class"], what)
    fields = {name: _value_from_json(value) for name, value in description["fields"].items()}
    try:
        return cls(**fields)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"load_result: the saved {what} {description['repr']} cannot be rebuilt here "
            f"({type(error).__name__}: {error})"
        ) from error


# --- save / load ---------------------------------------------------------------------------


def _store_tree(tree: Any, name: str, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """JSON of ``tree``'s structure; its leaves go into ``arrays`` as ``name.<index>``."""
    if tree is None:
        return None
    leaves = _tree_leaves(tree)
    for index, leaf in enumerate(leaves):
        if leaf is not None:
            arrays[f"{name}.{index}"] = np.asarray(leaf)
    return {"structure": _skeleton(tree, name), "n_leaves": len(leaves)}


def _positions_to_json(spec: Any) -> dict[str, Any]:
    """The layout of positions (`PositionSpec`) as JSON."""
    position_tree = None
    if spec.is_pytree:
        template = jax.tree.unflatten(spec.treedef, [0] * len(spec.names))
        position_tree = _skeleton(template, "initial_position")
    return {
        "is_pytree": spec.is_pytree,
        "names": list(spec.names),
        "shapes": [list(shape) for shape in spec.shapes],
        "structure": position_tree,
    }


def save_result(result: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``result`` to the directory ``path`` (created; files in it are replaced).

    Args:
        result: the `flowmc_like.SamplerResult` of a run.
        path: a directory.

    Returns:
        The directory.

    Raises:
        ValueError: a pytree in the result (positions, params) has a node type that is not
            stored without pickle.
    """
    directory = _prepare_directory(path)
    arrays = {name: np.asarray(getattr(result, name)) for name in _ARRAY_FIELDS}
    for group in _STATS_FIELDS:
        for name, values in getattr(result, group).items():
            arrays[f"{group}.{name}"] = np.asarray(values)
    history = {}
    for field in dataclasses.fields(History):
        values = np.asarray(getattr(result.history, field.name))
        if values.dtype.kind in "US":
            history[field.name] = values.tolist()
        else:
            arrays[f"history.{field.name}"] = values
    trees = {
        name: _store_tree(getattr(result, name), name, arrays)
        for name in ("kernel_params", "model_params")
    }
    diagnostics = None if result.diagnostics is None else dataclasses.asdict(result.diagnostics)
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "n_chains": result.n_chains,
        "n_dim": int(result.flat_samples.shape[-1]),
        "positions": _positions_to_json(result.position_spec),
        "has_constrain": result.constrain is not None,
        "local_kernel": _settings_to_json(result.local_kernel),
        "global_model": _settings_to_json(result.global_model),
        "trees": trees,
        "timings": {name: float(value) for name, value in result.timings.items()},
        "diagnostics": diagnostics,
        "history_text": history,
    }
    text = json.dumps(info, indent=1)
    _write_atomic(directory / ARRAYS, lambda handle: np.savez(handle, **arrays))
    _write_atomic(directory / RESULT_JSON, lambda handle: handle.write(text.encode()))
    return directory


def save_approximation(approximation: Any, path: str | os.PathLike[str]) -> Path:
    """Write an `flowmc_like.Approximation` to the directory ``path``.

    ``approximation.json`` holds the format, the model's settings, the structure of its
    params and the positions' layout; ``arrays.npz`` the params' leaves. A PPL target is
    not stored (``is_unconstrained`` is): `flowmc_like.load_approximation` takes it.

    Returns:
        The directory.
    """
    directory = _prepare_directory(path)
    model = _settings_to_json(approximation.model)
    if model is None or model["fields"] is None:
        raise ValueError(
            f"save: the model {approximation.model!r} cannot be stored without pickle "
            f"({None if model is None else model['why']})"
        )
    arrays: dict[str, np.ndarray] = {}
    info = {
        "format": APPROXIMATION_FORMAT,
        "format_version": FORMAT_VERSION,
        "n_dim": approximation.n_dim,
        "positions": _positions_to_json(approximation.position_spec),
        "is_unconstrained": approximation.is_unconstrained,
        "global_model": model,
        "trees": {"model_params": _store_tree(approximation.params, "model_params", arrays)},
    }
    text = json.dumps(info, indent=1)
    _write_atomic(directory / ARRAYS, lambda handle: np.savez(handle, **arrays))
    _write_atomic(directory / APPROXIMATION_JSON, lambda handle: handle.write(text.encode()))
    return directory


def _prepare_directory(path: str | os.PathLike[str]) -> Path:
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"save: path {str(directory)!r} is a file; expected a directory")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
