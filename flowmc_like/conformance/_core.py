"""The failure type, the report, and the comparisons every check uses (private)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaincc

from flowmc_like._types import ArrayLike

__all__ = ["Checklist", "ConformanceError", "ConformanceReport"]

_F = TypeVar("_F", bound=Callable[..., Any])


class ConformanceError(AssertionError):
    """A kernel or model does not have a property the library relies on.

    A subclass of `AssertionError`, so a failed check reads as a failed test in pytest.

    Attributes:
        check: name of the failed property, e.g. ``"detailed_balance"``.
        details: what was measured and what was expected, with the numbers.
    """

    def __init__(self, check: str, details: str):
        super().__init__(f"{check}: {details}")
        self.check = check
        self.details = details


@dataclasses.dataclass(frozen=True)
class ConformanceReport:
    """What `check_kernel` or `check_model` ran on a kernel or model that passed.

    Attributes:
        subject: the checked object's type name.
        passed: names of the checks that ran and passed, in order.
        skipped: ``(name, reason)`` of the checks that do not apply or were skipped.
    """

    subject: str
    passed: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        lines = [f"{self.subject}: {len(self.passed)} checks passed: {', '.join(self.passed)}"]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)


def fail(check: str, details: str) -> None:
    """Raise the `ConformanceError` of ``check``."""
    raise ConformanceError(check, details)


def require(condition: Any, check: str, details: str) -> None:
    """Raise the `ConformanceError` of ``check`` unless ``condition`` is true."""
    if not bool(condition):
        fail(check, details)


def require_close(
    check: str,
    what: str,
    actual: ArrayLike,
    expected: ArrayLike,
    *,
    rtol: float,
    atol: float,
) -> None:
    """Elementwise ``|actual - expected| <= atol + rtol |expected|``, reporting the worst entry.

    Non-finite entries fail unless both sides hold the same value.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.broadcast_to(np.asarray(expected, dtype=np.float64), actual.shape)
    same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    excess = np.where(same, -np.inf, np.where(np.isfinite(excess), excess, np.inf))
    if excess.size and np.max(excess) > 0:
        worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
        n_bad = int(np.sum(excess > 0))
        where = tuple(int(i) for i in worst)
        fail(
            check,
            f"{what}: {actual[worst]:.6g} vs {expected[worst]:.6g} at index {where} "
            f"({n_bad} of {excess.size} entries outside atol={atol:g}, rtol={rtol:g})",
        )


def chi_square_p_value(statistic: float, dof: int) -> float:
    """Upper tail ``P(X >= statistic)`` of a chi-square with ``dof`` degrees of freedom."""
    if dof <= 0:
        return 1.0
    return float(gammaincc(jnp.float32(dof / 2.0), jnp.float32(statistic / 2.0)))


def pooled_chi_square(
    observed: np.ndarray, expected: np.ndarray, min_expected: float = 5.0
) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom, cells expected below ``min_expected`` pooled."""
    observed = np.asarray(observed, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    small = expected < min_expected
    if np.any(small):
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    keep = expected > 0
    statistic = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    return statistic, int(np.sum(keep)) - 1


def cache_per_config(builder: _F) -> _F:
    """Cache ``builder(config, ...)`` per hashable arguments; build afresh when unhashable.

    Kernels and models are frozen dataclasses, hence hashable, so each one compiles its checks
    once; an unhashable one is still checked, only recompiled per call.
    """
    cached = functools.lru_cache(maxsize=64)(builder)

    @functools.wraps(builder)
    def build(*args: Any) -> Any:
        try:
            hash(args)
        except TypeError:
            return builder(*args)
        return cached(*args)

    return build  # type: ignore[return-value]


class Checklist:
    """Runs named checks, honouring ``skip``, and collects the report."""

    def __init__(self, owner: str, subject: Any, known: tuple[str, ...], skip: Iterable[str]):
        if isinstance(skip, str):
            skip = (skip,)
        self.skip = frozenset(skip)
        unknown = sorted(self.skip - set(known))
        if unknown:
            raise ValueError(f"{owner}: skip holds unknown check names {unknown}; known: {known}")
        self.subject = type(subject).__name__
        self.passed: list[str] = []
        self.skipped: list[tuple[str, str]] = []

    def run(self, name: str, check: Callable[[], Any]) -> Any:
        """Run ``check`` unless ``name`` is skipped; return its result (None if skipped)."""
        if name in self.skip:
            self.skipped.append((name, "skipped on request"))
            return None
        result = check()
        self.passed.append(name)
        return result

    def not_applicable(self, name: str, reason: str) -> None:
        """Record that ``name`` does not apply."""
        self.skipped.append((name, reason))

    def report(self) -> ConformanceReport:
        """The `ConformanceReport` of the checks run so far."""
        return ConformanceReport(self.subject, tuple(self.passed), tuple(self.skipped))
