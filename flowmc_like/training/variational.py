"""Variational pre-training: fit the model to the target by annealed reverse KL, no chains.

Maximum likelihood on chain draws needs chains that have already explored; near a critical
point, or in a spin glass, single-site chains decorrelate so slowly that their draws teach a
model little (their window holds a few correlated configurations per chain). Reverse-KL
training needs no draws of the target: it minimises ``KL(q || p_beta)`` from the model's own
draws, and annealing ``p_beta(x) ~ p(x)^beta`` from ``beta`` near 0 (where the target is
nearly uniform on a discrete space, like a fresh model) up to 1 keeps the model from falling
into one mode or a poor local optimum on the way (Wu, Wang and Zhang, PRL 2019; Nicoli et al.,
PRE 2020). The chains' maximum-likelihood training afterwards corrects what reverse KL, which
is mode-seeking, leaves out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from flowmc_like._types import Array, PRNGKey, Space
from flowmc_like.config import SamplerConfig
from flowmc_like.models.base import AbstractGlobalModel, ModelParams
from flowmc_like.training.trainer import ReverseKL, TrainState, all_finite, reverse_kl_surrogate

__all__ = [
    "ANNEAL_STEPS",
    "CHUNK_STEPS",
    "MAX_STEPS",
    "MIN_GAIN",
    "TARGET_ACCEPTANCE",
    "VariationalChunk",
    "VariationalPlan",
    "annealing_betas",
    "is_variational_done",
    "pair_acceptance",
    "train_variational",
    "variational_plan",
    "variational_samples",
]

CHUNK_STEPS = 50
"""Optimiser steps per compiled call (the run decides between calls whether to go on)."""

ANNEAL_STEPS = 200
"""Automatic pre-training raises ``beta`` linearly to 1 over this many steps."""

MAX_STEPS = 1000
"""Automatic pre-training stops after at most this many steps."""

MIN_GAIN = 0.02
"""Automatic pre-training stops (after annealing) once a chunk raised the acceptance between
the model's own draws (`pair_acceptance`) by less than this over the one before."""

TARGET_ACCEPTANCE = 0.8
"""Automatic pre-training stops once the acceptance between the model's own draws reaches
this. It is only a stopping rule: from the target's own states the global acceptance can be
far lower (reverse KL is mode-seeking; on the 16 x 16 Ising model at the critical point the
first loop accepts almost nothing), which the training loops then fix."""


MAX_SAMPLES = 256
"""Model draws per pre-training step, at most (fewer if ``batch_size`` is smaller): more
steps of fewer draws learn faster per second than fewer steps of more draws."""


class VariationalPlan(NamedTuple):
    """How a run pre-trains its model.

    Attributes:
        n_anneal: steps over which ``beta`` rises to 1.
        max_steps: the most steps (0: no pre-training), a multiple of `CHUNK_STEPS`.
        is_automatic: stop early when the estimated acceptance levels off
            (`is_variational_done`); otherwise take exactly ``max_steps``.
    """

    n_anneal: int
    max_steps: int
    is_automatic: bool


def variational_plan(model: AbstractGlobalModel | None, config: SamplerConfig) -> VariationalPlan:
    """The pre-training a run with ``model`` and ``config`` does (before any warm start).

    ``n_variational_steps=None`` pre-trains a discrete model automatically (`ANNEAL_STEPS`
    of annealing, then until the acceptance levels off, at most `MAX_STEPS`) and a
    continuous one not at all; a count ``n`` takes ``n`` steps rounded up to a multiple of
    `CHUNK_STEPS`, annealing over the first ``min(ANNEAL_STEPS, n // 2)``.
    """
    if model is None or config.n_global_steps == 0:
        return VariationalPlan(0, 0, False)
    if config.n_variational_steps is None:
        if model.space is not Space.DISCRETE:
            return VariationalPlan(0, 0, False)
        return VariationalPlan(ANNEAL_STEPS, MAX_STEPS, True)
    n_steps = -(-config.n_variational_steps // CHUNK_STEPS) * CHUNK_STEPS
    return VariationalPlan(min(ANNEAL_STEPS, n_steps // 2), n_steps, False)


def variational_samples(config: SamplerConfig) -> int:
    """Model draws per pre-training step: ``batch_size`` capped at `MAX_SAMPLES` (>= 2)."""
    return max(min(config.effective_batch_size, MAX_SAMPLES), 2)


class VariationalChunk(NamedTuple):
    """What one compiled call of `train_variational` measured, per step.

    Attributes:
        free_energy: ``(n_steps,)`` ``mean(log q - beta log p)`` over the step's draws, an
            upper bound on ``-log Z_beta`` (it equals it when ``q = p_beta``).
        acceptance: ``(n_steps,)`` the mean independence-MH acceptance between the step's
            draws paired up (`pair_acceptance`): what a global move would accept if the
            chains were distributed like ``q``.
    """

    free_energy: Array
    acceptance: Array


def annealing_betas(start: int, n_steps: int, n_anneal: int) -> np.ndarray:
    """Inverse temperatures of steps ``start .. start + n_steps - 1``: a linear ramp to 1.

    Step ``t`` has ``beta = min(1, (t + 1) / n_anneal)`` (1 throughout if ``n_anneal`` is 0).
    """
    steps = np.arange(start, start + n_steps, dtype=np.float64)
    if n_anneal <= 0:
        return np.ones(n_steps)
    return np.minimum(1.0, (steps + 1.0) / n_anneal)


def pair_acceptance(log_weights: Array) -> Array:
    """``mean(min(1, w_{j+1} / w_j))`` over draws ``j`` paired cyclically; ``()``.

    ``log_weights`` ``(n,)`` are ``log p - log q`` of draws from ``q``; non-finite ones count
    as rejected. For independent draws this estimates the acceptance of an independence
    Metropolis-Hastings move from a state distributed as ``q``; from the target's own
    states (heavier in the weights) the acceptance is lower.
    """
    is_valid = jnp.isfinite(log_weights)
    safe = jnp.where(is_valid, log_weights, 0.0)
    ratio = jnp.exp(jnp.minimum(jnp.roll(safe, -1) - safe, 0.0))
    ok = is_valid & jnp.roll(is_valid, -1)
    return jnp.mean(jnp.where(ok, ratio, 0.0))


def train_variational(
    model: AbstractGlobalModel,
    optimizer: optax.GradientTransformation,
    key: PRNGKey,
    train_state: TrainState,
    betas: Array,
    log_prob_fn: Callable[[Array], Array],
    n_samples: int,
) -> tuple[TrainState, VariationalChunk, Array]:
    """``len(betas)`` optimiser steps of reverse KL to ``p^beta``, one per ``beta``.

    Each step draws ``n_samples`` events from the model and follows the score-function
    gradient of ``KL(q || p^beta)`` with the leave-one-out baseline
    (`flowmc_like.training.trainer.reverse_kl_surrogate`).

    Args:
        model: the global model (static).
        optimizer: the optax transformation (static).
        key: PRNG key of the whole call.
        train_state: current params and optimiser state.
        betas: ``(n_steps,)`` the inverse temperature of each step.
        log_prob_fn: the target, one event ``(n_dim,)`` -> ``()``.
        n_samples: model draws per step (static, ``>= 2``).

    Returns:
        ``(new_train_state, chunk, is_finite)``: ``chunk`` measures each step
        (`VariationalChunk`); ``is_finite`` is ``()`` bool, true when every step's estimate
        and the parameters are finite (the caller keeps the old state otherwise).
    """
    frozen = train_state.params.frozen
    flat, unravel = ravel_pytree(train_state.params.trainable)

    def step(carry, inputs):
        flat, opt_state = carry
        beta, step_key = inputs

        def tempered(x: Array) -> Array:
            return beta * log_prob_fn(x)

        def loss(flat: Array) -> tuple[Array, Array]:
            params = ModelParams(unravel(flat), frozen)
            reverse_kl = ReverseKL(tempered, 1.0, n_samples)
            return reverse_kl_surrogate(model, params, step_key, reverse_kl)

        (_, free_energy), grads = jax.value_and_grad(loss, has_aux=True)(flat)
        updates, opt_state = optimizer.update(grads, opt_state, flat)
        return (optax.apply_updates(flat, updates), opt_state), free_energy

    keys = jax.random.split(key, betas.shape[0])
    (flat, opt_state), free_energy = jax.lax.scan(
        step, (flat, train_state.opt_state), (betas, keys)
    )
    params = ModelParams(unravel(flat), frozen)
    acceptance = _acceptance_of(model, params, jax.random.fold_in(key, 1), log_prob_fn, n_samples)
    chunk = VariationalChunk(free_energy=free_energy, acceptance=acceptance)
    is_finite = jnp.all(jnp.isfinite(free_energy)) & all_finite(flat)
    return TrainState(params=params, opt_state=opt_state), chunk, is_finite


def _acceptance_of(
    model: AbstractGlobalModel,
    params: ModelParams,
    key: PRNGKey,
    log_prob_fn: Callable[[Array], Array],
    n_samples: int,
) -> Array:
    """`pair_acceptance` of ``n_samples`` fresh draws against the full target (``beta = 1``)."""
    draws, log_q = jax.vmap(lambda k: model.sample_and_log_prob(params, k))(
        jax.random.split(key, n_samples)
    )
    log_p = jax.vmap(log_prob_fn)(draws).astype(log_q.dtype)
    return pair_acceptance(log_p - log_q)


def is_variational_done(
    n_done: int, acceptances: list[float], n_anneal: int, max_steps: int = MAX_STEPS
) -> tuple[bool, str]:
    """Whether automatic pre-training stops after ``n_done`` steps, and why.

    Args:
        n_done: steps taken so far (a multiple of `CHUNK_STEPS`).
        acceptances: the estimated acceptance (`pair_acceptance` at ``beta = 1``) after each
            chunk so far.
        n_anneal: the annealing steps; nothing stops before they are done.
        max_steps: the cap.
    """
    if n_done >= max_steps:
        return True, f"the cap of {max_steps} steps was reached"
    if n_done < n_anneal or len(acceptances) < 2:
        return False, ""
    if acceptances[-1] >= TARGET_ACCEPTANCE:
        return True, f"the acceptance between its draws reached {TARGET_ACCEPTANCE}"
    gain = acceptances[-1] - acceptances[-2]
    if gain < MIN_GAIN:
        return True, (
            f"the acceptance between its draws levelled off ({acceptances[-2]:.2f} -> "
            f"{acceptances[-1]:.2f} over {CHUNK_STEPS} steps)"
        )
    return False, ""
