"""Conformance checks: does a kernel or a model have the properties the sampler relies on?

Run `check_kernel` on a local kernel and `check_model` on a global model, your own or a
built-in one. Each runs every check that applies to the object's space and kind, on test
targets and data of its own, and raises `ConformanceError` (an `AssertionError`) naming the
failed property and the numbers; on success it returns a `ConformanceReport` of the checks
that ran. Kernels run through `flowmc_like.phases.run_local_phase`, the code
`flowmc_like.Sampler` runs, with fixed params.

- Continuous kernels: ``state_layout``, ``log_prob_call_sites``, ``deterministic``,
  ``small_step_acceptance``, ``rejects_non_finite``, ``detailed_balance`` (chains started from
  exact draws of a curved 3-D target stay stationary and reversible).
- Discrete kernels: ``state_layout``, ``deterministic``, ``rejects_non_finite``,
  ``detailed_balance`` (on an enumerated random pairwise model).
- Continuous models: ``shapes``, ``identity_at_init``, ``fit_decreases_loss`` (the later
  checks use the fitted params), ``sample_and_log_prob_agree``, ``normalized`` (2-D),
  ``jit_vmap_grad`` and, for flows with ``forward_and_log_det`` / ``inverse_and_log_det``,
  ``change_of_variables``.
- Discrete models: ``shapes``, ``fit_decreases_loss``, ``normalized`` (by enumeration),
  ``sample_and_log_prob_agree``, ``sample_frequencies``, ``jit_vmap_grad``.

The individual ``check_*`` functions are importable from here, for tests with targets or
tolerances of your own.

Example:
    >>> import flowmc_like as fm
    >>> from flowmc_like.conformance import check_kernel
    >>> report = check_kernel(fm.RandomWalk(scale=0.5))
    >>> "detailed_balance" in report.passed
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import ArrayLike, PyTree, Space
from flowmc_like.conformance import _targets as targets
from flowmc_like.conformance._core import Checklist, ConformanceError, ConformanceReport
from flowmc_like.conformance.balance import (
    check_kernel_detailed_balance,
    check_kernel_reversible,
    check_kernel_reversible_discrete,
    detailed_balance_residual,
)
from flowmc_like.conformance.discrete import (
    check_discrete_model_autoregressive,
    check_discrete_model_invariant,
    check_discrete_model_normalized,
    check_discrete_model_sample_and_log_prob_agree,
    check_discrete_model_sample_frequencies,
    check_discrete_model_uniform_at_init,
    enumerate_states,
)
from flowmc_like.conformance.flows import (
    FitResult,
    check_model_change_of_variables,
    check_model_fit_decreases_loss,
    check_model_identity_at_init,
    check_model_jit_vmap_grad,
    check_model_normalized_2d,
    check_model_sample_and_log_prob_agree,
    check_model_shapes,
)
from flowmc_like.conformance.kernels import (
    check_kernel_deterministic,
    check_kernel_log_prob_call_sites,
    check_kernel_rejects_non_finite,
    check_kernel_small_step_acceptance,
    check_kernel_state_layout,
)
from flowmc_like.kernels.base import AbstractLocalKernel
from flowmc_like.models.base import AbstractGlobalModel

__all__ = [
    "KERNEL_CHECKS",
    "MODEL_CHECKS",
    "ConformanceError",
    "ConformanceReport",
    "FitResult",
    "check_discrete_model_autoregressive",
    "check_discrete_model_invariant",
    "check_discrete_model_normalized",
    "check_discrete_model_sample_and_log_prob_agree",
    "check_discrete_model_sample_frequencies",
    "check_discrete_model_uniform_at_init",
    "check_kernel",
    "check_kernel_deterministic",
    "check_kernel_detailed_balance",
    "check_kernel_log_prob_call_sites",
    "check_kernel_rejects_non_finite",
    "check_kernel_reversible",
    "check_kernel_reversible_discrete",
    "check_kernel_small_step_acceptance",
    "check_kernel_state_layout",
    "check_model",
    "check_model_change_of_variables",
    "check_model_fit_decreases_loss",
    "check_model_identity_at_init",
    "check_model_jit_vmap_grad",
    "check_model_normalized_2d",
    "check_model_sample_and_log_prob_agree",
    "check_model_shapes",
    "detailed_balance_residual",
    "enumerate_states",
]

KERNEL_CHECKS = (
    "state_layout",
    "log_prob_call_sites",
    "deterministic",
    "small_step_acceptance",
    "rejects_non_finite",
    "detailed_balance",
)
"""Names of the checks `check_kernel` can run, in order."""

MODEL_CHECKS = (
    "shapes",
    "identity_at_init",
    "fit_decreases_loss",
    "normalized",
    "sample_and_log_prob_agree",
    "sample_frequencies",
    "jit_vmap_grad",
    "change_of_variables",
)
"""Names of the checks `check_model` can run."""

N_CHAINS = 4096
"""Chains of every kernel run (one compiled driver per kernel)."""
N_STEPS = 20
"""Steps of every kernel run."""
N_EXAMPLES = 2048
"""Size of the default training data of `check_model`."""
N_FIT = 512
"""Examples used by the fit of `check_model` (full batch)."""


def _scaled_step(params: PyTree, factor: float) -> PyTree | None:
    """``params`` with its first field (the step size by convention) times ``factor``.

    None when ``params`` has no floating first field.
    """
    fields = getattr(params, "_fields", ())
    if not fields:
        return None
    first = getattr(params, fields[0])
    if not jnp.issubdtype(jnp.asarray(first).dtype, jnp.floating):
        return None
    return params._replace(**{fields[0]: first * factor})


def check_kernel(
    kernel: AbstractLocalKernel,
    *,
    params: PyTree = None,
    small_step_params: PyTree = None,
    skip: Iterable[str] = (),
) -> ConformanceReport:
    """Run every conformance check that applies to a local kernel.

    Continuous kernels run on a curved 3-D target (and three targets that are NaN or -inf
    beyond ``x0 = 1``), discrete kernels on a random pairwise model of ``n_categories``
    categories with about 100 states (and two targets that are NaN or -inf where site 0
    leaves category 0). Every run uses 4096 chains of 20 steps, so the kernel compiles once.
    The checks are in `KERNEL_CHECKS`; the module docstring says which apply to which space.

    Args:
        kernel: the kernel (a discrete one needs ``n_categories``, and no ``delta_log_prob``
            tied to a target of your own).
        params: kernel params for the checks (default ``kernel.init_params(n_dim)``).
        small_step_params: params with a vanishing step size. Default: ``params`` with its
            first field times ``1e-3`` (the library's kernels put the step size first); the
            check is skipped when that field is not a float.
        skip: names of checks not to run.

    Returns:
        The `ConformanceReport`.

    Raises:
        ConformanceError: naming the first failed check and what was measured.
        ValueError: for an unknown name in ``skip`` or a kernel the checks cannot drive.
    """
    checklist = Checklist("check_kernel", kernel, KERNEL_CHECKS, skip)
    if kernel.space is Space.DISCRETE:
        _check_discrete_kernel(kernel, params, checklist)
    else:
        _check_continuous_kernel(kernel, params, small_step_params, checklist)
    return checklist.report()


def _check_continuous_kernel(
    kernel: AbstractLocalKernel,
    params: PyTree,
    small_step_params: PyTree,
    checklist: Checklist,
) -> None:
    log_prob, banana = targets.continuous_log_prob, jnp.int32(targets.BANANA)
    params = kernel.init_params(targets.CONTINUOUS_N_DIM) if params is None else params
    draws = targets.banana_draws(0, N_CHAINS)
    start = draws[0]
    checklist.run(
        "state_layout",
        lambda: check_kernel_state_layout(kernel, targets.banana, start, params),
    )
    checklist.run(
        "log_prob_call_sites",
        lambda: check_kernel_log_prob_call_sites(kernel, targets.banana, start, params),
    )
    checklist.run(
        "deterministic",
        lambda: check_kernel_deterministic(kernel, log_prob, draws, params, N_STEPS, banana),
    )
    if small_step_params is None:
        small_step_params = _scaled_step(params, 1e-3)
    if small_step_params is None:
        checklist.not_applicable(
            "small_step_acceptance", "params have no float first field; pass small_step_params"
        )
    else:
        checklist.run(
            "small_step_acceptance",
            lambda: check_kernel_small_step_acceptance(
                kernel, log_prob, draws, small_step_params, 0.99, N_STEPS, banana
            ),
        )
    big_step_params = _scaled_step(params, 2.0)
    big_step_params = params if big_step_params is None else big_step_params
    near_the_edge = targets.non_finite_start(1, N_CHAINS)

    def rejects_non_finite() -> None:
        for which in targets.NON_FINITE_TARGETS.values():
            check_kernel_rejects_non_finite(
                kernel, log_prob, near_the_edge, big_step_params, N_STEPS, jnp.int32(which)
            )

    checklist.run("rejects_non_finite", rejects_non_finite)
    checklist.run(
        "detailed_balance",
        lambda: check_kernel_reversible(kernel, log_prob, draws, params, N_STEPS, banana),
    )


def _check_discrete_kernel(
    kernel: AbstractLocalKernel, params: PyTree, checklist: Checklist
) -> None:
    n_categories = getattr(kernel, "n_categories", None)
    if not isinstance(n_categories, int) or n_categories < 2:
        raise ValueError(
            f"check_kernel: a discrete kernel needs an int n_categories >= 2; got {n_categories!r}"
        )
    if getattr(kernel, "delta_log_prob", None) is not None:
        raise ValueError(
            "check_kernel: the kernel's delta_log_prob belongs to one target, and the checks "
            "run their own targets; check the kernel without it (the Sampler checks "
            "delta_log_prob against log_prob before compiling)"
        )
    system = targets.discrete_system(n_categories)
    params = kernel.init_params(system.n_dim) if params is None else params
    model, zeros = jnp.int32(0), np.zeros((N_CHAINS, system.n_dim), np.int32)
    rng = np.random.default_rng(0)
    draws = system.states[rng.choice(len(system.states), N_CHAINS, p=system.probabilities)]
    checklist.run(
        "state_layout",
        lambda: check_kernel_state_layout(
            kernel, lambda s: system.log_prob(s, model), zeros[0], params
        ),
    )
    checklist.not_applicable(
        "log_prob_call_sites", "a discrete sweep evaluates the target once per site"
    )
    checklist.run(
        "deterministic",
        lambda: check_kernel_deterministic(kernel, system.log_prob, draws, params, N_STEPS, model),
    )
    checklist.not_applicable("small_step_acceptance", "discrete kernels have no step size")

    def rejects_non_finite() -> None:
        for which in (1, 2):
            check_kernel_rejects_non_finite(
                kernel, system.log_prob, zeros, params, N_STEPS, jnp.int32(which)
            )

    checklist.run("rejects_non_finite", rejects_non_finite)
    checklist.run(
        "detailed_balance",
        lambda: check_kernel_reversible_discrete(
            kernel,
            system.log_prob,
            system.states,
            system.probabilities,
            params,
            N_CHAINS,
            N_STEPS,
            model,
        ),
    )


def check_model(
    model: AbstractGlobalModel,
    *,
    n_dim: int | None = None,
    data: ArrayLike | None = None,
    skip: Iterable[str] = (),
    seed: int = 0,
) -> ConformanceReport:
    """Run every conformance check that applies to a global model.

    The model is initialised, checked at initialisation, prepared on ``data`` and fitted to
    its first 512 examples by maximum likelihood (150 full-batch Adam steps); the remaining
    checks use the fitted params, so that they see a model away from its initial state. The
    checks are in `MODEL_CHECKS`; the module docstring says which apply to which space.

    Args:
        model: the model.
        n_dim: event dimension. Default: 2 for continuous models (the normalisation check
            integrates on a 2-D grid), and for discrete models the most sites (at most 6)
            with at most 100 states, so that every state can be enumerated.
        data: ``(n_examples, n_dim)`` training data. Default: 2048 draws with two modes and
            unequal scales (continuous), or of a Markov chain along the sites (discrete).
        skip: names of checks not to run.
        seed: seed of the default data and of the checks' keys.

    Returns:
        The `ConformanceReport`.

    Raises:
        ConformanceError: naming the first failed check and what was measured.
        ValueError: for an unknown name in ``skip``.
    """
    checklist = Checklist("check_model", model, MODEL_CHECKS, skip)
    is_discrete = model.space is Space.DISCRETE
    n_categories = int(model.n_categories) if is_discrete else 0  # type: ignore[attr-defined]
    if data is not None:
        data = jnp.asarray(data)
        if data.ndim != 2 or (n_dim is not None and data.shape[1] != n_dim):
            raise ValueError(
                f"check_model: data has shape {data.shape}; expected (n_examples, n_dim) = "
                f"(n, {'n_dim' if n_dim is None else n_dim})"
            )
        n_dim = data.shape[1]
    elif n_dim is None:
        n_dim = max(1, min(6, int(math.log(100.0) / math.log(n_categories)))) if is_discrete else 2
    if data is None and is_discrete:
        data = jnp.asarray(targets.discrete_data(n_dim, n_categories, seed, N_EXAMPLES))
    elif data is None:
        data = jnp.asarray(targets.continuous_data(n_dim, seed, N_EXAMPLES))
    key_init, key_check, key_sample = jax.random.split(jax.random.key(seed), 3)
    fresh = model.init(key_init, n_dim)
    checklist.run("shapes", lambda: check_model_shapes(model, fresh, key_check))
    if n_categories:
        _check_discrete_model(model, fresh, data, n_categories, key_sample, checklist)
    else:
        _check_continuous_model(model, fresh, data, key_check, key_sample, checklist)
    return checklist.report()


def _fitted(model: AbstractGlobalModel, fresh: Any, data: Any, checklist: Checklist) -> Any:
    """The model prepared on ``data`` and fitted to it (the check ``fit_decreases_loss``)."""
    prepared = model.prepare(fresh, data)
    fit = checklist.run(
        "fit_decreases_loss",
        lambda: check_model_fit_decreases_loss(
            model, prepared, data[:N_FIT], n_steps=150, learning_rate=1e-2, min_decrease=0.1
        ),
    )
    return prepared if fit is None else fit.params


def _check_continuous_model(
    model: AbstractGlobalModel,
    fresh: Any,
    data: Any,
    key_check: Any,
    key_sample: Any,
    checklist: Checklist,
) -> None:
    n_dim = data.shape[1]
    checklist.run(
        "identity_at_init",
        lambda: check_model_identity_at_init(model, key_check, n_dim=n_dim),
    )
    params = _fitted(model, fresh, data, checklist)
    checklist.run(
        "sample_and_log_prob_agree",
        lambda: check_model_sample_and_log_prob_agree(model, params, key_sample),
    )
    if n_dim == 2:
        mean, std = np.mean(np.asarray(data), 0), np.std(np.asarray(data), 0)
        lower, upper = mean - 10.0 * std, mean + 10.0 * std
        checklist.run(
            "normalized",
            lambda: check_model_normalized_2d(model, params, lower, upper, n_grid=300),
        )
    else:
        checklist.not_applicable("normalized", f"integrates on a 2-D grid; n_dim = {n_dim}")
    checklist.not_applicable("sample_frequencies", "for discrete models")
    checklist.run(
        "jit_vmap_grad", lambda: check_model_jit_vmap_grad(model, params, data[:64], key_check)
    )
    if callable(getattr(model, "forward_and_log_det", None)) and callable(
        getattr(model, "inverse_and_log_det", None)
    ):
        checklist.run(
            "change_of_variables",
            lambda: check_model_change_of_variables(
                model, params, data[:256], atol=2e-3, rtol=1e-4
            ),
        )
    else:
        checklist.not_applicable(
            "change_of_variables", "no forward_and_log_det / inverse_and_log_det"
        )


def _check_discrete_model(
    model: AbstractGlobalModel,
    fresh: Any,
    data: Any,
    n_categories: int,
    key_sample: Any,
    checklist: Checklist,
) -> None:
    n_dim = data.shape[1]
    checklist.not_applicable("identity_at_init", "discrete models need not start uniform")
    params = _fitted(model, fresh, data, checklist)
    checklist.run(
        "normalized",
        lambda: check_discrete_model_normalized(model, params, n_dim, n_categories),
    )
    checklist.run(
        "sample_and_log_prob_agree",
        lambda: check_discrete_model_sample_and_log_prob_agree(
            model, params, key_sample, n_categories, n_samples=4096
        ),
    )
    checklist.run(
        "sample_frequencies",
        lambda: check_discrete_model_sample_frequencies(
            model, params, key_sample, n_dim, n_categories
        ),
    )
    checklist.run(
        "jit_vmap_grad", lambda: check_model_jit_vmap_grad(model, params, data[:64], key_sample)
    )
    checklist.not_applicable("change_of_variables", "for continuous flows")
