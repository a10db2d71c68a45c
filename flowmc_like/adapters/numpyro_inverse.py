"""A numpyro model's map from constrained latent values back to the flat unconstrained space."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from flowmc_like._types import Array

__all__ = ["unconstrain_numpyro"]


def unconstrain_numpyro(
    model: Any,
    names: tuple[str, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    values: dict[str, Array],
) -> tuple[Array, Array]:
    """The flat unconstrained position of one draw and the log-Jacobian of the way back.

    Uses numpyro's own bijections (``biject_to`` of each latent site's support), so the
    log-determinant is the one numpyro adds to the unconstrained log density.

    Args:
        model: the numpyro model; ``args`` / ``kwargs`` its arguments.
        names: the latent sample sites, in the flat layout's (sorted) order.
        args: positional arguments of the model.
        kwargs: keyword arguments of the model.
        values: ``{name: constrained value}`` of one draw (other names are ignored).

    Returns:
        ``x (n_dim,)`` and ``log|det dc/dx|`` ``()``, ``c`` the constrained latent values.
    """
    from numpyro.infer.util import get_transforms

    missing = [name for name in names if name not in values]
    if missing:
        raise ValueError(f"Approximation.log_prob: x has no value for the latent sites {missing}")
    latent = {name: jnp.asarray(values[name]) for name in names}
    transforms = get_transforms(model, args, kwargs, latent)
    unconstrained = {name: transforms[name].inv(value) for name, value in latent.items()}
    log_det = sum(
        jnp.sum(transforms[name].log_abs_det_jacobian(unconstrained[name], latent[name]))
        for name in names
    )
    return ravel_pytree(unconstrained)[0], jnp.asarray(log_det)
