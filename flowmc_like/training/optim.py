"""The optimiser used to train global models."""

from __future__ import annotations

import optax

__all__ = ["make_optimizer"]


def make_optimizer(
    learning_rate: float, max_grad_norm: float = 1.0
) -> optax.GradientTransformation:
    """Adam with global-norm gradient clipping.

    Args:
        learning_rate: Adam step size.
        max_grad_norm: gradients are rescaled so their global norm is at most this.

    Returns:
        ``optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))``.
    """
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))
