"""Two interchangeable gradient sources with one signature, and the manual backward inside jax's AD.

    grad_fn = manual(model, loss, penalty=None)     # hand-written backprop (the layers' backward passes)
    grad_fn = autodiff(model, loss, penalty=None)   # jax.value_and_grad of the same forward
    (loss_value, new_state), grads = grad_fn(params, state, x, y, ctx)

`loss_value` includes the penalty; `grads` has the structure of `params`. Both are pure and work under
`jit` and `vmap`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import Ctx, Layer


def penalised(loss_value, params, penalty):
    """The cost C = loss value + penalty.value(params) (just the loss value when `penalty` is None)."""
    return loss_value if penalty is None else loss_value + penalty.value(params)


def backprop(model: Layer, loss, penalty, params, state, x, y, ctx):
    """One hand-written forward and backward pass: (cost, new_state, outputs, dparams, dx).

    δᴸ = loss.grad(outputs, y) (∇ₐC, the 1/m included) enters the model's backward, which returns ∂C/∂params
    (plus the penalty's gradient) and ∂C/∂x."""
    outputs, new_state, cache = model.forward(params, state, x, ctx)
    value = penalised(loss.value(outputs, y), params, penalty)
    grads, dx = model.backward(params, cache, loss.grad(outputs, y))
    if penalty is not None:
        grads = jax.tree_util.tree_map(jnp.add, grads, penalty.grad(params))
    return value, new_state, outputs, grads, dx


def manual(model: Layer, loss, penalty=None):
    """Backprop by hand: δᴸ = loss.grad(a, y) (∇ₐC, the 1/m included), then the layers' backward in reverse."""

    def grad_fn(params, state, x, y, ctx=Ctx(train=True)):
        value, new_state, _, grads, _ = backprop(model, loss, penalty, params, state, x, y, ctx)
        return (value, new_state), grads

    return grad_fn


def autodiff(model: Layer, loss, penalty=None):
    """`jax.value_and_grad` of the same forward pass and cost: the cross-check for `manual`."""

    def objective(params, state, x, y, ctx):
        outputs, new_state, _ = model.forward(params, state, x, ctx)
        return penalised(loss.value(outputs, y), params, penalty), new_state

    value_and_grad = jax.value_and_grad(objective, has_aux=True)

    def grad_fn(params, state, x, y, ctx=Ctx(train=True)):
        return value_and_grad(params, state, x, y, ctx)

    return grad_fn


SOURCES = {"manual": manual, "autodiff": autodiff}


def get(source: str):
    """The gradient-source constructor named "manual" or "autodiff"."""
    try:
        return SOURCES[source]
    except KeyError:
        raise ValueError(f"gradients must be 'manual' or 'autodiff', got {source!r}") from None


def _zero_cotangent(x):
    """A zero cotangent for a non-differentiated input (float0 for integer and key arrays)."""
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, dtype=jax.dtypes.float0)


def as_custom_vjp(model: Layer):
    """The model as `f(params, state, x, ctx=Ctx()) -> (y, new_state)` whose reverse-mode derivative is the
    hand-written backward, so manual backprop runs inside `jax.grad`/`jax.vjp` of larger programs.

    Cotangents flow to `params` and `x`; `state` and the key get zero cotangents, and the cotangent of
    `new_state` is ignored (running statistics are not differentiated). Forward-mode (jvp) is not defined.
    """

    def call(params, state, x, ctx: Ctx = Ctx()):
        train = bool(ctx.train)

        @jax.custom_vjp
        def f(params, state, x, key):
            y, new_state, _ = model.forward(params, state, x, Ctx(train, key))
            return y, new_state

        def f_fwd(params, state, x, key):
            y, new_state, cache = model.forward(params, state, x, Ctx(train, key))
            return (y, new_state), (params, state, key, cache)

        def f_bwd(residuals, cotangents):
            params, state, key, cache = residuals
            dy, _ = cotangents
            dparams, dx = model.backward(params, cache, dy)
            dstate = jax.tree_util.tree_map(_zero_cotangent, state)
            dkey = None if key is None else _zero_cotangent(key)
            return dparams, dstate, dx, dkey

        f.defvjp(f_fwd, f_bwd)
        return f(params, state, x, ctx.key)

    return call
