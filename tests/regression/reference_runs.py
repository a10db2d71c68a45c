"""Small runs whose draws are pinned: the same key must give the same draws across refactors.

``python -m tests.regression.reference_runs [case ...]`` writes ``reference_draws.npz`` next to
this file from the installed flowmc_like (only the named cases are rerun when some are named);
`tests/regression/test_same_draws.py` reruns every case and compares. Regenerate only for a
deliberate change of the draws, and say why in the commit. The cases use the public API only,
so the file can be produced by any version of the package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import flowmc_like as fm

REFERENCE_FILE = Path(__file__).with_name("reference_draws.npz")

SMALL = dict(
    n_training_loops=3,
    n_production_loops=2,
    n_local_steps=8,
    n_global_steps=8,
    n_epochs=2,
    batch_size=64,
    n_max_examples=256,
    progress_bar=False,
)


def _two_moons(x):
    left = -0.5 * jnp.sum((x + 2.0) ** 2) / 0.6**2
    right = -0.5 * jnp.sum((x - 2.0) ** 2) / 0.6**2
    return jnp.logaddexp(left, right) - 0.1 * x[0] * x[1]


def _ising_3x3(s):
    sigma = (2 * s - 1).reshape(3, 3)
    bonds = sigma * jnp.roll(sigma, 1, 0) + sigma * jnp.roll(sigma, 1, 1)
    return 0.4 * jnp.sum(bonds)


def _continuous_start(n_chains: int, n_dim: int) -> jax.Array:
    return jax.random.uniform(jax.random.key(11), (n_chains, n_dim), minval=-4, maxval=4)


def _mala_real_nvp() -> fm.SamplerResult:
    sampler = fm.Sampler(
        _two_moons, n_dim=2, n_chains=8, local_kernel=fm.MALA(step_size=0.3), **SMALL
    )
    return sampler.run(jax.random.key(1), _continuous_start(8, 2))


def _hmc_rq_spline() -> fm.SamplerResult:
    sampler = fm.Sampler(
        _two_moons,
        n_dim=2,
        n_chains=8,
        local_kernel=fm.HMC(step_size=0.2, n_leapfrog=4),
        global_model=fm.RQSpline(n_layers=2, hidden_sizes=(16, 16), n_bins=4),
        **SMALL,
    )
    return sampler.run(jax.random.key(2), _continuous_start(8, 2))


def _latent_random_walk() -> fm.SamplerResult:
    sampler = fm.Sampler(
        _two_moons,
        n_dim=2,
        n_chains=8,
        local_kernel=fm.RandomWalk(scale=0.5),
        local_in_latent_space=True,
        thinning=2,
        **SMALL,
    )
    return sampler.run(jax.random.key(3), _continuous_start(8, 2))


def _site_flip_autoregressive() -> fm.SamplerResult:
    sampler = fm.Sampler(
        _ising_3x3,
        n_dim=9,
        n_chains=8,
        local_kernel=fm.SiteFlip(n_categories=2),
        global_model=fm.Autoregressive(n_categories=2, hidden_sizes=(16,)),
        **SMALL,
    )
    start = jax.random.randint(jax.random.key(12), (8, 9), 0, 2)
    return sampler.run(jax.random.key(4), start)


CASES: dict[str, Callable[[], fm.SamplerResult]] = {
    "mala_real_nvp": _mala_real_nvp,
    "hmc_rq_spline": _hmc_rq_spline,
    "latent_random_walk": _latent_random_walk,
    "site_flip_autoregressive": _site_flip_autoregressive,
}


def pinned_arrays(result: fm.SamplerResult) -> dict[str, np.ndarray]:
    """The arrays of a result that must not change: draws, flags, history, final params."""
    arrays: dict[str, Any] = {
        "samples": result.flat_samples,
        "log_prob": result.log_prob,
        "is_accepted": result.is_accepted,
        "is_global": result.is_global,
        "warmup_samples": result.flat_warmup_samples,
        "local_acceptance": result.local_acceptance,
        "global_acceptance": result.global_acceptance,
        "history_loss": result.history.loss,
        "history_local_acceptance": result.history.local_acceptance,
        "history_global_acceptance": result.history.global_acceptance,
        "history_step_size": result.history.step_size,
    }
    for i, leaf in enumerate(jax.tree.leaves(result.kernel_params)):
        arrays[f"kernel_param_{i}"] = leaf
    return {name: np.asarray(value) for name, value in arrays.items()}


def main(names: list[str]) -> None:
    """Rerun the named cases (all when none is named) and rewrite the reference file.

    Cases not named keep their stored arrays, so a deliberate change to one sampler
    configuration leaves the others pinned.
    """
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; expected some of {sorted(CASES)}")
    stored: dict[str, np.ndarray] = {}
    if names and REFERENCE_FILE.exists():
        with np.load(REFERENCE_FILE) as previous:
            stored = {key: previous[key] for key in previous.files}
    for name in names or list(CASES):
        stored = {key: value for key, value in stored.items() if not key.startswith(name + "/")}
        for field, value in pinned_arrays(CASES[name]()).items():
            stored[f"{name}/{field}"] = value
    np.savez_compressed(REFERENCE_FILE, **stored)
    print(f"wrote {REFERENCE_FILE} ({len(stored)} arrays)")


if __name__ == "__main__":
    main(sys.argv[1:])
