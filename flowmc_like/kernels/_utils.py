"""Private helpers for the continuous kernels: config validation and position casting."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax.numpy as jnp

from flowmc_like._types import Array, ArrayLike
from flowmc_like._validation import _describe

__all__ = ["as_float_position", "positive_finite_float", "positive_int"]


def positive_finite_float(name: str, value: Any) -> float:
    """Return ``value`` as a Python float, or raise if it is not a positive finite real number.

    Args:
        name: the field name used in the error message.
        value: the user's value (a Python or NumPy real scalar; booleans are refused).

    Returns:
        ``float(value)``.

    Raises:
        ValueError: if ``value`` is not a real number, is not finite, or is not > 0.
    """
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    try:
        number = float(value) if is_real else math.nan
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number) or number <= 0.0:
        raise ValueError(f"{name} must be a positive finite number; got {_describe(value)}")
    return number


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as a Python int, or raise if it is not a positive integer.

    Args:
        name: the field name used in the error message.
        value: the user's value (a Python or NumPy integer; booleans are refused).

    Returns:
        ``int(value)``.

    Raises:
        ValueError: if ``value`` is not an integer or is not >= 1.
    """
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer; got {_describe(value)}")
    return int(value)


def as_float_position(position: ArrayLike) -> Array:
    """``position`` as a JAX array with a floating dtype (integers go to the default float)."""
    position = jnp.asarray(position)
    if not jnp.issubdtype(position.dtype, jnp.floating):
        position = position.astype(jnp.result_type(float))
    return position
