"""Pure phase functions of one sampler loop; the only place kernels and models are vmapped.

Every function here is written for all chains at once and is jitted by `flowmc_like.sampler`.
Traces come back chain-first: ``(n_chains, n_steps, ...)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like import _random as random
from flowmc_like._types import Array, LogProbFn, PRNGKey, PyTree
from flowmc_like.kernels.base import AbstractLocalKernel, Adaptation, StepInfo
from flowmc_like.kernels.metropolis import mh_accept
from flowmc_like.models.base import AbstractFlow, AbstractGlobalModel, ModelParams

__all__ = [
    "DIVERGENCE_THRESHOLD",
    "GlobalState",
    "PhaseSummary",
    "Trace",
    "global_block_size",
    "init_kernel_states",
    "local_trace",
    "run_global_phase",
    "run_latent_local_phase",
    "run_local_phase",
    "select_tree",
]


class Trace(NamedTuple):
    """What a phase records, shaped ``(n_chains, n_steps, ...)``.

    Attributes:
        position: ``(n_chains, n_steps, n_dim)`` state after each step.
        log_prob: ``(n_chains, n_steps)`` target log density there.
        is_accepted: ``(n_chains, n_steps)`` bool.
        acceptance_prob: ``(n_chains, n_steps)`` min(1, ratio) of each proposal.
        is_nonfinite: ``(n_chains, n_steps)`` bool, proposals rejected for a non-finite
            log density or ratio.
        step_size: ``(n_chains, n_steps)`` the local kernel's step size (or scale) of the
            step (NaN for global moves and kernels without one).
        energy: ``(n_chains, n_steps)`` the Hamiltonian after the step, for Hamiltonian
            kernels (NaN otherwise).
        diverging: ``(n_chains, n_steps)`` bool, the step's energy error exceeded
            `DIVERGENCE_THRESHOLD` or was not finite (kernels that integrate dynamics only).
        log_q: ``(n_chains, n_steps)`` the global model's log density at the state after
            a global move (NaN after local steps).
    """

    position: Array
    log_prob: Array
    is_accepted: Array
    acceptance_prob: Array
    is_nonfinite: Array
    step_size: Array
    energy: Array
    diverging: Array
    log_q: Array


DIVERGENCE_THRESHOLD = 1000.0
"""An energy error ``H(x', p') - H(x, p)`` above this (or not finite) marks a divergent
transition, the threshold Stan and numpyro use: the integrator left the typical set."""


def local_trace(position: Array, log_prob: Array, infos: StepInfo, step_size: Array) -> Trace:
    """The `Trace` record of local steps from their states' fields and `StepInfo`.

    Args:
        position: ``(*batch, n_dim)`` the states after the steps.
        log_prob: ``(*batch)`` their log densities; ``batch`` is ``(n_chains,)`` for one
            step or ``(n_steps, n_chains)``.
        infos: the steps' `StepInfo`, leaves shaped ``batch``.
        step_size: the kernel's step size, ``()`` or ``batch[:1]`` (one per step).

    Returns:
        The `Trace` of the steps (``log_q`` NaN; ``energy`` NaN and ``diverging`` false
        where the kernel reports no energy).
    """
    dtype = log_prob.dtype
    missing = jnp.full(log_prob.shape, jnp.nan, dtype)
    step_size = jnp.asarray(step_size, dtype)
    step_size = jnp.broadcast_to(
        step_size.reshape(step_size.shape + (1,) * (log_prob.ndim - step_size.ndim)), log_prob.shape
    )
    energy = missing if infos.energy is None else infos.energy.astype(dtype)
    if infos.energy_error is None:
        diverging = jnp.zeros(log_prob.shape, bool)
    else:
        error = infos.energy_error
        diverging = ~jnp.isfinite(error) | (error > DIVERGENCE_THRESHOLD)
    return Trace(
        position,
        log_prob,
        infos.is_accepted,
        infos.acceptance_prob,
        infos.is_nonfinite,
        step_size,
        energy,
        diverging,
        missing,
    )


class PhaseSummary(NamedTuple):
    """Per-chain statistics over every step of a phase (also the steps thinning drops).

    Attributes:
        acceptance_prob: ``(n_chains,)`` mean acceptance probability over the phase's steps.
        n_nonfinite: ``(n_chains,)`` int32, proposals rejected because the target's log
            density (or the log ratio) was NaN or infinite there.
        log_weight: global phase only, ``(n_chains, n_steps // thinning)`` the log
            importance weight ``log p(x') - log q(x')`` of every kept step's proposal (-inf
            where it is not finite): how well the model covers the target
            (`LoopRecord.pareto_k`). None for a local phase.
    """

    acceptance_prob: Array
    n_nonfinite: Array
    log_weight: Array | None = None


def summarize_and_thin(trace: Trace, thinning: int) -> tuple[Trace, PhaseSummary]:
    """The `PhaseSummary` of a full trace, and the trace keeping every ``thinning``-th step.

    The kept steps are ``thinning - 1, 2 * thinning - 1, ...``: ``n_steps // thinning`` of
    them, each the state after a whole stride.
    """
    summary = PhaseSummary(
        jnp.mean(trace.acceptance_prob, axis=1),
        jnp.sum(trace.is_nonfinite, axis=1, dtype=jnp.int32),
    )
    if thinning > 1:
        trace = jax.tree.map(lambda field: field[:, thinning - 1 :: thinning], trace)
    return trace, summary


class GlobalState(NamedTuple):
    """The part of a chain the global move needs (the first two fields of every kernel state)."""

    position: Array
    log_prob: Array


BULK_NOISE_BYTES = 64 * 2**20
"""Largest noise array (all steps, all chains) drawn in one batch before a local phase; above
it each step draws its own (less memory; other draws, from the same distribution)."""


def _chain_first(x: Array) -> Array:
    return jnp.swapaxes(x, 0, 1)


def init_kernel_states(
    kernel: AbstractLocalKernel, log_prob_fn: LogProbFn, positions: Array
) -> Any:
    """Kernel states for all chains at ``positions`` ``(n_chains, n_dim)``."""
    return jax.vmap(kernel.init, in_axes=(0, None))(positions, log_prob_fn)


def select_tree(flag: Array, if_true: PyTree, if_false: PyTree) -> PyTree:
    """``if_true`` where the ``()`` bool ``flag`` holds, else ``if_false``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), if_true, if_false)


def run_local_phase(
    kernel: AbstractLocalKernel,
    adaptation: Adaptation,
    log_prob_fn: LogProbFn,
    n_steps: int,
    key: PRNGKey,
    states: Any,
    adapt_state: PyTree,
    frozen_params: PyTree,
    is_adapting: Array,
    n_adapting_phases: int,
) -> tuple[Any, PyTree, Trace]:
    """``n_steps`` local steps of every chain, adapting the kernel params if ``is_adapting``.

    While adapting, each step uses ``adaptation.current(adapt_state)`` and then updates the
    adaptation from all chains; otherwise every step uses ``frozen_params`` and the adaptation
    state passes through unchanged (production is a fixed Markov chain). An adapting phase
    ends with ``adaptation.end_phase``. Both cases share one compilation because
    ``is_adapting`` is a traced bool.

    Args:
        kernel: the local kernel (static).
        adaptation: its adaptation functions (static).
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
        n_steps: number of steps (static).
        key: PRNG key.
        states: kernel states batched over chains.
        adapt_state: adaptation state (shared by all chains).
        frozen_params: kernel params used when not adapting.
        is_adapting: ``()`` bool.
        n_adapting_phases: (static) adapting phases in the run, for ``end_phase``.

    Returns:
        The new states, the new adaptation state and the `Trace` of the phase.
    """
    n_chains = states.position.shape[0]
    noise_shape = jax.eval_shape(kernel.draw_noise, key, states.position)
    if noise_shape is None:  # the kernel draws inside `step`: one key per step and chain
        inputs = jax.random.split(key, (n_steps, n_chains))
        step_chains = jax.vmap(kernel.step, in_axes=(0, 0, None, None))
    else:
        noise_size = n_steps * sum(
            leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(noise_shape)
        )
        chains_with_noise = jax.vmap(kernel.step_with_noise, in_axes=(0, 0, None, None))
        if noise_size <= BULK_NOISE_BYTES:  # every step's noise in one draw
            inputs = kernel.draw_noise(key, states.position, n_steps)
            step_chains = chains_with_noise
        else:  # each step draws its own (other draws than in bulk, the same distribution)
            inputs = jax.random.split(key, n_steps)

            def step_chains(step_key, states, log_prob_fn, params):
                noise = jax.tree.map(
                    lambda leaf: leaf[0], kernel.draw_noise(step_key, states.position)
                )
                return chains_with_noise(noise, states, log_prob_fn, params)

    def one_step(carry, step_inputs):
        states, adapt_state = carry
        params = select_tree(is_adapting, adaptation.current(adapt_state), frozen_params)
        states, infos = step_chains(step_inputs, states, log_prob_fn, params)
        adapt_state = select_tree(
            is_adapting, adaptation.update(adapt_state, states.position, infos), adapt_state
        )
        record = local_trace(states.position, states.log_prob, infos, kernel.step_size_of(params))
        return (states, adapt_state), record

    (states, adapt_state), trace = jax.lax.scan(one_step, (states, adapt_state), inputs)
    ended = adaptation.end_phase(adapt_state, n_adapting_phases)
    adapt_state = select_tree(is_adapting, ended, adapt_state)
    return states, adapt_state, jax.tree.map(_chain_first, trace)


def global_block_size(n_steps: int, n_chains: int, chunk_size: int, thinning: int = 1) -> int:
    """Proposals per chain drawn and evaluated together in one block of the global phase.

    A block holds at most ``chunk_size`` proposals over all chains (at least one per chain),
    so the phase's working memory does not grow with ``n_steps``. When one block covers the
    whole phase it is ``n_steps``; otherwise, with ``thinning > 1``, a multiple of
    ``thinning`` so that every block keeps the same steps.
    """
    per_chain = max(chunk_size // n_chains, 1)
    if n_steps <= per_chain:
        return n_steps
    if thinning > 1:
        return max(per_chain - per_chain % thinning, thinning)
    return per_chain


def run_global_phase(
    model: AbstractGlobalModel,
    log_prob_fn: LogProbFn,
    n_steps: int,
    chunk_size: int,
    key: PRNGKey,
    current: GlobalState,
    model_params: ModelParams,
    thinning: int = 1,
) -> tuple[GlobalState, Trace, PhaseSummary]:
    """``n_steps`` independence Metropolis-Hastings moves of every chain against ``model``.

    The phase runs in blocks of `global_block_size` proposals per chain: each block draws
    its proposals and their model densities for all chains in one batched call, evaluates
    the target on them in vmapped batches of ``chunk_size``, and each chain then scans its
    proposals, accepting with ``log_ratio = log p(x') - log p(x) + log q(x) - log q(x')``.
    Memory stays bounded by the block, whatever ``n_steps``; the last block's steps past
    ``n_steps`` are drawn but never accepted or counted.

    Args:
        model: the global model (static).
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
        n_steps: proposals per chain (static).
        chunk_size: proposals evaluated per vmapped batch (static).
        key: PRNG key.
        current: positions ``(n_chains, n_dim)`` and their log densities ``(n_chains,)``.
        model_params: the model's params.
        thinning: record every ``thinning``-th step (static).

    Returns:
        The new positions/log densities, the (thinned) `Trace` ``(n_chains,
        n_steps // thinning, ...)`` and the `PhaseSummary` of all steps.
    """
    n_chains, n_dim = current.position.shape
    block_steps = global_block_size(n_steps, n_chains, chunk_size, thinning)
    n_blocks = -(-n_steps // block_steps)
    n_block_proposals = n_chains * block_steps
    batch_size = min(chunk_size, n_block_proposals)
    n_uniforms = model.n_uniforms(n_dim)
    log_q_current = jax.vmap(model.log_prob, in_axes=(None, 0))(model_params, current.position)
    # The model may compute in another precision than the chains (e.g. float64 params
    # under jax_enable_x64 with float32 positions); the chains' dtype wins.
    log_q_current = log_q_current.astype(current.log_prob.dtype)

    def scan_chain(state, log_q, chain_proposals, chain_log_p, chain_log_q, uniforms, is_real):
        def one_move(carry, move):
            state, log_q = carry
            proposal, log_p_new, log_q_new, uniform, move_is_real = move
            log_ratio = log_p_new - state.log_prob + log_q - log_q_new
            log_ratio = jnp.where(move_is_real, log_ratio, -jnp.inf)
            state, info = mh_accept(uniform, log_ratio, GlobalState(proposal, log_p_new), state)
            info = info._replace(is_nonfinite=info.is_nonfinite & move_is_real)
            log_q = jnp.where(info.is_accepted, log_q_new, log_q)
            return (state, log_q), (state, info, log_q)

        moves = (chain_proposals, chain_log_p, chain_log_q, uniforms, is_real)
        (state, log_q), (states, infos, log_qs) = jax.lax.scan(one_move, (state, log_q), moves)
        return state, log_q, states, infos, log_qs

    def draw_block(block_key: PRNGKey, dtype: Any) -> tuple[Array, Array, Array]:
        """A block's proposals, their ``log q`` and its accept uniforms.

        Shapes ``(n_block_proposals, n_dim)``, ``(n_block_proposals,)`` and ``(n_chains,
        block_steps)``: one random draw for the whole block when the model samples from
        uniforms (each random call compiles its own copy of the hash function).
        """
        if n_uniforms is None:
            key_propose, key_accept = jax.random.split(block_key)
            proposals, log_q_proposed = jax.lax.map(
                lambda k: model.sample_and_log_prob(model_params, k),
                jax.random.split(key_propose, n_block_proposals),
                batch_size=batch_size,
            )
            accept = jax.random.uniform(key_accept, (n_chains, block_steps), dtype)
            return proposals, log_q_proposed, accept
        uniform = random.uniform(block_key, (n_chains, block_steps, n_uniforms + 1), dtype)
        proposals, log_q_proposed = jax.lax.map(
            lambda u: model.sample_and_log_prob_from_uniform(model_params, u),
            uniform[..., :n_uniforms].reshape(n_block_proposals, n_uniforms),
            batch_size=batch_size,
        )
        return proposals, log_q_proposed, uniform[..., n_uniforms]

    def run_block(carry, block):
        state, log_q = carry
        block_index, block_key = block
        proposals, log_q_proposed, accept_uniforms = draw_block(block_key, state.log_prob.dtype)
        proposals = proposals.astype(state.position.dtype)
        log_p_proposed = jax.lax.map(log_prob_fn, proposals, batch_size=batch_size)
        log_p_proposed = log_p_proposed.astype(state.log_prob.dtype)
        log_q_proposed = log_q_proposed.astype(state.log_prob.dtype)
        is_real = block_index * block_steps + jnp.arange(block_steps) < n_steps
        state, log_q, states, infos, log_qs = jax.vmap(
            scan_chain, in_axes=(0, 0, 0, 0, 0, 0, None)
        )(
            state,
            log_q,
            proposals.reshape(n_chains, block_steps, n_dim),
            log_p_proposed.reshape(n_chains, block_steps),
            log_q_proposed.reshape(n_chains, block_steps),
            accept_uniforms,
            is_real,
        )
        infos: StepInfo
        no_value = jnp.full(states.log_prob.shape, jnp.nan, states.log_prob.dtype)
        trace = Trace(
            states.position,
            states.log_prob,
            infos.is_accepted,
            infos.acceptance_prob * is_real,
            infos.is_nonfinite,
            step_size=no_value,
            energy=no_value,
            diverging=jnp.zeros(states.log_prob.shape, bool),
            log_q=log_qs,
        )
        trace, summary = summarize_and_thin(trace, thinning)
        log_weight = (log_p_proposed - log_q_proposed).reshape(n_chains, block_steps)
        log_weight = jnp.where(jnp.isfinite(log_weight) & is_real, log_weight, -jnp.inf)
        # thinned like the trace, so the phase's output does not grow with n_steps either
        log_weight = log_weight[:, thinning - 1 :: thinning]
        return (state, log_q), (trace, summary._replace(log_weight=log_weight))

    if n_blocks == 1:
        (final, _), (trace, summary) = run_block((current, log_q_current), (0, key))
        return final, trace, summary
    blocks = (jnp.arange(n_blocks), jax.random.split(key, n_blocks))
    (final, _), (traces, summaries) = jax.lax.scan(run_block, (current, log_q_current), blocks)
    n_kept = n_steps // thinning
    # (n_blocks, n_chains, kept per block, ...) -> (n_chains, n_kept, ...)
    trace = jax.tree.map(
        lambda field: jnp.swapaxes(field, 0, 1).reshape(n_chains, -1, *field.shape[3:])[:, :n_kept],
        traces,
    )
    summary = PhaseSummary(
        jnp.sum(summaries.acceptance_prob, axis=0) * block_steps / n_steps,
        jnp.sum(summaries.n_nonfinite, axis=0),
        # (n_blocks, n_chains, kept per block) -> (n_chains, n_kept)
        jnp.swapaxes(summaries.log_weight, 0, 1).reshape(n_chains, -1)[:, : n_steps // thinning],
    )
    return final, trace, summary


def run_latent_local_phase(
    kernel: AbstractLocalKernel,
    adaptation: Adaptation,
    model: AbstractFlow,
    model_params: ModelParams,
    log_prob_fn: LogProbFn,
    n_steps: int,
    key: PRNGKey,
    current: GlobalState,
    adapt_state: PyTree,
    frozen_params: PyTree,
    is_adapting: Array,
    n_adapting_phases: int,
) -> tuple[GlobalState, PyTree, Trace]:
    """`run_local_phase` in the flow's base space: the trained flow as a preconditioner.

    With the flow ``x = T(z)``, the kernel samples ``p_z(z) = p(T(z)) |det dT/dz|``, the
    target seen through the flow. ``T`` is a fixed bijection during the phase, so the phase
    is a valid Markov chain for ``p`` in ``x``-space; where the flow has learned the target's
    shape (a funnel's neck, a curved ridge, a rotated ill-conditioned Gaussian), ``p_z`` is
    close to a standard normal and the kernel's single step size fits it everywhere.

    Chains start from ``z = T^{-1}(x)`` and their draws are mapped back with ``T``. Until a
    chain's first accepted move its recorded position stays the exact ``x`` it started from
    (the round trip ``T(T^{-1}(x))`` is exact only up to rounding).

    Args:
        kernel: the local kernel (static), run on ``z``.
        adaptation: its adaptation functions (static); they see ``z``-space positions.
        model: a bijective flow with ``forward_and_log_det`` and ``inverse_and_log_det``.
        model_params: the flow's params (fixed during the phase).
        log_prob_fn: one position ``(n_dim,)`` -> scalar target log density.
        n_steps: number of steps (static, ``>= 1``).
        key: PRNG key.
        current: positions ``(n_chains, n_dim)`` and their target log densities.
        adapt_state: adaptation state.
        frozen_params: kernel params used when not adapting.
        is_adapting: ``()`` bool.
        n_adapting_phases: (static) adapting phases in the run, for ``end_phase``.

    Returns:
        The final ``x``-space positions and log densities, the new adaptation state, and the
        `Trace` in ``x``-space (``log_prob`` is the target's).
    """

    def forward(z: Array) -> tuple[Array, Array]:
        return model.forward_and_log_det(model_params, z)

    def latent_log_prob(z: Array) -> Array:
        x, log_det = forward(z)
        return log_prob_fn(x) + log_det.astype(z.dtype)

    z, _ = jax.vmap(model.inverse_and_log_det, in_axes=(None, 0))(model_params, current.position)
    states = init_kernel_states(kernel, latent_log_prob, z.astype(current.position.dtype))
    _, adapt_state, trace = run_local_phase(
        kernel,
        adaptation,
        latent_log_prob,
        n_steps,
        key,
        states,
        adapt_state,
        frozen_params,
        is_adapting,
        n_adapting_phases,
    )
    x, log_det = jax.vmap(jax.vmap(forward))(trace.position)
    has_moved = jnp.cumsum(trace.is_accepted, axis=1) > 0
    position = jnp.where(has_moved[..., None], x, current.position[:, None])
    log_prob = jnp.where(has_moved, trace.log_prob - log_det, current.log_prob[:, None])
    trace = trace._replace(position=position, log_prob=log_prob)
    return GlobalState(position[:, -1], log_prob[:, -1]), adapt_state, trace
