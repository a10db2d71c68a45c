"""flowmc_like through its public API (``docs/spec/API.md``).

``fm.Sampler(log_prob, n_dim=d, n_chains=n, **schedule, **overrides).run(key, x0)``: the
schedule fields the signature accepts are passed (so both flow samplers run the same loops),
every other argument keeps flowmc_like's default unless overridden; ``progress_bar=False`` when
the signature has it (a progress bar is not what is being measured).

Overrides are JSON-able (they come from `benchmarks.suites.FLOWMC_LIKE_TARGET_SETTINGS`, the
suites and ``--set``). The keys ``local_kernel`` and ``global_model`` may hold a spec
``{"name": "HMC", "kwargs": {...}}``, built as ``getattr(fm, name)(**kwargs)`` (lists become
tuples; a kwarg whose value is the string ``"target"`` takes the target's attribute of the
same name, e.g. ``SiteFlip``'s ``delta_log_prob``), or ``null`` for ``None``.

Timing: ``total`` is measured here around construction + ``run`` + conversion of the samples to
numpy (the same window as the flowMC runner). ``compile``, ``training`` and ``production`` are
the library's own ``result.timings``; ``other`` is ``total`` minus those three. The JAX compile
spans seen from outside (`benchmarks.timing.CompileTracker`) are kept in
``extra["compile_seconds_observed"]`` as a cross-check of the library's own figure.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks.peers import PeerRun, Schedule
from benchmarks.timing import CompileTracker

__all__ = ["IMPORTS", "expected_evals", "run"]

IMPORTS = ("flowmc_like",)


def _mean_or_none(a: Any) -> float | None:
    if a is None:
        return None
    arr = np.asarray(a, dtype=float)
    return float(np.nanmean(arr)) if np.any(np.isfinite(arr)) else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str, type(None))):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return repr(v)


def build_component(spec: Any, target: Any) -> Any:
    """``{"name": N, "kwargs": {...}}`` -> ``getattr(fm, N)(**kwargs)``; None stays None.

    Lists in ``kwargs`` become tuples (frozen dataclass fields); the string ``"target"`` is
    replaced by ``getattr(target, key)``. Anything that is not a spec dict is returned as is.
    """
    import flowmc_like as fm

    if not (isinstance(spec, dict) and "name" in spec):
        return spec
    unknown = set(spec) - {"name", "kwargs"}
    if unknown:
        raise ValueError(f"component spec keys are 'name' and 'kwargs'; got {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for k, v in dict(spec.get("kwargs") or {}).items():
        if v == "target":
            v = getattr(target, k)
        elif isinstance(v, list):
            v = _as_tuple(v)
        kwargs[k] = v
    return getattr(fm, spec["name"])(**kwargs)


def _as_tuple(v: Any) -> Any:
    return tuple(_as_tuple(x) for x in v) if isinstance(v, list | tuple) else v


def expected_evals(sampler: Any, n_chains: int, history: Any) -> dict[str, int]:
    """Target evaluations of a run (value or value_and_grad, per chain, times chains) by phase.

    From the algorithm, as `flowmc_like.Sampler` compiles it, and the run's ``history`` (how
    many loops of each phase ran, and which ran their local phase in the flow's latent
    space): one evaluation per chain at the start; per loop, ``n_local_steps`` local steps
    (HMC: ``n_leapfrog`` each), one more at each end of a latent-space local phase (the
    kernel state in ``z``, then in ``x``), and ``n_global_steps`` proposals plus one
    kernel-state rebuild after the global phase; reverse-KL training adds its model draws.
    """
    config = sampler.config
    per_local_step = int(getattr(sampler.local_kernel, "n_leapfrog", 1))
    per_loop = config.n_local_steps * per_local_step
    if sampler.global_model is not None:
        per_loop += config.n_global_steps + 1
    training_extra = 0
    if config.reverse_kl_weight > 0:
        n_batches = config.n_max_examples // config.effective_batch_size
        training_extra = config.n_epochs * n_batches * max(config.effective_batch_size, 2)
    is_training = np.asarray(history.is_training, bool)
    in_latent = np.asarray(history.in_latent_space, bool)
    n_training, n_production = int(is_training.sum()), int((~is_training).sum())
    return {
        "training": n_chains * (1 + n_training * per_loop + 2 * int(in_latent[is_training].sum()))
        + n_training * training_extra,
        "production": n_chains * (n_production * per_loop + 2 * int(in_latent[~is_training].sum())),
    }


def run(
    target: Any,
    log_prob: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    seed: int,
    schedule: Schedule,
    overrides: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> PeerRun:
    """Run ``fm.Sampler`` on ``target`` from ``x0``; see the module docstring.

    ``target`` is a `benchmarks.targets.Target` or a lattice target (anything whose
    attributes the ``"target"`` placeholders of a component spec name).

    ``on_phase`` is accepted for the common signature but never called: the public API has no
    hook at the training/production boundary, so evaluation counts are for the whole run.
    """
    import flowmc_like as fm

    del on_phase
    n_chains, n_dim = x0.shape
    params = inspect.signature(fm.Sampler).parameters
    kwargs: dict[str, Any] = {
        k: v for k, v in schedule.as_dict().items() if k in params and k != "n_chains"
    }
    if "progress_bar" in params:
        kwargs["progress_bar"] = False
    kwargs.update(overrides or {})
    passed = dict(kwargs)
    for name in ("local_kernel", "global_model"):
        if name in kwargs:
            kwargs[name] = build_component(kwargs[name], target)
    defaults = {
        k: p.default
        for k, p in params.items()
        if p.default is not inspect.Parameter.empty and k not in kwargs
    }

    key = jax.random.key(seed)
    with CompileTracker() as tr:
        t_start = tr.stamp("start")
        sampler = fm.Sampler(log_prob, n_dim=n_dim, n_chains=n_chains, **kwargs)
        result = sampler.run(key, x0)
        samples = np.asarray(result.samples)
        t_end = tr.stamp("end")

    total = t_end - t_start
    lib = {k: float(v) for k, v in dict(getattr(result, "timings", {}) or {}).items()}
    timings = {
        "total": total,
        "compile": lib.get("compile", float("nan")),
        "training": lib.get("training", float("nan")),
        "production": lib.get("production", float("nan")),
    }
    timings["other"] = total - timings["compile"] - timings["training"] - timings["production"]

    g_acc = getattr(result, "global_acceptance", None)
    settings = {
        "flowmc_like_version": getattr(fm, "__version__", "?"),
        "passed": _jsonable(passed),
        "built": {
            name: re.sub(r" at 0x[0-9a-f]+", "", repr(kwargs[name]))
            for name in ("local_kernel", "global_model")
            if name in kwargs
        },
        "defaults_kept": _jsonable(defaults),
    }
    extra: dict[str, Any] = {
        "library_timings": lib,
        "compile_seconds_observed": tr.compile_seconds(t_start, t_end),
        "n_backend_compiles": tr.backend_compiles,
        "global_acceptance_per_chain": None if g_acc is None else np.asarray(g_acc).tolist(),
        "expected_evals": expected_evals(sampler, n_chains, result.history),
    }
    return PeerRun(
        samples=samples,
        timings=timings,
        global_acceptance=_mean_or_none(g_acc),
        local_acceptance=_mean_or_none(getattr(result, "local_acceptance", None)),
        settings=settings,
        extra=extra,
    )
