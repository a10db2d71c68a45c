"""Marginal likelihood ``log Z`` side by side: flowmc_like's evidence and two nested samplers.

Usage::

    python -m benchmarks.evidence [--out benchmarks/results/evidence.md] [--seed 0]
        [--targets mixture_10d eight_schools eight_schools_pooled logistic_regression]
        [--samplers flowmc_like dynesty dynesty_nlive5000 jaxns] [--n-chains 32]
        [--reference benchmarks/results/evidence_reference.json] [--recompute-reference]
        [--in-process] [--quick]

Writes ``--out`` (Markdown), the same path with ``.json`` (every number) and with
``_comparison.md`` (the eight schools model comparison table alone, which the evidence
how-to includes).

Problem: estimate the marginal likelihood ``Z`` of four targets whose ``log Z`` is known
exactly or from a long reference computation, with three samplers, each with its defaults:

- ``mixture_10d``: ``0.3 N(-2.5 * 1, I) + 0.7 N(2.5 * 1, I)`` in 10-D, scaled by a known
  factor: ``log_prob(x) = log(mixture density) + LOG_Z_TRUE`` with ``LOG_Z_TRUE = 3.7``, so
  ``log Z = 3.7`` exactly. The nested samplers need a proper prior: uniform on
  ``[-10, 10]^10`` (density ``20^-10``) with likelihood ``exp(log_prob)``; their evidence is
  ``Z / 20^10``, converted here by ``log Z = log Z_nested + 10 log 20``. The mixture's mass
  outside the box is about ``3e-13`` (``box_mass_outside`` in the reference), negligible.
- ``eight_schools``: the eight schools data, the non-centred hierarchical model
  ``mu ~ N(0, 5)``, ``tau ~ HalfCauchy(5)``, ``theta_tilde_j ~ N(0, 1)``,
  ``y_j ~ N(mu + tau theta_tilde_j, sigma_j)`` (numpyro; flowmc_like samples its
  unconstrained space, ``log tau``, whose density carries the Jacobian, so its ``Z`` is the
  model's evidence). Exact: given ``tau``, ``y ~ MVN(0, diag(sigma^2 + tau^2) + 25 11^T)``;
  the integral over ``tau`` is one-dimensional quadrature after ``tau = 5 tan(pi u / 2)``
  (which makes the HalfCauchy(5) prior uniform in ``u`` on ``[0, 1]``), float64
  ``scipy.integrate.quad``, checked against quadrature in ``tau`` on ``[0, inf)``.
- ``eight_schools_pooled``: complete pooling, ``mu ~ N(0, 5)``, ``y_j ~ N(mu, sigma_j)``:
  ``y ~ MVN(0, diag(sigma^2) + 25 11^T)`` in closed form. With ``eight_schools`` it gives the
  model comparison table (log Bayes factor hierarchical vs pooled).
- ``logistic_regression``: dataset 0 of `benchmarks.reuse` (500 points, 21 parameters,
  ``N(0, 1)`` priors). ``reuse.log_prob`` leaves out the prior's normalising constant, so
  flowmc_like's ``log Z`` is converted by ``- (21 / 2) log(2 pi)``. Reference: importance
  sampling with a multivariate Student-t proposal (``REFERENCE["df"]`` degrees of freedom,
  centred on the posterior mode with the inverse Hessian there as scale matrix; Newton's
  method in float64), ``REFERENCE["n_draws"]`` draws in float64, with its standard error
  and Pareto k; cached in ``--reference`` against a fingerprint of the data and the
  settings (``--recompute-reference`` redoes it).

The nested samplers see the prior through a transform of the unit cube (normal ppf, sd 5
for ``mu``; ``5 tan(pi u / 2)`` for ``tau``; the normal ppf for ``theta_tilde`` and the
regression coefficients; ``20 u - 10`` for the mixture) and the likelihood alone (the sum
of the normal log densities of ``y``; the Bernoulli log-likelihood; the mixture's
``log_prob``); their ``log Z`` is the model evidence (after the box conversion for the
mixture).

Samplers, each run timed by wall clock after the imports (target construction, starts,
compilation and the run included):

- ``flowmc_like``: ``fm.Sampler(log_prob, n_dim=d, progress_bar=False)`` (for numpyro:
  ``fm.Sampler(fm.from_numpyro(model, sigma, y), progress_bar=False)``, starts
  ``target.initial_position``), library defaults otherwise (automatic schedule, MALA +
  RealNVP), ``--n-chains`` chains (32) starting uniformly in ``[-5, 5]^10`` (mixture) or
  from ``N(0, 0.5^2)`` (regression); then ``result.log_evidence(jax.random.key(seed + 1))``
  (importance sampling, 10,000 flow draws) and, as an extra row, the same with
  ``method="bridge"``. Wall = the run plus that estimate; the estimate's own time is in
  the evidence column. Evaluations = the run's (from the algorithm:
  `benchmarks.peers.flowmc_like_peer.expected_evals`) plus the estimate's.
- ``dynesty``: ``dynesty.NestedSampler(loglike, prior_transform, ndim,
  rstate=np.random.default_rng(seed))`` with its defaults (500 live points, multi-ellipsoid
  bounds, sampling method chosen by dimension), ``run_nested(print_progress=False)``;
  ``log Z = results.logz[-1]``, SE ``results.logzerr[-1]``, evaluations
  ``sum(results.ncall)``. The likelihoods and prior transforms are NumPy float64 functions
  of one point (``scipy.special.ndtri`` for the normal ppf), the form dynesty calls.
- ``dynesty_nlive5000``: the same with ``nlive=5000`` (10x) and the default run's stopping
  tolerance (``dlogz=0.509``; dynesty's default grows with ``nlive``), to measure how its
  error and time scale with its live points; left out on the regression (about 13 min) unless
  ``--samplers`` and ``--targets`` both name it.
- ``jaxns`` 3.0: ``jaxns.core.NestedSampler(model=Model(prior_model))`` with its defaults,
  ``run(key=jax.random.PRNGKey(seed), args=data)``, ``state.to_result().trim()``; priors
  ``jaxns.priors.Prior`` of TFP-on-JAX distributions (``Uniform``, ``Normal``,
  ``HalfCauchy``), likelihood a JAX function; ``log Z = log_Z_mean``, SE ``log_Z_uncert``,
  evaluations ``total_num_likelihood_evaluations``. jaxns switches JAX to float64 when it
  is imported.

Each run is a fresh process (``python -m benchmarks.evidence --worker TARGET SAMPLER``, in a
scratch directory: jaxns writes an ``application.log`` where it runs), so each pays its own
compilation and jaxns's float64 does not reach the other samplers; JAX's persistent
compilation cache is off in it, and the imports (the sampler's package, numpyro, TFP) come
before the clock. ``--in-process`` runs everything in this process instead, sampler by
sampler in the order given (jaxns last by default), with the library's and JAX's caches
cleared before each flowmc_like run (the smoke test uses it).

Measured per target and sampler: ``log Z`` in the model's convention, its stated standard
error, the exact or reference value (and its SE), the error, ``|error| / SE`` with
``SE = sqrt(SE_sampler^2 + SE_reference^2)``, wall seconds, target or likelihood evaluations,
and for flowmc_like the Pareto k of the importance weights against its threshold and
whether the library calls the estimate reliable. Summary: per sampler and target whether
the error is within 2 SE (or 3 SE), the wall-time ratio nested sampler / flowmc_like, and
the same at equal accuracy: a nested run's wall time times ``(SE / SE_flowmc_like)^2``
(its error falls as ``1 / sqrt(n_live)``, its cost grows as ``n_live``; the 10x dynesty
runs check the scaling).

``--quick`` (the smoke test): flowmc_like with ``n_training_loops=2, n_production_loops=2,
n_local_steps=5, n_global_steps=5`` and 1,000 evidence draws, dynesty with ``nlive=50`` and
``maxiter=300``, jaxns with ``root_allocation_degree=20`` and ``max_samples=1000``, a short
reference for the regression (not cached); numbers meaningless.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import jax

from benchmarks import reuse
from benchmarks.evidence_problems import (
    LOG_Z_TRUE,
    LOGREG_DATASET,
    QUICK_REFERENCE,
    TARGETS,
    eight_schools_log_z,
    logistic_log_lik,
    logistic_reference,
    make_problem,
    mixture_log_prob,
    pooled_log_z,
    references,
)
from benchmarks.evidence_report import (
    _label,
    build_markdown,
    comparison_markdown,
    model_comparison,
    score,
    summarize,
)
from benchmarks.evidence_runs import (
    EVIDENCE_SAMPLES,
    N_CHAINS,
    QUICK_DYNESTY,
    QUICK_EVIDENCE_SAMPLES,
    QUICK_FLOWMC,
    QUICK_JAXNS,
    SAMPLERS,
    run_one,
)
from benchmarks.jsonable import json_default

__all__ = [
    "LOGREG_DATASET",
    "LOG_Z_TRUE",
    "QUICK_EVIDENCE_SAMPLES",
    "QUICK_REFERENCE",
    "comparison_markdown",
    "score",
    "SAMPLERS",
    "TARGETS",
    "eight_schools_log_z",
    "logistic_log_lik",
    "logistic_reference",
    "main",
    "make_problem",
    "mixture_log_prob",
    "pooled_log_z",
    "references",
    "run_one",
]

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parent.parent
DEFAULT_OUT = RESULTS / "evidence.md"
DEFAULT_REFERENCE = RESULTS / "evidence_reference.json"

SKIPPED_BY_DEFAULT = {("logistic_regression", "dynesty_nlive5000")}
"""Runs left out unless both are named (about 13 min: 10x the default run's 79 s)."""

RUN_TIMEOUT_S = 3600


def run_in_subprocess(target: str, sampler: str, args: argparse.Namespace) -> list[dict]:
    """`run_one` in a fresh ``python -m benchmarks.evidence --worker`` process."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "record.json"
        cmd = [
            sys.executable, "-m", "benchmarks.evidence", "--worker", target, sampler,
            "--seed", str(args.seed), "--n-chains", str(args.n_chains), "--record", str(record),
        ]  # fmt: skip
        if args.quick:
            cmd.append("--quick")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
        t0 = time.time()
        try:
            # cwd: a scratch directory (jaxns writes an application.log where it runs)
            proc = subprocess.run(
                cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return [_failed(target, sampler, args.seed, f"timed out after {RUN_TIMEOUT_S} s")]
        if record.exists():
            rows = json.loads(record.read_text())
            for r in rows:
                r["process_s"] = time.time() - t0
            return rows
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        return [_failed(target, sampler, args.seed, f"exit {proc.returncode}: {' | '.join(tail)}")]


def _failed(target: str, sampler: str, seed: int, text: str) -> dict[str, Any]:
    return {"target": target, "sampler": sampler, "seed": seed, "method": "-", "failed": text}


def _worker(args: argparse.Namespace) -> int:
    target, sampler = args.worker
    rows = run_one(target, sampler, args.seed, args.n_chains, args.quick)
    Path(args.record).write_text(json.dumps(rows, default=json_default))
    return 0


# ----------------------------------------------------------------------------- driver
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.evidence", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown path (+ .json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    p.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    p.add_argument("--n-chains", type=int, default=None, help=f"{N_CHAINS} (--quick: 8)")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    p.add_argument("--recompute-reference", action="store_true")
    p.add_argument("--in-process", action="store_true", help="no subprocess per run")
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    p.add_argument("--worker", nargs=2, metavar=("TARGET", "SAMPLER"), help=argparse.SUPPRESS)
    p.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    args.samplers_given = "--samplers" in given
    args.targets_given = "--targets" in given
    if args.n_chains is None:
        args.n_chains = 8 if args.quick else N_CHAINS
    return args


def _versions() -> dict[str, str | None]:
    out = {}
    for name in ("dynesty", "jaxns", "numpyro", "scipy", "tfp-nightly"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every sampler on every target, write the Markdown and the JSON."""
    args = _parse_args(argv)
    if args.worker:
        return _worker(args)
    from benchmarks.run import machine_info
    from benchmarks.worker import _cpu_model

    load0 = os.getloadavg()
    t0 = time.time()
    refs = references(args.targets, args.reference, args.recompute_reference, args.quick)
    rows: list[dict[str, Any]] = []
    # sampler-major: in one process jaxns (which switches JAX to float64) comes last
    named_both = args.samplers_given and args.targets_given
    for sampler in args.samplers:
        for target in args.targets:
            if (target, sampler) in SKIPPED_BY_DEFAULT and not named_both:
                continue
            print(f"[evidence] {sampler} on {target} ...", flush=True)
            got = (
                run_one(target, sampler, args.seed, args.n_chains, args.quick)
                if args.in_process
                else run_in_subprocess(target, sampler, args)
            )
            for r in got:
                r = score(r, refs[target])
                rows.append(r)
                if r.get("failed"):
                    print(f"  FAILED: {r['failed']}", flush=True)
                else:
                    print(
                        f"  {_label(r)}: log Z {r['log_z']:.4f} ± {r['standard_error']:.4f} "
                        f"(reference {r['reference']:.4f}, |err|/SE "
                        f"{r['abs_error_over_se']:.2f}), wall {r['wall_s']:.1f} s",
                        flush=True,
                    )
    order = {t: i for i, t in enumerate(TARGETS)}
    rows.sort(key=lambda r: order[r["target"]])  # stable: sampler order kept per target
    env = {"cpu": _cpu_model(), "backend": jax.default_backend(), "x64": False}
    machine = machine_info(env, load0)
    machine["versions"].update(_versions())
    meta = {
        "generated": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m benchmarks.evidence", *(sys.argv[1:] if argv is None else argv)]
        ),
        "elapsed_s": time.time() - t0,
        "quick": args.quick,
        "seed": args.seed,
        "n_chains": args.n_chains,
        "targets": args.targets,
        "samplers": args.samplers,
        "in_process": args.in_process,
        "reference_path": reuse._display_path(args.reference),
        "settings": {
            "flowmc_like": QUICK_FLOWMC if args.quick else "library defaults",
            "evidence_samples": QUICK_EVIDENCE_SAMPLES if args.quick else EVIDENCE_SAMPLES,
            "dynesty": QUICK_DYNESTY if args.quick else "defaults",
            "jaxns": QUICK_JAXNS if args.quick else "defaults",
        },
        "machine": machine,
        "platform": platform.platform(),
        "git": reuse.git_state(),
    }
    payload = {
        "meta": meta,
        "references": refs,
        "summary": summarize(rows, args.targets),
        "comparison": model_comparison(rows, refs),
        "rows": rows,
    }
    out_md = Path(args.out)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.with_suffix(".json").write_text(
        json.dumps(payload, indent=1, default=json_default) + "\n"
    )
    out_md.write_text(build_markdown(payload))
    written = [out_md, out_md.with_suffix(".json")]
    if payload["comparison"]:
        comp = out_md.with_name(out_md.stem + "_comparison.md")
        comp.write_text(comparison_markdown(payload["comparison"]))
        written.append(comp)
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if any(r.get("failed") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
