"""Layers whose numeric settings may be traced arrays, for sweeping them inside one compiled program."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.core import Layer


def TracedDropout(rate) -> Layer:
    """Dropout (inverted scaling, rate = probability of dropping) whose `rate` may be a traced scalar, e.g.
    `hp["dropout"]` inside `grid_search(make_model=...)`. The same maths as `jaxnets.layers.Dropout`:
    training y = x ⊙ r / (1 − rate), r ~ Bernoulli(1 − rate); ∂C/∂x = ∂C/∂y ⊙ r / (1 − rate); evaluation y = x.
    A Python-number rate is range-checked; a traced one is taken as given (keep it in [0, 1))."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, jax.Array)):
        raise TypeError(f"TracedDropout(rate): a number or a scalar array is needed, got {type(rate).__name__}")
    if isinstance(rate, (int, float)) and not 0 <= rate < 1:
        raise ValueError(f"TracedDropout(rate): rate is the probability of dropping and must lie in [0, 1), "
                         f"got {rate}")

    def init(key, input_shape):
        return tuple(input_shape), (), ()

    def forward(params, state, x, ctx):
        if not ctx.train:
            return x, state, None
        if ctx.key is None:
            raise ValueError("TracedDropout: training mode needs a PRNG key for the mask; pass Ctx(train=True, "
                             "key=...) (fit and the sweeps do)")
        keep = 1.0 - jnp.asarray(rate, x.dtype)
        mask = jax.random.bernoulli(ctx.key, keep, x.shape)
        return jnp.where(mask, x / keep, 0), state, (mask, keep)

    def backward(params, cache, dy):
        if cache is None:
            return (), dy
        mask, keep = cache
        return (), jnp.where(mask, dy / keep, 0)

    return Layer(init, forward, backward, "TracedDropout")
