"""A numpyro model (with its data) as a flowmc_like target: `from_numpyro`."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, PRNGKey, PyTree
from flowmc_like._validation import check_callable
from flowmc_like.adapters.model_data import ArgumentSplit, split_arguments, static_key
from flowmc_like.adapters.model_target import (
    ModelLogDensity,
    ModelTarget,
    cached_program,
    map_in_chunks,
)
from flowmc_like.adapters.numpyro_inverse import unconstrain_numpyro
from flowmc_like.adapters.numpyro_observed import (
    numpyro_observed_data,
    numpyro_pointwise_log_likelihood,
    numpyro_posterior_predictive,
    numpyro_replicated_sites,
)

__all__ = ["from_numpyro"]


def _raw_key(key: PRNGKey) -> Array:
    """A ``uint32`` key array (numpy-style PRNGKey) from a typed or raw JAX key."""
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jnp.asarray(key)


def from_numpyro(model: Callable[..., Any], *model_args: Any, **model_kwargs: Any) -> ModelTarget:
    """A numpyro model (with its data) as a target on its unconstrained space.

    Uses ``numpyro.infer.util.initialize_model`` with ``dynamic_args=True``: its
    ``potential_fn(*args, **kwargs)`` is ``numpyro.infer.util.potential_energy`` of the model
    on those arguments (minus the log density, Jacobians included) and its
    ``postprocess_fn(*args, **kwargs)`` the map back to constrained values
    (``numpyro.infer.util.constrain_fn`` with the deterministic sites, when the model has
    any or a support depends on its inputs). Both are called with the arguments rebuilt
    from the static ones and the data, so the data are traced (`flowmc_like.adapters.ppl`
    says what is traced and what is baked in). Latent sites are flattened in numpyro's
    order (sorted by name), with ``jax.flatten_util.ravel_pytree``.

    ``target.log_prior`` is the same potential of the model with its observed sample sites
    hidden (``numpyro.handlers.block``): the same latent sites, transforms and flat layout,
    the log-Jacobian kept. Observed means observed in the model's trace with these
    arguments: ``obs=`` sites (in plates or scans), ``numpyro.factor`` terms and sites fixed
    by ``numpyro.handlers.condition`` all count as likelihood.

    ``target.log_likelihood`` is ``numpyro.infer.util.log_likelihood`` at each draw, and
    ``target.posterior_predictive`` draws every observed site but the factors anew with
    ``numpyro.infer.Predictive`` (see `flowmc_like.adapters.numpyro_observed`);
    ``target.constant_data()`` is None.

    Args:
        model: a numpyro model function.
        *model_args: positional arguments of ``model`` (e.g. the observed data).
        **model_kwargs: keyword arguments of ``model``.

    Returns:
        A `ModelTarget`; ``target.data`` is ``(model_args, model_kwargs)`` with the static
        leaves replaced by None.

    Raises:
        ImportError: numpyro is not installed.
        ValueError: the model has no latent continuous site.

    Example:
        >>> import numpyro, numpyro.distributions as dist
        >>> def model(y):
        ...     scale = numpyro.sample("scale", dist.HalfNormal(1.0))
        ...     numpyro.sample("y", dist.Normal(0.0, scale), obs=y)
        >>> target = from_numpyro(model, np.array([0.5, -1.0]))
        >>> target.n_dim, target.names, target.data
        (1, ('scale',), ((array([ 0.5, -1. ]),), {}))
        >>> target.constrain(jnp.zeros((2, 1)))["scale"].tolist()  # scale = exp(u)
        [1.0, 1.0]
        >>> other = target.with_data(np.array([2.0, 0.1]))
        >>> other.log_prob.program_key == target.log_prob.program_key  # one program, other data
        True
        >>> draws = np.zeros((3, 4, 1), np.float32)  # (n_chains, n_draws, n_dim)
        >>> target.posterior_predictive(jax.random.key(0), draws)["y"].shape  # new y per draw
        (3, 4, 2)
    """
    check_callable("model", model, owner="from_numpyro")
    try:
        from numpyro.infer.util import initialize_model
    except ImportError as error:
        raise ImportError("from_numpyro needs numpyro: pip install numpyro") from error
    from jax.flatten_util import ravel_pytree

    def initialize(raw_key: Array, of: Callable[..., Any], dynamic: bool, *args, **kwargs) -> Any:
        return initialize_model(
            raw_key, of, model_args=args, model_kwargs=kwargs or None, dynamic_args=dynamic
        )

    info = initialize(jax.random.PRNGKey(0), model, True, *model_args, **model_kwargs)
    example = info.param_info.z
    if not example:
        raise ValueError("model has no latent site to sample (every site is observed)")
    flat_example, unravel = ravel_pytree(example)
    prior_model = _numpyro_prior_model(model, _numpyro_observed_sites(info.model_trace))
    prior_info = initialize(jax.random.PRNGKey(0), prior_model, True, *model_args, **model_kwargs)
    functions = _NumpyroFunctions(
        model,
        info.potential_fn,
        info.postprocess_fn,
        prior_info.potential_fn,
        unravel,
        tuple(sorted(example)),
        numpyro_replicated_sites(info.model_trace),
    )
    n_dim = int(flat_example.shape[0])
    split, data = split_arguments(model_args, model_kwargs)
    density = functions.density(split, data, n_dim)
    error = _trace_error(density, flat_example) if jax.tree.leaves(data) else None
    if error is not None:  # the model needs concrete argument values: bake them in
        split, data = split_arguments(model_args, model_kwargs, traced=False)
        density = functions.density(split, data, n_dim)
        if _trace_error(density, flat_example) is None:
            warnings.warn(
                "from_numpyro: the model could not be traced with its array arguments as "
                f"inputs ({type(error).__name__}: {str(error).splitlines()[0]}); they are "
                "baked into the compiled programs instead, so new data compile new programs. "
                "A model that needs an argument's value while it is traced (int(y.max()), "
                "numpy on an argument) should take that value as a Python int.",
                UserWarning,
                stacklevel=2,
            )

    def initial_positions(key: PRNGKey, n_chains: int, data: PyTree) -> Array:
        args, kwargs = split.arguments(data)
        keys = _raw_key(jax.random.split(key, n_chains))
        z = initialize(keys, model, False, *args, **kwargs).param_info.z
        return jax.vmap(lambda tree: ravel_pytree(tree)[0])(z)

    def rebind(data: PyTree, *args: Any, **kwargs: Any) -> PyTree:
        del data  # the arguments are given whole
        new_split, new_data = split_arguments(args, kwargs, traced=split.traced)
        split.check_same_program(new_split, "ModelTarget.with_data", "fm.from_numpyro")
        return new_data

    return ModelTarget(
        log_prob=density,
        n_dim=n_dim,
        names=tuple(sorted(example)),
        initial_positions=initial_positions,
        rebind=rebind,
    )


@dataclasses.dataclass(frozen=True)
class _NumpyroFunctions:
    """numpyro's functions of a model's arguments (``initialize_model(dynamic_args=True)``).

    Attributes:
        model: the model function.
        potential_fn: ``(*args, **kwargs) -> (params -> potential energy)``.
        postprocess_fn: ``(*args, **kwargs) -> (params -> {name: constrained value})``.
        prior_potential_fn: ``potential_fn`` of the model with its observed sites hidden.
        unravel: flat ``(n_dim,)`` position -> the unconstrained latent dict.
        names: the latent sites, sorted (the flat layout's order).
        replicated: the observed sites `ModelLogDensity.posterior_predictive` draws anew.
    """

    model: Callable[..., Any]
    potential_fn: Callable[..., Callable[[Any], Array]]
    postprocess_fn: Callable[..., Callable[[Any], dict[str, Array]]]
    prior_potential_fn: Callable[..., Callable[[Any], Array]]
    unravel: Callable[[Array], Any]
    names: tuple[str, ...]
    replicated: tuple[str, ...]

    def density(self, split: ArgumentSplit, data: PyTree, n_dim: int) -> ModelLogDensity:
        """The `ModelLogDensity` of the model on arguments rebuilt from ``split`` and data."""

        def log_density(x: Array, data: PyTree) -> Array:
            args, kwargs = split.arguments(data)
            return -self.potential_fn(*args, **kwargs)(self.unravel(x))

        def constrain_fn(x: Array, data: PyTree) -> dict[str, Array]:
            args, kwargs = split.arguments(data)
            return self.postprocess_fn(*args, **kwargs)(self.unravel(x))

        def log_prior(x: Array, data: PyTree) -> Array:
            args, kwargs = split.arguments(data)
            return -self.prior_potential_fn(*args, **kwargs)(self.unravel(x))

        def unconstrain(values: dict[str, Array], data: PyTree) -> tuple[Array, Array]:
            args, kwargs = split.arguments(data)
            return unconstrain_numpyro(self.model, self.names, args, kwargs, values)

        def log_likelihood(x: Array, data: PyTree) -> dict[str, Array]:
            args, kwargs = split.arguments(data)
            values = self.postprocess_fn(*args, **kwargs)(self.unravel(x))
            return numpyro_pointwise_log_likelihood(self.model, self.names, args, kwargs, values)

        def observed(data: PyTree) -> dict[str, np.ndarray]:
            args, kwargs = split.arguments(data)
            return numpyro_observed_data(self.model, args, kwargs)

        def predict_chunk(rows: Array, data: PyTree, key: Array) -> dict[str, Array]:
            args, kwargs = split.arguments(data)
            constrain = self.postprocess_fn(*args, **kwargs)
            latent = jax.vmap(lambda x: _select(constrain(self.unravel(x)), self.names))(rows)
            return numpyro_posterior_predictive(
                self.model, self.replicated, key, latent, args, kwargs
            )

        program_key = ("numpyro", static_key(self.model), split.key)

        def posterior_predictive(
            key: Array, draws: np.ndarray, data: PyTree
        ) -> dict[str, np.ndarray]:
            if not self.replicated:
                return {}
            program_id = ("posterior_predictive", program_key)
            program = cached_program(program_id, predict_chunk, jax.jit)
            return map_in_chunks(program, draws, data, key)

        return ModelLogDensity(
            log_density,
            constrain_fn,
            n_dim,
            log_prior,
            data,
            program_key,
            unconstrain,
            log_likelihood,
            observed,
            posterior_predictive,
            None,  # constant data: not known (see ModelLogDensity.constant_data)
        )


def _select(values: dict[str, Array], names: tuple[str, ...]) -> dict[str, Array]:
    """``values`` restricted to ``names`` (the latent sites, deterministic sites left out)."""
    return {name: values[name] for name in names}


def _trace_error(density: ModelLogDensity, x: Array) -> Exception | None:
    """The error of tracing ``density``'s functions on ``x`` and its data, or None."""
    data = density.data
    try:
        jax.eval_shape(density.log_density, x, data)
        jax.eval_shape(density.constrain_fn, x, data)
        if density.log_prior_fn is not None:
            jax.eval_shape(density.log_prior_fn, x, data)
    except Exception as error:  # any failure: the caller tries with the data baked in
        return error
    return None


def _numpyro_observed_sites(model_trace: dict[str, Any]) -> frozenset[str]:
    """Names of the observed sample sites (``obs=``, ``numpyro.factor``) of a model trace."""
    return frozenset(
        name
        for name, site in model_trace.items()
        if site["type"] == "sample" and site["is_observed"]
    )


def _numpyro_prior_model(model: Callable[..., Any], observed: frozenset[str]) -> Callable[..., Any]:
    """``model`` with the ``observed`` sites hidden: its log joint is the prior alone.

    ``numpyro.handlers.block`` hides the sites from the trace that numpyro's log density
    sums over; the latent sites, their order and their transforms are unchanged. The sites
    are hidden by name, not by being observed: numpyro adds each transform's log-Jacobian
    as an observed ``numpyro.factor`` site (``_<name>_log_det``) while the model runs, and
    that one must stay in.
    """
    from numpyro.handlers import block

    return block(model, hide=sorted(observed))
