"""Checkpoint and resume: a run killed with SIGKILL and resumed equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
import flowmc_like.checkpoint.files as checkpoint_module
from tests.reliability import checkpoint_run

REPO = Path(__file__).resolve().parents[2]


def _tiny_sampler(log_prob=checkpoint_run.log_prob, **overrides) -> fm.Sampler:
    settings = dict(
        n_dim=2,
        n_chains=4,
        n_training_loops=3,
        n_production_loops=2,
        n_local_steps=5,
        n_global_steps=5,
        progress_bar=False,
    )
    settings.update(overrides)
    return fm.Sampler(log_prob, **settings)


def _assert_identical(resumed: fm.SamplerResult, expected: fm.SamplerResult) -> None:
    """Every array of the two results is bit-identical (timings aside)."""
    for name in (
        "flat_samples",
        "log_prob",
        "is_accepted",
        "is_global",
        "flat_warmup_samples",
        "warmup_log_prob",
        "local_acceptance",
        "global_acceptance",
    ):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(expected, name), name)
    for name, value in expected.history.as_dict().items():
        np.testing.assert_array_equal(resumed.history.as_dict()[name], value, name)
    for got, want in zip(
        jax.tree.leaves(resumed.model_params), jax.tree.leaves(expected.model_params), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    jax.tree.map(np.testing.assert_array_equal, resumed.kernel_params, expected.kernel_params)


def _loops_done(path: Path) -> int:
    with np.load(path / "state.npz") as stored:
        return json.loads(str(stored["meta"]))["n_done"]


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_run_then_resume_is_bit_identical(tmp_path):
    """SIGKILL a checkpointed run in a subprocess mid-run, resume it, compare to a full run."""
    path = tmp_path / "run.ckpt"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        # Share this session's compilation cache: the resume below then compiles nothing.
        "JAX_COMPILATION_CACHE_DIR": str(jax.config.jax_compilation_cache_dir or ""),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.checkpoint_run", str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    try:
        while not (path / "loop_00004.npz").exists():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run never reached loop 5"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    n_loops = 16
    n_done = _loops_done(path)
    assert 4 <= n_done < n_loops, f"the run was not interrupted (n_done={n_done})"

    resumed = fm.Sampler.resume(path)
    assert _loops_done(path) == n_loops
    expected = checkpoint_run.make_sampler().run(
        jax.random.key(checkpoint_run.SEED), checkpoint_run.initial_position()
    )
    _assert_identical(resumed, expected)


def test_resume_from_each_loop_is_bit_identical(tmp_path, monkeypatch):
    """A run stopped at the switch to production, and one stopped after its last loop."""
    key, x0 = jax.random.key(1), jnp.full((4, 2), 0.5)
    expected = _tiny_sampler().run(key, x0)
    for n_done in (3,):  # after the 3 training loops: the 4th loop freezes the kernel params
        sampler = _tiny_sampler()
        directory = tmp_path / f"stopped_after_{n_done}"
        _run_first_loops(monkeypatch, sampler, key, x0, directory, n_done)
        _assert_identical(sampler.resume(directory), expected)
    # Resuming a finished run runs nothing more and returns the same result.
    _assert_identical(sampler.resume(directory), expected)


def test_a_tempered_run_resumes_bit_identically(tmp_path, monkeypatch):
    """Replicas, ladder, exchange parity and round-trip flags are part of the saved state."""
    sampler = _tiny_sampler(
        log_prob=checkpoint_run.log_prior_and_likelihood,
        n_temperatures=3,
        log_prior=checkpoint_run.log_prior,
    )
    key, x0 = jax.random.key(1), jnp.full((4, 2), 0.5)
    expected = sampler.run(key, x0)
    directory = tmp_path / "tempered"
    _run_first_loops(monkeypatch, sampler, key, x0, directory, 2)
    resumed = fm.Sampler.resume(directory)
    _assert_identical(resumed, expected)
    assert resumed.history.exchange_rate.shape == (5, 2)


def _run_first_loops(
    monkeypatch, sampler: fm.Sampler, key, x0, directory: Path, n_done: int, **run_kwargs
):
    """Leave ``directory`` as a run killed right after loop ``n_done`` would leave it."""

    class Stop(Exception):
        pass

    real_save = checkpoint_module.save_state

    def save_then_stop(path, state, meta):
        real_save(path, state, meta)
        if meta["n_done"] == n_done:
            raise Stop

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint_module, "save_state", save_then_stop)
        with pytest.raises(Stop):
            sampler.run(key, x0, checkpoint_path=directory, **run_kwargs)
    assert _loops_done(directory) == n_done


def test_an_automatic_run_resumes_to_the_same_decisions(tmp_path, monkeypatch):
    """Stopped near the end of automatic training and in production, a resume decides alike."""
    sampler = _tiny_sampler(
        n_training_loops=None, n_production_loops=None, max_production_loops=8, target_ess=1e9
    )
    key, x0 = jax.random.key(1), jnp.full((4, 2), 0.5)
    expected = sampler.run(key, x0)
    for n_done in (14,):  # in production (training stops: the fixed-loop and warm tests)
        directory = tmp_path / f"stopped_after_{n_done}"
        _run_first_loops(monkeypatch, sampler, key, x0, directory, n_done)
        _assert_identical(sampler.resume(directory), expected)


def test_resume_with_a_lambda_needs_log_prob(tmp_path, monkeypatch):
    """A log density pickle cannot store by name is asked for, and then works."""
    sampler = _tiny_sampler(log_prob=lambda x: -0.5 * jnp.sum(x**2))
    path = tmp_path / "run.ckpt"
    key, x0 = jax.random.key(0), jnp.zeros((4, 2))
    _run_first_loops(monkeypatch, sampler, key, x0, path, 2)
    with pytest.raises(ValueError, match=r"does not hold log_prob.*log_prob=\.\.\."):
        fm.Sampler.resume(path)
    resumed = fm.Sampler.resume(path, log_prob=sampler.log_prob)
    _assert_identical(resumed, sampler.run(key, x0))


def test_checkpoint_errors(tmp_path, monkeypatch):
    """Existing, missing, corrupt and mismatched checkpoints each give a clear error."""
    sampler = _tiny_sampler()
    key, x0 = jax.random.key(0), jnp.zeros((4, 2))
    path = tmp_path / "run.ckpt"
    _run_first_loops(monkeypatch, sampler, key, x0, path, 2)

    with pytest.raises(ValueError, match="already holds a checkpoint"):
        sampler.run(key, x0, checkpoint_path=path)
    with pytest.raises(ValueError, match="is not a flowmc_like checkpoint"):
        fm.Sampler.resume(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"other settings \(.*n_local_steps: checkpoint 5"):
        _tiny_sampler(n_local_steps=7).resume(path)
    with pytest.raises(ValueError, match="other settings"):
        _tiny_sampler(local_kernel=fm.HMC()).resume(path)

    state = path / "state.npz"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"state\.npz is corrupt or incomplete"):
        fm.Sampler.resume(path)

    (path / "run.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"run\.json is corrupt"):
        fm.Sampler.resume(path)


def test_checkpoint_path_that_is_a_file(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ValueError, match=r"checkpoint_path .* is a file"):
        _tiny_sampler().run(jax.random.key(0), jnp.zeros((4, 2)), checkpoint_path=file)


def test_a_warm_started_automatic_run_resumes_to_the_same_decisions(tmp_path, monkeypatch):
    """The warm start (model, kernel params, fewer training loops) is part of the checkpoint."""
    sampler = _tiny_sampler()
    key, x0 = jax.random.key(1), jnp.full((4, 2), 0.5)
    earlier = sampler.run(key, x0)
    automatic = _tiny_sampler(
        n_training_loops=None, n_production_loops=None, max_production_loops=3, target_ess=1e9
    )
    expected = automatic.run(jax.random.key(2), warm_start=earlier)
    directory = tmp_path / "warm"
    last = earlier.last_positions
    _run_first_loops(
        monkeypatch, automatic, jax.random.key(2), last, directory, 4, warm_start=earlier
    )
    resumed = fm.Sampler.resume(directory)
    _assert_identical(resumed, expected)
    assert resumed.history.is_training.sum() < 20
