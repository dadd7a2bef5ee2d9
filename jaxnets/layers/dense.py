"""Fully connected layer z = a·W + b, with its hand-written backward pass.

Row-vector convention: a batch `a` has shape (m, n_in), W has shape (n_in, n_out), b has shape (n_out,).
The textbook writes zˡ = Wˡ aˡ⁻¹ + bˡ with column vectors; our W is its transpose, so its ∂C/∂W = δ aᵀ
becomes aᵀ·δ here.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer, Meta
from jaxnets.initializers import glorot_uniform, zeros
from jaxnets.layers._args import check_dtype, check_initializer, layer_name


def Dense(n: int, w_init=glorot_uniform, b_init=zeros, dtype=None, *, use_bias: bool = True) -> Layer:
    """A dense layer with `n` outputs: params {"w": (n_in, n), "b": (n,)}; input (m, n_in) -> output (m, n).

    `use_bias=False` drops "b" (z = a·W), the right choice before a BatchNorm, whose shift β does the bias's job
    (a bias there has an identically zero gradient). W and b are drawn from independent keys.

    Inputs and params of different float dtypes promote as `jnp.dot` does (float32 inputs, float64 params: a
    float64 output); the backward returns ∂C/∂x in the input's dtype and ∂C/∂W, ∂C/∂b in the params' dtypes, as
    `jax.vjp` does. The name shows every non-default argument, e.g. `Dense(10, w_init=he_normal)`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"Dense(n): n must be a positive int (number of output units), got {n!r}")
    if not isinstance(use_bias, bool):
        raise TypeError(f"Dense(use_bias): True or False, got {use_bias!r}")
    check_initializer(f"Dense({n})", "w_init", w_init)
    check_initializer(f"Dense({n})", "b_init", b_init)
    check_dtype(f"Dense({n})", dtype)
    name = layer_name("Dense", [n], use_bias=(use_bias, True), w_init=(w_init, glorot_uniform),
                      b_init=(b_init, zeros), dtype=(dtype, None))

    def init(key, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"{name}: expects flat inputs of shape (n_in,), got per-example shape {input_shape}; "
                "put Flatten() before it"
            )
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (input_shape[0], n), dtype)}
        if use_bias:
            params["b"] = b_init(b_key, (n,), dtype)
        return (n,), params, ()

    def forward(params, state, x, ctx):
        w = params["w"]
        if x.ndim != 2 or x.shape[1] != w.shape[0]:
            raise ValueError(
                f"{name}: input has shape {tuple(x.shape)} but this layer expects (batch, {w.shape[0]}); "
                f"check the model's input size (init with input_shape=({x.shape[-1] if x.ndim else '?'},)) "
                "or reshape the data to (batch, features)"
            )
        z = jnp.dot(x, w)
        if use_bias:
            z = z + params["b"]
        return z, state, x  # cache: the incoming activation a

    def backward(params, a, delta):
        # δ = ∂C/∂z arrives from above (it already carries σ′ if an activation follows).
        # ∂C/∂W = aᵀ δ, summed over the batch (BP4); contract the batch axis directly, no transpose.
        # Each comes back in the dtype of what it is the gradient of (a no-op when the dtypes agree).
        w = params["w"]
        grads = {"w": lax.dot_general(a, delta, (((0,), (0,)), ((), ()))).astype(w.dtype)}
        if use_bias:
            # ∂C/∂b = δ, summed over the batch (BP3).
            grads["b"] = jnp.sum(delta, axis=0).astype(params["b"].dtype)
        # ∂C/∂a = δ Wᵀ, the (Wˡ⁺¹)ᵀ δˡ⁺¹ factor of BP2; contract the output axis of W.
        da = lax.dot_general(delta, w, (((1,), (1,)), ((), ())))
        return grads, da.astype(a.dtype)

    return Layer(init, forward, backward, name, meta=Meta(bias="b" if use_bias else None, weights=("w",)))
