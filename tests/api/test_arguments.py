"""Every public constructor argument refuses a wrong type and a wrong value, in one way.

The rule (``flowmc_like._validation``): a value of the wrong type raises a TypeError, a
value of the right type but out of range a ValueError, and the message names the owner
(``"HMC: ..."``) and the argument and says what it got. The table below has one row per
argument of `Sampler`, `MALA`, `HMC`, `RandomWalk`, `SiteFlip`, `RealNVP`, `RQSpline` and
`Autoregressive`; `test_the_table_covers_every_argument` fails when a constructor gains an
argument without a row.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import pytest

import flowmc_like as fm


def log_prob(x):
    return -0.5 * jnp.sum(x**2)


def make_sampler(**kwargs: Any) -> fm.Sampler:
    """A `Sampler` on a 2-D standard normal; ``kwargs`` override ``log_prob`` and ``n_dim``."""
    return fm.Sampler(**{"log_prob": log_prob, "n_dim": 2, **kwargs})


CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "Sampler": make_sampler,
    "MALA": fm.MALA,
    "HMC": fm.HMC,
    "RandomWalk": fm.RandomWalk,
    "SiteFlip": fm.SiteFlip,
    "RealNVP": fm.RealNVP,
    "RQSpline": fm.RQSpline,
    "Autoregressive": fm.Autoregressive,
}
"""Each constructor under test, by the owner name its messages start with."""


@dataclasses.dataclass(frozen=True)
class NoWrongValue:
    """The argument has no value of the right type that is wrong (e.g. a bool)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad value, with the other arguments that make it the only fault."""

    value: Any
    others: dict[str, Any] = dataclasses.field(default_factory=dict)
    xfail: str | None = None  # reason: the check lives in a module that does not follow the rule


@dataclasses.dataclass(frozen=True)
class Row:
    owner: str
    argument: str
    wrong_type: Case
    wrong_value: Case | NoWrongValue


def as_case(value: Any) -> Case | NoWrongValue:
    return value if isinstance(value, Case | NoWrongValue) else Case(value)


def row(owner: str, argument: str, wrong_type: Any, wrong_value: Any) -> Row:
    return Row(owner, argument, as_case(wrong_type), as_case(wrong_value))


BOOL = NoWrongValue("a bool has no wrong value")
ANY_CALLABLE = NoWrongValue("any callable is accepted")

TABLE: list[Row] = [
    # Sampler: log_prob, n_dim and n_chains are checked in sampler.py, the rest in config.py
    # (counts and settings), sampler.py (kernel and model) and _sharding.py (devices).
    row("Sampler", "log_prob", 3.0, NoWrongValue("its output is checked by run")),
    row("Sampler", "n_dim", "2", 0),
    row("Sampler", "n_chains", "4", 0),
    row(
        "Sampler",
        "local_kernel",
        Case("mala"),
        Case(fm.SiteFlip(), {"global_model": fm.RealNVP()}),
    ),
    row(
        "Sampler",
        "global_model",
        Case("flow"),
        Case(fm.Autoregressive(), {"local_kernel": fm.MALA()}),
    ),
    row("Sampler", "n_training_loops", "20", 0),
    row("Sampler", "n_production_loops", 2.0, 0),
    row("Sampler", "max_training_loops", "50", 0),
    row("Sampler", "max_production_loops", 1.5, 0),
    row("Sampler", "target_ess", "many", 0.0),
    row("Sampler", "target_rhat", "1.01", 1.0),
    row("Sampler", "n_local_steps", "50", -1),
    row("Sampler", "n_global_steps", 1.5, -1),
    row("Sampler", "n_epochs", "5", 0),
    row("Sampler", "batch_size", 1024.0, 0),
    row("Sampler", "learning_rate", "1e-3", 0.0),
    row("Sampler", "n_max_examples", "8192", 0),
    row("Sampler", "n_window_loops", "3", 0),
    row("Sampler", "global_chunk_size", "4096", 0),
    row("Sampler", "reverse_kl_weight", "high", -1.0),
    row("Sampler", "n_variational_steps", "200", -1),
    row("Sampler", "validation_fraction", "0.2", 1.0),
    row(
        "Sampler",
        "local_in_latent_space",
        "yes",
        Case(True, {"global_model": None}),
    ),
    row("Sampler", "n_temperatures", "8", 0),
    row("Sampler", "max_temperature", "100", 1.0),
    row(
        "Sampler",
        "log_prior",
        3.0,
        Case(lambda x: 0.0, {"n_temperatures": 2, "max_temperature": 10.0}),
    ),
    row("Sampler", "thinning", "1", 0),
    row("Sampler", "data", {"y": "text"}, NoWrongValue("any pytree of numeric leaves is valid")),
    row("Sampler", "devices", "cpu", []),
    row("Sampler", "progress_bar", "yes", BOOL),
    # kernels
    row("MALA", "step_size", "0.1", 0.0),
    row("HMC", "step_size", "0.1", -0.1),
    row("HMC", "n_leapfrog", "4", 0),
    row("HMC", "step_size_jitter", "0.2", 1.0),
    row("RandomWalk", "scale", None, math.inf),
    row("SiteFlip", "n_categories", 2.0, 1),
    row("SiteFlip", "mode", 3, "heatbath"),
    row("SiteFlip", "delta_log_prob", 3, ANY_CALLABLE),
    # models
    row("RealNVP", "n_layers", "8", 0),
    row("RealNVP", "hidden_sizes", 64, (64, 0)),
    row("RealNVP", "log_scale_limit", "2", 0.0),
    row("RealNVP", "whiten", "no", BOOL),
    row("RQSpline", "n_layers", 4.0, -1),
    row("RQSpline", "hidden_sizes", "64", (-4,)),
    row("RQSpline", "n_bins", 8.5, 1),
    row("RQSpline", "range_limit", "5", math.nan),
    row("RQSpline", "whiten", 1, BOOL),
    row("Autoregressive", "n_categories", "2", 1),
    row("Autoregressive", "hidden_sizes", (8.0,), (16, 0)),
    row("Autoregressive", "symmetric", 1, BOOL),
    row("Autoregressive", "direct_connections", "yes", BOOL),
]


def cases(kind: str) -> list[Any]:
    """``pytest.param(owner, argument, case)`` for every row's ``kind`` case that exists."""
    params = []
    for entry in TABLE:
        case = getattr(entry, kind)
        if isinstance(case, NoWrongValue):
            continue
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        params.append(
            pytest.param(
                entry.owner, entry.argument, case, marks=marks, id=f"{entry.owner}.{entry.argument}"
            )
        )
    return params


def raised_by(owner: str, argument: str, case: Case) -> Exception:
    try:
        CONSTRUCTORS[owner](**{**case.others, argument: case.value})
    except Exception as error:  # any type: the tests check it
        return error
    raise AssertionError(f"{owner}({argument}={case.value!r}) raised nothing")


def assert_clear(error: Exception, owner: str, argument: str) -> None:
    message = str(error)
    assert message.startswith(f"{owner}: "), f"owner {owner!r} not named first in: {message}"
    assert argument in message, f"{argument!r} not named in: {message}"
    assert "got" in message, f"no 'got' in: {message}"


@pytest.mark.parametrize(("owner", "argument", "case"), cases("wrong_type"))
def test_a_wrong_type_raises_type_error(owner: str, argument: str, case: Case) -> None:
    error = raised_by(owner, argument, case)
    assert type(error) is TypeError, f"{type(error).__name__}: {error}"
    assert_clear(error, owner, argument)


@pytest.mark.parametrize(("owner", "argument", "case"), cases("wrong_value"))
def test_a_wrong_value_raises_value_error(owner: str, argument: str, case: Case) -> None:
    error = raised_by(owner, argument, case)
    assert type(error) is ValueError, f"{type(error).__name__}: {error}"
    assert_clear(error, owner, argument)


@pytest.mark.parametrize("owner", list(CONSTRUCTORS))
def test_the_table_covers_every_argument(owner: str) -> None:
    parameters = set(inspect.signature(getattr(fm, owner)).parameters)
    rows = [entry.argument for entry in TABLE if entry.owner == owner]
    assert len(rows) == len(set(rows)), f"{owner}: duplicate rows"
    assert set(rows) == parameters, (
        f"{owner}: arguments without a row {sorted(parameters - set(rows))}; "
        f"rows without an argument {sorted(set(rows) - parameters)}"
    )


def test_every_case_constructs_when_the_bad_value_is_removed() -> None:
    """The ``others`` of each case are valid on their own: the bad value is the only fault."""
    for entry in TABLE:
        for case in (entry.wrong_type, entry.wrong_value):
            if isinstance(case, Case) and case.others:
                CONSTRUCTORS[entry.owner](**case.others)
