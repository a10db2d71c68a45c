"""`json_default`: the ``default=`` hook that lets `json.dump` write benchmark records."""

from __future__ import annotations

from typing import Any

__all__ = ["json_default"]


def json_default(o: Any) -> Any:
    """A JSON-able stand-in for ``o``: lists for arrays, Python scalars for NumPy scalars,
    ``str(o)`` for anything else."""
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    return str(o)
