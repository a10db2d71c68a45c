"""The `Sampler`'s arguments: defaults filled in, combinations checked, identities.

Everything here runs when a `flowmc_like.Sampler` is built or a run starts, before anything
is compiled: the default kernel and model, the checks of moves and tempering, the warm start
taken from an earlier result, and the key that identifies a target's compiled programs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from flowmc_like import _validation
from flowmc_like.adapters.ppl import ModelTarget
from flowmc_like.compiler import WarmStart
from flowmc_like.config import SamplerConfig
from flowmc_like.kernels.base import AbstractDiscreteKernel, AbstractLocalKernel
from flowmc_like.kernels.mala import MALA
from flowmc_like.kernels.site_flip import SiteFlip
from flowmc_like.models.autoregressive import Autoregressive
from flowmc_like.models.base import AbstractDiscreteModel, AbstractFlow, AbstractGlobalModel
from flowmc_like.models.real_nvp import RealNVP
from flowmc_like.programs import has_global_moves
from flowmc_like.result import SamplerResult
from flowmc_like.target import n_categories_of

__all__ = [
    "DEFAULT_MODEL",
    "check_moves",
    "check_tempering",
    "default_steps",
    "optional_count",
    "program_identity",
    "resolve_kernel_and_model",
    "same_model",
    "unwrap_model_target",
    "warm_start_of",
]


class _DefaultModel:
    def __repr__(self) -> str:
        return "<default: RealNVP() or Autoregressive(n_categories=K)>"


DEFAULT_MODEL: Any = _DefaultModel()


def unwrap_model_target(log_prob: Any, n_dim: int | None) -> tuple[Any, int | None]:
    """``fm.Sampler(fm.from_numpyro(model, ...))``: the target's log density and dimension."""
    if not isinstance(log_prob, ModelTarget):
        return log_prob, n_dim
    if n_dim is not None and n_dim != log_prob.n_dim:
        raise ValueError(
            f"n_dim={n_dim} disagrees with the model's unconstrained dimension "
            f"{log_prob.n_dim}; leave n_dim out"
        )
    return log_prob.log_prob, log_prob.n_dim


DISCRETE_STEPS = (10, 40)
"""``(n_local_steps, n_global_steps)`` of a run with a discrete model, by default."""


def default_steps(
    model: AbstractGlobalModel | None, n_local_steps: Any, n_global_steps: Any
) -> tuple[Any, Any]:
    """The steps per loop: those given, else `DISCRETE_STEPS` with a discrete model.

    Without a discrete model, the `SamplerConfig` defaults (50 local, 25 global).
    """
    is_discrete = isinstance(model, AbstractDiscreteModel)
    local, global_ = (
        DISCRETE_STEPS
        if is_discrete
        else (
            SamplerConfig.n_local_steps,
            SamplerConfig.n_global_steps,
        )
    )
    return (
        local if n_local_steps is None else n_local_steps,
        global_ if n_global_steps is None else n_global_steps,
    )


def optional_count(name: str, value: Any) -> int | None:
    """``value`` checked as a positive count, or None left as it is."""
    return None if value is None else _validation.check_int(name, value, owner="Sampler")


def resolve_kernel_and_model(
    local_kernel: Any, global_model: Any
) -> tuple[AbstractLocalKernel, AbstractGlobalModel | None]:
    """Fill in the defaults and check that the kernel and the model work on the same space.

    Defaults follow whichever of the two is given: a discrete model gets
    ``SiteFlip(n_categories=K)``, a discrete kernel gets ``Autoregressive(n_categories=K)``;
    otherwise ``MALA()`` and ``RealNVP()``.
    """
    if global_model is not DEFAULT_MODEL and global_model is not None:
        if not isinstance(global_model, AbstractGlobalModel):
            raise TypeError(
                "Sampler: global_model must be a flowmc_like model such as fm.RealNVP(), "
                "fm.RQSpline() or fm.Autoregressive() (a subclass of fm.AbstractGlobalModel), "
                f"or None for local moves only; got {global_model!r} "
                f"(of type {type(global_model).__name__})"
            )
    if local_kernel is None:
        is_discrete = isinstance(global_model, AbstractDiscreteModel)
        local_kernel = SiteFlip(n_categories=global_model.n_categories) if is_discrete else MALA()
    if not isinstance(local_kernel, AbstractLocalKernel):
        raise TypeError(
            "Sampler: local_kernel must be a flowmc_like kernel such as fm.MALA(), fm.HMC(), "
            "fm.RandomWalk() or fm.SiteFlip() (a subclass of fm.AbstractLocalKernel); got "
            f"{local_kernel!r} (of type {type(local_kernel).__name__})"
        )
    if global_model is DEFAULT_MODEL:
        if isinstance(local_kernel, AbstractDiscreteKernel):
            global_model = Autoregressive(n_categories=local_kernel.n_categories)
        else:
            global_model = RealNVP()
    if global_model is None:
        return local_kernel, None
    if global_model.space is not local_kernel.space:
        raise ValueError(
            "Sampler: local_kernel and global_model must work on the same space "
            "(fm.SiteFlip with fm.Autoregressive for discrete states; fm.MALA, fm.HMC or "
            "fm.RandomWalk with fm.RealNVP or fm.RQSpline for continuous ones); got "
            f"local_kernel {type(local_kernel).__name__} on a {local_kernel.space.value} "
            f"space and global_model {type(global_model).__name__} on a "
            f"{global_model.space.value} space"
        )
    kernel_k = n_categories_of(local_kernel)
    model_k = getattr(global_model, "n_categories", kernel_k)
    if kernel_k != model_k:
        raise ValueError(
            "Sampler: local_kernel and global_model must agree on n_categories; got "
            f"local_kernel n_categories={kernel_k}, global_model n_categories={model_k}"
        )
    return local_kernel, global_model


def check_moves(model: AbstractGlobalModel | None, config: SamplerConfig) -> None:
    """Global-only runs need a model; ``local_in_latent_space`` a flow and local steps."""
    if config.n_local_steps == 0 and not has_global_moves(model, config):
        raise ValueError(
            "Sampler: n_local_steps=0 runs global moves only, which needs a global_model and "
            f"n_global_steps >= 1; got global_model={model!r}, "
            f"n_global_steps={config.n_global_steps}"
        )
    if not config.local_in_latent_space:
        return
    is_flow = isinstance(model, AbstractFlow)
    if not is_flow or config.n_global_steps < 1 or config.n_local_steps < 1:
        raise ValueError(
            "Sampler: local_in_latent_space=True runs the local kernel through the trained "
            "flow, so it needs a flow global_model (fm.RealNVP(), fm.RQSpline() or another "
            "fm.AbstractFlow), n_global_steps >= 1 and n_local_steps >= 1; got "
            f"global_model={model!r}, n_global_steps={config.n_global_steps}, "
            f"n_local_steps={config.n_local_steps}"
        )


def check_tempering(
    kernel: AbstractLocalKernel, config: SamplerConfig, log_prior: Callable[..., Any] | None
) -> None:
    """Tempering runs in ``x``-space, and a ``delta_log_prob`` can only temper the whole density."""
    if not config.is_tempered:
        return
    if config.local_in_latent_space:
        raise ValueError(
            "Sampler: local_in_latent_space=True cannot be combined with n_temperatures > 1 "
            "(the hot replicas move in x-space); got "
            f"n_temperatures={config.n_temperatures}; leave local_in_latent_space out"
        )
    if log_prior is not None and getattr(kernel, "delta_log_prob", None) is not None:
        raise ValueError(
            "Sampler: log_prior tempers only the likelihood, but SiteFlip's delta_log_prob "
            "is a difference of the whole log density, which tempering can only scale as a "
            "whole; pass log_prior=None (the whole density is tempered) or drop "
            "delta_log_prob"
        )
    if log_prior is not None and config.max_temperature is not None:
        raise ValueError(
            "Sampler: with log_prior the hottest replica samples the prior (beta = 0), so "
            "max_temperature applies only when the whole density is tempered; got "
            f"max_temperature={config.max_temperature} and a log_prior; leave one out"
        )


def program_identity(function: Any) -> Any:
    """What identifies ``function`` as a program: its ``program_key`` (a PPL target's), or itself.

    Two `from_numpyro` targets of one model on data of the same shapes have the same
    ``program_key``: their compiled runs are shared, the data being an input.
    """
    key = getattr(function, "program_key", None)
    return ("program_key", key) if key is not None else _Identity.of(function)


class _Identity:
    """A key that compares by identity, for objects that cannot be hashed by value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    @staticmethod
    def of(value: Any) -> Any:
        """``value`` itself when hashable (functions hash by identity), else a wrapper."""
        try:
            hash(value)
        except TypeError:
            return _Identity(value)
        return value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value


def same_model(trained: Any, model: Any) -> bool:
    """``trained`` (a run's resolved model) is ``model``, whose ``symmetric`` may be left None.

    A model built with ``symmetric=None`` lets the run decide (`flowmc_like.symmetry`); the
    run's result holds the model it decided on.
    """
    if trained == model:
        return True
    if getattr(model, "symmetric", False) is None and hasattr(trained, "symmetric"):
        return dataclasses.replace(model, symmetric=trained.symmetric) == trained
    return False


def warm_start_of(result: Any, sampler: Any) -> WarmStart | None:
    """The params a run takes over from ``result`` (checked against ``sampler``), or None."""
    if result is None:
        return None
    if not isinstance(result, SamplerResult):
        raise TypeError(
            "Sampler.run: warm_start must be a SamplerResult (from an earlier run, or "
            f"fm.load_result(path)); got {type(result).__name__}"
        )
    for name in ("global_model", "local_kernel"):
        theirs, mine = getattr(result, name), getattr(sampler, name)
        if theirs is not None and type(theirs) is not type(mine):
            raise ValueError(
                f"Sampler.run: warm_start comes from a run with {name}={theirs!r}; this sampler "
                f"has {mine!r}. Warm-start from a run with the same {name}"
            )
    trained = result.global_model
    if trained is not None and not same_model(trained, sampler.global_model):
        raise ValueError(
            f"Sampler.run: warm_start's global_model {result.global_model!r} differs from "
            f"this sampler's {sampler.global_model!r}; its trained params would not fit"
        )
    model_params = result.model_params if sampler.global_model is not None else None
    in_latent = bool(np.any(result.history.in_latent_space[-1:]))
    acceptance = np.asarray(result.global_acceptance, dtype=float)
    reached = float(np.mean(acceptance)) if acceptance.size else float("nan")
    model = result.global_model if sampler.global_model is not None else None
    return WarmStart(model_params, result.kernel_params, in_latent, reached, model)
