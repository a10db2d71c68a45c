"""Chains sharded over devices: 4 forced CPU devices in a subprocess, and the devices argument.

The subprocess (`sharded_runs.py`) runs with ``--xla_force_host_platform_device_count=4``;
see that file for the configurations. Checked here: the chains' arrays are split over the 4
devices along the chain axis and the model is replicated; two 4-device runs with the same key
(and one stopped and resumed from its checkpoint) are bit-identical; 4-device and 1-device
runs both match the exact answers (MCSE z-tests) and each other; indivisible chain counts
raise an error saying what to do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm

REPO = Path(__file__).resolve().parents[2]
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
def four_devices(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("sharded")
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "PYTHONPATH": str(REPO),
        "JAX_COMPILATION_CACHE_DIR": str(jax.config.jax_compilation_cache_dir),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    script = REPO / "tests" / "sharding" / "sharded_runs.py"
    process = subprocess.run(
        [sys.executable, str(script), str(out_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-5000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


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
    assert four_devices["identical_4_devices"]
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


@pytest.mark.slow
def test_multihost_simulation_runs(tmp_path):
    """docs/examples/multihost_cpu.py: 2 processes x 2 CPU devices, one run over all 4."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("XLA_FLAGS", None)
    script = REPO / "docs" / "examples" / "multihost_cpu.py"
    process = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-5000:]
    assert "process 0 of 2, 4 devices in all" in process.stdout, process.stdout
    weight = float(process.stdout.split("weight of the right mode ")[1].split()[0])
    assert abs(weight - 0.7) < 0.1, process.stdout
