"""A PPL model's arguments, split into traced data and baked-in settings.

The arguments ``(model_args, model_kwargs)`` are a JAX pytree (tuples, lists, dicts, named
tuples; ``None`` is structure, not a leaf). Each leaf is

- *traced* if it is an array of a numeric or boolean dtype: a numpy array, a numpy scalar
  (``np.float32(1.5)``) or a JAX array. It reaches the compiled program as an input, so a
  new value of the same shape and dtype runs the same program;
- *static* otherwise: Python numbers, bools and strings (often plate sizes or flags),
  callables, arrays of other dtypes and any other object. Its value is baked into the
  program: a new one compiles a new program.

`split_arguments` returns the split (`ArgumentSplit`: structure, static leaves, shapes of the
traced ones) and the data: ``(model_args, model_kwargs)`` with every static leaf replaced by
None, so the data keep the arguments' layout (``data[0][1]`` is the second positional
argument, ``data[1]["y"]`` the keyword argument ``y``). `ArgumentSplit.arguments` rebuilds
the arguments from the static leaves and a data pytree, traced or not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import Any

import jax
import numpy as np

from flowmc_like._types import PyTree

__all__ = ["ArgumentSplit", "is_traced_leaf", "split_arguments", "static_key"]


def is_traced_leaf(leaf: Any) -> bool:
    """True for a numpy array, numpy scalar or JAX array of a numeric or boolean dtype."""
    if not isinstance(leaf, jax.Array | np.ndarray | np.generic):
        return False
    dtype = np.dtype(leaf.dtype)
    return dtype == np.bool_ or np.issubdtype(dtype, np.number)


def static_key(leaf: Any) -> Hashable:
    """A hashable stand-in for a static value: its type and value, or its identity.

    The type is part of the key (``1``, ``1.0`` and ``True`` are equal in Python but are
    different settings); an unhashable leaf (a list-like object, an array of strings) is
    compared by identity.
    """
    try:
        hash(leaf)
    except TypeError:
        return (type(leaf), "id", id(leaf))
    return (type(leaf), leaf)


def _abstract(leaf: Any) -> tuple[tuple[int, ...], str, bool]:
    """``(shape, dtype, weak_type)`` of a traced leaf, as the compiled program sees it."""
    return (
        tuple(np.shape(leaf)),
        np.dtype(leaf.dtype).str,
        bool(getattr(leaf, "weak_type", False)),
    )


def _argument_name(path: tuple[Any, ...]) -> str:
    """``argument 0``, ``argument 'y'`` (plus the path inside it) from a leaf's path."""
    first, second, rest = path[0], path[1], path[2:]
    if first.idx == 0:
        name = f"argument {second.idx}"
    else:
        name = f"argument {second.key!r}"
    return name + jax.tree_util.keystr(rest)


def _describe(static: Any, abstract: tuple[tuple[int, ...], str, bool] | None) -> str:
    """A leaf as messages show it: shape and dtype of a traced leaf, else its repr."""
    if abstract is not None:
        shape, dtype, _ = abstract
        return f"an array of shape {shape} and dtype {np.dtype(dtype).name}"
    text = repr(static)
    return text if len(text) <= 60 else text[:57] + "..."


def _structure_difference(old: Any, new: Any) -> str:
    """Where two structures of ``(model_args, model_kwargs)`` first differ, in words."""
    (old_args, old_kwargs), (new_args, new_kwargs) = old.children(), new.children()
    old_positional, new_positional = old_args.children(), new_args.children()
    if len(old_positional) != len(new_positional):
        return (
            f"{len(new_positional)} positional argument(s) given; the target's model was given "
            f"{len(old_positional)}"
        )
    old_keys, new_keys = old_kwargs.node_data()[1], new_kwargs.node_data()[1]
    if old_keys != new_keys:
        return (
            f"keyword arguments {sorted(new_keys)} given; the target's model was given "
            f"{sorted(old_keys)}"
        )
    names = [*range(len(old_positional)), *old_keys]
    pairs = zip(
        [*old_positional, *old_kwargs.children()],
        [*new_positional, *new_kwargs.children()],
        strict=True,
    )
    for name, (old_part, new_part) in zip(names, pairs, strict=True):
        if old_part != new_part:
            return f"argument {name!r} has structure {new_part} instead of {old_part}"
    return f"the arguments have structure {new} instead of {old}"


@dataclasses.dataclass(frozen=True, eq=False)
class ArgumentSplit:
    """How a model's arguments split into traced data and static leaves.

    Attributes:
        treedef: the structure of ``(model_args, model_kwargs)``.
        static: one entry per leaf: the static leaf, or None where the leaf is traced (a
            static leaf is never None: None is structure).
        abstract: one entry per leaf: ``(shape, dtype, weak_type)`` of a traced leaf, None
            for a static one.
        names: one name per leaf for messages (``argument 0``, ``argument 'y'['a']``).
        data_treedef: the structure of the data pytree.
        traced: False when every leaf was kept static (``split_arguments(traced=False)``).
    """

    treedef: Any
    static: tuple[Any, ...]
    abstract: tuple[tuple[tuple[int, ...], str, bool] | None, ...]
    names: tuple[str, ...]
    data_treedef: Any
    traced: bool = True

    @property
    def key(self) -> Hashable:
        """What the compiled program depends on: structure, static leaves, traced shapes."""
        static = tuple(None if leaf is None else static_key(leaf) for leaf in self.static)
        return (self.treedef, static, self.abstract)

    def arguments(self, data: PyTree) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(model_args, model_kwargs)`` from the static leaves and ``data``.

        Args:
            data: a pytree of the structure of the data `split_arguments` returned; its
                leaves may be tracers.

        Raises:
            ValueError: ``data`` has another structure.
        """
        leaves, treedef = jax.tree.flatten(data)
        if treedef != self.data_treedef:
            raise ValueError(
                f"the model's data must have the structure of target.data, {self.data_treedef}; "
                f"got {treedef}"
            )
        traced = iter(leaves)
        merged = [next(traced) if leaf is None else leaf for leaf in self.static]
        model_args, model_kwargs = jax.tree.unflatten(self.treedef, merged)
        return tuple(model_args), dict(model_kwargs)

    def check_same_program(self, other: ArgumentSplit, owner: str, again: str) -> None:
        """Raise a ValueError naming the first argument where ``other`` needs a new program.

        Args:
            other: the split of the new arguments.
            owner: the method named in the message.
            again: what to call instead (``"fm.from_numpyro"``).

        Raises:
            ValueError: the structure, a static leaf, or a traced leaf's shape or dtype differs.
        """
        advice = f"that compiles a new program; call {again} again"
        if other.treedef != self.treedef:
            difference = _structure_difference(self.treedef, other.treedef)
            raise ValueError(f"{owner}: {difference}; {advice}")
        leaves = zip(
            self.names, self.static, other.static, self.abstract, other.abstract, strict=True
        )
        for name, old, new, old_abstract, new_abstract in leaves:
            if old is None and new is None:
                if old_abstract == new_abstract:
                    continue
                problem = "is traced but has a new shape or dtype"
            elif old is None or new is None:
                problem = "changes between traced (an array) and static (baked in)"
            elif static_key(old) == static_key(new):
                continue
            else:
                problem = "is static (baked into the program) and has a new value"
            raise ValueError(
                f"{owner}: {name} {problem}: {_describe(new, new_abstract)} instead of "
                f"{_describe(old, old_abstract)}; "
                f"{advice}"
            )


def split_arguments(
    model_args: tuple[Any, ...], model_kwargs: dict[str, Any], traced: bool = True
) -> tuple[ArgumentSplit, PyTree]:
    """Split a model's arguments into static leaves and traced data (see the module).

    Args:
        model_args: the positional arguments.
        model_kwargs: the keyword arguments.
        traced: False keeps every leaf static (nothing traced; the data have no leaves).

    Returns:
        The `ArgumentSplit` and the data: ``(model_args, model_kwargs)`` with the static
        leaves replaced by None.
    """
    arguments = (tuple(model_args), dict(model_kwargs))
    paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(arguments)
    leaves = [leaf for _, leaf in paths_and_leaves]
    is_traced = [traced and is_traced_leaf(leaf) for leaf in leaves]
    data = jax.tree.unflatten(
        treedef, [leaf if t else None for t, leaf in zip(is_traced, leaves, strict=True)]
    )
    split = ArgumentSplit(
        treedef=treedef,
        static=tuple(None if t else leaf for t, leaf in zip(is_traced, leaves, strict=True)),
        abstract=tuple(
            _abstract(leaf) if t else None for t, leaf in zip(is_traced, leaves, strict=True)
        ),
        names=tuple(_argument_name(path) for path, _ in paths_and_leaves),
        data_treedef=jax.tree.structure(data),
        traced=traced,
    )
    return split, data
