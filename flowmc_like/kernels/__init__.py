"""Local Markov kernels: the protocol, the accept/reject rule and the continuous kernels."""

from flowmc_like.kernels.base import AbstractLocalKernel, Adaptation, StepInfo, no_adaptation
from flowmc_like.kernels.hmc import HMC, HMCParams, HMCState
from flowmc_like.kernels.mala import MALA, MALAParams, MALAState
from flowmc_like.kernels.metropolis import mh_accept
from flowmc_like.kernels.random_walk import RandomWalk, RandomWalkParams, RandomWalkState

__all__ = [
    "HMC",
    "MALA",
    "AbstractLocalKernel",
    "Adaptation",
    "HMCParams",
    "HMCState",
    "MALAParams",
    "MALAState",
    "RandomWalk",
    "RandomWalkParams",
    "RandomWalkState",
    "StepInfo",
    "mh_accept",
    "no_adaptation",
]
