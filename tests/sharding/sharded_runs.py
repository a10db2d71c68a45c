"""Runs on 4 forced CPU devices and prints one JSON line of findings for test_devices.py.

Run as ``XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/sharding/sharded_runs.py
OUT_DIR``. Every figure is computed here and checked by the test in the parent process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

import flowmc_like as fm
from flowmc_like.checkpoint import files as checkpoint_module
from flowmc_like.exact import compute_observables, enumerate_lattice
from flowmc_like.exporters.arviz import ess_bulk
from flowmc_like.lattice import BETA_C, make_ising
from tests.helpers.mcse import mean_z_scores, variance_z_scores
from tests.helpers.targets import two_mode_mixture

MIXTURE = two_mode_mixture(n_dim=3, offset=2.5, weights=(0.3, 0.7))
MIXTURE_MEAN = np.full(3, 2.5 * (0.7 - 0.3))
MIXTURE_VAR = np.full(3, 1.0 + 2.5**2 * (1.0 - (0.7 - 0.3) ** 2))
_OFFSETS = np.array([-2.5, 2.5]) - MIXTURE_MEAN[0]  # mode centres minus the mean, per axis
MIXTURE_KURTOSIS = float(
    np.sum(np.array([0.3, 0.7]) * (_OFFSETS**4 + 6 * _OFFSETS**2 + 3)) / MIXTURE_VAR[0] ** 2
)
ISING = make_ising(L=4, beta=BETA_C)


def continuous_sampler(devices) -> fm.Sampler:
    return fm.Sampler(
        MIXTURE.log_prob,
        n_dim=3,
        n_chains=16,
        global_model=fm.RealNVP(n_layers=4, hidden_sizes=(32, 32)),
        n_training_loops=8,
        n_production_loops=12,
        n_local_steps=40,
        n_global_steps=20,
        n_epochs=5,
        batch_size=512,
        n_max_examples=4096,
        devices=devices,
        progress_bar=False,
    )


def continuous_start() -> jax.Array:
    return jax.random.uniform(jax.random.key(1), (16, 3), minval=-5.0, maxval=5.0)


def mixture_figures(result: fm.SamplerResult) -> dict:
    draws = result.samples
    nearest_first = (
        ((draws - MIXTURE.centres[0]) ** 2).sum(-1) < ((draws - MIXTURE.centres[1]) ** 2).sum(-1)
    ).astype(float)
    weight = float(nearest_first.mean())
    weight_ess = float(ess_bulk(nearest_first[..., None])[0])
    return {
        "z_mean": mean_z_scores(draws, MIXTURE_MEAN, np.sqrt(MIXTURE_VAR)).tolist(),
        "z_var": variance_z_scores(draws, MIXTURE_MEAN, MIXTURE_VAR, MIXTURE_KURTOSIS).tolist(),
        "weight": weight,
        "z_weight": (weight - 0.3) / np.sqrt(0.3 * 0.7 / weight_ess),
        "mean": draws.reshape(-1, 3).mean(0).tolist(),
        "mean_ess": ess_bulk(draws).tolist(),
        "global_acceptance": float(np.mean(result.global_acceptance)),
    }


def arrays_of(result: fm.SamplerResult) -> dict[str, np.ndarray]:
    arrays = {
        "samples": result.samples,
        "log_prob": result.log_prob,
        "local_acceptance": result.local_acceptance,
        "global_acceptance": result.global_acceptance,
        "warmup_samples": result.warmup_samples,
    }
    model_leaves = jax.tree.leaves(result.model_params)
    arrays.update({f"model_{i}": leaf for i, leaf in enumerate(model_leaves)})
    return {name: np.asarray(value) for name, value in arrays.items()}


def identical(a: fm.SamplerResult, b: fm.SamplerResult) -> bool:
    left, right = arrays_of(a), arrays_of(b)
    return left.keys() == right.keys() and all(
        np.array_equal(left[name], right[name], equal_nan=True) for name in left
    )


def sharding_findings(sampler: fm.Sampler, x0: jax.Array) -> dict:
    """Where the chains' states and the phases' outputs live (4 devices, P('chains'))."""
    prepared = sampler._prepare(jax.random.key(0), x0)
    position = prepared.initial_state.states.position
    local_outputs = prepared.programs.local.output_shardings
    states_out, trace_out = local_outputs[0], local_outputs[3]
    global_states, global_trace, _ = prepared.programs.global_.output_shardings
    train_state_out = prepared.programs.train.output_shardings[1]
    return {
        "n_devices_holding_positions": len(position.sharding.device_set),
        "position_spec": str(position.sharding.spec),
        "shard_shapes": sorted({tuple(s.data.shape) for s in position.addressable_shards}),
        "local_trace_spec": str(trace_out.position.spec),
        "global_trace_spec": str(global_trace.position.spec),
        "global_states_spec": str(global_states.position.spec),
        "model_params_replicated": all(
            s.is_fully_replicated for s in jax.tree.leaves(train_state_out)
        ),
        "expected_spec": str(PartitionSpec("chains")),
        "states_spec": str(states_out.position.spec),
    }


def run_stopped_then_resumed(sampler: fm.Sampler, x0: jax.Array, directory: Path, n_done: int):
    """A run stopped right after loop ``n_done`` is saved, then resumed to its end."""

    class Stop(Exception):
        pass

    real_save = checkpoint_module.save_state

    def save_then_stop(path, state, meta):
        real_save(path, state, meta)
        if meta["n_done"] == n_done:
            raise Stop

    checkpoint_module.save_state = save_then_stop
    try:
        sampler.run(jax.random.key(0), x0, checkpoint_path=directory)
    except Stop:
        pass
    finally:
        checkpoint_module.save_state = real_save
    return sampler.resume(directory)


def ising_figures(devices) -> dict:
    exact = enumerate_lattice(4, 2, BETA_C)
    sampler = fm.Sampler(
        ISING.log_prob,
        n_chains=32,
        local_kernel=fm.SiteFlip(2, delta_log_prob=ISING.delta_log_prob),
        global_model=fm.Autoregressive(2, hidden_sizes=(32,), symmetric=True),
        n_training_loops=10,
        n_production_loops=10,
        n_local_steps=10,
        n_global_steps=20,
        n_epochs=5,
        batch_size=256,
        n_max_examples=2048,
        devices=devices,
        progress_bar=False,
    )
    states = np.random.default_rng(0).integers(0, 2, (32, ISING.n_dim))
    result = sampler.run(jax.random.key(1), jnp.asarray(states, jnp.int32))
    observables = compute_observables(result.samples, exact)[..., :3]
    return {
        "z": mean_z_scores(observables, exact.mean[:3], exact.sd[:3]).tolist(),
        "global_acceptance": float(np.mean(result.global_acceptance)),
    }


def tempered_figures(devices) -> dict:
    """A tempered run from one mode of the mixture: replicas split with their chains."""
    sampler = fm.Sampler(
        MIXTURE.log_prob,
        n_dim=3,
        n_chains=16,
        global_model=None,
        n_temperatures=4,
        n_training_loops=8,
        n_production_loops=30,
        n_local_steps=40,
        devices=devices,
        progress_bar=False,
    )
    x0 = jnp.asarray(MIXTURE.centres[0]) + 0.1 * jax.random.normal(jax.random.key(2), (16, 3))
    prepared = sampler._prepare(jax.random.key(0), x0)
    replicas = prepared.initial_state.tempering.replicas.position
    result = sampler.run(jax.random.key(0), x0)
    return {
        "replicas_spec": str(getattr(replicas.sharding, "spec", None)),
        "n_devices_holding_replicas": len(replicas.sharding.device_set),
        "mixture": mixture_figures(result),
    }


def bulk_draws_sharding_invariant(devices) -> bool:
    """The phases' bulk draws (local noise, global blocks) are the same on 1 and 4 devices.

    Shapes as in the local phase ``(n_steps, n_chains, n_dim + 1)`` and the global phase
    ``(n_chains, block_steps, n + 1)``, split along the chain axis.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from flowmc_like import _random

    mesh = Mesh(np.array(devices), ("chains",))
    key = jax.random.key(11)
    same = True
    for shape, spec in (
        ((5, 16, 4), PartitionSpec(None, "chains")),
        ((16, 7, 4), PartitionSpec("chains")),
    ):
        sharding = NamedSharding(mesh, spec)
        for draw in (_random.uniform, _random.bits):
            sharded = jax.jit(
                lambda k, draw=draw, shape=shape: draw(k, shape), out_shardings=sharding
            )
            single = jax.jit(lambda k, draw=draw, shape=shape: draw(k, shape))
            same &= bool(np.array_equal(np.asarray(sharded(key)), np.asarray(single(key))))
    return same


def main(out_dir: Path) -> None:
    devices = jax.devices()
    findings: dict = {"n_devices": len(devices)}
    x0 = continuous_start()
    sharded = continuous_sampler(devices)
    findings["sharding"] = sharding_findings(sharded, x0)

    first = sharded.run(jax.random.key(0), x0)
    # A second 4-device run with the same key, stopped after loop 5 and resumed from its
    # checkpoint: bit-identical to the first, so same-key runs and resumes both reproduce.
    resumed = run_stopped_then_resumed(continuous_sampler(devices), x0, out_dir / "ckpt", 5)
    findings["identical_after_resume"] = identical(first, resumed)
    one_device = continuous_sampler(devices[:1]).run(jax.random.key(0), x0)
    findings["mixture_4_devices"] = mixture_figures(first)
    findings["mixture_1_device"] = mixture_figures(one_device)
    findings["max_abs_difference_1_vs_4"] = float(
        np.max(np.abs(first.samples - one_device.samples))
    )
    findings["ising_4_devices"] = ising_figures(devices)
    findings["bulk_draws_sharding_invariant"] = bulk_draws_sharding_invariant(devices)
    findings["tempered_4_devices"] = tempered_figures(devices)

    try:
        fm.Sampler(MIXTURE.log_prob, n_dim=3, n_chains=10, devices=devices)
        findings["indivisible_error"] = None
    except ValueError as error:
        findings["indivisible_error"] = str(error)
    try:
        fm.Sampler(MIXTURE.log_prob, n_dim=3, devices=devices).run(
            jax.random.key(0), jnp.zeros((6, 3))
        )
        findings["indivisible_run_error"] = None
    except ValueError as error:
        findings["indivisible_run_error"] = str(error)
    # devices=None on a CPU takes the default device only: 6 chains run on 4 forced devices.
    tiny = dict(n_training_loops=1, n_production_loops=1, n_local_steps=2, n_global_steps=2)
    default = fm.Sampler(MIXTURE.log_prob, n_dim=3, progress_bar=False, **tiny)
    findings["default_on_cpu_draws"] = list(default.run(jax.random.key(0), x0[:6]).samples.shape)
    print(json.dumps(findings))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
