"""A PyMC model's observations: constant data and posterior predictive draws for ArviZ.

The pointwise log likelihood and the observed values are jaxified graphs built in
`flowmc_like.adapters.pymc_target`; this module holds what runs through PyMC itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["pymc_constant_names", "pymc_posterior_predictive"]


def _graph_ancestors(outputs: list[Any]) -> set[Any]:
    """Every variable the ``outputs`` depend on (pytensor's ``ancestors``)."""
    try:
        from pytensor.graph.traversal import ancestors
    except ImportError:  # pytensor < 2.31
        from pytensor.graph.basic import ancestors
    return set(ancestors(outputs))


def pymc_constant_names(model: Any) -> tuple[str, ...]:
    """The ``pm.Data`` containers that are constant data, as PyMC's ArviZ export has them.

    Every ``pm.Data`` except those only used as observed values (those are observed data):
    a container that is observed *and* enters the model (a shape, a covariate) stays.
    """
    observed_values = {id(value) for value in model.rvs_to_values.values()}
    generative = _graph_ancestors([*model.basic_RVs, *model.deterministics, *model.potentials])
    generative_ids = {id(var) for var in generative}
    return tuple(
        var.name
        for var in model.data_vars
        if id(var) not in observed_values or id(var) in generative_ids
    )


def _dims(name: str, value: np.ndarray, n_sample_dims: int) -> tuple[str, ...]:
    """``(*sample dims, name_dim_0, ...)``: dims of one array for an xarray Dataset."""
    sample_dims = ("chain", "draw")[:n_sample_dims]
    n_event = np.ndim(value) - n_sample_dims
    return (*sample_dims, *(f"{name}_dim_{i}" for i in range(n_event)))


def _model_coords(model: Any) -> dict[str, np.ndarray]:
    """``{dim: coordinate values}`` of the model's dims (``arange(length)`` without values).

    Handing these to PyMC marks the dims as unchanged, so nothing is redrawn for them.
    """
    coords = {}
    for dim, length in model.dim_lengths.items():
        values = model.coords.get(dim)
        if values is None:
            size = length.get_value() if hasattr(length, "get_value") else length.eval()
            values = np.arange(int(size))
        coords[dim] = np.asarray(values)
    return coords


@contextlib.contextmanager
def _data_set_to(model: Any, data: dict[str, np.ndarray]) -> Iterator[None]:
    """Within the block, the model's ``pm.Data`` hold ``data``; their values are restored after."""
    previous = {var.name: var.get_value() for var in model.data_vars}
    try:
        for var in model.data_vars:
            var.set_value(np.asarray(data[var.name]))
        yield
    finally:
        for var in model.data_vars:
            var.set_value(previous[var.name])


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Within the block, ``logger_name`` logs warnings and errors only."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def pymc_posterior_predictive(
    model: Any,
    names: tuple[str, ...],
    posterior: dict[str, np.ndarray],
    data: dict[str, np.ndarray],
    seed: np.random.Generator,
) -> dict[str, np.ndarray]:
    """``{observed variable: (n_chains, n_draws, *shape)}`` drawn anew at each posterior draw.

    ``pm.sample_posterior_predictive`` on an InferenceData of the ``posterior`` draws, with
    every ``pm.Data`` value (set to ``data`` for the call, then restored) as its constant
    data and the model's coordinates: PyMC then keeps the free variables at their draws and
    draws only the observed ``names``. Not thread-safe for one ``pm.Model`` (its ``pm.Data``
    values change during the call).

    Args:
        model: the ``pm.Model``.
        names: the observed variables to draw.
        posterior: ``{free variable: (n_chains, n_draws, *shape)}`` constrained draws.
        data: ``{pm.Data name: value}``, the data to draw on.
        seed: the random generator PyMC draws with.

    Returns:
        ``{name: (n_chains, n_draws, *shape)}`` numpy arrays.
    """
    import arviz as az
    import pymc as pm
    import xarray as xr

    n_chains, n_draws = next(iter(posterior.values())).shape[:2]
    draws = xr.Dataset(
        {name: (_dims(name, value, 2), np.asarray(value)) for name, value in posterior.items()},
        coords={"chain": np.arange(n_chains), "draw": np.arange(n_draws), **_model_coords(model)},
    )
    constant = xr.Dataset(
        {name: (_dims(name, value, 0), np.asarray(value)) for name, value in data.items()}
    )
    trace = az.InferenceData(posterior=draws, constant_data=constant)
    with _data_set_to(model, data), _quiet("pymc"):
        replicated = pm.sample_posterior_predictive(
            trace,
            model=model,
            var_names=list(names),
            random_seed=seed,
            progressbar=False,
            return_inferencedata=False,
        )
    return {name: np.asarray(replicated[name]) for name in names}
