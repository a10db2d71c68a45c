"""How `SiteFlip`'s ``delta_log_prob(s, i, k, data)`` gets the run's data (private).

A ``delta_log_prob`` takes ``(s, i, k)`` or ``(s, i, k, data)``, told apart by its
signature; in the four-argument form the data comes from the log density the kernel is
called with, which carries it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from flowmc_like._types import LogProbFn, PyTree

__all__ = ["bound_data", "takes_data"]

_NO_DATA = object()


def bound_data(log_prob_fn: LogProbFn) -> PyTree:
    """The data a log density of one position carries, for ``delta_log_prob(s, i, k, data)``.

    The `Sampler` binds its data as ``functools.partial(log_prob, data=data)`` (and the
    tempered densities of `flowmc_like.tempering` carry a ``data`` attribute); a
    `flowmc_like.adapters.ppl.ModelLogDensity` carries its own as ``.data``.

    Args:
        log_prob_fn: the ``log_prob_fn`` a kernel method was given.

    Returns:
        Its ``data`` attribute, else its ``data=`` keyword as a ``functools.partial``.

    Raises:
        TypeError: ``log_prob_fn`` carries no data.
    """
    data = getattr(log_prob_fn, "data", _NO_DATA)
    if data is _NO_DATA and isinstance(log_prob_fn, functools.partial):
        data = log_prob_fn.keywords.get("data", _NO_DATA)
    if data is _NO_DATA:
        raise TypeError(
            "SiteFlip: delta_log_prob(s, i, k, data) takes the run's data, but the log_prob_fn "
            f"it was called with ({log_prob_fn!r}) carries none: give the Sampler data=..., "
            "or, calling the kernel directly, pass functools.partial(log_prob, data=data)"
        )
    return data


def takes_data(delta_fn: Callable[..., Any]) -> bool:
    """Whether ``delta_fn`` is ``(s, i, k, data)`` rather than ``(s, i, k)``, by its signature.

    Raises:
        TypeError: it can be called with neither three nor four positional arguments.
    """
    try:
        signature = inspect.signature(delta_fn)
    except (TypeError, ValueError):  # no signature to read (some builtins): the 3-argument form
        return False
    parameters = signature.parameters.values()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    n_named = sum(p.kind in positional for p in parameters)
    if n_named >= 4 and _binds(signature, 4):
        return True
    if _binds(signature, 3):
        return False
    raise TypeError(
        "SiteFlip: delta_log_prob must take (s, i, k) or (s, i, k, data) positionally; got a "
        f"callable with signature {signature}"
    )


def _binds(signature: inspect.Signature, n_args: int) -> bool:
    """Whether ``signature`` accepts ``n_args`` positional arguments and nothing else."""
    try:
        signature.bind(*range(n_args))
    except TypeError:
        return False
    return True
