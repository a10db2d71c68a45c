"""Bulk random draws that compile fast (private).

On CPU, JAX lowers its Threefry hash to a rolled loop with data-dependent rotations; every
`jax.random.uniform`/`normal`/`bits` call compiles its own copy, each a noticeable share
of a run's compilation.
The sampler's phases instead draw all the randomness of a step (local phase: of all its
steps; global phase: of a block of proposals) in ONE call of `uniform` or `bits` below,
which use XLA's own generator (``RngBitGenerator``, one operation that compiles much
faster) with its counter-based Threefry-2x32 algorithm, seeded by the 64 or 128 bits of a
JAX key, and transform the uniforms into normals or Gumbel draws here. Of XLA's algorithms,
Threefry runs fastest on CPU: several times faster per 32-bit word than Philox on a large
draw, which makes a MALA local phase of the benchmark targets measurably faster. The words
are drawn as one flat array and reshaped.

Keys are still split with `jax.random.split`, so every phase and every loop gets its own
independent stream from the user's key; the same key gives the same draws on a given
platform and JAX version. ``RngBitGenerator`` is not vmapped anywhere (JAX's batching rule
draws a vmapped batch from its first key): draw one array instead. The per-key public
methods (a kernel's ``step``, a model's ``sample_and_log_prob``) keep `jax.random`, which
is consistent under `jax.vmap`, and apply the same transforms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import dtypes

from flowmc_like._types import Array, PRNGKey

__all__ = ["bits", "gumbel_from_uniform", "normal_from_uniform", "uniform"]


def _generator_state(key: PRNGKey) -> Array:
    """The ``(4,)`` uint32 generator state of a JAX key.

    XLA's Threefry reads the state as a 64-bit key then a 64-bit starting counter: a 2-word
    (threefry) key fills the key and starts the counter at zero; a 4-word (rbg) key fills both.
    """
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    words = jnp.ravel(key).astype(jnp.uint32)
    if words.size >= 4:
        return words[:4]
    return jnp.concatenate([words, jnp.zeros(4 - words.size, jnp.uint32)])


def bits(key: PRNGKey, shape: Sequence[int], dtype: Any = jnp.uint32) -> Array:
    """Uniformly random unsigned integers of ``shape`` (uint8/16/32/64) from one draw."""
    shape = tuple(shape)
    _, words = jax.lax.rng_bit_generator(
        _generator_state(key),
        (math.prod(shape),),
        dtype=dtype,
        algorithm=jax.lax.RandomAlgorithm.RNG_THREE_FRY,
    )
    return words.reshape(shape)


def uniform(key: PRNGKey, shape: Sequence[int], dtype: Any = float) -> Array:
    """``U[0, 1)`` draws of ``shape`` and floating ``dtype`` from one `bits` draw.

    The top mantissa-many bits of each random word fill the mantissa of a float in
    ``[1, 2)``, minus 1 (what `jax.random.uniform` does with its own words).
    """
    dtype = jnp.dtype(dtypes.canonicalize_dtype(dtype))
    n_bits = dtype.itemsize * 8
    n_mantissa = jnp.finfo(dtype).nmant
    word_dtype = jnp.dtype(f"uint{n_bits}")
    words = bits(key, shape, word_dtype)
    one = jnp.asarray(1.0, dtype).view(word_dtype)
    fraction = jax.lax.shift_right_logical(words, np.array(n_bits - n_mantissa, word_dtype))
    return jax.lax.bitcast_convert_type(fraction | one, dtype) - jnp.asarray(1.0, dtype)


def normal_from_uniform(uniform: Array) -> Array:
    """Standard normals from ``U[0, 1)`` draws of the same shape and dtype.

    The inverse CDF ``sqrt(2) erfinv(2u - 1)``, clipped above ``-1`` so ``u = 0`` gives a
    finite value (about -5.4 in float32, -8.3 in float64); the same map
    `jax.random.normal` applies to its own uniform draws.
    """
    dtype = uniform.dtype
    lowest = jnp.nextafter(jnp.asarray(-1.0, dtype), jnp.asarray(0.0, dtype))
    centred = jnp.maximum(2.0 * uniform - 1.0, lowest)
    return jnp.asarray(math.sqrt(2.0), dtype) * jax.lax.erf_inv(centred)


def gumbel_from_uniform(uniform: Array) -> Array:
    """Standard Gumbel draws ``-log(-log u)`` from ``U[0, 1)`` draws (``u`` floored at tiny)."""
    tiny = jnp.finfo(uniform.dtype).tiny
    return -jnp.log(-jnp.log(jnp.maximum(uniform, tiny)))
