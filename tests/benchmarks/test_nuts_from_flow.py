"""benchmarks/nuts_from_flow.py --quick: the files and their keys, NUTS started from a flow.

The flowmc_like fit is replaced by an untrained flow (a standard normal on the unconstrained
space; `fm.Sampler` has its own tests), so the test pays for numpyro's two compiled runs only.
"""

import json
from types import SimpleNamespace

import jax
import numpy as np
import pytest

import flowmc_like as fm

pytest.importorskip("numpyro")
pytest.importorskip("arviz")

from benchmarks import nuts_from_flow
from tests import background


def untrained_fit(model, args, kwargs, seed, settings):
    target = fm.from_numpyro(model, *args, **kwargs)
    flow = fm.RealNVP(n_layers=2, hidden_sizes=(8,))
    approx = fm.Approximation.from_model(
        flow, flow.init(jax.random.key(seed), target.n_dim), target.n_dim
    )
    record = {
        "wall_s": 0.0,
        "timings": {"compile": 0.0},
        "n_training_loops": 0,
        "n_production_loops": 0,
        "gradient_evals": 0,
        "density_evals": 0,
        "global_acceptance_production": float("nan"),
        "pareto_k": float("nan"),
        "warnings": [],
    }
    return target, SimpleNamespace(approximation=lambda: approx), record


def test_quick_run_writes_markdown_and_json():
    """``--quick`` with `untrained_fit`, run by a background job."""
    job = background.jobs()["benchmark_nuts_from_flow"]
    outcome = job.outcome()
    assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-3000:]
    out = job.cwd / "nuts_from_flow.md"
    payload = json.loads(out.with_suffix(".json").read_text())
    assert set(payload) == {"meta", "settings", "models"}
    assert payload["meta"]["quick"] and payload["settings"]["chain_method"] == "sequential"
    (model,) = payload["models"]
    assert model["model"] == "eight_schools" and model["n_dim"] == 10
    assert model["names"] == ["mu", "tau", "theta_tilde"]
    assert model["layout_max_rel_error"] < 1e-4  # the flat order is numpyro's
    assert model["flow_start"]["n_draws"] == nuts_from_flow.QUICK.n_flow_draws
    assert [[r["start"], r["num_warmup"]] for r in model["runs"]] == [
        list(c) for c in nuts_from_flow.QUICK.configs
    ]
    for run in model["runs"]:
        for key in ("warmup_s", "sampling_s", "divergences", "max_abs_z", "correct"):
            assert key in run
        assert run["warmup_gradients"] > 0 and run["sampling_gradients"] > 0
        assert len(run["z"]) == len(run["coordinates"]) == 2 + 8 + 8  # mu, tau, theta(_tilde)
        assert np.isfinite(run["min_ess_bulk"])
    text = out.read_text()
    assert "python -m benchmarks.nuts_from_flow --quick" in text and "Quick mode" in text
    assert "## Summary" in text and "## Every run" in text and "## Machine" in text
    assert text.count("| eight_schools |") == 1 + 2 + 1 + 1  # summary, runs, fits, reference
