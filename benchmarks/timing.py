"""Wall-clock helpers: phase stamps and JAX compilation time from ``jax.monitoring``.

JAX records a time span (``time.time()`` start and end) for each of its three compilation
stages: tracing to a jaxpr (``/jax/core/compile/jaxpr_trace_duration``), lowering to MLIR
(``.../jaxpr_to_mlir_module_duration``) and XLA compilation
(``.../backend_compile_duration``), for ``jit`` functions and for eager op-by-op dispatch alike.
`CompileTracker` collects those spans; compile time in a window is the length of the *union*
of the spans inside it (traces nest: an inner ``jit`` is traced while its caller is being
traced, so summing durations would double count). It is all the time the user's process spends
compiling, whoever triggered it.
"""

from __future__ import annotations

import time
from typing import Any

import jax

__all__ = ["COMPILE_EVENTS", "CompileTracker"]

COMPILE_EVENTS: tuple[str, ...] = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


def _union_length(spans: list[tuple[float, float]], lo: float, hi: float) -> float:
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in spans if b > lo and a < hi)
    total, cur_a, cur_b = 0.0, None, None
    for a, b in clipped:
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a  # type: ignore[operator]
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += cur_b - cur_a  # type: ignore[operator]
    return total


class CompileTracker:
    """Collects JAX compilation spans and named wall-clock stamps (``time.time()``).

    Use as a context manager around everything to be measured; `stamp` marks phase
    boundaries; `compile_seconds` gives the compile time inside a window.
    """

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.backend_compiles: int = 0
        self.compiled_functions: dict[str, int] = {}
        self.stamps: dict[str, float] = {}
        self._registered = False

    def _listener(self, event: str, start: float, end: float, **kwargs: Any) -> None:
        if event in COMPILE_EVENTS:
            self.spans.append((start, end))
            if event == COMPILE_EVENTS[2]:
                self.backend_compiles += 1
                name = str(kwargs.get("fun_name", "?"))
                self.compiled_functions[name] = self.compiled_functions.get(name, 0) + 1

    def __enter__(self) -> CompileTracker:
        jax.monitoring.register_event_time_span_listener(self._listener)
        self._registered = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._registered:
            jax.monitoring.unregister_event_time_span_listener(self._listener)
            self._registered = False

    def stamp(self, name: str) -> float:
        """Record ``time.time()`` under ``name`` and return it."""
        t = time.time()
        self.stamps[name] = t
        return t

    def compile_seconds(self, start: float | None = None, end: float | None = None) -> float:
        """Length of the union of compile spans inside ``[start, end]`` (default: all)."""
        lo = -float("inf") if start is None else start
        hi = float("inf") if end is None else end
        return _union_length(self.spans, lo, hi)
