"""Kaufman's (1949) exact partition function of the Ising torus, and tabulated references."""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like._types import Array
from flowmc_like.exact.moments import lattice_shape
from flowmc_like.lattice import BETA_C, _check_float

__all__ = [
    "REFERENCE_VALUES",
    "IsingReference",
    "TorusThermodynamics",
    "exact_ising_torus",
    "kaufman_log_z",
]

_MIN_KAUFMAN_PAD = 256


def _kaufman_log_z_jax(beta: Array, n_rows: Array, n_cols: Array, n_pad: int) -> Array:
    """``ln Z`` of the ``n_rows x n_cols`` Ising torus (J = 1, K = beta), differentiable.

    Kaufman (1949), in the form of Ferdinand & Fisher (1969)::

        Z = 1/2 (2 sinh 2K)^(mn/2) (Z1 + Z2 + Z3 + Z4),   m = n_rows, n = n_cols
        Z1 = prod_{r<n} 2 cosh(m gamma_{2r+1} / 2)     Z2 = prod_{r<n} 2 sinh(m gamma_{2r+1} / 2)
        Z3 = prod_{r<n} 2 cosh(m gamma_{2r} / 2)       Z4 = prod_{r<n} 2 sinh(m gamma_{2r} / 2)
        cosh gamma_l = cosh 2K coth 2K - cos(pi l / n)  (gamma_l > 0 for l >= 1)
        gamma_0 = 2K + ln tanh K                         (signed; 0 at beta_c)

    Every factor is written ``2 cosh x = e^|x| (1 + e^-2|x|)``,
    ``2 sinh x = sign(x) e^|x| (1 - e^-2|x|)``, with ``|x|`` and ``sign(x)`` taking the
    ``x >= 0`` branch at 0, so the pieces recombine into smooth functions and autodiff stays
    exact at ``gamma_0 = 0``; the four terms are added with a signed log-sum-exp.

    ``n_rows`` and ``n_cols`` are traced; the products run over ``r < n_pad`` with the terms
    ``r >= n_cols`` masked out, so one compilation serves every ``n_cols <= n_pad``.
    """
    two_k = 2.0 * beta
    half_m = 0.5 * n_rows
    r = jnp.arange(n_pad)
    is_odd_term = r < n_cols  # l = 2r + 1 for r = 0..n-1
    is_even_term = (r >= 1) & (r < n_cols)  # l = 2r for r = 1..n-1 (l = 0 is separate)

    def half_m_gamma(l_values: Array, is_term: Array) -> Array:
        # Padded entries get l = 1, which keeps arccosh (and its gradient) finite.
        l_safe = jnp.where(is_term, l_values, 1)
        cosh_gamma = jnp.cosh(two_k) ** 2 / jnp.sinh(two_k) - jnp.cos(jnp.pi * l_safe / n_cols)
        return half_m * jnp.arccosh(cosh_gamma)

    x_odd = half_m_gamma(2 * r + 1, is_odd_term)
    x_even = half_m_gamma(2 * r, is_even_term)
    x_zero = half_m * (two_k + jnp.log(jnp.tanh(beta)))
    is_positive = x_zero >= 0
    abs_zero = jnp.where(is_positive, x_zero, -x_zero)
    sign_zero = jnp.where(is_positive, 1.0, -1.0)

    def log_2cosh(x: Array) -> Array:  # x >= 0
        return x + jnp.log1p(jnp.exp(-2.0 * x))

    def log_2sinh(x: Array) -> Array:  # x > 0
        return x + jnp.log1p(-jnp.exp(-2.0 * x))

    def masked_sum(values: Array, is_term: Array) -> Array:
        return jnp.sum(jnp.where(is_term, values, 0.0))

    log_z1 = masked_sum(log_2cosh(x_odd), is_odd_term)
    log_z2 = masked_sum(log_2sinh(x_odd), is_odd_term)
    log_z3 = log_2cosh(abs_zero) + masked_sum(log_2cosh(x_even), is_even_term)
    log_z4_magnitude = abs_zero + masked_sum(log_2sinh(x_even), is_even_term)
    z4_factor = sign_zero * -jnp.expm1(-2.0 * abs_zero)  # 2 sinh(x0) = z4_factor * e^|x0|
    shift = jax.lax.stop_gradient(jnp.maximum(jnp.maximum(log_z1, log_z3), log_z4_magnitude))
    total = (
        jnp.exp(log_z1 - shift)
        + jnp.exp(log_z2 - shift)
        + jnp.exp(log_z3 - shift)
        + z4_factor * jnp.exp(log_z4_magnitude - shift)
    )
    prefactor = half_m * n_cols * jnp.log(2.0 * jnp.sinh(two_k)) - jnp.log(2.0)
    return prefactor + shift + jnp.log(total)


@functools.partial(jax.jit, static_argnames="n_pad")
def _kaufman_derivatives(
    beta: Array, n_rows: Array, n_cols: Array, n_pad: int
) -> tuple[Array, Array, Array]:
    """``ln Z`` and its first two derivatives in ``beta`` (call under ``jax.enable_x64``)."""
    first_fn = jax.grad(_kaufman_log_z_jax)
    second_fn = jax.grad(first_fn)
    return (
        _kaufman_log_z_jax(beta, n_rows, n_cols, n_pad),
        first_fn(beta, n_rows, n_cols, n_pad),
        second_fn(beta, n_rows, n_cols, n_pad),
    )


def kaufman_log_z(L: int, beta: float, *, n_cols: int | None = None) -> float:
    """Exact ``ln Z`` of the Ising torus from Kaufman's (1949) formula, in float64.

    Args:
        L: number of rows (and of columns unless ``n_cols`` is given).
        beta: inverse temperature, ``> 0``.
        n_cols: number of columns for an ``L x n_cols`` torus.

    Returns:
        ``ln sum_s exp(-beta E(s))`` with ``E = -sum_bonds sigma_i sigma_j`` (2N bonds).
    """
    return exact_ising_torus(L, beta, n_cols=n_cols).log_z


class TorusThermodynamics(NamedTuple):
    """Exact Ising-torus values from `exact_ising_torus`.

    Attributes:
        log_z: ``ln Z``.
        e: energy per site ``<E>/N = -(1/N) d ln Z / d beta``.
        c_v: specific heat per site ``beta^2 Var(E) / N = (beta^2/N) d^2 ln Z / d beta^2``.
    """

    log_z: float
    e: float
    c_v: float


def exact_ising_torus(L: int, beta: float, *, n_cols: int | None = None) -> TorusThermodynamics:
    """Energy and specific heat per site of the finite Ising torus, exact in float64.

    ``ln Z`` from Kaufman's formula (see `kaufman_log_z`) is differentiated with ``jax.grad``
    under ``jax.enable_x64``; agreement with enumeration at ``L = 4`` is about ``1e-14``.

    Args:
        L: number of rows (and of columns unless ``n_cols`` is given).
        beta: inverse temperature, ``> 0``.
        n_cols: number of columns for an ``L x n_cols`` torus.

    Returns:
        `TorusThermodynamics` ``(log_z, e, c_v)``.

    Example:
        >>> values = exact_ising_torus(4, BETA_C)
        >>> round(values.e, 10), round(values.c_v, 10)
        (-1.5656237876, 0.7832668259)
    """
    n_rows, n_cols = lattice_shape("exact_ising_torus", L, n_cols)
    beta = _check_float("exact_ising_torus", "beta", beta)
    if beta <= 0.0:
        raise ValueError(f"exact_ising_torus: beta must be > 0 for Kaufman's formula; got {beta}")
    # Pad the products to a power of two >= 256: one compilation (about 2 s) for all n_cols <= 256.
    n_pad = max(_MIN_KAUFMAN_PAD, 1 << (n_cols - 1).bit_length())
    with jax.enable_x64(True):
        values = _kaufman_derivatives(
            jnp.asarray(beta, dtype=jnp.float64),
            jnp.asarray(n_rows, dtype=jnp.float64),
            jnp.asarray(n_cols, dtype=jnp.float64),
            n_pad=n_pad,
        )
    log_z, first, second = (float(value) for value in values)
    n_sites = n_rows * n_cols
    return TorusThermodynamics(log_z=log_z, e=-first / n_sites, c_v=beta**2 * second / n_sites)


# ---------------------------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------------------------


class IsingReference(NamedTuple):
    """Exact Ising-torus reference values at one ``(L, beta)``.

    Attributes:
        L: side of the torus.
        beta: inverse temperature.
        e: energy per site ``<E>/N``.
        c_v: specific heat per site ``beta^2 Var(E) / N``.
        abs_magnetization: ``<|m|>``, or ``None`` where not tabulated.
    """

    L: int
    beta: float
    e: float
    c_v: float
    abs_magnetization: float | None


REFERENCE_VALUES: Mapping[tuple[int, float], IsingReference] = types.MappingProxyType(
    {
        (ref.L, ref.beta): ref
        for ref in (
            IsingReference(4, BETA_C, -1.5656237876, 0.7832668259, 0.8438604448),
            IsingReference(8, BETA_C, -1.4915891074, 1.1455592399, 0.7773310928),
            IsingReference(16, BETA_C, -1.4530648528, 1.4987049594, None),
            IsingReference(8, 0.5, -1.7456831703, 0.7141226029, 0.9114522661),
        )
    }
)
"""Exact Ising values keyed by ``(L, beta)`` (``beta`` is `BETA_C` or 0.5), to 10 decimals.

``e`` and ``c_v`` follow from Kaufman's formula (`exact_ising_torus`); ``<|m|>`` at ``L = 4``
from brute-force enumeration and at ``L = 8`` from the transfer matrix of `enumerate_lattice`.
"""
