"""Divergent local steps in runs with a flow, and whether those runs are right.

Usage::

    python -m benchmarks.divergences            # run, write results/divergences.md and .json
    python -m benchmarks.divergences --render   # rewrite the Markdown from the stored JSON

Runs ``fm.Sampler(log_prob, n_dim=d, n_chains=32)`` (the defaults: MALA) and the same with
``local_kernel=fm.HMC()`` on the funnel, the Rosenbrock ridge and the ill-conditioned
Gaussian of `benchmarks.targets`, seeds 0, 1, 2 (``--seeds``), starts from a standard
normal. Per run: the production local steps, how many diverged
(``result.diagnostics.n_divergent``: energy error above 1000), whether the local kernel ran
in the flow's latent space, the benchmark's correctness metrics against the exact reference
(max |z| of the means, sd error, R-hat) and the warnings the run issued. It measures what
the divergence count says about a run with a global model.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TARGETS = ("funnel_10d", "rosenbrock_2d", "ill_gauss_20d")
KERNELS = ("MALA (default)", "HMC")
N_CHAINS = 32
COLUMNS = (
    "target",
    "kernel",
    "seed",
    "latent space",
    "local steps",
    "divergent",
    "share",
    "max abs z",
    "sd err",
    "R-hat",
    "warnings",
)


def measure(target_name: str, kernel_name: str, seed: int = 0) -> dict:
    """One run's divergence count and correctness metrics."""
    import jax
    import numpy as np

    import flowmc_like as fm
    from benchmarks.metrics import compute_metrics
    from benchmarks.targets import get_target

    target = get_target(target_name)
    settings = {"local_kernel": fm.HMC()} if kernel_name == "HMC" else {}
    sampler = fm.Sampler(
        target.log_prob, n_dim=target.n_dim, n_chains=N_CHAINS, progress_bar=False, **settings
    )
    start = jax.random.normal(jax.random.key(seed + 1), (N_CHAINS, target.n_dim))
    began = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sampler.run(jax.random.key(seed), start)
    metrics = compute_metrics(result.flat_samples, target, time.perf_counter() - began)
    history = result.history
    n_local = int(np.sum(~result.is_global))
    return {
        "target": target_name,
        "kernel": kernel_name,
        "seed": seed,
        "latent space": bool(np.all(history.in_latent_space[~history.is_training])),
        "local steps": n_local,
        "divergent": int(result.diagnostics.n_divergent),
        "share": result.diagnostics.n_divergent / max(n_local, 1),
        "max abs z": metrics["max_abs_z"],
        "sd err": metrics["max_sd_rel_err"],
        "R-hat": metrics["max_r_hat"],
        "warnings": len([w for w in caught if issubclass(w.category, RuntimeWarning)]),
    }


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def render(records: list[dict], command: str) -> str:
    """The Markdown report of ``records``."""
    lines = [
        "# Divergent local steps in runs with a flow",
        "",
        f"Regenerate with: `{command}`",
        "",
        "`fm.Sampler(log_prob, n_dim=d, n_chains=32)` (MALA) and the same with "
        "`local_kernel=fm.HMC()`, starts from a standard normal. `divergent`: production "
        "local steps whose energy error exceeded 1000 (`result.diagnostics.n_divergent`); "
        "`share`: of the local steps; "
        "`max abs z`, `sd err`, `R-hat`: the draws against the exact reference (the "
        "benchmark's bar: 5, 0.25, 1.1); `warnings`: RuntimeWarnings the run issued.",
        "",
        "<!-- --8<-- [start:divergences] -->",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    for record in records:
        lines.append("| " + " | ".join(_cell(record[name]) for name in COLUMNS) + " |")
    lines += ["<!-- --8<-- [end:divergences] -->", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true", help="rewrite the Markdown from JSON")
    parser.add_argument("--out", type=Path, default=RESULTS / "divergences.md")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    stored = args.out.with_suffix(".json")
    if args.render:
        data = json.loads(stored.read_text())
    else:
        records = [
            measure(target, kernel, seed)
            for target in TARGETS
            for kernel in KERNELS
            for seed in args.seeds
        ]
        seeds = " ".join(str(seed) for seed in args.seeds)
        data = {"command": f"python -m benchmarks.divergences --seeds {seeds}", "records": records}
        stored.write_text(json.dumps(data, indent=1))
    args.out.write_text(render(data["records"], data["command"]))
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
