"""The settings docs/hard_targets.md recommends for a kind of target sample it correctly.

Rosenbrock's ridge, ``x0 ~ N(1, 10)``, ``x1 | x0 ~ N(x0^2, 0.1)``, is the hard case: the mean
and sd of ``x1`` are set by the far tails of ``x0`` (``x1`` grows like ``x0^2``), which a flow
trained on the chains' draws learns last. Its moments are exact: mean ``(1, 11)``, sd
``(sqrt 10, sqrt 240.1)``.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

import flowmc_like as fm
from benchmarks.peers.flowmc_like_peer import build_component
from benchmarks.recipes import CURVED
from tests.helpers.mcse import mean_z_scores

pytestmark = pytest.mark.statistical

ROSENBROCK_MEAN = np.array([1.0, 11.0])
ROSENBROCK_SD = np.array([np.sqrt(10.0), np.sqrt(240.1)])


def rosenbrock(x):
    return -0.5 * (x[0] - 1.0) ** 2 / 10.0 - 0.5 * (x[1] - x[0] ** 2) ** 2 / 0.1


def curved_ridge_recipe() -> dict:
    """docs/hard_targets.md, "curved ridge, heavy tails": ``benchmarks.recipes.CURVED``
    settings (HMC in x-space, a whitened RealNVP, a 20-loop training window, ...), built."""
    return {key: build_component(value, None) for key, value in CURVED.items()}


@pytest.mark.slow
def test_curved_ridge_recipe_gets_rosenbrock_tails_right():
    start = jax.random.uniform(jax.random.key(1), (32, 2), minval=-5.0, maxval=5.0)
    sampler = fm.Sampler(rosenbrock, n_dim=2, progress_bar=False, **curved_ridge_recipe())
    result = sampler.run(jax.random.key(0), start)
    draws = np.asarray(result.samples, dtype=np.float64)
    z = mean_z_scores(draws, ROSENBROCK_MEAN, ROSENBROCK_SD)
    assert np.all(np.abs(z) < 4), z
    sd = draws.reshape(-1, 2).std(0)
    assert np.all(np.abs(sd / ROSENBROCK_SD - 1) < 0.15), sd
    # The far tail of x0 (beyond 2.5 sd, 1.14% of the mass) is where x1's mean is decided.
    p_tail = math.erfc(8.0 / math.sqrt(20.0))
    in_tail = (np.abs(draws[..., :1] - 1.0) > 8.0).astype(np.float64)
    sd_tail = math.sqrt(p_tail * (1.0 - p_tail))
    z_tail = mean_z_scores(in_tail, np.array([p_tail]), np.array([sd_tail]))
    assert abs(z_tail[0]) < 4, (in_tail.mean(), p_tail, z_tail)
    assert np.mean(result.global_acceptance) > 0.5
