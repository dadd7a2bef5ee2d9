"""Layers from plain JAX code: the forward is your function, the backward is `jax.vjp` of it.

    Square = from_function(lambda x: x * x)                          # stateless: fn(x) -> y
    Affine = from_function(lambda p, x: x * p["scale"] + p["shift"],  # parametrised: fn(params, x) -> y
                           init=lambda key, shape: {"scale": jnp.ones(shape), "shift": jnp.zeros(shape)})

Such a layer trains, composes (`serial`, `residual`, ...) and is checked like any other, but its backward is not
hand-written: it is reverse-mode autodiff of the forward, so its `Meta(autodiff_backward=True)` says so.
`jaxnets.summary` marks it, the checker's rows say "manual = autodiff by construction" (only the columns against
finite differences test anything there), and `gradcheck.check_layer` (hence `testing.assert_layer_gradients`),
whose purpose is to test a hand-written backward, refuses it unless called with `allow_autodiff=True`. It is the
prototype to replace: once the hand-written backward exists, build the layer with `Layer(init, forward,
backward)` (docs/custom-layers.md).

The backward recomputes the forward (the cache holds the input, the state and the context, arrays only), so a
model can run the forward and the backward in different compiled programs.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from jaxnets.core import Ctx, Layer, Meta

__all__ = ["from_function", "autodiff_layer"]


def _example(input_shape, dtype):
    """A batch of one zero example with per-example shape `input_shape` (a tuple of ints, or a tuple of such
    shapes for a layer fed several arrays), as abstract values."""
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    if all(isinstance(d, int) for d in input_shape):
        return jax.ShapeDtypeStruct((1,) + tuple(input_shape), dtype)
    return tuple(_example(s, dtype) for s in input_shape)


def _per_example(y):
    """The per-example shape of each output (no batch axis): a tuple of ints, or a tree of them."""
    return jax.tree_util.tree_map(lambda a: tuple(a.shape[1:]), y)


def autodiff_layer(init_variables: Callable, apply: Callable, name: str, *, meta: Optional[Meta] = None,
                   dtype=None) -> Layer:
    """The Layer of a forward given as two functions, with the backward `jax.vjp` of the forward.

    init_variables(key, input_shape) -> (params, state): the initial params and layer state (pytrees);
    apply(params, state, x, ctx) -> (y, new_state): the forward on a batch x (m, ...) -> y (m, ...);
    the output shape is found by `jax.eval_shape` of apply on one example of `dtype` (default: JAX's default
    float). The backward is `jax.vjp` of `params, x -> apply(params, state, x, ctx)[0]` at the recorded state and
    context: (dparams, dx) shaped like (params, x). meta: the layer's Meta; `autodiff_backward` is set True.
    This is the building block of `from_function` and the `jaxnets.interop` adapters."""
    meta = (meta or Meta())._replace(autodiff_backward=True)

    def init(key, input_shape):
        params, state = init_variables(key, input_shape)
        x = _example(input_shape, jax.dtypes.canonicalize_dtype(jnp.float64) if dtype is None else dtype)
        y = jax.eval_shape(lambda p, s, xx: apply(p, s, xx, Ctx(False, None))[0], params, state, x)
        return _per_example(y), params, state

    def forward(params, state, x, ctx):
        y, new_state = apply(params, state, x, ctx)
        return y, new_state, (x, state, ctx)   # the backward recomputes the forward from these

    def backward(params, cache, dy):
        x, state, ctx = cache
        # autodiff, by construction: the vector-Jacobian product of the forward at (params, x), applied to dy
        _, vjp = jax.vjp(lambda p, xx: apply(p, state, xx, ctx)[0], params, x)
        return vjp(dy)

    return Layer(init, forward, backward, name, meta=meta)


def _label(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def from_function(fn: Callable, init: Optional[Callable] = None, *, name: Optional[str] = None,
                  uses_ctx: bool = False, meta: Optional[Meta] = None) -> Layer:
    """A layer whose forward is `fn` and whose backward is `jax.vjp` of it (`Meta(autodiff_backward=True)`).

    fn:   without `init`, a stateless function `fn(x) -> y` of the batch x (m, ...) returning y (m, ...), e.g.
          `jnp.tanh` or `lambda x: x * jax.nn.sigmoid(x)`; with `init`, `fn(params, x) -> y`.
    init: `init(key, input_shape) -> params`, the initial params (any pytree of arrays) for per-example inputs
          of `input_shape` (no batch axis), e.g. `lambda key, shape: {"w": glorot_uniform(key, (shape[0], 10))}`.
          Weights under key "w" are what the default penalties regularise.
    uses_ctx: fn also takes the context last, `fn(x, ctx)` / `fn(params, x, ctx)` (`ctx.train`: a Python bool,
          `ctx.key`: a PRNG key or None), for dropout-like behaviour.
    name: the layer's name in reports (default "from_function(<fn's name>)"); meta: a `jaxnets.core.Meta` for
          the tools (e.g. `Meta(outputs="probabilities")`), its `autodiff_backward` set True.
    Params are `()` without `init`; state is always `()`. The output shape comes from `jax.eval_shape`.
    """
    if not callable(fn) or isinstance(fn, Layer):
        what = f"the layer {fn.name}" if isinstance(fn, Layer) else type(fn).__name__
        raise TypeError(f"layers.from_function(fn): a function of the batch, fn(x) -> y (or fn(params, x) -> y with "
                        f"init=), got {what}")
    if init is not None and not callable(init):
        raise TypeError(f"layers.from_function(init): None (a stateless fn(x)) or a function init(key, input_shape) "
                        f"-> params, got {type(init).__name__}")
    if not isinstance(uses_ctx, bool):
        raise TypeError(f"layers.from_function(uses_ctx): True or False, got {uses_ctx!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"layers.from_function(name): a non-empty str or None, got {name!r}")
    if meta is not None and not isinstance(meta, Meta):
        raise TypeError(f"layers.from_function(meta): a jaxnets.core.Meta or None, got {type(meta).__name__}")
    label = name or f"from_function({_label(fn)})"

    def init_variables(key, input_shape):
        return (() if init is None else init(key, input_shape)), ()

    def apply(params, state, x, ctx):
        args = (x,) if init is None else (params, x)
        return (fn(*args, ctx) if uses_ctx else fn(*args)), state

    return autodiff_layer(init_variables, apply, label, meta=meta)
