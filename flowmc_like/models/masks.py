"""Coupling masks (pure functions returning static numpy arrays).

Convention (distrax's `MaskedCoupling`): ``mask[i] = True`` means coordinate ``i`` is kept
unchanged and conditioned upon; ``False`` means it is transformed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["alternating_masks", "coupling_mask"]


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def coupling_mask(n_dim: int, parity: int) -> np.ndarray:
    """One alternating coupling mask.

    ``mask[i] = (i % 2 == parity % 2)`` for ``n_dim >= 2``, so the coordinates of one parity
    condition the transform of the others.

    For ``n_dim = 1`` no coordinate can condition another, so the mask is ``[False]``: the
    single coordinate is always transformed and the conditioner sees only zeros, i.e. the
    layer is an unconditional, learnable elementwise bijection (its parameters are the
    conditioner's biases). This keeps one-dimensional flows useful instead of having every
    other layer be the identity.

    Args:
        n_dim: number of coordinates, ``>= 1``.
        parity: which parity is held fixed (only ``parity % 2`` matters).

    Returns:
        Boolean numpy array of shape ``(n_dim,)``.

    Raises:
        ValueError: if ``n_dim`` is not a positive integer.
    """
    n_dim = _check_positive_int("n_dim", n_dim)
    if n_dim == 1:
        return np.zeros((1,), dtype=bool)
    return np.arange(n_dim) % 2 == parity % 2


def alternating_masks(n_dim: int, n_layers: int) -> np.ndarray:
    """Masks for ``n_layers`` coupling layers, alternating parity from layer to layer.

    Layer ``l`` uses ``coupling_mask(n_dim, parity=l)``, so two consecutive layers together
    transform every coordinate (for ``n_dim >= 2``).

    Args:
        n_dim: number of coordinates, ``>= 1``.
        n_layers: number of coupling layers, ``>= 1``.

    Returns:
        Boolean numpy array of shape ``(n_layers, n_dim)``.

    Raises:
        ValueError: if ``n_dim`` or ``n_layers`` is not a positive integer.

    Example:
        >>> alternating_masks(3, 2)
        array([[ True, False,  True],
               [False,  True, False]])
    """
    n_layers = _check_positive_int("n_layers", n_layers)
    return np.stack([coupling_mask(n_dim, layer) for layer in range(n_layers)])
