"""Run chains of a kernel through the library's own local phase, with fixed params (private).

The checks drive a kernel exactly as `flowmc_like.Sampler` does in production: states from
`flowmc_like.phases.init_kernel_states`, steps from `flowmc_like.phases.run_local_phase`
(its batched noise, its vmap over chains, its scan over steps), not adapting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from flowmc_like import phases
from flowmc_like._types import Array, ArrayLike, LogProbFn, PRNGKey, PyTree
from flowmc_like.conformance._core import cache_per_config
from flowmc_like.kernels.base import AbstractLocalKernel, no_adaptation

__all__ = ["ChainRun", "run_chains"]


class ChainRun(NamedTuple):
    """Output of `run_chains`, chain-first.

    Attributes:
        position: ``(n_chains, n_steps, n_dim)`` positions after each step.
        log_prob: ``(n_chains, n_steps)`` log densities there.
        acceptance_prob: ``(n_chains, n_steps)``.
        is_accepted: ``(n_chains, n_steps)`` bool.
        is_nonfinite: ``(n_chains, n_steps)`` bool, proposals rejected as non-finite.
        final_state: kernel states after the last step, batched over chains.
    """

    position: Array
    log_prob: Array
    acceptance_prob: Array
    is_accepted: Array
    is_nonfinite: Array
    final_state: Any


def run_local_phase_fixed(
    kernel: AbstractLocalKernel,
    log_prob_fn: LogProbFn,
    n_steps: int,
    key: PRNGKey,
    states: Any,
    params: PyTree,
) -> tuple[Any, phases.Trace]:
    """`flowmc_like.phases.run_local_phase` with ``params`` fixed (production, not adapting)."""
    adaptation = no_adaptation()
    adapt_state = adaptation.init(params, states.position)
    states, _, trace = phases.run_local_phase(
        kernel,
        adaptation,
        log_prob_fn,
        n_steps,
        key,
        states,
        adapt_state,
        params,
        jnp.asarray(False),
        n_adapting_phases=0,
    )
    return states, trace


def run_chains(
    kernel: AbstractLocalKernel,
    log_prob_fn: Callable[..., Array],
    key: PRNGKey,
    initial_positions: ArrayLike,
    params: PyTree,
    n_steps: int,
    data: PyTree = None,
) -> ChainRun:
    """Run ``n_steps`` steps of every chain with fixed params (jitted, vmapped, scanned).

    The compiled driver is cached per ``(kernel, log_prob_fn, n_steps)``; positions, params
    and ``data`` are arguments, so calling again with new values does not recompile. Calling
    again from the previous final positions continues the same Markov chains.

    Args:
        kernel: the kernel.
        log_prob_fn: ``log_prob_fn(x)``, or ``log_prob_fn(x, data)`` when ``data`` is given;
            ``x`` is one position ``(n_dim,)``.
        key: PRNG key.
        initial_positions: ``(n_chains, n_dim)``.
        params: kernel params shared by all chains.
        n_steps: number of steps.
        data: optional pytree passed to ``log_prob_fn`` as a traced argument.

    Returns:
        The `ChainRun`.
    """
    run = _runner(kernel, log_prob_fn, n_steps, data is not None)
    return run(key, jnp.asarray(initial_positions), params, data)


def bind(log_prob_fn: Callable[..., Array], data: PyTree, has_data: bool) -> LogProbFn:
    """``log_prob_fn`` of one position, with ``data`` bound when there is any."""
    if has_data:
        return lambda x: log_prob_fn(x, data)
    return log_prob_fn


@cache_per_config
def _runner(
    kernel: AbstractLocalKernel,
    log_prob_fn: Callable[..., Array],
    n_steps: int,
    has_data: bool,
) -> Callable[[PRNGKey, Array, PyTree, PyTree], ChainRun]:
    """A jitted driver, cached so that repeated runs of one kernel compile once per shape."""

    @jax.jit
    def run(key: PRNGKey, initial_positions: Array, params: PyTree, data: PyTree) -> ChainRun:
        bound = bind(log_prob_fn, data, has_data)
        states = phases.init_kernel_states(kernel, bound, initial_positions)
        final, trace = run_local_phase_fixed(kernel, bound, n_steps, key, states, params)
        return ChainRun(
            trace.position,
            trace.log_prob,
            trace.acceptance_prob,
            trace.is_accepted,
            trace.is_nonfinite,
            final,
        )

    return run
