"""benchmarks/evidence.py: the exact references, the problems as the samplers see them, and a
quick run of the flowmc_like column on one target (no timing checked).

The nested samplers are optional (not installed in CI): the dynesty check skips without it;
jaxns is never imported here (it switches JAX to float64 for the whole process).
"""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from benchmarks import evidence_problems as problems
from benchmarks import evidence_report as report
from benchmarks import evidence_runs as runs
from benchmarks import reuse
from tests import background


def test_mixture_integrates_to_the_known_factor():
    # the same density in 2-D, on a grid that holds all its mass
    g = np.linspace(-10.0, 10.0, 801)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = jnp.asarray(np.stack([xx, yy], -1), jnp.float32)
    dens = np.exp(np.asarray(problems.mixture_log_prob(pts), np.float64) - problems.LOG_Z_TRUE)
    total = integrate.trapezoid(integrate.trapezoid(dens, g, axis=1), g)
    assert abs(math.log(total)) < 1e-6
    # the 10-D target against scipy's normal densities, and its NumPy twin
    x = np.random.default_rng(0).uniform(-6.0, 6.0, (5, problems.MIX_DIM))
    mix = sum(
        w * stats.multivariate_normal(np.full(problems.MIX_DIM, c)).pdf(x)
        for w, c in zip(problems.MIX_WEIGHTS, problems.MIX_CENTRES, strict=True)
    )
    expected = np.log(mix) + problems.LOG_Z_TRUE
    got = np.asarray(problems.mixture_log_prob(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose([problems._mixture_log_prob_np(p) for p in x], expected, rtol=1e-10)
    assert problems.mixture_box_mass_outside() < 1e-12


def test_eight_schools_exact_values():
    q = problems.eight_schools_log_z()
    assert abs(q["log_z"] - q["log_z_tau"]) < 1e-6 and q["quad_error"] < 1e-8
    # brute force: prior draws of (mu, tau, theta), the likelihood of y averaged
    rng = np.random.default_rng(1)
    n = 200_000
    mu = rng.normal(0.0, problems.MU_SD, n)
    tau = np.abs(problems.TAU_SCALE * rng.standard_cauchy(n))
    theta = mu[:, None] + tau[:, None] * rng.normal(size=(n, 8))
    log_lik = stats.norm.logpdf(problems.Y, theta, problems.SIGMA).sum(axis=1)
    w = np.exp(log_lik - log_lik.max())
    mc, se = math.log(w.mean()) + log_lik.max(), w.std() / w.mean() / math.sqrt(n)
    assert abs(mc - q["log_z"]) < 4 * se, (mc, se, q)
    # complete pooling: the closed form against quadrature over mu
    shift = 30.0

    def f(m):
        return math.exp(
            stats.norm.logpdf(problems.Y, m, problems.SIGMA).sum()
            + stats.norm.logpdf(m, 0.0, problems.MU_SD)
            + shift
        )

    v, _ = integrate.quad(f, -60.0, 60.0, epsabs=0.0, epsrel=1e-12, limit=200)
    assert abs(math.log(v) - shift - problems.pooled_log_z()) < 1e-8


def test_problems_as_the_nested_samplers_see_them():
    u = np.random.default_rng(2).uniform(size=21)
    # the mixture: a box prior and log_prob as the likelihood, 10 log 20 between conventions
    mix = problems.make_problem("mixture_10d")
    x = mix.prior_transform_np(u[:10])
    assert np.all(np.abs(x) <= problems.BOX)
    assert math.isclose(mix.offset_nested, 10 * math.log(20.0))
    # the regression: reuse.log_prob = Bernoulli log-likelihood + unnormalised N(0, 1) prior
    lr = problems.make_problem("logistic_regression")
    theta = lr.prior_transform_np(u)
    np.testing.assert_allclose(theta, stats.norm.ppf(u))
    data = reuse.make_dataset(problems.LOGREG_DATASET)
    lp = float(reuse.log_prob(jnp.asarray(theta, jnp.float32), reuse.as_jax(data)))
    ll = float(problems.logistic_log_lik(jnp.asarray(theta, jnp.float32), reuse.as_jax(data)))
    assert math.isclose(lp, ll - 0.5 * np.sum(theta**2), rel_tol=1e-5)
    assert math.isclose(lr.log_like_np(theta), ll, rel_tol=1e-5)
    assert math.isclose(lr.offset_flowmc, -10.5 * math.log(2 * math.pi))
    # eight schools: mu ~ N(0, 5), tau = 5 tan(pi u / 2) ~ HalfCauchy(5), theta_tilde ~ N(0, 1)
    es = problems.make_problem("eight_schools")
    x = es.prior_transform_np(u[:10].copy())
    assert math.isclose(x[0], 5 * stats.norm.ppf(u[0]))
    assert math.isclose(x[1], stats.halfcauchy(scale=5).ppf(u[1]))
    theta = x[0] + x[1] * x[2:]
    expected = stats.norm.logpdf(problems.Y, theta, problems.SIGMA).sum()
    assert math.isclose(es.log_like_np(x), expected, rel_tol=1e-12)


def test_regression_reference_is_consistent():
    data = reuse.make_dataset(problems.LOGREG_DATASET)
    a = problems.logistic_reference(data, {**problems.QUICK_REFERENCE, "n_draws": 10_000})
    b = problems.logistic_reference(
        data, {**problems.QUICK_REFERENCE, "n_draws": 10_000, "seed": 7}
    )
    se = math.hypot(a["standard_error"], b["standard_error"])
    assert abs(a["log_z"] - b["log_z"]) < 4 * se and a["standard_error"] < 0.05
    assert abs(a["log_z"] - a["laplace_log_z"]) < 1.0 and a["pareto_k"] < 0.5


def test_model_comparison_and_verdicts():
    refs = {"eight_schools": {"log_z": -31.0}, "eight_schools_pooled": {"log_z": -30.5}}
    rows = [
        {"target": t, "sampler": "dynesty", "method": "nested", "log_z": z, "standard_error": 0.3,
         "wall_s": 1.0}
        for t, z in (("eight_schools", -31.2), ("eight_schools_pooled", -30.6))
    ]  # fmt: skip
    rows = [report.score(r, refs[r["target"]]) for r in rows]
    assert rows[0]["verdict"] == "within 2 SE" and math.isclose(rows[0]["error"], -0.2)
    (c,) = report.model_comparison(rows, refs)
    assert math.isclose(c["log_bayes_factor"], -0.6) and math.isclose(c["exact"], -0.5)
    assert math.isclose(c["standard_error"], math.hypot(0.3, 0.3))
    assert "| dynesty |" in report.comparison_markdown([c])
    far = report.score({**rows[0], "log_z": -33.0}, refs["eight_schools"])
    assert far["verdict"] == "beyond 3 SE"


def test_quick_flowmc_like_run_writes_the_report():
    """The quick flowmc_like column on the pooled model, run by a background job."""
    job = background.jobs()["benchmark_evidence"]
    outcome = job.outcome()
    assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-3000:]
    out, ref = job.cwd / "evidence.md", job.cwd / "reference.json"
    assert not ref.exists()  # quick mode never writes the reference cache
    payload = json.loads(out.with_suffix(".json").read_text())
    rows = payload["rows"]
    assert [r["method"] for r in rows] == ["importance", "bridge"]
    for r in rows:
        assert r["sampler"] == "flowmc_like" and not r.get("failed")
        assert math.isfinite(r["log_z"]) and r["standard_error"] > 0
        assert r["wall_s"] > r["evidence_s"] > 0
        assert r["n_evaluations"] == r["run_evaluations"] + runs.QUICK_EVIDENCE_SAMPLES
        assert r["reference"] == problems.pooled_log_z()
        assert r["warnings"]  # a tiny run: the sampler says so, the record keeps it
    text = out.read_text()
    assert "Quick mode" in text and "| eight_schools_pooled | flowmc_like (bridge) |" in text
    assert "python -m benchmarks.evidence --quick" in text and "## Machine" in text


def test_dynesty_quick(tmp_path):
    pytest.importorskip("dynesty")
    (row,) = runs.run_one("eight_schools_pooled", "dynesty", 0, 8, quick=True)
    assert not row.get("failed") and row["n_evaluations"] > 0
    # the 1-D pooled model is easy even with 50 live points
    assert abs(row["log_z"] - problems.pooled_log_z()) < 4 * row["standard_error"] + 0.1
