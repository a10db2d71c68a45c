"""flowmc_like: normalizing-flow-augmented MCMC in JAX.

Many parallel chains take local steps (MALA, HMC, random walk; single-site updates for
discrete states) while a normalizing flow (an autoregressive model for discrete states),
trained online on their draws, proposes independence Metropolis-Hastings jumps between modes.
"""

from flowmc_like.adapters.ppl import ModelTarget, from_numpyro, from_pymc
from flowmc_like.kernels.hmc import HMC
from flowmc_like.kernels.mala import MALA
from flowmc_like.kernels.random_walk import RandomWalk
from flowmc_like.kernels.site_flip import SiteFlip
from flowmc_like.models.autoregressive import Autoregressive
from flowmc_like.models.real_nvp import RealNVP
from flowmc_like.models.rq_spline import RQSpline
from flowmc_like.result import History, SamplerResult
from flowmc_like.sampler import Sampler

__version__ = "0.1.0"

__all__ = [
    "Autoregressive",
    "HMC",
    "MALA",
    "ModelTarget",
    "History",
    "RQSpline",
    "RandomWalk",
    "RealNVP",
    "Sampler",
    "SamplerResult",
    "SiteFlip",
    "__version__",
    "from_numpyro",
    "from_pymc",
]
