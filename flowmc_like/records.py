"""What one loop leaves on the host: a typed record, its draws, and the run's `History`.

`LoopRecord` is the one place a per-loop statistic is defined. The progress bar, the
checkpoint's loop files and `History` all read its fields by name, so a new statistic is a
new field here (and in `History`) plus the line of `loop_output` that computes it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from flowmc_like.phases import PhaseSummary, Trace
from flowmc_like.tempering import ExchangeSummary

__all__ = ["History", "LoopOutput", "LoopRecord", "RunProgress", "loop_output"]


@dataclasses.dataclass(frozen=True)
class LoopRecord:
    """The statistics of one finished loop (host values, not arrays of the device).

    Attributes:
        is_training: whether the loop trained the model and adapted the kernel.
        loss: ``(n_epochs,)`` mean training loss per epoch (NaN where nothing was trained).
        local_acceptance: mean local acceptance probability over chains and steps.
        global_acceptance: mean global acceptance probability (NaN without global moves).
        step_size: the kernel's step size (or scale) in the loop's last step (NaN if none).
        training_discarded: the training update was non-finite and the model was kept.
        local_nonfinite: local proposals rejected for a non-finite value, over all chains.
        global_nonfinite: the same for global proposals.
        min_ess: the smallest bulk ESS over coordinates of all production draws so far,
            where the run checked convergence after this loop (NaN elsewhere).
        max_rhat: the largest R-hat over coordinates at that check (NaN elsewhere).
        decision: what the run decided after this loop, and why (`flowmc_like.schedule`).
        ends_phase: this loop was the last training loop, or the last loop of the run.
        in_latent_space: the loop's local kernel ran in the flow's latent space.
        pareto_k: ArviZ's Pareto k-hat of the importance weights ``p(x') / q(x')`` of the
            global proposals of this loop and the ones before it in its phase (in training
            up to ``schedule.PLATEAU_LOOPS`` loops, in production all; NaN without global
            moves): above 0.7 the model
            misses mass of the target somewhere (too light a tail, a mode it under-covers).
        exchange_rate: ``(K - 1,)`` with tempering, the mean acceptance probability of
            exchanges between each pair of neighbouring temperature levels in the loop's
            local phase (empty without tempering).
        ladder: ``(K,)`` the inverse temperatures after the loop (empty without tempering).
        round_trips: replica round trips (coldest -> hottest -> coldest level) completed in
            the loop (0 without tempering).
    """

    is_training: bool
    loss: np.ndarray
    local_acceptance: float
    global_acceptance: float
    step_size: float
    training_discarded: bool
    local_nonfinite: int
    global_nonfinite: int
    min_ess: float = float("nan")
    max_rhat: float = float("nan")
    decision: str = ""
    ends_phase: bool = False
    in_latent_space: bool = False
    pareto_k: float = float("nan")
    exchange_rate: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    ladder: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    round_trips: int = 0

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """``{name: type}`` of each field (``np.ndarray`` for arrays)."""
        hints = typing.get_type_hints(cls)
        return {field.name: hints[field.name] for field in dataclasses.fields(cls)}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fields as numpy arrays (how a checkpoint's loop file stores them)."""
        return {name: np.asarray(getattr(self, name)) for name in self.field_types()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LoopRecord:
        """Inverse of `to_arrays`: each field converted back to its declared type."""
        values = {}
        for name, kind in cls.field_types().items():
            values[name] = np.asarray(arrays[name]) if kind is np.ndarray else kind(arrays[name])
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class History:
    """Per-loop record of a run, training loops first, then production loops.

    Attributes:
        is_training: ``(n_loops,)`` bool, true for training loops.
        loss: ``(n_loops, n_epochs)`` mean training loss per epoch (NaN where nothing was
            trained: production loops, local-only runs, discarded updates keep their losses).
        local_acceptance: ``(n_loops,)`` mean local acceptance probability over chains and steps.
        global_acceptance: ``(n_loops,)`` mean global acceptance probability (NaN if no model).
        step_size: ``(n_loops,)`` the kernel's step size (or scale) used in that loop's last step.
        training_discarded: ``(n_loops,)`` bool, true where the training update was non-finite
            and the previous model was kept.
        local_nonfinite: ``(n_loops,)`` int, local proposals (over all chains) rejected
            because the target's log density, or the move's log ratio, was NaN or infinite.
        global_nonfinite: ``(n_loops,)`` int, the same for global proposals (a NaN or
            infinite target or model density).
        min_ess: ``(n_loops,)`` the smallest bulk ESS over coordinates of the production
            draws so far, where the run checked convergence after that loop (NaN elsewhere).
        max_rhat: ``(n_loops,)`` the largest R-hat over coordinates at those checks.
        decision: ``(n_loops,)`` str, what the run decided after each loop and why (e.g.
            ``"training ends: global acceptance levelled off (0.61 -> 0.62 ...)"``).
        ends_phase: ``(n_loops,)`` bool, true for the last training loop and the last loop.
        in_latent_space: ``(n_loops,)`` bool, true where the local kernel ran in the flow's
            latent space (set, or chosen by the run once the flow had trained).
        pareto_k: ``(n_loops,)`` Pareto k-hat of the importance weights of the global
            proposals of each loop and the few before it in its phase (NaN without global
            moves); above 0.7 the model misses target mass.
        exchange_rate: ``(n_loops, K - 1)`` with ``n_temperatures = K > 1``, the mean
            exchange acceptance probability of each pair of neighbouring temperature levels
            (``(n_loops, 0)`` without tempering).
        ladder: ``(n_loops, K)`` the inverse temperatures after each loop (adapted in
            training, fixed in production).
        round_trips: ``(n_loops,)`` replica round trips between the coldest and hottest
            levels completed in each loop.
    """

    is_training: np.ndarray
    loss: np.ndarray
    local_acceptance: np.ndarray
    global_acceptance: np.ndarray
    step_size: np.ndarray
    training_discarded: np.ndarray
    local_nonfinite: np.ndarray
    global_nonfinite: np.ndarray
    min_ess: np.ndarray
    max_rhat: np.ndarray
    decision: np.ndarray
    ends_phase: np.ndarray
    in_latent_space: np.ndarray
    pareto_k: np.ndarray
    exchange_rate: np.ndarray
    ladder: np.ndarray
    round_trips: np.ndarray

    @classmethod
    def from_records(cls, records: Sequence[LoopRecord]) -> History:
        """Stack one `LoopRecord` per loop into per-loop arrays (integers as int64)."""
        dtypes = {bool: bool, float: np.float64, int: np.int64, str: np.str_, np.ndarray: None}
        types = LoopRecord.field_types()
        return cls(
            **{
                field.name: np.array(
                    [getattr(record, field.name) for record in records],
                    dtype=dtypes[types[field.name]],
                )
                for field in dataclasses.fields(cls)
            }
        )

    @property
    def n_training_discarded(self) -> int:
        """How many training loops had their update discarded."""
        return int(np.sum(self.training_discarded))

    @property
    def n_nonfinite_rejected(self) -> int:
        """How many proposals, local and global, were rejected for a non-finite value."""
        return int(np.sum(self.local_nonfinite) + np.sum(self.global_nonfinite))

    def as_dict(self) -> dict[str, np.ndarray]:
        """The fields as a plain dict of numpy arrays."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


class LoopOutput(NamedTuple):
    """One finished loop on the host: its kept draws, acceptances and record.

    Attributes:
        trace: the local then global draws, ``(n_chains, n_kept, ...)``.
        is_global: ``(n_kept,)`` bool, which draws the global phase produced.
        local_acceptance: ``(n_chains,)`` mean local acceptance (NaN without local steps).
        global_acceptance: ``(n_chains,)`` mean global acceptance (NaN without global moves).
        record: the loop's `LoopRecord`.
        log_weight: ``(n_chains, n_global_steps // thinning)`` log importance weights of
            the global proposals (``(n_chains, 0)`` without global moves).
    """

    trace: Trace
    is_global: np.ndarray
    local_acceptance: np.ndarray
    global_acceptance: np.ndarray
    record: LoopRecord
    log_weight: np.ndarray

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Named arrays (one loop file of a checkpoint)."""
        arrays = {f"trace_{name}": np.asarray(v) for name, v in self.trace._asdict().items()}
        arrays.update(
            is_global=self.is_global,
            chain_local_acceptance=np.asarray(self.local_acceptance),
            chain_global_acceptance=np.asarray(self.global_acceptance),
            log_weight=np.asarray(self.log_weight),
        )
        arrays.update({f"record_{name}": v for name, v in self.record.to_arrays().items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LoopOutput:
        """Inverse of `to_arrays`."""
        prefix = "record_"
        record = {name[len(prefix) :]: v for name, v in arrays.items() if name.startswith(prefix)}
        return cls(
            Trace(*(_trace_field(arrays, name) for name in Trace._fields)),
            arrays["is_global"],
            arrays["chain_local_acceptance"],
            arrays["chain_global_acceptance"],
            LoopRecord.from_arrays(record),
            arrays["log_weight"],
        )


def _trace_field(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A `Trace` field of a loop file; a per-draw statistic a file predates is missing.

    A missing statistic (``step_size``, ``energy``, ``log_q``: NaN; ``diverging``: false)
    keeps loop files written before it existed readable.
    """
    if f"trace_{name}" in arrays:
        return arrays[f"trace_{name}"]
    shape = arrays["trace_log_prob"].shape
    return np.zeros(shape, bool) if name == "diverging" else np.full(shape, np.nan)


def loop_output(
    traces: Sequence[Trace],
    local_summary: PhaseSummary,
    global_summary: PhaseSummary | None,
    losses: np.ndarray | None,
    step_size: float,
    *,
    is_training: bool,
    discarded: bool,
    n_epochs: int,
    n_kept_local: int,
    has_local_steps: bool,
    in_latent_space: bool = False,
    exchange: ExchangeSummary | None = None,
) -> LoopOutput:
    """One loop's host arrays as a `LoopOutput` with its `LoopRecord`.

    Args:
        traces: the local phase's trace, then the global phase's if there was one.
        local_summary: per-chain statistics of the local phase.
        global_summary: those of the global phase, or None.
        losses: ``(n_epochs,)`` training losses, or None when the loop did not train.
        step_size: the kernel's step size in the loop's last local step.
        is_training: the loop trained the model.
        discarded: its training update was discarded.
        n_epochs: epochs per training loop (the width of ``loss``).
        n_kept_local: local draws kept per chain (the first draws of the trace).
        has_local_steps: the run takes local steps (``n_local_steps > 0``).
        in_latent_space: the local kernel ran in the flow's latent space.
        exchange: the tempered local phase's exchange statistics, or None.
    """
    trace = Trace(*(np.concatenate(fields, axis=1) for fields in zip(*traces, strict=True)))
    n_chains = trace.position.shape[0]
    no_steps = np.full(n_chains, np.nan)
    local_acceptance = local_summary.acceptance_prob if has_local_steps else no_steps
    global_acceptance = no_steps if global_summary is None else global_summary.acceptance_prob
    record = LoopRecord(
        is_training=is_training,
        loss=np.full(n_epochs, np.nan) if losses is None else np.asarray(losses),
        local_acceptance=float(np.mean(local_acceptance)),
        global_acceptance=float(np.mean(global_acceptance)),
        step_size=step_size,
        training_discarded=discarded,
        local_nonfinite=int(np.sum(local_summary.n_nonfinite)),
        global_nonfinite=0 if global_summary is None else int(np.sum(global_summary.n_nonfinite)),
        in_latent_space=in_latent_space,
    )
    if exchange is not None:
        record = dataclasses.replace(
            record,
            exchange_rate=np.asarray(exchange.acceptance, np.float64),
            ladder=np.asarray(exchange.betas, np.float64),
            round_trips=int(exchange.round_trips),
        )
    is_global = np.zeros(trace.position.shape[1], bool)
    is_global[n_kept_local:] = True
    log_weight = (
        np.zeros((n_chains, 0)) if global_summary is None else np.asarray(global_summary.log_weight)
    )
    return LoopOutput(trace, is_global, local_acceptance, global_acceptance, record, log_weight)


class RunProgress:
    """The host side of a run so far: finished loops' outputs and wall seconds.

    Attributes:
        outputs: one `LoopOutput` per finished loop.
        seconds: wall seconds spent in ``training`` and ``production`` loops, and
            ``previous_total``: the total of the sessions before a resume.
        choices: what the run chose by itself before its loops, one sentence each (the
            variational pre-training, a symmetry of the target); `RunDiagnostics.choices`.
    """

    def __init__(
        self,
        outputs: list[LoopOutput] | None = None,
        seconds: dict[str, float] | None = None,
        choices: list[str] | None = None,
    ) -> None:
        self.outputs = outputs or []
        self.seconds = seconds or {"training": 0.0, "production": 0.0, "previous_total": 0.0}
        self.choices = choices or []

    @property
    def n_done(self) -> int:
        """Loops finished."""
        return len(self.outputs)

    @property
    def n_training_discarded(self) -> int:
        """Training loops whose update was discarded."""
        return sum(output.record.training_discarded for output in self.outputs)

    def add(self, output: LoopOutput, seconds: float) -> None:
        """Record a finished loop that took ``seconds``."""
        self.outputs.append(output)
        self.seconds["training" if output.record.is_training else "production"] += seconds
