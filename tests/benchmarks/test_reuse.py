"""benchmarks/reuse.py on a tiny budget: the problem, the reference cache, the files (no timing).

The NUTS reference is replaced by a stub and the cold fits do not clear the caches, so the
whole benchmark compiles the sampler once.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import reuse


def _stub_reference(calls):
    def nuts_reference(data, settings):
        calls.append(reuse.fingerprint(data))
        return {
            "mean": [0.0] * reuse.N_DIM,
            "sd": [1.0] * reuse.N_DIM,
            "mcse_mean": [10.0] * reuse.N_DIM,  # wide: every tiny fit counts as correct
            "ess_bulk": [1000.0] * reuse.N_DIM,
            "r_hat": [1.0] * reuse.N_DIM,
            "settings": dict(settings),
            "n_divergent": 0,
            "mean_integration_steps": 7.0,
            "wall_s": 0.0,
        }

    return nuts_reference


def test_datasets_are_fixed_and_log_prob_is_the_logistic_posterior():
    x, y = reuse.make_dataset(3)
    assert x.shape == (reuse.N_POINTS, reuse.N_FEATURES) and y.shape == (reuse.N_POINTS,)
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert reuse.fingerprint((x, y)) == reuse.fingerprint(reuse.make_dataset(3))
    assert reuse.fingerprint((x, y)) != reuse.fingerprint(reuse.make_dataset(4))
    theta = np.linspace(-1.0, 1.0, reuse.N_DIM)
    eta = theta[0] + x.astype(np.float64) @ theta[1:]
    expected = np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(theta**2)
    got = reuse.log_prob(jnp.asarray(theta, jnp.float32), reuse.as_jax((x, y)))
    assert np.isclose(float(got), expected, rtol=1e-4)


def test_loops_to_fraction():
    assert reuse.loops_to_fraction(np.array([np.nan, 0.1, 0.5, 0.45, 0.5])) == 3
    assert reuse.loops_to_fraction(np.array([0.6, 0.5])) == 1
    assert reuse.loops_to_fraction(np.array([0.2, np.nan])) is None


@pytest.mark.filterwarnings("ignore::UserWarning")  # arviz: more chains than draws
def test_quick_run_writes_markdown_json_and_caches_the_reference(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(reuse, "nuts_reference", _stub_reference(calls))
    monkeypatch.setattr(reuse, "clear_all_caches", lambda: None)
    out, ref = tmp_path / "reuse.md", tmp_path / "ref.json"
    args = ["--quick", "--out", str(out), "--reference", str(ref), "--n-chains", "4"]
    assert reuse.main(args) == 0
    assert len(calls) == 2  # the two datasets
    assert jax.config.jax_enable_compilation_cache  # restored after the run

    payload = json.loads(out.with_suffix(".json").read_text())
    series = [(r["series"], r["fit"]) for r in payload["records"]]
    assert series == [("first", 0), ("warm", 1), ("control", 1), ("cold", 1)]
    assert payload["persistent_cache_enabled"] is False
    warm = payload["records"][1]
    assert warm["warm_started"] and warm["n_training_loops"] == 2
    for r in payload["records"]:
        assert r["correct"] and len(r["z"]) == reuse.N_DIM
        assert r["wall_s"] > 0 and r["min_ess_bulk"] > 0
    s = payload["summary"]
    assert s["n_fits"] == 3 and s["n_correct"] == 3
    assert s["warm_over_cold"] == s["warm_total_s"] / s["cold_total_s"]
    assert any(r["warnings"] for r in payload["records"])  # tiny fits: the sampler says so
    text = out.read_text()
    assert text.count("| warm | 1 |") == 1 and "python -m benchmarks.reuse --quick" in text
    assert "Quick mode" in text and "## Machine" in text and "Control" in text
    assert len(payload["posterior_shifts"]) == 1

    # The reference is cached: the same data and settings compute nothing; other NUTS
    # settings, or --recompute-reference, compute every dataset again.
    datasets = [reuse.make_dataset(i) for i in range(2)]
    reuse.reference_summaries(datasets, ref, dict(reuse.QUICK_NUTS_REFERENCE))
    assert len(calls) == 2
    reuse.reference_summaries(datasets, ref, dict(reuse.QUICK_NUTS_REFERENCE), recompute=True)
    assert len(calls) == 4
    reuse.reference_summaries(datasets, ref, {**reuse.QUICK_NUTS_REFERENCE, "n_chains": 3})
    assert len(calls) == 6
