"""Discrete sampling at scale: critical and ordered Ising lattices and SK spin glasses.

One command runs every case with every sampler side by side, in one process, one after the
other (each timing includes its own compilation); a run of some cases (``--cases``) replaces
their records in ``--out`` and keeps the others::

    python -m benchmarks.discrete_scale [--cases ising_L16_bc,...] [--samplers ...]
        [--seed 0] [--n-chains 64] [--out benchmarks/results/discrete_scale.json]
    python -m benchmarks.discrete_scale --render benchmarks/results/discrete_scale.json
    python -m benchmarks.discrete_scale --reference   # (re)compute the SK references

Cases (`CASES`): the Ising model on the L x L torus at the critical point for L = 16 and 32
from uniformly random starts; Ising 16 x 16 at T = 2 (beta = 0.5, ordered, m = +-0.91) from
all-up starts, where no single-site chain ever changes the sign of m; and the
Sherrington-Kirkpatrick spin glass `flowmc_like.testing.sherrington_kirkpatrick` with N = 64
(instance seed 0) at beta = 1 and 2, from random starts.

Samplers, all from the same starts:

- ``flowmc_like``: ``fm.Sampler(log_prob, local_kernel=fm.SiteFlip(2, delta_log_prob=...),
  global_model=fm.Autoregressive(2))`` and nothing else: every count, the pre-training, the
  symmetrisation and the run length are the library's defaults;
- ``metropolis``: the same sweeps alone (`METROPOLIS` burn-in and recorded sweeps);
- ``wolff``: Wolff cluster updates (`benchmarks.wolff`; ferromagnets only);
- ``tempering``: the same sweeps with `TEMPERING_LEVELS` replica-exchange levels
  (``fm.Sampler(n_temperatures=...)``, no model), the same numbers of sweeps per level;
- ``flowmc_like_long``, ``flowmc_like_ml_only`` and ``flowmc_like_lattice``: the variants of
  `FLOWMC_LIKE_VARIANTS`; `SKIPPED` lists what a case leaves out.

Observables: the energy E and, for Ising, |m| and the share of draws with m > 0 (exactly
1/2 by symmetry: its z-score catches chains that never leave one ordered phase); for SK the
overlap ``q`` of the chains paired (0, 1), (2, 3), ... (``|q|`` and ``q^2``), whose ESS is
over the ``n_chains / 2`` pairs. The
whole-run ESS/s is ArviZ's bulk ESS over the whole wall time (compile, pre-training,
training and production). Exactness: Ising E against Kaufman's finite-torus formula;
|m| against Wolff's estimate (combined standard errors); SK against a long parallel-tempering
reference (`reference_sk`, stored in ``benchmarks/results/sk_reference.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BETA_C = math.log1p(math.sqrt(2.0)) / 2.0

METROPOLIS = {"n_burn_in": 1000, "n_sweeps": 4000, "chunk": 500}
"""Single-site Metropolis (and tempering): burn-in sweeps, recorded sweeps, sweeps per loop."""

WOLFF = {"n_burn_in": 500, "n_updates": 4000}
TEMPERING_LEVELS = {"ising": 4, "sk": 8}
"""Replica-exchange levels: few for the ferromagnets (one transition to cross), more for SK."""
SK_REFERENCE = {"n_chains": 64, "n_levels": 16, "n_burn_in": 2000, "n_sweeps": 10000}
"""The SK reference: replica-exchange SiteFlip, ``n_levels`` levels, long."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark case.

    Attributes:
        name: registry name.
        kind: ``"ising"`` or ``"sk"``.
        size: L (Ising) or N (SK).
        beta: inverse temperature.
        start: ``"random"`` or ``"up"`` (all sites 1).
    """

    name: str
    kind: str
    size: int
    beta: float
    start: str

    @property
    def n_dim(self) -> int:
        return self.size * self.size if self.kind == "ising" else self.size

    def target(self) -> Any:
        import flowmc_like as fm
        from flowmc_like.testing import sherrington_kirkpatrick

        if self.kind == "ising":
            return fm.make_ising(self.size, self.beta)
        return sherrington_kirkpatrick(self.size, self.beta, seed=0)


CASES = {
    c.name: c
    for c in (
        Case("ising_L16_bc", "ising", 16, BETA_C, "random"),
        Case("ising_L32_bc", "ising", 32, BETA_C, "random"),
        Case("ising_L16_T2", "ising", 16, 0.5, "up"),
        Case("sk64_b1", "sk", 64, 1.0, "random"),
        Case("sk64_b2", "sk", 64, 2.0, "random"),
    )
}
SAMPLERS = (
    "flowmc_like",
    "flowmc_like_long",
    "flowmc_like_ml_only",
    "flowmc_like_lattice",
    "metropolis",
    "wolff",
    "tempering",
)
FLOWMC_LIKE_VARIANTS: dict[str, dict[str, Any]] = {
    "flowmc_like": {},
    "flowmc_like_long": {"n_production_loops": 80},
    "flowmc_like_ml_only": {"n_variational_steps": 0},
    "flowmc_like_lattice": {},
}
"""The library's defaults, and three variants: ``_long`` records 4000 draws per chain (80
production loops of 50 steps), as many as Metropolis records sweeps; ``_ml_only`` trains by
maximum likelihood alone (no variational pre-training), the measured alternative;
``_lattice`` (Ising only) uses `flowmc_like.LatticeAutoregressive` for the model."""

SKIPPED = {"ising_L32_bc": ("flowmc_like_long", "flowmc_like_ml_only", "tempering")}
"""Variants left out where one run costs too much on this machine."""


def initial_states(case: Case, seed: int, n_chains: int) -> Any:
    """``(n_chains, n_dim)`` int32 starts: uniform from ``key(seed)``, or all ones."""
    import jax
    import jax.numpy as jnp

    if case.start == "up":
        return jnp.ones((n_chains, case.n_dim), jnp.int32)
    return jax.random.randint(jax.random.key(seed), (n_chains, case.n_dim), 0, 2, jnp.int32)


def observables(case: Case, target: Any, states: np.ndarray) -> dict[str, np.ndarray]:
    """``(chains, draws)`` series: ``energy`` and ``abs_m`` (Ising) or ``abs_q``, ``q2`` (SK)."""
    import jax

    states = np.asarray(states)
    energy = np.asarray(jax.jit(target.energy)(states), np.float64)
    sigma = 2.0 * states.astype(np.float64) - 1.0
    if case.kind == "ising":
        m = sigma.mean(-1)
        return {"energy": energy, "abs_m": np.abs(m), "m_positive": (m > 0) + 0.5 * (m == 0)}
    n_pairs = states.shape[0] // 2
    q = np.mean(sigma[0 : 2 * n_pairs : 2] * sigma[1 : 2 * n_pairs : 2], axis=-1)
    return {"energy": energy, "abs_q": np.abs(q), "q2": q**2}


def _sampler_run(case: Case, sampler: str, seed: int, n_chains: int) -> dict[str, Any]:
    """Run one sampler; its observables, timings and global acceptance."""
    import jax

    import flowmc_like as fm

    target = case.target()
    x0 = jax.block_until_ready(initial_states(case, seed, n_chains))
    kernel = fm.SiteFlip(2, delta_log_prob=target.delta_log_prob)
    start = time.perf_counter()
    if sampler == "wolff":
        from benchmarks.wolff import run_wolff

        out = run_wolff(target, x0, seed, WOLFF["n_burn_in"], WOLFF["n_updates"])
        m = np.asarray(out["magnetization"])
        series = {
            "energy": out["energy"],
            "abs_m": np.abs(m),
            "m_positive": (m > 0) + 0.5 * (m == 0),
        }
        timings = dict(out["timings"])
        return {"series": series, "timings": timings, "global_acceptance": None, "choices": []}
    if sampler in FLOWMC_LIKE_VARIANTS:
        model = fm.Autoregressive(2)
        if sampler == "flowmc_like_lattice":
            model = fm.LatticeAutoregressive((case.size, case.size))
        kwargs: dict[str, Any] = {"global_model": model, **FLOWMC_LIKE_VARIANTS[sampler]}
    else:
        chunk = METROPOLIS["chunk"]
        kwargs = {
            "global_model": None,
            "n_training_loops": METROPOLIS["n_burn_in"] // chunk,
            "n_production_loops": METROPOLIS["n_sweeps"] // chunk,
            "n_local_steps": chunk,
        }
        if sampler == "tempering":
            kwargs["n_temperatures"] = TEMPERING_LEVELS[case.kind]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fm.Sampler(target.log_prob, local_kernel=kernel, progress_bar=False, **kwargs).run(
            jax.random.key(seed + 1), x0
        )
    wall = time.perf_counter() - start
    timings = {name: float(value) for name, value in result.timings.items()}
    timings["total"] = wall
    acceptance = None
    if sampler in FLOWMC_LIKE_VARIANTS:
        acceptance = float(np.mean(result.global_acceptance))
    return {
        "series": observables(case, target, result.samples),
        "timings": timings,
        "global_acceptance": acceptance,
        "choices": list(result.diagnostics.choices),
        "warnings": [
            str(w.message)[:200] for w in caught if issubclass(w.category, RuntimeWarning)
        ],
        "n_training_loops": int(result.diagnostics.n_training_loops),
        "n_production_loops": int(result.diagnostics.n_production_loops),
    }


def _estimate(series: np.ndarray) -> dict[str, float]:
    """Mean, bulk ESS, its standard error and R-hat of a ``(chains, draws)`` series."""
    from benchmarks.metrics import ess_and_rhat

    er = ess_and_rhat(series[..., None])
    ess = float(er["ess_bulk"][0])
    sd = float(np.std(series))
    return {
        "mean": float(np.mean(series)),
        "ess": ess,
        # a constant series (every chain in one phase) is exactly its mean: no error to allow
        "se": 0.0 if sd == 0 else (sd / math.sqrt(ess) if ess > 0 else float("inf")),
        "r_hat": float(er["r_hat"][0]),
    }


def exact_energy(case: Case) -> float | None:
    """Ising: Kaufman's ``<E>`` of the finite torus (None for SK)."""
    if case.kind != "ising":
        return None
    from flowmc_like.exact import exact_ising_torus

    return float(exact_ising_torus(case.size, case.beta).e) * case.n_dim


def reference_sk(case: Case) -> dict[str, dict[str, float]]:
    """A long replica-exchange run on ``case``: mean and standard error of each observable."""
    import jax

    import flowmc_like as fm

    target = case.target()
    ref = SK_REFERENCE
    chunk = 1000
    x0 = initial_states(case, 12345, ref["n_chains"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fm.Sampler(
            target.log_prob,
            local_kernel=fm.SiteFlip(2, delta_log_prob=target.delta_log_prob),
            global_model=None,
            n_temperatures=ref["n_levels"],
            n_training_loops=ref["n_burn_in"] // chunk,
            n_production_loops=ref["n_sweeps"] // chunk,
            n_local_steps=chunk,
            progress_bar=False,
        ).run(jax.random.key(12345), x0)
    series = observables(case, target, result.samples)
    return {name: _estimate(values) for name, values in series.items()}


def _references(cases: list[Case], recompute: bool) -> dict[str, Any]:
    path = RESULTS / "sk_reference.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for case in cases:
        if case.kind == "sk" and (recompute or case.name not in stored):
            print(f"reference for {case.name} (replica exchange, {SK_REFERENCE})", flush=True)
            stored[case.name] = {"settings": SK_REFERENCE, "estimates": reference_sk(case)}
            changed = True
    if changed:
        path.write_text(json.dumps(stored, indent=1))
    return stored


def metrics(case: Case, run: dict[str, Any], references: dict[str, Any]) -> dict[str, Any]:
    """z-scores, ESS, whole-run ESS/s and the training share of one run."""
    total = run["timings"]["total"]
    out: dict[str, Any] = {}
    z_values = []
    for name, series in run["series"].items():
        est = _estimate(np.asarray(series))
        out[name] = est
        out[f"ess_per_s_{name}"] = est["ess"] / total
        ref = None
        if name == "energy" and case.kind == "ising":
            ref = {"mean": exact_energy(case), "se": 0.0}
        elif case.kind == "sk":
            ref = references.get(case.name, {}).get("estimates", {}).get(name)
        elif name == "m_positive":  # the two ordered phases weigh the same by symmetry
            ref = {"mean": 0.5, "se": 0.0}
        elif name == "abs_m" and "wolff" in references.get("_ising", {}).get(case.name, {}):
            ref = references["_ising"][case.name]["wolff"]
        if ref is not None:
            se = math.hypot(est["se"], ref["se"])
            difference = est["mean"] - ref["mean"]
            z = difference / se if se > 0 else (0.0 if difference == 0 else float("inf"))
            out[f"z_{name}"] = z
            z_values.append(abs(z))
    names = list(run["series"])
    second = names[1]  # |m| or |q|
    out["min_ess_per_s"] = min(out["ess_per_s_energy"], out[f"ess_per_s_{second}"])
    out["max_abs_z"] = max(z_values) if z_values else None
    out["max_r_hat"] = max(out[name]["r_hat"] for name in names[:2])
    if "m_positive" in out:  # chains stuck in one phase: their sign never changes
        out["r_hat_sign"] = out["m_positive"]["r_hat"]
    out["training_share"] = (
        run["timings"].get("training", 0.0) + run["timings"].get("compile", 0.0)
    ) / total
    return out


def run_all(
    case_names: list[str], samplers: list[str], seed: int, n_chains: int, out: Path
) -> dict[str, Any]:
    """Run every (case, sampler); write ``out`` (JSON) and its Markdown table."""
    cases = [CASES[name] for name in case_names]
    references = _references(cases, recompute=False)
    references["_ising"] = {}
    if out.exists():  # Wolff's |m| from an earlier run, for cases run without Wolff now
        for r in json.loads(out.read_text())["records"]:
            if r["sampler"] == "wolff":
                references["_ising"][r["case"]] = {"wolff": r["metrics"]["abs_m"]}
    records = []
    for case in cases:
        runs = {}
        order = [s for s in ("wolff", *samplers) if s in samplers]  # Wolff first: |m| reference
        for sampler in dict.fromkeys(order):
            if sampler == "wolff" and case.kind != "ising":
                continue
            if sampler in SKIPPED.get(case.name, ()):
                continue
            if sampler == "flowmc_like_lattice" and case.kind != "ising":
                continue
            print(f"{case.name} / {sampler} ...", flush=True)
            run = _sampler_run(case, sampler, seed, n_chains)
            runs[sampler] = run
            if sampler == "wolff":
                references["_ising"][case.name] = {
                    "wolff": _estimate(np.asarray(run["series"]["abs_m"]))
                }
            record = {
                "case": case.name,
                "sampler": sampler,
                "seed": seed,
                "timings": run["timings"],
                "global_acceptance": run["global_acceptance"],
                "choices": run.get("choices", []),
                "warnings": run.get("warnings", []),
                "n_loops": [run.get("n_training_loops"), run.get("n_production_loops")],
                "metrics": metrics(case, run, references),
            }
            records.append(record)
            m = record["metrics"]
            print(
                f"  min ESS/s {m['min_ess_per_s']:.3g}, max|z| {m['max_abs_z']}, "
                f"total {run['timings']['total']:.1f} s",
                flush=True,
            )
    header = {
        "command": "python -m benchmarks.discrete_scale",
        "seed": seed,
        "n_chains": n_chains,
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "date": time.strftime("%Y-%m-%d"),
        "settings": {"metropolis": METROPOLIS, "wolff": WOLFF, "tempering": TEMPERING_LEVELS},
    }
    if out.exists():  # keep the other cases' records (a run of some cases updates those)
        done = {(r["case"], r["sampler"]) for r in records}
        kept = [
            r
            for r in json.loads(out.read_text())["records"]
            if (r["case"], r["sampler"]) not in done
        ]
        order = list(CASES)
        records = sorted(kept + records, key=lambda r: order.index(r["case"]))
    payload = {"header": header, "records": records}
    out.write_text(json.dumps(payload, indent=1, default=float))
    render(out)
    return payload


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _production_ess_per_s(record: dict[str, Any], second: str) -> float | None:
    """``min(ESS_E, ESS_second)`` over the production seconds alone (what a long run tends to)."""
    production = record["timings"].get("production")
    if not production:
        return None
    m = record["metrics"]
    return min(m["energy"]["ess"], m[second]["ess"]) / production


def render(path: Path) -> str:
    """Write ``path`` with ``.md``: the side-by-side table and the ratio to Metropolis."""
    payload = json.loads(Path(path).read_text())
    records = payload["records"]
    lines = [
        "<!-- --8<-- [start:discrete_scale] -->",
        "| case | sampler | E ESS/s | \\|m\\| or \\|q\\| ESS/s | ESS/s vs Metropolis | "
        "production-only ESS/s | max abs z | max R-hat | P(m > 0) | global acc | "
        "training share | total s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    metropolis = {
        r["case"]: r["metrics"]["min_ess_per_s"] for r in records if r["sampler"] == "metropolis"
    }
    for r in records:
        m = r["metrics"]
        second = "abs_m" if "abs_m" in m else "abs_q"
        base = metropolis.get(r["case"])
        ratio = m["min_ess_per_s"] / base if base else None
        lines.append(
            f"| {r['case']} | {r['sampler']} | {_fmt(m['ess_per_s_energy'])} | "
            f"{_fmt(m[f'ess_per_s_{second}'])} | {_fmt(ratio)} | "
            f"{_fmt(_production_ess_per_s(r, second))} | {_fmt(m['max_abs_z'], 2)} | "
            f"{_fmt(m['max_r_hat'], 3)} | {_fmt(m.get('m_positive', {}).get('mean'), 2)} | "
            f"{_fmt(r['global_acceptance'], 2)} | "
            f"{_fmt(m['training_share'], 2)} | {_fmt(r['timings']['total'], 3)} |"
        )
    lines.append("<!-- --8<-- [end:discrete_scale] -->")
    lines.append("")
    lines.append("<!-- --8<-- [start:discrete_scale_choices] -->")
    for r in records:
        if r["sampler"] in FLOWMC_LIKE_VARIANTS:
            lines.append(f"- {r['case']}, {r['sampler']}: " + "; ".join(r["choices"]))
    lines.append("<!-- --8<-- [end:discrete_scale_choices] -->")
    h = payload["header"]
    lines.append("")
    lines.append(
        f"Command: `{h['command']}`; seed {h['seed']}, {h['n_chains']} chains, {h['machine']}, "
        f"{h['date']}."
    )
    text = "\n".join(lines) + "\n"
    Path(path).with_suffix(".md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-chains", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS / "discrete_scale.json")
    parser.add_argument("--render", type=Path, default=None)
    parser.add_argument("--reference", action="store_true", help="recompute the SK references")
    args = parser.parse_args(argv)
    if args.render is not None:
        print(render(args.render))
        return
    case_names = [name for name in args.cases.split(",") if name]
    unknown = [name for name in case_names if name not in CASES]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; known: {list(CASES)}")
    if args.reference:
        _references([CASES[name] for name in case_names], recompute=True)
        return
    samplers = [name for name in args.samplers.split(",") if name]
    run_all(case_names, samplers, args.seed, args.n_chains, args.out)


if __name__ == "__main__":
    main()
