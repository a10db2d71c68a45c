"""Sampler runners ("peers") with one calling convention, so `benchmarks.run` can compare them.

Each peer module exposes ``run(target, log_prob, x0, seed, schedule, overrides) -> PeerRun``.
``log_prob`` is the target's density, possibly wrapped (evaluation counting); ``x0`` is the
``(n_chains, n_dim)`` start shared by every sampler for a given seed.

Peers:
- ``flowmc_like``: ours, `benchmarks.peers.flowmc_like_peer`;
- ``flowmc``: flowMC 0.6.x RQSpline + MALA bundle, `benchmarks.peers.flowmc_peer`;
- ``nuts``: blackjax NUTS with window adaptation, `benchmarks.peers.nuts_peer`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["PEER_MODULES", "PeerRun", "Schedule", "load_peer"]

PEER_MODULES: dict[str, str] = {
    "flowmc_like": "benchmarks.peers.flowmc_like_peer",
    "flowmc": "benchmarks.peers.flowmc_peer",
    "nuts": "benchmarks.peers.nuts_peer",
}


@dataclass(frozen=True)
class Schedule:
    """The run length shared by all samplers of one comparison.

    A loop is ``n_local_steps`` local steps then ``n_global_steps`` flow steps (training loops
    also fit the flow for ``n_epochs``). Production draws per chain are
    ``n_production_loops * (n_local_steps + n_global_steps)`` for both flow samplers; NUTS
    gets the same number of production draws and ``n_training_loops * (n_local + n_global)``
    warm-up steps.
    """

    n_chains: int = 32
    n_local_steps: int = 50
    n_global_steps: int = 25
    n_training_loops: int = 20
    n_production_loops: int = 20
    n_epochs: int = 5
    learning_rate: float = 1e-3

    @property
    def steps_per_loop(self) -> int:
        """Local plus global steps in one loop."""
        return self.n_local_steps + self.n_global_steps

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON and keyword arguments)."""
        return asdict(self)


@dataclass
class PeerRun:
    """What a peer returns.

    Attributes:
        samples: ``(n_chains, n_draws, n_dim)`` production draws (numpy).
        timings: seconds; keys ``total`` (construction + run, measured outside the library),
            ``compile``, ``training`` (warm-up: training loops or adaptation, compile excluded),
            ``production`` (compile excluded) and ``other`` (the rest: construction, transfers).
        global_acceptance: mean flow-proposal acceptance in production (None for NUTS).
        local_acceptance: mean local-kernel acceptance in production.
        settings: every setting the sampler ran with (for the report).
        extra: anything else worth keeping (per-strategy times, losses, step sizes...).
    """

    samples: np.ndarray
    timings: dict[str, float]
    global_acceptance: float | None
    local_acceptance: float | None
    settings: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


PeerFn = Callable[..., PeerRun]


def load_peer(name: str) -> ModuleType:
    """Import the peer module registered under ``name``."""
    try:
        return importlib.import_module(PEER_MODULES[name])
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(PEER_MODULES)}") from None
