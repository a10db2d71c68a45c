"""The shared base of PPL targets: `ModelLogDensity`, `ModelLogPrior` and `ModelTarget`.

`flowmc_like.adapters.numpyro_target` and `flowmc_like.adapters.pymc_target` build them from
a model; `flowmc_like.adapters.ppl` documents what is traced and what is baked in.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, PRNGKey, PyTree
from flowmc_like._validation import check_int

__all__ = [
    "CONSTRAIN_CHUNK",
    "ModelLogDensity",
    "ModelLogPrior",
    "ModelTarget",
    "cached_program",
    "check_flat",
    "map_in_chunks",
]


CONSTRAIN_CHUNK = 1024
"""Positions mapped per compiled call of `ModelLogDensity.constrain` (one compile per program)."""

_CONSTRAIN_CACHE_SIZE = 16
_constrain_programs: collections.OrderedDict[Hashable, Callable[..., Any]] = (
    collections.OrderedDict()
)
"""Jitted chunk maps of `ModelLogDensity.constrain`, per program key (most recent last)."""


def check_flat(flat: Any, n_dim: int, owner: str, name: str = "flat") -> np.ndarray:
    """``flat`` as a numpy array of positions ``(..., n_dim)``, else a ValueError naming it."""
    flat = np.asarray(flat)
    if flat.ndim == 0 or flat.shape[-1] != n_dim:
        raise ValueError(
            f"{owner}: {name} has shape {flat.shape}; expected (..., n_dim) with n_dim = {n_dim}"
        )
    return flat


def map_in_chunks(
    chunk_fn: Callable[..., dict[str, Array]], flat: Any, data: PyTree, key: Any = None
) -> dict[str, np.ndarray]:
    """Apply a chunk map to every position of ``flat`` ``(..., n_dim)``.

    ``chunk_fn`` is jitted on ``(CONSTRAIN_CHUNK, n_dim)`` positions and ``data`` (and,
    when ``key`` is given, a key: ``jax.random.fold_in(key, chunk index)``); the last chunk
    is padded, so the map compiles once whatever the number of draws (and once for all
    datasets of the same shapes).

    Returns:
        ``{name: (..., *shape)}`` numpy arrays, ``...`` the batch shape of ``flat``.
    """
    flat = np.asarray(flat)
    batch_shape, n_dim = flat.shape[:-1], flat.shape[-1]
    rows = flat.reshape((-1, n_dim))
    n_rows = rows.shape[0]
    n_padded = max(-(-n_rows // CONSTRAIN_CHUNK), 1) * CONSTRAIN_CHUNK
    padded = np.zeros((n_padded, n_dim), rows.dtype)
    padded[:n_rows] = rows
    data = jax.device_put(data)  # once, not per chunk
    extra = () if key is None else (key,)
    chunks = [
        jax.device_get(
            chunk_fn(
                padded[start : start + CONSTRAIN_CHUNK],
                data,
                *(jax.random.fold_in(k, start // CONSTRAIN_CHUNK) for k in extra),
            )
        )
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
    (see `flowmc_like.adapters.ppl`). A call without ``data`` (or with None) uses the
    model's own ``data``.

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
        posterior_predictive_fn: ``(key, draws (n_chains, n_draws, n_dim), data) ->
            {observed site: (n_chains, n_draws, *site_shape)}`` new observations drawn from
            the likelihood at each draw (host-side), or None.
        constant_data_fn: ``data -> {name: value}`` of the model's constant data (None
            when it has none), or None (no constant data).
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
    posterior_predictive_fn: Callable[[Any, np.ndarray, PyTree], dict[str, np.ndarray]] | None = (
        None
    )
    constant_data_fn: Callable[[PyTree], dict[str, np.ndarray] | None] | None = None

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

        ``log p(y_i | theta)`` of every observed variable at every position: elementwise, one
        value per observation (per event of a multivariate observation).

        Args:
            flat: ``(..., n_dim)`` unconstrained positions, e.g. ``(n_chains, n_draws,
                n_dim)`` draws.
            data: the model's data; None for the target's own.

        Returns:
            ``{observed site: (..., *site_shape)}`` numpy arrays (empty without
            ``log_likelihood_fn``).

        Raises:
            ValueError: ``flat``'s last axis is not ``n_dim``.
        """
        flat = check_flat(flat, self.n_dim, "log_likelihood")
        if self.log_likelihood_fn is None:
            return {}
        key = None if self.program_key is None else ("log_likelihood", self.program_key)
        program = cached_program(key, self.log_likelihood_fn)
        return map_in_chunks(program, flat, self._data(data))

    def observed_data(self, data: PyTree = None) -> dict[str, np.ndarray]:
        """``{observed site: observed values}`` on ``data`` (empty without ``observed_fn``)."""
        return {} if self.observed_fn is None else self.observed_fn(self._data(data))

    def constant_data(self, data: PyTree = None) -> dict[str, np.ndarray] | None:
        """``{name: value}`` of the model's constant data on ``data``, or None if unknown.

        PyMC: the ``pm.Data`` containers other than observed values. numpyro: None (which
        arguments are covariates rather than observations is not known).
        """
        if self.constant_data_fn is None:
            return None
        return self.constant_data_fn(self._data(data))

    def posterior_predictive(
        self, key: PRNGKey, flat_draws: Any, data: PyTree = None
    ) -> dict[str, np.ndarray]:
        """New observations drawn from the likelihood at each posterior draw.

        Each observed variable is replicated at each draw: ``y_rep ~ p(y | theta)``, ``theta``
        the constrained values of one draw, on ``data`` (the model's data, e.g. new
        covariates from `ModelTarget.with_data`).

        Args:
            key: a JAX PRNG key (``jax.random.key(0)``).
            flat_draws: ``(n_chains, n_draws, n_dim)`` unconstrained draws
                (``result.flat_samples``).
            data: the model's data; None for the target's own.

        Returns:
            ``{observed site: (n_chains, n_draws, *site_shape)}`` numpy arrays.

        Raises:
            ValueError: ``flat_draws`` is not ``(n_chains, n_draws, n_dim)`` or ``key`` is
                not a key.
            NotImplementedError: the target has no ``posterior_predictive_fn``.
        """
        owner = "posterior_predictive"
        flat_draws = check_flat(flat_draws, self.n_dim, owner, "flat_draws")
        if flat_draws.ndim != 3:
            raise ValueError(
                f"{owner}: flat_draws has shape {flat_draws.shape}; expected (n_chains, "
                f"n_draws, n_dim) with n_dim = {self.n_dim}"
            )
        key = _check_key(key, owner)
        if self.posterior_predictive_fn is None:
            raise NotImplementedError(f"{owner}: this target cannot draw new observations")
        return self.posterior_predictive_fn(key, flat_draws, self._data(data))

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
        return cached_program(self.program_key, self.constrain_fn)

    def constrain(self, flat: Any, data: PyTree = None) -> dict[str, np.ndarray]:
        """Constrained, named values of unconstrained positions.

        Args:
            flat: ``(..., n_dim)`` unconstrained positions.
            data: the model's data (deterministic sites may depend on it); None for the
                target's own.

        Returns:
            ``{name: (..., *shape)}`` numpy arrays, deterministic sites included.
        """
        flat = check_flat(flat, self.n_dim, "constrain")
        return map_in_chunks(self._constrain_chunk, flat, self._data(data))


def _check_key(key: Any, owner: str) -> Array:
    """``key`` if it is a JAX PRNG key (typed, or raw ``uint32`` ``(2,)``), else a ValueError."""
    is_typed = isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    is_raw = isinstance(key, jax.Array | np.ndarray) and key.dtype == np.uint32
    if not (is_typed and key.shape == ()) and not (is_raw and key.shape == (2,)):
        raise ValueError(f"{owner}: key must be a JAX PRNG key (jax.random.key(0)); got {key!r}")
    return key


def cached_program(
    key: Hashable | None,
    function: Callable[..., Any],
    build: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
) -> Callable[..., Any]:
    """``build(function)`` (default `_jit_constrain`), shared by equal ``key`` (None: not)."""
    build = _jit_constrain if build is None else build
    if key is None:
        return build(function)
    program = _constrain_programs.get(key)
    if program is None:
        program = _constrain_programs[key] = build(function)
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
    """A PPL model as a flowmc_like target (see `flowmc_like.adapters.ppl`).

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
        """The model's data: the traced inputs of its programs (see `flowmc_like.adapters.ppl`)."""
        return self.log_prob.data

    @property
    def log_prior(self) -> ModelLogPrior | None:
        """The model's log prior on the flat unconstrained position (`ModelLogPrior`)."""
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

    def log_likelihood(self, flat: Any, data: PyTree = None) -> dict[str, np.ndarray]:
        """`ModelLogDensity.log_likelihood`: ``{observed site: (..., *site_shape)}``."""
        return self.log_prob.log_likelihood(flat, data)

    def observed_data(self, data: PyTree = None) -> dict[str, np.ndarray]:
        """`ModelLogDensity.observed_data`: ``{observed site: observed values}``."""
        return self.log_prob.observed_data(data)

    def constant_data(self, data: PyTree = None) -> dict[str, np.ndarray] | None:
        """`ModelLogDensity.constant_data`: ``{name: value}`` or None."""
        return self.log_prob.constant_data(data)

    def posterior_predictive(
        self, key: PRNGKey, flat_draws: Any, data: PyTree = None
    ) -> dict[str, np.ndarray]:
        """`ModelLogDensity.posterior_predictive`: ``{site: (n_chains, n_draws, *shape)}``."""
        return self.log_prob.posterior_predictive(key, flat_draws, data)
