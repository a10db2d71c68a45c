"""Subprocess checks that run in the background while the rest of the suite runs.

Some tests only check what a separate process did: the tutorial notebooks, the 4-device
sharded runs, the multi-host simulation, the benchmark driver's tiny run, the quick runs of
the evidence and NUTS-from-the-flow benchmarks. Each such process
is a `Job`. When the selected tests need jobs, `start_jobs` (called by ``tests/conftest.py``
once collection is done) runs them one after another in a background thread, so they use
the CPU time the main test process leaves idle (it is often single-threaded: tracing, numpy,
ArviZ); the tests then only wait for their job's outcome. A job the background thread has
not reached when its test asks for it simply runs then. Jobs get their own compilation
cache directory: the main process's cache is not safe to share with a concurrent writer.

``python -m tests.background notebook PATH OUT_DIR`` executes one notebook (the notebook job)
and writes the executed copy to ``OUT_DIR``, where the docs build test takes it from.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@dataclasses.dataclass
class Outcome:
    """What a finished job's process did."""

    returncode: int
    stdout: str
    stderr: str


class Job:
    """One subprocess, started at most once; `outcome` waits for it (starting it if needed)."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], cwd: Path):
        self.name, self.command, self.env, self.cwd = name, list(command), env, cwd
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._outcome: Outcome | None = None
        self._process: subprocess.Popen | None = None

    def run(self) -> None:
        """Run the process to its end (once; a second call waits for the first)."""
        with self._lock:
            if self._outcome is None:
                self._process = subprocess.Popen(
                    self.command,
                    cwd=self.cwd,
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                stdout, stderr = self._process.communicate()
                self._outcome = Outcome(self._process.returncode, stdout, stderr)
                self._done.set()

    def kill(self) -> None:
        """Stop the process if it is still running (the session is ending)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    def outcome(self) -> Outcome:
        if not self._done.is_set():
            self.run()
        assert self._outcome is not None
        return self._outcome


def _environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    env.pop("XLA_FLAGS", None)  # PyMC's import sets it for 100 CPU devices
    return {**env, **extra}


BENCHMARK_SMOKE_RUNS = {  # job name -> Python code run in the job's own directory
    "benchmark_evidence": (
        "import sys; from benchmarks import evidence; sys.exit(evidence.main(['--quick', "
        "'--in-process', '--samplers', 'flowmc_like', '--targets', 'eight_schools_pooled', "
        "'--out', 'evidence.md', '--reference', 'reference.json']))"
    ),
    "benchmark_nuts_from_flow": (
        "import sys; from benchmarks import nuts_from_flow; "
        "from tests.benchmarks.test_nuts_from_flow import untrained_fit; "
        "nuts_from_flow.fit_flow = untrained_fit; "
        "sys.exit(nuts_from_flow.main(['--quick', '--out', 'nuts_from_flow.md']))"
    ),
}
BENCHMARK_SMOKE_TESTS = {  # job name -> the test that reads its output
    "benchmark_evidence": "test_quick_flowmc_like_run_writes_the_report",
    "benchmark_nuts_from_flow": "test_quick_run_writes_markdown_and_json",
}


_work: Path | None = None


def work_dir() -> Path:
    """The directory the jobs of this session write to (made on first use)."""
    global _work
    if _work is None:
        _work = Path(tempfile.mkdtemp(prefix="flowmc_like_background_"))
    return _work


def executed_notebooks_dir() -> Path:
    """Where the notebook jobs write their executed notebooks."""
    return work_dir() / "executed_notebooks"


def _make_jobs() -> dict[str, Job]:
    work = work_dir()
    cache = {
        "JAX_COMPILATION_CACHE_DIR": str(work / "jax_cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    jobs = {
        "sharded_runs": Job(
            "sharded_runs",
            [sys.executable, str(REPO / "tests/sharding/sharded_runs.py"), str(work / "sharded")],
            _environment(XLA_FLAGS="--xla_force_host_platform_device_count=4", **cache),
            REPO,
        ),
        "multihost": Job(
            "multihost",
            [sys.executable, str(REPO / "docs/examples/multihost_cpu.py")],
            _environment(FLOWMC_LIKE_EXAMPLE_QUICK="1", **cache),
            work,
        ),
    }
    from tests.benchmarks.test_runner import TINY_RUN_ARGS

    runner_dir = work / "benchmark_runner"
    runner_dir.mkdir()
    jobs["benchmark_runner"] = Job(
        "benchmark_runner",
        [sys.executable, "-m", "benchmarks.run", *TINY_RUN_ARGS],
        _environment(),
        runner_dir,
    )
    for name, code in BENCHMARK_SMOKE_RUNS.items():
        job_dir = work / name
        job_dir.mkdir()
        jobs[name] = Job(name, [sys.executable, "-c", code], _environment(), job_dir)
    for path in NOTEBOOKS:
        jobs[f"notebook:{path.stem}"] = Job(
            f"notebook:{path.stem}",
            [
                sys.executable,
                "-m",
                "tests.background",
                "notebook",
                str(path),
                str(executed_notebooks_dir()),
            ],
            # The kernel plots inline (not Agg), so the executed copies hold the figures.
            _environment(
                FLOWMC_LIKE_NOTEBOOK_QUICK="1",
                MPLBACKEND="module://matplotlib_inline.backend_inline",
                **cache,
            ),
            REPO,
        )
    (work / "sharded").mkdir()
    return jobs


def jobs_for(nodeid: str, fixturenames: Sequence[str]) -> list[str]:
    """The jobs a test needs: from its fixtures, or its name."""
    needed = []
    if "four_devices" in fixturenames:
        needed.append("sharded_runs")
    if "::test_tiny_run_writes_json_report_figures_and_docs" in nodeid:
        needed.append("benchmark_runner")
    for name, test in BENCHMARK_SMOKE_TESTS.items():
        if f"::{test}" in nodeid:
            needed.append(name)
    if "::test_multihost_simulation_runs" in nodeid:
        needed.append("multihost")
    if "::test_notebook_runs[" in nodeid:
        needed.append("notebook:" + nodeid.split("[", 1)[1].rstrip("]"))
    if "::test_mkdocs_build_with_executed_notebooks" in nodeid:
        needed += [f"notebook:{path.stem}" for path in NOTEBOOKS]
    return needed


_jobs: dict[str, Job] | None = None


def jobs() -> dict[str, Job]:
    global _jobs
    if _jobs is None:
        _jobs = _make_jobs()
    return _jobs


def start_jobs(names: Sequence[str]) -> None:
    """Run the jobs ``names`` one after another in a daemon thread."""
    if not names:
        return
    queue = [jobs()[name] for name in names]
    threading.Thread(target=lambda: [job.run() for job in queue], daemon=True).start()


def stop_jobs() -> None:
    """Kill every job still running."""
    for job in (_jobs or {}).values():
        job.kill()


def outcome(name: str) -> Outcome:
    """Wait for the job ``name`` and return what it did."""
    return jobs()[name].outcome()


def _execute_notebook(path: Path, out_dir: Path) -> None:
    """Execute a notebook with nbclient in a fresh kernel; raise on any cell error.

    The executed notebook is written to ``out_dir`` under the same name.
    """
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as workdir:
        client = nbclient.NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": workdir}}
        )
        client.execute()  # raises CellExecutionError, naming the failing cell
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    if errors:
        raise RuntimeError(f"{path.name}: {errors}")
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_dir / path.name)
    print(f"{path.name}: ok")


if __name__ == "__main__":
    if sys.argv[1:2] != ["notebook"] or len(sys.argv) != 4:
        raise SystemExit("usage: python -m tests.background notebook PATH OUT_DIR")
    _execute_notebook(Path(sys.argv[2]), Path(sys.argv[3]))
