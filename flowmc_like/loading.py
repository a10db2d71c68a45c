"""Reading a result saved by `SamplerResult.save` (the format: `flowmc_like.saved`)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from flowmc_like.adapters.pytree import PositionSpec
from flowmc_like.approximation import Approximation, bind
from flowmc_like.diagnostics import RunDiagnostics
from flowmc_like.records import History
from flowmc_like.result import SamplerResult
from flowmc_like.saved import (
    _ARRAY_FIELDS,
    _STATS_FIELDS,
    APPROXIMATION_FORMAT,
    APPROXIMATION_JSON,
    ARRAYS,
    FORMAT,
    FORMAT_VERSION,
    RESULT_JSON,
    _decode,
    _settings_from_json,
)

__all__ = ["load_approximation", "load_result"]


def _read_info(
    directory: Path,
    file_name: str = RESULT_JSON,
    format_name: str = FORMAT,
    owner: str = "load_result",
) -> dict[str, Any]:
    what = "result" if format_name == FORMAT else "approximation"
    file = directory / file_name
    if not file.exists():
        raise ValueError(
            f"{owner}: {str(directory)!r} is not a saved flowmc_like {what} (no "
            f"{file_name}); pass the directory given to {what}.save"
        )
    try:
        info = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{owner}: {file} is corrupt ({error})") from error
    if info.get("format") != format_name:
        raise ValueError(
            f"{owner}: {file} is not a flowmc_like {what} (format {info.get('format')!r})"
        )
    version = info.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{owner}: {str(directory)!r} has format version {version}, newer than the "
            f"version {FORMAT_VERSION} this flowmc_like reads; upgrade flowmc_like"
        )
    if version < FORMAT_VERSION:
        raise ValueError(
            f"{owner}: {str(directory)!r} has format version {version}; this flowmc_like "
            f"reads version {FORMAT_VERSION}"
        )
    return info


def _read_arrays(directory: Path, owner: str) -> dict[str, np.ndarray]:
    try:
        with np.load(directory / ARRAYS, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{owner}: {directory / ARRAYS} is corrupt ({error})") from error


def _read_tree(stored_tree: dict[str, Any] | None, name: str, arrays: dict[str, Any]) -> Any:
    if stored_tree is None:
        return None
    leaves = [arrays.get(f"{name}.{index}") for index in range(stored_tree["n_leaves"])]
    return _decode(stored_tree["structure"], leaves, name)


def _position_spec(info: dict[str, Any]) -> PositionSpec:
    positions = info["positions"]
    n_dim = int(info["n_dim"])
    if not positions["is_pytree"]:
        return PositionSpec.from_batched(np.zeros((1, n_dim), np.float32))[0]
    shapes = [tuple(shape) for shape in positions["shapes"]]
    leaves = [np.zeros((1, *shape), np.float32) for shape in shapes]
    template = _decode(positions["structure"], leaves, "initial_position")
    spec = PositionSpec.from_batched(template)[0]
    return spec


def load_result(path: str | os.PathLike[str], *, target: Any = None) -> SamplerResult:
    """Read a result written by `SamplerResult.save`.

    Args:
        path: the directory given to ``result.save``.
        target: for a result of a `from_numpyro` / `from_pymc` target, that target (or its
            ``log_prob``), to export the model's named, constrained variables again.

    Returns:
        The `SamplerResult`: the same draws, history, diagnostics, kernel and model params,
        and the rebuilt ``local_kernel`` / ``global_model`` (None for one whose settings
        hold a function, e.g. a ``SiteFlip`` with ``delta_log_prob``).

    Raises:
        ValueError: ``path`` is not a saved result, is corrupt, or has another format
            version.
    """
    directory = Path(path)
    info = _read_info(directory)
    arrays = _read_arrays(directory, "load_result")
    history_values = {}
    for field in dataclasses.fields(History):
        if field.name in info["history_text"]:
            history_values[field.name] = np.asarray(info["history_text"][field.name], dtype=np.str_)
        else:
            history_values[field.name] = arrays[f"history.{field.name}"]
    trees = {name: _read_tree(stored, name, arrays) for name, stored in info["trees"].items()}
    diagnostics = None
    if info["diagnostics"] is not None:
        values = dict(info["diagnostics"])
        values["warnings"] = tuple(values.get("warnings", ()))
        values["choices"] = tuple(values.get("choices", ()))
        diagnostics = RunDiagnostics(**values)
    constrain = log_density = data = None
    if target is not None:
        log_density = getattr(target, "log_prob", target)
        constrain = getattr(log_density, "constrain", None)
        if constrain is None:
            raise TypeError(
                "load_result: target must be a from_numpyro / from_pymc target (or its "
                f"log_prob); got {type(target).__name__}"
            )
        data = getattr(log_density, "data", None)
        if data is not None:
            constrain = _bind_data(constrain, data)
    return SamplerResult(
        **{name: arrays[name] for name in _ARRAY_FIELDS},
        history=History(**history_values),
        timings=dict(info["timings"]),
        kernel_params=trees["kernel_params"],
        model_params=trees["model_params"],
        position_spec=_position_spec(info),
        constrain=constrain,
        diagnostics=diagnostics,
        local_kernel=_settings_from_json(info["local_kernel"], "local_kernel"),
        global_model=_settings_from_json(info["global_model"], "global_model"),
        log_density=log_density,
        target_data=data,
        **{
            group: {
                name.split(".", 1)[1]: values
                for name, values in arrays.items()
                if name.startswith(f"{group}.")
            }
            for group in _STATS_FIELDS
        },
    )


def _bind_data(constrain: Any, data: Any) -> Any:
    """``constrain`` on ``data`` when it takes data (a PPL target's own data)."""
    if "data" in inspect.signature(constrain).parameters:
        return functools.partial(constrain, data=data)
    return constrain


def load_approximation(path: str | os.PathLike[str], *, target: Any = None) -> Approximation:
    """Read an approximation written by `Approximation.save` (or a saved result's model).

    Args:
        path: the directory given to ``approximation.save`` or to ``result.save``.
        target: for a `from_numpyro` / `from_pymc` target, that target (or its
            ``log_prob``), to draw and evaluate constrained, named values.

    Returns:
        The `flowmc_like.Approximation`.

    Raises:
        ValueError: ``path`` holds neither, is corrupt, has another format version, or
            its model cannot be rebuilt.
    """
    directory = Path(path)
    if not (directory / APPROXIMATION_JSON).exists() and (directory / RESULT_JSON).exists():
        return load_result(directory, target=target).approximation()
    owner = "load_approximation"
    info = _read_info(directory, APPROXIMATION_JSON, APPROXIMATION_FORMAT, owner)
    arrays = _read_arrays(directory, owner)
    model = _settings_from_json(info["global_model"], "global_model")
    params = _read_tree(info["trees"]["model_params"], "model_params", arrays)
    log_density = None if target is None else getattr(target, "log_prob", target)
    if log_density is not None and not hasattr(log_density, "constrain_one"):
        raise TypeError(
            f"{owner}: target must be a from_numpyro / from_pymc target (or its log_prob); "
            f"got {type(target).__name__}"
        )
    return bind(model, params, _position_spec(info), log_density, info["is_unconstrained"])
