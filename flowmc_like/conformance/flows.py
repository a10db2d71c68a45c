"""Conformance checks of global models, continuous flows above all.

The generic checks (`check_model_shapes`, `check_model_sample_and_log_prob_agree`,
`check_model_jit_vmap_grad`, `check_model_fit_decreases_loss`) need only the
`AbstractGlobalModel` protocol and apply to discrete models too; the others are for
continuous models, and `check_model_change_of_variables` for bijective ones (with
``forward_and_log_det`` and ``inverse_and_log_det``). Each raises `ConformanceError`.

Batches are evaluated in chunks of `CHUNK_SIZE` events (the last one padded), so every check
of a model shares one compiled ``log_prob`` and one compiled sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from flowmc_like._types import Array, ArrayLike, PRNGKey, PyTree
from flowmc_like.conformance._core import cache_per_config, require, require_close
from flowmc_like.models.base import AbstractGlobalModel, ModelParams

__all__ = [
    "CHUNK_SIZE",
    "FitResult",
    "check_model_change_of_variables",
    "check_model_fit_decreases_loss",
    "check_model_identity_at_init",
    "check_model_jit_vmap_grad",
    "check_model_normalized_2d",
    "check_model_sample_and_log_prob_agree",
    "check_model_shapes",
]

CHUNK_SIZE = 4096
"""Events per compiled batch of ``log_prob`` or ``sample_and_log_prob``."""


@cache_per_config
def _batched_model_fns(
    model: AbstractGlobalModel,
) -> tuple[Callable[[ModelParams, Array], Array], Callable[[ModelParams, Array], Any]]:
    """``jit(vmap(log_prob))`` and ``jit(vmap(sample_and_log_prob))``, cached per model."""
    log_prob = jax.jit(jax.vmap(model.log_prob, in_axes=(None, 0)))
    sample = jax.jit(jax.vmap(model.sample_and_log_prob, in_axes=(None, 0)))
    return log_prob, sample


def _in_chunks(fn: Callable[[ModelParams, Array], Any], params: ModelParams, inputs: Array) -> Any:
    """``fn(params, inputs)`` over chunks of `CHUNK_SIZE` (last one padded), concatenated."""
    n = inputs.shape[0]
    n_padded = -(-n // CHUNK_SIZE) * CHUNK_SIZE
    padded = jnp.concatenate([inputs, jnp.repeat(inputs[-1:], n_padded - n, axis=0)])
    outputs = [
        fn(params, padded[start : start + CHUNK_SIZE]) for start in range(0, n_padded, CHUNK_SIZE)
    ]
    return jax.tree.map(lambda *parts: jnp.concatenate(parts)[:n], *outputs)


def batched_log_prob(model: AbstractGlobalModel, params: ModelParams, xs: ArrayLike) -> Array:
    """``log_prob`` of events ``(n, n_dim)`` -> ``(n,)``, jitted and vmapped in chunks."""
    return _in_chunks(_batched_model_fns(model)[0], params, jnp.asarray(xs))


def batched_sample(
    model: AbstractGlobalModel, params: ModelParams, key: PRNGKey, n_samples: int
) -> tuple[Array, Array]:
    """Draws ``(n_samples, n_dim)`` and their ``log_q``; draw ``i`` uses ``split(key, n)[i]``."""
    keys = jax.random.split(key, n_samples)
    return _in_chunks(_batched_model_fns(model)[1], params, keys)


def standard_normal_log_prob(z: Array) -> Array:
    """``log N(z; 0, I)`` of events ``(..., n_dim)`` -> ``(...)``."""
    return -0.5 * jnp.sum(jnp.square(z), axis=-1) - 0.5 * z.shape[-1] * np.log(2.0 * np.pi)


def check_model_shapes(model: AbstractGlobalModel, params: ModelParams, key: PRNGKey) -> int:
    """``sample_and_log_prob -> ((n_dim,), ())`` and ``log_prob: (n_dim,) -> ()`` (no compile).

    Args:
        model: the model.
        params: its params.
        key: PRNG key.

    Returns:
        ``n_dim``, read from the sample's shape.
    """
    check = "shapes"
    x, log_q = jax.eval_shape(model.sample_and_log_prob, params, key)
    require(x.ndim == 1, check, f"a sample has shape {x.shape}; expected one event (n_dim,)")
    require(log_q.shape == (), check, f"log_q of a sample has shape {log_q.shape}; expected ()")
    log_prob = jax.eval_shape(model.log_prob, params, jnp.zeros(x.shape, x.dtype))
    require(log_prob.shape == (), check, f"log_prob has shape {log_prob.shape}; expected ()")
    if jnp.issubdtype(x.dtype, jnp.floating):
        require(
            log_prob.dtype == x.dtype,
            check,
            f"log_prob of a {x.dtype} event is {log_prob.dtype}; expected {x.dtype}",
        )
    return x.shape[0]


def check_model_sample_and_log_prob_agree(
    model: AbstractGlobalModel,
    params: ModelParams,
    key: PRNGKey,
    n_samples: int = 4096,
    rtol: float = 1e-4,
    atol: float = 1e-3,
) -> tuple[Array, Array]:
    """``log_q`` returned with each draw equals ``log_prob`` at that draw (vmapped, jitted).

    Args:
        model: the model.
        params: its params.
        key: PRNG key; draw ``i`` uses ``jax.random.split(key, n_samples)[i]``.
        n_samples: number of draws.
        rtol: relative tolerance.
        atol: absolute tolerance.

    Returns:
        The draws ``(n_samples, n_dim)`` and their ``log_q`` ``(n_samples,)``.
    """
    check = "sample_and_log_prob_agree"
    x, log_q = batched_sample(model, params, key, n_samples)
    log_prob = batched_log_prob(model, params, x)
    n_bad = int(jnp.sum(~jnp.isfinite(log_q)))
    require(n_bad == 0, check, f"{n_bad} of {n_samples} draws have a non-finite log_q")
    require_close(
        check, "log_q from sample_and_log_prob vs log_prob", log_q, log_prob, rtol=rtol, atol=atol
    )
    return x, log_q


def check_model_normalized_2d(
    model: AbstractGlobalModel,
    params: ModelParams,
    lower: ArrayLike,
    upper: ArrayLike,
    n_grid: int = 400,
    atol: float = 1e-2,
) -> float:
    """``exp(log_prob)`` of a 2-D continuous model integrates to 1 over a box (midpoint rule).

    Choose the box large enough that the mass outside it is below ``atol`` (e.g. the data
    mean plus or minus ten standard deviations).

    Args:
        model: a continuous model with ``n_dim = 2``.
        params: its params.
        lower: ``(2,)`` lower corner of the box.
        upper: ``(2,)`` upper corner of the box.
        n_grid: midpoints per axis.
        atol: tolerance on the integral.

    Returns:
        The integral.
    """
    check = "normalized"
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    cell = (upper - lower) / n_grid
    axes = [lower[i] + cell[i] * (np.arange(n_grid) + 0.5) for i in range(2)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    grid = jnp.asarray(grid, dtype=jnp.result_type(float))
    log_q = np.asarray(batched_log_prob(model, params, grid), dtype=np.float64)
    n_bad = int(np.sum(~np.isfinite(log_q)))
    require(n_bad == 0, check, f"log_prob is not finite at {n_bad} of {log_q.size} grid points")
    integral = float(np.sum(np.exp(log_q)) * np.prod(cell))
    require(
        abs(integral - 1.0) <= atol,
        check,
        f"exp(log_prob) integrates to {integral:.5f} over the box {lower.tolist()} to "
        f"{upper.tolist()}; expected 1 within {atol}",
    )
    return integral


def check_model_jit_vmap_grad(
    model: AbstractGlobalModel, params: ModelParams, xs: ArrayLike, key: PRNGKey
) -> None:
    """The model works per event and under ``jit(vmap)``, and has finite, non-zero gradients.

    Checks: jitted+vmapped ``log_prob`` equals the jitted per-event value; ``sample_and_log_prob``
    vmaps over keys; ``grad`` of ``-mean log_prob`` w.r.t. ``params.trainable`` has the
    trainable tree's structure and shapes, is finite, and is not identically zero.

    Args:
        model: the model.
        params: its params (ideally not at initialisation).
        xs: ``(n_events, n_dim)`` events with finite density (a few are enough).
        key: PRNG key.
    """
    check = "jit_vmap_grad"
    xs = jnp.asarray(xs)
    batched = batched_log_prob(model, params, xs)
    single = jax.jit(model.log_prob)
    one_by_one = jnp.stack([single(params, x) for x in xs[:3]])
    require_close(
        check, "vmapped vs per-event log_prob", batched[:3], one_by_one, rtol=1e-5, atol=1e-4
    )
    samples, log_q = batched_sample(model, params, key, 4)
    require(
        samples.shape[0] == 4 and log_q.shape == (4,),
        check,
        f"vmapped sample_and_log_prob over 4 keys gave shapes {samples.shape}, {log_q.shape}",
    )

    def loss(trainable: PyTree) -> Array:
        log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(
            ModelParams(trainable, params.frozen), xs
        )
        return -jnp.mean(log_q)

    grads = jax.jit(jax.grad(loss))(params.trainable)
    require(
        jax.tree.structure(grads) == jax.tree.structure(params.trainable),
        check,
        "the gradient's tree differs from params.trainable's",
    )
    for grad, leaf in zip(jax.tree.leaves(grads), jax.tree.leaves(params.trainable), strict=True):
        require(
            grad.shape == leaf.shape,
            check,
            f"a gradient has shape {grad.shape}; its parameter has {leaf.shape}",
        )
        require(bool(jnp.all(jnp.isfinite(grad))), check, "a gradient of the loss is not finite")
    require(
        any(bool(jnp.any(grad != 0)) for grad in jax.tree.leaves(grads)),
        check,
        "every gradient of -mean log_prob w.r.t. params.trainable is zero",
    )


def check_model_change_of_variables(
    model: Any,
    params: ModelParams,
    xs: ArrayLike,
    atol: float = 1e-3,
    rtol: float = 1e-4,
) -> None:
    """Bijective models: round trip and log-determinants against autodiff Jacobians.

    For each event ``x``, with ``(z, ld) = model.inverse_and_log_det(params, x)``:
    ``ld == log|det dz/dx|`` from ``jax.jacfwd``; ``log_prob(x) == log N(z; 0, I) + log|det
    dz/dx|`` (the change of variables); ``forward_and_log_det(z)`` returns ``x`` and ``-ld``,
    and its log-determinant equals ``log|det dx/dz|`` from ``jax.jacfwd``.

    Args:
        model: a continuous model with ``inverse_and_log_det(params, x) -> (z, ld)`` and
            ``forward_and_log_det(params, z) -> (x, ld)`` for one event.
        params: its params.
        xs: ``(n_events, n_dim)`` events.
        atol: absolute tolerance.
        rtol: relative tolerance.
    """
    check = "change_of_variables"
    xs = jnp.asarray(xs)

    def per_event(params: ModelParams, x: Array) -> tuple[Array, ...]:
        z, inverse_log_det = model.inverse_and_log_det(params, x)
        jac_inverse = jax.jacfwd(lambda x: model.inverse_and_log_det(params, x)[0])(x)
        x_back, forward_log_det = model.forward_and_log_det(params, z)
        jac_forward = jax.jacfwd(lambda z: model.forward_and_log_det(params, z)[0])(z)
        return (
            z,
            inverse_log_det,
            jnp.linalg.slogdet(jac_inverse)[1],
            x_back,
            forward_log_det,
            jnp.linalg.slogdet(jac_forward)[1],
            model.log_prob(params, x),
        )

    z, inverse_ld, jac_inverse_ld, x_back, forward_ld, jac_forward_ld, log_prob = jax.jit(
        jax.vmap(per_event, in_axes=(None, 0))
    )(params, xs)
    tol = dict(rtol=rtol, atol=atol)
    require_close(check, "forward(inverse(x)) vs x (round trip)", x_back, xs, **tol)
    require_close(
        check, "inverse log-det vs log|det dz/dx| of jacfwd", inverse_ld, jac_inverse_ld, **tol
    )
    require_close(
        check, "forward log-det vs log|det dx/dz| of jacfwd", forward_ld, jac_forward_ld, **tol
    )
    require_close(check, "forward log-det vs -inverse log-det", forward_ld, -inverse_ld, **tol)
    require_close(
        check,
        "log_prob(x) vs log N(z) + log|det dz/dx|",
        log_prob,
        standard_normal_log_prob(z) + jac_inverse_ld,
        **tol,
    )


def check_model_identity_at_init(
    model: AbstractGlobalModel,
    key: PRNGKey,
    data: ArrayLike | None = None,
    n_samples: int = 4096,
    atol: float = 1e-4,
    n_dim: int | None = None,
) -> None:
    """Continuous flows: a fresh model is N(0, I), and N(mean, C) prepared on data.

    The second part (only when ``data`` is given) is for flows whose ``prepare`` standardises
    the data: ``C`` is the data's covariance (ddof 0) for a model with ``whiten=True`` (the
    built-in flows' default) and its diagonal ``diag(std^2)`` otherwise, both computed with
    numpy; the sample mean and standard deviation of the prepared fresh model must match the
    data's within five Monte Carlo standard errors.

    Args:
        model: a continuous model whose fresh params are the identity flow.
        key: PRNG key.
        data: ``(n_examples, n_dim)`` training data with non-degenerate columns, or None to
            check only the fresh model.
        n_samples: draws for the moment check, and number of points for the density check.
        atol: tolerance on log densities.
        n_dim: dimension when ``data`` is None (default 2).
    """
    check = "identity_at_init"
    if data is not None:
        data = np.asarray(data)
        n_dim = data.shape[1]
        mean, std = data.mean(axis=0), data.std(axis=0)
        dtype = data.dtype
    else:
        n_dim = 2 if n_dim is None else n_dim
        mean, std = np.zeros(n_dim), np.ones(n_dim)
        dtype = jnp.result_type(float)
    key_init, key_points, key_sample = jax.random.split(key, 3)
    params = model.init(key_init, n_dim)
    points = mean + std * 2.0 * np.asarray(jax.random.normal(key_points, (n_samples, n_dim)))
    points = jnp.asarray(points.astype(dtype))
    require_close(
        check,
        "log_prob of a fresh model vs log N(x; 0, I)",
        batched_log_prob(model, params, points),
        standard_normal_log_prob(points),
        rtol=1e-5,
        atol=atol,
    )
    if data is None:
        return
    prepared = model.prepare(params, jnp.asarray(data))
    if getattr(model, "whiten", False):
        cholesky = np.linalg.cholesky(np.cov(data.T.astype(np.float64), bias=True))
        whitened = np.linalg.solve(cholesky, (np.asarray(points, np.float64) - mean).T).T
        expected = standard_normal_log_prob(whitened) - np.sum(np.log(np.diag(cholesky)))
        form = "log N(x; mean, covariance)"
    else:
        expected = standard_normal_log_prob((points - mean) / std) - np.sum(np.log(std))
        form = "log N(x; mean, std^2)"
    require_close(
        check,
        f"log_prob of a fresh model prepared on data vs {form}",
        batched_log_prob(model, prepared, points),
        expected,
        rtol=1e-5,
        atol=atol,
    )
    samples = np.asarray(batched_sample(model, prepared, key_sample, n_samples)[0], np.float64)
    z_mean = (samples.mean(axis=0) - mean) / (std / np.sqrt(n_samples))
    z_std = (samples.std(axis=0) - std) / (std / np.sqrt(2 * n_samples))
    require(
        np.all(np.abs(z_mean) < 5) and np.all(np.abs(z_std) < 5),
        check,
        f"draws of the prepared fresh model have mean {samples.mean(axis=0)} and std "
        f"{samples.std(axis=0)}; the data's are {mean} and {std} (z = {z_mean}, {z_std})",
    )


class FitResult(NamedTuple):
    """What `check_model_fit_decreases_loss` measured.

    Attributes:
        initial_loss: ``-mean log_prob(data)`` at the starting params.
        final_loss: the same after the fit.
        params: the fitted params (``frozen`` unchanged).
    """

    initial_loss: float
    final_loss: float
    params: ModelParams


@cache_per_config
def _fitter(
    model: AbstractGlobalModel, n_steps: int, learning_rate: float
) -> Callable[[PyTree, PyTree, Array], tuple[PyTree, Array, Array]]:
    """A jitted full-batch Adam fit of ``-mean log_prob(data)``, cached per model."""
    import optax

    optimizer = optax.adam(learning_rate)

    def loss(trainable: PyTree, frozen: PyTree, data: Array) -> Array:
        log_q = jax.vmap(model.log_prob, in_axes=(None, 0))(ModelParams(trainable, frozen), data)
        return -jnp.mean(log_q)

    @jax.jit
    def fit(trainable: PyTree, frozen: PyTree, data: Array) -> tuple[PyTree, Array, Array]:
        def step(carry: tuple[PyTree, PyTree], _: None) -> tuple[tuple[PyTree, PyTree], Array]:
            trainable, opt_state = carry
            value, grads = jax.value_and_grad(loss)(trainable, frozen, data)
            updates, opt_state = optimizer.update(grads, opt_state, trainable)
            return (optax.apply_updates(trainable, updates), opt_state), value

        carry = (trainable, optimizer.init(trainable))
        (fitted, _), _ = jax.lax.scan(step, carry, None, length=n_steps)
        return fitted, loss(trainable, frozen, data), loss(fitted, frozen, data)

    return fit


def check_model_fit_decreases_loss(
    model: AbstractGlobalModel,
    params: ModelParams,
    data: ArrayLike,
    n_steps: int = 300,
    learning_rate: float = 3e-3,
    min_decrease: float = 0.3,
) -> FitResult:
    """Full-batch maximum likelihood with Adam lowers ``-mean log_prob(data)`` (sanity only).

    ``params`` are used as given (call ``prepare`` first if the model needs it).

    Args:
        model: the model.
        params: starting params.
        data: ``(n_examples, n_dim)`` training data.
        n_steps: Adam steps (scanned inside one jit).
        learning_rate: Adam learning rate.
        min_decrease: required decrease of the loss, in nats.

    Returns:
        The `FitResult`: initial and final loss, and the fitted params.
    """
    check = "fit_decreases_loss"
    fit = _fitter(model, n_steps, learning_rate)
    trainable, initial, final = fit(params.trainable, params.frozen, jnp.asarray(data))
    initial, final = float(initial), float(final)
    require(np.isfinite(initial), check, f"the loss at the starting params is {initial}")
    require(np.isfinite(final), check, f"the loss after {n_steps} Adam steps is {final}")
    require(
        initial - final >= min_decrease,
        check,
        f"{n_steps} Adam steps took -mean log_prob(data) from {initial:.4f} to {final:.4f}; "
        f"expected a decrease of at least {min_decrease}",
    )
    return FitResult(initial, final, ModelParams(trainable, params.frozen))
