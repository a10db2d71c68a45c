"""The benchmark driver on a tiny budget: files, keys, columns, reported failures (no timing)."""

import json

import numpy as np
import pytest

from benchmarks import run
from benchmarks.peers import Schedule
from benchmarks.report import CONTINUOUS_COLUMNS, DISCRETE_COLUMNS, build_report, pass_fail
from benchmarks.suites import FLOWMC_LIKE_TARGET_SETTINGS, SUITES, merged_overrides, skip_reason
from tests import background

TINY = [
    "--samplers",
    "flowmc_like",
    "--seeds",
    "0",
    "--n-chains",
    "4",
    "--n-training-loops",
    "2",
    "--n-production-loops",
    "2",
    "--n-local-steps",
    "5",
    "--n-global-steps",
    "5",
    "--n-epochs",
    "1",
    "--set",
    "flowmc_like.batch_size=64",
    "--set",
    "flowmc_like.n_max_examples=128",
    "--no-count-evals",
]


TINY_RUN_ARGS = [
    *("--targets", "dual_moon_2d,ising_L4", *TINY),
    *("--out", "tiny.json", "--docs", "--docs-dir", "docs"),
]
"""``python -m benchmarks.run`` arguments of the tiny run (a background job of
tests/background.py, run in its own directory)."""


@pytest.mark.slow
def test_tiny_run_writes_json_report_figures_and_docs():
    pytest.importorskip("matplotlib")
    job = background.jobs()["benchmark_runner"]
    outcome = job.outcome()
    assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-3000:]
    tmp_path = job.cwd
    out = tmp_path / "tiny.json"
    docs = tmp_path / "docs"

    payload = json.loads(out.read_text())
    meta, runs = payload["meta"], payload["runs"]
    for key in ("command", "machine", "schedule", "flowmc_like_target_settings", "notes"):
        assert key in meta
    assert {"cpu", "cpu_count", "ram_gb", "versions", "loadavg_start"} <= set(meta["machine"])
    assert meta["flowmc_like_target_settings"]["ising_L4"]["global_model"]["name"] == (
        "Autoregressive"
    )
    by_target = {r["target"]: r for r in runs}
    assert set(by_target) == {"dual_moon_2d", "ising_L4"}
    assert all(r["ok"] for r in runs)

    cont = by_target["dual_moon_2d"]
    assert cont["kind"] == "continuous"
    assert {"total", "compile", "training", "production", "other"} <= set(cont["timings"])
    for key in ("min_ess_bulk", "min_ess_tail", "ess_per_s", "max_abs_z", "mode_weight_err"):
        assert key in cont["metrics"]
    assert "thinned_draws" not in cont  # moved to the side file
    draws = np.load(out.with_name("tiny_draws.npz"))
    assert draws[cont["draws_key"]].shape[1] == 2

    disc = by_target["ising_L4"]
    assert disc["kind"] == "discrete"
    assert disc["schedule"]["n_chains"] == 4
    # Command-line schedule flags beat the per-target settings; the rest of them is kept.
    passed = disc["settings"]["passed"]
    assert passed["n_training_loops"] == 2 and passed["reverse_kl_weight"] == 10.0
    assert "SiteFlip" in disc["settings"]["built"]["local_kernel"]
    for key in (
        "e",
        "e_z",
        "c_v_z",
        "abs_m_z",
        "tau_energy_sweeps",
        "tau_abs_m_seconds",
        "ess_per_s",
        "p_m_positive",
        "sign_changes_per_1k_sweeps",
        "max_r_hat",
    ):
        assert key in disc["metrics"]

    md = out.with_suffix(".md").read_text()
    assert meta["command"] in md
    for label, _ in CONTINUOUS_COLUMNS + DISCRETE_COLUMNS:
        assert f" {label} |" in md
    for heading in ("## Machine", "## Settings", "## Where the time goes", "## Lattice models"):
        assert heading in md
    assert "PASS/FAIL" in md
    assert "![ESS per second](tiny_ess_per_s.png)" in md
    assert (tmp_path / "tiny_ess_per_s.png").stat().st_size > 0
    assert (tmp_path / "tiny_dual_moon_2d_samples.png").stat().st_size > 0

    doc = (docs / "benchmarks.md").read_text()
    assert "![ESS per second](img/benchmarks/tiny_ess_per_s.png)" in doc
    assert (docs / "img" / "benchmarks" / "tiny_dual_moon_2d_samples.png").exists()


def test_failing_worker_is_reported_not_raised(tmp_path):
    out = tmp_path / "bad.json"
    argv = ["--targets", "rosenbrock_2d", *TINY, "--set", "flowmc_like.n_local_steps=-1"]
    assert run.main([*argv, "--out", str(out), "--no-plots"]) == 1
    (rec,) = json.loads(out.read_text())["runs"]
    assert rec["ok"] is False and "n_local_steps" in rec["error"]
    assert "FAILED" in out.with_suffix(".md").read_text()


def test_worker_dying_without_a_record_is_a_failure_record():
    rec = run.run_worker("no_such_sampler", "rosenbrock_2d", 0, Schedule(), {}, False, 120.0)
    assert rec["ok"] is False and "without a record" in rec["error"]


def test_suites_and_settings():
    assert SUITES["quick"].seeds == (0,) and not SUITES["quick"].count_evals
    assert "ising_L8_bc" in SUITES["quick"].targets and len(SUITES["quick"].targets) == 7
    full = SUITES["full"]
    assert full.seeds == (0, 1, 2) and not full.count_evals  # algorithmic counts
    assert {"ising_L4", "ising_L8_bc", "ising_L16_bc", "ising_L8_T2", "potts3_L4"} <= set(
        full.targets
    )
    json.dumps(FLOWMC_LIKE_TARGET_SETTINGS)  # JSON-able
    assert skip_reason("nuts", "ising_L4") and skip_reason("wolff", "gmm2_10d")
    assert skip_reason("flowmc_like", "ising_L4") is None
    ov = merged_overrides(
        "flowmc_like", "ising_L8_bc", None, {"n_training_loops": 3}, {"flowmc_like": {"x": 1}}
    )
    assert ov["n_training_loops"] == 3 and ov["x"] == 1 and ov["local_kernel"]["name"] == "SiteFlip"
    assert merged_overrides("wolff", "ising_L4", None, {}, {})["n_updates"] > 0


def test_continuous_targets_run_flowmc_like_with_its_defaults():
    """No per-target recipe: flowmc_like decides its run length; the peers get fixed counts."""
    from benchmarks.targets import TARGET_NAMES

    full, quick = SUITES["full"], SUITES["quick"]
    for target in TARGET_NAMES:
        assert target not in FLOWMC_LIKE_TARGET_SETTINGS
        overrides = merged_overrides("flowmc_like", target, full, {}, {})
        assert overrides == {"n_training_loops": None, "n_production_loops": None}
        assert merged_overrides("nuts", target, full, {}, {}) == {}
        # a suite or command line that fixes the counts fixes them for every sampler
        assert merged_overrides("flowmc_like", target, quick, {}, {}) == {}
        fixed = merged_overrides("flowmc_like", target, full, {"n_training_loops": 4}, {})
        assert fixed == {"n_training_loops": 4, "n_production_loops": None}
    schedule, _ = run.resolve_schedule(run._parse_args(["--suite", "full"]), full)
    assert schedule.n_training_loops == 20 and schedule.n_production_loops == 20


@pytest.mark.parametrize("cost_sweep", [True, False])
def test_run_overhead_passes_the_cost_sweep_switch(monkeypatch, cost_sweep):
    commands = []

    def fake_run(cmd, **kwargs):
        commands.append(cmd)
        out = cmd[cmd.index("--json") + 1]
        with open(out, "w") as f:
            json.dump({"targets": [], "cost_sweep": []}, f)
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(run.subprocess, "run", fake_run)
    rec = run.run_overhead(32, 60.0, cost_sweep)
    assert rec["ok"] is True
    assert ("--no-cost-sweep" in commands[0]) is not cost_sweep
    assert SUITES["full"].overhead_cost_sweep and not SUITES["quick"].overhead_cost_sweep


def test_build_component_from_spec():
    import flowmc_like as fm
    from benchmarks.peers.flowmc_like_peer import build_component

    kernel = build_component({"name": "HMC", "kwargs": {"step_size": 0.2, "n_leapfrog": 5}}, None)
    assert isinstance(kernel, fm.HMC) and kernel.n_leapfrog == 5
    assert build_component(None, None) is None


def _record(**metrics):
    return {"ok": True, "sampler": "flowmc_like", "target": "t", "seed": 0, "metrics": metrics}


def test_pass_fail_against_the_correctness_bar():
    good = dict(max_abs_z=1.0, max_sd_rel_err=0.1, mode_weight_err=None, max_r_hat=1.01)
    assert pass_fail(_record(**good)) == "PASS"
    assert pass_fail(_record(**{**good, "max_abs_z": 6.0, "max_r_hat": 1.5})) == "FAIL (z, R-hat)"
    assert pass_fail(_record(**{**good, "mode_weight_err": 0.2})) == "FAIL (mode-w)"
    assert pass_fail({"ok": False}) == "FAILED"


def test_report_renders_failures_and_missing_sections():
    payload = {
        "meta": {
            "command": "python -m benchmarks.run --suite quick",
            "samplers": ["flowmc_like", "nuts"],
            "schedule": {"n_chains": 32},
        },
        "runs": [
            {"ok": False, "sampler": "nuts", "target": "gmm2_10d", "seed": 0, "error": "boom"},
            {
                **_record(max_abs_z=1.0, max_sd_rel_err=0.1, max_r_hat=1.0, ess_per_s=3.0),
                "target": "gmm2_10d",
                "timings": {"total": 10.0, "compile": 5.0, "training": 3.0, "production": 1.0},
            },
        ],
    }
    md = build_report(payload, {}, None)
    assert (
        "FAILED: boom" in md and "Regenerate with: `python -m benchmarks.run --suite quick`" in md
    )
    assert "_Not run" in md and "_No lattice runs._" in md
