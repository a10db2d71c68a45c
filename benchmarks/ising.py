"""Discrete (Ising/Potts) benchmark cases: targets, exact references, samplers and metrics.

This module is shared by the side-by-side driver (``python -m benchmarks.run``, which runs the
cases of `LATTICE_CASES` through ``benchmarks.worker``) and by its own command line, the
critical-Ising study::

    python -m benchmarks.ising [--sizes 8,16] [--seeds 0] [--n-chains 64]
        [--samplers flowmc_like,metropolis,wolff] [--no-sweep-costs] [--out PATH]
    python -m benchmarks.ising --render PATH.json   # rewrite PATH.md from the stored JSON

It writes ``--out`` (JSON: the header, every record and the sweep costs) and the same path
with ``.md``, whose tables sit between snippet section markers (``ising``, ``ising_ratios``,
``ising_sweep_costs``) that docs/discrete.md includes.

Samplers (every one starts from the same random state for a seed, ``x0`` drawn uniformly
from ``{0..K-1}^N`` with ``jax.random.key(seed)``):

- ``flowmc_like``: ``SiteFlip`` sweeps with the target's O(1) ``delta_log_prob`` plus the
  ``Autoregressive(symmetric=True)`` global move, trained with maximum likelihood and the
  reverse-KL term, with the settings `flowmc_like_settings` builds from `RECIPE`;
- ``metropolis``: the same ``SiteFlip`` sweeps alone (single-site Metropolis, random order),
  ``n_burn_in`` sweeps then ``n_sweeps`` recorded ones (`METROPOLIS`);
- ``wolff``: the Wolff single-cluster algorithm (`benchmarks.wolff`), ``n_burn_in`` cluster
  updates then ``n_updates`` recorded ones (`WOLFF`); Ising and Potts.

Exact references (`exact_reference`): full enumeration or the transfer matrix of
`flowmc_like.exact.enumerate_lattice` up to 8 x 8 (energy, specific heat, <|m|>
and their exact standard deviations); Kaufman's finite-torus formula beyond (energy and
specific heat only). Metrics (`discrete_metrics`): estimates with z-scores against exact,
integrated autocorrelation times of E and |m| in sweeps and in seconds, ESS per second of the
whole run, and, for a symmetric Ising case, the sign changes of m per 1000 sweeps and the
fraction of draws with m > 0 (exactly 0.5). Time is measured in *sweeps*: a SiteFlip sweep
(N single-site updates) or a global proposal (one whole new state) each count as one; a
Wolff update counts as (cluster size) / N.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BETA_C",
    "LATTICE_CASES",
    "METROPOLIS",
    "RECIPE",
    "WOLFF",
    "DiscreteRun",
    "LatticeCase",
    "discrete_metrics",
    "exact_reference",
    "flowmc_like_settings",
    "get_case",
    "initial_state",
    "run_case",
]

RESULTS = Path(__file__).resolve().parent / "results"

BETA_C: float = math.log1p(math.sqrt(2.0)) / 2.0
"""Critical inverse temperature of the square-lattice Ising model (same value as
`flowmc_like.lattice.BETA_C`, computed here so importing this module stays cheap)."""

POTTS3_BETA_C: float = math.log1p(math.sqrt(3.0))
"""Transition of the 3-state Potts model on the square lattice, ``ln(1 + sqrt 3)``."""

RECIPE: dict[str, Any] = {
    "n_training_loops": 20,
    "n_production_loops": 20,
    "n_local_steps": 10,
    "n_global_steps": 40,
    "n_epochs": 5,
    "batch_size": 512,
    "n_max_examples": 8192,
    "learning_rate": 1e-3,
    "reverse_kl_weight": 10.0,
}
"""flowmc_like's schedule for the lattices: mostly global steps once the model is good, few
local sweeps between them, the reverse-KL term because at L = 16 the chains' own draws are
too correlated to teach the model (maximum likelihood alone stalls at a global acceptance of
about 0.1). The model is ``Autoregressive(K, hidden_sizes=(N,), symmetric=True)`` (one hidden
unit per MADE degree) and the kernel ``SiteFlip(K, delta_log_prob=target's)``."""

METROPOLIS: dict[str, Any] = {"n_burn_in": 1000, "n_sweeps": 4000}
"""Single-site Metropolis baseline: burn-in sweeps, then recorded sweeps (every one kept)."""

WOLFF: dict[str, Any] = {"n_burn_in": 500, "n_updates": 4000}
"""Wolff baseline: burn-in cluster updates, then recorded updates (every one kept)."""

DISCRETE_SAMPLERS: tuple[str, ...] = ("flowmc_like", "metropolis", "wolff")
DISCRETE_N_CHAINS = 64


@dataclasses.dataclass(frozen=True)
class LatticeCase:
    """One discrete benchmark case on the periodic ``L x L`` lattice.

    Attributes:
        name: registry name (``ising_L8_bc``...).
        L: side of the torus (``N = L * L`` sites).
        beta: inverse temperature.
        n_categories: ``K``; 2 is Ising, more is Potts.
        description: one line for the report.
    """

    name: str
    L: int
    beta: float
    n_categories: int
    description: str

    @property
    def n_sites(self) -> int:
        """Number of sites ``N``."""
        return self.L * self.L

    @property
    def is_ising(self) -> bool:
        """True for the Ising model (``K = 2``)."""
        return self.n_categories == 2

    def target(self) -> Any:
        """The `flowmc_like.lattice.LatticeTarget` (imports flowmc_like)."""
        from flowmc_like.lattice import make_ising, make_potts

        if self.is_ising:
            return make_ising(self.L, self.beta)
        return make_potts(self.L, self.beta, self.n_categories)


def ising_case(L: int, beta: float = BETA_C) -> LatticeCase:
    """An Ising case for any side (the suite's cases are in `LATTICE_CASES`)."""
    for case in LATTICE_CASES.values():
        if case.is_ising and case.L == L and case.beta == beta:
            return case
    return LatticeCase(f"ising_L{L}_b{beta:.4g}", L, beta, 2, f"Ising {L}x{L} at beta {beta:.4g}")


LATTICE_CASES: dict[str, LatticeCase] = {
    c.name: c
    for c in (
        LatticeCase("ising_L4", 4, BETA_C, 2, "Ising 4x4 torus at beta_c (2^16 states)"),
        LatticeCase("ising_L8_bc", 8, BETA_C, 2, "Ising 8x8 torus at beta_c"),
        LatticeCase("ising_L16_bc", 16, BETA_C, 2, "Ising 16x16 torus at beta_c"),
        LatticeCase("ising_L8_T2", 8, 0.5, 2, "Ising 8x8 torus at T = 2 (ordered; m = +-)"),
        LatticeCase(
            "potts3_L4", 4, POTTS3_BETA_C, 3, "3-state Potts 4x4 torus at beta = ln(1 + sqrt 3)"
        ),
    )
}


def get_case(name: str) -> LatticeCase:
    """The case registered under ``name``."""
    try:
        return LATTICE_CASES[name]
    except KeyError:
        raise ValueError(f"unknown lattice case {name!r}; known: {list(LATTICE_CASES)}") from None


def flowmc_like_settings(case: LatticeCase) -> dict[str, Any]:
    """flowmc_like's Sampler keywords for ``case`` (JSON-able; specs resolved by the peer)."""
    k = case.n_categories
    return {
        **RECIPE,
        "local_kernel": {
            "name": "SiteFlip",
            "kwargs": {"n_categories": k, "delta_log_prob": "target"},
        },
        "global_model": {
            "name": "Autoregressive",
            "kwargs": {"n_categories": k, "hidden_sizes": [case.n_sites], "symmetric": True},
        },
    }


def metropolis_settings(case: LatticeCase, overrides: dict[str, Any]) -> dict[str, Any]:
    """Sampler keywords running single-site Metropolis through ``fm.Sampler`` (no model).

    ``n_burn_in`` sweeps become the training loops (nothing is trained or adapted) and
    ``n_sweeps`` the production loops, in loops of ``gcd(n_burn_in, n_sweeps, 500)`` sweeps.
    """
    ov = {**METROPOLIS, **overrides}
    n_burn_in, n_sweeps = int(ov.pop("n_burn_in")), int(ov.pop("n_sweeps"))
    if n_burn_in < 1 or n_sweeps < 1:
        raise ValueError(f"metropolis needs n_burn_in, n_sweeps >= 1; got {n_burn_in}, {n_sweeps}")
    chunk = math.gcd(n_burn_in, n_sweeps, 500)
    return {
        "n_burn_in": n_burn_in,
        "n_sweeps": n_sweeps,
        "sampler_kwargs": {
            "local_kernel": {
                "name": "SiteFlip",
                "kwargs": {"n_categories": case.n_categories, "delta_log_prob": "target"},
            },
            "global_model": None,
            "n_training_loops": n_burn_in // chunk,
            "n_production_loops": n_sweeps // chunk,
            "n_local_steps": chunk,
            **ov,
        },
    }


# ----------------------------------------------------------------------------- references
def exact_reference(case: LatticeCase) -> dict[str, Any]:
    """Exact values for ``case``: per-site energy, specific heat, <|m|> and standard deviations.

    Returns:
        ``e``, ``c_v``, ``abs_m`` (None if unknown), ``e_sd`` (sd of E/N under p),
        ``abs_m_sd`` (None if unknown), ``p_m_positive`` (0.5 for Ising by the spin-flip
        symmetry, counting m = 0 as one half; None for Potts) and ``source``.
    """
    from flowmc_like.exact import REFERENCE_VALUES, enumerate_lattice, exact_ising_torus

    n = case.n_sites
    out: dict[str, Any] = {"p_m_positive": 0.5 if case.is_ising else None}
    if case.L <= 8:
        em = enumerate_lattice(case.L, case.n_categories, case.beta)
        out.update(
            e=em.e,
            c_v=em.c_v,
            abs_m=em.mean_abs_magnetization,
            abs_m_sd=float(em.sd[2]),
            source=f"enumerate_lattice ({em.method})",
        )
    else:
        if not case.is_ising:
            raise ValueError(f"no exact reference for {case.name}")
        thermo = exact_ising_torus(case.L, case.beta)
        ref = REFERENCE_VALUES.get((case.L, case.beta))
        out.update(
            e=thermo.e,
            c_v=thermo.c_v,
            abs_m=None if ref is None else ref.abs_magnetization,
            abs_m_sd=None,
            source="Kaufman (exact_ising_torus)",
        )
    out["e_sd"] = math.sqrt(out["c_v"] * n) / case.beta / n  # Var(E) = N C_v / beta^2
    return out


# ----------------------------------------------------------------------------- running
@dataclasses.dataclass
class DiscreteRun:
    """What a discrete sampler returns: per-draw observables rather than states.

    Attributes:
        energy: ``(n_chains, n_draws)`` total energy ``E`` of each recorded draw.
        magnetization: ``(n_chains, n_draws)``; Ising ``mean(sigma)``, Potts order parameter.
        sweeps_per_draw: sweeps one recorded draw stands for (1, or <cluster>/N for Wolff).
        timings: seconds: ``total``, ``compile``, ``training``, ``production``, ``other``.
        global_acceptance: mean global acceptance in production (None without global moves).
        local_acceptance: mean local acceptance (None where undefined).
        settings: every setting the sampler ran with.
        extra: anything else worth keeping.
    """

    energy: np.ndarray
    magnetization: np.ndarray
    sweeps_per_draw: float
    timings: dict[str, float]
    global_acceptance: float | None
    local_acceptance: float | None
    settings: dict[str, Any]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def initial_state(case: LatticeCase, seed: int, n_chains: int) -> Any:
    """``(n_chains, N)`` int32 uniform random states from ``jax.random.key(seed)``."""
    import jax
    import jax.numpy as jnp

    return jax.random.randint(
        jax.random.key(seed), (n_chains, case.n_sites), 0, case.n_categories, dtype=jnp.int32
    )


def observables(states: np.ndarray, case: LatticeCase) -> tuple[np.ndarray, np.ndarray]:
    """Total energy and magnetization of states ``(..., N)`` in float64 numpy.

    Ising ``E = -sum_bonds sigma_i sigma_j``, ``m = mean(sigma)``; Potts
    ``E = -sum_bonds delta(s_i, s_j)``, ``m = (K max_c frac_c - 1) / (K - 1)``.
    """
    s = np.asarray(states)
    lead = s.shape[:-1]
    grid = s.reshape(-1, case.L, case.L)
    energy = np.empty(grid.shape[0])
    m = np.empty(grid.shape[0])
    k = case.n_categories
    for start in range(0, grid.shape[0], 8192):
        g = grid[start : start + 8192]
        n_sat = (g == np.roll(g, -1, axis=2)).sum(axis=(1, 2)) + (g == np.roll(g, -1, axis=1)).sum(
            axis=(1, 2)
        )
        if k == 2:
            energy[start : start + len(g)] = 2.0 * case.n_sites - 2.0 * n_sat
            m[start : start + len(g)] = (2.0 * g - 1.0).mean(axis=(1, 2))
        else:
            energy[start : start + len(g)] = -n_sat.astype(np.float64)
            frac = np.stack([(g == c).mean(axis=(1, 2)) for c in range(k)], axis=-1)
            m[start : start + len(g)] = (k * frac.max(axis=-1) - 1.0) / (k - 1)
    return energy.reshape(lead), m.reshape(lead)


def _run_with_fm_sampler(
    target: Any,
    case: LatticeCase,
    x0: Any,
    seed: int,
    sampler_kwargs: dict[str, Any],
    settings: dict[str, Any],
) -> DiscreteRun:
    from benchmarks.peers import Schedule
    from benchmarks.peers.flowmc_like_peer import run as run_flowmc_like

    out = run_flowmc_like(
        target, target.log_prob, x0, seed, Schedule(n_chains=int(x0.shape[0])), sampler_kwargs
    )
    energy, m = observables(out.samples, case)
    g_acc = out.global_acceptance
    return DiscreteRun(
        energy=energy,
        magnetization=m,
        sweeps_per_draw=1.0,
        timings=out.timings,
        global_acceptance=g_acc if g_acc is not None and math.isfinite(g_acc) else None,
        local_acceptance=out.local_acceptance,
        settings={**settings, **out.settings},
        extra=out.extra,
    )


def run_sampler(
    sampler: str,
    case: LatticeCase,
    seed: int,
    n_chains: int,
    overrides: dict[str, Any] | None = None,
) -> DiscreteRun:
    """Run one discrete sampler on ``case`` in this process.

    Args:
        sampler: ``flowmc_like``, ``metropolis`` or ``wolff``.
        case: the lattice case.
        seed: PRNG seed (also the seed of the shared start ``x0``).
        n_chains: number of chains.
        overrides: flowmc_like: Sampler keywords (normally `flowmc_like_settings` merged
            with any suite/command-line overrides; defaults to `flowmc_like_settings`);
            metropolis: ``n_burn_in``/``n_sweeps`` or Sampler keywords; wolff:
            ``n_burn_in``/``n_updates``.
    """
    import jax

    overrides = dict(overrides or {})
    target = case.target()
    x0 = jax.block_until_ready(initial_state(case, seed, n_chains))
    if sampler == "flowmc_like":
        kwargs = overrides or flowmc_like_settings(case)
        return _run_with_fm_sampler(target, case, x0, seed, kwargs, {})
    if sampler == "metropolis":
        spec = metropolis_settings(case, overrides)
        return _run_with_fm_sampler(
            target,
            case,
            x0,
            seed,
            spec["sampler_kwargs"],
            {"n_burn_in": spec["n_burn_in"], "n_sweeps": spec["n_sweeps"]},
        )
    if sampler == "wolff":
        from benchmarks.wolff import run_wolff

        ov = {**WOLFF, **overrides}
        unknown = set(ov) - set(WOLFF)
        if unknown:
            raise ValueError(f"wolff settings are {list(WOLFF)}; got unknown {sorted(unknown)}")
        w = run_wolff(target, x0, seed, int(ov["n_burn_in"]), int(ov["n_updates"]))
        mean_size = float(np.mean(w["cluster_size"]))
        return DiscreteRun(
            energy=w["energy"],
            magnetization=w["magnetization"],
            sweeps_per_draw=mean_size / case.n_sites,
            timings=w["timings"],
            global_acceptance=None,
            local_acceptance=None,
            settings={**ov, **w["settings"]},
            extra={
                **w["extra"],
                "mean_cluster_size": mean_size,
                "mean_cluster_fraction": mean_size / case.n_sites,
            },
        )
    raise ValueError(f"unknown discrete sampler {sampler!r}; known: {DISCRETE_SAMPLERS}")


# ----------------------------------------------------------------------------- metrics
def _sign_changes_per_chain(m: np.ndarray) -> np.ndarray:
    """Changes of sign of each chain's series ``(n_chains, n_draws)``, zeros carried over."""
    sign = np.sign(m)
    out = np.zeros(m.shape[0])
    for c in range(m.shape[0]):
        nz = sign[c][sign[c] != 0]
        out[c] = np.count_nonzero(nz[1:] != nz[:-1]) if nz.size > 1 else 0
    return out


def discrete_metrics(
    run: DiscreteRun, case: LatticeCase, exact: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The discrete metrics of ``docs/spec/BENCHMARKS.md`` for one run.

    ESS and R-hat are ArviZ's (bulk ESS, rank-normalised split R-hat) over all chains and
    draws; ``max_r_hat`` is over E, |m| and, for Ising, the signed m (NaN counts as inf).
    z-scores: ``(estimate - exact) / (sd / sqrt(ESS))`` with the exact sd of E/N and of |m|
    where known (else the sample sd); for C_v the series ``(E - <E>_exact)^2`` with its
    sample sd. ``tau_*_sweeps = n_chains n_draws / ESS * sweeps_per_draw`` and
    ``tau_*_seconds = n_chains n_draws / ESS * (production seconds / n_draws)`` (wall time
    per independent draw of every chain at once). ``ess_per_s`` is ``min(ESS_E, ESS_|m|)`` over
    the whole run's wall time (compile and training included).
    """
    from benchmarks.metrics import ess_and_rhat

    exact = exact or exact_reference(case)
    n = case.n_sites
    energy = np.asarray(run.energy, dtype=np.float64)
    m = np.asarray(run.magnetization, dtype=np.float64)
    abs_m = np.abs(m)
    n_chains, n_draws = energy.shape
    sq_dev = (energy - exact["e"] * n) ** 2
    columns = [energy, abs_m, sq_dev]
    if case.is_ising:
        columns += [(m > 0) + 0.5 * (m == 0), m]
    er = ess_and_rhat(np.stack(columns, axis=-1))
    ess = er["ess_bulk"]
    beta = case.beta

    e_est = float(energy.mean() / n)
    e_z = (e_est - exact["e"]) / (exact["e_sd"] / math.sqrt(ess[0]))
    c_v_est = float(beta**2 * sq_dev.mean() / n)
    c_v_se = beta**2 * sq_dev.std() / n / math.sqrt(ess[2])
    c_v_z = (c_v_est - exact["c_v"]) / c_v_se if c_v_se > 0 else float("inf")
    abs_m_est = float(abs_m.mean())
    abs_m_z = None
    if exact.get("abs_m") is not None:
        sd = exact["abs_m_sd"] if exact.get("abs_m_sd") is not None else abs_m.std()
        abs_m_z = (abs_m_est - exact["abs_m"]) / (sd / math.sqrt(ess[1]))
    rec: dict[str, Any] = {
        "n_chains": n_chains,
        "n_draws": n_draws,
        "sweeps_per_draw": run.sweeps_per_draw,
        "e": e_est,
        "e_exact": exact["e"],
        "e_z": float(e_z),
        "c_v": c_v_est,
        "c_v_exact": exact["c_v"],
        "c_v_z": float(c_v_z),
        "abs_m": abs_m_est,
        "abs_m_exact": exact.get("abs_m"),
        "abs_m_z": None if abs_m_z is None else float(abs_m_z),
        "ess_energy": float(ess[0]),
        "ess_abs_m": float(ess[1]),
        "r_hat_energy": float(er["r_hat"][0]),
        "r_hat_abs_m": float(er["r_hat"][1]),
        "reference_source": exact.get("source"),
    }
    production = float(run.timings["production"])
    total = float(run.timings["total"])
    for name, value in (("energy", ess[0]), ("abs_m", ess[1])):
        tau_draws = n_chains * n_draws / value
        rec[f"tau_{name}_sweeps"] = float(tau_draws * run.sweeps_per_draw)
        rec[f"tau_{name}_seconds"] = float(tau_draws * production / n_draws)
        rec[f"ess_per_s_{name}"] = float(value / total)
        rec[f"ess_per_s_{name}_production"] = float(value / production) if production > 0 else None
    z_values = [abs(rec["e_z"]), abs(rec["c_v_z"])]
    if rec["abs_m_z"] is not None:
        z_values.append(abs(rec["abs_m_z"]))
    rec["p_m_positive"] = None
    rec["p_m_positive_z"] = None
    rec["sign_changes_per_1k_sweeps"] = None
    if case.is_ising:
        frac = float(np.mean(columns[3]))
        ess_sign = float(ess[3])
        se = 0.5 / math.sqrt(ess_sign) if ess_sign > 0 else float("nan")
        rec["p_m_positive"] = frac
        rec["p_m_positive_z"] = float((frac - 0.5) / se) if se > 0 else None
        rec["ess_sign"] = ess_sign
        total_sweeps = n_chains * n_draws * run.sweeps_per_draw
        rec["sign_changes_per_1k_sweeps"] = float(
            1000.0 * _sign_changes_per_chain(m).sum() / total_sweeps
        )
        rec["chains_changing_sign"] = int(np.count_nonzero(_sign_changes_per_chain(m)))
        if rec["p_m_positive_z"] is not None and math.isfinite(rec["p_m_positive_z"]):
            z_values.append(abs(rec["p_m_positive_z"]))
    # Names shared with the continuous metrics (tables, plots, the correctness bar).
    rec["min_ess_bulk"] = float(min(ess[0], ess[1]))
    rec["ess_per_s"] = rec["min_ess_bulk"] / total
    rec["max_abs_z"] = float(max(z_values))
    # R-hat of E and |m|, and for Ising of the signed m: chains that never change sign (stuck in
    # one of the two ordered modes) show up there even when P(m > 0) looks right by symmetry.
    r_hat = er["r_hat"][[0, 1, 4]] if case.is_ising else er["r_hat"][:2]
    rec["r_hat_m"] = float(er["r_hat"][4]) if case.is_ising else None
    rec["max_r_hat"] = float(np.max(np.where(np.isnan(r_hat), np.inf, r_hat)))
    rec["mode_weight_err"] = None if rec["p_m_positive"] is None else abs(rec["p_m_positive"] - 0.5)
    rec["max_sd_rel_err"] = None
    return rec


def run_case(
    sampler: str,
    case_name: str,
    seed: int,
    n_chains: int,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run and analyse one (sampler, case, seed); the JSON-ready part of a worker record."""
    case = get_case(case_name)
    run = run_sampler(sampler, case, seed, n_chains, overrides)
    exact = exact_reference(case)
    return {
        "timings": run.timings,
        "global_acceptance": run.global_acceptance,
        "local_acceptance": run.local_acceptance,
        "settings": run.settings,
        "extra": run.extra,
        "metrics": discrete_metrics(run, case, exact),
        "reference": exact,
    }


# ----------------------------------------------------------------------------- own CLI
def run_one(sampler: str, L: int, seed: int, n_chains: int) -> dict[str, Any]:
    """One run of the critical-Ising study in this process; returns its record."""
    start = time.perf_counter()
    case = ising_case(L)
    overrides = flowmc_like_settings(case) if sampler == "flowmc_like" else {}
    run = run_sampler(sampler, case, seed, n_chains, overrides)
    wall = time.perf_counter() - start
    record = discrete_metrics(run, case)
    record.update(
        sampler=sampler,
        L=L,
        seed=seed,
        settings=run.settings,
        global_acceptance=run.global_acceptance,
        local_acceptance=run.local_acceptance,
        timings={**run.timings, "wall": wall},
        extra=run.extra,
    )
    return record


def sweep_costs(L: int, n_chains: int) -> dict[str, Any]:
    """Milliseconds per sweep of every chain, with and without ``delta_log_prob``."""
    import jax
    import jax.numpy as jnp

    import flowmc_like as fm

    target = ising_case(L).target()
    out: dict[str, Any] = {"L": L}
    x0 = jnp.zeros((n_chains, target.n_dim), jnp.int32)
    for name, delta in (("delta", target.delta_log_prob), ("full", None)):
        n_steps = 200 if delta is not None else 40
        result = fm.Sampler(
            target.log_prob,
            n_chains=n_chains,
            local_kernel=fm.SiteFlip(2, delta_log_prob=delta),
            global_model=None,
            n_training_loops=1,
            n_production_loops=2,
            n_local_steps=n_steps,
            progress_bar=False,
        ).run(jax.random.key(0), x0)
        out[f"ms_per_sweep_{name}"] = 1e3 * result.timings["production"] / (2 * n_steps)
    out["speedup"] = out["ms_per_sweep_full"] / out["ms_per_sweep_delta"]
    out["site_updates_per_s_delta"] = n_chains * target.n_dim / (out["ms_per_sweep_delta"] / 1e3)
    return out


def _subprocess(args: list[str]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.ising", *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _z(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def section(edge: str, name: str) -> str:
    """A pymdownx.snippets section marker (``edge`` is ``start`` or ``end``), an HTML comment."""
    return f"<!-- --8<-- [{edge}:{name}] -->"


def report(records: list[dict[str, Any]], costs: list[dict[str, Any]]) -> str:
    """The Markdown tables of the critical-Ising study.

    Each table sits between snippet section markers (``ising``, ``ising_ratios``,
    ``ising_sweep_costs``) so that a page can include one table of the file with
    ``--8<-- "benchmarks/results/<file>.md:ising"``.
    """
    lines = [
        section("start", "ising"),
        "| L | sampler | wall s | compile | train | sample | global acc | e (z) | C_v (z) | "
        "<\\|m\\|> (z) | tau_E sweeps | tau_\\|m\\| sweeps | tau_E ms | tau_\\|m\\| ms | "
        "ESS/s E | ESS/s \\|m\\| |",
        "|" + "---|" * 16,
    ]
    for r in records:
        t = r["timings"]
        lines.append(
            f"| {r['L']} | {r['sampler']} | {t['wall']:.1f} | {t['compile']:.1f} | "
            f"{t['training']:.1f} | {t['production']:.1f} | {_fmt(r['global_acceptance'])} | "
            f"{r['e']:.4f} ({_z(r['e_z'])}) | {r['c_v']:.3f} ({_z(r['c_v_z'])}) | "
            f"{r['abs_m']:.4f} ({_z(r['abs_m_z'])}) | "
            f"{r['tau_energy_sweeps']:.1f} | {r['tau_abs_m_sweeps']:.1f} | "
            f"{1e3 * r['tau_energy_seconds']:.2f} | {1e3 * r['tau_abs_m_seconds']:.2f} | "
            f"{r['ess_per_s_energy']:.1f} | {r['ess_per_s_abs_m']:.1f} |"
        )
    by_l: dict[int, dict[str, dict[str, Any]]] = {}
    for r in records:
        by_l.setdefault(r["L"], {})[r["sampler"]] = r
    lines += [
        section("end", "ising"),
        "",
        section("start", "ising_ratios"),
        "| L | peer | tau_\\|m\\| ms: peer / flowmc_like | ESS/s \\|m\\| (whole run): "
        "flowmc_like / peer |",
        "|---|---|---|---|",
    ]
    for L, group in sorted(by_l.items()):
        ours = group.get("flowmc_like")
        for name, theirs in group.items():
            if ours is None or name == "flowmc_like":
                continue
            lines.append(
                f"| {L} | {name} | "
                f"{theirs['tau_abs_m_seconds'] / ours['tau_abs_m_seconds']:.2g} | "
                f"{ours['ess_per_s_abs_m'] / theirs['ess_per_s_abs_m']:.2g} |"
            )
    lines.append(section("end", "ising_ratios"))
    if costs:
        lines += [
            "",
            section("start", "ising_sweep_costs"),
            "| L | ms per sweep, delta_log_prob | ms per sweep, full log_prob | speed-up | "
            "site updates/s |",
            "|---|---|---|---|---|",
        ]
        for c in costs:
            lines.append(
                f"| {c['L']} | {c['ms_per_sweep_delta']:.2f} | {c['ms_per_sweep_full']:.2f} | "
                f"{c['speedup']:.1f} | {c['site_updates_per_s_delta'] / 1e6:.2f} M |"
            )
        lines.append(section("end", "ising_sweep_costs"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point of the critical-Ising study."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,16")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--n-chains", type=int, default=DISCRETE_N_CHAINS)
    parser.add_argument("--samplers", default="flowmc_like,metropolis,wolff")
    parser.add_argument("--no-sweep-costs", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=3, metavar=("SAMPLER", "L", "SEED"))
    parser.add_argument("--sweep-cost-worker", type=int, metavar="L")
    parser.add_argument(
        "--render",
        metavar="JSON",
        default=None,
        help="rewrite the Markdown next to a stored results JSON from it, without running",
    )
    args = parser.parse_args(argv)
    if args.render:
        stored = Path(args.render)
        payload = json.loads(stored.read_text())
        text = report(payload["records"], payload.get("sweep_costs", []))
        stored.with_suffix(".md").write_text(payload.get("header", "") + text + "\n")
        print(f"wrote {stored.with_suffix('.md')}")
        return 0
    if args.worker:
        sampler, size, seed = args.worker
        from benchmarks.jsonable import json_default

        record = run_one(sampler, int(size), int(seed), args.n_chains)
        print(json.dumps(record, default=json_default))
        return 0
    if args.sweep_cost_worker:
        print(json.dumps(sweep_costs(args.sweep_cost_worker, args.n_chains)))
        return 0
    sizes = [int(v) for v in args.sizes.split(",")]
    records = []
    for size in sizes:
        for seed in (int(v) for v in args.seeds.split(",")):
            for sampler in args.samplers.split(","):
                print(f"# L={size} seed={seed} {sampler} ...", file=sys.stderr, flush=True)
                records.append(
                    _subprocess(
                        [
                            "--worker",
                            sampler,
                            str(size),
                            str(seed),
                            "--n-chains",
                            str(args.n_chains),
                        ]
                    )
                )
    costs = []
    if not args.no_sweep_costs:
        for size in sizes:
            costs.append(
                _subprocess(["--sweep-cost-worker", str(size), "--n-chains", str(args.n_chains)])
            )
    text = report(records, costs)
    tag = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else RESULTS / f"ising_{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    header = (
        f"# Ising at beta_c: flowmc_like vs single-site Metropolis and Wolff\n\n"
        f"Machine: {machine}; {platform.python_version()}; {args.n_chains} chains; "
        f"flowmc_like settings {RECIPE}, hidden width n_dim; Metropolis {METROPOLIS}; "
        f"Wolff {WOLFF}.\n\n"
    )
    out.write_text(
        json.dumps({"header": header, "records": records, "sweep_costs": costs}, indent=1)
    )
    out.with_suffix(".md").write_text(header + text + "\n")
    print(header + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
