"""flowmc_like: normalizing-flow-augmented MCMC in JAX.

Many parallel chains take local steps (MALA, HMC, random walk; single-site updates for
discrete states) while a normalizing flow (an autoregressive model for discrete states),
trained online on their draws, proposes independence Metropolis-Hastings jumps between modes.

Extension points: subclass `AbstractLocalKernel` (or `AbstractDiscreteKernel`) for a new
local kernel, `AbstractFlow` (or `AbstractGlobalModel`, `AbstractDiscreteModel`) for a new
global model, and check it with `check_kernel` / `check_model`.
"""

from flowmc_like._types import Space, StepInfo
from flowmc_like.adaptation.base import Adaptation, no_adaptation
from flowmc_like.adaptation.builders import step_size_adaptation, step_size_and_mass_adaptation
from flowmc_like.adapters.ppl import ModelTarget, from_numpyro, from_pymc
from flowmc_like.approximation import Approximation
from flowmc_like.conformance import ConformanceError, ConformanceReport, check_kernel, check_model
from flowmc_like.diagnostics import RunDiagnostics
from flowmc_like.evidence import EvidenceWarning, LogEvidence
from flowmc_like.kernels.base import AbstractDiscreteKernel, AbstractLocalKernel
from flowmc_like.kernels.hmc import HMC
from flowmc_like.kernels.mala import MALA
from flowmc_like.kernels.metropolis import mh_accept
from flowmc_like.kernels.random_walk import RandomWalk
from flowmc_like.kernels.site_flip import SiteFlip
from flowmc_like.lattice import LatticeTarget, make_ising, make_potts
from flowmc_like.loading import load_approximation, load_result
from flowmc_like.models.autoregressive import Autoregressive
from flowmc_like.models.base import (
    AbstractDiscreteModel,
    AbstractFlow,
    AbstractGlobalModel,
    ModelParams,
)
from flowmc_like.models.lattice_autoregressive import LatticeAutoregressive
from flowmc_like.models.real_nvp import RealNVP
from flowmc_like.models.rq_spline import RQSpline
from flowmc_like.pairwise import PairwiseTarget, make_pairwise
from flowmc_like.result import History, SamplerResult
from flowmc_like.sampler import Sampler

__version__ = "0.1.0"

__all__ = [
    "AbstractDiscreteKernel",
    "AbstractDiscreteModel",
    "AbstractFlow",
    "AbstractGlobalModel",
    "AbstractLocalKernel",
    "Adaptation",
    "Approximation",
    "Autoregressive",
    "ConformanceError",
    "ConformanceReport",
    "EvidenceWarning",
    "HMC",
    "History",
    "LatticeAutoregressive",
    "LatticeTarget",
    "LogEvidence",
    "MALA",
    "ModelParams",
    "ModelTarget",
    "PairwiseTarget",
    "RQSpline",
    "RandomWalk",
    "RealNVP",
    "Sampler",
    "RunDiagnostics",
    "SamplerResult",
    "SiteFlip",
    "Space",
    "StepInfo",
    "__version__",
    "check_kernel",
    "check_model",
    "from_numpyro",
    "from_pymc",
    "load_approximation",
    "load_result",
    "make_ising",
    "make_pairwise",
    "make_potts",
    "mh_accept",
    "no_adaptation",
    "step_size_adaptation",
    "step_size_and_mass_adaptation",
]
