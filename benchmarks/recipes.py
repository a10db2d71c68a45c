"""The recipes of docs/hard_targets.md, as ``fm.Sampler`` keyword settings.

The benchmark report runs flowmc_like with its defaults; these recipes are documented
examples of what a user may set by hand, measured against the defaults with
``python -m benchmarks.defaults --recipe NAME`` (`benchmarks.defaults`). Values are
JSON-able; ``"local_kernel"``/``"global_model"`` take ``{"name": ..., "kwargs": ...}`` specs
built by `benchmarks.peers.flowmc_like_peer.build_component`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CURVED", "MULTIMODAL", "RECIPES"]

MULTIMODAL: dict[str, Any] = {"n_local_steps": 25, "n_global_steps": 50}
"""Separated modes: more flow proposals per loop than local steps (the same 75 steps per
loop); local steps never leave a mode, so a long local stretch is one correlated block."""

CURVED: dict[str, Any] = {
    "local_kernel": {"name": "HMC", "kwargs": {"n_leapfrog": 20}},
    "local_in_latent_space": False,
    "n_training_loops": 60,
    "n_window_loops": 20,
    "n_local_steps": 25,
    "n_global_steps": 50,
}
"""A curved ridge with heavy tails (Rosenbrock): HMC in x-space (its trajectories follow the
ridge into tails the flow has not learned), 60 training loops with a 20-loop training window
(the rare tail excursions stay in the training data), and the 25 local / 50 global split."""

RECIPES: dict[str, dict[str, Any]] = {"multimodal": MULTIMODAL, "curved": CURVED}
"""Recipe name -> settings, for ``python -m benchmarks.defaults --recipe NAME``."""
