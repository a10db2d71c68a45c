"""Replica-exchange (parallel) tempering: replicas of every chain at hotter temperatures.

With ``n_temperatures = K > 1`` every chain has ``K - 1`` companion replicas at inverse
temperatures ``1 = beta_0 > beta_1 > ... > beta_{K-1} >= 0`` (the *ladder*). Replica ``k``
samples the tempered density

    log p_k(x) = log_prior(x) + beta_k * (log p(x) - log_prior(x))

(with no ``log_prior``, ``beta_k * log p(x)``: the whole density tempered). Hot replicas see
flattened barriers and move between modes that the local kernel at ``beta = 1`` never
crosses; *exchanges* pass their positions down the ladder. An exchange of the positions of
neighbours ``k, k + 1`` of one chain is accepted with probability

    min(1, exp((beta_k - beta_{k+1}) * (L(x_{k+1}) - L(x_k))))

(``L = log p - log_prior`` the tempered part), which leaves the product of the tempered
densities invariant (`flowmc_like.exact` checks it by enumeration in the tests). Exchanges
follow the non-reversible deterministic even/odd scheme (Syed, Bouchard-Cote, Deligiannidis
and Doucet, 2021): the even pairs, then the odd pairs, alternately, so a replica travels the
ladder in one direction instead of diffusing.

The ladder adapts during the training loops: each adapting phase measures the exchange
rejection rate ``r_k`` of every pair, the *communication barrier* ``Lambda(beta)`` is its
cumulative sum along the ladder, and the new ladder puts the temperatures at equal barrier
increments (every pair then exchanges at the same rate), interpolated piecewise linearly in
``beta``; the move is damped by half. Production keeps the last ladder, so it is a fixed
Markov chain. A *round trip* is a replica's journey from the coldest to the hottest level and
back; their number is the measure of how well information flows along the ladder.

Only the ``beta = 1`` replicas (the chains themselves) are recorded, take global moves and
train the model; the hot replicas live in `TemperingState` and each level has its own kernel
adaptation (a hot replica needs a larger step).

Layout: replicas are stored chain-first, ``(n_chains, K - 1, ...)``, so sharding the chain
axis over devices keeps every exchange inside one device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like._types import Array, LogProbFn, PRNGKey, PyTree
from flowmc_like.kernels.base import AbstractLocalKernel, Adaptation
from flowmc_like.phases import select_tree
from flowmc_like.tempering_examples import HotDraws, reweighted_hot_examples

__all__ = [
    "DEFAULT_MAX_TEMPERATURE",
    "ExchangeSummary",
    "HotDraws",
    "TemperedTarget",
    "TemperingState",
    "adapted_ladder",
    "exchange_probabilities",
    "exchange_source",
    "init_ladder",
    "init_tempering",
    "reweighted_hot_examples",
    "run_tempered_local_phase",
    "tempered_log_prob",
]

DEFAULT_MAX_TEMPERATURE = 100.0
"""Hottest temperature ``1 / beta_{K-1}`` when the whole density is tempered (no log prior).

At ``beta = 0.01`` a barrier of 100 nats between modes drops to 1 nat and a unit-scale mode
widens tenfold. With a log prior the hottest replica samples the prior (``beta = 0``)."""

LADDER_DAMPING = 0.5
"""Share of the measured ladder taken at each adaptation (the rest stays at the old one)."""

MIN_REJECTION = 1e-3
"""Added to every measured rejection rate so the barrier is strictly increasing."""


class TemperedTarget(NamedTuple):
    """The target split into its tempered and untempered parts.

    Attributes:
        log_prob: ``(x (n_dim,), data) -> ()`` the target's log density.
        log_prior: ``(x, data) -> ()`` the part kept at every temperature, or None (the
            whole density is tempered).
    """

    log_prob: Callable[[Array, PyTree], Array]
    log_prior: Callable[[Array, PyTree], Array] | None = None

    def log_likelihood(self, x: Array, data: PyTree) -> Array:
        """``log p(x) - log_prior(x)``, the part the temperature scales; shape ``()``."""
        log_prob = self.log_prob(x, data)
        if self.log_prior is None:
            return log_prob
        return log_prob - self.log_prior(x, data).astype(log_prob.dtype)


def tempered_log_prob(target: TemperedTarget, beta: Array, data: PyTree) -> LogProbFn:
    """``x -> log_prior(x) + beta * L(x)``: the density replica ``beta`` samples.

    At ``beta = 1`` it is exactly the target's ``log p(x)`` (no rounding through the split);
    at ``beta = 0`` exactly the prior (a likelihood of -inf there does not matter).
    """

    def log_prob_fn(x: Array) -> Array:
        log_prob = target.log_prob(x, data)
        beta_ = jnp.asarray(beta, log_prob.dtype)
        if target.log_prior is None:
            return jnp.where(beta_ == 1, log_prob, beta_ * log_prob)
        log_prior = target.log_prior(x, data).astype(log_prob.dtype)
        tempered = log_prior + beta_ * (log_prob - log_prior)
        tempered = jnp.where(beta_ == 0, log_prior, tempered)
        return jnp.where(beta_ == 1, log_prob, tempered)

    log_prob_fn.data = data  # for kernels that read the data too (`SiteFlip.delta_log_prob`)
    return log_prob_fn


def init_ladder(n_temperatures: int, max_temperature: float, dtype: Any) -> Array:
    """The initial ladder ``(K,)``: geometric from 1 to ``1 / max_temperature``.

    ``max_temperature = inf`` (likelihood tempering) puts the hottest level at ``beta = 0``
    and the others geometric from 1 to ``1e-3``.
    """
    levels = jnp.arange(n_temperatures, dtype=dtype)
    if max_temperature == float("inf"):
        if n_temperatures == 2:
            return jnp.asarray([1.0, 0.0], dtype)
        geometric = 1e-3 ** (levels / (n_temperatures - 2))
        return geometric.at[-1].set(0.0)
    return (1.0 / max_temperature) ** (levels / (n_temperatures - 1))


class TemperingState(NamedTuple):
    """The hot replicas and the ladder (a pytree; part of the run's loop state).

    Attributes:
        replicas: kernel states of the hot replicas, leaves ``(n_chains, K - 1, ...)``.
        betas: ``(K,)`` the ladder, ``betas[0] = 1``, decreasing.
        last_end: ``(n_chains, K)`` int8, for the replica now at each level: 1 if the last
            end of the ladder it visited was the coldest, 2 the hottest, 0 neither yet.
        n_exchanges: ``()`` int32 exchange rounds so far (their parity picks the pairs).
    """

    replicas: Any
    betas: Array
    last_end: Array
    n_exchanges: Array


class ExchangeSummary(NamedTuple):
    """What a tempered local phase measured.

    Attributes:
        acceptance: ``(K - 1,)`` mean exchange acceptance probability of each neighbour pair
            over the phase's exchange rounds (every pair's probability is computed at every
            round, also when the other parity's pairs are tried); NaN if the phase had none.
        round_trips: ``()`` int32 round trips (coldest -> hottest -> coldest) completed.
        betas: ``(K,)`` the ladder after the phase (adapted if the phase adapted).
    """

    acceptance: Array
    round_trips: Array
    betas: Array


def init_levels(
    kernel: AbstractLocalKernel,
    target: TemperedTarget,
    data: PyTree,
    positions: Array,
    betas: Array,
) -> Any:
    """Kernel states ``(n_chains, L, ...)`` at ``positions`` ``(n_chains, L, n_dim)``.

    Level ``l`` is initialised at ``betas[l]`` (``betas`` has ``L`` entries).
    """

    def init(position: Array, beta: Array) -> Any:
        return kernel.tempered(beta).init(position, tempered_log_prob(target, beta, data))

    return jax.vmap(jax.vmap(init, in_axes=(0, 0)), in_axes=(0, None))(positions, betas)


def init_tempering(
    kernel: AbstractLocalKernel,
    target: TemperedTarget,
    data: PyTree,
    positions: Array,
    betas: Array,
) -> TemperingState:
    """Hot replicas started at the chains' ``positions`` ``(n_chains, n_dim)``."""
    n_chains = positions.shape[0]
    n_levels = betas.shape[0]
    hot = jnp.broadcast_to(positions[:, None], (n_chains, n_levels - 1, positions.shape[1]))
    last_end = jnp.zeros((n_chains, n_levels), jnp.int8).at[:, 0].set(1)
    return TemperingState(
        replicas=init_levels(kernel, target, data, hot, betas[1:]),
        betas=betas,
        last_end=last_end,
        n_exchanges=jnp.zeros((), jnp.int32),
    )


def exchange_probabilities(log_likelihood: Array, betas: Array) -> Array:
    """Acceptance probability of exchanging each neighbour pair's positions.

    Args:
        log_likelihood: ``(..., K)`` the tempered part ``L`` at each level's position.
        betas: ``(K,)`` the ladder.

    Returns:
        ``(..., K - 1)``: ``min(1, exp((beta_k - beta_{k+1}) (L_{k+1} - L_k)))``, 0 where that
        is not finite (the library's non-finite policy: such a move is rejected).
    """
    log_ratio = (betas[:-1] - betas[1:]) * (log_likelihood[..., 1:] - log_likelihood[..., :-1])
    probability = jnp.exp(jnp.minimum(log_ratio, 0.0))
    return jnp.where(jnp.isfinite(log_ratio), probability, 0.0)


def exchange_source(is_swapped: Array) -> Array:
    """The level each level takes its new position from, given the swapped pairs.

    Args:
        is_swapped: ``(..., K - 1)`` bool, pair ``(k, k + 1)`` exchanges (no two overlapping).

    Returns:
        ``(..., K)`` int32 source level of every level.
    """
    pad = [(0, 0)] * (is_swapped.ndim - 1)
    up = jnp.pad(is_swapped, [*pad, (0, 1)]).astype(jnp.int32)
    down = jnp.pad(is_swapped, [*pad, (1, 0)]).astype(jnp.int32)
    return jnp.arange(is_swapped.shape[-1] + 1, dtype=jnp.int32) + up - down


def adapted_ladder(betas: Array, rejection: Array) -> Array:
    """A ladder with equal communication barrier between neighbours.

    Args:
        betas: ``(K,)`` the current ladder.
        rejection: ``(K - 1,)`` measured exchange rejection rate of each pair.

    Returns:
        ``(K,)``: the ladder at equal increments of the cumulative rejection (interpolated
        piecewise linearly in ``beta``), ends kept, moved `LADDER_DAMPING` of the way from
        ``betas``.
    """
    barrier = jnp.concatenate([jnp.zeros(1, betas.dtype), jnp.cumsum(rejection + MIN_REJECTION)])
    targets = jnp.linspace(0.0, 1.0, betas.shape[0], dtype=betas.dtype) * barrier[-1]
    measured = jnp.interp(targets, barrier, betas)
    measured = measured.at[0].set(betas[0]).at[-1].set(betas[-1])
    return (1 - LADDER_DAMPING) * betas + LADDER_DAMPING * measured


def _swap_levels(tree: Any, source: Array) -> Any:
    """Each ``(n_chains, K, ...)`` leaf of ``tree`` reordered along K by ``source``."""

    def take(leaf: Array) -> Array:
        index = source.reshape(source.shape + (1,) * (leaf.ndim - 2))
        return jnp.take_along_axis(leaf, index, axis=1)

    return jax.tree.map(take, tree)


class _ExchangeCarry(NamedTuple):
    last_end: Array  # (n_chains, K) int8
    n_exchanges: Array  # () int32
    acceptance_sum: Array  # (K - 1,)
    n_tries: Array  # (K - 1,)
    round_trips: Array  # () int32


def _exchange(
    kernel: AbstractLocalKernel,
    target: TemperedTarget,
    data: PyTree,
    betas: Array,
    states: Any,
    carry: _ExchangeCarry,
    uniforms: Array,
) -> tuple[Any, _ExchangeCarry, HotDraws]:
    """One deterministic even/odd exchange round between neighbouring levels of every chain.

    Returns the new states, the updated statistics and the hot replicas' positions after the
    round with their tempered part ``L`` (training data, see `reweighted_hot_examples`).
    """
    positions = states.position  # (n_chains, K, n_dim)
    n_levels = betas.shape[0]
    log_likelihood = jax.vmap(jax.vmap(lambda x: target.log_likelihood(x, data)))(positions)
    dtype = states.log_prob.dtype
    probability = exchange_probabilities(log_likelihood.astype(dtype), betas.astype(dtype))
    is_tried = jnp.arange(n_levels - 1) % 2 == carry.n_exchanges % 2
    is_swapped = is_tried & (uniforms.astype(dtype) < probability)
    source = exchange_source(is_swapped)
    swapped_positions = _swap_levels(positions, source)
    new_states = init_levels(kernel, target, data, swapped_positions, betas)
    last_end = _swap_levels(carry.last_end, source)
    arrives_cold = last_end[:, 0] == 2
    last_end = last_end.at[:, 0].set(1)
    last_end = last_end.at[:, -1].set(jnp.where(last_end[:, -1] == 1, 2, last_end[:, -1]))
    # Every pair's acceptance probability is known at every round, tried or not: the rates
    # average all of them (a lower-variance estimate, defined from the first round on).
    carry = _ExchangeCarry(
        last_end=last_end.astype(jnp.int8),
        n_exchanges=carry.n_exchanges + 1,
        acceptance_sum=carry.acceptance_sum + jnp.sum(probability, axis=0),
        n_tries=carry.n_tries + positions.shape[0],
        round_trips=carry.round_trips + jnp.sum(arrives_cold).astype(jnp.int32),
    )
    swapped_log_likelihood = jnp.take_along_axis(log_likelihood, source, axis=1)
    hot = HotDraws(swapped_positions[:, 1:], swapped_log_likelihood[:, 1:].astype(dtype))
    return new_states, carry, hot


def _noise_inputs(
    kernel: AbstractLocalKernel, key: PRNGKey, positions: Array, n_steps: int
) -> tuple[Any, bool]:
    """Per-step randomness of every chain and level: ``(inputs, has_noise)``.

    ``positions`` is ``(n_chains, K, n_dim)``. With bulk noise (`draw_noise`) the leaves are
    ``(n_steps, n_chains, K, ...)``; otherwise keys ``(n_steps, n_chains, K)``.
    """
    n_chains, n_levels, n_dim = positions.shape
    flat = positions.reshape(n_chains * n_levels, n_dim)
    if jax.eval_shape(kernel.draw_noise, key, flat) is None:
        return jax.random.split(key, (n_steps, n_chains, n_levels)), False
    noise = kernel.draw_noise(key, flat, n_steps)
    return jax.tree.map(
        lambda leaf: leaf.reshape(n_steps, n_chains, n_levels, *leaf.shape[2:]), noise
    ), True


def run_tempered_local_phase(
    kernel: AbstractLocalKernel,
    adaptation: Adaptation,
    target: TemperedTarget,
    data: PyTree,
    n_steps: int,
    exchange_interval: int,
    key: PRNGKey,
    states: Any,
    tempering: TemperingState,
    adapt_state: PyTree,
    frozen_params: PyTree,
    is_adapting: Array,
    n_adapting_phases: int,
) -> tuple[Any, TemperingState, PyTree, Any, ExchangeSummary, HotDraws]:
    """``n_steps`` local steps of every chain and replica, with exchanges between levels.

    Every level steps with its own kernel params (``adapt_state``, ``frozen_params`` and
    the params have a leading ``K`` axis); an exchange round follows every
    ``exchange_interval``-th step. While adapting, each level's adaptation updates from its
    own replicas and, at the end of the phase, the ladder adapts (`adapted_ladder`) and the
    hot replicas are re-evaluated on it.

    Args:
        kernel: the local kernel (static).
        adaptation: its adaptation functions (static), vmapped over levels.
        target: the target split into tempered and untempered parts.
        data: the target's data.
        n_steps: local steps (static).
        exchange_interval: steps between exchange rounds (static).
        key: PRNG key.
        states: the chains' (``beta = 1``) kernel states, leaves ``(n_chains, ...)``.
        tempering: the hot replicas and the ladder.
        adapt_state: per-level adaptation state, leading axis ``K``.
        frozen_params: per-level kernel params used when not adapting.
        is_adapting: ``()`` bool.
        n_adapting_phases: (static) adapting phases of the run.

    Returns:
        The chains' new states, the new `TemperingState`, the new adaptation state, the
        per-step records of the chains ``(states, infos, step_size)`` with leaves
        ``(n_steps, n_chains, ...)`` (the cold level's step size ``(n_steps,)``), the
        phase's `ExchangeSummary`, and the hot replicas' positions after every exchange
        round (`HotDraws`, leaves ``(n_chains, n_rounds, K - 1, ...)``).
    """
    betas = tempering.betas
    n_levels = betas.shape[0]
    all_states = jax.tree.map(
        lambda cold, hot: jnp.concatenate([cold[:, None], hot], axis=1),
        states,
        tempering.replicas,
    )
    n_chains = all_states.position.shape[0]
    key_noise, key_exchange = jax.random.split(key)
    inputs, has_noise = _noise_inputs(kernel, key_noise, all_states.position, n_steps)
    n_rounds = n_steps // exchange_interval
    exchange_uniforms = jax.random.uniform(key_exchange, (n_rounds, n_chains, n_levels - 1))

    def one_chain_step(step_input: Any, state: Any, beta: Array, params: PyTree):
        level_kernel = kernel.tempered(beta)
        log_prob_fn = tempered_log_prob(target, beta, data)
        if has_noise:
            return level_kernel.step_with_noise(step_input, state, log_prob_fn, params)
        return level_kernel.step(step_input, state, log_prob_fn, params)

    def one_level(step_input: Any, level_states: Any, beta: Array, params: PyTree):
        return jax.vmap(one_chain_step, in_axes=(0, 0, None, None))(
            step_input, level_states, beta, params
        )

    step_levels = jax.vmap(one_level, in_axes=(1, 1, 0, 0), out_axes=1)
    update_levels = jax.vmap(adaptation.update, in_axes=(0, 1, 1))

    def local_step(carry, step_input):
        all_states, adapt_state = carry
        current = jax.vmap(adaptation.current, axis_size=n_levels)(adapt_state)
        params = select_tree(is_adapting, current, frozen_params)
        all_states, infos = step_levels(step_input, all_states, betas, params)
        updated = update_levels(adapt_state, all_states.position, infos)
        adapt_state = select_tree(is_adapting, updated, adapt_state)
        cold = jax.tree.map(lambda leaf: leaf[:, 0], all_states)
        cold_infos = jax.tree.map(lambda leaf: leaf[:, 0], infos)
        cold_step_size = kernel.step_size_of(jax.tree.map(lambda leaf: leaf[0], params))
        return (all_states, adapt_state), (cold, cold_infos, cold_step_size)

    def one_round(carry, round_input):
        all_states, adapt_state, exchange = carry
        step_inputs, uniforms = round_input
        (all_states, adapt_state), records = jax.lax.scan(
            local_step, (all_states, adapt_state), step_inputs
        )
        all_states, exchange, hot = _exchange(
            kernel, target, data, betas, all_states, exchange, uniforms
        )
        return (all_states, adapt_state, exchange), (records, hot)

    dtype = all_states.log_prob.dtype
    exchange = _ExchangeCarry(
        last_end=tempering.last_end,
        n_exchanges=tempering.n_exchanges,
        acceptance_sum=jnp.zeros(n_levels - 1, dtype),
        n_tries=jnp.zeros(n_levels - 1, dtype),
        round_trips=jnp.zeros((), jnp.int32),
    )
    # rounds of `exchange_interval` steps, each ending with an exchange; then the rest
    n_rounds, n_rest = divmod(n_steps, exchange_interval)
    n_in_rounds = n_rounds * exchange_interval
    round_inputs = jax.tree.map(
        lambda leaf: leaf[:n_in_rounds].reshape(n_rounds, exchange_interval, *leaf.shape[1:]),
        inputs,
    )
    (all_states, adapt_state, exchange), (round_records, hot) = jax.lax.scan(
        one_round, (all_states, adapt_state, exchange), (round_inputs, exchange_uniforms)
    )
    records = jax.tree.map(lambda leaf: leaf.reshape(n_in_rounds, *leaf.shape[2:]), round_records)
    if n_rest:
        rest_inputs = jax.tree.map(lambda leaf: leaf[n_in_rounds:], inputs)
        (all_states, adapt_state), rest_records = jax.lax.scan(
            local_step, (all_states, adapt_state), rest_inputs
        )
        records = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=0), records, rest_records)
    hot = jax.tree.map(lambda leaf: jnp.swapaxes(leaf, 0, 1), hot)  # chain-first
    ended = jax.vmap(
        lambda state: adaptation.end_phase(state, n_adapting_phases), axis_size=n_levels
    )(adapt_state)
    adapt_state = select_tree(is_adapting, ended, adapt_state)

    acceptance = exchange.acceptance_sum / exchange.n_tries  # NaN for untried pairs
    can_adapt = is_adapting & jnp.all(exchange.n_tries > 0)
    new_betas = jnp.where(can_adapt, adapted_ladder(betas, 1.0 - acceptance), betas)
    all_states = jax.lax.cond(
        can_adapt,
        lambda: init_levels(kernel, target, data, all_states.position, new_betas),
        lambda: all_states,
    )
    cold = jax.tree.map(lambda leaf: leaf[:, 0], all_states)
    tempering = TemperingState(
        replicas=jax.tree.map(lambda leaf: leaf[:, 1:], all_states),
        betas=new_betas,
        last_end=exchange.last_end,
        n_exchanges=exchange.n_exchanges,
    )
    summary = ExchangeSummary(acceptance, exchange.round_trips, new_betas)
    return cold, tempering, adapt_state, records, summary, hot
