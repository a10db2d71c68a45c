"""Driving a prepared run: the Python loop over loops, its timing, progress and discard policy.

Each loop calls the compiled programs (local phase, global phase, training), brings the
loop's draws and statistics to the host as a `LoopOutput`, keeps the model's update only if
training stayed finite, and hands the loop to the checkpoint (if any) and the progress bar.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import jax.numpy as jnp
import numpy as np

from flowmc_like import schedule
from flowmc_like.compiler import PreparedRun
from flowmc_like.config import SamplerConfig
from flowmc_like.diagnostics import diagnose
from flowmc_like.exporters.arviz import pareto_k
from flowmc_like.programs import LoopState
from flowmc_like.records import LoopOutput, LoopRecord, RunProgress, loop_output
from flowmc_like.result import SamplerResult, assemble_result
from flowmc_like.training import variational

__all__ = ["LoopObserver", "drive", "pretrain", "run_loops"]

logger = logging.getLogger(__name__)


class LoopObserver(Protocol):
    """What `run_loops` tells after every loop (`flowmc_like.checkpoint.run.RunCheckpoint`)."""

    def loop_done(
        self, loop_index: int, output: LoopOutput, state: LoopState, progress: RunProgress
    ) -> None:
        """Loop ``loop_index`` finished with ``output``; the next one starts from ``state``."""


def drive(
    prepared: PreparedRun,
    config: SamplerConfig,
    state: LoopState,
    progress: RunProgress,
    observer: LoopObserver | None,
    constrain: Callable[[Any], dict[str, np.ndarray]] | None,
    start: float,
) -> SamplerResult:
    """Run the remaining loops (`run_loops`) and assemble the `SamplerResult`.

    Args:
        prepared: the compiled run.
        config: the run's settings.
        state: the state the next loop starts from.
        progress: the loops finished so far (none for a new run).
        observer: told of every finished loop (the checkpoint), or None.
        constrain: the PPL model's map to constrained values, or None.
        start: ``time.perf_counter()`` when this session of the run started.
    """
    state = run_loops(prepared, config, state, progress, observer)
    layout = prepared.layout
    model_params = None if state.train_state is None else state.train_state.params
    production = [output for output in progress.outputs if not output.record.is_training]
    verdict = diagnose(
        config,
        [output.record for output in progress.outputs],
        np.concatenate([output.trace.position for output in production], axis=1),
        has_global=prepared.programs.global_ is not None,
        diverging=np.concatenate([output.trace.diverging for output in production], axis=1),
        is_local=np.concatenate([~output.is_global for output in production]),
    )
    verdict = dataclasses.replace(verdict, choices=tuple(progress.choices))
    for message in verdict.warnings:
        warnings.warn(message, RuntimeWarning, stacklevel=4)
    return assemble_result(
        outputs=progress.outputs,
        spec=prepared.spec,
        constrain=constrain,
        kernel_params=layout.to_host(state.frozen_params),
        model_params=None if model_params is None else layout.to_host(model_params),
        timings={
            "compile": prepared.compile_seconds,
            "training": progress.seconds["training"],
            "production": progress.seconds["production"],
            "variational": progress.seconds.get("variational", 0.0),
            "total": progress.seconds["previous_total"] + time.perf_counter() - start,
        },
        diagnostics=verdict,
    )


def run_loops(
    prepared: PreparedRun,
    config: SamplerConfig,
    state: LoopState,
    progress: RunProgress,
    observer: LoopObserver | None = None,
) -> LoopState:
    """Run the loops from ``progress.n_done`` until the schedule ends the run.

    Training loops adapt the kernel and train the model until `schedule.training_decision`
    ends training; at the first production loop the kernel's adapted params are frozen;
    production runs until `schedule.production_decision` ends the run. Each loop's record
    says what was decided and why. A training update whose loss or parameters are not
    finite is discarded (the previous model is kept, a warning is logged, and
    `LoopRecord.training_discarded` says so).

    Returns:
        The state after the last loop.
    """
    layout = prepared.layout
    has_global = prepared.programs.global_ is not None
    if progress.n_done == 0:
        progress.choices.extend(prepared.choices)
    if progress.n_done == 0 and prepared.variational.max_steps > 0:
        state = pretrain(prepared, state, progress)
    bar = _progress_bar(config, progress.n_done)
    try:
        while not _is_run_over(progress):
            loop_start = time.perf_counter()
            records = [output.record for output in progress.outputs]
            is_training = not any(record.ends_phase for record in records)
            if not is_training and all(record.is_training for record in records):
                state = state._replace(
                    frozen_params=state.final_params,
                    is_adapting=layout.put(np.asarray(False), layout.replicated),
                )
            warm = prepared.warm_start
            in_latent, switches = schedule.latent_decision(
                prepared.latent_mode,
                records,
                is_training,
                starts_latent=warm is not None and warm.in_latent_space,
            )
            if switches:
                logger.info(
                    "loop %d: the local kernel moves to the flow's latent space from now on "
                    "(the flow has trained; its adaptation restarts)",
                    progress.n_done,
                )
            state, output = _run_one_loop(
                prepared, config, state, progress.n_done, is_training, (in_latent, switches)
            )
            warm_acceptance = None if warm is None else warm.global_acceptance
            output = _decide(config, progress, output, has_global, warm_acceptance)
            logger.info("loop %d: %s", progress.n_done, output.record.decision)
            progress.add(output, time.perf_counter() - loop_start)
            if observer is not None:
                observer.loop_done(progress.n_done - 1, output, state, progress)
            _update_progress(bar, output.record)
    finally:
        if bar is not None:
            bar.close()
    n_discarded = progress.n_training_discarded
    if n_discarded:
        n_training = sum(output.record.is_training for output in progress.outputs)
        warnings.warn(
            f"{n_discarded} of {n_training} training loops produced a "
            "non-finite loss or model parameters; their updates were discarded and the "
            "last good model kept (see result.history.training_discarded)",
            RuntimeWarning,
            stacklevel=5,
        )
    return state


def pretrain(prepared: PreparedRun, state: LoopState, progress: RunProgress) -> LoopState:
    """Variational pre-training of the model before the first loop (`prepared.variational`).

    Chunks of `variational.CHUNK_STEPS` reverse-KL steps, ``beta`` annealed to 1; an
    automatic plan stops when `variational.is_variational_done` says so. A chunk whose
    estimate or parameters are not finite is discarded and pre-training stops with the
    last good model. The time counts as training; what was done goes to
    ``progress.choices``.
    """
    plan, layout = prepared.variational, prepared.layout
    start = time.perf_counter()
    key_data = layout.put(prepared.loop_keys[0][3], layout.replicated)
    train_state, acceptances, n_done, reason = state.train_state, [], 0, ""
    while n_done < plan.max_steps:
        betas = variational.annealing_betas(n_done, variational.CHUNK_STEPS, plan.n_anneal)
        betas = betas.astype(jnp.result_type(float))
        inputs = layout.put((np.int32(n_done // variational.CHUNK_STEPS), betas), layout.replicated)
        new_state, chunk, is_finite = prepared.programs.variational(
            key_data, *inputs[:1], train_state, inputs[1], prepared.data
        )
        if not bool(layout.to_host(is_finite)):
            reason = "a step's estimate or parameters were not finite (its chunk discarded)"
            logger.warning("variational pre-training stopped: %s", reason)
            break
        train_state, n_done = new_state, n_done + variational.CHUNK_STEPS
        acceptances.append(float(layout.to_host(chunk.acceptance)))
        logger.info(
            "variational pre-training: %d steps, acceptance between the model's draws %.3f",
            n_done,
            acceptances[-1],
        )
        if plan.is_automatic:
            is_done, reason = variational.is_variational_done(n_done, acceptances, plan.n_anneal)
            if is_done:
                break
    restarted = n_done > 0
    if restarted:  # the chains start where the model puts its mass, not at the given starts
        states = prepared.programs.restart(key_data, train_state.params, prepared.data)
        state = state._replace(states=states)
    seconds = time.perf_counter() - start
    progress.seconds["training"] += seconds
    progress.seconds["variational"] = progress.seconds.get("variational", 0.0) + seconds
    reached = f"{acceptances[-1]:.2f}" if acceptances else "nan"
    why = f" ({reason})" if reason else ""
    progress.choices.append(
        f"variational pre-training: {n_done} reverse-KL steps, the target annealed over "
        f"{min(plan.n_anneal, n_done)}, acceptance between its own draws {reached}{why}, "
        f"{seconds:.1f} s" + ("; the chains restarted at its draws" if restarted else "")
    )
    return state._replace(train_state=train_state)


def _is_run_over(progress: RunProgress) -> bool:
    """The run is over once a production loop ended its phase."""
    return any(
        output.record.ends_phase and not output.record.is_training for output in progress.outputs
    )


def _decide(
    config: SamplerConfig,
    progress: RunProgress,
    output: LoopOutput,
    has_global: bool,
    warm_acceptance: float | None = None,
) -> LoopOutput:
    """``output`` with the schedule's decision (and any convergence check) in its record."""
    record = output.record
    if has_global:
        outputs = [*progress.outputs, output]
        same_phase = [done for done in outputs if done.record.is_training == record.is_training]
        # training: the last few loops (the model changes; fewer for a warm start, whose
        # first loop proposes from the earlier target's model); production: all (it is fixed)
        n_recent = schedule.PLATEAU_LOOPS if warm_acceptance is None else schedule.WARM_RECENT_LOOPS
        n_pooled = n_recent if record.is_training else len(same_phase)
        recent = [done.log_weight for done in same_phase[-n_pooled:]]
        record = dataclasses.replace(record, pareto_k=pareto_k(np.stack(recent)))
        output = output._replace(record=record)
    outputs = [*progress.outputs, output]
    if record.is_training:
        records = [done.record for done in outputs]
        decision = schedule.training_decision(config, records, has_global, warm_acceptance)
        return output._replace(
            record=dataclasses.replace(
                record, decision=decision.reason, ends_phase=decision.ends_phase
            )
        )
    production = [done for done in outputs if not done.record.is_training]
    checked = None
    if schedule.is_check_due(config, [done.record for done in production]):
        draws = np.concatenate([done.trace.position for done in production], axis=1)
        checked = schedule.convergence(draws)
        record = dataclasses.replace(record, min_ess=checked.min_ess, max_rhat=checked.max_rhat)
    decision = schedule.production_decision(config, len(production), checked)
    return output._replace(
        record=dataclasses.replace(record, decision=decision.reason, ends_phase=decision.ends_phase)
    )


def _run_one_loop(
    prepared: PreparedRun,
    config: SamplerConfig,
    state: LoopState,
    loop_index: int,
    is_training: bool,
    latent: tuple[bool, bool],
) -> tuple[LoopState, LoopOutput]:
    """One loop: local phase, global phase, training; the new state and the loop's output.

    ``latent`` is ``(in_latent, switches)`` of `schedule.latent_decision`.
    """
    programs, layout, data = prepared.programs, prepared.layout, prepared.data
    loop_keys = prepared.loop_keys[loop_index]  # local, global, select, train
    key_local, key_global, key_train = layout.put(
        (loop_keys[0], loop_keys[1], loop_keys[2:]), layout.replicated
    )
    train_state = state.train_state
    latent_params = train_state.params if prepared.latent_mode != "x" else None
    in_latent, restart = layout.put(
        (np.asarray(latent[0]), np.asarray(latent[1])), layout.replicated
    )
    local_outputs = programs.local(
        key_local,
        state.states,
        state.tempering,
        state.adapt_state,
        state.frozen_params,
        state.is_adapting,
        latent_params,
        in_latent,
        restart,
        data,
    )
    states, tempering, adapt_state, local_trace, local_summary, step_size, final_params = (
        local_outputs[:7]
    )
    exchange, hot = local_outputs[7:]
    buffer = state.buffer
    global_trace = global_summary = losses = is_finite = new_state = None
    if programs.global_ is not None:
        states, global_trace, global_summary = programs.global_(
            key_global, states, train_state.params, data
        )
        if is_training:
            betas = None if tempering is None else tempering.betas
            buffer, new_state, losses, is_finite = programs.train(
                key_train,
                train_state,
                buffer,
                local_trace.position,
                global_trace.position,
                hot,
                betas,
                data,
            )
    traces = [trace for trace in (local_trace, global_trace) if trace is not None]
    host = layout.to_host(
        (traces, local_summary, global_summary, losses, is_finite, step_size, exchange)
    )
    traces, local_summary, global_summary, losses, is_finite, step_size, exchange = host
    discarded = False
    if losses is not None:
        if bool(is_finite):
            train_state = new_state
        else:
            discarded = True
            logger.warning(
                "training loop %d produced a non-finite loss or parameters; "
                "its update was discarded and the previous model kept",
                loop_index,
            )
    state = state._replace(
        states=states,
        adapt_state=adapt_state,
        train_state=train_state,
        buffer=buffer,
        final_params=final_params,
        tempering=tempering,
    )
    output = loop_output(
        traces,
        local_summary,
        global_summary,
        losses,
        float(np.asarray(step_size)),
        is_training=is_training,
        discarded=discarded,
        n_epochs=config.n_epochs,
        n_kept_local=config.n_kept_local,
        has_local_steps=config.n_local_steps > 0,
        in_latent_space=latent[0],
        exchange=exchange,
    )
    return state, output


def _progress_bar(config: SamplerConfig, initial: int = 0) -> Any:
    """A tqdm bar over loops; its total is known only when both counts are set."""
    if not config.progress_bar:
        return None
    from tqdm.auto import tqdm

    is_fixed = config.n_training_loops is not None and config.n_production_loops is not None
    total = config.n_loops_cap if is_fixed else None
    return tqdm(total=total, initial=initial, desc="flowmc_like", unit="loop")


def _update_progress(bar: Any, record: LoopRecord) -> None:
    if bar is None:
        return
    postfix = {
        "phase": "training" if record.is_training else "production",
        "local_acc": f"{record.local_acceptance:.2f}",
        "global_acc": f"{record.global_acceptance:.2f}",
    }
    if record.is_training and np.isfinite(record.loss[-1]):
        postfix["loss"] = f"{record.loss[-1]:.3f}"
    if record.exchange_rate.size:
        postfix["exchange"] = f"{np.nanmin(record.exchange_rate):.2f}"
        postfix["round_trips"] = str(record.round_trips)
    if np.isfinite(record.min_ess):
        postfix["min_ess"] = f"{record.min_ess:.0f}"
        postfix["max_rhat"] = f"{record.max_rhat:.3f}"
    bar.set_postfix(postfix, refresh=False)
    bar.update(1)
