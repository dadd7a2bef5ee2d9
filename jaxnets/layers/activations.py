"""Activation layers σ with their derivatives written out.

Each backward implements the ⊙ σ′(z) factor of the backprop equations: δ = ∂C/∂a ⊙ σ′(z) (BP1 at the output
layer, BP2 inside the network). Activations have no params and no state (both are `()`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.core import Layer


def _same_shape_init(key, input_shape):
    return tuple(input_shape), (), ()


def _activation(name: str, fn, backward_from_cache, cache_input: bool) -> Layer:
    """An elementwise (or row-wise) unit; the cache is z or σ(z), whichever the derivative needs."""

    def forward(params, state, z, ctx):
        y = fn(z)
        return y, state, (z if cache_input else y)

    def backward(params, cache, dy):
        return (), backward_from_cache(cache, dy)

    return Layer(_same_shape_init, forward, backward, name)


# σ(z) = 1/(1+e⁻ᶻ);  σ′(z) = σ(z)(1 − σ(z)), computed from the cached output.
Sigmoid = _activation("Sigmoid", jax.nn.sigmoid, lambda y, dy: dy * y * (1 - y), cache_input=False)

# tanh′(z) = 1 − tanh²(z), from the cached output.
Tanh = _activation("Tanh", jnp.tanh, lambda y, dy: dy * (1 - y * y), cache_input=False)

# ReLU(z) = max(0, z);  ReLU′(z) = 1[z > 0]. At z = 0 the derivative is taken as 0; the forward is written as
# a `where` so that jax.grad makes the same choice (jnp.maximum would split the tie as ½).
Relu = _activation("Relu", lambda z: jnp.where(z > 0, z, 0), lambda z, dy: jnp.where(z > 0, dy, 0), cache_input=True)

# Linear unit: σ(z) = z, σ′ = 1.
Identity = _activation("Identity", lambda z: z, lambda z, dy: dy, cache_input=True)


def _softmax_vjp(y, dy):
    # Jacobian of softmax: ∂yᵢ/∂zⱼ = yᵢ(1[i=j] − yⱼ), so (Jᵀ dy)ⱼ = yⱼ (dyⱼ − Σᵢ dyᵢ yᵢ).
    return y * (dy - jnp.sum(dy * y, axis=-1, keepdims=True))


# Softmax over the last axis, yⱼ = e^{zⱼ} / Σₖ e^{zₖ} (shifted by max z for stability).
Softmax = _activation("Softmax", lambda z: jax.nn.softmax(z, axis=-1), _softmax_vjp, cache_input=False)

# The perceptron's threshold unit: 1 if z > 0 else 0. Its derivative is 0 wherever it exists, so gradient
# descent cannot train it; perceptrons learn with the Rosenblatt rule instead (jaxnets.perceptron).
Step = _activation("Step", lambda z: (z > 0).astype(z.dtype), lambda z, dy: jnp.zeros_like(dy), cache_input=True)
