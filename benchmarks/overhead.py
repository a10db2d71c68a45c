"""Local-step overhead: one flowmc_like MALA step for all chains vs one bare value_and_grad.

Usage::

    python -m benchmarks.overhead [--targets dual_moon_2d,...] [--n-chains 32] [--n-steps 1000]
        [--repeats 5] [--json PATH] [--md PATH]

The metric of ``docs/spec/BENCHMARKS.md``: the wall time of one local step of every chain divided
by the time of one bare ``jax.vmap(jax.value_and_grad(log_prob))`` over the same chains; the
ideal is 1 (a MALA step evaluates the target and its gradient once, at the proposal).

The kernel is measured through the public objects only: ``kernel = fm.MALA()``, its
``kernel.init_params(n_dim)`` held fixed (no adaptation), ``kernel.init`` vmapped over the
chains for the start, and ``kernel.step`` vmapped over the chains with one key per chain
(split from a per-step key, as a sampler does). Two ways of timing, both after a compiling
call and as the median of ``--repeats`` calls, each ended by ``block_until_ready``:

- ``scan``: ``n_steps`` steps inside one jitted ``lax.scan``, divided by ``n_steps``; the bare
  reference is the same length of ``lax.scan`` over ``vmap(value_and_grad(log_prob))`` whose
  carry moves the positions by ``1e-6 * grad`` and accumulates the values (so nothing is
  loop-invariant or dead code). Dispatch overhead is excluded from both: this is the cost of
  the kernel's own arithmetic (noise, proposal density, accept/reject, key splitting).
- ``phase``: the library's own local phase, `flowmc_like.phases.run_local_phase` (what
  ``Sampler.run`` jits), ``n_steps`` steps with the params frozen, trace recorded; it draws
  every step's noise in one batched call before its loop. Divided by ``n_steps`` and compared
  with the bare ``scan``. This is the headline ratio: the cost of a local step as a run pays it.
  ``is_adapting`` is an argument of the compiled phase, as in a run, so the step carries the
  adaptation update as it does in ``Sampler.run``.
- ``call``: the same step (resp. value_and_grad) as its own jitted function called
  ``n_calls`` times from Python; per call, dispatch included. This is what a Python loop
  over steps would pay and is not how the Sampler runs its local phase (it scans).

Two references put the ratio in context, both scanned like ``phase``:

- ``minimal``: the least a MALA step can do (`_minimal_mala_scan`): noise drawn before the
  loop, one value_and_grad, both proposal densities, accept, record; nothing else. Its ratio
  to the bare evaluation is the floor of any MALA implementation on this machine: the XLA
  CPU runtime pays a fixed cost per loop iteration and per kernel, which a 1-4 us target
  does not hide. Its noise is an input, so its time leaves out the draws, which any MALA
  step must pay too:
- ``draw``: the library's bulk draw of every step's noise (``kernel.draw_noise`` for
  ``n_steps`` steps of all chains: ``n_dim`` normals and one uniform per chain and step),
  per step. ``minimal + draw`` over the bare evaluation is the floor with the randomness
  counted; on a target cheaper than a few microseconds the draws alone cost more than the
  target's value and gradient.
- ``blackjax``: blackjax's ``mala`` kernel vmapped over the chains (per-chain keys split
  every step), the way blackjax users run it; skipped if blackjax is not installed.

The start is the target's initial box (``U[-5, 5]^d``, key 0); the step size is MALA's
initial 0.1. Timings do not depend on acceptance (both branches of the accept are computed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.targets import TARGET_NAMES, get_target

__all__ = ["markdown_table", "measure_target", "measure_all"]


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _bare_scan(log_prob: Callable[[jax.Array], jax.Array], n_steps: int) -> Callable[..., Any]:
    """``n_steps`` of vmapped value_and_grad in a ``lax.scan`` (see the module docstring)."""
    value_and_grad = jax.vmap(jax.value_and_grad(log_prob))

    def bare_scan(x: jax.Array) -> Any:
        def body(carry: tuple[jax.Array, jax.Array], _: None) -> tuple[Any, None]:
            pos, acc = carry
            v, g = value_and_grad(pos)
            return (pos + 1e-6 * g, acc + jnp.sum(v)), None

        return jax.lax.scan(body, (x, jnp.zeros((), x.dtype)), None, length=n_steps)[0]

    return bare_scan


def _minimal_mala_scan(
    log_prob: Callable[[jax.Array], jax.Array], n_steps: int, step_size: float
) -> Callable[..., Any]:
    """The least a MALA step can do, written directly: the floor for any MALA implementation.

    Every step's normal noise and log-uniform are drawn before the loop; the body proposes,
    evaluates the target and its gradient once (vmapped over the chains), computes both
    proposal densities, accepts and records position, log density and acceptance. No
    adaptation, no non-finite handling, no other bookkeeping.
    """
    value_and_grad = jax.vmap(jax.value_and_grad(log_prob))
    half_h2 = 0.5 * step_size**2

    def minimal_scan(x: jax.Array, noise: jax.Array, log_uniform: jax.Array) -> Any:
        def body(carry: Any, inputs: Any) -> tuple[Any, Any]:
            x, log_p, grad = carry
            xi, log_u = inputs
            y = x + half_h2 * grad + step_size * xi
            log_p_y, grad_y = value_and_grad(y)
            log_q_forward = -jnp.sum((y - x - half_h2 * grad) ** 2, -1)
            log_q_reverse = -jnp.sum((x - y - half_h2 * grad_y) ** 2, -1)
            log_ratio = log_p_y - log_p + (log_q_reverse - log_q_forward) / (2 * step_size**2)
            accept = log_u < log_ratio
            x = jnp.where(accept[:, None], y, x)
            log_p = jnp.where(accept, log_p_y, log_p)
            grad = jnp.where(accept[:, None], grad_y, grad)
            return (x, log_p, grad), (x, log_p, accept)

        return jax.lax.scan(body, (x, *value_and_grad(x)), (noise, log_uniform))

    return minimal_scan


def _blackjax_mala_scan(
    log_prob: Callable[[jax.Array], jax.Array], n_steps: int, n_chains: int, step_size: float
) -> Callable[..., Any] | None:
    """blackjax's MALA kernel vmapped over the chains in a ``lax.scan``; None without blackjax.

    blackjax's ``step_size`` is ``h^2 / 2`` in flowmc_like's convention (same proposal).
    """
    try:
        import blackjax
    except ImportError:
        return None
    mala = blackjax.mala(log_prob, 0.5 * step_size**2)

    def blackjax_scan(key: jax.Array, x: jax.Array) -> Any:
        def body(st: Any, k: jax.Array) -> tuple[Any, Any]:
            st, info = jax.vmap(mala.step)(jax.random.split(k, n_chains), st)
            return st, (st.position, st.logdensity, info.is_accepted)

        return jax.lax.scan(body, jax.vmap(mala.init)(x), jax.random.split(key, n_steps))

    return blackjax_scan


def _library_phase(
    log_prob: Callable[[jax.Array], jax.Array], n_dim: int, n_steps: int
) -> Callable[..., Any]:
    """`flowmc_like.phases.run_local_phase` with ``fm.MALA()``, params frozen."""
    import flowmc_like as fm
    from flowmc_like.phases import run_local_phase

    kernel = fm.MALA()
    adaptation = kernel.adaptation()

    def library_phase(key: jax.Array, st: Any, p: Any, is_adapting: Any) -> Any:
        # is_adapting is an argument of the compiled phase, as in Sampler.run (a constant
        # here would let XLA drop the adaptation update from the step)
        st, _, trace = run_local_phase(
            kernel,
            adaptation,
            log_prob,
            n_steps,
            key,
            st,
            adaptation.init(p, st.position),
            p,
            jnp.asarray(is_adapting),
            1,
        )
        return st, trace

    return library_phase


def logistic_regression(n_data: int, n_dim: int = 10, seed: int = 0) -> Callable[..., Any]:
    """Log posterior of a Bayesian logistic regression on ``n_data`` synthetic points.

    Features ``N(0, 1)``, true weights ``N(0, 1)``, labels drawn from the model (numpy, fixed
    seed); prior ``N(0, I)``. One evaluation costs ``O(n_data * n_dim)``: the knob for how
    expensive a target is.
    """
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n_data, n_dim)).astype(np.float32)
    weights = rng.standard_normal(n_dim)
    labels = rng.random(n_data) < 1 / (1 + np.exp(-features @ weights))
    signs = jnp.asarray(np.where(labels, 1.0, -1.0).astype(np.float32))
    features_j = jnp.asarray(features)

    def log_prob(w: jax.Array) -> jax.Array:
        return jnp.sum(jax.nn.log_sigmoid(signs * (features_j @ w))) - 0.5 * jnp.sum(w**2)

    return log_prob


def measure_cost_sweep(
    n_data_values: tuple[int, ...] = (100, 1_000, 10_000, 100_000),
    n_chains: int = 32,
    n_steps: int = 200,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Local phase vs bare value_and_grad (both scanned) as the target gets more expensive.

    The local phase's bookkeeping (noise, proposal densities, accept/reject, adaptation
    select, trace) is a fixed cost per step; this shows the target cost at which it stops
    mattering. Targets: `logistic_regression` with ``n_data`` points, ``n_dim = 10``.
    """
    import flowmc_like as fm

    kernel = fm.MALA()
    params = kernel.init_params(10)
    x0 = 0.1 * jax.random.normal(jax.random.key(0), (n_chains, 10))
    key = jax.random.key(1)
    rows = []
    for n_data in n_data_values:
        log_prob = logistic_regression(n_data)
        states = jax.jit(jax.vmap(lambda x, lp=log_prob: kernel.init(x, lp)))(x0)
        phase_jit = jax.jit(_library_phase(log_prob, 10, n_steps))
        bare_jit = jax.jit(_bare_scan(log_prob, n_steps))
        jax.block_until_ready((phase_jit(key, states, params, np.asarray(False)), bare_jit(x0)))
        t_phase = _median_seconds(
            lambda f=phase_jit, s=states: f(key, s, params, np.asarray(False)), repeats
        )
        t_bare = _median_seconds(lambda f=bare_jit: f(x0), repeats)
        rows.append(
            {
                "target": f"logistic_regression (n_data={n_data})",
                "n_data": n_data,
                "n_dim": 10,
                "bare_us_scan": 1e6 * t_bare / n_steps,
                "phase_us": 1e6 * t_phase / n_steps,
                "ratio_phase": t_phase / t_bare,
            }
        )
    return rows


def measure_target(
    name: str, n_chains: int = 32, n_steps: int = 1000, repeats: int = 5, n_calls: int = 200
) -> dict[str, Any]:
    """Per-step seconds of a MALA step and of a bare value_and_grad on ``name``, both ways."""
    import flowmc_like as fm

    target = get_target(name)
    log_prob = target.log_prob
    n_dim = target.n_dim
    kernel = fm.MALA()
    params = kernel.init_params(n_dim)
    x0 = target.initial_position(jax.random.key(0), n_chains)
    states = jax.jit(jax.vmap(lambda x: kernel.init(x, log_prob)))(x0)

    def step_all(key: jax.Array, st: Any, p: Any) -> Any:
        keys = jax.random.split(key, n_chains)
        new, _ = jax.vmap(lambda k, s: kernel.step(k, s, log_prob, p))(keys, st)
        return new

    def kernel_scan(key: jax.Array, st: Any, p: Any) -> Any:
        def body(carry: Any, k: jax.Array) -> tuple[Any, None]:
            return step_all(k, carry, p), None

        return jax.lax.scan(body, st, jax.random.split(key, n_steps))[0]

    value_and_grad = jax.vmap(jax.value_and_grad(log_prob))
    bare_scan = _bare_scan(log_prob, n_steps)
    library_phase = _library_phase(log_prob, n_dim, n_steps)

    key = jax.random.key(1)
    phase_jit = jax.jit(library_phase)
    jax.block_until_ready(phase_jit(key, states, params, np.asarray(False)))
    t_phase = _median_seconds(lambda: phase_jit(key, states, params, np.asarray(False)), repeats)
    kernel_scan_jit = jax.jit(kernel_scan)
    bare_scan_jit = jax.jit(bare_scan)
    step_jit = jax.jit(step_all)
    vg_jit = jax.jit(value_and_grad)
    jax.block_until_ready((kernel_scan_jit(key, states, params), bare_scan_jit(x0)))
    jax.block_until_ready((step_jit(key, states, params), vg_jit(x0)))

    t_kernel_scan = _median_seconds(lambda: kernel_scan_jit(key, states, params), repeats)
    t_bare_scan = _median_seconds(lambda: bare_scan_jit(x0), repeats)

    step_size = float(params.step_size)
    key_noise, key_uniform = jax.random.split(jax.random.key(2))
    noise = jax.random.normal(key_noise, (n_steps, *x0.shape), x0.dtype)
    log_uniform = jnp.log(jax.random.uniform(key_uniform, (n_steps, n_chains), x0.dtype))
    draw_jit = jax.jit(lambda k, x: kernel.draw_noise(k, x, n_steps))
    jax.block_until_ready(draw_jit(key, x0))
    t_draw = _median_seconds(lambda: draw_jit(key, x0), repeats)
    minimal_jit = jax.jit(_minimal_mala_scan(log_prob, n_steps, step_size))
    jax.block_until_ready(minimal_jit(x0, noise, log_uniform))
    t_minimal = _median_seconds(lambda: minimal_jit(x0, noise, log_uniform), repeats)
    blackjax_scan = _blackjax_mala_scan(log_prob, n_steps, n_chains, step_size)
    t_blackjax = None
    if blackjax_scan is not None:
        blackjax_jit = jax.jit(blackjax_scan)
        jax.block_until_ready(blackjax_jit(key, x0))
        t_blackjax = _median_seconds(lambda: blackjax_jit(key, x0), repeats)

    call_keys = list(jax.random.split(key, n_calls))

    def kernel_calls() -> Any:
        st = states
        for k in call_keys:
            st = step_jit(k, st, params)
        return st

    def bare_calls() -> Any:
        out = None
        for _ in range(n_calls):
            out = vg_jit(x0)
        return out

    t_kernel_call = _median_seconds(kernel_calls, repeats)
    t_bare_call = _median_seconds(bare_calls, repeats)
    rec = {
        "target": name,
        "n_dim": n_dim,
        "n_chains": n_chains,
        "n_steps": n_steps,
        "n_calls": n_calls,
        "repeats": repeats,
        "phase_us": 1e6 * t_phase / n_steps,
        "kernel_us_scan": 1e6 * t_kernel_scan / n_steps,
        "bare_us_scan": 1e6 * t_bare_scan / n_steps,
        "kernel_us_call": 1e6 * t_kernel_call / n_calls,
        "bare_us_call": 1e6 * t_bare_call / n_calls,
        "minimal_us_scan": 1e6 * t_minimal / n_steps,
        "draw_us_scan": 1e6 * t_draw / n_steps,
        "blackjax_us_scan": None if t_blackjax is None else 1e6 * t_blackjax / n_steps,
    }
    rec["ratio_minimal"] = rec["minimal_us_scan"] / rec["bare_us_scan"]
    rec["ratio_minimal_draw"] = (rec["minimal_us_scan"] + rec["draw_us_scan"]) / rec["bare_us_scan"]
    rec["ratio_phase"] = rec["phase_us"] / rec["bare_us_scan"]
    rec["ratio_scan"] = rec["kernel_us_scan"] / rec["bare_us_scan"]
    rec["ratio_call"] = rec["kernel_us_call"] / rec["bare_us_call"]
    return rec


def measure_all(
    targets: list[str],
    n_chains: int = 32,
    n_steps: int = 1000,
    repeats: int = 5,
    cost_sweep: bool = True,
) -> dict[str, Any]:
    """`measure_target` for each target, `measure_cost_sweep`, and the environment; JSON-ready."""
    return {
        "settings": {
            "kernel": "fm.MALA() (step_size 0.1, fixed)",
            "n_chains": n_chains,
            "n_steps": n_steps,
            "repeats": repeats,
        },
        "env": {
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg": os.getloadavg(),
        },
        "rows": [measure_target(t, n_chains, n_steps, repeats) for t in targets],
        "cost_sweep": measure_cost_sweep(n_chains=n_chains) if cost_sweep else [],
    }


def markdown_table(result: dict[str, Any]) -> str:
    """The overhead table (microseconds per step of all chains, and ratios)."""
    lines = [
        "| target | d | bare v&g us (scan) | local phase us/step | ratio (phase) | "
        "minimal MALA us (scan) | ratio (minimal) | noise draw us/step | "
        "ratio (minimal + draw) | blackjax MALA us (scan) | "
        "MALA step us (scan) | ratio (scan) | "
        "MALA step us (per call) | bare v&g us (per call) | ratio (per call) |",
        "| " + " | ".join(["---"] * 15) + " |",
    ]
    for r in result["rows"]:
        minimal = r.get("minimal_us_scan")
        draw = r.get("draw_us_scan")
        blackjax_us = r.get("blackjax_us_scan")
        lines.append(
            f"| {r['target']} | {r['n_dim']} | {r['bare_us_scan']:.1f} | {r['phase_us']:.1f} | "
            f"{r['ratio_phase']:.2f} | "
            + ("n/a | n/a" if minimal is None else f"{minimal:.1f} | {r['ratio_minimal']:.2f}")
            + (
                " | n/a | n/a"
                if draw is None or minimal is None
                else f" | {draw:.1f} | {r['ratio_minimal_draw']:.2f}"
            )
            + (" | n/a" if blackjax_us is None else f" | {blackjax_us:.1f}")
            + f" | {r['kernel_us_scan']:.1f} | {r['ratio_scan']:.2f} | "
            f"{r['kernel_us_call']:.1f} | "
            f"{r['bare_us_call']:.1f} | {r['ratio_call']:.2f} |"
        )
    sweep = result.get("cost_sweep") or []
    if sweep:
        lines += [
            "",
            "As the target gets more expensive (the local phase's bookkeeping is a fixed cost "
            "per step):",
            "",
            "| target | d | bare v&g us (scan) | local phase us/step | ratio (phase) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in sweep:
            lines.append(
                f"| {r['target']} | {r['n_dim']} | {r['bare_us_scan']:.1f} | "
                f"{r['phase_us']:.1f} | {r['ratio_phase']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__)
    p.add_argument("--targets", default=",".join(TARGET_NAMES))
    p.add_argument("--n-chains", type=int, default=32)
    p.add_argument("--n-steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="write the JSON result here")
    p.add_argument("--md", help="write the Markdown table here")
    p.add_argument(
        "--no-cost-sweep", action="store_true", help="skip the logistic-regression cost sweep"
    )
    a = p.parse_args(argv)
    targets = [t for t in a.targets.split(",") if t]
    result = measure_all(targets, a.n_chains, a.n_steps, a.repeats, not a.no_cost_sweep)
    table = markdown_table(result)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1, default=_np_default))
    if a.md:
        Path(a.md).write_text(table + "\n")
    print(table)
    return 0


def _np_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


if __name__ == "__main__":
    sys.exit(main())
