"""Targets from probabilistic programming languages: numpyro and PyMC models.

A model's latent variables live in a constrained space (a scale is positive, a probability
vector sums to one). Samplers work on the *unconstrained* space: every variable is mapped to
``R^k`` by a bijection, and the log density gains that map's log-Jacobian. The PPLs provide
both, and the map back; this module wraps them as a `ModelTarget`:

- ``target.log_prob``: a flat unconstrained position ``(n_dim,)`` -> scalar log density, ready
  for `flowmc_like.Sampler`. It carries the map back, so a `SamplerResult` of a run on it
  exports the model's own variable names and constrained values to ArviZ.
- ``target.n_dim`` and ``target.initial_position(key, n_chains)``: starting points from the
  PPL's own initialisation (numpyro's ``init_to_uniform``: uniform in ``(-2, 2)`` in the
  unconstrained space; PyMC's initial point jittered by ``U(-1, 1)``).
- ``target.log_prior``: the model's prior alone on the same unconstrained position (the
  log-Jacobian included, every observed site's and factor's term left out), so
  ``log_prob - log_prior`` is the log likelihood. Tempering (``Sampler(n_temperatures=...)``)
  uses it to temper the likelihood only; the hottest replica then samples the prior.
- ``target.constrain(flat)``: unconstrained draws ``(..., n_dim)`` -> ``{name: (..., *shape)}``
  of constrained values, deterministic sites included.

numpyro and PyMC are optional: each is imported only by its ``from_*`` function.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, PRNGKey
from flowmc_like._validation import check_callable, check_int

__all__ = ["ModelLogDensity", "ModelTarget", "from_numpyro", "from_pymc"]


CONSTRAIN_CHUNK = 1024
"""Positions mapped per compiled call of `ModelLogDensity.constrain` (one compile per model)."""


def _constrain_batched(
    constrain_chunk: Callable[[Array], dict[str, Array]], flat: Any
) -> dict[str, np.ndarray]:
    """Apply a chunk map to every position of ``flat`` ``(..., n_dim)``.

    ``constrain_chunk`` is jitted on ``(CONSTRAIN_CHUNK, n_dim)``; the last chunk is padded, so
    the map compiles once whatever the number of draws.
    """
    flat = np.asarray(flat)
    batch_shape, n_dim = flat.shape[:-1], flat.shape[-1]
    rows = flat.reshape((-1, n_dim))
    n_rows = rows.shape[0]
    n_padded = max(-(-n_rows // CONSTRAIN_CHUNK), 1) * CONSTRAIN_CHUNK
    padded = np.zeros((n_padded, n_dim), rows.dtype)
    padded[:n_rows] = rows
    chunks = [
        jax.device_get(constrain_chunk(padded[start : start + CONSTRAIN_CHUNK]))
        for start in range(0, n_padded, CONSTRAIN_CHUNK)
    ]
    return {
        name: np.concatenate([chunk[name] for chunk in chunks])[:n_rows].reshape(
            batch_shape + tuple(chunks[0][name].shape[1:])
        )
        for name in chunks[0]
    }


@dataclasses.dataclass(frozen=True, eq=False)
class ModelLogDensity:
    """A PPL model's unconstrained log density, callable on one flat position.

    Attributes:
        log_density: ``(n_dim,)`` unconstrained position -> scalar log density (the model's
            log joint with the observed data, plus the log-Jacobian of the map to the
            unconstrained space).
        constrain_one: ``(n_dim,)`` -> ``{name: constrained value}`` for one position.
        n_dim: length of the flat position.
        log_prior: ``(n_dim,)`` -> the prior's log density on the same unconstrained
            position (Jacobian included, observed sites and factors left out), or None.
    """

    log_density: Callable[[Array], Array]
    constrain_one: Callable[[Array], dict[str, Array]]
    n_dim: int
    log_prior: Callable[[Array], Array] | None = None

    def __call__(self, x: Array) -> Array:
        """Log density at one unconstrained position ``x`` ``(n_dim,)``; shape ``()``."""
        return self.log_density(x)

    @functools.cached_property
    def _constrain_chunk(self) -> Callable[[Array], dict[str, Array]]:
        return jax.jit(jax.vmap(self.constrain_one))

    def constrain(self, flat: Any) -> dict[str, np.ndarray]:
        """Constrained, named values of unconstrained positions ``(..., n_dim)``."""
        return _constrain_batched(self._constrain_chunk, flat)


@dataclasses.dataclass(frozen=True, eq=False)
class ModelTarget:
    """A PPL model as a flowmc_like target (see the module docstring).

    Attributes:
        log_prob: the `ModelLogDensity` to pass to `flowmc_like.Sampler`.
        n_dim: length of the flat unconstrained position.
        names: the model's latent variable names, in the flat layout's order.
        initial_positions: ``(key, n_chains) -> (n_chains, n_dim)`` unconstrained starts.
    """

    log_prob: ModelLogDensity
    n_dim: int
    names: tuple[str, ...]
    initial_positions: Callable[[PRNGKey, int], Array]

    @property
    def log_prior(self) -> Callable[[Array], Array] | None:
        """The model's log prior on the flat unconstrained position (see the module)."""
        return self.log_prob.log_prior

    def initial_position(self, key: PRNGKey, n_chains: int) -> Array:
        """``(n_chains, n_dim)`` unconstrained starting points from the PPL's initialisation."""
        n_chains = check_int("n_chains", n_chains, owner="ModelTarget.initial_position")
        positions = self.initial_positions(key, n_chains)
        return jnp.asarray(positions).reshape((n_chains, self.n_dim))

    def constrain(self, flat: Any) -> dict[str, np.ndarray]:
        """Constrained, named values of unconstrained positions ``(..., n_dim)``."""
        return self.log_prob.constrain(flat)


def _raw_key(key: PRNGKey) -> Array:
    """A ``uint32`` key array (numpy-style PRNGKey) from a typed or raw JAX key."""
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jnp.asarray(key)


def from_numpyro(model: Callable[..., Any], *model_args: Any, **model_kwargs: Any) -> ModelTarget:
    """A numpyro model (with its data) as a target on its unconstrained space.

    Uses ``numpyro.infer.util.initialize_model``: its ``potential_fn`` (minus the log
    density, Jacobians included) and its ``postprocess_fn`` (the map back to constrained
    values, deterministic sites included). Latent sites are flattened in numpyro's order
    (sorted by name).

    ``target.log_prior`` is the ``potential_fn`` of the same model with its observed sample
    sites hidden (``numpyro.handlers.block``): the same latent sites, transforms and flat
    layout, the log-Jacobian kept. Observed means observed in the model's trace with these
    arguments: ``obs=`` sites (in plates or scans), ``numpyro.factor`` terms and sites fixed
    by ``numpyro.handlers.condition`` all count as likelihood.

    Args:
        model: a numpyro model function.
        *model_args: positional arguments of ``model`` (e.g. the observed data).
        **model_kwargs: keyword arguments of ``model``.

    Returns:
        A `ModelTarget`.

    Raises:
        ImportError: numpyro is not installed.
        ValueError: the model has no latent continuous site.

    Example:
        >>> import numpyro, numpyro.distributions as dist
        >>> def model():
        ...     numpyro.sample("scale", dist.HalfNormal(1.0))
        >>> target = from_numpyro(model)
        >>> target.n_dim, target.names
        (1, ('scale',))
        >>> target.constrain(jnp.zeros((2, 1)))["scale"].tolist()  # scale = exp(u)
        [1.0, 1.0]
    """
    check_callable("model", model, owner="from_numpyro")
    try:
        from numpyro.infer.util import initialize_model
    except ImportError as error:
        raise ImportError("from_numpyro needs numpyro: pip install numpyro") from error
    from jax.flatten_util import ravel_pytree

    def initialize(raw_key: Array, of: Callable[..., Any] = model) -> Any:
        return initialize_model(
            raw_key, of, model_args=model_args, model_kwargs=model_kwargs or None
        )

    info = initialize(jax.random.PRNGKey(0))
    example = info.param_info.z
    if not example:
        raise ValueError("model has no latent site to sample (every site is observed)")
    flat_example, unravel = ravel_pytree(example)
    potential_fn, postprocess_fn = info.potential_fn, info.postprocess_fn

    def log_density(x: Array) -> Array:
        return -potential_fn(unravel(x))

    def constrain_one(x: Array) -> dict[str, Array]:
        return postprocess_fn(unravel(x))

    prior_model = _numpyro_prior_model(model, _numpyro_observed_sites(info.model_trace))
    prior_potential_fn = initialize(jax.random.PRNGKey(0), prior_model).potential_fn

    def log_prior(x: Array) -> Array:
        return -prior_potential_fn(unravel(x))

    def initial_positions(key: PRNGKey, n_chains: int) -> Array:
        keys = _raw_key(jax.random.split(key, n_chains))
        z = initialize(keys).param_info.z
        return jax.vmap(lambda tree: ravel_pytree(tree)[0])(z)

    n_dim = int(flat_example.shape[0])
    return ModelTarget(
        log_prob=ModelLogDensity(log_density, constrain_one, n_dim, log_prior),
        n_dim=n_dim,
        names=tuple(sorted(example)),
        initial_positions=initial_positions,
    )


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


def from_pymc(model: Any) -> ModelTarget:
    """A PyMC model as a target on its unconstrained space, through PyMC's JAX export.

    Uses ``pymc.sampling.jax.get_jaxified_logp`` (the model's log density over its value
    variables, transformed ones with their Jacobians) and ``get_jaxified_graph`` from the
    value variables to ``model.unobserved_value_vars`` (constrained values and
    deterministics) for the map back. Starting points are PyMC's initial point plus
    ``U(-1, 1)`` jitter in the unconstrained space, as PyMC's own samplers start.

    ``target.log_prior`` is ``model.logp(vars=model.free_RVs, jacobian=True)``, jaxified the
    same way: the free variables' log densities with their transforms' Jacobians; observed
    variables and ``pm.Potential`` terms count as likelihood.

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
    """
    try:
        from pymc.sampling.jax import get_jaxified_graph, get_jaxified_logp
    except ImportError as error:
        raise ImportError('from_pymc needs PyMC: pip install "flowmc_like[pymc]"') from error

    value_vars = list(model.value_vars)
    if not value_vars:
        raise ValueError("model has no free variable to sample")
    initial_point = model.initial_point()
    shapes = [tuple(np.shape(initial_point[v.name])) for v in value_vars]
    sizes = [math.prod(shape) for shape in shapes]
    offsets = np.cumsum([0, *sizes])
    n_dim = int(offsets[-1])
    logp = get_jaxified_logp(model)
    prior_graph = get_jaxified_graph(
        inputs=value_vars, outputs=[model.logp(vars=model.free_RVs, jacobian=True)]
    )
    outputs = list(model.unobserved_value_vars)
    constrained_graph = get_jaxified_graph(inputs=value_vars, outputs=outputs)
    output_names = [v.name for v in outputs]
    flat_initial = np.concatenate([np.ravel(initial_point[v.name]) for v in value_vars]).astype(
        np.result_type(float)
    )

    def split(x: Array) -> list[Array]:
        return [x[offsets[i] : offsets[i + 1]].reshape(shape) for i, shape in enumerate(shapes)]

    def log_density(x: Array) -> Array:
        return jnp.asarray(logp(split(x))).reshape(())

    def constrain_one(x: Array) -> dict[str, Array]:
        return dict(zip(output_names, constrained_graph(*split(x)), strict=True))

    def log_prior(x: Array) -> Array:
        return jnp.asarray(prior_graph(*split(x))[0]).reshape(())

    def initial_positions(key: PRNGKey, n_chains: int) -> Array:
        jitter = jax.random.uniform(key, (n_chains, n_dim), minval=-1.0, maxval=1.0)
        return jnp.asarray(flat_initial) + jitter.astype(flat_initial.dtype)

    return ModelTarget(
        log_prob=ModelLogDensity(log_density, constrain_one, n_dim, log_prior),
        n_dim=n_dim,
        names=tuple(v.name for v in value_vars),
        initial_positions=initial_positions,
    )
