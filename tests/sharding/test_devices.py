"""Chains sharded over devices: 4 forced CPU devices in a subprocess, and the devices argument.

The subprocess (`sharded_runs.py`, a background job of tests/background.py) runs with
``--xla_force_host_platform_device_count=4``; see that file for the configurations. Checked
here: the chains' arrays are split over the 4 devices along the chain axis and the model is
replicated; two 4-device runs with the same key (the second stopped after loop 5 and resumed
from its checkpoint) are bit-identical; 4-device and 1-device runs both match the exact
answers (MCSE z-tests) and each other; indivisible chain counts raise an error saying what
to do; the default on a CPU is one device.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from tests import background

Z_BOUND = 4.0


def log_prob(x):
    return -0.5 * jnp.sum(x**2)


@pytest.mark.parametrize(
    "devices, error, match",
    [
        ("cpu", TypeError, "devices must be a sequence of jax devices"),
        ([0, 1], TypeError, "devices must hold jax devices"),
        ([], ValueError, "devices is empty"),
        (lambda: jax.devices() * 2, ValueError, "more than once"),
    ],
    ids=["string", "ints", "empty", "duplicates"],
)
def test_bad_devices_are_refused(devices, error, match):
    devices = devices() if callable(devices) else devices
    with pytest.raises(error, match=match):
        fm.Sampler(log_prob, n_dim=2, devices=devices)


def test_one_device_runs_the_single_device_program():
    """devices=[one device] gives the same bits as the default on a one-device machine."""
    settings = dict(
        n_dim=2,
        n_chains=4,
        n_training_loops=1,
        n_production_loops=1,
        n_local_steps=3,
        n_global_steps=2,
        n_epochs=1,
        batch_size=8,
        n_max_examples=16,
        progress_bar=False,
    )
    x0 = jnp.zeros((4, 2))
    default = fm.Sampler(log_prob, **settings).run(jax.random.key(0), x0)
    explicit = fm.Sampler(log_prob, devices=jax.devices()[:1], **settings).run(
        jax.random.key(0), x0
    )
    np.testing.assert_array_equal(default.samples, explicit.samples)


@pytest.fixture(scope="module")
def four_devices():
    """The findings of sharded_runs.py on 4 forced CPU devices (a background job)."""
    outcome = background.outcome("sharded_runs")
    assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-5000:]
    return json.loads(outcome.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_chains_are_sharded_over_four_devices(four_devices):
    sharding = four_devices["sharding"]
    assert four_devices["n_devices"] == 4
    assert sharding["n_devices_holding_positions"] == 4
    assert sharding["shard_shapes"] == [[4, 3]]  # 16 chains, 4 per device
    for name in (
        "position_spec",
        "states_spec",
        "local_trace_spec",
        "global_trace_spec",
        "global_states_spec",
    ):
        assert sharding[name] == sharding["expected_spec"], (name, sharding)
    assert sharding["model_params_replicated"]


@pytest.mark.slow
def test_four_device_runs_are_reproducible_and_resumable(four_devices):
    """A second run with the same key, stopped after loop 5 and resumed, equals the first."""
    assert four_devices["identical_after_resume"]


@pytest.mark.slow
@pytest.mark.statistical
@pytest.mark.parametrize("run", ["mixture_4_devices", "mixture_1_device"])
def test_four_and_one_device_runs_match_the_exact_mixture(four_devices, run):
    figures = four_devices[run]
    assert np.max(np.abs(figures["z_mean"])) < Z_BOUND, figures
    assert np.max(np.abs(figures["z_var"])) < Z_BOUND, figures
    assert abs(figures["z_weight"]) < Z_BOUND, figures
    assert figures["global_acceptance"] > 0.1, figures


@pytest.mark.slow
@pytest.mark.statistical
def test_four_and_one_device_means_agree(four_devices):
    """Two-sample z of the means (each with its own ArviZ ESS)."""
    four, one = four_devices["mixture_4_devices"], four_devices["mixture_1_device"]
    var = 1.0 + 2.5**2 * (1 - 0.4**2)
    se = np.sqrt(var / np.asarray(four["mean_ess"]) + var / np.asarray(one["mean_ess"]))
    z = (np.asarray(four["mean"]) - np.asarray(one["mean"])) / se
    assert np.max(np.abs(z)) < Z_BOUND, z


@pytest.mark.slow
@pytest.mark.statistical
def test_tempered_replicas_split_with_their_chains(four_devices):
    """Tempering on 4 devices: replicas sharded along the chain axis, exact weights."""
    figures = four_devices["tempered_4_devices"]
    assert figures["replicas_spec"] == four_devices["sharding"]["expected_spec"], figures
    assert figures["n_devices_holding_replicas"] == 4
    assert abs(figures["mixture"]["z_weight"]) < Z_BOUND, figures
    assert np.max(np.abs(figures["mixture"]["z_mean"])) < Z_BOUND, figures


def test_bulk_random_draws_do_not_depend_on_the_sharding(four_devices):
    """The phases' one-call generator draws split over 4 devices equal the 1-device ones."""
    assert four_devices["bulk_draws_sharding_invariant"] is True


@pytest.mark.slow
@pytest.mark.statistical
def test_sharded_ising_matches_enumeration(four_devices):
    figures = four_devices["ising_4_devices"]
    assert np.max(np.abs(figures["z"])) < Z_BOUND, figures
    assert figures["global_acceptance"] > 0.3, figures


@pytest.mark.slow
def test_indivisible_chain_counts_say_how_to_fix_them(four_devices):
    for name in ("indivisible_error", "indivisible_run_error"):
        message = four_devices[name]
        assert message is not None, name
        assert "does not split evenly over 4 devices" in message
        assert "multiple of 4" in message and "devices=" in message
    # The default on a CPU is one device, whatever the number of forced CPU devices.
    assert four_devices["default_on_cpu_draws"] == [6, 4, 3]


@pytest.mark.slow
def test_multihost_simulation_runs():
    """docs/examples/multihost_cpu.py: 2 processes x 2 CPU devices, one run over all 4
    (a background job, with the example's quick settings)."""
    outcome = background.outcome("multihost")
    assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-5000:]
    assert "process 0 of 2, 4 devices in all" in outcome.stdout, outcome.stdout
    weight = float(outcome.stdout.split("weight of the right mode ")[1].split()[0])
    assert abs(weight - 0.7) < 0.1, outcome.stdout
