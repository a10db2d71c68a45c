"""Detailed balance of local kernels: exactly from a proposal density, or statistically.

A kernel leaves the target ``p`` invariant when it satisfies detailed balance; moment tests
with loose tolerances can miss a wrong acceptance ratio for years, so these checks look at the
ratio itself (`check_kernel_detailed_balance`, for kernels with a written-down proposal
density) or at chains started from exact draws of ``p`` (`check_kernel_reversible`,
`check_kernel_reversible_discrete`, for any kernel). Each raises `ConformanceError`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, ArrayLike, LogProbFn, PyTree
from flowmc_like.conformance._chains import run_chains
from flowmc_like.conformance._core import chi_square_p_value, fail, pooled_chi_square, require
from flowmc_like.kernels.base import AbstractLocalKernel

__all__ = [
    "check_kernel_detailed_balance",
    "check_kernel_reversible",
    "check_kernel_reversible_discrete",
    "detailed_balance_residual",
]


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
            of the kernel (e.g. from the documented formula).
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
    """Exact detailed balance of a kernel with ``log_acceptance_ratio(params, current, proposed)``.

    Passes when every ``|residual| <= atol + rtol * scale``, where ``scale`` is the sum of the
    absolute log densities in the pair's two sides (floating-point error grows with them). For
    kernels without a proposal density written down, `check_kernel_reversible` tests the same
    property statistically.

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
        return kernel.log_acceptance_ratio(params, current, proposed)  # type: ignore[attr-defined]

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
    require(
        float(excess[worst]) <= 0.0,
        "detailed_balance",
        f"detailed balance violated: |residual| = {float(jnp.abs(residuals[worst])):.6g} at pair "
        f"{worst} (scale {float(scales[worst]):.6g}, atol {atol}, rtol {rtol})",
    )
    return residuals


def _continuous_statistics(x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """``x_i``, ``x_i^2`` and ``x_i x_j`` (i < j) of positions ``(..., n_dim)``, float64."""
    n_dim = x.shape[-1]
    values = [x[..., i] for i in range(n_dim)] + [x[..., i] ** 2 for i in range(n_dim)]
    names = [f"x{i}" for i in range(n_dim)] + [f"x{i}^2" for i in range(n_dim)]
    for i in range(n_dim):
        for j in range(i + 1, n_dim):
            values.append(x[..., i] * x[..., j])
            names.append(f"x{i}*x{j}")
    return np.stack(values, axis=-1), names


def _z_scores(differences: np.ndarray) -> np.ndarray:
    """``mean / (sd / sqrt(n))`` of each column of independent ``(n, k)`` differences."""
    sd = differences.std(axis=0, ddof=1)
    z = differences.mean(axis=0) / (sd / np.sqrt(differences.shape[0]))
    return np.where(sd > 0, z, 0.0)


def check_kernel_reversible(
    kernel: AbstractLocalKernel,
    log_prob_fn: Callable[..., Array],
    exact_draws: ArrayLike,
    params: PyTree,
    n_steps: int = 20,
    data: PyTree = None,
    max_abs_z: float = 5.0,
    seed: int = 5,
) -> float:
    """Detailed balance, tested statistically: chains started from exact draws of ``p``.

    Needs no proposal density, so it applies to any kernel. With ``x_0 ~ p`` (one independent
    draw per chain) and ``x_t`` the chain after ``t`` steps:

    - stationarity: ``E[f(x_T) - f(x_0)] = 0`` for ``f`` in ``x_i``, ``x_i^2``, ``x_i x_j``
      (``T = n_steps``);
    - reversibility: ``E[u(x_0) v(x_1) - u(x_1) v(x_0)] = 0`` for every pair ``(u, v)`` of
      those statistics (a reversible kernel makes ``(x_0, x_1)`` exchangeable).

    Each mean is compared with zero in units of its standard error over chains (independent
    by construction, so no effective sample size is needed).

    Args:
        kernel: the kernel.
        log_prob_fn: ``log_prob_fn(x)`` or ``log_prob_fn(x, data)``.
        exact_draws: ``(n_chains, n_dim)`` independent exact draws from ``p`` (thousands).
        params: kernel params.
        n_steps: steps per chain.
        data: optional pytree for ``log_prob_fn``.
        max_abs_z: the check fails when any ``|z|`` exceeds this.
        seed: seed of the chains' key (the check is statistical; keep it fixed).

    Returns:
        The largest ``|z|``.
    """
    key = jax.random.key(seed)
    run = run_chains(kernel, log_prob_fn, key, exact_draws, params, n_steps, data)
    x_0 = np.asarray(exact_draws, dtype=np.float64)
    x_1 = np.asarray(run.position[:, 0], dtype=np.float64)
    x_end = np.asarray(run.position[:, -1], dtype=np.float64)
    f_0, names = _continuous_statistics(x_0)
    f_1, f_end = _continuous_statistics(x_1)[0], _continuous_statistics(x_end)[0]
    labels = [f"E[{name}] after {n_steps} steps" for name in names]
    differences = [f_end - f_0]
    pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))]
    first, second = zip(*pairs, strict=True)
    first, second = list(first), list(second)
    differences.append(f_0[:, first] * f_1[:, second] - f_1[:, first] * f_0[:, second])
    labels += [f"E[{names[a]}(x) {names[b]}(x') - {names[a]}(x') {names[b]}(x)]" for a, b in pairs]
    z = _z_scores(np.concatenate(differences, axis=1))
    worst = int(np.argmax(np.abs(z)))
    if not np.all(np.isfinite(z)) or abs(z[worst]) > max_abs_z:
        fail(
            "detailed_balance",
            f"chains started from exact draws of the target drift: {labels[worst]} differs "
            f"from zero by z = {z[worst]:.2f} standard errors (max |z| allowed {max_abs_z}; "
            f"{int(np.sum(np.abs(z) > max_abs_z))} of {z.size} statistics fail)",
        )
    return float(abs(z[worst]))


def check_kernel_reversible_discrete(
    kernel: AbstractLocalKernel,
    log_prob_fn: Callable[..., Array],
    states: ArrayLike,
    probabilities: ArrayLike,
    params: PyTree,
    n_chains: int = 4096,
    n_steps: int = 20,
    data: PyTree = None,
    min_p_value: float = 1e-4,
    seed: int = 5,
) -> tuple[float, float]:
    """Detailed balance of a discrete kernel on an enumerated target, from exact draws.

    With ``s_0`` drawn exactly from ``probabilities`` (one per chain): the counts of ``s_T``
    (``T = n_steps``) must fit ``probabilities`` (chi-square), and the transition counts
    ``N(s_0 = a, s_1 = b)`` must be symmetric in ``(a, b)`` (Bowker's test).

    Args:
        kernel: a discrete kernel.
        log_prob_fn: ``log_prob_fn(s)`` or ``log_prob_fn(s, data)``.
        states: ``(n_states, n_dim)`` every state of the space.
        probabilities: ``(n_states,)`` their exact probabilities.
        params: kernel params.
        n_chains: number of chains (and of exact draws).
        n_steps: steps per chain.
        data: optional pytree for ``log_prob_fn``.
        min_p_value: the check fails below this p-value.
        seed: seed of the draws and of the chains' key (keep it fixed).

    Returns:
        The p-values of the stationarity and of the symmetry tests.
    """
    states = np.asarray(states)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n_states = states.shape[0]
    index = np.random.default_rng(seed).choice(n_states, size=n_chains, p=probabilities)
    key = jax.random.key(seed)
    run = run_chains(kernel, log_prob_fn, key, states[index], params, n_steps, data)
    lookup = {tuple(state): i for i, state in enumerate(states.tolist())}
    to_index = lambda s: np.array([lookup[tuple(row)] for row in np.asarray(s).tolist()])  # noqa: E731
    after_one, at_end = to_index(run.position[:, 0]), to_index(run.position[:, -1])

    observed = np.bincount(at_end, minlength=n_states)
    statistic, dof = pooled_chi_square(observed, n_chains * probabilities)
    p_stationary = chi_square_p_value(statistic, dof)
    require(
        p_stationary >= min_p_value,
        "detailed_balance",
        f"after {n_steps} steps from exact draws the state counts do not fit the target: "
        f"chi-square {statistic:.1f} on {dof} degrees of freedom, p = {p_stationary:.3g}",
    )
    counts = np.zeros((n_states, n_states))
    np.add.at(counts, (index, after_one), 1.0)
    upper = np.triu_indices(n_states, 1)
    forward, backward = counts[upper], counts.T[upper]
    total = forward + backward
    moved = total > 0
    statistic = float(np.sum((forward[moved] - backward[moved]) ** 2 / total[moved]))
    p_symmetric = chi_square_p_value(statistic, int(np.sum(moved)))
    require(
        p_symmetric >= min_p_value,
        "detailed_balance",
        f"one-step transition counts are not symmetric (Bowker): chi-square {statistic:.1f} on "
        f"{int(np.sum(moved))} degrees of freedom, p = {p_symmetric:.3g}",
    )
    return p_stationary, p_symmetric
