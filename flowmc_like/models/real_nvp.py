"""RealNVP: affine coupling flow (Dinh et al., 2017) with a standardisation layer."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, final

import distrax
import jax.numpy as jnp

from flowmc_like._types import Array, Space
from flowmc_like._validation import check_bool, check_float, check_int, check_sizes
from flowmc_like.models._coupling_flow import AbstractCouplingFlow

__all__ = ["RealNVP"]


@final
@dataclasses.dataclass(frozen=True)
class RealNVP(AbstractCouplingFlow):
    """Affine coupling flow over a standard-normal base, after per-dimension standardisation.

    Sampling map, for one event ``(n_dim,)``:
    ``z ~ N(0, I)``, ``y = (c_{L-1} o ... o c_0)(z)``, ``x = mean + scale * y``, where layer
    ``l`` with alternating boolean mask ``m`` (True = kept) is

        c_l(u) = m * u + (1 - m) * (u * exp(s) + t),   (t, r) = MLP_l(m * u),
        s = log_scale_limit * tanh(r / log_scale_limit).

    The tanh bound keeps each layer's log-scale in ``(-limit, limit)`` (smoothly, with slope 1
    at 0). The conditioner's last layer is zero-initialised, so ``t = s = 0`` and a fresh flow
    is the identity. ``log q(x) = log N(z) - sum_l sum((1 - m) * s_l) - sum(log scale)`` is
    exact and normalised in ``x``-space; ``mean``/``scale`` (``params.frozen``) are refitted by
    `prepare`.

    Shapes: ``init(key, n_dim).trainable`` is the flax params dict of one `MLP` (input
    ``n_dim``, output ``2 * n_dim``) with every leaf stacked along a leading ``(n_layers,)``
    axis; ``frozen`` is a `StandardizationParams` of ``(n_dim,)`` arrays. ``log_prob``:
    ``(n_dim,) -> ()``; ``sample_and_log_prob``: ``key -> ((n_dim,), ())``.

    Attributes:
        n_layers: number of coupling layers (consecutive layers alternate the mask, so use an
            even number for ``n_dim >= 2``). Default 8: affine layers are individually weak.
        hidden_sizes: hidden widths of each conditioner MLP (GELU). Default ``(64, 64)``.
        log_scale_limit: bound on each layer's log-scale. Default 2.0 (a factor ``e^2`` per
            layer; the standardisation takes care of the overall scale).
        whiten: standardise with the full covariance of the training data (``y = L^{-1}
            (x - mean)``, ``L`` its Cholesky factor) instead of per dimension, so correlated
            and ill-conditioned coordinates reach the coupling layers decorrelated (and the
            local kernel, run in the flow's space, sees them whitened). Costs an ``n_dim x
            n_dim`` product per event. Default True; False standardises per dimension.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> flow = RealNVP(n_layers=2, hidden_sizes=(8,))
        >>> params = flow.init(jax.random.key(0), n_dim=2)
        >>> params = flow.prepare(params, jnp.array([[0.0, 1.0], [2.0, 3.0]]))
        >>> x, log_q = flow.sample_and_log_prob(params, jax.random.key(1))
        >>> x.shape, bool(jnp.allclose(log_q, flow.log_prob(params, x), atol=1e-5))
        ((2,), True)
    """

    space: ClassVar[Space] = Space.CONTINUOUS

    n_layers: int = 8
    hidden_sizes: tuple[int, ...] = (64, 64)
    log_scale_limit: float = 2.0
    whiten: bool = True

    def __post_init__(self) -> None:
        owner = "RealNVP"
        object.__setattr__(self, "n_layers", check_int("n_layers", self.n_layers, owner=owner))
        hidden_sizes = check_sizes("hidden_sizes", self.hidden_sizes, owner=owner)
        object.__setattr__(self, "hidden_sizes", hidden_sizes)
        log_scale_limit = check_float(
            "log_scale_limit", self.log_scale_limit, minimum=0.0, open_minimum=True, owner=owner
        )
        object.__setattr__(self, "log_scale_limit", log_scale_limit)
        object.__setattr__(self, "whiten", check_bool("whiten", self.whiten, owner=owner))

    @property
    def n_params_per_dim(self) -> int:
        """Conditioner outputs per coordinate: shift and raw log-scale (2)."""
        return 2

    def _inner_bijector(self, raw_params: Array) -> distrax.Bijector:
        shift = raw_params[..., 0]
        log_scale = self.log_scale_limit * jnp.tanh(raw_params[..., 1] / self.log_scale_limit)
        return distrax.ScalarAffine(shift=shift, log_scale=log_scale)
