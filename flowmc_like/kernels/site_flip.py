"""Single-site updates for discrete states: Metropolis or heat-bath (Gibbs) sweeps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal, NamedTuple, final

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like import _random as random
from flowmc_like._types import Array, ArrayLike, LogProbFn, PRNGKey, PyTree, Space
from flowmc_like._validation import check_callable, check_choice, check_int
from flowmc_like.kernels._delta_data import bound_data, takes_data
from flowmc_like.kernels.base import AbstractDiscreteKernel, StepInfo
from flowmc_like.kernels.metropolis import acceptance_probability

__all__ = ["DeltaLogProbFn", "SiteFlip", "SiteFlipParams", "SiteFlipState", "bound_data"]

DeltaLogProbFn = Callable[..., Array]
"""``(s (n_dim,) int, i () int, k () int[, data]) -> ()``: log p(s with s_i = k) - log p(s).

With a fourth parameter it also takes the run's ``data`` (the `Sampler`'s ``data``, traced).
"""

_MODES = ("metropolis", "gibbs")


class SiteFlipState(NamedTuple):
    """State of one discrete chain.

    Attributes:
        position: ``(n_dim,)`` integer categories in ``[0, n_categories)``.
        log_prob: ``()`` target log density at ``position``.
    """

    position: Array
    log_prob: Array


class SiteFlipNoise(NamedTuple):
    """The randomness of sweeps: leading axes ``(n_steps, n_chains)`` as drawn, none for one.

    Attributes:
        order: ``(..., n_dim)`` int32, the order of the sites in the sweep (a permutation).
        offsets: ``(..., n_dim)`` int32 in ``[1, K)``, the proposed category shift of each
            site (``mode="metropolis"``; zeros for Gibbs).
        uniforms: ``(..., n_dim)`` the accept (Metropolis) or inverse-CDF (Gibbs) uniforms.
    """

    order: Array
    offsets: Array
    uniforms: Array


class SiteFlipParams(NamedTuple):
    """SiteFlip has nothing to adapt; its params are an empty pytree."""


@final
@dataclasses.dataclass(frozen=True)
class SiteFlip(AbstractDiscreteKernel):
    """Sweeps of single-site updates on integer states ``s`` in ``{0, ..., K-1}^n_dim``.

    One ``step`` is one *sweep*: ``n_dim`` single-site updates, visiting the sites in a fresh
    uniformly random order (a random permutation per sweep). Random order matters: with a
    fixed scan order some states are never left (on the Ising torus the diagonal ``++--``
    stripes, where every scheduled flip has zero energy change, make a fixed-order Metropolis
    sweep map ``s`` to ``-s`` and back forever). Each site update leaves ``p`` invariant by
    detailed balance, so the sweep does too. With ``Delta_k = log p(s with s_i = k) - log p(s)``:

    - ``mode="metropolis"``: propose ``k`` uniformly among the ``K - 1`` categories other than
      ``s_i`` (never the current one; the proposal is symmetric) and accept with probability
      ``min(1, exp(Delta_k))``. The chance of moving site ``i`` to ``k != s_i`` is
      ``min(1, exp(Delta_k)) / (K - 1)``.
    - ``mode="gibbs"`` (heat bath): draw the new ``s_i`` from its exact conditional,
      ``P(s_i = k) = exp(Delta_k) / sum_j exp(Delta_j)``; costs ``K`` evaluations of
      ``Delta`` per site instead of one.

    Cost: without ``delta_log_prob`` each ``Delta`` is a full ``log_prob`` call, so a sweep of a
    model whose ``log_prob`` is O(n_dim) costs O(n_dim^2). A local model (Ising, Potts, any
    sparse graphical model) can pass ``delta_log_prob(s, i, k)``, returning
    ``log p(s with s_i = k) - log p(s)`` in O(1) from the neighbours of ``i``: the sweep then
    costs O(n_dim). Every sweep ends with one full ``log_prob`` call, which resets the
    stored ``log_prob`` exactly (no round-off drift). ``delta_log_prob`` must agree with
    ``log_prob``; the `Sampler` checks that on random sites before compiling. It is called
    with traced ``i`` and ``k`` under ``jit``, ``vmap`` and ``lax.scan``.

    Data: if ``log_prob`` takes ``data`` (``Sampler(data=...)``), ``delta_log_prob`` may take
    it too, as a fourth parameter: ``delta_log_prob(s, i, k, data)`` gets the run's data,
    traced, so a run on new data of the same shapes compiles nothing new. Whether it takes
    ``data`` is read from its signature (`inspect.signature`): four positional parameters
    (the fourth may have a default) mean ``(s, i, k, data)``, three (or ``*args``) mean
    ``(s, i, k)``. The kernel finds the data on the ``log_prob_fn`` it is given (see
    `bound_data`): the `Sampler` binds it there, also under tempering.

    Non-finite values: a ``Delta`` that is NaN or +-inf gives that move probability 0 (the
    library's single non-finite policy, `flowmc_like.kernels.metropolis`).

    `StepInfo` of a sweep: ``acceptance_prob`` is the mean over its ``n_dim`` updates of the
    probability that the site changed value; ``is_accepted`` is true if any site changed.
    SiteFlip adapts nothing (`SiteFlipParams` is empty).

    Attributes:
        n_categories: ``K >= 2``, the number of values of each site (2 for spins).
        mode: ``"metropolis"`` (default) or ``"gibbs"``.
        delta_log_prob: optional O(1) local difference ``(s, i, k) -> ()`` or
            ``(s, i, k, data) -> ()`` as above.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> kernel = SiteFlip(n_categories=2)
        >>> log_prob_fn = lambda s: 0.5 * jnp.sum((2 * s - 1) * (2 * jnp.roll(s, 1) - 1))
        >>> state = kernel.init(jnp.zeros(8, dtype=jnp.int32), log_prob_fn)
        >>> state, info = kernel.step(jax.random.key(0), state, log_prob_fn, kernel.init_params(8))
        >>> state.position.dtype, state.position.shape, info.acceptance_prob.shape
        (dtype('int32'), (8,), ())
    """

    n_categories: int = 2
    mode: Literal["metropolis", "gibbs"] = "metropolis"
    delta_log_prob: DeltaLogProbFn | None = None

    space: ClassVar[Space] = Space.DISCRETE
    steps_per_exchange: ClassVar[int] = 1
    target_acceptance: ClassVar[float] = float("nan")

    def __post_init__(self) -> None:
        n_categories = check_int("n_categories", self.n_categories, minimum=2, owner="SiteFlip")
        object.__setattr__(self, "n_categories", n_categories)
        check_choice("mode", self.mode, _MODES, owner="SiteFlip")
        check_callable(
            "delta_log_prob",
            self.delta_log_prob,
            owner="SiteFlip",
            allow_none=True,
            signature="(s, i, k[, data]) -> log p(s with s_i = k) - log p(s)",
        )
        if self.delta_log_prob is not None:
            takes_data(self.delta_log_prob)  # raises on any other signature

    @property
    def delta_takes_data(self) -> bool:
        """Whether ``delta_log_prob`` is ``(s, i, k, data)`` (False without one)."""
        return self.delta_log_prob is not None and takes_data(self.delta_log_prob)

    def _bound_delta(self, log_prob_fn: LogProbFn) -> Callable[[Array, Array, Array], Array]:
        """``delta_log_prob`` as ``(s, i, k) -> ()``, with the data of ``log_prob_fn`` bound."""
        delta_fn = self.delta_log_prob
        assert delta_fn is not None
        if not self.delta_takes_data:
            return delta_fn
        data = bound_data(log_prob_fn)
        return lambda s, i, k: delta_fn(s, i, k, data)

    # ------------------------------------------------------------------ protocol

    def tempered(self, beta: Array) -> SiteFlip:
        """This kernel with ``delta_log_prob`` scaled by ``beta`` (the whole density tempered).

        Without ``delta_log_prob`` the kernel is unchanged: the tempered density reaches it
        as ``log_prob_fn``.
        """
        if self.delta_log_prob is None:
            return self
        delta_fn = self.delta_log_prob

        def scaled(delta: Any) -> Array:
            delta = jnp.asarray(delta)
            return jnp.asarray(beta, delta.dtype) * delta

        if self.delta_takes_data:

            def tempered_delta_with_data(s: Array, i: Array, k: Array, data: PyTree) -> Array:
                return scaled(delta_fn(s, i, k, data))

            return dataclasses.replace(self, delta_log_prob=tempered_delta_with_data)

        def tempered_delta(s: Array, i: Array, k: Array) -> Array:
            return scaled(delta_fn(s, i, k))

        return dataclasses.replace(self, delta_log_prob=tempered_delta)

    def init_params(self, n_dim: int) -> SiteFlipParams:
        """The empty `SiteFlipParams` (nothing to adapt)."""
        del n_dim
        return SiteFlipParams()

    def init(self, position: ArrayLike, log_prob_fn: LogProbFn) -> SiteFlipState:
        """State of one chain at ``position`` ``(n_dim,)`` (one ``log_prob`` call)."""
        position = as_int_position(position)
        log_prob = jnp.asarray(log_prob_fn(position))
        return SiteFlipState(position=position, log_prob=log_prob)

    def step(
        self,
        key: PRNGKey,
        state: SiteFlipState,
        log_prob_fn: LogProbFn,
        params: SiteFlipParams,
    ) -> tuple[SiteFlipState, StepInfo]:
        """One sweep: ``n_dim`` single-site updates of one chain in a random order.

        Args:
            key: PRNG key.
            state: current state.
            log_prob_fn: one position ``(n_dim,)`` int -> scalar log density.
            params: the (empty) params.

        Returns:
            The state after the sweep and its `StepInfo`.
        """
        words = jax.random.bits(key, (3, state.position.shape[0]))
        return self.step_with_noise(self._noise_from_words(words), state, log_prob_fn, params)

    def draw_noise(self, key: PRNGKey, positions: Array, n_steps: int = 1) -> SiteFlipNoise:
        """The site orders, category offsets and uniforms of ``n_steps`` sweeps of every chain.

        One draw of ``3 n_dim`` random 32-bit words per sweep and chain: the order is the
        argsort of ``n_dim`` of them (a uniformly random permutation; ties, below
        ``n_dim**2 / 2**33``, keep index order, which any order of exact single-site updates
        tolerates), the offsets ``1 + w mod (K - 1)`` (bias below ``K / 2**32``), the
        uniforms ``floor(w / 2**8) / 2**24``.

        Returns:
            `SiteFlipNoise` with leaves ``(n_steps, n_chains, n_dim)``.
        """
        n_chains, n_dim = positions.shape
        return self._noise_from_words(random.bits(key, (n_steps, n_chains, 3, n_dim)))

    def _noise_from_words(self, words: Array) -> SiteFlipNoise:
        """`SiteFlipNoise` from uint32 words ``(..., 3, n_dim)`` (see `draw_noise`)."""
        order = jnp.argsort(words[..., 0, :], axis=-1).astype(jnp.int32)
        if self.mode == "metropolis":
            span = np.uint32(self.n_categories - 1)
            offsets = (1 + words[..., 1, :] % span).astype(jnp.int32)
        else:
            offsets = jnp.zeros(order.shape, jnp.int32)
        uniforms = (words[..., 2, :] >> np.uint32(8)).astype(float) * 2.0**-24
        return SiteFlipNoise(order, offsets, uniforms)

    def step_with_noise(
        self,
        noise: SiteFlipNoise,
        state: SiteFlipState,
        log_prob_fn: LogProbFn,
        params: SiteFlipParams,
    ) -> tuple[SiteFlipState, StepInfo]:
        """One sweep of one chain with its randomness given (one sweep of `draw_noise`)."""
        del params
        order, offsets = noise.order, noise.offsets
        uniforms = noise.uniforms.astype(state.log_prob.dtype)
        update = self._metropolis_update if self.mode == "metropolis" else self._gibbs_update

        def one_site(current: SiteFlipState, inputs: tuple[Array, Array, Array]):
            site, offset, uniform = inputs
            return update(current, site, offset, uniform, log_prob_fn)

        final, (move_probs, site_is_nonfinite) = jax.lax.scan(
            one_site, state, (order, offsets, uniforms)
        )
        # Replace the running sum of differences by the exact value, once per sweep.
        final = final._replace(
            log_prob=jnp.asarray(log_prob_fn(final.position), dtype=final.log_prob.dtype)
        )
        is_accepted = jnp.any(final.position != state.position)
        return final, StepInfo(jnp.mean(move_probs), is_accepted, jnp.any(site_is_nonfinite))

    def check_target(self, log_prob_fn: LogProbFn, positions: Array) -> None:
        """Check ``delta_log_prob`` against ``log_prob_fn`` at a few random sites.

        Evaluates both at up to 16 (chain, site, category) triples drawn with a fixed seed
        from ``positions`` ``(n_chains, n_dim)`` and raises if they disagree beyond float32
        round-off, or if ``delta_log_prob`` does not return a scalar.
        """
        if self.delta_log_prob is None:
            return
        delta_fn = self._bound_delta(log_prob_fn)
        positions = jnp.asarray(positions)
        site0 = jnp.zeros((), jnp.int32)
        try:
            out = jax.eval_shape(delta_fn, positions[0], site0, site0)
        except Exception as error:
            raise TypeError(
                "SiteFlip: delta_log_prob(s, i, k) could not be evaluated on one position of "
                f"shape {tuple(positions.shape[1:])}: {type(error).__name__}: {error}"
            ) from error
        if getattr(out, "shape", None) not in ((), (1,)):
            raise ValueError(
                "SiteFlip: delta_log_prob(s, i, k) must return a scalar; got "
                f"{getattr(out, 'shape', out)}"
            )
        rng = np.random.default_rng(0)
        n_checks = 16
        n_chains, n_dim = positions.shape
        chains = rng.integers(0, n_chains, n_checks)
        sites = rng.integers(0, n_dim, n_checks).astype(np.int32)
        categories = rng.integers(0, self.n_categories, n_checks).astype(np.int32)
        states = positions[chains]

        @jax.jit
        def both(states: Array, sites: Array, categories: Array) -> tuple[Array, Array]:
            def one(s: Array, i: Array, k: Array) -> tuple[Array, Array]:
                direct = jnp.asarray(log_prob_fn(s.at[i].set(k))) - jnp.asarray(log_prob_fn(s))
                return jnp.reshape(jnp.asarray(delta_fn(s, i, k)), ()), direct

            return jax.vmap(one)(states, sites, categories)

        delta, direct = (np.asarray(a, np.float64) for a in both(states, sites, categories))
        tolerance = 1e-4 * np.maximum(1.0, np.abs(direct)) + 1e-4
        finite = np.isfinite(direct)
        bad = np.flatnonzero(
            (finite & ~(np.abs(delta - direct) <= tolerance)) | (~finite & np.isfinite(delta))
        )
        if bad.size:
            j = int(bad[0])
            raise ValueError(
                "SiteFlip: delta_log_prob disagrees with log_prob: at chain "
                f"{int(chains[j])}, site i={int(sites[j])}, k={int(categories[j])}, "
                f"delta_log_prob(s, i, k) = {delta[j]:.6g} but log_prob(s with s_i = k) - "
                f"log_prob(s) = {direct[j]:.6g} ({bad.size} of {n_checks} checks failed)"
            )

    # ------------------------------------------------------------------ single-site updates

    def log_prob_differences(
        self, state: SiteFlipState, site: Array, categories: Array, log_prob_fn: LogProbFn
    ) -> Array:
        """``Delta_k = log p(s with s_site = k) - log p(s)`` for each ``k`` in ``categories``.

        Uses ``delta_log_prob`` when given, else full ``log_prob_fn`` calls. The current
        category gets exactly 0.

        Args:
            state: the chain's state (its ``log_prob`` must be that of its ``position``).
            site: ``()`` int site index.
            categories: ``(m,)`` int candidate values.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.

        Returns:
            ``(m,)`` float differences, in the dtype of ``state.log_prob``.
        """
        position = state.position
        dtype = state.log_prob.dtype
        if self.delta_log_prob is not None:
            delta_fn = self._bound_delta(log_prob_fn)

            def one(k: Array) -> Array:
                return jnp.asarray(delta_fn(position, site, k), dtype=dtype)

        else:

            def one(k: Array) -> Array:
                new = jnp.asarray(log_prob_fn(position.at[site].set(k)), dtype=dtype)
                return new - state.log_prob

        deltas = jax.vmap(one)(categories)
        return jnp.where(categories == position[site], jnp.zeros((), dtype), deltas)

    def site_transition_probabilities(
        self, state: SiteFlipState, site: Array, log_prob_fn: LogProbFn
    ) -> Array:
        """``(K,)`` probabilities of each new value of ``site`` after one update of it.

        This is the exact single-site transition row that `step` samples from, in either
        mode; tests build full transition matrices from it.

        Args:
            state: the chain's state.
            site: ``()`` int site index.
            log_prob_fn: one position ``(n_dim,)`` -> scalar log density.

        Returns:
            ``(K,)`` probabilities summing to 1.
        """
        categories = jnp.arange(self.n_categories, dtype=state.position.dtype)
        deltas = self.log_prob_differences(state, site, categories, log_prob_fn)
        current = state.position[site]
        if self.mode == "gibbs":
            return _heat_bath_probabilities(deltas)
        move = acceptance_probability(deltas) / (self.n_categories - 1)
        move = jnp.where(categories == current, 0.0, move)
        return move.at[current].set(1.0 - jnp.sum(move))

    def _metropolis_update(
        self,
        state: SiteFlipState,
        site: Array,
        offset: Array,
        uniform: Array,
        log_prob_fn: LogProbFn,
    ) -> tuple[SiteFlipState, tuple[Array, Array]]:
        current = state.position[site]
        proposal = ((current + offset) % self.n_categories).astype(state.position.dtype)
        delta = self.log_prob_differences(state, site, proposal[None], log_prob_fn)[0]
        prob = acceptance_probability(delta)
        is_accepted = uniform < prob
        new_value = jnp.where(is_accepted, proposal, current)
        new_log_prob = jnp.where(is_accepted, state.log_prob + delta, state.log_prob)
        new_state = SiteFlipState(state.position.at[site].set(new_value), new_log_prob)
        return new_state, (prob, ~jnp.isfinite(delta))

    def _gibbs_update(
        self,
        state: SiteFlipState,
        site: Array,
        offset: Array,
        uniform: Array,
        log_prob_fn: LogProbFn,
    ) -> tuple[SiteFlipState, tuple[Array, Array]]:
        del offset
        categories = jnp.arange(self.n_categories, dtype=state.position.dtype)
        deltas = self.log_prob_differences(state, site, categories, log_prob_fn)
        probs = _heat_bath_probabilities(deltas)
        # Inverse CDF; the clip guards against a cumulative sum that ends just below 1.
        new_value = jnp.minimum(
            jnp.sum(jnp.cumsum(probs) <= uniform), self.n_categories - 1
        ).astype(state.position.dtype)
        new_log_prob = state.log_prob + deltas[new_value]
        move_prob = 1.0 - probs[state.position[site]]
        # Categories of zero probability (-inf) are part of the target; NaN or +inf is not.
        is_nonfinite = jnp.any(jnp.isnan(deltas) | (deltas == jnp.inf))
        new_state = SiteFlipState(state.position.at[site].set(new_value), new_log_prob)
        return new_state, (move_prob, is_nonfinite)


def _heat_bath_probabilities(deltas: Array) -> Array:
    """Softmax of ``deltas`` ``(K,)``; non-finite entries (NaN, +-inf) get probability 0."""
    deltas = jnp.where(jnp.isfinite(deltas), deltas, -jnp.inf)
    return jax.nn.softmax(deltas)


def as_int_position(position: ArrayLike) -> Array:
    """``position`` as a JAX integer array; floating or boolean input is refused.

    Args:
        position: ``(n_dim,)`` categories.

    Returns:
        The position as a JAX array of its integer dtype.

    Raises:
        TypeError: for a non-integer dtype.
    """
    position = jnp.asarray(position)
    if not jnp.issubdtype(position.dtype, jnp.integer) or position.dtype == np.bool_:
        raise TypeError(
            "SiteFlip positions must hold integers in [0, n_categories); got dtype "
            f"{position.dtype} (convert with jnp.asarray(s, dtype=jnp.int32))"
        )
    return position
