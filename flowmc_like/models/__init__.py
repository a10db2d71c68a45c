"""Global models: exactly normalised proposal densities trained online (flows)."""

from flowmc_like.models.autoregressive import Autoregressive
from flowmc_like.models.base import AbstractGlobalModel, ModelParams
from flowmc_like.models.lattice_autoregressive import LatticeAutoregressive
from flowmc_like.models.real_nvp import RealNVP
from flowmc_like.models.rq_spline import RQSpline

__all__ = [
    "AbstractGlobalModel",
    "Autoregressive",
    "LatticeAutoregressive",
    "ModelParams",
    "RQSpline",
    "RealNVP",
]
