"""Pure phase functions of one sampler loop; the only place kernels and models are vmapped.

Every function here is written for all chains at once and is jitted by `flowmc_like.sampler`.
Traces come back chain-first: ``(n_chains, n_steps, ...)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like._types import Array, LogProbFn, PRNGKey, PyTree
from flowmc_like.kernels.base import AbstractLocalKernel, Adaptation, StepInfo
from flowmc_like.kernels.metropolis import mh_accept
from flowmc_like.models.base import AbstractGlobalModel, ModelParams

__all__ = [
    "GlobalState",
    "Trace",
    "init_kernel_states",
    "run_global_phase",
    "run_latent_local_phase",
    "run_local_phase",
]


class Trace(NamedTuple):
    """What a phase records, shaped ``(n_chains, n_steps, ...)``.

    Attributes:
        position: ``(n_chains, n_steps, n_dim)`` state after each step.
        log_prob: ``(n_chains, n_steps)`` target log density there.
        is_accepted: ``(n_chains, n_steps)`` bool.
        acceptance_prob: ``(n_chains, n_steps)`` min(1, ratio) of each proposal.
    """

    position: Array
    log_prob: Array
    is_accepted: Array
    acceptance_prob: Array


class GlobalState(NamedTuple):
    """The part of a chain the global move needs (the first two fields of every kernel state)."""

    position: Array
    log_prob: Array


BULK_NOISE_BYTES = 64 * 2**20
"""Largest noise array (all steps, all chains) drawn in one batch before a local phase; above
it each step draws its own (same bits, less memory)."""


def _chain_first(x: Array) -> Array:
    return jnp.swapaxes(x, 0, 1)


def init_kernel_states(
    kernel: AbstractLocalKernel, log_prob_fn: LogProbFn, positions: Array
) -> Any:
    """Kernel states for all chains at ``positions`` ``(n_chains, n_dim)``."""
    return jax.vmap(kernel.init, in_axes=(0, None))(positions, log_prob_fn)


def _select(flag: Array, if_true: PyTree, if_false: PyTree) -> PyTree:
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
) -> tuple[Any, PyTree, Trace]:
    """``n_steps`` local steps of every chain, adapting the kernel params if ``is_adapting``.

    While adapting, each step uses ``adaptation.current(adapt_state)`` and then updates the
    adaptation from all chains; otherwise every step uses ``frozen_params`` and the adaptation
    state passes through unchanged (production is a fixed Markov chain). Both cases share one
    compilation because ``is_adapting`` is a traced bool.

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

    Returns:
        The new states, the new adaptation state and the `Trace` of the phase.
    """
    n_chains = states.position.shape[0]
    keys = jax.random.split(key, (n_steps, n_chains))
    noise_shape = jax.eval_shape(kernel.draw_noise, key, states.position[0])
    noise_size = (
        n_steps
        * n_chains
        * sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(noise_shape))
    )
    if noise_shape is not None and noise_size <= BULK_NOISE_BYTES:
        # Every step's noise in one batched draw (the same bits per-step keys would give).
        inputs = jax.vmap(jax.vmap(kernel.draw_noise), in_axes=(0, None))(keys, states.position)
        step_chains = jax.vmap(kernel.step_with_noise, in_axes=(0, 0, None, None))
    else:
        inputs = keys
        step_chains = jax.vmap(kernel.step, in_axes=(0, 0, None, None))

    def one_step(carry, step_inputs):
        states, adapt_state = carry
        params = _select(is_adapting, adaptation.current(adapt_state), frozen_params)
        states, infos = step_chains(step_inputs, states, log_prob_fn, params)
        adapt_state = _select(
            is_adapting, adaptation.update(adapt_state, states.position, infos), adapt_state
        )
        record = Trace(states.position, states.log_prob, infos.is_accepted, infos.acceptance_prob)
        return (states, adapt_state), record

    (states, adapt_state), trace = jax.lax.scan(one_step, (states, adapt_state), inputs)
    return states, adapt_state, jax.tree.map(_chain_first, trace)


def run_global_phase(
    model: AbstractGlobalModel,
    log_prob_fn: LogProbFn,
    n_steps: int,
    chunk_size: int,
    key: PRNGKey,
    current: GlobalState,
    model_params: ModelParams,
) -> tuple[GlobalState, Trace]:
    """``n_steps`` independence Metropolis-Hastings moves of every chain against ``model``.

    All ``n_chains * n_steps`` proposals and their model densities are drawn in one batched
    call, the target is evaluated on all of them in chunks of ``chunk_size`` (to bound
    memory), and each chain then scans its proposals, accepting with
    ``log_ratio = log p(x') - log p(x) + log q(x) - log q(x')``.

    Args:
        model: the global model (static).
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
        n_steps: proposals per chain (static).
        chunk_size: events evaluated per vmapped batch (static).
        key: PRNG key.
        current: positions ``(n_chains, n_dim)`` and their log densities ``(n_chains,)``.
        model_params: the model's params.

    Returns:
        The new positions/log densities and the `Trace` of the phase.
    """
    n_chains, n_dim = current.position.shape
    n_total = n_chains * n_steps
    key_propose, key_accept = jax.random.split(key)
    proposals, log_q_proposed = jax.lax.map(
        lambda k: model.sample_and_log_prob(model_params, k),
        jax.random.split(key_propose, n_total),
        batch_size=min(chunk_size, n_total),
    )
    proposals = proposals.astype(current.position.dtype)
    log_p_proposed = jax.lax.map(log_prob_fn, proposals, batch_size=min(chunk_size, n_total))
    log_p_proposed = log_p_proposed.astype(current.log_prob.dtype)
    log_q_current = jax.vmap(model.log_prob, in_axes=(None, 0))(model_params, current.position)

    def scan_chain(state, log_q, chain_proposals, chain_log_p, chain_log_q, chain_key):
        def one_move(carry, move):
            state, log_q = carry
            proposal, log_p_new, log_q_new, move_key = move
            log_ratio = log_p_new - state.log_prob + log_q - log_q_new
            state, info = mh_accept(move_key, log_ratio, GlobalState(proposal, log_p_new), state)
            log_q = jnp.where(info.is_accepted, log_q_new, log_q)
            return (state, log_q), (state, info)

        moves = (chain_proposals, chain_log_p, chain_log_q, jax.random.split(chain_key, n_steps))
        (state, _), (states, infos) = jax.lax.scan(one_move, (state, log_q), moves)
        return state, states, infos

    final, states, infos = jax.vmap(scan_chain)(
        current,
        log_q_current,
        proposals.reshape(n_chains, n_steps, n_dim),
        log_p_proposed.reshape(n_chains, n_steps),
        log_q_proposed.reshape(n_chains, n_steps),
        jax.random.split(key_accept, n_chains),
    )
    infos: StepInfo
    trace = Trace(states.position, states.log_prob, infos.is_accepted, infos.acceptance_prob)
    return final, trace


def run_latent_local_phase(
    kernel: AbstractLocalKernel,
    adaptation: Adaptation,
    model: AbstractGlobalModel,
    model_params: ModelParams,
    log_prob_fn: LogProbFn,
    n_steps: int,
    key: PRNGKey,
    current: GlobalState,
    adapt_state: PyTree,
    frozen_params: PyTree,
    is_adapting: Array,
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

    Returns:
        The final ``x``-space positions and log densities, the new adaptation state, and the
        `Trace` in ``x``-space (``log_prob`` is the target's).
    """

    def forward(z: Array) -> tuple[Array, Array]:
        return model.forward_and_log_det(model_params, z)  # type: ignore[attr-defined]

    def latent_log_prob(z: Array) -> Array:
        x, log_det = forward(z)
        return log_prob_fn(x) + log_det.astype(z.dtype)

    z, _ = jax.vmap(model.inverse_and_log_det, in_axes=(None, 0))(  # type: ignore[attr-defined]
        model_params, current.position
    )
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
    )
    x, log_det = jax.vmap(jax.vmap(forward))(trace.position)
    has_moved = jnp.cumsum(trace.is_accepted, axis=1) > 0
    position = jnp.where(has_moved[..., None], x, current.position[:, None])
    log_prob = jnp.where(has_moved, trace.log_prob - log_det, current.log_prob[:, None])
    trace = trace._replace(position=position, log_prob=log_prob)
    return GlobalState(position[:, -1], log_prob[:, -1]), adapt_state, trace
