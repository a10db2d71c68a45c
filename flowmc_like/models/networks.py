"""Small `flax.linen` networks used as flow conditioners.

`MLP` is the conditioner of every coupling layer: it maps the masked event ``(n_dim,)``
to the inner bijector's raw parameters ``(out_size,)``. Its last layer is zero-initialised
(kernel and bias), so a freshly initialised flow is exactly the identity map.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flowmc_like._types import Array

__all__ = ["MLP"]


class MLP(nn.Module):
    """Multi-layer perceptron ``x -> Dense -> act -> ... -> Dense(out_size)``.

    ``h_0 = x``, ``h_{k+1} = activation(W_k h_k + b_k)`` for each hidden size, and the output
    is ``W_out h_K + b_out`` with ``W_out = 0`` and ``b_out = 0`` at initialisation (so the
    network outputs zeros until it is trained; gradients still reach ``W_out``/``b_out``).

    GELU is the default activation: it is smooth (the flow's density stays differentiable),
    unbounded like ReLU (no saturation slowing maximum-likelihood training, unlike tanh), and
    ``gelu(0) = 0``.

    Attributes:
        hidden_sizes: widths of the hidden layers; ``()`` gives a linear map.
        out_size: size of the output vector.
        activation: elementwise nonlinearity between hidden layers.
        param_dtype: dtype of the created parameters.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> net = MLP(hidden_sizes=(8,), out_size=3)
        >>> variables = net.init(jax.random.key(0), jnp.zeros(2))
        >>> net.apply(variables, jnp.ones(2))
        Array([0., 0., 0.], dtype=float32)
    """

    hidden_sizes: Sequence[int]
    out_size: int
    activation: Callable[[Array], Array] = jax.nn.gelu
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Apply the network to ``x`` of shape ``(..., in_size)`` -> ``(..., out_size)``."""
        for size in self.hidden_sizes:
            x = self.activation(nn.Dense(size, param_dtype=self.param_dtype)(x))
        head = nn.Dense(
            self.out_size,
            kernel_init=nn.initializers.zeros,
            bias_init=nn.initializers.zeros,
            param_dtype=self.param_dtype,
        )
        return head(x)
