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


@dataclasses.dataclass(frozen=True)
class TwoClusterSpinModel(AbstractGlobalModel):
    """Spins from an equal mixture of two product laws: every site is 1 with prob ``bias`` in
    the first component and ``1 - bias`` in the second (nothing to train). Covers both
    magnetised modes of a ferromagnet, so the importance weights p/q stay bounded."""

    n_dim: int
    bias: float = 0.8
    n_categories: ClassVar[int] = 2
    space: ClassVar[Space] = Space.DISCRETE

    def init(self, key, n_dim):
        return ModelParams(trainable={}, frozen={})

    def prepare(self, params, data):
        return params

    def log_prob(self, params, x):
        ones = jnp.sum(x)
        zeros = x.shape[0] - ones
        up = ones * jnp.log(self.bias) + zeros * jnp.log1p(-self.bias)
        down = zeros * jnp.log(self.bias) + ones * jnp.log1p(-self.bias)
        return jnp.logaddexp(up, down) - jnp.log(2.0)

    def sample_and_log_prob(self, params, key):
        key_component, key_sites = jax.random.split(key)
        is_up = jax.random.bernoulli(key_component)
        p_one = jnp.where(is_up, self.bias, 1.0 - self.bias)
        x = jax.random.bernoulli(key_sites, p_one, (self.n_dim,)).astype(jnp.int32)
        return x, self.log_prob(params, x)


@dataclasses.dataclass(frozen=True)
class MissingDensitySpinModel(TwoClusterSpinModel):
    """A deliberately wrong discrete model: reports log q = 0 (the MH ratio misses q)."""

    def log_prob(self, params, x):
        return jnp.zeros((), jnp.float32)
