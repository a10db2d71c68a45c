"""A numpyro model's observations: pointwise log-likelihood, observed values, replicates.

What ArviZ's ``log_likelihood``, ``observed_data`` and ``posterior_predictive`` groups hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowmc_like._types import Array

__all__ = [
    "numpyro_observed_data",
    "numpyro_pointwise_log_likelihood",
    "numpyro_posterior_predictive",
    "numpyro_replicated_sites",
]


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


def numpyro_replicated_sites(model_trace: dict[str, Any]) -> tuple[str, ...]:
    """The observed sample sites of a model trace that can be drawn anew, sorted.

    Every observed ``numpyro.sample`` site (``obs=``, ``handlers.condition``) except the
    ``numpyro.factor`` terms (a ``Unit`` distribution: no observation to draw).
    """
    from numpyro.distributions import Unit

    return tuple(
        sorted(
            name
            for name, site in model_trace.items()
            if site["type"] == "sample" and site["is_observed"] and not isinstance(site["fn"], Unit)
        )
    )


def numpyro_posterior_predictive(
    model: Any,
    sites: tuple[str, ...],
    key: Any,
    latent: dict[str, Array],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Array]:
    """``{site: (m, *site_shape)}`` new observations at ``m`` draws of the latent sites.

    ``numpyro.infer.Predictive`` substitutes the latent values, but returns an observed
    site's given value; the model is therefore run under `_Unobserve`, which turns the
    ``sites`` into ordinary sample sites (their distribution broadcast to the observed
    value's batch shape), so they are drawn from the likelihood at each draw.

    Args:
        model: the numpyro model.
        sites: the observed sites to draw (`numpyro_replicated_sites`).
        key: a JAX PRNG key; split by ``Predictive`` into one key per draw.
        latent: ``{latent site: (m, *shape)}`` constrained values of ``m`` draws.
        args: positional arguments of the model.
        kwargs: keyword arguments of the model.

    Returns:
        ``{site: (m, *site_shape)}`` JAX arrays (traceable: jit and vmap it freely).
    """
    from numpyro.infer import Predictive

    predictive = Predictive(
        _unobserved(model, frozenset(sites)),
        posterior_samples=latent,
        return_sites=list(sites),
        batch_ndims=1,
        parallel=True,
    )
    return predictive(key, *args, **kwargs)


def _unobserved(model: Any, sites: frozenset[str]) -> Any:
    """``model`` with the observed sample ``sites`` sampled instead (see `_Unobserve`)."""
    from numpyro.primitives import Messenger

    class _Unobserve(Messenger):
        """Clears the observed value of ``sites``: the site is drawn from its distribution."""

        def process_message(self, msg: dict[str, Any]) -> None:
            if msg["type"] != "sample" or msg["name"] not in sites or not msg["is_observed"]:
                return
            value, fn = msg["value"], msg["fn"]
            batch_shape = np.shape(value)[: np.ndim(value) - len(fn.event_shape)]
            shape = np.broadcast_shapes(fn.batch_shape, batch_shape)
            if shape != tuple(fn.batch_shape):  # obs broadcast against the distribution
                msg["fn"] = fn.expand(shape)
            msg["value"], msg["is_observed"] = None, False

    return _Unobserve(model)
