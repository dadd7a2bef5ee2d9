"""Layer normalisation (Ba, Kiros & Hinton 2016) with its full hand-written backward.

Each example is normalised over its last (feature) axis of size n, the same in training and evaluation (no
batch statistics, no state):

    μ = (1/n) Σⱼ xⱼ,   σ² = (1/n) Σⱼ (xⱼ − μ)²,
    x̂ = (x − μ)/√(σ² + ε),   y = γ ⊙ x̂ + β                                                (L1)

with learnable γ, β of shape (n,). Every xⱼ moves μ and σ² of its own example,
so with g = ∂C/∂x̂ = δ ⊙ γ:

    ∂C/∂β = Σ δ,   ∂C/∂γ = Σ δ ⊙ x̂   (sums over the batch and any leading axes)
    ∂C/∂x = (1/√(σ² + ε)) · (g − meanⱼ(g) − x̂ ⊙ meanⱼ(g ⊙ x̂))                             (L2)

(means over the feature axis of each example): BatchNorm's (B2) with the roles of the axes exchanged. Under mixed
precision the statistics and reductions run in float32. Inputs and params of different float dtypes promote as
`jnp` does (like Dense): y has the promoted dtype of x, γ and β; dx comes back in the input's dtype and the
gradients in the params'.

One feature (n = 1) is refused at init: x̂ = 0 for every input, so y is the constant β and ∂C/∂x = 0 (L2) —
nothing before the layer would ever learn.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer, Meta
from jaxnets.initializers import ones, zeros
from jaxnets.layers._args import check_dtype, check_initializer, layer_name


def LayerNorm(eps: float = 1e-5, gamma_init=ones, beta_init=zeros, dtype=None) -> Layer:
    """Per-example normalisation over the last axis; params {"gamma": ones, "beta": zeros} of shape (n,); no
    state. Input (m, ..., n) -> output of the same shape."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"LayerNorm(eps): a positive finite float (added to the variance), got {eps!r}")
    for arg, fn in (("gamma_init", gamma_init), ("beta_init", beta_init)):
        check_initializer("LayerNorm", arg, fn)
    check_dtype("LayerNorm", dtype)
    name = layer_name("LayerNorm", eps=(eps, 1e-5), gamma_init=(gamma_init, ones), beta_init=(beta_init, zeros),
                      dtype=(dtype, None))

    def init(key, input_shape):
        if len(input_shape) < 1 or input_shape[-1] < 1:
            raise ValueError(f"{name}: needs a feature axis of size >= 1 to normalise over, got per-example shape "
                             f"{tuple(input_shape)}")
        if input_shape[-1] == 1:
            raise ValueError(
                f"{name}: the last axis of per-example shape {tuple(input_shape)} has 1 feature; normalising one "
                "value over itself gives x̂ = 0, so the output is the constant β and no layer before this one ever "
                "learns. Normalise a wider axis (put LayerNorm after a layer with more features, or reshape so the "
                "features are last), or use BatchNorm, which normalises each feature over the batch")
        n = input_shape[-1]
        g_key, b_key = jax.random.split(key)
        return tuple(input_shape), {"gamma": gamma_init(g_key, (n,), dtype), "beta": beta_init(b_key, (n,), dtype)}, ()

    def forward(params, state, x, ctx):
        gamma, beta = params["gamma"], params["beta"]
        if x.ndim < 2 or x.shape[-1] != gamma.shape[0]:
            raise ValueError(f"{name}: input has shape {tuple(x.shape)} but this layer normalises {gamma.shape[0]} "
                             "features on the last axis; init the model with the data's per-example shape")
        token = jnp.zeros((0,), x.dtype)
        out_dtype = jnp.result_type(x.dtype, gamma.dtype, beta.dtype)   # promoted as jnp (and Dense) would
        x = x.astype(jnp.promote_types(out_dtype, jnp.float32))   # statistics in float32 (or wider) under bf16/f16
        mean = jnp.mean(x, axis=-1, keepdims=True)                                                   # (L1)
        centred = x - mean
        inv_std = lax.rsqrt(jnp.mean(centred * centred, axis=-1, keepdims=True) + eps)
        xhat = centred * inv_std
        return (gamma * xhat + beta).astype(out_dtype), state, (xhat, inv_std, token)

    def backward(params, cache, dy):                                                                 # (L2)
        xhat, inv_std, token = cache
        gamma = params["gamma"]
        axes = tuple(range(dy.ndim - 1))
        in_dtype, dy = token.dtype, dy.astype(xhat.dtype)
        g = dy * gamma
        dx = inv_std * (g - jnp.mean(g, axis=-1, keepdims=True) - xhat * jnp.mean(g * xhat, axis=-1, keepdims=True))
        grads = {"gamma": jnp.sum(dy * xhat, axis=axes).astype(gamma.dtype),
                 "beta": jnp.sum(dy, axis=axes).astype(gamma.dtype)}
        return grads, dx.astype(in_dtype)

    return Layer(init, forward, backward, name, meta=Meta(bias="beta"))
