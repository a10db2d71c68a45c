"""A PyMC model as a flowmc_like target: `from_pymc`."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, PRNGKey, PyTree
from flowmc_like.adapters.model_data import static_key
from flowmc_like.adapters.model_target import (
    ModelLogDensity,
    ModelTarget,
    cached_program,
    map_in_chunks,
)
from flowmc_like.adapters.pymc_observed import pymc_constant_names, pymc_posterior_predictive

__all__ = ["from_pymc"]


def from_pymc(model: Any) -> ModelTarget:
    """A PyMC model as a target on its unconstrained space, through PyMC's JAX export.

    Uses ``pymc.sampling.jax.get_jaxified_graph`` on the model's log density over its value
    variables (``model.logp()``: transformed ones with their Jacobians) and on
    ``model.unobserved_value_vars`` (constrained values and deterministics) for the map back.
    The ``pm.Data`` containers (``model.data_vars``) are replaced in these graphs by symbolic
    inputs (``pytensor.graph.replace.graph_replace``), so they are traced: ``target.data`` is
    ``{name: value}`` of their current values, ``target.with_data(name=value)`` swaps them.
    Everything else is baked in (see `flowmc_like.adapters.ppl`), observed values given as
    plain arrays included. Starting points are PyMC's initial point plus ``U(-1, 1)`` jitter in the
    unconstrained space, as PyMC's own samplers start.

    ``target.log_prior`` is ``model.logp(vars=model.free_RVs, jacobian=True)``, jaxified the
    same way: the free variables' log densities with their transforms' Jacobians; observed
    variables and ``pm.Potential`` terms count as likelihood.

    ``target.log_likelihood`` is ``model.logp(vars=model.observed_RVs, sum=False)`` jaxified
    the same way (one elementwise term per observed variable, ``pm.Potential`` left out);
    ``target.posterior_predictive`` runs ``pm.sample_posterior_predictive`` on the
    constrained draws with the ``pm.Data`` set to the data given (their values are restored
    afterwards, so do not use one ``pm.Model`` from two threads at once).

    PyMC's JAX export (pytensor) sets ``jax_enable_x64`` for the whole process to match
    pytensor's ``floatX`` (float64 by default), so runs after this call are in float64 unless
    you set ``floatX="float32"`` or turn the flag off again. Importing PyMC's JAX module also
    sets the environment variable ``XLA_FLAGS`` to ask for 100 CPU devices (in processes that
    initialise JAX afterwards); a `Sampler` on a CPU uses one device unless given ``devices``.

    Args:
        model: a ``pymc.Model``.

    Returns:
        A `ModelTarget`.

    Raises:
        ImportError: PyMC is not installed (``pip install "flowmc_like[pymc]"``).
        ValueError: the model has no free variable.
    """
    try:
        from pymc.sampling.jax import get_jaxified_graph
        from pytensor.graph.replace import graph_replace
    except ImportError as error:
        raise ImportError('from_pymc needs PyMC: pip install "flowmc_like[pymc]"') from error

    value_vars = list(model.value_vars)
    if not value_vars:
        raise ValueError("model has no free variable to sample")
    data_vars = list(model.data_vars)
    data_names = tuple(v.name for v in data_vars)
    data_inputs = [v.type(name=v.name) for v in data_vars]
    data = {v.name: np.array(v.get_value()) for v in data_vars}

    def jaxify(outputs: list[Any]) -> Callable[..., list[Array]]:
        """``(*values, *data) -> outputs``, the ``pm.Data`` containers as inputs."""
        outputs = graph_replace(
            outputs, dict(zip(data_vars, data_inputs, strict=True)), strict=False
        )
        return get_jaxified_graph(inputs=[*value_vars, *data_inputs], outputs=outputs)

    initial_point = model.initial_point()
    shapes = [tuple(np.shape(initial_point[v.name])) for v in value_vars]
    sizes = [math.prod(shape) for shape in shapes]
    offsets = np.cumsum([0, *sizes])
    n_dim = int(offsets[-1])
    log_prob_outputs = [model.logp()]
    prior_outputs = [model.logp(vars=model.free_RVs, jacobian=True)]
    outputs = list(model.unobserved_value_vars)
    logp_graph, prior_graph = jaxify(log_prob_outputs), jaxify(prior_outputs)
    constrained_graph = jaxify(outputs)
    output_names = [v.name for v in outputs]
    observed_names = tuple(rv.name for rv in model.observed_RVs)
    pointwise_graph = jaxify(model.logp(vars=model.observed_RVs, sum=False))
    observed_graph = jaxify([model.rvs_to_values[rv] for rv in model.observed_RVs])
    free_names = tuple(rv.name for rv in model.free_RVs)
    constant_names = pymc_constant_names(model)
    flat_initial = np.concatenate([np.ravel(initial_point[v.name]) for v in value_vars]).astype(
        np.result_type(float)
    )

    def inputs(x: Array, data: PyTree) -> list[Any]:
        values = [x[offsets[i] : offsets[i + 1]].reshape(shape) for i, shape in enumerate(shapes)]
        return [*values, *(data[name] for name in data_names)]

    def log_density(x: Array, data: PyTree) -> Array:
        return jnp.asarray(logp_graph(*inputs(x, data))[0]).reshape(())

    def constrain_fn(x: Array, data: PyTree) -> dict[str, Array]:
        return dict(zip(output_names, constrained_graph(*inputs(x, data)), strict=True))

    def log_prior(x: Array, data: PyTree) -> Array:
        return jnp.asarray(prior_graph(*inputs(x, data))[0]).reshape(())

    def log_likelihood(x: Array, data: PyTree) -> dict[str, Array]:
        return dict(zip(observed_names, pointwise_graph(*inputs(x, data)), strict=True))

    def observed(data: PyTree) -> dict[str, np.ndarray]:
        values = observed_graph(*inputs(jnp.zeros(n_dim, flat_initial.dtype), data))
        return {name: np.asarray(value) for name, value in zip(observed_names, values, strict=True)}

    def constant_data(data: PyTree) -> dict[str, np.ndarray] | None:
        return {name: np.asarray(data[name]) for name in constant_names} or None

    def initial_positions(key: PRNGKey, n_chains: int, data: PyTree) -> Array:
        del data  # PyMC's initial point is taken once
        jitter = jax.random.uniform(key, (n_chains, n_dim), minval=-1.0, maxval=1.0)
        return jnp.asarray(flat_initial) + jitter.astype(flat_initial.dtype)

    def rebind(current: PyTree, *args: Any, **values: Any) -> PyTree:
        return _pymc_rebind(current, args, values)

    program_key = (
        "pymc",
        static_key(model),
        _pymc_structure_key(model, shapes),
        _pymc_baked_shared_key(
            [*log_prob_outputs, *prior_outputs, *outputs], frozenset(map(id, data_vars))
        ),
        tuple((name, np.shape(data[name]), data[name].dtype.str) for name in data_names),
    )

    def posterior_predictive(key: Array, draws: np.ndarray, data: PyTree) -> dict[str, np.ndarray]:
        if not observed_names:
            return {}
        values = map_in_chunks(cached_program(program_key, constrain_fn), draws, data)
        seed = np.random.default_rng(np.asarray(jax.random.randint(key, (4,), 0, 2**31 - 1)))
        posterior = {name: values[name] for name in free_names}
        return pymc_posterior_predictive(model, observed_names, posterior, data, seed)

    has_observed = bool(observed_names)
    density = ModelLogDensity(
        log_density,
        constrain_fn,
        n_dim,
        log_prior,
        data,
        program_key,
        None,  # no map back from constrained values
        log_likelihood if has_observed else None,
        observed if has_observed else None,
        posterior_predictive,
        constant_data,
    )
    return ModelTarget(
        log_prob=density,
        n_dim=n_dim,
        names=tuple(v.name for v in value_vars),
        initial_positions=initial_positions,
        rebind=rebind,
    )


def _pymc_structure_key(model: Any, shapes: list[tuple[int, ...]]) -> Hashable:
    """The model's variables (by identity, as the model holds them) and value shapes.

    A ``pm.Model`` can gain variables after a first `from_pymc`; such a model is another
    program.
    """
    named = tuple((name, id(var)) for name, var in model.named_vars.items())
    return (named, tuple(id(v) for v in model.value_vars), tuple(shapes))


def _pymc_baked_shared_key(outputs: list[Any], data_ids: frozenset[int]) -> Hashable:
    """The values of the graphs' shared variables other than ``pm.Data`` (baked in as constants).

    Each as ``(name, shape, dtype, digest of its bytes)``: dims' lengths and any other
    ``pytensor.shared`` the model reads.
    """
    from pytensor.compile.sharedvalue import SharedVariable

    try:
        from pytensor.graph.traversal import graph_inputs
    except ImportError:  # pytensor < 2.31
        from pytensor.graph.basic import graph_inputs

    key = []
    for var in graph_inputs(outputs):
        if isinstance(var, SharedVariable) and id(var) not in data_ids:
            value = np.ascontiguousarray(var.get_value(borrow=True))
            digest = hashlib.blake2b(value.tobytes(), digest_size=16).hexdigest()
            key.append((var.name, id(var), value.shape, value.dtype.str, digest))
    return tuple(key)


def _pymc_rebind(
    current: dict[str, np.ndarray], args: tuple[Any, ...], values: dict[str, Any]
) -> dict[str, np.ndarray]:
    """``current`` with some ``pm.Data`` values replaced, each of the same shape and dtype.

    Raises:
        TypeError: positional arguments (``pm.Data`` are given by name).
        ValueError: an unknown name, another shape, or a dtype that does not cast safely.
    """
    again = "that compiles a new program; call pm.set_data on the model and fm.from_pymc again"
    if args:
        raise TypeError(
            "ModelTarget.with_data: a PyMC target takes its pm.Data values by name, e.g. "
            f"with_data({next(iter(current), 'x')}=...); got {len(args)} positional argument(s)"
        )
    unknown = sorted(set(values) - set(current))
    if unknown:
        raise ValueError(
            f"ModelTarget.with_data: the model has no pm.Data named {unknown}; its pm.Data are "
            f"{sorted(current)}"
        )
    new = dict(current)
    for name, value in values.items():
        old = current[name]
        value = np.asarray(value)
        if value.shape != old.shape:
            raise ValueError(
                f"ModelTarget.with_data: pm.Data {name!r} has shape {value.shape} instead of "
                f"{old.shape}; {again}"
            )
        if not np.can_cast(value.dtype, old.dtype, casting="same_kind"):
            raise ValueError(
                f"ModelTarget.with_data: pm.Data {name!r} has dtype {value.dtype}, which does "
                f"not cast to its dtype {old.dtype}; {again}"
            )
        new[name] = value.astype(old.dtype)
    return new
