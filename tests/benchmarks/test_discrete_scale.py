"""benchmarks.discrete_scale: observables, z-scores and the rendered table, on made-up runs."""

import json

import numpy as np

from benchmarks import discrete_scale as ds


def test_sk_observables_pair_the_chains():
    case = ds.CASES["sk64_b1"]
    target = case.target()
    states = np.zeros((4, 3, 64), np.int32)
    states[1] = 1  # chain 1 is chain 0 flipped: q = -1
    states[3, :, :32] = 1  # chain 3 differs from chain 2 on half the sites: q = 0
    series = ds.observables(case, target, states)
    assert series["abs_q"].shape == (2, 3)
    np.testing.assert_allclose(series["abs_q"][0], 1.0)
    np.testing.assert_allclose(series["abs_q"][1], 0.0)
    np.testing.assert_allclose(series["q2"], series["abs_q"] ** 2)


def test_metrics_and_render(tmp_path):
    case = ds.CASES["ising_L16_bc"]
    rng = np.random.default_rng(0)
    exact = ds.exact_energy(case)
    energy = exact + rng.normal(0, 10.0, (8, 500))
    run = {
        "series": {"energy": energy, "abs_m": np.abs(rng.normal(0.7, 0.1, (8, 500)))},
        "timings": {"total": 10.0, "training": 4.0, "compile": 1.0},
        "global_acceptance": 0.5,
    }
    m = ds.metrics(case, run, {"_ising": {}})
    assert abs(m["z_energy"]) < 4
    assert m["training_share"] == 0.5
    assert m["min_ess_per_s"] <= m["ess_per_s_energy"]
    shifted = dict(run, series={**run["series"], "energy": energy + 5.0})
    assert abs(ds.metrics(case, shifted, {"_ising": {}})["z_energy"]) > 4
    record = {
        "case": case.name,
        "sampler": "metropolis",
        "timings": run["timings"],
        "global_acceptance": None,
        "choices": [],
        "metrics": m,
    }
    flow = dict(record, sampler="flowmc_like", choices=["a choice"])
    header = {"command": "c", "seed": 0, "n_chains": 8, "machine": "m", "date": "d"}
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"header": header, "records": [record, flow]}, default=float))
    text = ds.render(path)
    assert "| ising_L16_bc | flowmc_like |" in text and "a choice" in text
    assert path.with_suffix(".md").read_text() == text
