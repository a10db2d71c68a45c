"""Analytic stand-in global models, to test the independence-MH move in isolation."""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from flowmc_like._types import Space
from flowmc_like.models.base import AbstractGlobalModel, ModelParams


@dataclasses.dataclass(frozen=True)
class StudentTModel(AbstractGlobalModel):
    """Independent Student-t marginals with fixed location and scale (nothing to train)."""

    loc: tuple
    scale: tuple
    df: float = 5.0
    space: ClassVar[Space] = Space.CONTINUOUS

    def init(self, key, n_dim):
        return ModelParams(trainable={}, frozen={})

    def prepare(self, params, data):
        return params

    def log_prob(self, params, x):
        z = (x - jnp.asarray(self.loc)) / jnp.asarray(self.scale)
        return jnp.sum(jax.scipy.stats.t.logpdf(z, self.df) - jnp.log(jnp.asarray(self.scale)))

    def sample_and_log_prob(self, params, key):
        z = jax.random.t(key, self.df, (len(self.loc),))
        x = jnp.asarray(self.loc) + jnp.asarray(self.scale) * z
        return x, self.log_prob(params, x)


@dataclasses.dataclass(frozen=True)
class MissingDensityModel(StudentTModel):
    """A deliberately wrong model: reports log q = 0, so the MH ratio misses its q terms."""

    def log_prob(self, params, x):
        return jnp.zeros((), x.dtype)


@dataclasses.dataclass(frozen=True)
class NaNRegionGaussian(AbstractGlobalModel):
    """A trainable Gaussian whose density is NaN where x[0] > 1.5: training on such draws fails."""

    space: ClassVar[Space] = Space.CONTINUOUS

    def init(self, key, n_dim):
        return ModelParams(
            trainable={"loc": jnp.zeros(n_dim), "log_scale": jnp.zeros(n_dim) + jnp.log(1.5)},
            frozen={},
        )

    def prepare(self, params, data):
        return params

    def log_prob(self, params, x):
        loc, log_scale = params.trainable["loc"], params.trainable["log_scale"]
        value = jnp.sum(jax.scipy.stats.norm.logpdf(x, loc, jnp.exp(log_scale)))
        return jnp.where(x[0] > 1.5, jnp.nan, value)

    def sample_and_log_prob(self, params, key):
        loc, log_scale = params.trainable["loc"], params.trainable["log_scale"]
        x = loc + jnp.exp(log_scale) * jax.random.normal(key, loc.shape)
        return x, self.log_prob(params, x)
