"""The runs of `benchmarks.evidence`: each sampler on one target, in this process."""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
import warnings
from typing import Any

import jax
import numpy as np

from benchmarks.evidence_problems import Problem, make_problem
from benchmarks.evidence_report import DYNESTY_MORE_LIVE

SAMPLERS = ("flowmc_like", "dynesty", "dynesty_nlive5000", "jaxns")

N_CHAINS = 32
EVIDENCE_SAMPLES = 10_000
QUICK_FLOWMC = {
    "n_training_loops": 2,
    "n_production_loops": 2,
    "n_local_steps": 5,
    "n_global_steps": 5,
}
QUICK_EVIDENCE_SAMPLES = 1_000
DEFAULT_DLOGZ = 1e-3 * (500 - 1) + 0.01
"""dynesty's default stopping tolerance with its default 500 live points."""
QUICK_DYNESTY = {"nlive": 50, "maxiter": 300}
QUICK_JAXNS = {"root_allocation_degree": 20, "max_samples": 1000}


# ----------------------------------------------------------------------------- samplers
def _warning_texts(caught: list[warnings.WarningMessage]) -> list[str]:
    return sorted(
        {
            f"{w.category.__name__}: {w.message}"
            for w in caught
            if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
        }
    )


def run_flowmc_like(
    problem: Problem, seed: int, n_chains: int, quick: bool
) -> list[dict[str, Any]]:
    """The library's defaults, then ``log_evidence`` by importance and by bridge sampling."""
    import flowmc_like as fm
    from benchmarks.peers.flowmc_like_peer import expected_evals
    from benchmarks.timing import CompileTracker

    settings = dict(QUICK_FLOWMC) if quick else {}
    n_samples = QUICK_EVIDENCE_SAMPLES if quick else EVIDENCE_SAMPLES
    key = jax.random.key(seed)
    with CompileTracker() as tr, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = tr.stamp("start")
        log_prob, kwargs, x0 = problem.flowmc_setup(jax.random.fold_in(key, 1), n_chains)
        sampler = fm.Sampler(log_prob, progress_bar=False, **kwargs, **settings)
        result = sampler.run(key, x0)
        jax.block_until_ready(result.flat_samples)
        t1 = tr.stamp("run")
        estimates = []
        for method in ("importance", "bridge"):
            ta = time.time()
            ev = result.log_evidence(jax.random.key(seed + 1), n_samples=n_samples, method=method)
            estimates.append((ev, time.time() - ta, tr.compile_seconds(ta, time.time())))
    h = result.history
    is_tr = np.asarray(h.is_training, bool)
    run_evals = sum(expected_evals(sampler, n_chains, h).values())
    common = {
        "run_s": t1 - t0,
        "timings": {k: float(v) for k, v in dict(result.timings).items()},
        "run_compile_s_observed": tr.compile_seconds(t0, t1),
        "n_chains": n_chains,
        "n_training_loops": int(is_tr.sum()),
        "n_production_loops": int((~is_tr).sum()),
        "n_draws_per_chain": int(result.n_draws),
        "run_evaluations": run_evals,
        "settings": {"passed": settings, "n_evidence_samples": n_samples},
        "warnings": _warning_texts(caught),
    }
    rows = []
    for ev, seconds, compile_s in estimates:
        rows.append(
            {
                "sampler": "flowmc_like",
                "method": ev.method,
                "log_z_sampler": ev.log_z,
                "log_z": ev.log_z + problem.offset_flowmc,
                "offset": problem.offset_flowmc,
                "standard_error": ev.standard_error,
                "wall_s": t1 - t0 + seconds,
                "evidence_s": seconds,
                "evidence_compile_s_observed": compile_s,
                "n_evaluations": run_evals + int(ev.n_evaluations),
                "evidence": dataclasses.asdict(ev),
                **common,
            }
        )
    return rows


def run_dynesty(
    problem: Problem, seed: int, quick: bool, nlive: int | None = None
) -> list[dict[str, Any]]:
    """``dynesty.NestedSampler`` with its defaults (NumPy likelihood and prior transform).

    ``nlive`` (if given) changes the live points and keeps the default run's stopping
    rule: dynesty's default ``dlogz = 1e-3 (nlive - 1) + 0.01`` grows with ``nlive`` (5.0 at
    5000 live points, which stops early and leaves the remaining mass in the error), so those
    runs pass ``dlogz`` = its value at 500 live points.
    """
    import dynesty

    init_kw = {"nlive": QUICK_DYNESTY["nlive"]} if quick else {}
    if nlive is not None:  # same stopping rule as the default's: dlogz of 500 live points
        init_kw = {"nlive": 2 * QUICK_DYNESTY["nlive"] if quick else nlive}
    run_kw: dict[str, Any] = {"maxiter": QUICK_DYNESTY["maxiter"]} if quick else {}
    if nlive is not None:
        run_kw["dlogz"] = DEFAULT_DLOGZ
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        ns = dynesty.NestedSampler(
            problem.log_like_np, problem.prior_transform_np, problem.n_dim,
            rstate=np.random.default_rng(seed), **init_kw,
        )  # fmt: skip
        ns.run_nested(print_progress=False, **run_kw)
        res = ns.results
        wall = time.perf_counter() - t0
    log_z = float(res.logz[-1])
    return [
        {
            "sampler": "dynesty" if nlive is None else f"dynesty_nlive{nlive}",
            "method": "nested",
            "log_z_sampler": log_z,
            "log_z": log_z + problem.offset_nested,
            "offset": problem.offset_nested,
            "standard_error": float(res.logzerr[-1]),
            "wall_s": wall,
            "evidence_s": None,
            "n_evaluations": int(np.sum(res.ncall)),
            "n_iterations": int(res.niter),
            "efficiency_percent": float(res.eff),
            "information": float(res.information[-1]),
            "settings": {
                "passed": {**init_kw, **run_kw},
                "nlive": int(ns.nlive),
                "bound": str(ns.bounding),
                "sample": type(ns.sampling).__name__
                if not isinstance(ns.sampling, str)
                else ns.sampling,
            },
            "warnings": _warning_texts(caught),
        }
    ]


def run_jaxns(problem: Problem, seed: int, quick: bool) -> list[dict[str, Any]]:
    """jaxns 3.0's ``NestedSampler`` with its defaults (priors of TFP distributions)."""
    from jaxns.core import NestedSampler
    from jaxns.model import Model

    kw = dict(QUICK_JAXNS) if quick else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        args = problem.jaxns_args()
        model = Model(prior_model=problem.jaxns_prior_model)
        state = NestedSampler(model=model, **kw).run(key=jax.random.PRNGKey(seed), args=args)
        res = state.to_result().trim()
        log_z = float(res.log_Z_mean)
        wall = time.perf_counter() - t0
    return [
        {
            "sampler": "jaxns",
            "method": "nested",
            "log_z_sampler": log_z,
            "log_z": log_z + problem.offset_nested,
            "offset": problem.offset_nested,
            "standard_error": float(res.log_Z_uncert),
            "wall_s": wall,
            "evidence_s": None,
            "n_evaluations": int(res.total_num_likelihood_evaluations),
            "n_samples": int(res.total_num_samples),
            "ess": float(res.ess),
            "information": float(res.H_mean),
            "termination_reason": int(res.termination_reason),
            "settings": {"passed": kw, "x64": bool(jax.config.jax_enable_x64)},
            "warnings": _warning_texts(caught),
        }
    ]


def run_one(target: str, sampler: str, seed: int, n_chains: int, quick: bool) -> list[dict]:
    """One sampler on one target in this process; its rows (``FAILED`` row on an error)."""
    base = {"target": target, "sampler": sampler, "seed": seed}
    t_import = time.time()
    try:
        _import_sampler(sampler)
    except Exception as e:
        return [{**base, "method": "-", "failed": f"{type(e).__name__}: {e}"}]
    import_s = time.time() - t_import
    load0, cpu0 = os.getloadavg(), time.process_time()
    try:
        problem = make_problem(target)
        if sampler == "flowmc_like":
            from benchmarks.reuse import clear_all_caches, no_persistent_cache

            clear_all_caches()
            with no_persistent_cache():
                rows = run_flowmc_like(problem, seed, n_chains, quick)
        elif sampler == "dynesty":
            rows = run_dynesty(problem, seed, quick)
        elif sampler == "dynesty_nlive5000":
            rows = run_dynesty(problem, seed, quick, nlive=DYNESTY_MORE_LIVE)
        elif sampler == "jaxns":
            from benchmarks.reuse import no_persistent_cache

            with no_persistent_cache():
                rows = run_jaxns(problem, seed, quick)
        else:
            raise ValueError(f"unknown sampler {sampler!r}; choose from {SAMPLERS}")
    except Exception as e:  # a failed run is reported, not fatal
        return [
            {
                **base,
                "method": "-",
                "failed": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(),
            }
        ]
    extra = {
        "import_s": import_s,
        "cpu_s": time.process_time() - cpu0,
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
    }
    return [{**base, **row, **extra} for row in rows]


def _import_sampler(sampler: str) -> None:
    """Import what a sampler's run needs, before its clock starts."""
    import scipy.special  # noqa: F401

    if sampler == "jaxns":
        import jaxns.core  # (switches JAX to float64)
        import jaxns.model
        import jaxns.priors  # noqa: F401
        import tensorflow_probability.substrates.jax  # noqa: F401
    elif sampler.startswith("dynesty"):
        import dynesty  # noqa: F401
    elif sampler == "flowmc_like":
        import numpyro
        import numpyro.distributions  # noqa: F401

        import flowmc_like
        import flowmc_like.evidence  # noqa: F401
