"""What JAX's persistent compilation cache saves a new process: compile time, first and second.

Usage::

    python -m benchmarks.compile_cache [--out benchmarks/results/compile_cache.md]

Runs the same small sampler (the 2-D dual moon of `benchmarks.targets`, library defaults
with 20 + 5 fixed loops) in fresh Python processes, one after another:

- ``no cache``: no persistent cache;
- ``cache, first process``: ``jax_compilation_cache_dir`` set to an empty temporary
  directory (the process compiles and writes the cache);
- ``cache, second process``: the same directory (the process reads the compiled programs).

Per process: ``result.timings["compile"]`` (tracing, lowering and compiling, or reading
the cache) and the whole run's wall time. Within one process the library needs no cache:
its compiled programs are reused by every later run of the same shapes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import jax

CHILD = """
import json, sys, time
start = time.perf_counter()
import jax
if sys.argv[1]:
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
import flowmc_like as fm
from benchmarks.targets import get_target
target = get_target("dual_moon_2d")
sampler = fm.Sampler(target.log_prob, n_dim=2, n_chains=32, n_training_loops=20,
                     n_production_loops=5, progress_bar=False)
x0 = jax.random.normal(jax.random.key(0), (32, 2))
result = sampler.run(jax.random.key(1), x0)
print(json.dumps({"compile": result.timings["compile"], "run": result.timings["total"],
                  "process": time.perf_counter() - start}))
"""


def run_child(cache_dir: str) -> dict[str, float]:
    """One fresh process running the sampler; its timings."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    output = subprocess.run(
        [sys.executable, "-c", CHILD, cache_dir], capture_output=True, text=True, env=env,
        check=True,
    )  # fmt: skip
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure and write the Markdown report and its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/compile_cache.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowmc_like_cache_") as cache_dir:
        rows = {
            "no cache": run_child(""),
            "cache, first process": run_child(cache_dir),
            "cache, second process": run_child(cache_dir),
        }
    lines = [
        "# Persistent compilation cache: what a new process saves",
        "",
        "Command: `python -m benchmarks.compile_cache` (see its docstring). "
        f"jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}.",
        "",
        "| process | compile s | run s (compile included) | process s (imports included) |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['compile']:.2f} | {row['run']:.2f} | {row['process']:.2f} |")
    saved = rows["cache, first process"]["compile"] - rows["cache, second process"]["compile"]
    lines += ["", f"The cache saves {saved:.2f} s of compilation per new process here."]
    out = Path(args.out)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
