"""LatticeAutoregressive: a translation-equivariant autoregressive model of lattice states."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, final

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._random import gumbel_from_uniform
from flowmc_like._types import Array, ArrayLike, PRNGKey, PyTree, Space
from flowmc_like._validation import check_bool, check_int, check_sizes
from flowmc_like.models.base import AbstractDiscreteModel, ModelParams

__all__ = ["LatticeAutoregressive"]

_OWNER = "LatticeAutoregressive"


@functools.cache
def _stencil(shape: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(N, S)`` stencil sites of every site (int32) and which precede it (bool).

    Offsets ``(dr, dc)``, ``|dr|, |dc| <= radius``, ``(dr, dc) != (0, 0)``, in raster order of
    the offset; on a lattice narrower than ``2 radius + 1`` offsets equal modulo the lattice
    are kept once (and the site itself is dropped), so no torus site appears twice.
    """
    rows, cols = shape
    offsets: dict[tuple[int, int], None] = {}
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            if (dr % rows, dc % cols) != (0, 0):
                offsets.setdefault((dr % rows, dc % cols))
    site = np.arange(rows * cols)
    row, col = site // cols, site % cols
    index = np.zeros((rows * cols, len(offsets)), np.int32)
    for o, (dr, dc) in enumerate(offsets):
        index[:, o] = ((row + dr) % rows) * cols + (col + dc) % cols
    return index.astype(np.int32), index < site[:, None]


def _default_float_dtype() -> Any:
    return jnp.zeros((), dtype=float).dtype


@final
@dataclasses.dataclass(frozen=True)
class LatticeAutoregressive(AbstractDiscreteModel):
    """Exact-likelihood autoregressive model of ``K``-state sites on a ``rows x cols`` torus.

    Sites are drawn in raster order, site ``i = r * cols + c`` (the numbering of
    `flowmc_like.make_ising` and `flowmc_like.make_potts`). Every site's conditional comes
    from ONE small network whose weights do not depend on ``i``:

        x_i = [one_hot(s_j) * [j < i] for j in stencil(i)] ++ g_i             (S K + F,)
        l_i = W_2 gelu(W_1 x_i + b_1) + b_2 + D x_i + c_i                    (K,)
        log q(s) = sum_i log_softmax(l_i)[s_i].

    ``stencil(i)`` is the ``S = (2 radius + 1)^2 - 1`` torus sites ``((r + dr) mod rows,
    (c + dc) mod cols)`` with ``|dr|, |dc| <= radius``, in a fixed order of the offsets; a
    site not yet drawn (``j >= i``) enters as zeros, so the last rows see the first ones
    through the periodic boundary and the shared weights learn the wrap-around too.
    ``g_i`` (``F = 3K + 2``) carries what a window misses near a critical point, each a mean
    of the one-hots of sites already drawn: over all ``i`` of them (``K``) and the fraction
    ``i / N``; over the ``c`` sites of the current row before ``i`` (``K``) and ``c / cols``;
    over the row above (``K``, zeros in row 0, whose row above is not drawn yet). ``D`` is
    a direct linear map (the logistic part of a site's conditional), ``c_i`` a per-site bias
    ``(N, K)``. ``W_2``, ``b_2``, ``D`` and ``c`` start at zero, so a fresh model is uniform:
    ``log q(s) = -N log K``. Each factor is a normalised categorical of ``s_{<i}``, so ``q`` is
    exactly normalised. The model is translation-equivariant apart from the raster order
    and ``c_i``, with ``(S K + F)(H + K) + H K + N K`` parameters (``H = hidden_size``)
    against the ``(N K)^2`` direct weights of `Autoregressive`.

    `log_prob` evaluates all ``N`` conditionals in one batched pass (a gather through the
    ``(N, S)`` stencil table, exclusive cumulative sums for the means): ``O(N (S K + F) H)``.
    A draw is one `jax.lax.scan` over the sites carrying the one-hots drawn so far (zeros
    elsewhere) and the running counts; step ``i`` gathers its stencil from the carry and
    evaluates the network once, ``O((S K + F) H)``. Each site is drawn by Gumbel-max,
    ``s_i = argmax_k(l_ik + g_ik)``, with all the noise ``(N + symmetric, K)`` drawn up front.

    ``symmetric=True`` averages ``q`` over the cyclic relabellings ``s -> (s + c) mod K``,
    ``q_sym(s) = (1/K) sum_c q((s + c) mod K)``, exactly as `Autoregressive` does (an extra
    Gumbel row picks the shift of a draw; ``K`` passes per density evaluation). None (the
    default) lets the `Sampler` test the target's invariance and decide; outside a run None
    acts as False.

    Shapes: ``init(key, n_dim)`` needs ``n_dim = rows * cols`` and returns
    ``ModelParams(trainable, frozen=())`` with ``trainable = {"input": {"kernel" (S K + F,
    H + K), "bias" (H,)}, "output": {"kernel" (H, K), "bias" (K,)}, "site_bias" (N, K)}``
    (``input.kernel[:, H:]`` is ``D``); ``log_prob``: int ``(N,) -> ()`` (``-inf`` if a value
    is outside ``[0, K)``); ``sample_and_log_prob``: ``key -> (int32 (N,), ())``;
    ``logits``: float ``(N, K) -> (N, K)``. `prepare` is the identity.

    Attributes:
        shape: ``(rows, cols)`` of the periodic lattice.
        n_categories: number of categories ``K >= 2``. Default 2 (spins).
        radius: half-width of the square stencil, ``>= 1``. Default 3 (48 sites).
        hidden_size: width ``H`` of the hidden layer. Default 64.
        symmetric: average over the cyclic relabellings (see above), or None.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = LatticeAutoregressive(shape=(4, 4), hidden_size=8, symmetric=True)
        >>> params = model.init(jax.random.key(0), n_dim=16)
        >>> s, log_q = model.sample_and_log_prob(params, jax.random.key(1))
        >>> s.shape, s.dtype
        ((16,), dtype('int32'))
        >>> bool(jnp.allclose(log_q, -16 * jnp.log(2.0)))  # fresh model: uniform
        True
        >>> bool(jnp.allclose(model.log_prob(params, s), log_q))
        True
    """

    space: ClassVar[Space] = Space.DISCRETE

    shape: tuple[int, int]
    n_categories: int = 2
    radius: int = 3
    hidden_size: int = 64
    symmetric: bool | None = None

    def __post_init__(self) -> None:
        shape = check_sizes("shape", self.shape, owner=_OWNER)
        if len(shape) != 2:
            raise ValueError(
                f"{_OWNER}: shape must be (rows, cols), two integers >= 1; got {self.shape!r}"
            )
        object.__setattr__(self, "shape", shape)
        for name, minimum in (("n_categories", 2), ("radius", 1), ("hidden_size", 1)):
            value = check_int(name, getattr(self, name), minimum=minimum, owner=_OWNER)
            object.__setattr__(self, name, value)
        if self.symmetric is not None:
            symmetric = check_bool("symmetric", self.symmetric, owner=_OWNER)
            object.__setattr__(self, "symmetric", symmetric)

    # ---- helpers

    @property
    def n_sites(self) -> int:
        """``rows * cols``, the ``n_dim`` of the model."""
        return self.shape[0] * self.shape[1]

    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        return _stencil(self.shape, self.radius)

    @staticmethod
    def _dtype(params: ModelParams) -> Any:
        return params.trainable["output"]["bias"].dtype

    def _features(self, before: Array, row_before: Array, above: Array, i: Array) -> Array:
        """``g_i`` from the counts of category among earlier sites: all, this row, row above.

        Counts ``(..., K)`` and the site ``i`` ``(...)``; one formula for `log_prob` (all
        sites at once) and the sampler (one site), so both see the same inputs.
        """
        cols = self.shape[1]
        dtype = before.dtype
        position, col = i.astype(dtype), (i % cols).astype(dtype)
        parts = [
            before / jnp.maximum(position, 1.0)[..., None],
            (position / self.n_sites)[..., None],
            row_before / jnp.maximum(col, 1.0)[..., None],
            (col / cols)[..., None],
            above / cols,
        ]
        return jnp.concatenate(parts, axis=-1)

    def _all_features(self, one_hot: Array) -> Array:
        """``g_i`` of every site ``(N, F)`` from the event's one-hot ``(N, K)``."""
        rows, cols = self.shape
        n, k = one_hot.shape
        grid = one_hot.reshape(rows, cols, k)
        row_total = jnp.sum(grid, axis=1)  # (rows, K)
        above = jnp.concatenate([jnp.zeros_like(row_total[:1]), row_total[:-1]])
        return self._features(
            jnp.cumsum(one_hot, axis=0) - one_hot,
            (jnp.cumsum(grid, axis=1) - grid).reshape(n, k),
            jnp.repeat(above, cols, axis=0),
            jnp.arange(n),
        )

    def _head(self, params: ModelParams, pre: Array, site_bias: Array) -> Array:
        """Logits ``(..., K)`` from ``pre = [W_1; D] x`` ``(..., H + K)`` and ``c_i`` ``(..., K)``.

        ``W_2 gelu(pre_H + b_1) + D x`` as one product with ``[W_2; I_K]`` (no slicing of
        ``pre``, which XLA would copy).
        """
        p, h, k = params.trainable, self.hidden_size, self.n_categories
        dtype = pre.dtype
        z = pre + jnp.concatenate([p["input"]["bias"], jnp.zeros((k,), dtype)])
        act = jnp.where(jnp.arange(h + k) < h, jax.nn.gelu(z), z)
        w_out = jnp.concatenate([p["output"]["kernel"], jnp.eye(k, dtype=dtype)])
        return act @ w_out + p["output"]["bias"] + site_bias

    def _check_event(self, x: ArrayLike) -> Array:
        s = jnp.asarray(x)
        if not (jnp.issubdtype(s.dtype, jnp.integer) or s.dtype == jnp.bool_):
            raise TypeError(
                f"x has dtype {s.dtype}; expected an integer array with values in "
                f"[0, n_categories) = [0, {self.n_categories})."
            )
        if s.shape != (self.n_sites,):
            raise ValueError(
                f"x has shape {s.shape}; expected one event of shape (n_dim,) = "
                f"({self.n_sites},). Use jax.vmap for batches."
            )
        return s.astype(jnp.int32)

    def _log_qs(self, params: ModelParams, s: Array, shifts: tuple[int, ...]) -> Array:
        """``log q((s + c) mod K)`` of the unsymmetrised model for ``c`` in ``shifts``: ``(C,)``.

        ``s`` int ``(N,)`` in range. The network of `logits`, with the stencil's one-hot
        built from a gather of ``N S`` integers (cheaper than gathering one-hot rows), and
        every shift in one batched product.
        """
        index, available = self._tables()
        n, k = self.n_sites, self.n_categories
        dtype = self._dtype(params)
        mask = jnp.asarray(available, dtype)[..., None]

        def inputs(s_c: Array, one_hot: Array) -> Array:
            stencil = jax.nn.one_hot(s_c[index], k, dtype=dtype) * mask  # (N, S, K)
            return jnp.concatenate([stencil.reshape(n, -1), self._all_features(one_hot)], -1)

        events = jnp.stack([(s + c) % k for c in shifts])  # (C, N)
        one_hot = jax.nn.one_hot(events, k, dtype=dtype)  # (C, N, K)
        x = jax.vmap(inputs)(events, one_hot)
        p = params.trainable
        logits = self._head(params, x @ p["input"]["kernel"], p["site_bias"])
        return jnp.sum(one_hot * jax.nn.log_softmax(logits, axis=-1), axis=(1, 2))

    def _log_mean_exp(self, log_qs: Array) -> Array:
        return jax.nn.logsumexp(log_qs) - jnp.log(jnp.asarray(self.n_categories, log_qs.dtype))

    # ---- the protocol

    def init(self, key: PRNGKey, n_dim: int) -> ModelParams:
        """Fresh params: a uniform model (zero output, direct map and site biases).

        Args:
            key: PRNG key for the hidden layer's weights.
            n_dim: number of sites; must equal ``rows * cols``.

        Returns:
            ``ModelParams(trainable, frozen=())`` in JAX's default float dtype (see the
            class doc for the layout).
        """
        n_dim = check_int("n_dim", n_dim, owner=f"{_OWNER}.init")
        if n_dim != self.n_sites:
            raise ValueError(
                f"{_OWNER}.init: n_dim={n_dim} does not match shape={self.shape} "
                f"(rows * cols = {self.n_sites} sites)"
            )
        n_stencil = self._tables()[0].shape[1]
        trainable = _init_trainable(
            n_stencil, self.n_categories, self.hidden_size, n_dim, key, _default_float_dtype()
        )
        return ModelParams(trainable=trainable, frozen=())

    def prepare(self, params: ModelParams, data: ArrayLike) -> ModelParams:
        """Identity: the model has no data statistics. ``data`` is checked for its shape.

        Args:
            params: the params.
            data: ``(n_examples, n_dim)`` training data.

        Returns:
            ``params`` unchanged.
        """
        shape = jnp.shape(data)
        if len(shape) != 2 or shape[1] != self.n_sites:
            raise ValueError(
                f"data has shape {tuple(shape)}; expected (n_examples, n_dim) = "
                f"(n, {self.n_sites})."
            )
        return params

    def logits(self, params: ModelParams, one_hot: ArrayLike) -> Array:
        """Conditional logits ``(N, K)`` of a one-hot (or relaxed) event ``(N, K)``.

        Row ``i`` depends only on rows ``< i`` of ``one_hot``; ``log_softmax`` of row ``i`` is
        ``log q(s_i = . | s_{<i})``. Differentiable in ``one_hot`` and in the params.
        """
        one_hot = jnp.asarray(one_hot)
        if not jnp.issubdtype(one_hot.dtype, jnp.floating):
            one_hot = one_hot.astype(self._dtype(params))
        n, k = self.n_sites, self.n_categories
        if one_hot.shape != (n, k):
            raise ValueError(
                f"one_hot has shape {one_hot.shape}; expected (n_dim, n_categories) = ({n}, {k})."
            )
        index, available = self._tables()
        stencil = one_hot[index] * jnp.asarray(available, one_hot.dtype)[..., None]  # (N, S, K)
        x = jnp.concatenate([stencil.reshape(n, -1), self._all_features(one_hot)], axis=-1)
        kernel, site_bias = params.trainable["input"]["kernel"], params.trainable["site_bias"]
        return self._head(params, x @ kernel, site_bias)

    def log_prob(self, params: ModelParams, x: ArrayLike) -> Array:
        """Exact normalised ``log q(x)`` (or ``log q_sym(x)``) of one event, ``-inf`` off-support.

        Args:
            params: the params.
            x: int ``(n_dim,)`` with values in ``[0, n_categories)``.

        Returns:
            ``()`` in the params' float dtype. One batched pass (``K`` if ``symmetric``).
        """
        s = self._check_event(x)
        is_valid = jnp.all((s >= 0) & (s < self.n_categories))
        s_safe = jnp.where(is_valid, s, 0)
        if self.symmetric:
            shifts = tuple(range(self.n_categories))
            log_q = self._log_mean_exp(self._log_qs(params, s_safe, shifts))
        else:
            log_q = self._log_qs(params, s_safe, (0,))[0]
        return jnp.where(is_valid, log_q, -jnp.inf)

    def sample_and_log_prob(self, params: ModelParams, key: PRNGKey) -> tuple[Array, Array]:
        """One draw and its ``log q``, by one sequential scan over the sites (see class doc).

        Args:
            params: the params.
            key: PRNG key (one Gumbel draw of shape ``(n_dim + symmetric, K)``).

        Returns:
            ``(s, log_q)``: int32 ``(n_dim,)`` and ``()`` in the params' float dtype; ``log_q``
            equals `log_prob` of ``s`` up to float rounding.
        """
        n_rows = self.n_sites + int(bool(self.symmetric))
        gumbel = jax.random.gumbel(key, (n_rows, self.n_categories), dtype=self._dtype(params))
        return self._sample_from_gumbel(params, gumbel)

    def n_uniforms(self, n_dim: int) -> int:
        """``(n_dim + symmetric) * K``: the uniforms behind the Gumbel draws of one event."""
        return (n_dim + int(bool(self.symmetric))) * self.n_categories

    def sample_and_log_prob_from_uniform(
        self, params: ModelParams, uniform: Array
    ) -> tuple[Array, Array]:
        """`sample_and_log_prob` with the Gumbel draws ``-log(-log u)`` of ``uniform``.

        Args:
            params: the params.
            uniform: ``(n_uniforms,)`` draws in [0, 1).
        """
        uniform = jnp.asarray(uniform).astype(self._dtype(params))
        gumbel = gumbel_from_uniform(uniform).reshape(-1, self.n_categories)
        return self._sample_from_gumbel(params, gumbel)

    # ---- sampling

    def _sample_from_gumbel(self, params: ModelParams, gumbel: Array) -> tuple[Array, Array]:
        """The event of the Gumbel draws ``(N + symmetric, K)`` and its ``log q``."""
        n, k = self.n_sites, self.n_categories
        s, log_q = self._sample_sites(params, gumbel[:n])
        if not self.symmetric:
            return s, log_q
        shift = jnp.argmax(gumbel[n]).astype(jnp.int32)  # Uniform{0..K-1}
        others = self._log_qs(params, s, tuple(range(1, k)))
        return (s + shift) % k, self._log_mean_exp(jnp.concatenate([log_q[None], others]))

    def _sample_sites(self, params: ModelParams, gumbel: Array) -> tuple[Array, Array]:
        n, k = self.n_sites, self.n_categories
        rows, cols = self.shape
        dtype = self._dtype(params)
        index = jnp.asarray(self._tables()[0])
        kernel, site_bias = params.trainable["input"]["kernel"], params.trainable["site_bias"]

        def step(carry, xs):
            one_hot, before, row_counts, log_q = carry
            i, g = xs
            row = i // cols
            # sites not drawn yet are zero rows of the carry: no mask needed
            stencil = one_hot[index[i]].reshape(-1)
            above = jnp.where(row > 0, row_counts[row - 1], 0.0)
            features = self._features(before, row_counts[row], above, i)
            x = jnp.concatenate([stencil, features])
            logits = self._head(params, x @ kernel, site_bias[i])
            s_i = jnp.argmax(logits + g).astype(jnp.int32)
            log_q = log_q + jax.nn.log_softmax(logits)[s_i]
            e = jax.nn.one_hot(s_i, k, dtype=dtype)
            carry = (one_hot.at[i].set(e), before + e, row_counts.at[row].add(e), log_q)
            return carry, s_i

        init = (
            jnp.zeros((n, k), dtype),
            jnp.zeros((k,), dtype),
            jnp.zeros((rows, k), dtype),
            jnp.zeros((), dtype),
        )
        (*_, log_q), s = jax.lax.scan(step, init, (jnp.arange(n), gumbel))
        return s, log_q


def _init_trainable_impl(
    n_stencil: int, n_categories: int, hidden_size: int, n_dim: int, key: PRNGKey, dtype: Any
) -> PyTree:
    k, h = n_categories, hidden_size
    n_in = n_stencil * k + 3 * k + 2
    # LeCun-normal hidden weights (flax's Dense default); the direct columns start at zero.
    w_hidden = jax.random.normal(key, (n_in, h), dtype) / np.sqrt(n_in)
    return {
        "input": {
            "kernel": jnp.concatenate([w_hidden, jnp.zeros((n_in, k), dtype)], axis=1),
            "bias": jnp.zeros((h,), dtype),
        },
        "output": {"kernel": jnp.zeros((h, k), dtype), "bias": jnp.zeros((k,), dtype)},
        "site_bias": jnp.zeros((n_dim, k), dtype),
    }


_init_trainable = jax.jit(_init_trainable_impl, static_argnums=(0, 1, 2, 3, 5))
"""One compile per architecture, ``n_dim`` and dtype (``symmetric`` does not change the
params), instead of many eager op compiles."""
