"""Dropout (Srivastava et al. 2014) with inverted scaling, and its hand-written backward.

Training (ctx.train True): each unit is kept independently with probability q = 1 − rate and

    y = x ⊙ r / q,   r ~ Bernoulli(q) elementwise                                                  (D1)

so E[y] = x and nothing needs rescaling at evaluation, where y = x (identity). The backward uses the same mask:

    ∂C/∂x = ∂C/∂y ⊙ r / q                                                                          (D2)

The mask is drawn from `ctx.key` (`serial` folds each child's index into it, so two Dropout layers in a model
get independent masks) and cached for (D2). (The textbook's network3 uses non-inverted dropout, scaling the
weights by q at evaluation instead; the two give the same expected pre-activations.)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.core import Layer
from jaxnets.optim._util import concrete_value

_RATE = "a float in [0, 1), the probability of dropping a unit"


def Dropout(rate) -> Layer:
    """Drop each unit with probability `rate` (0 ≤ rate < 1) in training; identity in evaluation.

    `rate` may be a Python number or a concrete NumPy/JAX scalar (both range-checked here and used as a float),
    or a traced JAX scalar — e.g. `hp["dropout"]` inside a sweep, so that several rates share one compiled program
    (a traced rate has no value yet and is taken as given: keep it in [0, 1)).
    """
    host = concrete_value("Dropout(rate)", "rate", rate, _RATE)
    if jnp.ndim(rate) != 0:
        raise ValueError(f"Dropout(rate): a scalar rate is needed, got an array of shape {jnp.shape(rate)}")
    concrete = host is not None
    if concrete:
        rate = float(host)
        if not 0 <= rate < 1:
            raise ValueError(
                f"Dropout(rate): rate is the probability of DROPPING a unit and must lie in [0, 1), got {rate}; "
                "e.g. Dropout(0.5) keeps half the units (rate 1 would drop everything)"
            )
    name = f"Dropout({rate:g})" if concrete else "Dropout(traced rate)"

    def init(key, input_shape):
        return tuple(input_shape), (), ()

    def forward(params, state, x, ctx):
        if not ctx.train or (concrete and rate == 0.0):
            return x, state, None  # identity: no mask
        if ctx.key is None:
            raise ValueError(
                f"{name}: training mode needs a PRNG key for the dropout mask; call apply(model, params, state, x, "
                "train=True, key=jax.random.key(0)) or pass Ctx(train=True, key=...), or use train=False to evaluate"
            )
        keep = 1.0 - rate if concrete else 1.0 - jnp.asarray(rate, x.dtype)
        scale = 1.0 / keep
        mask = jax.random.bernoulli(ctx.key, keep, x.shape)
        return jnp.where(mask, x * scale, 0), state, (mask, jnp.asarray(scale, x.dtype))   # (D1)

    def backward(params, cache, dy):
        if cache is None:
            return (), dy
        mask, scale = cache
        return (), jnp.where(mask, dy * scale, 0)                                            # (D2)

    return Layer(init, forward, backward, name)
