"""Coupling masks and MADE masks (pure functions returning static numpy arrays).

Coupling convention (distrax's `MaskedCoupling`): ``mask[i] = True`` means coordinate ``i`` is
kept unchanged and conditioned upon; ``False`` means it is transformed.

MADE convention (Germain et al. 2015, "MADE: Masked Autoencoder for Distribution
Estimation"): every unit carries a degree; a weight from a unit of degree ``a`` to a hidden unit
of degree ``b`` is kept iff ``b >= a``, to an output unit iff ``b > a``. Masks are laid out like
a flax ``Dense`` kernel, ``(fan_in, fan_out)``, True = connection kept.
"""

from __future__ import annotations

import numpy as np

from flowmc_like._validation import check_int

__all__ = [
    "alternating_masks",
    "coupling_mask",
    "made_direct_mask",
    "made_hidden_degrees",
    "made_masks",
    "made_site_degrees",
]


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
        TypeError: if ``n_dim`` is not an integer.
        ValueError: if ``n_dim`` is below 1.
    """
    n_dim = check_int("n_dim", n_dim, owner="coupling_mask")
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
        TypeError: if ``n_dim`` or ``n_layers`` is not an integer.
        ValueError: if ``n_dim`` or ``n_layers`` is below 1.

    Example:
        >>> alternating_masks(3, 2)
        array([[ True, False,  True],
               [False,  True, False]])
    """
    n_layers = check_int("n_layers", n_layers, owner="alternating_masks")
    return np.stack([coupling_mask(n_dim, layer) for layer in range(n_layers)])


# --------------------------------------------------------------------------- MADE


def made_site_degrees(n_dim: int, n_categories: int) -> np.ndarray:
    """Degrees of the one-hot input (or the output logit) units of an autoregressive model.

    Units are laid out site-major: unit ``i * n_categories + k`` is category ``k`` of site
    ``i`` and has degree ``i``.

    Args:
        n_dim: number of sites, ``>= 1``.
        n_categories: units per site, ``>= 1``.

    Returns:
        Integer numpy array of shape ``(n_dim * n_categories,)``.

    Example:
        >>> made_site_degrees(3, 2)
        array([0, 0, 1, 1, 2, 2])
    """
    n_dim = check_int("n_dim", n_dim, owner="made_site_degrees")
    n_categories = check_int("n_categories", n_categories, owner="made_site_degrees")
    return np.repeat(np.arange(n_dim), n_categories)


def made_hidden_degrees(n_dim: int, size: int) -> np.ndarray:
    """Cyclic degrees of one hidden layer: ``m(h) = h mod max(n_dim - 1, 1)``.

    For ``n_dim >= 2`` the degrees cycle over ``0 .. n_dim - 2``: degree ``n_dim - 1`` would
    feed no output (site ``i`` only reads hidden units of degree ``< i <= n_dim - 1``), and a
    cyclic assignment (rather than MADE's random one) spreads the units evenly over the sites
    and makes the network a deterministic function of ``(n_dim, hidden_sizes)``. For
    ``n_dim = 1`` every degree is 0: the hidden units then see the single site but reach no
    output, so the only logit is a learned bias, as it must be.

    Args:
        n_dim: number of sites, ``>= 1``.
        size: number of hidden units, ``>= 1``.

    Returns:
        Integer numpy array of shape ``(size,)``.

    Example:
        >>> made_hidden_degrees(4, 7)
        array([0, 1, 2, 0, 1, 2, 0])
    """
    n_dim = check_int("n_dim", n_dim, owner="made_hidden_degrees")
    size = check_int("size", size, owner="made_hidden_degrees")
    return np.arange(size) % max(n_dim - 1, 1)


def made_direct_mask(n_dim: int, n_categories: int) -> np.ndarray:
    """Mask of direct input-to-output connections: output site ``i`` reads input sites ``< i``.

    Args:
        n_dim: number of sites, ``>= 1``.
        n_categories: number of categories ``K``, ``>= 1``.

    Returns:
        Boolean ``(n_dim * K, n_dim * K)``, shaped like a flax kernel (input rows, output
        columns).

    Example:
        >>> made_direct_mask(3, 1).astype(int)
        array([[0, 1, 1],
               [0, 0, 1],
               [0, 0, 0]])
    """
    sites = made_site_degrees(n_dim, n_categories)
    return sites[:, None] < sites[None, :]


def made_masks(
    n_dim: int, n_categories: int, hidden_sizes: tuple[int, ...]
) -> tuple[np.ndarray, ...]:
    """MADE connectivity masks for a one-hot input ``(n_dim, n_categories)``.

    With input and output degrees from `made_site_degrees` and hidden degrees from
    `made_hidden_degrees`, the mask into hidden layer ``l`` is ``m_l[b] >= m_{l-1}[a]`` and the
    mask into the output is ``m_out[b] > m_L[a]`` (strict), so output site ``i`` depends only on
    input sites ``< i``; site 0's logits depend on nothing (a bias only). With no hidden layers
    the single mask is the strict one from input to output (a masked linear map).

    Args:
        n_dim: number of sites, ``>= 1``.
        n_categories: number of categories ``K``, ``>= 1``.
        hidden_sizes: hidden widths ``(H_1, ..., H_L)``, possibly empty.

    Returns:
        ``L + 1`` boolean arrays shaped like flax kernels: ``(n_dim * K, H_1)``, ``(H_1, H_2)``,
        ..., ``(H_L, n_dim * K)``.

    Example:
        >>> first, output = made_masks(3, 1, (2,))
        >>> first.astype(int)
        array([[1, 1],
               [0, 1],
               [0, 0]])
        >>> output.astype(int)
        array([[0, 1, 1],
               [0, 0, 1]])
    """
    sites = made_site_degrees(n_dim, n_categories)
    degrees = [sites] + [made_hidden_degrees(n_dim, size) for size in hidden_sizes]
    masks = [
        degrees[layer][:, None] <= degrees[layer + 1][None, :] for layer in range(len(hidden_sizes))
    ]
    masks.append(degrees[-1][:, None] < sites[None, :])
    return tuple(masks)
