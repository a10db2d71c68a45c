"""Autoregressive: an exactly normalised categorical model for discrete spaces (MADE)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, final

import jax
import jax.numpy as jnp

from flowmc_like._random import gumbel_from_uniform
from flowmc_like._types import Array, ArrayLike, PRNGKey, PyTree, Space
from flowmc_like._validation import check_bool, check_int, check_sizes
from flowmc_like.models.base import AbstractDiscreteModel, ModelParams
from flowmc_like.models.masks import made_direct_mask, made_masks
from flowmc_like.models.networks import MADE

__all__ = ["Autoregressive"]

_ACTIVATION: Callable[[Array], Array] = jax.nn.gelu
"""Hidden nonlinearity (smooth, unbounded, ``gelu(0) = 0``; no dead units as with ReLU)."""

_SiteSampler = Callable[[ModelParams, Array], tuple[Array, Array]]
"""``(params, gumbel (n_dim, K)) -> (s (n_dim,) int32, log q(s) ())``: one sequential pass."""


def _default_float_dtype() -> Any:
    return jnp.zeros((), dtype=float).dtype


@final
@dataclasses.dataclass(frozen=True)
class Autoregressive(AbstractDiscreteModel):
    """Exact-likelihood autoregressive categorical model over ``{0, ..., K-1}^n_dim`` (MADE).

    For an event ``s`` (int ``(n_dim,)``, values in ``[0, K)``, ``K = n_categories``):

        log q(s) = sum_i log_softmax(l_i(s_{<i}))[s_i],

    where the conditional logits ``l = MADE(one_hot(s))`` ``(n_dim, K)`` come from one forward
    pass of a masked network (Germain et al. 2015): the one-hot input ``(n_dim, K)`` is
    flattened site-major, unit ``(i, k)`` gets degree ``i``, hidden unit ``h`` of every hidden
    layer gets the cyclic degree ``m(h) = h mod max(n_dim - 1, 1)``, and a weight is kept iff
    ``m(to) >= m(from)`` into a hidden unit and ``i > m(from)`` into output site ``i``
    (`masks.made_masks`). With ``direct_connections`` (the default) the output also gets a
    masked linear map straight from the input, site ``i`` reading every site ``< i``
    (`masks.made_direct_mask`): a logistic (softmax) autoregression on which the hidden layer
    adds nonlinear corrections. Row ``i`` of the logits therefore depends only on sites ``< i``
    (row 0 is a learned bias), each factor is a normalised categorical, and ``q`` is exactly
    normalised. Hidden layers use GELU. The output and direct layers are zero-initialised, so a
    fresh model is uniform: ``log q(s) = -n_dim log K``.

    Sampling is sequential (site ``i`` needs ``s_{<i}``) in one `jax.lax.scan`, but not at the
    price of ``n_dim`` forward passes: the first layer's pre-activation ``a`` is carried, and
    after site ``i`` is drawn the masked weight row of input ``(i, s_i)`` is added to it
    (``O(H_1)``); site ``i+1`` then needs only ``gelu(a)``, the deeper hidden layers, and its
    own ``K`` output logits; the direct weights' contributions are accumulated the same way
    (``O(n_dim * K)`` per site). With one hidden layer of width ``H`` a draw costs
    ``O(n_dim * (H + n_dim) * K)`` (the same order as one `log_prob`) instead of
    ``O(n_dim^2 * (H + n_dim) * K)``.
    Each site is drawn by Gumbel-max, ``s_i = argmax_k(l_ik + g_ik)``, with all the Gumbel
    noise ``(n_dim, K)`` drawn up front by one RNG call.

    ``symmetric=True`` averages ``q`` over the cyclic relabelling group
    ``G = {s -> (s + c) mod K, c = 0..K-1}`` (the global spin flip for ``K = 2``):

        q_sym(s) = (1/K) sum_c q((s + c) mod K),

    still exactly normalised (each term is ``q`` composed with a bijection of the state space)
    and ``G``-invariant. It is sampled as ``s ~ q``, ``c ~ Uniform{0..K-1}``, return
    ``(s + c) mod K``; ``log q_sym`` is a logsumexp over the ``K`` shifts minus ``log K``
    (``K - 1`` extra forward passes per draw, batched, and ``K`` per `log_prob`). Use it for
    targets invariant under ``G`` (e.g. an Ising model without field): ``q`` then only has to
    learn one of the symmetric modes. Maximum-likelihood training fits ``q_sym`` directly.

    Shapes: ``init(key, n_dim)`` returns ``ModelParams(trainable, frozen=())`` with
    ``trainable`` the flax params of a `MADE` (``{"hidden_0", ..., "output"}``) in JAX's
    default float dtype; ``log_prob``: int ``(n_dim,) -> ()`` (``-inf`` if a value is outside
    ``[0, K)``); ``sample_and_log_prob``: ``key -> (int32 (n_dim,), ())``;
    ``logits``: float ``(n_dim, K) -> (n_dim, K)``. `prepare` is the identity.

    Attributes:
        n_categories: number of categories ``K >= 2``. Default 2 (spins, binary variables).
        hidden_sizes: hidden widths of the MADE network. Default ``(128,)``: one hidden layer
            keeps the per-draw cost linear in ``n_dim`` (each extra layer of width ``H`` adds
            ``O(n_dim * H^2)``) and is ample for short-range interactions; ``()`` gives a
            masked linear map (a softmax autoregression, ``O(n_dim^2 K^2)`` parameters).
        symmetric: average over the cyclic relabelling group (see above); it is only
            right when the target is invariant, and costs ``K`` forward passes per density
            evaluation. None (the default): the `Sampler` tests the target's invariance on
            random states and the chains' starts before compiling and decides
            (`flowmc_like.symmetry`; ``result.diagnostics.choices`` says what it chose);
            used outside a run, None acts as False.
        direct_connections: add the direct input-to-output weights (``(n_dim K)^2`` of them;
            ignored when ``hidden_sizes=()``, which is that map alone). Default True: a
            site's conditional is dominated by a near-linear function of its already-drawn
            neighbours, which a MADE hidden layer of width ~``n_dim`` (about one unit per
            degree) represents poorly. On the Ising model at its critical point the global
            acceptance is several times higher with them (see docs/discrete.md).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = Autoregressive(n_categories=3, hidden_sizes=(8,))
        >>> params = model.init(jax.random.key(0), n_dim=4)
        >>> s, log_q = model.sample_and_log_prob(params, jax.random.key(1))
        >>> s.shape, s.dtype
        ((4,), dtype('int32'))
        >>> bool(jnp.allclose(log_q, -4 * jnp.log(3.0)))  # fresh model: uniform
        True
        >>> bool(jnp.allclose(model.log_prob(params, s), log_q))
        True
    """

    space: ClassVar[Space] = Space.DISCRETE

    n_categories: int = 2
    hidden_sizes: tuple[int, ...] = (128,)
    symmetric: bool | None = None
    direct_connections: bool = True

    def __post_init__(self) -> None:
        owner = "Autoregressive"
        n_categories = check_int("n_categories", self.n_categories, minimum=2, owner=owner)
        object.__setattr__(self, "n_categories", n_categories)
        hidden_sizes = check_sizes("hidden_sizes", self.hidden_sizes, owner=owner)
        object.__setattr__(self, "hidden_sizes", hidden_sizes)
        if self.symmetric is not None:
            object.__setattr__(
                self, "symmetric", check_bool("symmetric", self.symmetric, owner=owner)
            )
        direct = check_bool("direct_connections", self.direct_connections, owner=owner)
        object.__setattr__(self, "direct_connections", direct)

    # ---- helpers

    def _network(self, n_dim: int, dtype: Any = jnp.float32) -> MADE:
        return MADE(
            n_dim=n_dim,
            n_categories=self.n_categories,
            hidden_sizes=self.hidden_sizes,
            activation=_ACTIVATION,
            direct=self._has_direct,
            param_dtype=dtype,
        )

    @property
    def _has_direct(self) -> bool:
        """Direct input-to-output weights exist (with at least one hidden layer)."""
        return self.direct_connections and bool(self.hidden_sizes)

    def _n_dim(self, params: ModelParams) -> int:
        return params.trainable["output"]["bias"].shape[-1] // self.n_categories

    @staticmethod
    def _dtype(params: ModelParams) -> Any:
        return params.trainable["output"]["bias"].dtype

    def _check_event(self, params: ModelParams, s: ArrayLike) -> Array:
        s = jnp.asarray(s)
        n_dim = self._n_dim(params)
        if not (jnp.issubdtype(s.dtype, jnp.integer) or s.dtype == jnp.bool_):
            raise TypeError(
                f"x has dtype {s.dtype}; expected an integer array with values in "
                f"[0, n_categories) = [0, {self.n_categories})."
            )
        if s.shape != (n_dim,):
            raise ValueError(
                f"x has shape {s.shape}; expected one event of shape (n_dim,) = ({n_dim},). "
                "Use jax.vmap for batches."
            )
        return s.astype(jnp.int32)

    def _log_q(self, params: ModelParams, s: Array) -> Array:
        """``log q(s)`` of the unsymmetrised model, one forward pass; ``s`` in range."""
        one_hot = jax.nn.one_hot(s, self.n_categories, dtype=self._dtype(params))
        log_cond = jax.nn.log_softmax(self.logits(params, one_hot), axis=-1)
        return jnp.sum(one_hot * log_cond)

    def _shifts(self, s: Array, start: int = 0) -> Array:
        """``(s + c) mod K`` for ``c = start .. K-1``, stacked: ``(K - start, n_dim)``."""
        k = self.n_categories
        return (s[None, :] + jnp.arange(start, k, dtype=s.dtype)[:, None]) % k

    def _symmetrize(self, params: ModelParams, s: Array, log_q_s: Array) -> Array:
        """``log q_sym(s)`` given ``log q(s)``: the other ``K - 1`` shifts in one batch."""
        others = jax.vmap(self._log_q, in_axes=(None, 0))(params, self._shifts(s, start=1))
        log_qs = jnp.concatenate([log_q_s[None], others])
        return jax.nn.logsumexp(log_qs) - jnp.log(jnp.asarray(self.n_categories, log_qs.dtype))

    # ---- the protocol

    def init(self, key: PRNGKey, n_dim: int) -> ModelParams:
        """Fresh params: a uniform model (zero output layer).

        Args:
            key: PRNG key for the hidden layers.
            n_dim: number of sites, ``>= 1``.

        Returns:
            ``ModelParams(trainable=<MADE flax params>, frozen=())`` in JAX's default float
            dtype.
        """
        n_dim = check_int("n_dim", n_dim, owner="Autoregressive.init")
        trainable = _init_trainable(
            self.n_categories,
            self.hidden_sizes,
            self._has_direct,
            key,
            int(n_dim),
            _default_float_dtype(),
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
        n_dim = self._n_dim(params)
        if len(shape) != 2 or shape[1] != n_dim:
            raise ValueError(
                f"data has shape {tuple(shape)}; expected (n_examples, n_dim) = (n, {n_dim})."
            )
        return params

    def logits(self, params: ModelParams, one_hot: ArrayLike) -> Array:
        """Conditional logits ``(n_dim, K)`` of a one-hot (or relaxed) event ``(n_dim, K)``.

        Row ``i`` depends only on rows ``< i`` of ``one_hot``; ``log_softmax`` of row ``i`` is
        ``log q(s_i = . | s_{<i})``. Differentiable in ``one_hot`` and in the params.
        """
        one_hot = jnp.asarray(one_hot)
        if not jnp.issubdtype(one_hot.dtype, jnp.floating):
            one_hot = one_hot.astype(self._dtype(params))
        n_dim = self._n_dim(params)
        if one_hot.shape != (n_dim, self.n_categories):
            raise ValueError(
                f"one_hot has shape {one_hot.shape}; expected (n_dim, n_categories) = "
                f"({n_dim}, {self.n_categories})."
            )
        return self._network(n_dim).apply({"params": params.trainable}, one_hot)

    def log_prob(self, params: ModelParams, x: ArrayLike) -> Array:
        """Exact normalised ``log q(x)`` (or ``log q_sym(x)``) of one event, ``-inf`` off-support.

        Args:
            params: the params.
            x: int ``(n_dim,)`` with values in ``[0, n_categories)``.

        Returns:
            ``()`` in the params' float dtype. One forward pass (``K`` batched ones if
            ``symmetric``).
        """
        s = self._check_event(params, x)
        is_valid = jnp.all((s >= 0) & (s < self.n_categories))
        s_safe = jnp.where(is_valid, s, 0)
        if self.symmetric:
            log_qs = jax.vmap(self._log_q, in_axes=(None, 0))(params, self._shifts(s_safe))
            log_q = jax.nn.logsumexp(log_qs) - jnp.log(jnp.asarray(self.n_categories, log_qs.dtype))
        else:
            log_q = self._log_q(params, s_safe)
        return jnp.where(is_valid, log_q, -jnp.inf)

    def sample_and_log_prob(self, params: ModelParams, key: PRNGKey) -> tuple[Array, Array]:
        """One draw and its ``log q``, by incremental sequential sampling (see class doc).

        Args:
            params: the params.
            key: PRNG key (one Gumbel draw of shape ``(n_dim + symmetric, K)``).

        Returns:
            ``(s, log_q)``: int32 ``(n_dim,)`` and ``()`` in the params' float dtype; ``log_q``
            equals `log_prob` of ``s`` up to float rounding.
        """
        return self._sample(params, key, self._sample_sites_incremental)

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
        return self._sample_from_gumbel(params, gumbel, self._sample_sites_incremental)

    def _sample_and_log_prob_naive(self, params: ModelParams, key: PRNGKey) -> tuple[Array, Array]:
        """Reference sampler: ``n_dim`` full forward passes. Same draws as the fast one."""
        return self._sample(params, key, self._sample_sites_naive)

    # ---- sampling

    def _sample(
        self, params: ModelParams, key: PRNGKey, sample_sites: _SiteSampler
    ) -> tuple[Array, Array]:
        n_dim, k = self._n_dim(params), self.n_categories
        n_rows = n_dim + 1 if self.symmetric else n_dim
        gumbel = jax.random.gumbel(key, (n_rows, k), dtype=self._dtype(params))
        return self._sample_from_gumbel(params, gumbel, sample_sites)

    def _sample_from_gumbel(
        self, params: ModelParams, gumbel: Array, sample_sites: _SiteSampler
    ) -> tuple[Array, Array]:
        """The event of the Gumbel draws ``(n_dim + symmetric, K)`` and its ``log q``."""
        n_dim, k = self._n_dim(params), self.n_categories
        s, log_q = sample_sites(params, gumbel[:n_dim])
        if not self.symmetric:
            return s, log_q
        shift = jnp.argmax(gumbel[n_dim]).astype(jnp.int32)  # Uniform{0..K-1}
        return (s + shift) % k, self._symmetrize(params, s, log_q)

    def _masked_layers(self, params: ModelParams) -> list[tuple[Array, Array]]:
        """``[(W_l * M_l, b_l)]`` for every hidden layer and the output, computed once."""
        n_dim = self._n_dim(params)
        masks = made_masks(n_dim, self.n_categories, self.hidden_sizes)
        names = [f"hidden_{layer}" for layer in range(len(self.hidden_sizes))] + ["output"]
        layers = []
        for name, mask in zip(names, masks, strict=True):
            leaf = params.trainable[name]
            layers.append((jnp.where(mask, leaf["kernel"], 0), leaf["bias"]))
        return layers

    def _sample_sites_incremental(self, params: ModelParams, gumbel: Array) -> tuple[Array, Array]:
        n_dim, k = self._n_dim(params), self.n_categories
        layers = self._masked_layers(params)
        w_first, b_first = layers[0]
        w_rows = w_first.reshape(n_dim, k, -1)  # row (i, s_i) of the first layer

        if len(layers) == 1:  # no hidden layer: the carry is the logits of every site

            def step(carry, xs):
                pre, log_q = carry
                i, w_site, g = xs
                logits = pre[i]
                s_i = jnp.argmax(logits + g)
                log_q = log_q + jax.nn.log_softmax(logits)[s_i]
                return (pre + w_site[s_i].reshape(n_dim, k), log_q), s_i

            init = b_first.reshape(n_dim, k)
            xs = (jnp.arange(n_dim), w_rows, gumbel)
        else:
            deeper = layers[1:-1]
            w_out, b_out = layers[-1]
            w_out_sites = w_out.reshape(-1, n_dim, k).transpose(1, 0, 2)  # (n_dim, H_L, K)
            b_out_sites = b_out.reshape(n_dim, k)
            has_direct = self._has_direct
            # Row (i, s_i) of the direct weights, as logits (n_dim, K) of every site; the
            # carry accumulates them like the first layer's pre-activation.
            w_direct = (
                jnp.where(
                    made_direct_mask(n_dim, k), params.trainable["direct"]["kernel"], 0
                ).reshape(n_dim, k, n_dim, k)
                if has_direct
                else jnp.zeros((n_dim, 0), w_first.dtype)
            )

            def step(carry, xs):
                (pre, direct), log_q = carry
                i, w_site, w_direct_site, w_out_site, b_out_site, g = xs
                h = _ACTIVATION(pre)
                for w, b in deeper:
                    h = _ACTIVATION(h @ w + b)
                logits = h @ w_out_site + b_out_site
                if has_direct:
                    logits = logits + direct[i]
                s_i = jnp.argmax(logits + g)
                log_q = log_q + jax.nn.log_softmax(logits)[s_i]
                if has_direct:
                    direct = direct + w_direct_site[s_i]
                return ((pre + w_site[s_i], direct), log_q), s_i

            init = (b_first, jnp.zeros((n_dim, k) if has_direct else (0,), w_first.dtype))
            xs = (jnp.arange(n_dim), w_rows, w_direct, w_out_sites, b_out_sites, gumbel)

        zero = jnp.zeros((), self._dtype(params))
        (_, log_q), s = jax.lax.scan(step, (init, zero), xs)
        return s.astype(jnp.int32), log_q

    def _sample_sites_naive(self, params: ModelParams, gumbel: Array) -> tuple[Array, Array]:
        n_dim, k = self._n_dim(params), self.n_categories
        dtype = self._dtype(params)

        def step(carry, xs):
            s, log_q = carry
            i, g = xs
            logits = self.logits(params, jax.nn.one_hot(s, k, dtype=dtype))[i]
            s_i = jnp.argmax(logits + g).astype(jnp.int32)
            log_q = log_q + jax.nn.log_softmax(logits)[s_i]
            return (s.at[i].set(s_i), log_q), None

        init = (jnp.zeros((n_dim,), jnp.int32), jnp.zeros((), dtype))
        (s, log_q), _ = jax.lax.scan(step, init, (jnp.arange(n_dim), gumbel))
        return s, log_q


def _init_trainable_impl(
    n_categories: int,
    hidden_sizes: tuple[int, ...],
    direct: bool,
    key: PRNGKey,
    n_dim: int,
    dtype: Any,
) -> PyTree:
    network = MADE(
        n_dim, n_categories, hidden_sizes, activation=_ACTIVATION, direct=direct, param_dtype=dtype
    )
    return network.init(key, jnp.zeros((n_dim, n_categories), dtype))["params"]


_init_trainable = jax.jit(_init_trainable_impl, static_argnums=(0, 1, 2, 4, 5))
"""One compile per architecture, ``n_dim`` and dtype (``symmetric`` does not change the
params), instead of many eager op compiles."""
