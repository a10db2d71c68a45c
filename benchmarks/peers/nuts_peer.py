"""blackjax NUTS with Stan-style window adaptation, vmapped over the chains.

The classic blackjax recipe, one independent adaptation per chain:
``jax.vmap(window_adaptation(blackjax.nuts, log_prob).run)`` for
``n_training_loops * (n_local_steps + n_global_steps)`` warm-up steps (the number of steps a
flow sampler's chains take in its training loops), then ``n_production_loops * (n_local_steps +
n_global_steps)`` NUTS draws per chain (the flow samplers' production draws per chain) with each
chain's adapted step size and diagonal inverse mass matrix, all inside one ``jax.jit``-ed
``lax.scan`` vmapped over chains. blackjax defaults otherwise: target acceptance 0.8, diagonal
mass matrix, initial step size 1, max_num_doublings 10. ``overrides`` may set
``target_acceptance_rate``, ``is_mass_matrix_diagonal``, ``max_num_doublings``,
``num_warmup`` and ``num_samples``.

Timing: ``training`` = warm-up, ``production`` = sampling, each without its compile time
(JAX compile spans, `benchmarks.timing.CompileTracker`). ``local_acceptance`` is NUTS's mean
``acceptance_rate`` statistic; there is no global move.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks.peers import PeerRun, Schedule
from benchmarks.targets import Target
from benchmarks.timing import CompileTracker

__all__ = ["IMPORTS", "run"]

IMPORTS = ("blackjax",)


def run(
    target: Target,
    log_prob: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    seed: int,
    schedule: Schedule,
    overrides: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> PeerRun:
    """Warm up and sample with NUTS on every chain; see the module docstring."""
    import blackjax

    ov = dict(overrides or {})
    num_warmup = int(ov.pop("num_warmup", schedule.n_training_loops * schedule.steps_per_loop))
    num_samples = int(ov.pop("num_samples", schedule.n_production_loops * schedule.steps_per_loop))
    max_doublings = int(ov.pop("max_num_doublings", 10))
    adapt_kwargs = {"target_acceptance_rate": 0.8, "is_mass_matrix_diagonal": True, **ov}
    n_chains = x0.shape[0]

    key = jax.random.key(seed)
    k_warm, k_sample = jax.random.split(key)
    warm_keys = jax.random.split(k_warm, n_chains)
    sample_keys = jax.random.split(k_sample, n_chains)
    nuts_kernel = blackjax.nuts.build_kernel()

    def warm_one(k: jax.Array, x: jax.Array) -> tuple[Any, Any]:
        warmup = blackjax.window_adaptation(blackjax.nuts, log_prob, **adapt_kwargs)
        (state, params), info = warmup.run(k, x, num_steps=num_warmup)
        return state, params, info.info.num_integration_steps.sum()

    def sample_one(k: jax.Array, state: Any, params: dict[str, Any]) -> tuple[Any, ...]:
        def body(st: Any, kk: jax.Array) -> tuple[Any, tuple[Any, ...]]:
            st, info = nuts_kernel(
                kk,
                st,
                log_prob,
                params["step_size"],
                params["inverse_mass_matrix"],
                max_num_doublings=max_doublings,
            )
            return st, (
                st.position,
                info.acceptance_rate,
                info.num_integration_steps,
                info.is_divergent,
            )

        _, out = jax.lax.scan(body, state, jax.random.split(k, num_samples))
        return out

    warm = jax.jit(jax.vmap(warm_one))
    sample = jax.jit(jax.vmap(sample_one))

    with CompileTracker() as tr:
        t_start = tr.stamp("start")
        state, params, n_int_warm = jax.block_until_ready(warm(warm_keys, x0))
        t_warm = tr.stamp("warm_done")
        if on_phase is not None:
            on_phase("production")
        t_mid = tr.stamp("sample_start")
        pos, acc, n_int, div = jax.block_until_ready(sample(sample_keys, state, params))
        samples = np.asarray(pos)
        t_end = tr.stamp("end")

    c_warm = tr.compile_seconds(t_start, t_warm)
    c_samp = tr.compile_seconds(t_mid, t_end)
    timings = {
        "total": t_end - t_start,
        "compile": c_warm + c_samp,
        "training": (t_warm - t_start) - c_warm,
        "production": (t_end - t_mid) - c_samp,
        "other": t_mid - t_warm,
    }
    extra = {
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "step_size": np.asarray(params["step_size"]).tolist(),
        "mean_integration_steps": float(np.mean(np.asarray(n_int))),
        # Gradient evaluations the algorithm needed (leapfrog steps, + 1 per chain at init).
        # The eval-counting run counts what was executed, which for vmapped NUTS also
        # includes the masked lanes of chains whose trajectory ended earlier.
        "n_grad_evals_algorithmic": {
            "warmup": int(np.sum(np.asarray(n_int_warm))) + n_chains,
            "sampling": int(np.sum(np.asarray(n_int))),
        },
        "n_divergent": int(np.sum(np.asarray(div))),
        "n_backend_compiles": tr.backend_compiles,
    }
    settings = {
        "blackjax_version": getattr(blackjax, "__version__", "?"),
        "window_adaptation": adapt_kwargs,
        "max_num_doublings": max_doublings,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
    }
    return PeerRun(
        samples=samples,
        timings=timings,
        global_acceptance=None,
        local_acceptance=float(np.mean(np.asarray(acc))),
        settings=settings,
        extra=extra,
    )
