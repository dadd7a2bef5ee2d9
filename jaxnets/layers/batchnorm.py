"""Batch normalisation (Ioffe & Szegedy 2015) with the full hand-written backward through the batch statistics.

Features are on the last axis: dense (m, n) or images (m, H, W, C); statistics are taken over all other axes,
N values per feature (N = m, or m·H·W). In training:

    μ = (1/N) Σ x,   σ² = (1/N) Σ (x − μ)²   (the biased variance),
    x̂ = (x − μ)/√(σ² + ε),   y = γ x̂ + β                                                  (B1)

Every x moves μ and σ², so the backward is not just γ/σ · δ:

    ∂C/∂β = Σ δ,   ∂C/∂γ = Σ δ ⊙ x̂,
    ∂C/∂x = γ/√(σ² + ε) · (δ − mean(δ) − x̂ ⊙ mean(δ ⊙ x̂))                                 (B2)

(sums and means over the N values of each feature). At evaluation (ctx.train False) the running statistics
replace μ and σ², which are then constants: ∂C/∂x = γ/√(σ²_run + ε) · δ,
with the same ∂C/∂γ, ∂C/∂β.

Running statistics (the `state` {"mean", "var"}, initially 0 and 1), updated on every training forward pass:

    running = momentum · running + (1 − momentum) · batch                                            (B3)

momentum=0.9 is Flax's convention (PyTorch's momentum=0.1 means 1 − 0.9). The batch variance entering (B3) is the
biased σ² (`running_var="biased"`, Flax) or the unbiased N/(N − 1)·σ² (`running_var="unbiased"`, PyTorch; with
N = 1 the factor is taken as 1). Normalisation always uses the biased σ².

`axis_name` (inside `pmap`/`shard_map`/`vmap` with that axis name) computes μ and σ² over the whole global batch
with `lax.pmean`, assuming equal per-device batches. The backward then takes mean(δ) and mean(δ ⊙ x̂) globally
too, so that the per-device gradients, averaged over devices (as data-parallel training does), equal the
gradient of the mean loss over the global batch.

Params {"gamma": ones, "beta": zeros} are not penalised (penalties act on keys named "w"). Under mixed precision
(bfloat16/float16 inputs) the statistics, the normalisation and the backward's reductions run in float32 and
the running statistics stay float32. Inputs and params of different float dtypes promote as `jnp` does (like
Dense): the output has the promoted dtype of x, γ and β; dx comes back in the input's dtype and the gradients in
the params' (as `jax.vjp` gives them). Training on a batch with one value per feature is refused (its variance
is 0: nothing would learn).
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer, Meta
from jaxnets.initializers import ones, zeros
from jaxnets.layers._args import check_dtype, check_initializer, layer_name


class _TrainCache(NamedTuple):
    xhat: jax.Array
    inv_std: jax.Array   # 1/√(σ² + ε) of the batch, shape (n,)
    x_dtype: jax.Array   # a zero-size token of the input's dtype: dx is returned in it


class _EvalCache(NamedTuple):
    xhat: jax.Array
    inv_std: jax.Array   # 1/√(σ²_run + ε), shape (n,)
    x_dtype: jax.Array


def BatchNorm(momentum: float = 0.9, eps: float = 1e-5, axis_name=None, running_var: str = "biased",
              gamma_init=ones, beta_init=zeros, dtype=None) -> Layer:
    """Batch normalisation over all axes but the last; params {"gamma", "beta"}, state {"mean", "var"} of shape (n,)."""
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
        raise ValueError(f"BatchNorm(momentum): momentum must be a float in [0, 1] (running = momentum·running + "
                         f"(1 − momentum)·batch; PyTorch's 0.1 is 0.9 here), got {momentum!r}")
    if momentum == 1:
        warnings.warn("BatchNorm(momentum=1): the running statistics never move from their initial mean 0 and "
                      "variance 1, so evaluation normalises with those instead of the data's; use e.g. 0.9 (Flax) "
                      "or 0.99 unless frozen statistics are meant", UserWarning, stacklevel=2)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"BatchNorm(eps): eps must be a positive finite float (added to the variance, e.g. 1e-5), "
                         f"got {eps!r}")
    if running_var not in ("biased", "unbiased"):
        raise ValueError(f"BatchNorm(running_var): choose 'biased' (Flax) or 'unbiased' (PyTorch), got {running_var!r}")
    if axis_name is not None and not isinstance(axis_name, (str, tuple)):
        raise TypeError(f"BatchNorm(axis_name): the name of a mapped axis (a str, as given to pmap/shard_map/vmap) or "
                        f"None, got {type(axis_name).__name__} {axis_name!r}")
    for arg, fn in (("gamma_init", gamma_init), ("beta_init", beta_init)):
        check_initializer("BatchNorm", arg, fn)
    check_dtype("BatchNorm", dtype)
    name = layer_name("BatchNorm", [momentum], eps=(eps, 1e-5), axis_name=(axis_name, None),
                      running_var=(running_var, "biased"), gamma_init=(gamma_init, ones),
                      beta_init=(beta_init, zeros), dtype=(dtype, None))

    def global_mean(v):
        return v if axis_name is None else lax.pmean(v, axis_name)

    def init(key, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"{name}: needs inputs with a feature axis, got per-example shape {tuple(input_shape)}")
        n = input_shape[-1]
        g_key, b_key = jax.random.split(key)
        params = {"gamma": gamma_init(g_key, (n,), dtype), "beta": beta_init(b_key, (n,), dtype)}
        state = {"mean": zeros(None, (n,), dtype), "var": ones(None, (n,), dtype)}
        return tuple(input_shape), params, state

    def forward(params, state, x, ctx):
        gamma, beta = params["gamma"], params["beta"]
        if x.ndim < 2 or x.shape[-1] != gamma.shape[0]:
            raise ValueError(
                f"{name}: input has shape {tuple(x.shape)} but this layer normalises {gamma.shape[0]} features on the "
                f"last axis of a batch (batch, ..., {gamma.shape[0]}); init the model with the data's per-example shape"
            )
        axes = tuple(range(x.ndim - 1))
        count = x.size // x.shape[-1]
        if ctx.train and count == 1 and axis_name is None:
            raise ValueError(
                f"{name}: training on a batch of 1 value per feature (input shape {tuple(x.shape)}): its variance "
                "is 0 and its mean is the value itself, so every output is β and nothing upstream learns; use "
                "batches of 2 or more (with fit: a batch_size that leaves no remainder batch of 1, or drop_last=True)")
        token = jnp.zeros((0,), x.dtype)
        out_dtype = jnp.result_type(x.dtype, gamma.dtype, beta.dtype)   # promoted as jnp (and Dense) would
        x = x.astype(jnp.promote_types(out_dtype, jnp.float32))  # statistics in float32 (or wider) under bf16/f16
        if ctx.train:                                                                   # (B1)
            mean = global_mean(jnp.mean(x, axis=axes))
            centred = x - mean
            var = global_mean(jnp.mean(centred * centred, axis=axes))
            inv_std = lax.rsqrt(var + eps)
            xhat = centred * inv_std
            if axis_name is not None:
                count = count * lax.psum(1, axis_name)
            batch_var = var
            if running_var == "unbiased":
                batch_var = var * count / jnp.maximum(count - 1, 1)
            new_state = {"mean": (momentum * state["mean"] + (1 - momentum) * lax.stop_gradient(mean)     # (B3)
                                  ).astype(state["mean"].dtype),
                         "var": (momentum * state["var"] + (1 - momentum) * lax.stop_gradient(batch_var)
                                 ).astype(state["var"].dtype)}
            cache = _TrainCache(xhat, inv_std, token)
        else:
            inv_std = lax.rsqrt(state["var"] + eps)
            xhat = (x - state["mean"]) * inv_std
            new_state = state
            cache = _EvalCache(xhat, inv_std, token)
        return (gamma * xhat + beta).astype(out_dtype), new_state, cache

    def backward(params, cache, dy):                                                    # (B2)
        gamma = params["gamma"]
        xhat, inv_std, token = cache
        axes = tuple(range(dy.ndim - 1))
        in_dtype, dy = token.dtype, dy.astype(xhat.dtype)   # reductions in the statistics' (float32 or wider) dtype
        dbeta = jnp.sum(dy, axis=axes)
        dgamma = jnp.sum(dy * xhat, axis=axes)
        grads = {"gamma": dgamma.astype(gamma.dtype), "beta": dbeta.astype(gamma.dtype)}
        if isinstance(cache, _EvalCache):
            return grads, (dy * (gamma * inv_std)).astype(in_dtype)
        count = dy.size // dy.shape[-1]
        mean_dy = global_mean(dbeta / count)
        mean_dy_xhat = global_mean(dgamma / count)
        dx = (gamma * inv_std) * (dy - mean_dy - xhat * mean_dy_xhat)
        return grads, dx.astype(in_dtype)

    return Layer(init, forward, backward, name, meta=Meta(bias="beta"))
