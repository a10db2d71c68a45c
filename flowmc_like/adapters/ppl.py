"""Targets from probabilistic programming languages: numpyro and PyMC models.

A model's latent variables live in a constrained space (a scale is positive, a probability
vector sums to one). Samplers work on the *unconstrained* space: every variable is mapped to
``R^k`` by a bijection, and the log density gains that map's log-Jacobian. The PPLs provide
both, and the map back; this module wraps them as a `ModelTarget`:

- ``target.log_prob``: a flat unconstrained position ``(n_dim,)`` -> scalar log density, ready
  for `flowmc_like.Sampler`, callable as ``log_prob(x)`` (on the target's own data) or
  ``log_prob(x, data)``. It carries the map back, so a `SamplerResult` of a run on it
  exports the model's own variable names and constrained values to ArviZ.
- ``target.data``: the model's data, the part of its inputs that is *traced* (see below).
  ``target.with_data(...)`` is the same target on new data of the same shapes.
- ``target.n_dim`` and ``target.initial_position(key, n_chains)``: starting points from the
  PPL's own initialisation (numpyro's ``init_to_uniform``: uniform in ``(-2, 2)`` in the
  unconstrained space; PyMC's initial point jittered by ``U(-1, 1)``).
- ``target.log_prior``: the model's prior alone on the same unconstrained position (the
  log-Jacobian included, every observed site's and factor's term left out), so
  ``log_prob - log_prior`` is the log likelihood. Tempering (``Sampler(n_temperatures=...)``)
  uses it to temper the likelihood only; the hottest replica then samples the prior.
- ``target.constrain(flat, data=None)``: unconstrained draws ``(..., n_dim)`` ->
  ``{name: (..., *shape)}`` of constrained values, deterministic sites included.
- Observations, for ArviZ's ``log_likelihood``, ``observed_data``, ``constant_data`` and
  ``posterior_predictive`` groups (each also on ``target.log_prob``, with ``data=None`` for
  the target's own data):

  - ``target.log_likelihood(flat, data=None)``: ``{observed variable: (..., *obs_shape)}``,
    the elementwise log density of each observation at each position ``(..., n_dim)``;
  - ``target.observed_data(data=None)``: ``{observed variable: observed values}``;
  - ``target.constant_data(data=None)``: ``{name: value}`` or None. PyMC: the ``pm.Data``
    containers other than those only used as observed values (as PyMC's own ArviZ export);
    numpyro: None (which arguments are covariates is not known);
  - ``target.posterior_predictive(key, flat_draws, data=None)``: ``{observed variable:
    (n_chains, n_draws, *obs_shape)}``, a new observation drawn from the likelihood at each
    draw ``(n_chains, n_draws, n_dim)``, on ``data`` (e.g. ``target.with_data(...).data``
    for new covariates). numpyro: ``numpyro.infer.Predictive`` with the observed sites
    turned into sampled ones (``numpyro.factor`` terms left out), jitted per chunk of
    draws; PyMC: ``pm.sample_posterior_predictive`` on the constrained draws.

**Traced data and baked-in settings.** The compiled programs of a run (and the map back)
take the model's data as an *input*: a new dataset of the same shapes and dtypes runs the
programs already compiled. Everything else is *baked in* (a constant of the program, or a
Python value read while tracing): a new value compiles a new program.

numpyro (``fm.from_numpyro(model, *model_args, **model_kwargs)``): the arguments
``(model_args, model_kwargs)`` are a JAX pytree (``None`` is structure, not a leaf).

- Traced: every leaf that is an array of a numeric or boolean dtype: numpy arrays, numpy
  scalars (``np.float32(2.0)``) and JAX arrays. ``target.data`` is
  ``(model_args, model_kwargs)`` with every other leaf replaced by None, e.g.
  ``((X,), {"y": y, "n_groups": None})`` for ``from_numpyro(model, X, y=y, n_groups=4)``.
- Baked in: every other leaf (Python ints, floats, bools and strings, often plate sizes or
  flags; callables; arrays of other dtypes; other objects), the arguments' structure (which
  arguments are given, which are None), the traced leaves' shapes and dtypes, the model
  function itself and whatever it reads from closures or globals, and ``numpyro.param`` /
  ``numpyro.module`` values (taken from the model's first trace, as numpyro's own samplers do).
- A model that needs an array argument's value while it is traced (``int(y.max())``, numpy
  calls on an argument, Python control flow on its values) cannot take it as an input: then
  every argument is baked in, with a warning saying why. Pass such values as Python ints.

PyMC (``fm.from_pymc(model)``):

- Traced: the ``pm.Data`` containers (``model.data_vars``). ``target.data`` is
  ``{name: value}`` of their values when ``from_pymc`` was called; ``target.with_data(name=
  value)`` swaps some of them (a later ``pm.set_data`` on the model does not change a target).
- Baked in: observed values given as plain arrays (``observed=np.array(...)``), every
  constant of the model's graph, the values of its other shared variables (dims' lengths),
  the ``pm.Data`` shapes and dtypes, and the model's variables.

Program identity: two targets whose programs are the same (the same model function or
``pm.Model``, the same baked-in values and structure, traced data of the same shapes and
dtypes) have log densities (and log priors) that compare and hash equal, so compiled runs
are shared between them; `ModelLogDensity.program_key` is what is compared. Equal is not
the same on a call without data: ``log_prob(x)`` reads each target's own data. JAX caches a
jitted function's trace by the function's equality, so ``jax.jit(target.log_prob)`` called
as ``f(x)`` bakes the first target's data into a trace that an equal target's
``jax.jit(other.log_prob)(x)`` reuses. Under ``jax.jit`` of the density itself, pass the
data (``f(x, other.data)``), or jit a new function (``jax.jit(lambda x: other.log_prob(x))``).
The `Sampler` always passes the data.

numpyro and PyMC are optional: each is imported only by its ``from_*`` function.
"""

from flowmc_like.adapters.model_target import (
    CONSTRAIN_CHUNK,
    ModelLogDensity,
    ModelLogPrior,
    ModelTarget,
)
from flowmc_like.adapters.numpyro_target import from_numpyro
from flowmc_like.adapters.pymc_target import from_pymc

__all__ = [
    "CONSTRAIN_CHUNK",
    "ModelLogDensity",
    "ModelLogPrior",
    "ModelTarget",
    "from_numpyro",
    "from_pymc",
]
