"""Targets from probabilistic programming languages: numpyro and PyMC models.

A model's latent variables live in a constrained space (a scale is positive, a probability
vector sums to one). Samplers work on the *unconstrained* space: every variable is mapped to
``R^k`` by a bijection, and the log density gains that map's log-Jacobian. The PPLs provide
both, and the map back; this module wraps them as a `ModelTarget`:

- ``target.log_prob``: a flat unconstrained position ``(n_dim,)`` -> scalar log density, ready
  for `flowmc_like.Sampler`, callable as ``log_prob(x)`` (on the target's own data) or
  ``log_prob(x, data)``. It carries the map back, so a `SamplerResult` of a run on it
  exports the model's own variable names and constrained values to ArviZ.
- ``target.data``: the model's data, the part of its inputs that is *traced* (see below).
  ``target.with_data(...)`` is the same target on new data of the same shapes.
- ``target.n_dim`` and ``target.initial_position(key, n_chains)``: starting points from the
  PPL's own initialisation (numpyro's ``init_to_uniform``: uniform in ``(-2, 2)`` in the
  unconstrained space; PyMC's initial point jittered by ``U(-1, 1)``).
- ``target.log_prior``: the model's prior alone on the same unconstrained position (the
  log-Jacobian included, every observed site's and factor's term left out), so
  ``log_prob - log_prior`` is the log likelihood. Tempering (``Sampler(n_temperatures=...)``)
  uses it to temper the likelihood only; the hottest replica then samples the prior.
- ``target.constrain(flat, data=None)``: unconstrained draws ``(..., n_dim)`` ->
  ``{name: (..., *shape)}`` of constrained values, deterministic sites included.

**Traced data and baked-in settings.** The compiled programs of a run (and the map back)
take the model's data as an *input*: a new dataset of the same shapes and dtypes runs the
programs already compiled. Everything else is *baked in* (a constant of the program, or a
Python value read while tracing): a new value compiles a new program.

numpyro (``fm.from_numpyro(model, *model_args, **model_kwargs)``): the arguments
``(model_args, model_kwargs)`` are a JAX pytree (``None`` is structure, not a leaf).

- Traced: every leaf that is an array of a numeric or boolean dtype: numpy arrays, numpy
  scalars (``np.float32(2.0)``) and JAX arrays. ``target.data`` is
  ``(model_args, model_kwargs)`` with every other leaf replaced by None, e.g.
  ``((X,), {"y": y, "n_groups": None})`` for ``from_numpyro(model, X, y=y, n_groups=4)``.
- Baked in: every other leaf (Python ints, floats, bools and strings, often plate sizes or
  flags; callables; arrays of other dtypes; other objects), the arguments' structure (which
  arguments are given, which are None), the traced leaves' shapes and dtypes, the model
  function itself and whatever it reads from closures or globals, and ``numpyro.param`` /
  ``numpyro.module`` values (taken from the model's first trace, as numpyro's own samplers do).
- A model that needs an array argument's value while it is traced (``int(y.max())``, numpy
  calls on an argument, Python control flow on its values) cannot take it as an input: then
  every argument is baked in, with a warning saying why. Pass such values as Python ints.

PyMC (``fm.from_pymc(model)``):

- Traced: the ``pm.Data`` containers (``model.data_vars``). ``target.data`` is
  ``{name: value}`` of their values when ``from_pymc`` was called; ``target.with_data(name=
  value)`` swaps some of them (a later ``pm.set_data`` on the model does not change a target).
- Baked in: observed values given as plain arrays (``observed=np.array(...)``), every
  constant of the model's graph, the values of its other shared variables (dims' lengths),
  the ``pm.Data`` shapes and dtypes, and the model's variables.

Program identity: two targets whose programs are the same (the same model function or
``pm.Model``, the same baked-in values and structure, traced data of the same shapes and
dtypes) have log densities (and log priors) that compare and hash equal, so compiled runs
are shared between them; `ModelLogDensity.program_key` is what is compared. Equal is not
the same on a call without data: ``log_prob(x)`` reads each target's own data. JAX caches a
jitted function's trace by the function's equality, so ``jax.jit(target.log_prob)`` called
as ``f(x)`` bakes the first target's data into a trace that an equal target's
``jax.jit(other.log_prob)(x)`` reuses. Under ``jax.jit`` of the density itself, pass the
data (``f(x, other.data)``), or jit a new function (``jax.jit(lambda x: other.log_prob(x))``).
The `Sampler` always passes the data.

numpyro and PyMC are optional: each is imported only by its ``from_*`` function.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import math
import warnings
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, PRNGKey, PyTree
from flowmc_like._validation import check_callable, check_int
from flowmc_like.adapters.model_data import ArgumentSplit, split_arguments, static_key
from flowmc_like.adapters.numpyro_inverse import unconstrain_numpyro
from flowmc_like.adapters.numpyro_observed import (
    numpyro_observed_data,
    numpyro_pointwise_log_likelihood,
)

__all__ = ["ModelLogDensity", "ModelLogPrior", "ModelTarget", "from_numpyro", "from_pymc"]


CONSTRAIN_CHUNK = 1024
"""Positions mapped per compiled call of `ModelLogDensity.constrain` (one compile per program)."""

_CONSTRAIN_CACHE_SIZE = 16
_constrain_programs: collections.OrderedDict[Hashable, Callable[..., Any]] = (
    collections.OrderedDict()
)
"""Jitted chunk maps of `ModelLogDensity.constrain`, per program key (most recent last)."""


def _constrain_batched(
    constrain_chunk: Callable[[Array, PyTree], dict[str, Array]], flat: Any, data: PyTree
) -> dict[str, np.ndarray]:
    """Apply a chunk map to every position of ``flat`` ``(..., n_dim)``.

    ``constrain_chunk`` is jitted on ``(CONSTRAIN_CHUNK, n_dim)`` positions and ``data``; the
    last chunk is padded, so the map compiles once whatever the number of draws (and once
    for all datasets of the same shapes).
    """
    flat = np.asarray(flat)
    batch_shape, n_dim = flat.shape[:-1], flat.shape[-1]
    rows = flat.reshape((-1, n_dim))
    n_rows = rows.shape[0]
    n_padded = max(-(-n_rows // CONSTRAIN_CHUNK), 1) * CONSTRAIN_CHUNK
    padded = np.zeros((n_padded, n_dim), rows.dtype)
    padded[:n_rows] = rows
    data = jax.device_put(data)  # once, not per chunk
    chunks = [
        jax.device_get(constrain_chunk(padded[start : start + CONSTRAIN_CHUNK], data))
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
    """A PPL model's unconstrained log density: ``log_prob(x)`` or ``log_prob(x, data)``.

    Every function takes the data as an argument, so under ``jit`` they are traced inputs
    (see the module). A call without ``data`` (or with None) uses the model's own ``data``.

    Two densities with equal ``program_key`` (not None) compute the same function of
    ``(x, data)``, so a compiled program of one serves the other: `flowmc_like.Sampler`
    keys its compiled runs on ``program_key``. The densities themselves compare by
    identity (each one's call without ``data`` reads its own data, so ``jax.jit`` of one
    must not be reused for another).

    Attributes:
        log_density: ``(x (n_dim,), data) -> ()`` the model's log joint with its observed
            data, plus the log-Jacobian of the map to the unconstrained space.
        constrain_fn: ``(x (n_dim,), data) -> {name: constrained value}`` for one position.
        n_dim: length of the flat position.
        log_prior_fn: ``(x (n_dim,), data) -> ()`` the prior's log density on the same
            unconstrained position (Jacobian included, observed sites and factors left
            out), or None.
        data: the model's own data, a pytree of arrays (the traced inputs).
        program_key: hashable identity of the functions above as programs, or None.
        unconstrain_fn: ``({name: constrained value}, data) -> (x (n_dim,), log|det dc/dx|
            ())`` the way back from one draw's constrained latent values, or None (PyMC).
        log_likelihood_fn: ``(x (n_dim,), data) -> {observed site: per-observation log
            likelihood}`` at one position, or None.
        observed_fn: ``data -> {observed site: observed values}``, or None.
    """

    log_density: Callable[[Array, PyTree], Array]
    constrain_fn: Callable[[Array, PyTree], dict[str, Array]]
    n_dim: int
    log_prior_fn: Callable[[Array, PyTree], Array] | None = None
    data: PyTree = None
    program_key: Hashable | None = None
    unconstrain_fn: Callable[[dict[str, Array], PyTree], tuple[Array, Array]] | None = None
    log_likelihood_fn: Callable[[Array, PyTree], dict[str, Array]] | None = None
    observed_fn: Callable[[PyTree], dict[str, np.ndarray]] | None = None

    def __call__(self, x: Array, data: PyTree = None) -> Array:
        """Log density at one unconstrained position ``x`` ``(n_dim,)``; shape ``()``.

        Args:
            x: ``(n_dim,)`` unconstrained position.
            data: the model's data (traced under ``jit``); None for the target's own.
        """
        return self.log_density(x, self._data(data))

    def _data(self, data: PyTree) -> PyTree:
        return self.data if data is None else data

    def constrain_one(self, x: Array, data: PyTree = None) -> dict[str, Array]:
        """``{name: constrained value}`` at one position ``x`` ``(n_dim,)`` on ``data``."""
        return self.constrain_fn(x, self._data(data))

    def log_likelihood(self, flat: Any, data: PyTree = None) -> dict[str, np.ndarray]:
        """Per-observation log likelihood of unconstrained positions ``(..., n_dim)``.

        Returns:
            ``{observed site: (..., *site_shape)}`` numpy arrays (empty without
            ``log_likelihood_fn``).
        """
        if self.log_likelihood_fn is None:
            return {}
        key = None if self.program_key is None else ("log_likelihood", self.program_key)
        program = _cached_program(key, self.log_likelihood_fn)
        return _constrain_batched(program, flat, self._data(data))

    def observed_data(self, data: PyTree = None) -> dict[str, np.ndarray]:
        """``{observed site: observed values}`` on ``data`` (empty without ``observed_fn``)."""
        return {} if self.observed_fn is None else self.observed_fn(self._data(data))

    def unconstrain_one(self, values: dict[str, Array], data: PyTree = None) -> tuple[Array, Array]:
        """One draw's flat unconstrained position and ``log|det dc/dx|`` (see the attribute)."""
        if self.unconstrain_fn is None:
            raise NotImplementedError("this target has no map back to the unconstrained space")
        return self.unconstrain_fn(values, self._data(data))

    @functools.cached_property
    def log_prior(self) -> ModelLogPrior | None:
        """The model's log prior (`ModelLogPrior`), or None without a ``log_prior_fn``."""
        return None if self.log_prior_fn is None else ModelLogPrior(self)

    @functools.cached_property
    def _constrain_chunk(self) -> Callable[[Array, PyTree], dict[str, Array]]:
        """``constrain_fn`` jitted on a chunk of positions, shared by equal densities."""
        return _cached_program(self.program_key, self.constrain_fn)

    def constrain(self, flat: Any, data: PyTree = None) -> dict[str, np.ndarray]:
        """Constrained, named values of unconstrained positions.

        Args:
            flat: ``(..., n_dim)`` unconstrained positions.
            data: the model's data (deterministic sites may depend on it); None for the
                target's own.

        Returns:
            ``{name: (..., *shape)}`` numpy arrays, deterministic sites included.
        """
        return _constrain_batched(self._constrain_chunk, flat, self._data(data))


def _cached_program(key: Hashable | None, function: Callable[..., Any]) -> Callable[..., Any]:
    """`_jit_constrain` of ``function``, shared by equal ``key`` (None: not shared)."""
    if key is None:
        return _jit_constrain(function)
    program = _constrain_programs.get(key)
    if program is None:
        program = _constrain_programs[key] = _jit_constrain(function)
        while len(_constrain_programs) > _CONSTRAIN_CACHE_SIZE:
            _constrain_programs.popitem(last=False)
    _constrain_programs.move_to_end(key)
    return program


def _jit_constrain(
    constrain_fn: Callable[[Array, PyTree], dict[str, Array]],
) -> Callable[[Array, PyTree], dict[str, Array]]:
    """``(positions (m, n_dim), data) -> {name: (m, ...)}``, jitted (``data`` not mapped)."""
    return jax.jit(jax.vmap(constrain_fn, in_axes=(0, None)))


@dataclasses.dataclass(frozen=True, eq=False)
class ModelLogPrior:
    """A model's log prior on the flat unconstrained position: ``log_prior(x[, data])``.

    Its ``program_key`` is that of its density (compared by identity, like the density).

    Attributes:
        density: the `ModelLogDensity` whose ``log_prior_fn`` and ``data`` it uses.
    """

    density: ModelLogDensity

    def __call__(self, x: Array, data: PyTree = None) -> Array:
        """Log prior at ``x`` ``(n_dim,)`` on ``data`` (None: the target's own); shape ``()``."""
        assert self.density.log_prior_fn is not None
        return self.density.log_prior_fn(x, self.density._data(data))

    @property
    def data(self) -> PyTree:
        """The model's own data."""
        return self.density.data

    @property
    def program_key(self) -> Hashable | None:
        """What identifies the log prior as a program (None: only itself)."""
        key = self.density.program_key
        return None if key is None else ("log_prior", key)


@dataclasses.dataclass(frozen=True, eq=False)
class ModelTarget:
    """A PPL model as a flowmc_like target (see the module docstring).

    Attributes:
        log_prob: the `ModelLogDensity` to pass to `flowmc_like.Sampler` (it holds the data).
        n_dim: length of the flat unconstrained position.
        names: the model's latent variable names, in the flat layout's order.
        initial_positions: ``(key, n_chains, data) -> (n_chains, n_dim)`` unconstrained starts.
        rebind: ``(data, *args, **kwargs) -> new data``: the data of `with_data`'s arguments
            (``data`` is the current data), raising a ValueError if they need a new program.
    """

    log_prob: ModelLogDensity
    n_dim: int
    names: tuple[str, ...]
    initial_positions: Callable[[PRNGKey, int, PyTree], Array]
    rebind: Callable[..., PyTree]

    @property
    def data(self) -> PyTree:
        """The model's data: the traced inputs of its programs (see the module)."""
        return self.log_prob.data

    @property
    def log_prior(self) -> ModelLogPrior | None:
        """The model's log prior on the flat unconstrained position (see the module)."""
        return self.log_prob.log_prior

    def with_data(self, *args: Any, **kwargs: Any) -> ModelTarget:
        """This target on new data of the same shapes, reusing its functions and programs.

        numpyro: the model's arguments, all of them, as for `from_numpyro`
        (``target.with_data(X_new, y=y_new)``). PyMC: ``pm.Data`` values by name, the
        others kept (``target.with_data(x=x_new)``).

        Raises:
            ValueError: the new arguments need a new program (another structure, a new
                static value, a new shape or dtype); the message names the argument.
        """
        data = self.rebind(self.data, *args, **kwargs)
        return dataclasses.replace(self, log_prob=dataclasses.replace(self.log_prob, data=data))

    def initial_position(self, key: PRNGKey, n_chains: int) -> Array:
        """``(n_chains, n_dim)`` unconstrained starting points from the PPL's initialisation."""
        n_chains = check_int("n_chains", n_chains, owner="ModelTarget.initial_position")
        positions = self.initial_positions(key, n_chains, self.data)
        return jnp.asarray(positions).reshape((n_chains, self.n_dim))

    def constrain(self, flat: Any, data: PyTree = None) -> dict[str, np.ndarray]:
        """Constrained, named values of unconstrained positions ``(..., n_dim)`` on ``data``."""
        return self.log_prob.constrain(flat, data)


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
    from the static ones and the data, so the data are traced (see the module for what is
    traced and what is baked in). Latent sites are flattened in numpyro's order (sorted by
    name), with ``jax.flatten_util.ravel_pytree``.

    ``target.log_prior`` is the same potential of the model with its observed sample sites
    hidden (``numpyro.handlers.block``): the same latent sites, transforms and flat layout,
    the log-Jacobian kept. Observed means observed in the model's trace with these
    arguments: ``obs=`` sites (in plates or scans), ``numpyro.factor`` terms and sites fixed
    by ``numpyro.handlers.condition`` all count as likelihood.

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
    """

    model: Callable[..., Any]
    potential_fn: Callable[..., Callable[[Any], Array]]
    postprocess_fn: Callable[..., Callable[[Any], dict[str, Array]]]
    prior_potential_fn: Callable[..., Callable[[Any], Array]]
    unravel: Callable[[Array], Any]
    names: tuple[str, ...]

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

        program_key = ("numpyro", static_key(self.model), split.key)
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
        )


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


def from_pymc(model: Any) -> ModelTarget:
    """A PyMC model as a target on its unconstrained space, through PyMC's JAX export.

    Uses ``pymc.sampling.jax.get_jaxified_graph`` on the model's log density over its value
    variables (``model.logp()``: transformed ones with their Jacobians) and on
    ``model.unobserved_value_vars`` (constrained values and deterministics) for the map back.
    The ``pm.Data`` containers (``model.data_vars``) are replaced in these graphs by symbolic
    inputs (``pytensor.graph.replace.graph_replace``), so they are traced: ``target.data`` is
    ``{name: value}`` of their current values, ``target.with_data(name=value)`` swaps them.
    Everything else is baked in (see the module), observed values given as plain arrays
    included. Starting points are PyMC's initial point plus ``U(-1, 1)`` jitter in the
    unconstrained space, as PyMC's own samplers start.

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
    return ModelTarget(
        log_prob=ModelLogDensity(log_density, constrain_fn, n_dim, log_prior, data, program_key),
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
