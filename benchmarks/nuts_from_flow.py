"""numpyro NUTS started from a flowmc_like fit: the warmup it saves, and what the fit costs.

Usage::

    python -m benchmarks.nuts_from_flow [--out benchmarks/results/nuts_from_flow.md]
        [--models eight_schools,logistic,logistic_unscaled] [--seed 0] [--quick]
    python -m benchmarks.nuts_from_flow --render   # rewrite the Markdown from the JSON

Models (numpyro, float32):

- ``eight_schools``: eight schools, non-centered (10 latent coordinates: ``mu``, ``tau``
  through its log, ``theta_tilde``);
- ``logistic``: the Bayesian logistic regression of `benchmarks.reuse` (dataset 0: 500
  points, 20 features with correlation ``0.5^|i-j|``, intercept; ``Normal(0, 1)`` priors;
  21 coordinates);
- ``logistic_unscaled``: the same data with feature ``j`` multiplied by
  ``10^(-1.5 + 3 j / 19)`` (predictors left on their raw scales: posterior standard
  deviations from about 0.004 to 1, the case where NUTS has a mass matrix to learn).

Per model, one after another in one process:

1. the flowmc_like fit: ``fm.from_numpyro`` then ``fm.Sampler(target, n_chains=32,
   progress_bar=False)`` (library defaults: automatic schedule, MALA + RealNVP), wall time
   from building the target to the end of the run (compilation included);
2. the start it gives NUTS (``prep``): ``approx = result.approximation()``, 10,000 draws
   ``approx.sample_and_log_prob_unconstrained``, importance weights ``w ~ p / q``
   (``target.log_prob``, self-normalised), the weighted mean and covariance of the draws
   (the dense inverse mass matrix) and one start per chain resampled with probabilities ``w``
   (without replacement); the plain (unweighted) covariance and the first draws are kept too
   for the ``flow_plain`` configuration;
3. numpyro NUTS, 4 chains, ``chain_method="vectorized"``, 1000 draws after warmup, one
   ``MCMC.warmup`` call then one ``MCMC.run`` call, each timed (both compile: numpyro
   compiles its loop on each call), in these configurations:

   - ``default`` (warmup 1000, and 100 as a control): ``NUTS(model)``, numpyro's default
     init (uniform in ``(-2, 2)`` on the unconstrained space) and adaptation (step size and
     diagonal mass matrix);
   - ``flow`` (warmup 50, 100, 200): ``NUTS(model, inverse_mass_matrix=C_w,
     adapt_mass_matrix=False, dense_mass=True)``, ``init_params`` the resampled starts:
     only the step size adapts;
   - ``flow_plain`` (warmup 100): the same with the unweighted covariance and the first four
     flow draws as starts (what the weights are for);

4. a reference: default NUTS, 4 chains x 10,000 draws after 1,000 warmup steps (another key).

Measured per NUTS run: warmup and sampling wall time; gradient evaluations (the sum over
chains and iterations of numpyro's ``num_steps``, leapfrog steps, one gradient each);
divergences in sampling; on the constrained draws of every latent and deterministic
coordinate: min ArviZ bulk ESS, max R-hat, and ``z_j = |mean_j - mean_ref_j| /
sqrt(mcse_j^2 + mcse_ref_j^2)`` (ArviZ MCSE of the mean); a run is *correct* when
``max_j z_j < 4``. A compile probe per model (default NUTS, warmup 1, 1 draw) gives the
fixed cost of one numpyro call. The flowmc_like fit's target evaluations are counted from
its schedule: ``n_chains x loops x n_local_steps`` gradient evaluations (MALA) and
``n_chains x loops x n_global_steps`` density evaluations (flow proposals).

``--quick`` (the smoke test): eight schools only, one chain (``chain_method="sequential"``),
tiny schedules, the first run as its own reference, no compile probe; numbers meaningless.

Writes ``--out`` (Markdown), the same path with ``.json`` (every number), and the two tables
the docs include whole, ``<stem>_summary.md`` and ``<stem>_runs.md`` (`include_tables`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.jsonable import json_default
from benchmarks.report import fmt, machine_section

__all__ = ["MODELS", "flow_start", "main", "numpyro_init", "run_nuts"]

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "nuts_from_flow.md"

Z_MAX = 4.0
N_FIT_CHAINS = 32

EIGHT_SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0], np.float32)
EIGHT_SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0], np.float32)
UNSCALED_LOG10 = (-1.5, 1.5)  # feature j scaled by 10^(-1.5 + 3 j / 19)


@dataclass(frozen=True)
class Settings:
    """Every size of one benchmark run (full or ``--quick``)."""

    num_chains: int = 4
    chain_method: str = "vectorized"
    num_samples: int = 1000
    configs: tuple[tuple[str, int], ...] = (
        ("default", 1000),
        ("default", 100),
        ("flow", 50),
        ("flow", 100),
        ("flow", 200),
        ("flow_plain", 100),
    )
    reference: dict[str, int] | None = field(
        default_factory=lambda: {"num_chains": 4, "num_warmup": 1000, "num_samples": 10_000}
    )
    n_flow_draws: int = 10_000
    fit_chains: int = N_FIT_CHAINS
    fit_settings: dict[str, int] = field(default_factory=dict)
    probe: bool = True


QUICK = Settings(
    num_chains=1,
    chain_method="sequential",  # one compiled loop, the cheapest to compile
    num_samples=30,
    configs=(("default", 30), ("flow", 10)),
    reference=None,
    n_flow_draws=256,
    fit_chains=8,
    fit_settings={
        "n_training_loops": 2,
        "n_production_loops": 2,
        "n_local_steps": 5,
        "n_global_steps": 5,
        "n_epochs": 1,
        "batch_size": 64,
        "n_max_examples": 128,
    },
    probe=False,
)


# ----------------------------------------------------------------------------- models
def eight_schools(sigma, y=None):
    """Eight schools, non-centered."""
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", sigma.shape[0]):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def logistic(x, y=None):
    """Logistic regression, ``Normal(0, 1)`` priors on the intercept and the coefficients."""
    import numpyro
    import numpyro.distributions as dist

    intercept = numpyro.sample("intercept", dist.Normal(0.0, 1.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=intercept + x @ beta), obs=y)


def _logistic_data(unscaled: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
    from benchmarks.reuse import make_dataset

    x, y = make_dataset(0)
    if unscaled:
        x = x * 10.0 ** np.linspace(*UNSCALED_LOG10, x.shape[1])
    return (jnp.asarray(x, jnp.float32),), {"y": jnp.asarray(y, jnp.float32)}


def _eight_schools_data() -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (jnp.asarray(EIGHT_SCHOOLS_SIGMA),), {"y": jnp.asarray(EIGHT_SCHOOLS_Y)}


MODELS: dict[str, tuple[Any, Any, str]] = {
    "eight_schools": (
        eight_schools,
        _eight_schools_data,
        "eight schools, non-centered (10 coordinates)",
    ),
    "logistic": (
        logistic,
        lambda: _logistic_data(False),
        "logistic regression of benchmarks.reuse, dataset 0 (21 coordinates)",
    ),
    "logistic_unscaled": (
        logistic,
        lambda: _logistic_data(True),
        "the same, feature j times 10^(-1.5 + 3 j / 19) (21 coordinates)",
    ),
}


# ----------------------------------------------------------------------------- flow side
def fit_flow(model, args, kwargs, seed: int, settings: Settings) -> tuple[Any, Any, dict]:
    """fm.from_numpyro + fm.Sampler(...).run with the library's defaults; the fit's record."""
    import flowmc_like as fm
    from benchmarks.reuse import clear_all_caches

    clear_all_caches()  # the fit compiles, as in a new process (models share programs)
    t0 = time.perf_counter()
    target = fm.from_numpyro(model, *args, **kwargs)
    sampler = fm.Sampler(
        target, n_chains=settings.fit_chains, progress_bar=False, **settings.fit_settings
    )
    x0 = target.initial_position(jax.random.key(seed + 1), settings.fit_chains)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sampler.run(jax.random.key(seed), x0)
    wall = time.perf_counter() - t0
    h = result.history
    n_loops = len(h.is_training)
    n_local = int(settings.fit_settings.get("n_local_steps", 50))
    n_global = int(settings.fit_settings.get("n_global_steps", 25))
    d = result.diagnostics
    record = {
        "wall_s": wall,
        "timings": dict(result.timings),
        "n_training_loops": int(np.sum(h.is_training)),
        "n_production_loops": int(np.sum(~np.asarray(h.is_training))),
        "gradient_evals": settings.fit_chains * n_loops * n_local,
        "density_evals": settings.fit_chains * n_loops * n_global,
        "global_acceptance_production": float(np.nanmean(result.global_acceptance)),
        "min_ess": None if d is None else float(d.min_ess),
        "max_rhat": None if d is None else float(d.max_rhat),
        "pareto_k": None if d is None else float(d.pareto_k),
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
    }
    return target, result, record


def flow_start(
    approx: Any, target: Any, key: jax.Array, n_chains: int, n_draws: int
) -> dict[str, Any]:
    """Starts and inverse mass matrices for NUTS from ``n_draws`` flow draws.

    Weighted: self-normalised importance weights ``w ~ exp(log p - log q)``, their mean and
    covariance, ``n_chains`` starts resampled with probabilities ``w``. Plain: the
    unweighted covariance and the first ``n_chains`` draws.
    """
    key_draw, key_pick = jax.random.split(key)
    t0 = time.perf_counter()
    flat, log_q = approx.sample_and_log_prob_unconstrained(key_draw, n_draws)
    log_p = jax.jit(jax.vmap(target.log_prob))(flat)
    flat = np.asarray(flat, np.float64)
    log_w = np.asarray(log_p, np.float64) - np.asarray(log_q, np.float64)
    log_w = np.where(np.isfinite(log_w), log_w, -np.inf)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean = w @ flat
    cov = (w[:, None] * (flat - mean)).T @ (flat - mean)
    n_nonzero = int(np.sum(w > 0))
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key_pick)).ravel())
    picks = rng.choice(n_draws, n_chains, replace=n_nonzero < n_chains, p=w)
    wall = time.perf_counter() - t0
    return {
        "init": flat[picks],
        "cov": cov,
        "init_plain": flat[:n_chains],
        "cov_plain": np.cov(flat.T),
        "info": {
            "wall_s": wall,
            "n_draws": n_draws,
            "kish_ess": float(1.0 / np.sum(w**2)),
            "max_weight": float(w.max()),
            "n_nonfinite": int(np.sum(~np.isfinite(np.asarray(log_p)))),
        },
    }


def numpyro_init(model, args, kwargs, flat: np.ndarray, names: tuple[str, ...]) -> dict:
    """Flat unconstrained positions ``(n, n_dim)`` as numpyro's unconstrained dict."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    example = initialize_model(
        jax.random.PRNGKey(0), model, model_args=args, model_kwargs=kwargs
    ).param_info.z
    if tuple(sorted(example)) != tuple(names):
        raise AssertionError(f"site order {sorted(example)} != target.names {names}")
    _, unravel = ravel_pytree(example)
    return jax.vmap(unravel)(jnp.asarray(flat, jnp.float32))


def check_layout(model, args, kwargs, target: Any, flat: np.ndarray) -> float:
    """max |target.log_prob(x) + numpyro's potential energy(unravel(x))| over ``flat``."""
    from numpyro.infer.util import potential_energy

    init = numpyro_init(model, args, kwargs, flat, target.names)
    ours = np.asarray(jax.vmap(target.log_prob)(jnp.asarray(flat, jnp.float32)))
    theirs = np.asarray(
        jax.vmap(lambda z: potential_energy(model, args, kwargs, z))(init), np.float64
    )
    return float(np.max(np.abs(ours + theirs) / np.maximum(1.0, np.abs(ours))))


# ----------------------------------------------------------------------------- NUTS side
def run_nuts(
    model,
    args,
    kwargs,
    key: jax.Array,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    init: Any = None,
    inverse_mass_matrix: Any = None,
    chain_method: str = "vectorized",
) -> dict[str, Any]:
    """One numpyro NUTS run (warmup call, then sampling call), timed and counted."""
    from numpyro.infer import MCMC, NUTS

    if inverse_mass_matrix is None:
        kernel = NUTS(model)
    else:
        kernel = NUTS(
            model,
            inverse_mass_matrix=jnp.asarray(inverse_mass_matrix, jnp.float32),
            adapt_mass_matrix=False,
            dense_mass=True,
        )
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=False,
    )
    t0 = time.perf_counter()
    mcmc.warmup(
        key, *args, **kwargs, init_params=init, extra_fields=("num_steps",), collect_warmup=True
    )
    warm_steps = np.asarray(mcmc.get_extra_fields()["num_steps"])
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mcmc.run(
        mcmc.post_warmup_state.rng_key,
        *args,
        **kwargs,
        extra_fields=("num_steps", "diverging"),
    )
    samples = mcmc.get_samples(group_by_chain=True)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    samples = {k: np.asarray(v) for k, v in samples.items()}
    sampling_s = time.perf_counter() - t0
    names = []
    parts = []
    for name in sorted(samples):
        v = samples[name]
        c, n = v.shape[:2]
        flat = v.reshape(c, n, -1)
        parts.append(flat)
        size = flat.shape[-1]
        names += [name] if v.ndim == 2 else [f"{name}[{i}]" for i in range(size)]
    step_size = np.asarray(mcmc.last_state.adapt_state.step_size)
    return {
        "warmup_s": warmup_s,
        "sampling_s": sampling_s,
        "warmup_gradients": int(warm_steps.sum()),
        "sampling_gradients": int(np.asarray(extra["num_steps"]).sum()),
        "divergences": int(np.asarray(extra["diverging"]).sum()),
        "step_size": np.atleast_1d(step_size).tolist(),
        "coordinates": names,
        "draws": np.concatenate(parts, axis=-1),
    }


def score(run: dict[str, Any]) -> dict[str, Any]:
    """Replace the run's draws by their summary (mean, sd, MCSE, ESS, R-hat), min ESS and
    max R-hat."""
    from benchmarks.reuse import posterior_summary

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = posterior_summary(run.pop("draws"))
    run["summary"] = s
    run["min_ess_bulk"] = _nan_extreme(np.min, s["ess_bulk"])
    run["max_r_hat"] = _nan_extreme(np.max, s["r_hat"])  # NaN with one chain
    run["ess_per_1k_sampling_gradients"] = 1000.0 * run["min_ess_bulk"] / run["sampling_gradients"]
    return run


def _nan_extreme(fn: Any, values: list[float]) -> float:
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return float(fn(finite)) if finite.size else float("nan")


def compare(run: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """The run's z-scores against ``ref`` (a summary), their max, and whether it is correct."""
    s = run["summary"]
    mean, mcse = np.asarray(s["mean"]), np.asarray(s["mcse_mean"])
    rmean, rmcse = np.asarray(ref["mean"]), np.asarray(ref["mcse_mean"])
    z = np.abs(mean - rmean) / np.sqrt(mcse**2 + rmcse**2)
    run["z"] = z.tolist()
    run["max_abs_z"] = float(np.max(z))
    run["correct"] = bool(np.all(z < Z_MAX))
    return run


def run_model(name: str, seed: int, settings: Settings) -> dict[str, Any]:
    """The fit, the flow start, the reference and every configuration, for one model."""
    model, data, description = MODELS[name]
    args, kwargs = data()
    ref_set = settings.reference
    reference = None
    if ref_set is not None:
        print(f"[nuts_from_flow] {name}: reference NUTS ...", flush=True)
        reference = score(
            run_nuts(
                model,
                args,
                kwargs,
                jax.random.PRNGKey(10_000 + seed),
                ref_set["num_warmup"],
                ref_set["num_samples"],
                ref_set["num_chains"],
                chain_method=settings.chain_method,
            )
        )
        reference["settings"] = dict(ref_set)
        print(
            f"  reference: min ESS {reference['min_ess_bulk']:.0f}, max R-hat "
            f"{reference['max_r_hat']:.4f}, divergences {reference['divergences']}",
            flush=True,
        )
    probe = None
    if settings.probe:
        probe = run_nuts(
            model,
            args,
            kwargs,
            jax.random.PRNGKey(seed),
            1,
            1,
            settings.num_chains,
            chain_method=settings.chain_method,
        )
        probe.pop("draws")
    print(f"[nuts_from_flow] {name}: flowmc_like fit ...", flush=True)
    target, result, fit = fit_flow(model, args, kwargs, seed, settings)
    print(
        f"  fit: wall {fit['wall_s']:.1f} s, loops {fit['n_training_loops']}+"
        f"{fit['n_production_loops']}",
        flush=True,
    )
    approx = result.approximation()
    start = flow_start(
        approx, target, jax.random.key(20_000 + seed), settings.num_chains, settings.n_flow_draws
    )
    layout_error = check_layout(model, args, kwargs, target, start["init"])
    runs = []
    for kind, num_warmup in settings.configs:
        if kind == "default":
            init, imm = None, None
        elif kind == "flow":
            init = numpyro_init(model, args, kwargs, start["init"], target.names)
            imm = start["cov"]
        elif kind == "flow_plain":
            init = numpyro_init(model, args, kwargs, start["init_plain"], target.names)
            imm = start["cov_plain"]
        else:
            raise ValueError(f"unknown configuration {kind!r}")
        run = run_nuts(
            model,
            args,
            kwargs,
            jax.random.PRNGKey(seed),
            num_warmup,
            settings.num_samples,
            settings.num_chains,
            init=init,
            inverse_mass_matrix=imm,
            chain_method=settings.chain_method,
        )
        run = {"start": kind, "num_warmup": num_warmup, **score(run)}
        if reference is None:  # --quick: the first run stands in for the reference
            reference = {**run, "settings": None}
        runs.append(compare(run, reference["summary"]))
        print(
            f"  {kind} warmup {num_warmup}: warmup {run['warmup_s']:.1f} s "
            f"{run['warmup_gradients']} grads, sampling {run['sampling_gradients']} grads, "
            f"min ESS {run['min_ess_bulk']:.0f}, R-hat {run['max_r_hat']:.3f}, div "
            f"{run['divergences']}, max|z| {run['max_abs_z']:.2f}",
            flush=True,
        )
    ref_sd = np.asarray(reference["summary"]["sd"])
    return {
        "model": name,
        "description": description,
        "n_dim": int(target.n_dim),
        "names": list(target.names),
        "reference": reference,
        "probe": probe,
        "fit": fit,
        "flow_start": start["info"],
        "layout_max_rel_error": layout_error,
        "reference_sd_range": [float(ref_sd.min()), float(ref_sd.max())],
        "runs": runs,
    }


# ----------------------------------------------------------------------------- report
def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _label(run: dict[str, Any]) -> str:
    return {
        "default": "numpyro default",
        "flow": "from the flow",
        "flow_plain": "flow, unweighted",
    }[run["start"]]


def summary_rows(payload: dict[str, Any]) -> list[list[str]]:
    """Per model: default (longest warmup) against the flow (100 warmup, else the first)."""
    rows = []
    for m in payload["models"]:
        defaults = [r for r in m["runs"] if r["start"] == "default"]
        flows = [r for r in m["runs"] if r["start"] == "flow"]
        if not defaults or not flows:
            continue
        d = max(defaults, key=lambda r: r["num_warmup"])
        f = next((r for r in flows if r["num_warmup"] == 100), flows[0])
        fit, probe = m["fit"], m["probe"]
        rows.append(
            [
                m["model"],
                f"{d['num_warmup']} / {f['num_warmup']}",
                f"{d['warmup_gradients']} / {f['warmup_gradients']}",
                fmt(d["warmup_gradients"] / max(f["warmup_gradients"], 1), 3),
                f"{fmt(d['ess_per_1k_sampling_gradients'], 3)} / "
                f"{fmt(f['ess_per_1k_sampling_gradients'], 3)}",
                f"{_rhat(d['max_r_hat'])} / {_rhat(f['max_r_hat'])}",
                f"{'yes' if d['correct'] else '**NO**'} / {'yes' if f['correct'] else '**NO**'}",
                f"{fmt(d['warmup_s'], 2)} / {fmt(f['warmup_s'], 2)}",
                "-" if probe is None else fmt(probe["warmup_s"], 2),
                fmt(fit["wall_s"]),
                str(fit["gradient_evals"]),
                fmt(m["flow_start"]["wall_s"], 2),
            ]
        )
    return rows


def _rhat(v: float) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"


SUMMARY_HEADER = [
    "model",
    "warmup steps (default / flow)",
    "warmup gradients",
    "ratio",
    "ESS per 1k sampling gradients",
    "max R-hat",
    "correct",
    "warmup wall s",
    "of which numpyro's fixed cost s",
    "flowmc_like fit wall s",
    "fit gradient evals",
    "flow start s",
]

RUN_HEADER = [
    "model",
    "start",
    "warmup",
    "warmup wall s",
    "warmup gradients",
    "sampling wall s",
    "sampling gradients",
    "min ESS bulk",
    "ESS per 1k sampling gradients",
    "max R-hat",
    "divergences",
    "step size (chains)",
    "max \\|z\\|",
    "correct",
]


def _run_row(model: str, r: dict[str, Any]) -> list[str]:
    return [
        model,
        _label(r),
        str(r["num_warmup"]),
        fmt(r["warmup_s"], 2),
        str(r["warmup_gradients"]),
        fmt(r["sampling_s"], 2),
        str(r["sampling_gradients"]),
        fmt(r["min_ess_bulk"]),
        fmt(r["ess_per_1k_sampling_gradients"], 3),
        _rhat(r["max_r_hat"]),
        str(r["divergences"]),
        f"{fmt(min(r['step_size']), 2)}-{fmt(max(r['step_size']), 2)}",
        fmt(r["max_abs_z"], 2),
        "yes" if r["correct"] else "**NO**",
    ]


def build_markdown(payload: dict[str, Any]) -> str:
    """The Markdown report of `main`'s payload."""
    meta, s = payload["meta"], payload["settings"]
    ref = s["reference"]
    lines = [
        "# numpyro NUTS started from a flowmc_like fit",
        "",
        f"Generated {meta['generated']} by `{meta['command']}` ({meta['elapsed_s']:.0f} s) "
        f"at commit {(meta['git']['commit'] or '?')[:10]}"
        + (
            f" with uncommitted changes to {', '.join(meta['git']['library_changes'])}"
            if meta["git"]["library_changes"]
            else ""
        )
        + f"; numpyro {meta['numpyro']}.",
        "",
    ]
    if meta["quick"]:
        lines += ["**Quick mode** (smoke test): tiny schedules, numbers meaningless.", ""]
    lines += [
        f'NUTS: {s["num_chains"]} chains, `chain_method="{s["chain_method"]}"`, '
        f"{s['num_samples']} "
        "draws after the warmup; one `MCMC.warmup` call then one `MCMC.run` call, each timed "
        "(each compiles numpyro's loop). *numpyro default*: `NUTS(model)`, default init and "
        "adaptation (step size, diagonal mass matrix). *from the flow*: "
        "`NUTS(model, inverse_mass_matrix=C, adapt_mass_matrix=False, dense_mass=True)` and "
        f"`init_params` from {s['n_flow_draws']} draws of `result.approximation()` weighted by "
        "p / q (C their weighted covariance, starts resampled by weight); only the step size "
        "adapts. *flow, unweighted*: the plain covariance of the draws and the first draws as "
        f"starts. flowmc_like fit: `fm.Sampler(target, n_chains={s['fit_chains']}, "
        "progress_bar=False"
        + "".join(f", {k}={v}" for k, v in s["fit_settings"].items())
        + ")` (library defaults otherwise), wall time including compilation.",
        "",
        "Gradients = leapfrog steps summed over chains and iterations (numpyro's `num_steps`). "
        "ESS = min over every latent and deterministic coordinate (constrained) of ArviZ's "
        "bulk ESS; R-hat the max. z_j = \\|mean_j - mean_ref_j\\| / sqrt(mcse_j^2 + "
        f"mcse_ref_j^2) (ArviZ MCSE of the mean); correct when max_j z_j < {Z_MAX:g}. "
        + (
            "Reference: (quick mode) the first run itself."
            if ref is None
            else f"Reference: default NUTS, {ref['num_chains']} chains x {ref['num_samples']} "
            f"draws after {ref['num_warmup']} warmup steps, another key."
        ),
        "",
        "## Summary",
        "",
        "Default NUTS (its longest warmup) against NUTS from the flow (100 warmup steps, or "
        "its first configuration). numpyro's fixed cost: the warmup call of the compile probe "
        "(compilation and init, part of every warmup wall time). Fit gradient evals: "
        "n_chains x loops x n_local_steps of the flowmc_like fit (its flow proposals and "
        "training come on top).",
        "",
    ]
    lines += _table(SUMMARY_HEADER, summary_rows(payload))
    lines += ["", "## Every run", ""]
    rows = [_run_row(m["model"], r) for m in payload["models"] for r in m["runs"]]
    lines += _table(RUN_HEADER, rows)
    lines += ["", "## The flowmc_like fits and the flow starts", ""]
    fit_rows = []
    for m in payload["models"]:
        f, p = m["fit"], m["flow_start"]
        fit_rows.append(
            [
                m["model"],
                str(m["n_dim"]),
                fmt(f["wall_s"]),
                fmt(f["timings"].get("compile"), 2),
                f"{f['n_training_loops']}+{f['n_production_loops']}",
                str(f["gradient_evals"]),
                str(f["density_evals"]),
                fmt(f["global_acceptance_production"], 2),
                fmt(f["pareto_k"], 2),
                fmt(p["wall_s"], 2),
                fmt(p["kish_ess"]),
                fmt(p["max_weight"], 3),
                f"{m['layout_max_rel_error']:.1e}",
            ]
        )
    lines += _table(
        [
            "model",
            "dim",
            "fit wall s",
            "fit compile s",
            "loops (training+production)",
            "fit gradient evals",
            "fit flow-proposal evals",
            "global acceptance",
            "Pareto k",
            "flow start s",
            "weights' ESS",
            "max weight",
            "layout check",
        ],
        fit_rows,
    )
    lines += [
        "",
        "Flow start s: the draws from `result.approximation()`, `target.log_prob` on them, "
        "the weighted covariance and the resampled starts. Weights' ESS = 1 / sum w^2 of "
        "the self-normalised weights. Layout check: max relative difference between "
        "`target.log_prob(x)` and minus numpyro's `potential_energy` at the unravelled starts "
        "(the flat order is numpyro's).",
    ]
    warned = [m for m in payload["models"] if m["fit"]["warnings"]]
    if warned:
        lines += ["", "Warnings of the flowmc_like fits:", ""]
        for m in warned:
            lines += [f"- {m['model']}:"] + [f"  - {w}" for w in m["fit"]["warnings"]]
    lines += ["", "## Reference and compile probe", ""]
    ref_rows = []
    for m in payload["models"]:
        r, p = m["reference"], m["probe"]
        ref_rows.append(
            [
                m["model"],
                fmt(r["min_ess_bulk"]),
                _rhat(r["max_r_hat"]),
                str(r["divergences"]),
                fmt(float(np.max(r["summary"]["mcse_mean"])), 3),
                f"{fmt(m['reference_sd_range'][0], 3)} - {fmt(m['reference_sd_range'][1], 3)}",
                fmt(r["warmup_s"] + r["sampling_s"]),
                "-" if p is None else f"{fmt(p['warmup_s'], 2)} + {fmt(p['sampling_s'], 2)}",
            ]
        )
    lines += _table(
        [
            "model",
            "reference min ESS",
            "max R-hat",
            "divergences",
            "max MCSE",
            "posterior sd range",
            "wall s",
            "compile probe s (warmup + run)",
        ],
        ref_rows,
    )
    lines += [
        "",
        "Compile probe: default NUTS with 1 warmup step and 1 draw: the fixed cost of the two "
        "numpyro calls (compilation, init), included in every run's wall times above.",
        "",
        "## Machine",
        "",
        machine_section(meta["machine"]),
        "",
    ]
    return "\n".join(lines)


def include_tables(payload: dict[str, Any]) -> dict[str, str]:
    """The report's tables as small files a docs page includes whole.

    ``{"summary": ..., "runs": ...}``: the summary table and the every-run table, each with
    a one-line source note (the command that regenerates it).
    """
    note = f"From `benchmarks/results/nuts_from_flow.md` (`{payload['meta']['command']}`)."
    rows = [_run_row(m["model"], r) for m in payload["models"] for r in m["runs"]]
    return {
        "summary": "\n".join([*_table(SUMMARY_HEADER, summary_rows(payload)), "", note]) + "\n",
        "runs": "\n".join([*_table(RUN_HEADER, rows), "", note]) + "\n",
    }


def write_outputs(payload: dict[str, Any], out_md: Path) -> list[Path]:
    """The Markdown report next to its JSON, plus the include files (`include_tables`)."""
    out_md.write_text(build_markdown(payload))
    written = [out_md]
    for name, text in include_tables(payload).items():
        path = out_md.with_name(f"{out_md.stem}_{name}.md")
        path.write_text(text)
        written.append(path)
    return written


# ----------------------------------------------------------------------------- driver
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.nuts_from_flow", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown path (+ .json)")
    p.add_argument(
        "--models", default=None, help="comma-separated (default all; --quick: eight_schools)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny schedules (smoke test)")
    p.add_argument(
        "--render",
        action="store_true",
        help="rewrite the Markdown and its include files from the JSON next to --out (no runs)",
    )
    args = p.parse_args(argv)
    if args.models is None:
        args.models = "eight_schools" if args.quick else ",".join(MODELS)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        p.error(f"unknown models {unknown}; known: {list(MODELS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every model, write the Markdown and JSON."""
    import numpyro

    from benchmarks.reuse import git_state, no_persistent_cache
    from benchmarks.run import machine_info
    from benchmarks.worker import _cpu_model

    args = _parse_args(argv)
    if args.render:
        out_md = Path(args.out)
        payload = json.loads(out_md.with_suffix(".json").read_text())
        print("wrote " + ", ".join(map(str, write_outputs(payload, out_md))))
        return 0
    settings = QUICK if args.quick else Settings()
    load0 = os.getloadavg()
    t0 = time.time()
    with no_persistent_cache():  # every compilation is paid, none read from disk
        models = [run_model(name, args.seed, settings) for name in args.models]
    env = {"cpu": _cpu_model(), "backend": jax.default_backend(), "x64": False}
    meta = {
        "generated": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m benchmarks.nuts_from_flow", *(sys.argv[1:] if argv is None else argv)]
        ),
        "elapsed_s": time.time() - t0,
        "quick": args.quick,
        "seed": args.seed,
        "numpyro": numpyro.__version__,
        "rules": {"correct": f"max over coordinates |z| < {Z_MAX:g}"},
        "machine": machine_info(env, load0),
        "git": git_state(),
    }
    settings_dict = {
        "num_chains": settings.num_chains,
        "num_samples": settings.num_samples,
        "configs": [list(c) for c in settings.configs],
        "reference": None if settings.reference is None else dict(settings.reference),
        "n_flow_draws": settings.n_flow_draws,
        "fit_chains": settings.fit_chains,
        "fit_settings": dict(settings.fit_settings),
        "chain_method": settings.chain_method,
    }
    payload = {"meta": meta, "settings": settings_dict, "models": models}
    out_md = Path(args.out)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=json_default))
    written = write_outputs(payload, out_md)
    print(f"wrote {out_md.with_suffix('.json')}, " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
