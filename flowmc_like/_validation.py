"""Every check of user input, raised before anything is compiled.

Messages name the argument and say what was expected and what was given. The argument
checks (`check_int`, `check_float`, `check_bool`, `check_choice`, `check_sizes`,
`check_callable`) follow one rule: a value of the wrong type raises a TypeError, a value of
the right type but out of range a ValueError, and the message reads
``"<owner>: <name> must be <expected>; got <value> (of type <type>)"``, e.g.
``"HMC: n_leapfrog must be an integer >= 1; got '4' (of type str)"`` (the type is shown
for TypeErrors).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_data",
    "check_float",
    "check_int",
    "check_key",
    "check_log_prob_output",
    "check_position_dtype",
    "check_position_leaves",
    "check_position_values",
    "check_sizes",
]


def _describe(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits() has no repr
        return f"<{type(value).__name__} too large to display>"
    return text if len(text) <= 60 else text[:57] + "..."


def _finite_float(value: numbers.Real) -> float | None:
    """``float(value)`` if it is finite, else None (also for ints too large for a float)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _message(owner: str, name: str, expected: str, got: str) -> str:
    return f"{owner}: {name} must be {expected}; got {got}"


def _given(value: Any) -> str:
    """The value and its type, for a TypeError: ``'4' (of type str)``."""
    return f"{_describe(value)} (of type {type(value).__name__})"


def _is_integer(value: Any) -> bool:
    """A Python or NumPy integer; booleans (Python or NumPy) are not numbers here."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _format_bound(bound: float) -> str:
    return f"{bound:g}"


def check_int(name: str, value: Any, *, minimum: int = 1, owner: str) -> int:
    """Return ``value`` as a Python int if it is an integer ``>= minimum``.

    Args:
        name: the argument's name in messages.
        value: the user's value (a Python or NumPy integer; booleans are refused).
        minimum: the smallest value accepted.
        owner: the class or function the argument belongs to, e.g. ``"HMC"``.

    Returns:
        ``int(value)``.

    Raises:
        TypeError: ``value`` is not an integer (floats such as ``2.0`` included).
        ValueError: ``value`` is below ``minimum``.
    """
    expected = f"an integer >= {minimum}"
    if not _is_integer(value):
        raise TypeError(_message(owner, name, expected, _given(value)))
    if value < minimum:
        raise ValueError(_message(owner, name, expected, _describe(value)))
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_minimum: bool = False,
    open_maximum: bool = False,
    owner: str,
) -> float:
    """Return ``value`` as a Python float if it is a finite number within the bounds.

    Args:
        name: the argument's name in messages.
        value: the user's value (a Python or NumPy real number; booleans are refused).
        minimum: the lower bound, or None.
        maximum: the upper bound, or None.
        open_minimum: exclude ``minimum`` itself (``> minimum`` rather than ``>=``).
        open_maximum: exclude ``maximum`` itself.
        owner: the class or function the argument belongs to, e.g. ``"MALA"``.

    Returns:
        ``float(value)``.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is NaN, infinite (or an int too large for a float) or out of
            bounds.
    """
    if minimum is not None and maximum is not None:
        left, right = "(" if open_minimum else "[", ")" if open_maximum else "]"
        expected = (
            f"a finite number in {left}{_format_bound(minimum)}, {_format_bound(maximum)}{right}"
        )
    elif minimum is not None:
        expected = f"a finite number {'>' if open_minimum else '>='} {_format_bound(minimum)}"
    elif maximum is not None:
        expected = f"a finite number {'<' if open_maximum else '<='} {_format_bound(maximum)}"
    else:
        expected = "a finite number"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(_message(owner, name, expected, _given(value)))
    number = _finite_float(value)
    is_valid = number is not None
    if is_valid and minimum is not None:
        is_valid = number > minimum if open_minimum else number >= minimum
    if is_valid and maximum is not None:
        is_valid = number < maximum if open_maximum else number <= maximum
    if not is_valid:
        raise ValueError(_message(owner, name, expected, _describe(value)))
    return number  # type: ignore[return-value]


def check_bool(name: str, value: Any, *, owner: str) -> bool:
    """Return ``value`` as a Python bool if it is one (NumPy booleans included).

    Raises:
        TypeError: ``value`` is not a bool (``0``, ``1`` and ``"yes"`` are refused).
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(_message(owner, name, "a bool (True or False)", _given(value)))
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[Any], *, owner: str) -> Any:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        TypeError: ``value`` is of none of the choices' types (``mode=3`` for string modes).
        ValueError: ``value`` has the right type but is not a choice.
    """
    expected = f"one of {tuple(choices)}"
    if not isinstance(value, tuple({type(choice) for choice in choices})):
        raise TypeError(_message(owner, name, expected, _given(value)))
    if value not in choices:
        raise ValueError(_message(owner, name, expected, _describe(value)))
    return value


def check_sizes(name: str, value: Any, *, minimum: int = 1, owner: str) -> tuple[int, ...]:
    """Return ``value`` as a tuple of Python ints, each ``>= minimum`` (e.g. ``hidden_sizes``).

    A list, a tuple, a range or a 1-D NumPy integer array is accepted; so is an empty one.

    Raises:
        TypeError: ``value`` is not a sequence (a string, a number, None) or holds a
            non-integer.
        ValueError: an element is below ``minimum``.
    """
    expected = f"a tuple of integers >= {minimum}"
    is_sequence = isinstance(value, Sequence) and not isinstance(value, str | bytes)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value, is_sequence = tuple(value.tolist()), True
    if not is_sequence:
        raise TypeError(_message(owner, name, expected, _given(value)))
    for size in value:
        if not _is_integer(size):
            element = f"element {_describe(size)} is of type {type(size).__name__}"
            raise TypeError(_message(owner, name, expected, f"{_describe(value)} ({element})"))
    if any(size < minimum for size in value):
        raise ValueError(_message(owner, name, expected, _describe(value)))
    return tuple(int(size) for size in value)


def check_callable(
    name: str,
    value: Any,
    *,
    owner: str,
    allow_none: bool = False,
    signature: str | None = None,
) -> Any:
    """Return ``value`` if it is callable (or None, when ``allow_none``).

    Args:
        name: the argument's name in messages.
        value: the user's value.
        owner: the class or function the argument belongs to.
        allow_none: accept None too.
        signature: what the callable computes, shown in the message (e.g.
            ``"(s, i, k) -> log p(s with s_i = k) - log p(s)"``).

    Raises:
        TypeError: ``value`` is not callable.
    """
    if value is None and allow_none:
        return value
    if not callable(value):
        expected = "a callable" + (f" {signature}" if signature else "")
        if allow_none:
            expected += " or None"
        raise TypeError(_message(owner, name, expected, _given(value)))
    return value


def check_key(key: Any) -> jax.Array:
    """Accept a typed key (``jax.random.key``) or a raw uint32 ``(2,)`` key."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key; got a batch of shape {key.shape}")
        return key
    array = np.asarray(key) if isinstance(key, jax.Array | np.ndarray) else None
    if array is not None and array.dtype == np.uint32 and array.shape == (2,):
        return jnp.asarray(array)
    raise TypeError(
        "key must be a JAX PRNG key from jax.random.key(seed) (or jax.random.PRNGKey(seed)); "
        f"got {_describe(key)}"
    )


def check_position_dtype(argument: str, dtype: Any, n_categories: int | None) -> None:
    """Floating positions for a continuous kernel, integer ones for a discrete kernel.

    Args:
        argument: the argument's name in messages.
        dtype: the positions' dtype.
        n_categories: ``K`` for a discrete kernel, None for a continuous one.
    """
    if n_categories is None:
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{argument} must hold floating-point values for a continuous kernel; got dtype "
                f"{dtype} (convert with jnp.asarray(x, dtype=float), or use fm.SiteFlip for "
                "discrete states)"
            )
    elif dtype == np.bool_ or not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(
            f"{argument} must hold integers in [0, {n_categories}) for the discrete kernel "
            f"SiteFlip(n_categories={n_categories}); got dtype {dtype} (convert with "
            "jnp.asarray(s, dtype=jnp.int32))"
        )


def check_position_values(
    positions: jax.Array,
    n_chains: int | None,
    n_dim: int | None,
    argument: str,
    n_categories: int | None = None,
) -> tuple[int, int]:
    """Check flat ``(n_chains, n_dim)`` positions; return their sizes.

    Continuous positions (``n_categories`` None) must be finite floats; discrete positions
    must be integers in ``[0, n_categories)``.

    Args:
        positions: the flattened initial positions.
        n_chains: the ``n_chains`` the user gave to the Sampler, if any.
        n_dim: the ``n_dim`` the user gave, if any.
        argument: the argument's name in messages.
        n_categories: ``K`` for a discrete kernel, None for a continuous one.

    Returns:
        ``(n_chains, n_dim)``.
    """
    if positions.ndim != 2:
        expected = f"({n_chains or 'n_chains'}, {n_dim or 'n_dim'})"
        raise ValueError(
            f"{argument} has shape {tuple(positions.shape)}; expected (n_chains, n_dim) = "
            f"{expected}"
        )
    got_chains, got_dim = (int(s) for s in positions.shape)
    if (n_chains is not None and got_chains != n_chains) or (
        n_dim is not None and got_dim != n_dim
    ):
        raise ValueError(
            f"{argument} has shape {(got_chains, got_dim)}; expected (n_chains, n_dim) = "
            f"({n_chains if n_chains is not None else got_chains}, "
            f"{n_dim if n_dim is not None else got_dim})"
        )
    if got_chains < 1 or got_dim < 1:
        raise ValueError(
            f"{argument} must hold at least one chain and one dimension; got shape "
            f"{(got_chains, got_dim)}"
        )
    check_position_dtype(argument, positions.dtype, n_categories)
    values = np.asarray(positions)
    if n_categories is None:
        bad = ~np.all(np.isfinite(values), axis=1)
        if bad.any():
            chains = np.flatnonzero(bad).tolist()
            raise ValueError(f"{argument} holds NaN or inf values for chains {chains[:20]}")
    else:
        _check_categories(argument, values, n_categories)
    return got_chains, got_dim


def _check_categories(argument: str, values: np.ndarray, n_categories: int) -> None:
    """Integer ``values`` (leading axis: chains) must lie in ``[0, n_categories)``."""
    rows = values.reshape(values.shape[0], -1) if values.ndim else values.reshape(1, -1)
    bad = np.any((rows < 0) | (rows >= n_categories), axis=1)
    if bad.any():
        chains = np.flatnonzero(bad).tolist()
        raise ValueError(
            f"{argument} holds values outside [0, {n_categories}) (got min {rows.min()}, "
            f"max {rows.max()}) for chains {chains[:20]}; SiteFlip(n_categories="
            f"{n_categories}) expects categories 0, ..., {n_categories - 1}"
        )


def check_position_leaves(argument: str, leaves: Sequence[Any], n_categories: int | None) -> None:
    """Check the user's position arrays as given, before JAX converts them.

    Converting first hides errors: an object or string array fails inside JAX with a message
    that does not name the argument, and with 64-bit types disabled an ``int64`` category
    such as ``2**32`` silently wraps to ``0``.

    Args:
        argument: the argument's name in messages.
        leaves: the position arrays (each with ``dtype``; leading axis: chains).
        n_categories: ``K`` for a discrete kernel, None for a continuous one.
    """
    for leaf in leaves:
        check_position_dtype(argument, np.dtype(leaf.dtype), n_categories)
    if n_categories is None:
        return
    arrays = [np.asarray(leaf) for leaf in leaves]
    if len({a.shape[0] if a.ndim else 1 for a in arrays}) == 1:  # one row per chain
        rows = [a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, -1) for a in arrays]
        _check_categories(argument, np.concatenate(rows, axis=1), n_categories)
    else:  # the chain counts disagree (refused later); still catch out-of-range values
        for values in arrays:
            _check_categories(argument, values, n_categories)


def check_data(data: Any) -> Any:
    """Return ``data`` if every leaf is an array or a number JAX can trace, else raise.

    ``data`` is passed through ``jit`` as an argument, so each leaf must convert to a
    numeric or boolean JAX array; strings, arbitrary objects and the like are refused here
    with the leaf's path, rather than by JAX with a message that does not name ``data``.
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(data):
        if isinstance(leaf, jax.Array):
            continue
        try:
            dtype = np.asarray(leaf).dtype
        except Exception:  # anything numpy cannot convert is refused below
            dtype = np.dtype(object)
        if dtype != np.bool_ and not np.issubdtype(dtype, np.number):
            raise TypeError(
                "Sampler: data must be a pytree of arrays or numbers (it is passed through jit "
                f"as an argument); got a leaf of type {type(leaf).__name__} at "
                f"data{jax.tree_util.keystr(path)}: {_describe(leaf)}"
            )
    return data


def check_log_prob_output(log_prob_fn: Callable[[jax.Array], Any], example: jax.Array) -> None:
    """Trace ``log_prob_fn`` abstractly (no compilation) and check it returns a float scalar."""
    try:
        out = jax.eval_shape(log_prob_fn, example)
    except Exception as error:
        raise TypeError(
            f"log_prob could not be evaluated on one position of shape {tuple(example.shape)} "
            f"and dtype {example.dtype}: {type(error).__name__}: {error}"
        ) from error
    leaves = jax.tree.leaves(out)
    if len(leaves) != 1 or not hasattr(leaves[0], "shape"):
        raise TypeError(f"log_prob must return a scalar array; got {out}")
    shape, dtype = leaves[0].shape, leaves[0].dtype
    if int(np.prod(shape, dtype=int)) != 1 or len(shape) > 1:
        raise ValueError(
            f"log_prob must return a scalar for one position; got an output of shape {shape} "
            f"(did you sum over the last axis?)"
        )
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"log_prob must return a floating-point scalar; got dtype {dtype}")
