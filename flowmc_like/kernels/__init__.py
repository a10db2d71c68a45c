"""Local Markov kernels: the protocol, the accept/reject rule, continuous and discrete kernels."""

from flowmc_like.kernels.base import (
    AbstractDiscreteKernel,
    AbstractLocalKernel,
    Adaptation,
    StepInfo,
    no_adaptation,
)
from flowmc_like.kernels.hmc import HMC, HMCParams, HMCState
from flowmc_like.kernels.mala import MALA, MALAParams, MALAState
from flowmc_like.kernels.metropolis import acceptance_probability, mh_accept
from flowmc_like.kernels.random_walk import RandomWalk, RandomWalkParams, RandomWalkState
from flowmc_like.kernels.site_flip import SiteFlip, SiteFlipParams, SiteFlipState

__all__ = [
    "HMC",
    "MALA",
    "AbstractDiscreteKernel",
    "AbstractLocalKernel",
    "Adaptation",
    "HMCParams",
    "HMCState",
    "MALAParams",
    "MALAState",
    "RandomWalk",
    "RandomWalkParams",
    "RandomWalkState",
    "SiteFlip",
    "SiteFlipParams",
    "SiteFlipState",
    "StepInfo",
    "acceptance_probability",
    "mh_accept",
    "no_adaptation",
]
