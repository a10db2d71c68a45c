"""Measure `Autoregressive` sampling: incremental (carried first layer) vs naive (n_dim passes).

Usage::

    python -m benchmarks.autoregressive_sampling [--n-dims 64,256] [--batches 64,1024]
        [--hidden 128] [--n-categories 2] [--repeats 7] [--budget 20]

For each ``n_dim`` and batch size it times ``jit(vmap(sample_and_log_prob))`` over a batch of
keys (the incremental sampler) and the same for ``_sample_and_log_prob_naive`` (``n_dim`` full
forward passes per draw), both with ``symmetric=False``; for reference it also times one batch
of 1024 ``log_prob`` evaluations and one training step (value_and_grad of the NLL + the
library's optimiser) on a batch of 1024. Every timing is the median of ``--repeats`` calls
after a compiling call, each ended with ``block_until_ready``; a case stops repeating once
``--budget`` seconds are spent on it (at least 3 calls). Params are the init plus random noise
(timings do not depend on the values). Prints Markdown tables (ms) and the environment.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like.models import Autoregressive, ModelParams
from flowmc_like.training.optim import make_optimizer
from flowmc_like.training.trainer import negative_log_likelihood


def time_call(fn: Callable[[], Any], repeats: int, budget: float) -> tuple[float, float]:
    """(compile-call seconds, median steady seconds) of ``fn``."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (len(times) < 3 or spent < budget):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return first, statistics.median(times)


def random_params(model: Autoregressive, n_dim: int, seed: int = 0) -> ModelParams:
    params = model.init(jax.random.key(seed), n_dim)
    rng = np.random.default_rng(seed)
    trainable = jax.tree.map(
        lambda leaf: leaf + jnp.asarray(0.1 * rng.standard_normal(leaf.shape), leaf.dtype),
        params.trainable,
    )
    return ModelParams(trainable, params.frozen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-dims", default="64,256")
    parser.add_argument("--batches", default="64,1024")
    parser.add_argument("--hidden", default="128", help="comma-separated hidden sizes")
    parser.add_argument("--n-categories", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per case")
    args = parser.parse_args()
    n_dims = [int(v) for v in args.n_dims.split(",")]
    batches = [int(v) for v in args.batches.split(",")]
    hidden = tuple(int(v) for v in args.hidden.split(",") if v)
    model = Autoregressive(args.n_categories, hidden)
    optimizer = make_optimizer(1e-3)

    sample = jax.jit(jax.vmap(model.sample_and_log_prob, in_axes=(None, 0)))
    sample_naive = jax.jit(jax.vmap(model._sample_and_log_prob_naive, in_axes=(None, 0)))
    log_prob = jax.jit(jax.vmap(model.log_prob, in_axes=(None, 0)))

    @jax.jit
    def train_step(trainable, opt_state, batch):
        loss, grads = jax.value_and_grad(lambda t: negative_log_likelihood(model, t, (), batch))(
            trainable
        )
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return jax.tree.map(jnp.add, trainable, updates), opt_state, loss

    sampling_rows, reference_rows = [], []
    for n_dim in n_dims:
        params = random_params(model, n_dim)
        for batch in batches:
            keys = jax.random.split(jax.random.key(1), batch)
            fast = time_call(lambda p=params, k=keys: sample(p, k), args.repeats, args.budget)
            naive = time_call(
                lambda p=params, k=keys: sample_naive(p, k), args.repeats, args.budget
            )
            is_identical = bool(jnp.all(sample(params, keys)[0] == sample_naive(params, keys)[0]))
            sampling_rows.append((n_dim, batch, fast, naive, is_identical))
        examples = sample(params, jax.random.split(jax.random.key(2), 1024))[0]
        lp = time_call(lambda p=params, x=examples: log_prob(p, x), args.repeats, args.budget)
        opt_state = optimizer.init(params.trainable)
        step = time_call(
            lambda p=params, o=opt_state, x=examples: train_step(p.trainable, o, x),
            args.repeats,
            args.budget,
        )
        reference_rows.append((n_dim, lp, step))

    print(
        f"Autoregressive(n_categories={args.n_categories}, hidden_sizes={hidden}), "
        "jit(vmap) over a batch of keys; median of "
        f"<= {args.repeats} calls after compilation; ms (compile-call s)\n"
    )
    print("| n_dim | batch | incremental ms | naive ms | speed-up | identical draws |")
    print("| ---: | ---: | ---: | ---: | ---: | :---: |")
    for n_dim, batch, fast, naive, is_identical in sampling_rows:
        print(
            f"| {n_dim} | {batch} | {1e3 * fast[1]:.2f} ({fast[0]:.2f} s) "
            f"| {1e3 * naive[1]:.1f} ({naive[0]:.2f} s) | {naive[1] / fast[1]:.0f}x "
            f"| {'yes' if is_identical else 'NO'} |"
        )
    print("\n| n_dim | log_prob, batch 1024, ms | training step, batch 1024, ms |")
    print("| ---: | ---: | ---: |")
    for n_dim, lp, step in reference_rows:
        print(
            f"| {n_dim} | {1e3 * lp[1]:.2f} ({lp[0]:.2f} s) "
            f"| {1e3 * step[1]:.2f} ({step[0]:.2f} s) |"
        )
    print(
        f"\njax {jax.__version__}, {jax.devices()[0].platform}, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
