"""Peak memory of a run as ``n_global_steps`` grows 10x: ``python -m benchmarks.memory``.

Each configuration runs in a fresh process (peak RSS is per process) on a 16-D Gaussian with
1024 chains and RealNVP. Reported per configuration:

- ``peak RSS``: the process's peak resident memory (``resource.getrusage``), which on CPU
  includes every device buffer, the compiler's working memory and the Python runtime; it
  varies by +-150 MiB between identical processes (allocator arenas, compile threads), so
  the median and range of ``--repeats`` fresh processes are reported;
- ``global temp``: the bytes XLA allocates for the global phase's intermediates
  (``memory_analysis().temp_size_in_bytes`` of its compiled program);
- ``stored draws``: the bytes of ``result.samples`` and ``result.warmup_samples``.

The global phase draws and evaluates its proposals in blocks of ``global_chunk_size``
proposals (over all chains), so its intermediates do not grow with ``n_global_steps``;
``thinning`` keeps the stored draws flat too. The last configuration puts the whole phase in
one block (``global_chunk_size = n_chains * n_global_steps``) to show what blocking saves.

Writes ``benchmarks/results/memory.md`` (the table docs/reliability.md includes) and
``memory.json`` (every process's figures); ``--render`` rewrites the table from the JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

N_CHAINS = 1024
N_DIM = 16
CONFIGS = [
    {"label": "1x steps", "n_global_steps": 100, "thinning": 1},
    {"label": "10x steps, thinning 10", "n_global_steps": 1000, "thinning": 10},
    {"label": "10x steps, no thinning", "n_global_steps": 1000, "thinning": 1},
    {
        "label": "10x steps, thinning 10, one block",
        "n_global_steps": 1000,
        "thinning": 10,
        "global_chunk_size": N_CHAINS * 1000,
    },
]


def measure(config: dict) -> dict:
    """Run one configuration in this process and return its figures."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import flowmc_like as fm
    from flowmc_like.phases import GlobalState, run_global_phase

    def log_prob(x):
        return -0.5 * jnp.sum(x**2)

    settings = {k: v for k, v in config.items() if k != "label"}
    sampler = fm.Sampler(
        log_prob,
        n_dim=N_DIM,
        n_chains=N_CHAINS,
        n_training_loops=2,
        n_production_loops=2,
        n_local_steps=10,
        n_epochs=1,
        progress_bar=False,
        **settings,
    )
    x0 = jax.random.normal(jax.random.key(1), (N_CHAINS, N_DIM))
    result = sampler.run(jax.random.key(0), x0)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    model = sampler.global_model
    params = model.init(jax.random.key(0), N_DIM)
    chunk = settings.get("global_chunk_size", sampler.config.global_chunk_size)
    current = GlobalState(x0, jax.vmap(log_prob)(x0))
    phase = jax.jit(
        lambda key, state: run_global_phase(
            model,
            log_prob,
            settings["n_global_steps"],
            chunk,
            key,
            state,
            params,
            settings["thinning"],
        )
    )
    stats = phase.lower(jax.random.key(2), current).compile().memory_analysis()
    stored = np.asarray(result.samples).nbytes + np.asarray(result.warmup_samples).nbytes
    return {
        "label": config["label"],
        "peak_rss_mib": round(peak_mib, 1),
        "global_temp_mib": round(stats.temp_size_in_bytes / 2**20, 2),
        "stored_draws_mib": round(stored / 2**20, 2),
    }


RESULTS = Path(__file__).resolve().parent / "results"
HEADER = (
    "| configuration | peak RSS (MiB), median [range] | global phase temp (MiB) "
    "| stored draws (MiB) |"
)


def build_markdown(payload: dict) -> str:
    """The includable table of `main`'s payload: one row per configuration."""
    lines = [HEADER, "|---|---|---|---|"]
    for row in payload["rows"]:
        peaks = sorted(row["peak_rss_mib"])
        lines.append(
            f"| {row['label']} | {peaks[len(peaks) // 2]:.0f} [{peaks[0]:.0f}-{peaks[-1]:.0f}] "
            f"| {row['global_temp_mib']} | {row['stored_draws_mib']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per row")
    parser.add_argument("--out", type=Path, default=RESULTS / "memory.md", help="(+ .json)")
    parser.add_argument(
        "--render", action="store_true", help="rewrite --out from its stored JSON, no runs"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(CONFIGS[args.one])))
        return
    out_json = args.out.with_suffix(".json")
    if args.render:
        args.out.write_text(build_markdown(json.loads(out_json.read_text())))
        print(f"wrote {args.out}")
        return
    print(f"{N_CHAINS} chains, {N_DIM}-D Gaussian, RealNVP, 2 + 2 loops, 10 local steps\n")
    rows = []
    for index in range(len(CONFIGS)):
        runs = []
        for _ in range(args.repeats):
            command = [sys.executable, "-m", "benchmarks.memory", "--one", str(index)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
        rows.append({**runs[0], "peak_rss_mib": [run["peak_rss_mib"] for run in runs]})
        print(build_markdown({"rows": rows}).splitlines()[-1], flush=True)
    payload = {
        "command": "python -m benchmarks.memory" + (f" --repeats {args.repeats}"),
        "n_chains": N_CHAINS,
        "n_dim": N_DIM,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(payload, indent=1) + "\n")
    args.out.write_text(build_markdown(payload))
    print(f"wrote {args.out} and {out_json}")


if __name__ == "__main__":
    main()
