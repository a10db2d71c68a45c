"""Non-finite targets: how many proposals a run rejects for a non-finite value.

Usage::

    python -m benchmarks.nonfinite            # run, write results/nonfinite.md and .json
    python -m benchmarks.nonfinite --render   # rewrite the Markdown from the stored JSON

The targets and schedule of ``tests/reliability/test_nonfinite.py`` (2-D, 16 chains, 8 + 12
loops of 40 local and 40 global steps, RealNVP, key 0; MALA, or HMC with ``n_leapfrog=5``):
a standard normal on the positive quadrant (``-inf`` outside), a standard normal whose log
density is NaN where ``x[0] > 1``, and a finite standard normal whose gradient is NaN where
``x[0] > 1``. Per run: the local and global proposals made, those rejected for a non-finite
log density (or gradient), from ``result.history``, and the non-finite states the chains
held (draws and log densities of training and production). docs/reliability.md includes
the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
N_CHAINS = 16
SCHEDULE: dict[str, Any] = {
    "n_chains": N_CHAINS,
    "n_training_loops": 8,
    "n_production_loops": 12,
    "n_local_steps": 40,
    "n_global_steps": 40,
    "n_epochs": 3,
    "batch_size": 512,
    "n_max_examples": 2048,
    "progress_bar": False,
}
TARGETS = {
    "minus_inf": "-inf outside x > 0",
    "nan_region": "NaN where x0 > 1",
    "nan_gradient": "NaN gradient where x0 > 1",
}
PLAN = [
    ("minus_inf", "MALA"),
    ("minus_inf", "HMC"),
    ("nan_region", "MALA"),
    ("nan_gradient", "MALA"),
    ("nan_gradient", "HMC"),
]


def _target(name: str) -> tuple[Any, Any]:
    """(log_prob, x0) of a target of `TARGETS`."""
    import jax
    import jax.numpy as jnp

    if name == "minus_inf":

        def log_prob(x):
            return jnp.where(jnp.all(x > 0), -0.5 * jnp.sum(x**2), -jnp.inf)

        return log_prob, jnp.full((N_CHAINS, 2), 0.5)
    if name == "nan_region":

        def log_prob(x):
            return jnp.where(x[0] > 1.0, jnp.nan, -0.5 * jnp.sum(x**2))

        return log_prob, jnp.zeros((N_CHAINS, 2))

    @jax.custom_jvp
    def log_prob(x):
        return -0.5 * jnp.sum(x**2)

    @log_prob.defjvp
    def _jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        gradient = jnp.where(x[0] > 1.0, jnp.nan, -x)
        return log_prob(x), jnp.dot(gradient, dx)

    return log_prob, jnp.zeros((N_CHAINS, 2))


def run_one(target: str, kernel: str) -> dict[str, Any]:
    """One run of the schedule; its proposal and rejection counts."""
    import jax
    import numpy as np

    import flowmc_like as fm

    log_prob, x0 = _target(target)
    local_kernel = fm.MALA() if kernel == "MALA" else fm.HMC(n_leapfrog=5)
    sampler = fm.Sampler(log_prob, n_dim=2, local_kernel=local_kernel, **SCHEDULE)
    result = sampler.run(jax.random.key(0), x0)
    history = result.history
    n_loops = SCHEDULE["n_training_loops"] + SCHEDULE["n_production_loops"]
    held = sum(
        int((~np.isfinite(np.asarray(getattr(result, name)))).sum())
        for name in ("flat_samples", "log_prob", "flat_warmup_samples", "warmup_log_prob")
    )
    return {
        "target": target,
        "kernel": kernel,
        "local_proposals": N_CHAINS * n_loops * SCHEDULE["n_local_steps"],
        "local_nonfinite": int(np.asarray(history.local_nonfinite).sum()),
        "global_proposals": N_CHAINS * n_loops * SCHEDULE["n_global_steps"],
        "global_nonfinite": int(np.asarray(history.global_nonfinite).sum()),
        "nonfinite_held": held,
    }


def build_markdown(payload: dict[str, Any]) -> str:
    """The table docs/reliability.md includes."""
    lines = [
        "| target | kernel | local proposals | rejected non-finite (local) | global proposals "
        "| rejected non-finite (global) | non-finite states held |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        lines.append(
            f"| {TARGETS[r['target']]} | {r['kernel']} | {r['local_proposals']} | "
            f"{r['local_nonfinite']} | {r['global_proposals']} | {r['global_nonfinite']} | "
            f"{r['nonfinite_held']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "nonfinite.md", help="(+ .json)")
    parser.add_argument(
        "--render", action="store_true", help="rewrite --out from its stored JSON, no runs"
    )
    args = parser.parse_args(argv)
    out_json = args.out.with_suffix(".json")
    if args.render:
        args.out.write_text(build_markdown(json.loads(out_json.read_text())))
        print(f"wrote {args.out}")
        return 0
    rows = []
    for target, kernel in PLAN:
        rows.append(run_one(target, kernel))
        print(rows[-1], flush=True)
    payload = {"command": "python -m benchmarks.nonfinite", "schedule": SCHEDULE, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(payload, indent=1) + "\n")
    args.out.write_text(build_markdown(payload))
    print(f"wrote {args.out} and {out_json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
