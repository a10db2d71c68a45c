"""Reusable property checks that every local kernel (and global model, below) must pass.

Tests parametrise these over a list of kernels (``ALL_KERNELS`` in
``tests/unit/kernels/test_conformance.py``), so a new kernel is checked by adding it there.
Each ``check_*`` function raises ``AssertionError`` with a descriptive message on failure.
`run_chains` is the small vmapped/scanned driver they share; it is also handy in tests.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, ArrayLike, LogProbFn, PRNGKey, PyTree
from flowmc_like.kernels.base import AbstractLocalKernel
from flowmc_like.models.base import AbstractGlobalModel, ModelParams

__all__ = [
    "ChainRun",
    "check_kernel_deterministic",
    "check_kernel_detailed_balance",
    "check_kernel_log_prob_call_sites",
    "check_kernel_rejects_non_finite",
    "check_kernel_small_step_acceptance",
    "check_kernel_state_layout",
    "detailed_balance_residual",
    "run_chains",
]


class ChainRun(NamedTuple):
    """Output of `run_chains`, chain-first.

    Attributes:
        position: ``(n_chains, n_steps, n_dim)`` positions after each step.
        log_prob: ``(n_chains, n_steps)`` log densities there.
        acceptance_prob: ``(n_chains, n_steps)``.
        is_accepted: ``(n_chains, n_steps)`` bool.
        final_state: kernel states after the last step, batched over chains.
    """

    position: Array
    log_prob: Array
    acceptance_prob: Array
    is_accepted: Array
    final_state: Any


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
    repeatedly with the previous final positions continues the same Markov chains.

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
    run = _build_runner(kernel, log_prob_fn, n_steps, data is not None)
    return run(key, jnp.asarray(initial_positions), params, data)


def _bind(log_prob_fn: Callable[..., Array], data: PyTree, has_data: bool) -> LogProbFn:
    if has_data:
        return lambda x: log_prob_fn(x, data)
    return log_prob_fn


@functools.lru_cache(maxsize=64)
def _build_runner(
    kernel: AbstractLocalKernel,
    log_prob_fn: Callable[..., Array],
    n_steps: int,
    has_data: bool,
) -> Callable[[PRNGKey, Array, PyTree, PyTree], ChainRun]:
    """A jitted driver, cached so that repeated runs of one kernel compile once."""

    @jax.jit
    def run(key: PRNGKey, initial_positions: Array, params: PyTree, data: PyTree) -> ChainRun:
        bound = _bind(log_prob_fn, data, has_data)
        n_chains = initial_positions.shape[0]
        states = jax.vmap(kernel.init, in_axes=(0, None))(initial_positions, bound)
        step_chains = jax.vmap(kernel.step, in_axes=(0, 0, None, None))

        def one_step(states: Any, step_key: PRNGKey) -> tuple[Any, tuple[Array, ...]]:
            keys = jax.random.split(step_key, n_chains)
            states, infos = step_chains(keys, states, bound, params)
            return states, (
                states.position,
                states.log_prob,
                infos.acceptance_prob,
                infos.is_accepted,
            )

        final, (position, log_prob, acceptance_prob, is_accepted) = jax.lax.scan(
            one_step, states, jax.random.split(key, n_steps)
        )
        swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
        return ChainRun(
            swap(position), swap(log_prob), swap(acceptance_prob), swap(is_accepted), final
        )

    return run


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
    position = jnp.asarray(position)
    state = jax.eval_shape(lambda position: kernel.init(position, log_prob_fn), position)
    assert state._fields[:2] == ("position", "log_prob"), state._fields
    assert state.position.shape == position.shape and state.position.dtype == position.dtype
    assert state.log_prob.shape == ()
    new_state, info = jax.eval_shape(
        lambda key, state: kernel.step(key, state, log_prob_fn, params), jax.random.key(0), state
    )
    assert type(new_state) is type(state)
    for name, old, new in zip(state._fields, state, new_state, strict=True):
        assert (old.shape, old.dtype) == (new.shape, new.dtype), (name, old, new)
    assert info.acceptance_prob.shape == () and info.is_accepted.shape == ()
    assert info.is_accepted.dtype == jnp.bool_


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
        log_prob_fn: ``log_prob_fn(x)`` or ``log_prob_fn(x, data)`` (see `run_chains`).
        initial_positions: ``(n_chains, n_dim)``.
        params: kernel params.
        n_steps: steps per run.
        data: optional pytree for ``log_prob_fn``.
    """

    def run(seed: int) -> ChainRun:
        key = jax.random.key(seed)
        return run_chains(kernel, log_prob_fn, key, initial_positions, params, n_steps, data)

    first, again, other = run(1), run(1), run(2)
    np.testing.assert_array_equal(np.asarray(first.position), np.asarray(again.position))
    np.testing.assert_array_equal(np.asarray(first.log_prob), np.asarray(again.log_prob))
    assert not np.array_equal(np.asarray(first.position), np.asarray(other.position)), (
        "different keys gave identical chains"
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
        log_prob_fn: ``log_prob_fn(x)`` or ``log_prob_fn(x, data)`` (see `run_chains`).
        initial_positions: ``(n_chains, n_dim)`` points in the typical set.
        small_step_params: params with a tiny step size.
        min_acceptance: required mean acceptance probability.
        n_steps: steps per chain.
        data: optional pytree for ``log_prob_fn``.

    Returns:
        The measured mean acceptance probability.
    """
    run = run_chains(
        kernel,
        log_prob_fn,
        jax.random.key(3),
        initial_positions,
        small_step_params,
        n_steps,
        data,
    )
    acceptance = float(jnp.mean(run.acceptance_prob))
    assert acceptance >= min_acceptance, f"mean acceptance {acceptance} < {min_acceptance}"
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
    points near that region, with a step size large enough to cross into it often.

    Args:
        kernel: the kernel.
        log_prob_fn: ``log_prob_fn(x)`` or ``log_prob_fn(x, data)`` (see `run_chains`),
            non-finite somewhere.
        initial_positions: ``(n_chains, n_dim)`` points with finite density.
        params: kernel params.
        n_steps: steps per chain.
        data: optional pytree for ``log_prob_fn``.

    Returns:
        The `ChainRun`, for further assertions.
    """
    key = jax.random.key(4)
    run = run_chains(kernel, log_prob_fn, key, initial_positions, params, n_steps, data)
    assert bool(jnp.all(jnp.isfinite(run.position))), "a chain reached a non-finite position"
    assert bool(jnp.all(jnp.isfinite(run.log_prob))), "a chain reached a non-finite log_prob"
    for leaf in jax.tree.leaves(run.final_state):
        assert bool(jnp.all(jnp.isfinite(leaf))), "the final kernel state is not finite"
    bound = _bind(log_prob_fn, data, data is not None)
    positions = run.position.reshape(-1, run.position.shape[-1])
    recomputed = jax.jit(jax.vmap(bound))(positions)
    np.testing.assert_allclose(
        np.asarray(recomputed), np.asarray(run.log_prob).ravel(), rtol=1e-5, atol=1e-5
    )
    acceptance_prob = np.asarray(run.acceptance_prob)
    assert np.all((acceptance_prob >= 0) & (acceptance_prob <= 1)), "acceptance_prob not in [0,1]"
    return run


def detailed_balance_residual(
    log_prob_fn: LogProbFn,
    proposal_log_density: Callable[[Array, Array], Array],
    log_ratio: Callable[[Array, Array], Array],
    x: ArrayLike,
    x_prime: ArrayLike,
) -> Array:
    """Residual of detailed balance for a Metropolis-Hastings kernel on pairs ``(x, x')``.

    ``log p(x) + log q(x'|x) + log a(x, x') - [log p(x') + log q(x|x') + log a(x', x)]``
    with ``a(x, x') = min(1, exp(log_ratio(x, x')))``. It is zero for every pair exactly when
    ``log_ratio`` is the correct Metropolis-Hastings ratio for ``q``.

    Args:
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
        proposal_log_density: ``(x_to, x_from) -> log q(x_to | x_from)``, written independently
            of the kernel (e.g. in the test, from the documented formula).
        log_ratio: ``(x, x') -> ()`` the kernel's log acceptance ratio for the move x -> x'.
        x: ``(n_pairs, n_dim)``.
        x_prime: ``(n_pairs, n_dim)``.

    Returns:
        ``(n_pairs,)`` residuals.
    """

    def residual(x: Array, x_prime: Array) -> Array:
        log_a_forward = jnp.minimum(0.0, log_ratio(x, x_prime))
        log_a_reverse = jnp.minimum(0.0, log_ratio(x_prime, x))
        forward = log_prob_fn(x) + proposal_log_density(x_prime, x) + log_a_forward
        reverse = log_prob_fn(x_prime) + proposal_log_density(x, x_prime) + log_a_reverse
        return forward - reverse

    return jax.vmap(residual)(jnp.asarray(x), jnp.asarray(x_prime))


def check_kernel_detailed_balance(
    kernel: AbstractLocalKernel,
    log_prob_fn: LogProbFn,
    params: PyTree,
    proposal_log_density: Callable[[Array, Array], Array],
    x: ArrayLike,
    x_prime: ArrayLike,
    atol: float = 1e-5,
    rtol: float = 1e-6,
) -> Array:
    """Detailed balance of a kernel exposing ``log_acceptance_ratio(params, current, proposed)``.

    Passes when every ``|residual| <= atol + rtol * scale``, where ``scale`` is the sum of the
    absolute log densities in the pair's two sides (floating-point error grows with them).

    Args:
        kernel: a kernel with ``init`` and ``log_acceptance_ratio`` (MALA, RandomWalk).
        log_prob_fn: one position ``(n_dim,)`` -> scalar log density.
        params: kernel params.
        proposal_log_density: ``(x_to, x_from) -> log q(x_to | x_from)`` from the documented
            formula, computed independently of the kernel.
        x: ``(n_pairs, n_dim)``.
        x_prime: ``(n_pairs, n_dim)``.
        atol: absolute tolerance.
        rtol: tolerance relative to ``scale``.

    Returns:
        ``(n_pairs,)`` residuals.
    """

    def log_ratio(x: Array, x_prime: Array) -> Array:
        current = kernel.init(x, log_prob_fn)
        proposed = kernel.init(x_prime, log_prob_fn)
        return kernel.log_acceptance_ratio(params, current, proposed)

    def scale(x: Array, x_prime: Array) -> Array:
        terms = jnp.stack(
            [
                log_prob_fn(x),
                log_prob_fn(x_prime),
                proposal_log_density(x_prime, x),
                proposal_log_density(x, x_prime),
            ]
        )
        return jnp.sum(jnp.abs(terms))

    @jax.jit
    def residuals_and_scales(x: Array, x_prime: Array) -> tuple[Array, Array]:
        residuals = detailed_balance_residual(
            log_prob_fn, proposal_log_density, log_ratio, x, x_prime
        )
        return residuals, jax.vmap(scale)(x, x_prime)

    residuals, scales = residuals_and_scales(jnp.asarray(x), jnp.asarray(x_prime))
    excess = jnp.abs(residuals) - (atol + rtol * scales)
    worst = int(jnp.argmax(excess))
    assert float(excess[worst]) <= 0.0, (
        f"detailed balance violated: |residual| = {float(jnp.abs(residuals[worst]))} at pair "
        f"{worst} (scale {float(scales[worst])}, atol {atol}, rtol {rtol})"
    )
    return residuals


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
    state = kernel.init(position, log_prob_fn)
    n_calls = 0

    def counting_log_prob(x: Array) -> Array:
        nonlocal n_calls
        n_calls += 1
        return log_prob_fn(x)

    jax.make_jaxpr(lambda key, state: kernel.step(key, state, counting_log_prob, params))(
        jax.random.key(0), state
    )
    assert n_calls == expected, f"step traced log_prob_fn {n_calls} times; expected {expected}"


# =====================================================================================
# Global models: check_model_*
#
# Tests parametrise these over a list of models (``ALL_MODELS`` in
# ``tests/unit/models/test_flows.py``). The generic checks need only the
# `AbstractGlobalModel` protocol; `check_model_change_of_variables` needs a bijective model
# that also exposes ``inverse_and_log_det`` / ``forward_and_log_det`` (the continuous flows).
# =====================================================================================

__all__ += [
    "check_model_change_of_variables",
    "check_model_fit_decreases_loss",
    "check_model_identity_at_init",
    "check_model_jit_vmap_grad",
    "check_model_normalized_2d",
    "check_model_sample_and_log_prob_agree",
    "check_model_shapes",
]


@functools.lru_cache(maxsize=32)
def _batched_model_fns(
    model: AbstractGlobalModel,
) -> tuple[Callable[[ModelParams, Array], Array], Callable[[ModelParams, Array], Any]]:
    """``jit(vmap(log_prob))`` and ``jit(vmap(sample_and_log_prob))``, cached per model.

    The checks share these, so each model and batch shape compiles once.
    """
    log_prob = jax.jit(jax.vmap(model.log_prob, in_axes=(None, 0)))
    sample = jax.jit(jax.vmap(model.sample_and_log_prob, in_axes=(None, 0)))
    return log_prob, sample


def _standard_normal_log_prob(z: Array) -> Array:
    return -0.5 * jnp.sum(jnp.square(z), axis=-1) - 0.5 * z.shape[-1] * np.log(2.0 * np.pi)


def check_model_shapes(model: AbstractGlobalModel, params: ModelParams, key: PRNGKey) -> int:
    """``sample_and_log_prob -> ((n_dim,), ())`` and ``log_prob: (n_dim,) -> ()`` (no compile).

    Args:
        model: the model.
        params: its params.
        key: PRNG key.

    Returns:
        ``n_dim``, read from the sample's shape.
    """
    x, log_q = jax.eval_shape(model.sample_and_log_prob, params, key)
    assert x.ndim == 1, f"sample has shape {x.shape}; expected (n_dim,)"
    assert log_q.shape == (), f"log_q has shape {log_q.shape}; expected ()"
    log_prob = jax.eval_shape(model.log_prob, params, jnp.zeros(x.shape, x.dtype))
    assert log_prob.shape == (), f"log_prob has shape {log_prob.shape}; expected ()"
    if jnp.issubdtype(x.dtype, jnp.floating):
        assert log_prob.dtype == x.dtype, (log_prob.dtype, x.dtype)
    return x.shape[0]


def check_model_sample_and_log_prob_agree(
    model: AbstractGlobalModel,
    params: ModelParams,
    key: PRNGKey,
    n_samples: int = 4096,
    rtol: float = 1e-4,
    atol: float = 1e-3,
) -> tuple[Array, Array]:
    """``log_q`` returned with each draw equals ``log_prob`` at that draw (vmapped, jitted).

    Args:
        model: the model.
        params: its params.
        key: PRNG key.
        n_samples: number of draws.
        rtol: relative tolerance.
        atol: absolute tolerance.

    Returns:
        The draws ``(n_samples, n_dim)`` and their ``log_q`` ``(n_samples,)``.
    """
    batched_log_prob, batched_sample = _batched_model_fns(model)
    x, log_q = batched_sample(params, jax.random.split(key, n_samples))
    log_prob = batched_log_prob(params, x)
    assert bool(jnp.all(jnp.isfinite(log_q))), "non-finite log_q from sample_and_log_prob"
    np.testing.assert_allclose(np.asarray(log_q), np.asarray(log_prob), rtol=rtol, atol=atol)
    return x, log_q


def check_model_normalized_2d(
    model: AbstractGlobalModel,
    params: ModelParams,
    lower: ArrayLike,
    upper: ArrayLike,
    n_grid: int = 400,
    atol: float = 1e-2,
) -> float:
    """``exp(log_prob)`` of a 2-D continuous model integrates to 1 over a box (midpoint rule).

    Choose the box large enough that the mass outside it is below ``atol`` (e.g. the prepared
    mean plus or minus ten prepared scales).

    Args:
        model: a continuous model with ``n_dim = 2``.
        params: its params.
        lower: ``(2,)`` lower corner of the box.
        upper: ``(2,)`` upper corner of the box.
        n_grid: midpoints per axis.
        atol: tolerance on the integral.

    Returns:
        The integral.
    """
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    cell = (upper - lower) / n_grid
    axes = [lower[i] + cell[i] * (np.arange(n_grid) + 0.5) for i in range(2)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    log_q = _batched_model_fns(model)[0](params, jnp.asarray(grid))
    log_q = np.asarray(log_q, dtype=np.float64)
    assert np.all(np.isfinite(log_q)), "non-finite log_prob on the grid"
    integral = float(np.sum(np.exp(log_q)) * np.prod(cell))
    assert abs(integral - 1.0) <= atol, f"density integrates to {integral} over the box; expected 1"
    return integral


def check_model_jit_vmap_grad(
    model: AbstractGlobalModel, params: ModelParams, xs: ArrayLike, key: PRNGKey
) -> None:
    """The model works per event and under ``jit(vmap)``, and has finite, non-zero gradients.

    Checks: jitted+vmapped ``log_prob`` equals the jitted per-event value; ``sample_and_log_prob``
    vmaps over keys; ``grad`` of ``-mean log_prob`` w.r.t. ``params.trainable`` has the
    trainable tree's structure and shapes, is finite, and is not identically zero.

    Args:
        model: the model.
        params: its params (ideally not at initialisation).
        xs: ``(n_events, n_dim)`` events with finite density (a few are enough).
        key: PRNG key.
    """
    xs = jnp.asarray(xs)
    batched_log_prob, batched_sample = _batched_model_fns(model)
    batched = batched_log_prob(params, xs)
    single = jax.jit(model.log_prob)
    one_by_one = jnp.stack([single(params, x) for x in xs[:3]])
    np.testing.assert_allclose(
        np.asarray(batched[:3]), np.asarray(one_by_one), rtol=1e-5, atol=1e-4
    )

    keys = jax.random.split(key, 4)
    samples, log_q = batched_sample(params, keys)
    assert samples.shape[0] == 4 and log_q.shape == (4,), (samples.shape, log_q.shape)

    def loss(trainable: PyTree) -> Array:
        log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(
            ModelParams(trainable, params.frozen), xs
        )
        return -jnp.mean(log_q)

    grads = jax.jit(jax.grad(loss))(params.trainable)
    assert jax.tree.structure(grads) == jax.tree.structure(params.trainable)
    for grad, leaf in zip(jax.tree.leaves(grads), jax.tree.leaves(params.trainable), strict=True):
        assert grad.shape == leaf.shape, (grad.shape, leaf.shape)
        assert bool(jnp.all(jnp.isfinite(grad))), "non-finite gradient"
    assert any(bool(jnp.any(grad != 0)) for grad in jax.tree.leaves(grads)), "all gradients zero"


def check_model_change_of_variables(
    model: Any,
    params: ModelParams,
    xs: ArrayLike,
    atol: float = 1e-3,
    rtol: float = 1e-4,
) -> None:
    """Bijective models: round trip and log-determinants against autodiff Jacobians.

    For each event ``x``, with ``(z, ld) = model.inverse_and_log_det(params, x)``:
    ``ld == log|det dz/dx|`` from ``jax.jacfwd``; ``log_prob(x) == log N(z; 0, I) + log|det
    dz/dx|`` (the change of variables); ``forward_and_log_det(z)`` returns ``x`` and ``-ld``,
    and its log-determinant equals ``log|det dx/dz|`` from ``jax.jacfwd``.

    Args:
        model: a continuous model with ``inverse_and_log_det(params, x) -> (z, ld)`` and
            ``forward_and_log_det(params, z) -> (x, ld)`` for one event.
        params: its params.
        xs: ``(n_events, n_dim)`` events.
        atol: absolute tolerance.
        rtol: relative tolerance.
    """
    xs = jnp.asarray(xs)

    def per_event(params: ModelParams, x: Array) -> tuple[Array, ...]:
        z, inverse_log_det = model.inverse_and_log_det(params, x)
        jac_inverse = jax.jacfwd(lambda x: model.inverse_and_log_det(params, x)[0])(x)
        x_back, forward_log_det = model.forward_and_log_det(params, z)
        jac_forward = jax.jacfwd(lambda z: model.forward_and_log_det(params, z)[0])(z)
        return (
            z,
            inverse_log_det,
            jnp.linalg.slogdet(jac_inverse)[1],
            x_back,
            forward_log_det,
            jnp.linalg.slogdet(jac_forward)[1],
            model.log_prob(params, x),
        )

    z, inverse_ld, jac_inverse_ld, x_back, forward_ld, jac_forward_ld, log_prob = jax.jit(
        jax.vmap(per_event, in_axes=(None, 0))
    )(params, xs)
    tol = dict(rtol=rtol, atol=atol)
    np.testing.assert_allclose(np.asarray(x_back), np.asarray(xs), err_msg="round trip", **tol)
    np.testing.assert_allclose(
        np.asarray(inverse_ld), np.asarray(jac_inverse_ld), err_msg="inverse log-det", **tol
    )
    np.testing.assert_allclose(
        np.asarray(forward_ld), np.asarray(jac_forward_ld), err_msg="forward log-det", **tol
    )
    np.testing.assert_allclose(
        np.asarray(forward_ld), -np.asarray(inverse_ld), err_msg="forward = -inverse", **tol
    )
    np.testing.assert_allclose(
        np.asarray(log_prob),
        np.asarray(_standard_normal_log_prob(z) + jac_inverse_ld),
        err_msg="log_prob != log N(z) + log|det dz/dx|",
        **tol,
    )


def check_model_identity_at_init(
    model: AbstractGlobalModel,
    key: PRNGKey,
    data: ArrayLike,
    n_samples: int = 4096,
    atol: float = 1e-4,
) -> None:
    """Continuous flows: a fresh model is N(0, I), and N(mean, diag(std^2)) after ``prepare``.

    ``mean`` and ``std`` (ddof 0) are computed from ``data`` with numpy. Also checks that the
    sample mean and standard deviation of the prepared fresh model match ``mean`` and ``std``
    within five Monte Carlo standard errors.

    Args:
        model: a continuous model whose fresh params are the identity flow.
        key: PRNG key.
        data: ``(n_examples, n_dim)`` training data with non-degenerate columns.
        n_samples: draws for the moment check, and number of points for the density check.
        atol: tolerance on log densities.
    """
    data = np.asarray(data)
    n_dim = data.shape[1]
    key_init, key_points, key_sample = jax.random.split(key, 3)
    params = model.init(key_init, n_dim)
    mean, std = data.mean(axis=0), data.std(axis=0)
    points = mean + std * 2.0 * np.asarray(jax.random.normal(key_points, (n_samples, n_dim)))
    points = points.astype(data.dtype)
    log_prob, batched_sample = _batched_model_fns(model)

    np.testing.assert_allclose(
        np.asarray(log_prob(params, points)),
        np.asarray(_standard_normal_log_prob(jnp.asarray(points))),
        rtol=1e-5,
        atol=atol,
        err_msg="fresh model is not N(0, I)",
    )
    prepared = model.prepare(params, jnp.asarray(data))
    expected = _standard_normal_log_prob(jnp.asarray((points - mean) / std)) - np.sum(np.log(std))
    np.testing.assert_allclose(
        np.asarray(log_prob(prepared, points)),
        np.asarray(expected),
        rtol=1e-5,
        atol=atol,
        err_msg="prepared fresh model is not N(mean, std^2)",
    )
    samples = batched_sample(prepared, jax.random.split(key_sample, n_samples))[0]
    samples = np.asarray(samples, dtype=np.float64)
    mcse_mean = std / np.sqrt(n_samples)
    assert np.all(np.abs(samples.mean(axis=0) - mean) < 5 * mcse_mean), (
        f"sample mean {samples.mean(axis=0)} vs {mean}"
    )
    mcse_std = std / np.sqrt(2 * n_samples)
    assert np.all(np.abs(samples.std(axis=0) - std) < 5 * mcse_std), (
        f"sample std {samples.std(axis=0)} vs {std}"
    )


def check_model_fit_decreases_loss(
    model: AbstractGlobalModel,
    params: ModelParams,
    data: ArrayLike,
    n_steps: int = 300,
    learning_rate: float = 3e-3,
    min_decrease: float = 0.3,
) -> tuple[float, float]:
    """Full-batch maximum likelihood with Adam lowers ``-mean log_prob(data)`` (sanity only).

    ``params`` are used as given (call ``prepare`` first if the model needs it).

    Args:
        model: the model.
        params: starting params.
        data: ``(n_examples, n_dim)`` training data.
        n_steps: Adam steps (scanned inside one jit).
        learning_rate: Adam learning rate.
        min_decrease: required decrease of the loss, in nats.

    Returns:
        The initial and final loss.
    """
    import optax

    data = jnp.asarray(data)
    optimizer = optax.adam(learning_rate)

    def loss(trainable: PyTree) -> Array:
        log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(
            ModelParams(trainable, params.frozen), data
        )
        return -jnp.mean(log_q)

    @jax.jit
    def fit(trainable: PyTree) -> tuple[Array, Array]:
        def step(carry: tuple[PyTree, PyTree], _: None) -> tuple[tuple[PyTree, PyTree], Array]:
            trainable, opt_state = carry
            value, grads = jax.value_and_grad(loss)(trainable)
            updates, opt_state = optimizer.update(grads, opt_state, trainable)
            return (optax.apply_updates(trainable, updates), opt_state), value

        carry = (trainable, optimizer.init(trainable))
        (trainable, _), _ = jax.lax.scan(step, carry, None, length=n_steps)
        return loss(params.trainable), loss(trainable)

    initial, final = (float(value) for value in fit(params.trainable))
    assert np.isfinite(final), f"final loss {final} is not finite"
    assert initial - final >= min_decrease, (
        f"loss went from {initial} to {final}; expected a decrease of at least {min_decrease}"
    )
    return initial, final


# =====================================================================================
# Discrete global models (``space is Space.DISCRETE``): events are integer vectors
# ``(n_dim,)`` with values in ``[0, n_categories)``; small state spaces are enumerated.
# =====================================================================================

__all__ += [
    "check_discrete_model_autoregressive",
    "check_discrete_model_invariant",
    "check_discrete_model_normalized",
    "check_discrete_model_sample_and_log_prob_agree",
    "check_discrete_model_sample_frequencies",
    "check_discrete_model_uniform_at_init",
    "enumerate_states",
]


def enumerate_states(n_dim: int, n_categories: int) -> np.ndarray:
    """Every state of ``{0, ..., n_categories - 1}^n_dim`` in lexicographic order.

    Args:
        n_dim: number of sites.
        n_categories: number of categories per site.

    Returns:
        int32 numpy array ``(n_categories ** n_dim, n_dim)``; row ``r`` is ``r`` written in
        base ``n_categories``, most significant site first.
    """
    index = np.arange(n_categories**n_dim)
    powers = n_categories ** np.arange(n_dim - 1, -1, -1)
    return ((index[:, None] // powers[None, :]) % n_categories).astype(np.int32)


def _all_log_probs(
    model: AbstractGlobalModel, params: ModelParams, n_dim: int, n_categories: int
) -> tuple[np.ndarray, np.ndarray]:
    states = enumerate_states(n_dim, n_categories)
    log_q = _batched_model_fns(model)[0](params, jnp.asarray(states))
    return states, np.asarray(log_q, dtype=np.float64)


def _log_sum_exp(values: np.ndarray) -> float:
    top = float(np.max(values))
    return top + float(np.log(np.sum(np.exp(values - top))))


def check_discrete_model_normalized(
    model: AbstractGlobalModel,
    params: ModelParams,
    n_dim: int,
    n_categories: int,
    atol: float = 1e-5,
) -> np.ndarray:
    """``sum_s exp(log_prob(s)) == 1`` by full enumeration of the ``K^n_dim`` states.

    Args:
        model: a discrete model.
        params: its params (for ``n_dim`` sites).
        n_dim: number of sites (keep ``K^n_dim`` small, e.g. ``<= 4096``).
        n_categories: number of categories ``K``.
        atol: tolerance on the total probability.

    Returns:
        ``log_prob`` of every state ``(K^n_dim,)``, float64, in `enumerate_states` order.
    """
    _, log_q = _all_log_probs(model, params, n_dim, n_categories)
    assert np.all(np.isfinite(log_q)), "non-finite log_prob of a valid state"
    total = float(np.exp(_log_sum_exp(log_q)))
    assert abs(total - 1.0) <= atol, f"probabilities sum to {total}; expected 1"
    return log_q


def check_discrete_model_uniform_at_init(
    model: AbstractGlobalModel,
    key: PRNGKey,
    n_dim: int,
    n_categories: int,
    n_samples: int = 64,
    atol: float = 1e-5,
) -> None:
    """A fresh model is uniform: ``log_prob(s) = -n_dim log K`` for every state and every draw.

    Args:
        model: a discrete model.
        key: PRNG key.
        n_dim: number of sites (small enough to enumerate).
        n_categories: number of categories ``K``.
        n_samples: number of draws whose ``log_q`` is checked (reuse a batch size that other
            checks use, to share their compiled sampler).
        atol: tolerance on log probabilities.
    """
    key_init, key_sample = jax.random.split(key)
    params = model.init(key_init, n_dim)
    expected = -n_dim * np.log(n_categories)
    _, log_q = _all_log_probs(model, params, n_dim, n_categories)
    np.testing.assert_allclose(log_q, expected, atol=atol, err_msg="fresh model is not uniform")
    _, sampled = _batched_model_fns(model)[1](params, jax.random.split(key_sample, n_samples))
    np.testing.assert_allclose(np.asarray(sampled), expected, atol=atol)


def check_discrete_model_sample_and_log_prob_agree(
    model: AbstractGlobalModel,
    params: ModelParams,
    key: PRNGKey,
    n_categories: int,
    n_samples: int = 1024,
    rtol: float = 1e-5,
    atol: float = 1e-4,
) -> tuple[Array, Array]:
    """Draws are int32 in ``[0, K)``, and their ``log_q`` equals ``log_prob`` (jit + vmap).

    Args:
        model: a discrete model.
        params: its params.
        key: PRNG key.
        n_categories: number of categories ``K``.
        n_samples: number of draws.
        rtol: relative tolerance.
        atol: absolute tolerance.

    Returns:
        The draws ``(n_samples, n_dim)`` and their ``log_q`` ``(n_samples,)``.
    """
    s, log_q = check_model_sample_and_log_prob_agree(model, params, key, n_samples, rtol, atol)
    assert s.dtype == jnp.int32, f"samples have dtype {s.dtype}; expected int32"
    s_np = np.asarray(s)
    assert np.all((s_np >= 0) & (s_np < n_categories)), "a sample is outside [0, n_categories)"
    return s, log_q


def check_discrete_model_sample_frequencies(
    model: AbstractGlobalModel,
    params: ModelParams,
    key: PRNGKey,
    n_dim: int,
    n_categories: int,
    n_samples: int = 20_000,
    min_p_value: float = 1e-3,
    min_expected: float = 5.0,
) -> float:
    """Chi-square goodness of fit of sampled state counts against ``exp(log_prob)``.

    States whose expected count is below ``min_expected`` are pooled into one cell (the
    chi-square approximation needs cells of at least about five). Requires scipy.

    Args:
        model: a discrete model.
        params: its params.
        key: PRNG key (fix it: the check is statistical).
        n_dim: number of sites (small enough to enumerate).
        n_categories: number of categories ``K``.
        n_samples: number of draws.
        min_p_value: the check fails below this p-value.
        min_expected: smallest expected count of an unpooled cell.

    Returns:
        The p-value.
    """
    from scipy import stats

    _, log_q = _all_log_probs(model, params, n_dim, n_categories)
    probs = np.exp(log_q - _log_sum_exp(log_q))
    samples, _ = _batched_model_fns(model)[1](params, jax.random.split(key, n_samples))
    samples = np.asarray(samples).astype(np.int64)
    index = samples @ (n_categories ** np.arange(n_dim - 1, -1, -1))
    observed = np.bincount(index, minlength=probs.size).astype(np.float64)
    expected = n_samples * probs
    small = expected < min_expected
    if np.any(small):
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    assert observed.size >= 2, "too few cells for a chi-square test; raise n_samples"
    p_value = float(stats.chisquare(observed, expected).pvalue)
    assert p_value > min_p_value, (
        f"sampled frequencies disagree with exp(log_prob): chi-square p = {p_value:.3g}"
    )
    return p_value


def check_discrete_model_autoregressive(
    logits_fn: Callable[[Array], Array], one_hot: ArrayLike, require_dependence: bool = True
) -> Array:
    """The logits of site ``i`` do not depend on sites ``>= i`` (exact zeros of the Jacobian).

    Args:
        logits_fn: one-hot or relaxed event ``(n_dim, K)`` -> conditional logits ``(n_dim, K)``
            (e.g. ``functools.partial(model.logits, params)``).
        one_hot: the point ``(n_dim, K)`` where the Jacobian is taken (float).
        require_dependence: also require that some site depends on an earlier one (use with
            params away from initialisation, where a zero output layer hides everything).

    Returns:
        The Jacobian ``(n_dim, K, n_dim, K)`` from ``jax.jacfwd``.
    """
    one_hot = jnp.asarray(one_hot)
    n_dim = one_hot.shape[0]
    jac = np.asarray(jax.jit(jax.jacfwd(logits_fn))(one_hot))
    later = np.arange(n_dim)[None, :] >= np.arange(n_dim)[:, None]  # [i, j]: j >= i
    forbidden = np.abs(jac).max(axis=(1, 3))  # (n_dim out, n_dim in)
    bad = np.argwhere(later & (forbidden != 0))
    assert bad.size == 0, f"logits of site i depend on site j >= i for (i, j) in {bad.tolist()}"
    if require_dependence and n_dim > 1:
        assert np.any(forbidden[~later] != 0), "no site depends on an earlier one"
    return jnp.asarray(jac)


def check_discrete_model_invariant(
    model: AbstractGlobalModel,
    params: ModelParams,
    states: ArrayLike,
    transform: Callable[[Array], Array],
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> None:
    """``log_prob(transform(s)) == log_prob(s)`` for every state (e.g. a global spin flip).

    Args:
        model: a discrete model.
        params: its params.
        states: ``(n_states, n_dim)`` integer states.
        transform: batched map of states ``(n_states, n_dim) -> (n_states, n_dim)``.
        rtol: relative tolerance.
        atol: absolute tolerance.
    """
    states = jnp.asarray(states)
    log_prob = _batched_model_fns(model)[0]
    np.testing.assert_allclose(
        np.asarray(log_prob(params, transform(states))),
        np.asarray(log_prob(params, states)),
        rtol=rtol,
        atol=atol,
        err_msg="log_prob is not invariant under the transform",
    )
