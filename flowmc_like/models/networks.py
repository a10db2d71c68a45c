"""Small `flax.linen` networks used by the global models.

`MLP` is the conditioner of every coupling layer: it maps the masked event ``(n_dim,)``
to the inner bijector's raw parameters ``(out_size,)``. Its last layer is zero-initialised
(kernel and bias), so a freshly initialised flow is exactly the identity map.

`MaskedDense` is a dense layer whose kernel is multiplied by a fixed connectivity mask, and
`MADE` stacks them into a masked autoregressive network (Germain et al. 2015) that maps a
one-hot event ``(n_dim, n_categories)`` to conditional logits of the same shape; it is the
network of the `Autoregressive` model. Its output layer is zero-initialised too, so a fresh
model is exactly uniform.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flowmc_like._types import Array
from flowmc_like.models.masks import made_direct_mask, made_masks

__all__ = ["MADE", "MLP", "MaskedDense"]


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


class MaskedDense(nn.Module):
    """Dense layer with a fixed 0/1 connectivity mask: ``y = x @ (W * M) + b``.

    ``M`` has the kernel's layout ``(fan_in, features)``; masked weights are replaced by exact
    zeros (so they receive zero gradient and cannot leak information, even if ``W`` holds a
    non-finite value there). The stored kernel keeps its full shape, so masked and unmasked
    layers have the same parameter tree.

    Attributes:
        features: output size.
        mask: boolean numpy array ``(fan_in, features)``; True keeps the connection.
        kernel_init: initialiser of the ``(fan_in, features)`` kernel.
        bias_init: initialiser of the ``(features,)`` bias.
        use_bias: add a bias (default True); without it the layer is ``y = x @ (W * M)``.
        param_dtype: dtype of the created parameters.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> layer = MaskedDense(2, mask=np.array([[True, False], [True, True]]))
        >>> variables = layer.init(jax.random.key(0), jnp.zeros(2))
        >>> jac = jax.jacfwd(lambda x: layer.apply(variables, x))(jnp.ones(2))
        >>> bool(jac[1, 0] == 0.0)  # mask[0, 1] is False: output 1 does not read input 0
        True
    """

    features: int
    mask: Any
    kernel_init: Callable[..., Array] = nn.initializers.lecun_normal()
    bias_init: Callable[..., Array] = nn.initializers.zeros
    use_bias: bool = True
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Apply the layer to ``x`` of shape ``(..., fan_in)`` -> ``(..., features)``."""
        fan_in = x.shape[-1]
        if tuple(self.mask.shape) != (fan_in, self.features):
            raise ValueError(
                f"MaskedDense: mask has shape {tuple(self.mask.shape)}; expected "
                f"(fan_in, features) = ({fan_in}, {self.features})."
            )
        kernel = self.param("kernel", self.kernel_init, (fan_in, self.features), self.param_dtype)
        y = x @ jnp.where(self.mask, kernel, 0)
        if not self.use_bias:
            return y
        return y + self.param("bias", self.bias_init, (self.features,), self.param_dtype)


class MADE(nn.Module):
    """Masked autoregressive network: one-hot ``(n_dim, K)`` -> conditional logits ``(n_dim, K)``.

    The one-hot input is flattened site-major to ``n_dim * K`` units, passed through
    `MaskedDense` hidden layers (``activation`` after each) and a `MaskedDense` output layer
    with masks from `masks.made_masks`, and reshaped to ``(n_dim, K)``. With ``direct`` (and
    at least one hidden layer) a masked linear map from the input straight to the output
    (`masks.made_direct_mask`, no bias) is added to the output layer's result. Row ``i`` of the
    output depends only on input rows ``< i`` (row 0 is the output bias). The output and direct
    layers are zero-initialised, so a fresh network returns zeros (uniform conditionals).

    Parameter tree: ``{"hidden_0": {"kernel", "bias"}, ..., "hidden_{L-1}": ..., "output":
    {"kernel": (H_L, n_dim * K), "bias": (n_dim * K,)}, "direct": {"kernel": (n_dim * K,
    n_dim * K)}}`` (``H_0 = n_dim * K``; ``"direct"`` only with ``direct``); the
    `Autoregressive` model's incremental sampler reads these leaves directly.

    Attributes:
        n_dim: number of sites.
        n_categories: number of categories ``K``.
        hidden_sizes: hidden widths; ``()`` gives a masked linear map (a softmax autoregression).
        activation: elementwise nonlinearity after each hidden layer.
        direct: add direct input-to-output connections (ignored without hidden layers, where
            the network already is the direct map).
        param_dtype: dtype of the created parameters.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> net = MADE(n_dim=3, n_categories=2, hidden_sizes=(4,))
        >>> variables = net.init(jax.random.key(0), jnp.zeros((3, 2)))
        >>> net.apply(variables, jax.nn.one_hot(jnp.array([0, 1, 1]), 2)).shape
        (3, 2)
    """

    n_dim: int
    n_categories: int
    hidden_sizes: Sequence[int]
    activation: Callable[[Array], Array] = jax.nn.gelu
    direct: bool = False
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, one_hot: Array) -> Array:
        """Logits ``(..., n_dim, K)`` from a (possibly relaxed) one-hot ``(..., n_dim, K)``."""
        size = self.n_dim * self.n_categories
        masks = made_masks(self.n_dim, self.n_categories, tuple(self.hidden_sizes))
        inputs = x = one_hot.reshape((*one_hot.shape[:-2], size))
        for layer, (width, mask) in enumerate(zip(self.hidden_sizes, masks, strict=False)):
            dense = MaskedDense(width, mask, param_dtype=self.param_dtype, name=f"hidden_{layer}")
            x = self.activation(dense(x))
        head = MaskedDense(
            size,
            masks[-1],
            kernel_init=nn.initializers.zeros,
            bias_init=nn.initializers.zeros,
            param_dtype=self.param_dtype,
            name="output",
        )
        out = head(x)
        if self.direct and self.hidden_sizes:
            direct = MaskedDense(
                size,
                made_direct_mask(self.n_dim, self.n_categories),
                kernel_init=nn.initializers.zeros,
                use_bias=False,
                param_dtype=self.param_dtype,
                name="direct",
            )
            out = out + direct(inputs)
        return out.reshape((*one_hot.shape[:-2], self.n_dim, self.n_categories))
