"""Two interchangeable gradient sources with one signature, and the manual backward inside jax's AD.

    grad_fn = manual(model, loss, penalty=None)     # hand-written backprop (the layers' backward passes)
    grad_fn = autodiff(model, loss, penalty=None)   # jax.value_and_grad of the same forward
    (loss_value, new_state), grads = grad_fn(params, state, x, y, ctx)

`loss_value` includes the penalty; `grads` has the structure of `params`. Both are pure and work under
`jit` and `vmap`.

Mixed precision (`policy=Policy(jnp.bfloat16)`, see `jaxnets.training.config.Policy`): params and inputs are
cast to the compute dtype for the forward and backward passes, the outputs to float32 for the loss and its
output gradient, and the gradients back to each param's own dtype; the penalty acts on the master params. The
hand-written backward passes then run in the compute dtype, exactly as `jax.grad` of the cast forward does.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import Ctx, Layer


def penalised(loss_value, params, penalty):
    """The cost C = loss value + penalty.value(params) (just the loss value when `penalty` is None)."""
    return loss_value if penalty is None else loss_value + penalty.value(params)


def cast_floats(tree, dtype):
    """`tree` with its floating leaves cast to `dtype` (integer leaves, keys and None unchanged)."""
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def _loss_dtype(dtype):
    return jnp.promote_types(dtype, jnp.float32)


def backprop(model: Layer, loss, penalty, params, state, x, y, ctx=Ctx(train=True), policy=None, *,
             details: bool = True):
    """One hand-written forward and backward pass: (cost, new_state, outputs, dparams, dx), or with
    details=False the gradient source's ((cost, new_state), dparams) (so `manual` is this function itself, with
    no wrapper between a training step and the layers' backward).

    δᴸ = loss.grad(outputs, y) (∇ₐC, the 1/m included) enters the model's backward, which returns ∂C/∂params
    (plus the penalty's gradient) and ∂C/∂x. With a `policy`, outputs are returned in the loss's float32."""
    if policy is None:
        outputs, new_state, cache = model.forward(params, state, x, ctx)
        value = penalised(loss.value(outputs, y), params, penalty)
        grads, dx = model.backward(params, cache, loss.grad(outputs, y))
    else:
        compute = policy.compute_dtype
        low = cast_floats(params, compute)
        outputs, new_state, cache = model.forward(low, state, cast_floats(x, compute), ctx)
        outputs = outputs.astype(_loss_dtype(outputs.dtype))
        value = penalised(loss.value(outputs, y), params, penalty)
        dy = (loss.grad(outputs, y) * policy.loss_scale).astype(compute)
        grads, dx = model.backward(low, cache, dy)
        grads = jax.tree_util.tree_map(lambda g, p: g.astype(p.dtype) / policy.loss_scale, grads, params)
        dx = dx if dx is None else cast_floats(dx, x.dtype)
    if penalty is not None:
        grads = jax.tree_util.tree_map(jnp.add, grads, penalty.grad(params))
    return (value, new_state, outputs, grads, dx) if details else ((value, new_state), grads)


def manual(model: Layer, loss, penalty=None, *, policy=None):
    """Backprop by hand: δᴸ = loss.grad(a, y) (∇ₐC, the 1/m included), then the layers' backward in reverse.
    `grad_fn(params, state, x, y, ctx=Ctx(train=True)) -> ((cost, new_state), grads)`."""
    return functools.partial(backprop, model, loss, penalty, policy=policy, details=False)


def autodiff(model: Layer, loss, penalty=None, *, policy=None):
    """`jax.value_and_grad` of the same forward pass and cost: the cross-check for `manual`."""
    scale = 1.0 if policy is None else policy.loss_scale

    def objective(params, state, x, y, ctx):
        if policy is None:
            outputs, new_state, _ = model.forward(params, state, x, ctx)
        else:
            outputs, new_state, _ = model.forward(cast_floats(params, policy.compute_dtype), state,
                                                  cast_floats(x, policy.compute_dtype), ctx)
            outputs = outputs.astype(_loss_dtype(outputs.dtype))
        value = penalised(loss.value(outputs, y), params, penalty)
        return value * scale, (value, new_state)

    value_and_grad = jax.value_and_grad(objective, has_aux=True)

    def grad_fn(params, state, x, y, ctx=Ctx(train=True)):
        (_, (value, new_state)), grads = value_and_grad(params, state, x, y, ctx)
        if scale != 1.0:
            grads = jax.tree_util.tree_map(lambda g: g / scale, grads)
        return (value, new_state), grads

    return grad_fn


SOURCES = {"manual": manual, "autodiff": autodiff}


def get(source: str):
    """The gradient-source constructor named "manual" or "autodiff"."""
    try:
        return SOURCES[source]
    except (KeyError, TypeError):
        raise ValueError(f"gradients={source!r} is not a gradient source; use gradients='manual' (hand-written "
                         "backprop) or gradients='autodiff' (jax.grad)") from None


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
