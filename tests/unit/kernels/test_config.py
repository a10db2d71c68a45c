"""Kernel configuration objects: validation, hashability, initial params."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like._types import Space
from flowmc_like.kernels import (
    HMC,
    MALA,
    HMCParams,
    MALAParams,
    RandomWalk,
    RandomWalkParams,
)

BAD_FLOATS = [
    (0.0, ValueError),
    (-0.1, ValueError),
    (math.inf, ValueError),
    (-math.inf, ValueError),
    (math.nan, ValueError),
    (True, TypeError),
    ("0.1", TypeError),
    (None, TypeError),
]


@pytest.mark.parametrize(("value", "error"), BAD_FLOATS)
def test_mala_rejects_bad_step_size(value, error):
    with pytest.raises(error, match="MALA: step_size must be a finite number > 0; got"):
        MALA(step_size=value)


@pytest.mark.parametrize(("value", "error"), BAD_FLOATS)
def test_hmc_rejects_bad_step_size(value, error):
    with pytest.raises(error, match="HMC: step_size must be a finite number > 0; got"):
        HMC(step_size=value)


@pytest.mark.parametrize(("value", "error"), BAD_FLOATS)
def test_random_walk_rejects_bad_scale(value, error):
    with pytest.raises(error, match="RandomWalk: scale must be a finite number > 0; got"):
        RandomWalk(scale=value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-3, ValueError),
        (2.5, TypeError),
        (True, TypeError),
        ("10", TypeError),
        (None, TypeError),
    ],
)
def test_hmc_rejects_bad_n_leapfrog(value, error):
    with pytest.raises(error, match="HMC: n_leapfrog must be an integer >= 1; got"):
        HMC(n_leapfrog=value)


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    kernel = HMC(step_size=np.float32(0.25), n_leapfrog=np.int64(7))
    assert type(kernel.step_size) is float and type(kernel.n_leapfrog) is int
    assert kernel == HMC(step_size=0.25, n_leapfrog=7)
    assert hash(kernel) == hash(HMC(step_size=0.25, n_leapfrog=7))


def test_defaults_space_and_targets():
    assert MALA().step_size == 0.1 and RandomWalk().scale == 0.1
    assert (HMC().step_size, HMC().n_leapfrog) == (0.1, 10)
    assert MALA.space is HMC.space is RandomWalk.space is Space.CONTINUOUS
    assert (MALA.target_acceptance, HMC.target_acceptance, RandomWalk.target_acceptance) == (
        0.574,
        0.65,
        0.234,
    )


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        MALA().step_size = 0.2


def test_init_params_are_arrays():
    mala = MALA(step_size=0.3).init_params(4)
    assert isinstance(mala, MALAParams) and mala.step_size.shape == ()
    assert float(mala.step_size) == pytest.approx(0.3)
    rw = RandomWalk(scale=0.3).init_params(4)
    assert isinstance(rw, RandomWalkParams) and rw.scale.shape == ()
    hmc = HMC(step_size=0.3).init_params(4)
    assert isinstance(hmc, HMCParams) and hmc.step_size.shape == ()
    np.testing.assert_array_equal(np.asarray(hmc.inverse_mass), np.ones(4))
    assert hmc.inverse_mass.dtype == jnp.float32
