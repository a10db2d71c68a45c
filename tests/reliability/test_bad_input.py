"""Property-based tests: bad input to the public API gets a clear error, early.

API.md, "Bad input gets a clear error, raised before any compilation where possible": every
case below must raise a plain `ValueError` or `TypeError` from flowmc_like's own checks (not
an exception from inside JAX or numpy), whose message names the offending argument and, where
it says what was expected and what was given, shows the given value or shape. Errors from
`Sampler.run` must come before the sampler reaches `jax.jit` (the spy below refuses it).
"""

from __future__ import annotations

import contextlib
import math
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import flowmc_like as fm
from flowmc_like import _validation
from tests.conftest import TINY

N_CHAINS, N_DIM = 4, 2
KEY = jax.random.key(0)
HUGE_INT = 10**400  # a Python int no float can hold

FAST = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Deterministic and quick: no example here compiles anything."""


# --------------------------------------------------------------------------- helpers


class CompilationStarted(AssertionError):
    """Raised by the spy on `jax.jit`: the sampler went on to compile with bad input."""


@contextlib.contextmanager
def compilation_forbidden() -> Iterator[None]:
    """Make `jax.jit` raise `CompilationStarted` (the sampler jits its phases via `jax.jit`).

    The idea of ``test_bad_input_raises_before_compilation`` in tests/api/test_contract.py,
    made strict: a missed check fails at once instead of compiling and sampling.
    """

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise CompilationStarted("the Sampler reached jax.jit before refusing the bad input")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jax, "jit", refuse)
        yield


def raised_by(call: Callable[[], object]) -> Exception:
    """The exception ``call()`` raises; fail the test if it raises none."""
    try:
        call()
    except Exception as error:  # any type: `assert_clear_error` checks it
        return error
    raise AssertionError("no error was raised")


def shows(message: str, value: Any) -> bool:
    """Whether ``message`` shows ``value`` (its repr or str, possibly truncated)."""
    texts = [repr(value)] if isinstance(value, str) else [repr(value), str(value)]
    return any(text[:20] in message for text in texts)


def assert_clear_error(error: Exception, argument: str, *fragments: str) -> str:
    """``error`` is a plain ValueError/TypeError raised by flowmc_like naming ``argument``.

    Args:
        error: the raised exception.
        argument: the argument's name, which the message must contain.
        fragments: further text the message must contain (e.g. the given shape).

    Returns:
        The message, for further checks.
    """
    message = str(error)
    assert type(error) in (ValueError, TypeError), f"{type(error).__name__}: {message}"
    innermost = traceback.extract_tb(error.__traceback__)[-1]
    assert "flowmc_like" in Path(innermost.filename).parts, (
        f"raised from {innermost.filename}:{innermost.lineno}, not by flowmc_like: {message}"
    )
    assert argument in message, f"{argument!r} not named in: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


def standard_normal(x: jax.Array) -> jax.Array:
    """A valid continuous target."""
    return -0.5 * jnp.sum(x**2)


def with_data(x: jax.Array, data: Any) -> jax.Array:
    """A valid continuous target taking ``data`` (ignored)."""
    del data
    return -0.5 * jnp.sum(x**2)


def categorical(s: jax.Array) -> jax.Array:
    """A valid discrete target (float output)."""
    return -0.1 * jnp.sum(s)


def continuous_sampler(**overrides: Any) -> fm.Sampler:
    """A tiny continuous Sampler (n_chains 4, n_dim 2) with ``overrides``."""
    arguments = {"n_dim": N_DIM, "n_chains": N_CHAINS, **TINY, **overrides}
    return fm.Sampler(arguments.pop("log_prob", standard_normal), **arguments)


def discrete_sampler(n_categories: int) -> fm.Sampler:
    """A tiny discrete Sampler: SiteFlip and (by default) Autoregressive with K categories."""
    kernel = fm.SiteFlip(n_categories=n_categories)
    return fm.Sampler(categorical, n_dim=N_DIM, n_chains=N_CHAINS, local_kernel=kernel, **TINY)


def run_error(sampler: fm.Sampler, initial_position: Any) -> Exception:
    """The error `Sampler.run` raises on ``initial_position``, with compilation forbidden."""
    with compilation_forbidden():
        return raised_by(lambda: sampler.run(KEY, initial_position))


def as_pytree(positions: np.ndarray) -> dict[str, np.ndarray]:
    """Split ``(n_chains, 2)`` positions into a pytree of two ``(n_chains, 1)`` leaves."""
    return {"a": positions[:, :1], "b": positions[:, 1:]}


# --------------------------------------------------------------------------- strategies

MISC_NON_NUMBERS = st.sampled_from([1j, 0.5 + 0j, [2], (3,), {"n": 1}, b"8", object()])


def bad_counts(minimum: int, allow_none: bool) -> st.SearchStrategy[Any]:
    """Anything but an int >= ``minimum``: smaller ints, floats (even 2.0), bools, strings."""
    options = [
        st.integers(max_value=minimum - 1),
        st.integers(min_value=-(2**31), max_value=minimum - 1).map(np.int64),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=1, max_value=1e6).map(math.floor).map(float),
        st.booleans(),
        st.text(max_size=6),
        MISC_NON_NUMBERS,
    ]
    if not allow_none:
        options.append(st.none())
    return st.one_of(options)


def bad_positive_floats() -> st.SearchStrategy[Any]:
    """Anything but a finite number > 0: <= 0, NaN, +-inf, huge ints, bools, strings, None."""
    return st.one_of(
        st.floats(max_value=0.0),
        st.integers(max_value=0),
        st.sampled_from([math.nan, math.inf, -math.inf, HUGE_INT, np.float32("nan")]),
        st.booleans(),
        st.none(),
        st.text(max_size=6),
        MISC_NON_NUMBERS,
    )


def bad_nonnegative_floats() -> st.SearchStrategy[Any]:
    """Anything but a finite number >= 0."""
    return st.one_of(
        st.floats(max_value=-1e-300),
        st.integers(max_value=-1),
        st.sampled_from([math.nan, math.inf, -math.inf, HUGE_INT, np.float64("-inf")]),
        st.booleans(),
        st.none(),
        st.text(max_size=6),
        MISC_NON_NUMBERS,
    )


def bad_fractions() -> st.SearchStrategy[Any]:
    """Anything but a number in [0, 1) (for ``validation_fraction``)."""
    return st.one_of(bad_nonnegative_floats(), st.floats(min_value=1.0), st.integers(1, 10))


def bad_hidden_sizes() -> st.SearchStrategy[Any]:
    """Not a sequence of positive ints: a tuple holding one bad width, or not a sequence."""
    bad_width = bad_counts(1, allow_none=False).filter(lambda v: not isinstance(v, tuple))
    with_bad_width = st.tuples(
        st.lists(st.integers(1, 8), max_size=2), bad_width, st.lists(st.integers(1, 8), max_size=1)
    ).map(lambda parts: (*parts[0], parts[1], *parts[2]))
    not_a_sequence = st.sampled_from([None, 64, 3.0, math.nan, object()])
    return st.one_of(with_bad_width, not_a_sequence)


COUNT_ARGUMENTS = {
    "max_training_loops": 1,
    "max_production_loops": 1,
    "n_epochs": 1,
    "batch_size": 1,
    "n_max_examples": 1,
    "global_chunk_size": 1,
}
"""Sampler count arguments and their minimum; None is never allowed for them."""

OPTIONAL_COUNT_ARGUMENTS = {
    "n_training_loops": 1,
    "n_production_loops": 1,
    "n_window_loops": 1,
    "n_local_steps": 0,
    "n_global_steps": 0,
    "n_variational_steps": 0,
}
"""Counts for which None means "the run decides" (by the target or the model's space)."""

FLOAT_ARGUMENTS = {
    "learning_rate": bad_positive_floats,
    "reverse_kl_weight": bad_nonnegative_floats,
    "validation_fraction": bad_fractions,
    "target_ess": bad_positive_floats,
}

KERNEL_FLOATS = [(fm.MALA, "step_size"), (fm.HMC, "step_size"), (fm.RandomWalk, "scale")]
MODEL_FLOATS = [(fm.RealNVP, "log_scale_limit"), (fm.RQSpline, "range_limit")]
INT_FIELDS = [
    (fm.HMC, "n_leapfrog", 1),
    (fm.RealNVP, "n_layers", 1),
    (fm.RQSpline, "n_layers", 1),
    (fm.RQSpline, "n_bins", 2),
    (fm.Autoregressive, "n_categories", 2),
    (fm.SiteFlip, "n_categories", 2),
]

CONTINUOUS_KERNELS = st.one_of(
    st.builds(fm.MALA, step_size=st.floats(1e-3, 1.0)),
    st.builds(fm.HMC, step_size=st.floats(1e-3, 1.0), n_leapfrog=st.integers(1, 5)),
    st.builds(fm.RandomWalk, scale=st.floats(1e-3, 1.0)),
)
FLOW_MODELS = st.one_of(
    st.builds(fm.RealNVP, n_layers=st.integers(1, 3), hidden_sizes=st.just((4,))),
    st.builds(fm.RQSpline, n_layers=st.integers(1, 3), hidden_sizes=st.just((4,))),
)
N_CATEGORIES = st.integers(2, 6)
NON_FLOAT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.bool_]
NON_FLOAT_DTYPES += [np.complex64, np.complex128]

NON_ARRAY_LEAVES = st.one_of(
    st.text(max_size=5),
    st.builds(object),
    st.sampled_from([np.array(["a", "b"]), b"bytes", len, {1, 2}]),
)


# --------------------------------------------------------------------------- construction


@FAST
@given(
    case=st.sampled_from(sorted(COUNT_ARGUMENTS)).flatmap(
        lambda name: st.tuples(st.just(name), bad_counts(COUNT_ARGUMENTS[name], False))
    )
)
def test_bad_counts_are_refused_at_construction(case: tuple[str, Any]) -> None:
    """Zero/negative/float/bool/str/None loop, step, epoch and batch counts name the argument."""
    name, value = case
    error = raised_by(lambda: continuous_sampler(**{name: value}))
    message = assert_clear_error(error, name)
    assert shows(message, value), message


@FAST
@given(
    case=st.sampled_from(sorted(OPTIONAL_COUNT_ARGUMENTS)).flatmap(
        lambda name: st.tuples(
            st.just(name), bad_counts(OPTIONAL_COUNT_ARGUMENTS[name], allow_none=True)
        )
    )
)
def test_bad_optional_counts_are_refused_at_construction(case: tuple[str, Any]) -> None:
    """Loop counts that may be None (automatic) still refuse every other bad value."""
    name, value = case
    error = raised_by(lambda: continuous_sampler(**{name: value}))
    message = assert_clear_error(error, name)
    assert shows(message, value), message


@FAST
@given(
    case=st.sampled_from(["n_dim", "n_chains"]).flatmap(
        lambda name: st.tuples(st.just(name), bad_counts(1, allow_none=True))
    )
)
def test_bad_n_dim_and_n_chains_are_refused_at_construction(case: tuple[str, Any]) -> None:
    """``n_dim`` and ``n_chains`` may be None (inferred) but nothing else except ints >= 1."""
    name, value = case
    error = raised_by(lambda: fm.Sampler(standard_normal, **{name: value}))
    message = assert_clear_error(error, name)
    assert shows(message, value), message


@FAST
@given(
    case=st.sampled_from(sorted(FLOAT_ARGUMENTS)).flatmap(
        lambda name: st.tuples(st.just(name), FLOAT_ARGUMENTS[name]())
    )
)
@example(case=("learning_rate", HUGE_INT))  # used to raise OverflowError
@example(case=("validation_fraction", HUGE_INT))  # used to raise OverflowError
def test_bad_training_floats_are_refused_at_construction(case: tuple[str, Any]) -> None:
    """NaN, inf, out-of-range or non-numeric learning_rate / reverse_kl_weight /
    validation_fraction name the argument and show the value."""
    name, value = case
    error = raised_by(lambda: continuous_sampler(**{name: value}))
    message = assert_clear_error(error, name)
    assert shows(message, value), message


@FAST
@given(case=st.sampled_from(KERNEL_FLOATS + MODEL_FLOATS), value=bad_positive_floats())
@example(case=(fm.MALA, "step_size"), value=HUGE_INT)  # used to raise OverflowError
@example(case=(fm.RQSpline, "range_limit"), value=HUGE_INT)  # used to raise OverflowError
def test_bad_kernel_and_model_floats_are_refused(case: tuple[type, str], value: Any) -> None:
    """Kernel step sizes/scales and flow limits must be positive finite numbers."""
    factory, field = case
    message = assert_clear_error(raised_by(lambda: factory(**{field: value})), field)
    assert shows(message, value), message


@FAST
@given(
    n_global_steps=st.integers(0, 3),
    global_model=st.sampled_from([None, fm.RealNVP(hidden_sizes=(4,))]),
)
def test_a_loop_without_any_step_is_refused(
    n_global_steps: int, global_model: fm.RealNVP | None
) -> None:
    """``n_local_steps=0`` needs global moves: a model and ``n_global_steps >= 1``."""
    if global_model is not None and n_global_steps > 0:
        return  # global moves only: valid
    error = raised_by(
        lambda: continuous_sampler(
            n_local_steps=0, n_global_steps=n_global_steps, global_model=global_model
        )
    )
    assert_clear_error(error, "n_local_steps", "n_global_steps", f"n_global_steps={n_global_steps}")


@FAST
@given(
    value=st.one_of(
        st.floats(min_value=1.0),
        st.floats(max_value=-1e-300),
        st.sampled_from([math.nan, -math.inf, HUGE_INT, None, "0.1", True]),
    )
)
def test_bad_hmc_jitter_is_refused(value: Any) -> None:
    """HMC's ``step_size_jitter`` must be a number in [0, 1)."""
    message = assert_clear_error(
        raised_by(lambda: fm.HMC(step_size_jitter=value)), "step_size_jitter"
    )
    assert shows(message, value), message


@FAST
@given(
    case=st.sampled_from(INT_FIELDS).flatmap(
        lambda case: st.tuples(st.just(case), bad_counts(case[2], allow_none=False))
    )
)
def test_bad_kernel_and_model_counts_are_refused(case: tuple[tuple[type, str, int], Any]) -> None:
    """n_leapfrog, n_layers, n_bins and n_categories must be ints at or above their minimum."""
    (factory, field, _), value = case
    message = assert_clear_error(raised_by(lambda: factory(**{field: value})), field)
    assert shows(message, value), message


@FAST
@given(
    factory=st.sampled_from([fm.RealNVP, fm.RQSpline, fm.Autoregressive]),
    value=bad_hidden_sizes(),
)
def test_bad_hidden_sizes_are_refused(factory: type, value: Any) -> None:
    """Model widths must be a sequence of positive ints (no 0, NaN, float, str, None)."""
    message = assert_clear_error(raised_by(lambda: factory(hidden_sizes=value)), "hidden_sizes")
    assert shows(message, value), message


@FAST
@given(kernel=CONTINUOUS_KERNELS, n_categories=N_CATEGORIES)
def test_continuous_kernel_with_discrete_model_is_refused(
    kernel: fm.MALA | fm.HMC | fm.RandomWalk, n_categories: int
) -> None:
    """A continuous kernel with an Autoregressive model is refused, naming both and the spaces."""
    model = fm.Autoregressive(n_categories=n_categories, hidden_sizes=(4,))
    error = raised_by(lambda: continuous_sampler(local_kernel=kernel, global_model=model))
    assert_clear_error(
        error, "local_kernel", "global_model", type(kernel).__name__, "Autoregressive", "discrete"
    )


@FAST
@given(model=FLOW_MODELS, n_categories=N_CATEGORIES)
def test_discrete_kernel_with_flow_model_is_refused(model: Any, n_categories: int) -> None:
    """SiteFlip with a continuous flow is refused, naming both and the spaces."""
    kernel = fm.SiteFlip(n_categories=n_categories)
    error = raised_by(lambda: continuous_sampler(local_kernel=kernel, global_model=model))
    assert_clear_error(
        error, "local_kernel", "global_model", "SiteFlip", type(model).__name__, "continuous"
    )


@FAST
@given(
    pair=st.tuples(N_CATEGORIES, N_CATEGORIES).filter(lambda pair: pair[0] != pair[1]),
)
def test_mismatched_n_categories_are_refused(pair: tuple[int, int]) -> None:
    """SiteFlip(K) with Autoregressive(K') for K != K' is refused, showing both values."""
    kernel_k, model_k = pair
    kernel = fm.SiteFlip(n_categories=kernel_k)
    model = fm.Autoregressive(n_categories=model_k, hidden_sizes=(4,))
    error = raised_by(lambda: continuous_sampler(local_kernel=kernel, global_model=model))
    assert_clear_error(error, "n_categories", f"n_categories={kernel_k}", f"n_categories={model_k}")


@FAST
@given(
    case=st.one_of(
        st.tuples(
            st.just("local_kernel"),
            st.sampled_from([fm.RealNVP(), fm.MALA, "mala", 0.1, object()]),
        ),
        st.tuples(
            st.just("global_model"),
            st.sampled_from([fm.MALA(), fm.SiteFlip(), fm.RealNVP, "flow", 1]),
        ),
    )
)
def test_non_kernel_or_non_model_objects_are_refused(case: tuple[str, Any]) -> None:
    """A model given as kernel, a class instead of an instance, or a string is refused."""
    name, value = case
    error = raised_by(lambda: continuous_sampler(**{name: value}))
    message = assert_clear_error(error, name)
    given_as = {type(value).__name__} | ({value.__name__} if isinstance(value, type) else set())
    assert any(text in message for text in given_as), message


# --------------------------------------------------------------------------- data


@FAST
@given(
    good=st.dictionaries(st.sampled_from("abc"), st.floats(-1, 1), max_size=2),
    bad=NON_ARRAY_LEAVES,
    wrap=st.sampled_from([lambda d: d, lambda d: [1.0, d], lambda d: (np.zeros(3), d)]),
)
def test_data_with_non_array_leaves_is_refused(
    good: dict[str, float], bad: Any, wrap: Callable[[Any], Any]
) -> None:
    """``data`` leaves that are strings, objects or functions are refused, naming ``data``."""
    data = wrap({**good, "z": bad})
    with compilation_forbidden():
        error = raised_by(
            lambda: continuous_sampler(log_prob=with_data, data=data).run(KEY, np.zeros((4, 2)))
        )
    assert_clear_error(error, "data", type(bad).__name__)


@FAST
@given(
    good=st.dictionaries(st.sampled_from("abc"), st.floats(-1, 1), max_size=2),
    bad=NON_ARRAY_LEAVES,
)
def test_check_data_refuses_non_array_leaves(good: dict[str, float], bad: Any) -> None:
    """`_validation.check_data`, the check the `Sampler` calls, names ``data`` and the leaf."""
    data = [np.ones(2), {**good, "z": bad}]
    error = raised_by(lambda: _validation.check_data(data))
    assert_clear_error(error, "data", type(bad).__name__, "data[1]['z']")
    assert _validation.check_data([np.ones(2), good, jnp.zeros(1), True, 3]) is not None


# --------------------------------------------------------------------------- initial positions


@FAST
@given(
    shape=st.lists(st.integers(1, 4), max_size=4).filter(lambda shape: len(shape) != 2),
    as_jax=st.booleans(),
)
def test_positions_with_wrong_ndim_are_refused_before_compilation(
    shape: list[int], as_jax: bool
) -> None:
    """Positions that are not 2-D show the given shape and the expected (n_chains, n_dim)."""
    positions = np.zeros(shape, np.float32)
    error = run_error(continuous_sampler(), jnp.asarray(positions) if as_jax else positions)
    assert_clear_error(
        error,
        "initial_position",
        str(tuple(shape)),
        f"expected (n_chains, n_dim) = ({N_CHAINS}, {N_DIM})",
    )


@FAST
@given(
    shape=st.tuples(st.integers(0, 7), st.integers(0, 5)),
    given_chains=st.booleans(),
    given_dim=st.booleans(),
)
def test_positions_with_wrong_shape_are_refused_before_compilation(
    shape: tuple[int, int], given_chains: bool, given_dim: bool
) -> None:
    """2-D positions disagreeing with n_chains/n_dim (or empty) show got and expected shapes."""
    n_chains, n_dim = shape
    chains_wrong = given_chains and n_chains != N_CHAINS
    dim_wrong = given_dim and n_dim != N_DIM
    if not (chains_wrong or dim_wrong or n_chains == 0 or n_dim == 0):
        return  # a valid shape for this sampler
    sampler = continuous_sampler(
        n_chains=N_CHAINS if given_chains else None, n_dim=N_DIM if given_dim else None
    )
    error = run_error(sampler, np.zeros(shape, np.float32))
    message = assert_clear_error(error, "initial_position", str(shape))
    if chains_wrong or dim_wrong:
        expected = (N_CHAINS if given_chains else n_chains, N_DIM if given_dim else n_dim)
        assert f"expected (n_chains, n_dim) = {expected}" in message, message
    else:
        assert "at least one chain" in message, message


@FAST
@given(
    dtype=st.sampled_from(NON_FLOAT_DTYPES),
    form=st.sampled_from(["numpy", "jax", "pytree"]),
)
def test_non_float_positions_are_refused_for_continuous_kernels(dtype: type, form: str) -> None:
    """Int, bool or complex positions for a continuous kernel: the message shows the dtype."""
    positions = np.zeros((N_CHAINS, N_DIM), dtype)
    given = {"numpy": positions, "jax": jnp.asarray(positions), "pytree": as_pytree(positions)}
    error = run_error(continuous_sampler(), given[form])
    kind = np.dtype(dtype).name.rstrip("0123456789")
    assert_clear_error(error, "initial_position", "floating-point", "got dtype", kind)


@FAST
@given(
    n_categories=N_CATEGORIES,
    dtype=st.sampled_from([np.float16, np.float32, np.float64, np.bool_, np.complex64]),
    form=st.sampled_from(["numpy", "jax", "pytree"]),
)
def test_non_integer_positions_are_refused_for_discrete_kernels(
    n_categories: int, dtype: type, form: str
) -> None:
    """Float, bool or complex states for SiteFlip: the message shows the dtype and [0, K)."""
    positions = np.zeros((N_CHAINS, N_DIM), dtype)
    given = {"numpy": positions, "jax": jnp.asarray(positions), "pytree": as_pytree(positions)}
    error = run_error(discrete_sampler(n_categories), given[form])
    kind = np.dtype(dtype).name.rstrip("0123456789")
    assert_clear_error(error, "initial_position", f"[0, {n_categories})", "got dtype", kind)


@FAST
@given(dtype=st.sampled_from([object, str]), discrete=st.booleans())
def test_non_numeric_positions_in_a_pytree_are_refused(dtype: type, discrete: bool) -> None:
    """Object or string arrays as pytree leaves are refused, showing the dtype."""
    positions = as_pytree(np.zeros((N_CHAINS, N_DIM)).astype(dtype))
    sampler = discrete_sampler(2) if discrete else continuous_sampler()
    error = run_error(sampler, positions)
    assert_clear_error(error, "initial_position", "got dtype")


@FAST
@given(dtype=st.sampled_from([object, str]), discrete=st.booleans())
def test_non_numeric_plain_position_arrays_are_refused(dtype: type, discrete: bool) -> None:
    """Object or string ``(n_chains, n_dim)`` arrays are refused, naming initial_position."""
    positions = np.zeros((N_CHAINS, N_DIM)).astype(dtype)
    sampler = discrete_sampler(2) if discrete else continuous_sampler()
    error = run_error(sampler, positions)
    assert_clear_error(error, "initial_position", "got dtype")


@FAST
@given(
    chains=st.sets(st.integers(0, N_CHAINS - 1), min_size=1),
    value=st.sampled_from([math.nan, math.inf, -math.inf]),
    site=st.integers(0, N_DIM - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
    pytree=st.booleans(),
)
def test_nonfinite_positions_are_refused_before_compilation(
    chains: set[int], value: float, site: int, dtype: type, pytree: bool
) -> None:
    """NaN/inf in some chains' starting points is refused, listing exactly those chains."""
    positions = np.zeros((N_CHAINS, N_DIM), dtype)
    positions[sorted(chains), site] = value
    error = run_error(continuous_sampler(), as_pytree(positions) if pytree else positions)
    assert_clear_error(error, "initial_position", "NaN or inf", f"chains {sorted(chains)}")


@FAST
@given(
    n_categories=N_CATEGORIES,
    chains=st.sets(st.integers(0, N_CHAINS - 1), min_size=1),
    data=st.data(),
    dtype=st.sampled_from([np.int16, np.int32, np.int64]),
    pytree=st.booleans(),
)
def test_out_of_range_categories_are_refused_before_compilation(
    n_categories: int, chains: set[int], data: st.DataObject, dtype: type, pytree: bool
) -> None:
    """States outside [0, K) in some chains are refused, listing those chains and [0, K)."""
    out_of_range = st.one_of(st.integers(-(2**15), -1), st.integers(n_categories, 2**15 - 1))
    positions = np.zeros((N_CHAINS, N_DIM), dtype)
    for chain in sorted(chains):
        positions[chain, data.draw(st.integers(0, N_DIM - 1))] = data.draw(out_of_range)
    error = run_error(discrete_sampler(n_categories), as_pytree(positions) if pytree else positions)
    assert_clear_error(
        error, "initial_position", f"outside [0, {n_categories})", f"chains {sorted(chains)}"
    )


@FAST
@given(
    n_categories=N_CATEGORIES,
    chain=st.integers(0, N_CHAINS - 1),
    wraps=st.sampled_from([2**32, -(2**32), 2**33]),
    pytree=st.booleans(),
)
def test_int64_categories_beyond_int32_are_refused(
    n_categories: int, chain: int, wraps: int, pytree: bool
) -> None:
    """An int64 state such as 2**32 (which int32 would wrap to 0) is out of range."""
    positions = np.zeros((N_CHAINS, N_DIM), np.int64)
    positions[chain, 0] = wraps
    error = run_error(discrete_sampler(n_categories), as_pytree(positions) if pytree else positions)
    assert_clear_error(error, "initial_position", f"outside [0, {n_categories})", f"[{chain}]")


@FAST
@given(
    sizes=st.tuples(st.integers(1, 6), st.integers(1, 6)).filter(lambda s: s[0] != s[1]),
)
def test_pytree_leaves_with_different_chain_counts_are_refused(sizes: tuple[int, int]) -> None:
    """Pytree leaves must share their leading (chain) axis; the message shows the shapes."""
    positions = {"a": np.zeros((sizes[0], 1)), "b": np.zeros((sizes[1], 1))}
    error = run_error(fm.Sampler(standard_normal, **TINY), positions)
    assert_clear_error(error, "initial_position", str([(sizes[0], 1), (sizes[1], 1)]))


@FAST
@given(
    positions=st.one_of(
        st.lists(st.lists(st.floats(-1, 1), min_size=2, max_size=2), min_size=4, max_size=4),
        st.lists(st.text(max_size=3), min_size=1, max_size=4),
        st.tuples(st.floats(-1, 1), st.booleans()),
    )
)
def test_python_containers_of_scalars_are_refused(positions: Any) -> None:
    """Nested lists of floats, lists of strings etc. are not arrays; the leaf type is shown."""
    leaf = jax.tree.leaves(positions)[0]
    error = run_error(continuous_sampler(), positions)
    assert_clear_error(error, "initial_position", type(leaf).__name__)


# --------------------------------------------------------------------------- log_prob


@FAST
@given(
    shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).filter(
        lambda shape: math.prod(shape) != 1 or len(shape) > 1
    )
)
def test_non_scalar_log_prob_is_refused_before_compilation(shape: list[int]) -> None:
    """A log_prob returning an array of shape ``shape`` is refused, showing that shape."""

    def vector_log_prob(x: jax.Array) -> jax.Array:
        return jnp.full(tuple(shape), -0.5 * jnp.sum(x**2))

    error = run_error(continuous_sampler(log_prob=vector_log_prob), np.zeros((4, 2), np.float32))
    assert_clear_error(error, "log_prob", "scalar", str(tuple(shape)))
