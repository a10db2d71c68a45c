"""Gaussian-mixture targets for the tempering benchmark (`benchmarks.tempering`).

Every draw is assigned to the mode whose *weighted component density* ``w_k N(x; mu_k,
Sigma_k)`` is largest (`MixtureTarget.assign_modes`). The exact mode weights are the mixture
weights: the modes are separated so that this rule misassigns an exact draw with negligible
probability (`misassignment_rate` measures it: below 1e-6 for both, far below the
benchmark's 1e-2 resolution).

- ``gauss4_8d`` (d = 8): 4 unit-covariance Gaussians, centres ``(10 / sqrt 2) e_k``,
  k = 0..3 (every pair exactly 10 apart: a regular tetrahedron in the first four axes),
  weights 0.4 / 0.3 / 0.2 / 0.1; every chain starts in the 0.1 mode (k = 3). The rule
  misassigns about 5e-7 of exact draws (2 of 4,000,000).
- ``corr4_6d`` (d = 6): 4 correlated Gaussians, ``Sigma_k = s_k^2 Q_k diag(g)^2 Q_k^T`` with
  overall scales ``s = (0.4, 1, 2, 3)`` (7.5x), ``g = geomspace(0.6, 1/0.6, 6)`` (sd ratio
  2.8 inside a mode), ``Q_k`` Haar rotations from ``numpy.random.default_rng(6)``; centres
  ``r_k e_k`` with ``r = (5, 9, 14, 20)`` (pairwise distances 10.3 to 24.4); weights
  0.15 / 0.35 / 0.2 / 0.3; every chain starts in the smallest mode (k = 0, scale 0.4). The
  rule misassigns 0 of 4,000,000 exact draws.

Starting positions (`start_positions`): the start mode's centre plus
``N(0, 0.1^2 I)`` jitter drawn with ``jax.random.key(seed)``, the same for every sampler of a
seed. dual_moon_2d (from `benchmarks.targets`) starts the same way from ``(sqrt 2, sqrt 2)``,
its first quadrant's centre.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.targets import Target, get_target

__all__ = [
    "JITTER_SD",
    "TEMPERING_TARGETS",
    "MixtureTarget",
    "get_tempering_target",
    "misassignment_rate",
    "start_centre",
    "start_positions",
]

JITTER_SD = 0.1
CORR4_SEED = 6


@dataclass(frozen=True)
class MixtureTarget(Target):
    """A Gaussian mixture `Target` with largest-weighted-density mode assignment.

    Attributes (beyond `Target`'s):
        means: ``(K, d)`` component means (also ``mode_centres``).
        covs: ``(K, d, d)`` component covariances.
        weights: ``(K,)`` mixture weights (also ``mode_weights``).
        start_mode: index of the mode every chain starts in.
    """

    means: np.ndarray | None = field(default=None, repr=False)
    covs: np.ndarray | None = field(default=None, repr=False)
    weights: np.ndarray | None = None
    start_mode: int = 0

    def component_log_densities(self, draws: np.ndarray) -> np.ndarray:
        """``log w_k + log N(x; mu_k, Sigma_k)`` for each draw, ``(..., d) -> (..., K)``."""
        assert self.means is not None and self.covs is not None and self.weights is not None
        x = np.asarray(draws, dtype=np.float64)
        out = []
        for mu, cov, w in zip(self.means, self.covs, self.weights, strict=True):
            chol = np.linalg.cholesky(cov)
            y = x - mu
            z = np.linalg.solve(chol, y.reshape(-1, self.n_dim).T).T.reshape(y.shape)
            log_det = 2.0 * np.sum(np.log(np.diag(chol)))
            out.append(
                np.log(w)
                - 0.5 * np.sum(z**2, axis=-1)
                - 0.5 * (log_det + self.n_dim * np.log(2 * np.pi))
            )
        return np.stack(out, axis=-1)

    def assign_modes(self, draws: np.ndarray) -> np.ndarray:
        """Index of the largest weighted component density, ``(..., d) -> (...)`` ints."""
        return np.argmax(self.component_log_densities(draws), axis=-1)

    def exact_draws(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` independent draws of the mixture and their component labels (numpy)."""
        assert self.means is not None and self.covs is not None and self.weights is not None
        rng = np.random.default_rng(seed)
        labels = rng.choice(len(self.weights), size=n, p=self.weights)
        x = np.empty((n, self.n_dim))
        for k, (mu, cov) in enumerate(zip(self.means, self.covs, strict=True)):
            m = labels == k
            x[m] = mu + rng.standard_normal((int(m.sum()), self.n_dim)) @ np.linalg.cholesky(cov).T
        return x, labels


def _mixture_log_prob(means: np.ndarray, covs: np.ndarray, weights: np.ndarray):
    """JAX ``log_prob(x)`` of the normalised mixture (float32-safe: whitened quadratic forms)."""
    chols = np.linalg.cholesky(covs)
    inv_chols = np.linalg.inv(chols)  # lower triangular: z = L^-1 (x - mu)
    d = means.shape[1]
    log_c = (
        np.log(weights)
        - np.sum(np.log(np.diagonal(chols, axis1=1, axis2=2)), axis=1)
        - 0.5 * d * np.log(2 * np.pi)
    )
    mu = jnp.asarray(means, dtype=jnp.float32)
    inv_l = jnp.asarray(inv_chols, dtype=jnp.float32)
    c = jnp.asarray(log_c, dtype=jnp.float32)

    def log_prob(x: jax.Array) -> jax.Array:
        z = jnp.einsum("kij,kj->ki", inv_l, x - mu)
        return jax.nn.logsumexp(c - 0.5 * jnp.sum(z**2, axis=-1))

    return log_prob


def _make_mixture(
    name: str,
    means: np.ndarray,
    covs: np.ndarray,
    weights: np.ndarray,
    start_mode: int,
    description: str,
) -> MixtureTarget:
    mean = weights @ means
    second = np.einsum("k,kij->ij", weights, covs) + np.einsum("k,ki,kj->ij", weights, means, means)
    cov = second - np.outer(mean, mean)
    return MixtureTarget(
        name=name,
        n_dim=means.shape[1],
        log_prob=_mixture_log_prob(means, covs, weights),
        mean=mean,
        sd=np.sqrt(np.diag(cov)),
        mode_centres=means.copy(),
        mode_weights=weights.copy(),
        mixture_weights=weights.copy(),
        cov=cov,
        description=description,
        means=means,
        covs=covs,
        weights=weights,
        start_mode=start_mode,
    )


def _make_gauss4_8d() -> MixtureTarget:
    d, k = 8, 4
    means = np.zeros((k, d))
    means[np.arange(k), np.arange(k)] = 10.0 / np.sqrt(2.0)  # every pair 10 apart
    covs = np.broadcast_to(np.eye(d), (k, d, d)).copy()
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    return _make_mixture(
        "gauss4_8d",
        means,
        covs,
        weights,
        start_mode=3,
        description=(
            "0.4/0.3/0.2/0.1 mixture of N((10/sqrt2) e_k, I_8), k = 0..3: every pair of "
            "centres 10 apart; chains start in the 0.1 mode"
        ),
    )


def _make_corr4_6d() -> MixtureTarget:
    d, k = 6, 4
    rng = np.random.default_rng(CORR4_SEED)
    scales = np.array([0.4, 1.0, 2.0, 3.0])
    shape_sd = np.geomspace(0.6, 1.0 / 0.6, d)
    covs = np.empty((k, d, d))
    for i in range(k):
        q, r = np.linalg.qr(rng.normal(size=(d, d)))
        q = q * np.sign(np.diag(r))  # Haar rotation
        covs[i] = scales[i] ** 2 * (q * shape_sd**2) @ q.T
    means = np.zeros((k, d))
    means[np.arange(k), np.arange(k)] = [5.0, 9.0, 14.0, 20.0]
    weights = np.array([0.15, 0.35, 0.2, 0.3])
    return _make_mixture(
        "corr4_6d",
        means,
        covs,
        weights,
        start_mode=0,
        description=(
            "0.15/0.35/0.2/0.3 mixture of 4 correlated 6-D Gaussians, scales 0.4/1/2/3 "
            "(random rotations, sd ratio 2.8 within a mode), centres (5, 9, 14, 20) e_k; "
            "chains start in the scale-0.4 mode"
        ),
    )


_FACTORIES = {"gauss4_8d": _make_gauss4_8d, "corr4_6d": _make_corr4_6d}
TEMPERING_TARGETS: tuple[str, ...] = ("gauss4_8d", "corr4_6d", "dual_moon_2d")

DUAL_MOON_START = np.array([np.sqrt(2.0), np.sqrt(2.0)])


@functools.cache
def get_tempering_target(name: str) -> Target:
    """``gauss4_8d``, ``corr4_6d`` (`MixtureTarget`) or any `benchmarks.targets` target."""
    if name in _FACTORIES:
        return _FACTORIES[name]()
    return get_target(name)


def start_centre(target: Target) -> np.ndarray:
    """The point every chain starts near: the start mode's mean, or dual_moon's (sqrt2, sqrt2)."""
    if isinstance(target, MixtureTarget):
        assert target.means is not None
        return target.means[target.start_mode]
    if target.name == "dual_moon_2d":
        return DUAL_MOON_START
    raise ValueError(f"no start mode defined for {target.name}")


def start_positions(target: Target, n_chains: int, seed: int) -> jax.Array:
    """``(n_chains, d)`` float32: the start centre + ``N(0, JITTER_SD^2)``, key ``seed``."""
    centre = jnp.asarray(start_centre(target), dtype=jnp.float32)
    noise = jax.random.normal(jax.random.key(seed), (n_chains, target.n_dim), jnp.float32)
    return centre + JITTER_SD * noise


def misassignment_rate(target: MixtureTarget, n: int = 4_000_000, seed: int = 0) -> float:
    """Fraction of ``n`` exact draws the assignment rule gives to another component."""
    x, labels = target.exact_draws(n, seed)
    return float(np.mean(target.assign_modes(x) != labels))
