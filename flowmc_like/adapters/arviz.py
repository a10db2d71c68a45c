"""The only module that imports arviz (lazily); supports arviz 0.x and 1.x."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from flowmc_like.result import SamplerResult

__all__ = ["arviz_major_version", "ess_bulk", "summarize", "to_inference_data"]


def _import_arviz() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def arviz_major_version() -> int:
    """The installed arviz major version."""
    return int(_import_arviz().__version__.split(".")[0])


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


def _named_variables(
    result: SamplerResult, flat: np.ndarray, var_names: list[str] | tuple[str, ...] | None
) -> dict[str, np.ndarray]:
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


def to_inference_data(result: SamplerResult, var_names: list[str] | tuple[str, ...] | None) -> Any:
    """Build ArviZ data (InferenceData on arviz 0.x, DataTree on 1.x) from a result.

    Args:
        result: a `SamplerResult`.
        var_names: see `SamplerResult.to_arviz`.

    Returns:
        The ArviZ object with ``posterior``, ``sample_stats`` and ``warmup_posterior``.
    """
    arviz = _import_arviz()
    posterior = _named_variables(result, result.flat_samples, var_names)
    warmup = _named_variables(result, result.flat_warmup_samples, var_names)
    sample_stats = {
        "lp": result.log_prob,
        "accepted": result.is_accepted,
        "is_global": result.is_global,
    }
    warmup_stats = {
        "lp": result.warmup_log_prob,
        "accepted": result.warmup_is_accepted,
        "is_global": result.warmup_is_global,
    }
    if int(arviz.__version__.split(".")[0]) >= 1:
        groups = {"posterior": posterior, "sample_stats": sample_stats}
        has_warmup = result.flat_warmup_samples.shape[1] > 0
        if has_warmup:
            groups["warmup_posterior"] = warmup
            groups["warmup_sample_stats"] = warmup_stats
        return arviz.from_dict(groups, save_warmup=has_warmup)
    has_warmup = result.flat_warmup_samples.shape[1] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return arviz.from_dict(
            posterior=posterior,
            sample_stats=sample_stats,
            warmup_posterior=warmup if has_warmup else None,
            warmup_sample_stats=warmup_stats if has_warmup else None,
            save_warmup=has_warmup,
        )


def summarize(data: Any, **kwargs: Any) -> Any:
    """``arviz.summary`` on data from `to_inference_data`."""
    arviz = _import_arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return arviz.summary(data, **kwargs)


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """ArviZ bulk ESS per dimension of draws ``(n_chains, n_draws, n_dim)`` -> ``(n_dim,)``."""
    arviz = _import_arviz()
    draws = np.asarray(draws, dtype=np.float64)
    return np.array(
        [float(arviz.ess(draws[..., i], method="bulk")) for i in range(draws.shape[-1])]
    )
