"""A numpyro model's observations: pointwise log-likelihood and observed values for ArviZ."""

from __future__ import annotations

from typing import Any

import numpy as np

from flowmc_like._types import Array

__all__ = ["numpyro_observed_data", "numpyro_pointwise_log_likelihood"]


def numpyro_pointwise_log_likelihood(
    model: Any,
    names: tuple[str, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    values: dict[str, Array],
) -> dict[str, Array]:
    """``{observed site: log p(y_i | theta)}`` per observation, at one draw.

    Args:
        model: the numpyro model; ``args`` / ``kwargs`` its arguments.
        names: its latent sample sites.
        args: positional arguments of the model.
        kwargs: keyword arguments of the model.
        values: ``{name: constrained value}`` of one draw (other names are ignored).

    Returns:
        One array per observed site, of the site's shape (numpyro's ``log_likelihood``).
    """
    from numpyro.infer.util import log_likelihood

    latent = {name: values[name] for name in names}
    return log_likelihood(model, latent, *args, batch_ndims=0, **kwargs)


def numpyro_observed_data(
    model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, np.ndarray]:
    """``{observed site: its observed values}`` from one trace of the model."""
    import jax
    from numpyro import handlers

    trace = handlers.trace(handlers.seed(model, jax.random.key(0))).get_trace(*args, **kwargs)
    return {
        name: np.asarray(site["value"])
        for name, site in trace.items()
        if site["type"] == "sample" and site.get("is_observed", False)
    }
