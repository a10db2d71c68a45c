"""Run ONE sampler on ONE target with ONE seed and write a JSON record (used by `benchmarks.run`).

``python -m benchmarks.worker --sampler flowmc --target gmm2_10d --seed 0 --schedule '{...}'
--overrides '{...}' --out rec.json [--count-evals]``

`benchmarks.run` starts every worker in a fresh process so each run pays its own compilation.
Timed mode: imports (timed separately), the shared start ``x0`` (uniform in the target's box,
key ``jax.random.key(seed)``, identical for all samplers), then the peer's ``run``; the metrics
use the peer's ``timings["total"]`` (sampler construction + run, compile included, imports and
``x0`` excluded).

Lattice cases (`benchmarks.ising.LATTICE_CASES`): the run goes through
`benchmarks.ising.run_case` (samplers ``flowmc_like``, ``metropolis``, ``wolff``), with
``schedule["n_chains"]`` chains and ``overrides`` as that sampler's settings; the record
carries the discrete metrics. No counting mode there.

Two-dimensional continuous targets: the record also carries ``thinned_draws``, at most
`MAX_THINNED_DRAWS` production draws evenly spaced over all chains and draws (for the
scatter plots; `benchmarks.run` moves them into a side ``.npz``).

Counting mode (``--count-evals``): the same run with ``log_prob`` wrapped by a
``jax.debug.callback`` that adds the number of points evaluated (batched callbacks count their
batch) to a host counter; nothing is timed. Gradient evaluations count once (the callback sits
in the forward pass). Peers that can signal the training/production boundary give a split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from typing import Any

from benchmarks.jsonable import json_default


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


MAX_THINNED_DRAWS = 2000


def thinned_draws(samples: Any, max_points: int = MAX_THINNED_DRAWS) -> list[list[float]]:
    """At most ``max_points`` draws of ``(n_chains, n_draws, n_dim)``, evenly spaced, as lists."""
    import numpy as np

    flat = np.asarray(samples, dtype=np.float64).reshape(-1, np.shape(samples)[-1])
    idx = np.unique(np.linspace(0, len(flat) - 1, min(max_points, len(flat))).astype(int))
    return np.round(flat[idx], 5).tolist()


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sampler", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", default="{}", help="JSON dict of Schedule fields")
    p.add_argument("--overrides", default="{}", help="JSON dict of sampler-specific kwargs")
    p.add_argument("--out", required=True)
    p.add_argument("--count-evals", action="store_true")
    a = p.parse_args(argv)

    t_imp0 = time.time()
    import importlib

    import jax
    import numpy as np

    from benchmarks.ising import LATTICE_CASES

    is_lattice = a.target in LATTICE_CASES
    if is_lattice:
        from benchmarks import ising

        importlib.import_module("flowmc_like")
    else:
        from benchmarks.metrics import compute_metrics
        from benchmarks.peers import load_peer
        from benchmarks.targets import get_target

        peer = load_peer(a.sampler)
        for mod in getattr(peer, "IMPORTS", ()):
            importlib.import_module(mod)
    from benchmarks.peers import Schedule

    import_seconds = time.time() - t_imp0

    schedule = Schedule(**json.loads(a.schedule))
    overrides = json.loads(a.overrides)

    rec: dict[str, Any] = {
        "sampler": a.sampler,
        "target": a.target,
        "seed": a.seed,
        "kind": "discrete" if is_lattice else "continuous",
        "schedule": schedule.as_dict(),
        "overrides": overrides,
        "mode": "count" if a.count_evals else "timed",
    }
    rec["loadavg_start"] = os.getloadavg()
    cpu0 = time.process_time()
    try:
        if is_lattice:
            if a.count_evals:
                raise ValueError("evaluation counting is not defined for the lattice cases")
            rec.update(ising.run_case(a.sampler, a.target, a.seed, schedule.n_chains, overrides))
            rec["import_seconds"] = import_seconds
        elif a.count_evals:
            target = get_target(a.target)
            x0 = jax.block_until_ready(
                target.initial_position(jax.random.key(a.seed), schedule.n_chains)
            )
            counter = {"n": 0, "at_production": None}
            n_dim = target.n_dim

            def _count(x: Any) -> None:
                counter["n"] += int(np.size(x)) // n_dim

            def counted_log_prob(x: jax.Array) -> jax.Array:
                jax.debug.callback(_count, x)
                return target.log_prob(x)

            def on_phase(name: str) -> None:
                jax.effects_barrier()
                if name == "production":
                    counter["at_production"] = counter["n"]

            peer.run(target, counted_log_prob, x0, a.seed, schedule, overrides, on_phase=on_phase)
            jax.effects_barrier()
            at_prod = counter["at_production"]
            rec["n_evals"] = counter["n"]
            rec["n_evals_training"] = at_prod
            rec["n_evals_production"] = None if at_prod is None else counter["n"] - at_prod
        else:
            target = get_target(a.target)
            x0 = jax.block_until_ready(
                target.initial_position(jax.random.key(a.seed), schedule.n_chains)
            )
            out = peer.run(target, target.log_prob, x0, a.seed, schedule, overrides)
            rec["timings"] = out.timings
            rec["import_seconds"] = import_seconds
            rec["global_acceptance"] = out.global_acceptance
            rec["local_acceptance"] = out.local_acceptance
            rec["settings"] = out.settings
            rec["extra"] = out.extra
            rec["metrics"] = compute_metrics(out.samples, target, out.timings["total"])
            rec["reference"] = target.reference()
            if target.n_dim == 2:
                rec["thinned_draws"] = thinned_draws(out.samples)
        rec["ok"] = True
    except Exception as e:  # report, don't hide: the record carries the traceback
        rec["ok"] = False
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["traceback"] = traceback.format_exc()

    rec["process_cpu_seconds"] = time.process_time() - cpu0
    rec["loadavg_end"] = os.getloadavg()
    rec["env"] = {
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "x64": bool(jax.config.jax_enable_x64),
        "compilation_cache_dir": jax.config.jax_compilation_cache_dir,
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
    }
    with open(a.out, "w") as f:
        json.dump(rec, f, indent=1, default=json_default)
    if not rec["ok"]:
        print(rec["traceback"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
