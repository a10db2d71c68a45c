"""The ArviZ groups of a `flowmc_like.SamplerResult`, built from its arrays and its target.

`SamplerResult.to_arviz` hands these to `flowmc_like.exporters.arviz.to_inference_data`:
named draws, the per-draw statistics a run reports, and the groups about observations
(log likelihood, observed and constant data, posterior predictive).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from flowmc_like.exporters.pointwise import as_named, evaluate_at_draws

__all__ = ["DRAW_STATS", "named_draws", "observation_groups", "reported_stats"]

DRAW_STATS = {  # SamplerResult.draw_stats name -> the Trace field it stacks
    "acceptance_rate": "acceptance_prob",
    "step_size": "step_size",
    "diverging": "diverging",
    "energy": "energy",
    "log_q": "log_q",
}
_ONLY_WHERE_REPORTED = ("energy", "log_q")


def reported_stats(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``stats`` without ``energy`` / ``log_q`` when the run reports none of them."""
    return {
        name: values
        for name, values in stats.items()
        if name not in _ONLY_WHERE_REPORTED or np.isfinite(values).any()
    }


def observation_groups(
    result: Any,
    log_likelihood: Callable[..., Any] | dict[str, Any] | None,
    observed_data: Any,
    constant_data: dict[str, Any] | None,
    posterior_predictive: dict[str, Any] | None,
) -> dict[str, dict[str, np.ndarray] | None]:
    """The ArviZ groups about observations: given ones, else what the target knows.

    A `flowmc_like.from_numpyro` / `from_pymc` target knows its per-observation log
    likelihood, observed data and (PyMC) constant data.
    """
    owner = "SamplerResult.to_arviz"
    density = result.log_density
    data = result.target_data
    is_model = getattr(density, "log_likelihood_fn", None) is not None
    observed = None if observed_data is None else as_named(observed_data, "y", owner)
    if callable(log_likelihood):
        if result.constrain is not None:
            raise ValueError(
                f"{owner}: log_likelihood is computed from the model for a PPL target; pass "
                "a dict of arrays to replace it"
            )
        default = next(iter(observed)) if observed is not None and len(observed) == 1 else "y"
        if result.n_draws:
            log_likelihood = evaluate_at_draws(
                log_likelihood, result.position_spec, result.flat_samples, data,
                default_name=default, owner=owner,
            )  # fmt: skip
        else:
            log_likelihood = None
    elif log_likelihood is not None:
        log_likelihood = as_named(log_likelihood, "y", owner)
    elif is_model and result.n_draws:
        log_likelihood = density.log_likelihood(result.flat_samples, data)
    if observed is None and is_model:
        observed = density.observed_data(data)
    if constant_data is None and hasattr(density, "constant_data"):
        constant_data = density.constant_data(data)
    return {
        "log_likelihood": log_likelihood or None,
        "observed_data": observed or None,
        "constant_data": None if not constant_data else as_named(constant_data, "x", owner),
        "posterior_predictive": None
        if not posterior_predictive
        else as_named(posterior_predictive, "y", owner),
    }


def _subset(
    named: dict[str, np.ndarray], var_names: list[str] | tuple[str, ...] | None, where: str
) -> dict[str, np.ndarray]:
    """``named`` restricted to ``var_names`` (all of it for None); unknown names raise."""
    if var_names is None:
        return named
    unknown = [name for name in var_names if name not in named]
    if unknown:
        raise ValueError(f"var_names {unknown} are not in the {where}; known: {list(named)}")
    return {name: named[name] for name in var_names}


def named_draws(
    result: Any, flat: np.ndarray, var_names: list[str] | tuple[str, ...] | None
) -> dict[str, np.ndarray]:
    """Flat draws ``(n_chains, n_draws, n_dim)`` as ``{name: draws}`` for ArviZ."""
    spec = result.position_spec
    if result.constrain is not None:  # a PPL model: its own names, constrained values
        return _subset(result.constrain(flat), var_names, "model")
    if not spec.is_pytree:
        if var_names is None:
            return {"x": flat}
        names = list(var_names)
        if len(names) != spec.n_dim or len(set(names)) != len(names):
            raise ValueError(
                f"var_names must hold {spec.n_dim} distinct names, one per dimension; got {names}"
            )
        return {name: flat[..., i] for i, name in enumerate(names)}
    return _subset(spec.split_leaves(flat), var_names, "positions")
