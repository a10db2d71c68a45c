"""Conformance checks of local kernels: properties every `AbstractLocalKernel` must have.

Each ``check_kernel_*`` function raises `ConformanceError` naming the property and the
numbers when the kernel lacks it (detailed balance: `flowmc_like.conformance.balance`).
Chains run through `flowmc_like.phases.run_local_phase` with fixed params, the code
`flowmc_like.Sampler` runs in production. `check_kernel` (in `flowmc_like.conformance`)
runs all of them on the library's own test targets.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, ArrayLike, LogProbFn, PyTree
from flowmc_like.conformance._chains import ChainRun, bind, run_chains
from flowmc_like.conformance._core import require, require_close
from flowmc_like.kernels.base import AbstractLocalKernel

__all__ = [
    "check_kernel_deterministic",
    "check_kernel_log_prob_call_sites",
    "check_kernel_rejects_non_finite",
    "check_kernel_small_step_acceptance",
    "check_kernel_state_layout",
]


def check_kernel_state_layout(
    kernel: AbstractLocalKernel, log_prob_fn: LogProbFn, position: ArrayLike, params: PyTree
) -> None:
    """State starts with ``(position, log_prob)``; ``step`` keeps the structure, shapes, dtypes.

    Uses ``jax.eval_shape`` (no compilation).

    Args:
        kernel: the kernel.
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
        position: ``(n_dim,)`` a starting point with finite density.
        params: kernel params.
    """
    check = "state_layout"
    position = jnp.asarray(position)
    state = jax.eval_shape(lambda position: kernel.init(position, log_prob_fn), position)
    fields = getattr(state, "_fields", ())
    require(
        fields[:2] == ("position", "log_prob"),
        check,
        f"the state's first fields are {fields[:2]}; expected ('position', 'log_prob') "
        f"(a NamedTuple; got {type(state).__name__})",
    )
    require(
        (state.position.shape, state.position.dtype) == (position.shape, position.dtype),
        check,
        f"state.position is {state.position.dtype}{list(state.position.shape)}; expected the "
        f"starting position's {position.dtype}{list(position.shape)}",
    )
    require(
        state.log_prob.shape == (),
        check,
        f"state.log_prob has shape {state.log_prob.shape}; expected ()",
    )
    new_state, info = jax.eval_shape(
        lambda key, state: kernel.step(key, state, log_prob_fn, params), jax.random.key(0), state
    )
    require(
        type(new_state) is type(state),
        check,
        f"step returned a {type(new_state).__name__}; expected a {type(state).__name__}",
    )
    for name, old, new in zip(state._fields, state, new_state, strict=True):
        require(
            (old.shape, old.dtype) == (new.shape, new.dtype),
            check,
            f"step changed state.{name} from {old.dtype}{list(old.shape)} to "
            f"{new.dtype}{list(new.shape)}",
        )
    for name in ("acceptance_prob", "is_accepted", "is_nonfinite"):
        require(
            getattr(info, name).shape == (),
            check,
            f"info.{name} has shape {getattr(info, name).shape}; expected () for one chain",
        )
    require(
        info.is_accepted.dtype == jnp.bool_ and info.is_nonfinite.dtype == jnp.bool_,
        check,
        f"info.is_accepted / is_nonfinite have dtypes {info.is_accepted.dtype} / "
        f"{info.is_nonfinite.dtype}; expected bool",
    )


def check_kernel_deterministic(
    kernel: AbstractLocalKernel,
    log_prob_fn: Callable[..., Array],
    initial_positions: ArrayLike,
    params: PyTree,
    n_steps: int = 10,
    data: PyTree = None,
) -> None:
    """The same key gives bit-identical chains; a different key gives different chains.

    Args:
        kernel: the kernel.
        log_prob_fn: ``log_prob_fn(x)`` or ``log_prob_fn(x, data)``.
        initial_positions: ``(n_chains, n_dim)``.
        params: kernel params.
        n_steps: steps per run.
        data: optional pytree for ``log_prob_fn``.
    """
    check = "deterministic"

    def run(seed: int) -> ChainRun:
        key = jax.random.key(seed)
        return run_chains(kernel, log_prob_fn, key, initial_positions, params, n_steps, data)

    first, again, other = run(1), run(1), run(2)
    for name in ("position", "log_prob"):
        a, b = np.asarray(getattr(first, name)), np.asarray(getattr(again, name))
        n_differ = int(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b)))))
        require(n_differ == 0, check, f"the same key gave {n_differ} different {name} values")
    require(
        not np.array_equal(np.asarray(first.position), np.asarray(other.position)),
        check,
        "two different keys gave identical chains",
    )


def check_kernel_small_step_acceptance(
    kernel: AbstractLocalKernel,
    log_prob_fn: Callable[..., Array],
    initial_positions: ArrayLike,
    small_step_params: PyTree,
    min_acceptance: float = 0.99,
    n_steps: int = 20,
    data: PyTree = None,
) -> float:
    """With a vanishing step size nearly every proposal is accepted.

    Args:
        kernel: the kernel.
        log_prob_fn: ``log_prob_fn(x)`` or ``log_prob_fn(x, data)``.
        initial_positions: ``(n_chains, n_dim)`` points in the typical set.
        small_step_params: params with a tiny step size.
        min_acceptance: required mean acceptance probability.
        n_steps: steps per chain.
        data: optional pytree for ``log_prob_fn``.

    Returns:
        The measured mean acceptance probability.
    """
    key = jax.random.key(3)
    run = run_chains(kernel, log_prob_fn, key, initial_positions, small_step_params, n_steps, data)
    acceptance = float(jnp.mean(run.acceptance_prob))
    require(
        acceptance >= min_acceptance,
        "small_step_acceptance",
        f"mean acceptance {acceptance:.4f} with a tiny step; expected >= {min_acceptance}",
    )
    return acceptance


def check_kernel_rejects_non_finite(
    kernel: AbstractLocalKernel,
    log_prob_fn: Callable[..., Array],
    initial_positions: ArrayLike,
    params: PyTree,
    n_steps: int = 100,
    data: PyTree = None,
) -> ChainRun:
    """Proposals with a non-finite density are rejected; chains keep finite states.

    Use a ``log_prob_fn`` that is NaN or -inf on part of the space (or overflows) and starting
    points near that region, with a step size large enough to cross into it often. Checks that
    every recorded position, log density and final state leaf is finite, that the recorded log
    densities are the target's at the recorded positions, and that acceptance probabilities
    lie in [0, 1].

    Args:
        kernel: the kernel.
        log_prob_fn: ``log_prob_fn(x)`` or ``log_prob_fn(x, data)``, non-finite somewhere.
        initial_positions: ``(n_chains, n_dim)`` points with finite density.
        params: kernel params.
        n_steps: steps per chain.
        data: optional pytree for ``log_prob_fn``.

    Returns:
        The `ChainRun`, for further assertions.
    """
    check = "rejects_non_finite"
    key = jax.random.key(4)
    run = run_chains(kernel, log_prob_fn, key, initial_positions, params, n_steps, data)
    position, log_prob = np.asarray(run.position), np.asarray(run.log_prob)
    require(
        np.all(np.isfinite(position)),
        check,
        f"{int(np.sum(~np.all(np.isfinite(position), axis=-1)))} recorded positions are not finite",
    )
    require(
        np.all(np.isfinite(log_prob)),
        check,
        f"{int(np.sum(~np.isfinite(log_prob)))} recorded log_prob values are not finite: a "
        "proposal with a non-finite density was accepted",
    )
    for leaf in jax.tree.leaves(run.final_state):
        require(bool(jnp.all(jnp.isfinite(leaf))), check, "the final kernel state is not finite")
    bound = bind(log_prob_fn, data, data is not None)
    recomputed = jax.jit(jax.vmap(bound))(run.position.reshape(-1, run.position.shape[-1]))
    require_close(
        check,
        "stored log_prob vs log_prob_fn at the stored position",
        log_prob.ravel(),
        np.asarray(recomputed),
        rtol=1e-5,
        atol=1e-5,
    )
    acceptance_prob = np.asarray(run.acceptance_prob)
    require(
        np.all((acceptance_prob >= 0) & (acceptance_prob <= 1)),
        check,
        f"acceptance_prob outside [0, 1]: min {acceptance_prob.min()}, max {acceptance_prob.max()}",
    )
    return run


def check_kernel_log_prob_call_sites(
    kernel: AbstractLocalKernel,
    log_prob_fn: LogProbFn,
    position: ArrayLike,
    params: PyTree,
    expected: int = 1,
) -> None:
    """``step`` traces ``log_prob_fn`` ``expected`` times (the current point is cached).

    Tracing runs the Python body of ``log_prob_fn`` once per call site, so this counts call
    sites in one transition: 1 for MALA/RandomWalk (the proposal) and 1 for HMC (the body of
    the leapfrog loop, run ``n_leapfrog`` times).

    Args:
        kernel: the kernel.
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
        position: ``(n_dim,)`` starting point.
        params: kernel params.
        expected: expected number of call sites.
    """
    state = kernel.init(jnp.asarray(position), log_prob_fn)
    n_calls = 0

    def counting_log_prob(x: Array) -> Array:
        nonlocal n_calls
        n_calls += 1
        return log_prob_fn(x)

    jax.make_jaxpr(lambda key, state: kernel.step(key, state, counting_log_prob, params))(
        jax.random.key(0), state
    )
    require(
        n_calls == expected,
        "log_prob_call_sites",
        f"step evaluates log_prob_fn at {n_calls} call sites; expected {expected} (the current "
        "point's log density belongs in the state, not recomputed)",
    )
