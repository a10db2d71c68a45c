"""The trained global model as a density of its own: draw from it, evaluate it, save it.

``result.approximation()`` returns an `Approximation`: the run's model and params with the
map to the user's layout. It is a normalised density close to the target, usable outside
`flowmc_like.Sampler`: to start other samplers (numpyro NUTS, blackjax) from it, as a
proposal, or as a cheap surrogate of the posterior. Every method is a JAX function (it can
be jitted and vmapped); ``sample`` needs ``n`` static.

Spaces:

- Plain array positions: draws ``(n, n_dim)`` and ``log_prob(x (..., n_dim)) -> (...)``.
- Pytree positions: the same pytree with leaves ``(n, *leaf_shape)``; the density is that of
  the flattened position (flattening has Jacobian 1).
- `flowmc_like.from_numpyro` / ``from_pymc`` targets: the model runs on the unconstrained
  space. ``sample`` returns the model's named, constrained values (deterministic sites
  included) and ``log_prob`` takes them and returns the density of the constrained latent
  values, ``log q(u) - log|det dc/du|`` (numpyro models). ``sample_unconstrained`` and
  ``log_prob_unconstrained`` work on the flat unconstrained positions (what the sampler, and
  numpyro's or blackjax's NUTS, run on).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp

from flowmc_like._types import Array, PRNGKey
from flowmc_like.adapters.pytree import PositionSpec
from flowmc_like.models.base import AbstractGlobalModel, ModelParams

__all__ = ["Approximation"]


@dataclasses.dataclass(frozen=True, eq=False)
class Approximation:
    """A trained global model as a normalised density in the user's space.

    Build it with ``result.approximation()`` (or `flowmc_like.load_approximation`).

    Attributes:
        model: the global model (its settings).
        params: its trained `ModelParams` (JAX arrays).
        position_spec: how flat positions map to the user's layout.
        target: for a PPL target, its log density (`flowmc_like.from_numpyro`'s
            ``target.log_prob``), which maps unconstrained positions to the model's
            variables; None otherwise.
        is_unconstrained: the flat positions are a PPL model's unconstrained space (True
            even when the target is not attached, e.g. after loading without it).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import flowmc_like as fm
        >>> model = fm.RealNVP(n_layers=2, hidden_sizes=(8,))
        >>> params = model.init(jax.random.key(0), 2)  # a fresh flow: a standard normal
        >>> approx = fm.Approximation.from_model(model, params, n_dim=2)
        >>> draws = approx.sample(jax.random.key(1), 5)
        >>> draws.shape, approx.log_prob(draws).shape
        ((5, 2), (5,))
        >>> round(float(approx.log_prob(jnp.zeros(2))), 4)  # -log(2 pi)
        -1.8379
    """

    model: AbstractGlobalModel
    params: ModelParams
    position_spec: PositionSpec
    target: Any = None
    is_unconstrained: bool = False

    @classmethod
    def from_model(
        cls, model: AbstractGlobalModel, params: ModelParams, n_dim: int
    ) -> Approximation:
        """An approximation on plain ``(n_dim,)`` positions from a model and its params."""
        spec, _ = PositionSpec.from_batched(jnp.zeros((1, n_dim)))
        return cls(model, jax.tree.map(jnp.asarray, params), spec)

    @property
    def n_dim(self) -> int:
        """Length of the flat position."""
        return self.position_spec.n_dim

    # --- the flat (sampler's) space ---------------------------------------------------

    def sample_and_log_prob_unconstrained(self, key: PRNGKey, n: int) -> tuple[Array, Array]:
        """``n`` flat draws ``(n, n_dim)`` and their ``log q`` ``(n,)``, in the sampler's space."""
        keys = jax.random.split(key, n)
        return jax.vmap(self.model.sample_and_log_prob, in_axes=(None, 0))(self.params, keys)

    def sample_unconstrained(self, key: PRNGKey, n: int) -> Array:
        """``n`` flat draws ``(n, n_dim)`` in the sampler's space (unconstrained for PPLs)."""
        return self.sample_and_log_prob_unconstrained(key, n)[0]

    def log_prob_unconstrained(self, x: Array) -> Array:
        """``log q`` of flat positions ``(..., n_dim)`` -> ``(...)``, in the sampler's space."""
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.n_dim,):
            raise ValueError(
                f"Approximation.log_prob_unconstrained: x has shape {x.shape}; expected "
                f"(..., {self.n_dim})"
            )
        batch_shape = x.shape[:-1]
        flat = x.reshape((-1, self.n_dim))
        log_q = jax.vmap(self.model.log_prob, in_axes=(None, 0))(self.params, flat)
        return log_q.reshape(batch_shape)

    # --- the user's space -------------------------------------------------------------

    def sample(self, key: PRNGKey, n: int) -> Any:
        """``n`` draws in the user's layout.

        Returns:
            An array ``(n, n_dim)``, the positions' pytree with leaves ``(n, *shape)``, or
            for a PPL target ``{name: (n, *shape)}`` of constrained values.
        """
        return self._to_user(self.sample_unconstrained(key, n))

    def sample_and_log_prob(self, key: PRNGKey, n: int) -> tuple[Any, Array]:
        """`sample` and the `log_prob` of its draws ``(n,)`` in one pass."""
        flat, log_q = self.sample_and_log_prob_unconstrained(key, n)
        if self.is_unconstrained:
            return self._to_user(flat), log_q - self._log_det_jacobian(flat)
        return self._to_user(flat), log_q

    def log_prob(self, x: Any) -> Array:
        """Normalised log density of draws in the user's layout (as `sample` gives them).

        Args:
            x: an array ``(..., n_dim)``, the positions' pytree with leaves
                ``(..., *shape)``, or for a PPL target ``{name: (..., *shape)}`` of
                constrained values (other names, e.g. deterministic sites, are ignored).

        Returns:
            ``(...)`` log densities.
        """
        if not self.is_unconstrained:
            return self.log_prob_unconstrained(self._from_user(x))
        flat, log_det = self._unconstrain(x)
        return self.log_prob_unconstrained(flat) - log_det

    def _to_user(self, flat: Array) -> Any:
        if not self.is_unconstrained:
            return self.position_spec.to_user(flat)
        target = self._require_target("sample")
        return jax.vmap(target.constrain_one)(flat)

    def _from_user(self, x: Any) -> Array:
        spec = self.position_spec
        if not spec.is_pytree:
            return jnp.asarray(x)
        leaves = jax.tree.leaves(x)
        if len(leaves) != len(spec.shapes):
            raise ValueError(
                f"Approximation.log_prob: x has {len(leaves)} leaves; expected the "
                f"positions' {len(spec.shapes)} ({', '.join(spec.names)})"
            )
        batch_shape = jnp.shape(leaves[0])[: jnp.ndim(leaves[0]) - len(spec.shapes[0])]
        parts = [
            jnp.asarray(leaf).reshape((*batch_shape, -1))
            for leaf, shape in zip(leaves, spec.shapes, strict=True)
        ]
        return jnp.concatenate(parts, axis=-1)

    def _require_target(self, what: str) -> Any:
        if self.target is None:
            raise ValueError(
                f"Approximation.{what}: this approximation of a PPL model was loaded without "
                "its target; pass target= to fm.load_approximation (or use "
                f"{what}_unconstrained on the flat unconstrained positions)"
            )
        return self.target

    def _unconstrain(self, values: dict[str, Array]) -> tuple[Array, Array]:
        target = self._require_target("log_prob")
        unconstrain = getattr(target, "unconstrain_one", None)
        if unconstrain is None or getattr(target, "unconstrain_fn", None) is None:
            raise NotImplementedError(
                "Approximation.log_prob: the density of constrained values needs the map back "
                "to the unconstrained space, which only from_numpyro targets give; use "
                "log_prob_unconstrained on flat unconstrained positions"
            )
        if not isinstance(values, dict):
            raise TypeError(
                "Approximation.log_prob: x must be {name: constrained values} as sample "
                f"returns them; got {type(values).__name__}"
            )
        example = jax.eval_shape(target.constrain_one, jnp.zeros(self.n_dim))
        name = next(name for name in example if name in values)
        n_batch_dims = jnp.ndim(values[name]) - len(example[name].shape)
        for _ in range(n_batch_dims):
            unconstrain = jax.vmap(unconstrain)
        return unconstrain(values)

    def _log_det_jacobian(self, flat: Array) -> Array:
        """``log|det dc/du|`` of the map to the constrained values at ``flat (n, n_dim)``."""
        target = self._require_target("sample_and_log_prob")
        if getattr(target, "unconstrain_fn", None) is None:
            raise NotImplementedError(
                "Approximation.sample_and_log_prob: the density of constrained values is "
                "only known for from_numpyro targets; use sample_and_log_prob_unconstrained"
            )
        values = jax.vmap(target.constrain_one)(flat)
        return jax.vmap(target.unconstrain_one)(values)[1]

    # --- files ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Any:
        """Write the model, its params and the position layout to the directory ``path``.

        json and npz, no pickle; read back with `flowmc_like.load_approximation` (a PPL
        target is not stored: pass it to the loader).

        Returns:
            The directory, a ``pathlib.Path``.
        """
        from flowmc_like.saved import save_approximation

        return save_approximation(self, path)


def bind(
    model: AbstractGlobalModel,
    params: Any,
    spec: PositionSpec,
    target: Any,
    is_unconstrained: bool,
) -> Approximation:
    """An `Approximation` from a run's pieces (params converted to JAX arrays)."""
    if model is None or params is None:
        raise ValueError(
            "approximation: the run has no trained global model (global_model=None, or a "
            "result loaded from a run whose model could not be stored)"
        )
    return Approximation(
        model, jax.tree.map(jnp.asarray, params), spec, target, bool(is_unconstrained)
    )
