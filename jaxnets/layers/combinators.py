"""Combinators beyond `serial`: fan-out, parallel branches, fan-in, and residual (skip) connections.

    FanOut(n)            x -> (x, x, ..., x)                 backward: dx = Σᵢ dyᵢ
    branches(f1, ..., fn) (x1, ..., xn) -> (f1(x1), ..., fn(xn))   backward: each branch its own
    FanInSum             (x1, ..., xn) -> Σᵢ xᵢ              backward: dxᵢ = dy for every i
    FanInConcat(axis)    (x1, ..., xn) -> concat(xᵢ, axis)   backward: dy split back into the n pieces
    residual(*layers, shortcut=None)   y = serial(*layers)(x) + shortcut(x)

A value flowing between layers may be a tuple of arrays (after FanOut, inside branches); its shape is then a
tuple of shapes. Cotangents follow the same structure: the backward of a layer with a tuple output takes a tuple
dy. The rule every backward here applies is the chain rule's sum over paths: an input used by several branches
receives the sum of their cotangents (FanOut, the skip of `residual`), an input that reaches the output once
receives its cotangent unchanged (FanInSum). Combinators with children (`branches`, `residual`) keep params,
state and cache as tuples with one entry per child, as `serial` does, so tools walk into them.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.core import Layer, not_a_layer_hint, serial
from jaxnets.layers.activations import Identity


def _is_shape(s) -> bool:
    return isinstance(s, tuple) and all(isinstance(d, int) for d in s)


def _shapes(name: str, input_shape, n: int | None = None) -> tuple:
    """The per-branch shapes of a tuple input, checked (n entries when n is given)."""
    if _is_shape(input_shape) or not isinstance(input_shape, (tuple, list)):
        raise ValueError(f"{name}: expects a tuple of inputs (e.g. after FanOut(n)), got a single input of shape "
                         f"{input_shape}; put FanOut(n) or branches(...) before it")
    if n is not None and len(input_shape) != n:
        raise ValueError(f"{name}: has {n} branches but receives {len(input_shape)} inputs; give it one layer per "
                         "input (or FanOut the right number of copies)")
    return tuple(tuple(s) for s in input_shape)


def FanOut(n: int) -> Layer:
    """One input to a tuple of `n` copies; backward: the sum of the n cotangents (BP2's sum over the units an
    activation feeds, here over the branches it feeds)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"FanOut(n): n must be a positive int (number of copies), got {n!r}")

    def init(key, input_shape):
        return (tuple(input_shape),) * n, (), ()

    def forward(params, state, x, ctx):
        return (x,) * n, state, None

    def backward(params, cache, dy):
        dx = dy[0]
        for d in dy[1:]:
            dx = dx + d
        return (), dx

    return Layer(init, forward, backward, f"FanOut({n})")


def _fan_in_sum() -> Layer:
    def init(key, input_shape):
        shapes = _shapes("FanInSum", input_shape)
        if len(set(shapes)) != 1:
            raise ValueError(f"FanInSum: the inputs have different shapes {list(shapes)}; their sum needs equal shapes "
                             "(project a branch, e.g. with Dense(n, use_bias=False) or a 1x1 Conv2D)")
        return shapes[0], (), ()

    def forward(params, state, xs, ctx):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y, state, tuple(jnp.zeros((0,), x.dtype) for x in xs)   # one zero-size token per input

    def backward(params, tokens, dy):
        return (), (dy,) * len(tokens)

    return Layer(init, forward, backward, "FanInSum")


# Σᵢ xᵢ over a tuple of equally shaped inputs; every input receives dy.
FanInSum = _fan_in_sum()


def FanInConcat(axis: int = -1) -> Layer:
    """Concatenate a tuple of inputs along `axis` of the per-example shape (negative: from the end, so -1 is the
    feature axis of dense data and the channel axis of NHWC images); backward: dy split at the same offsets."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"FanInConcat(axis): an int, got {axis!r}")
    name = f"FanInConcat({axis})"

    def resolve(rank):
        if not -rank <= axis < rank:
            raise ValueError(f"{name}: axis {axis} is out of range for per-example inputs of rank {rank}")
        return axis % rank

    def init(key, input_shape):
        shapes = _shapes(name, input_shape)
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"{name}: the inputs have different ranks {list(shapes)}")
        a = resolve(ranks.pop())
        rest = {s[:a] + s[a + 1:] for s in shapes}
        if len(rest) != 1:
            raise ValueError(f"{name}: the inputs {list(shapes)} differ outside axis {axis}; only the concatenated "
                             "axis may differ")
        return shapes[0][:a] + (sum(s[a] for s in shapes),) + shapes[0][a + 1:], (), ()

    def forward(params, state, xs, ctx):
        a = resolve(xs[0].ndim - 1) + 1                  # + 1: the batch axis
        # cache: zero-size "size tokens" of shape (0, size along the axis): static sizes that cross jit and
        # custom_vjp as arrays, without data
        return jnp.concatenate(xs, axis=a), state, tuple(jnp.zeros((0, x.shape[a]), x.dtype) for x in xs)

    def backward(params, tokens, dy):
        a = resolve(dy.ndim - 1) + 1
        offsets, start = [], 0
        for token in tokens[:-1]:
            start += token.shape[1]
            offsets.append(start)
        return (), tuple(jnp.split(dy, offsets, axis=a))

    return Layer(init, forward, backward, name)


def branches(*layers: Layer, name: str | None = None) -> Layer:
    """Layer i applied to element i of a tuple input (stax's `parallel`); params/state/cache are tuples with one
    entry per branch, and each branch's backward runs on its own cotangent."""
    if not layers:
        raise ValueError("branches() needs at least one layer, e.g. branches(Dense(10), Identity())")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"branches(): argument {i} is {type(layer).__name__}, not a Layer; "
                            f"{not_a_layer_hint(layer)}")
    label = name or "branches(" + ", ".join(layer.name for layer in layers) + ")"
    n = len(layers)

    def init(key, input_shape):
        shapes = _shapes(label, input_shape, n)
        outs, params, state = [], [], []
        for i, (layer, shape) in enumerate(zip(layers, shapes)):
            out, p, s = layer.init(jax.random.fold_in(key, i), shape)
            outs.append(out)
            params.append(p)
            state.append(s)
        return tuple(outs), tuple(params), tuple(state)

    def forward(params, state, xs, ctx):
        if not isinstance(xs, (tuple, list)) or len(xs) != n:
            raise ValueError(f"{label}: expects a tuple of {n} inputs, got "
                             f"{len(xs) if isinstance(xs, (tuple, list)) else 'a single array'}")
        ys, new_state, caches = [], [], []
        for i, layer in enumerate(layers):
            y, s, c = layer.forward(params[i], state[i], xs[i], ctx.child(i))
            ys.append(y)
            new_state.append(s)
            caches.append(c)
        return tuple(ys), tuple(new_state), tuple(caches)

    def backward(params, caches, dy):
        grads = [layer.backward(params[i], caches[i], dy[i]) for i, layer in enumerate(layers)]
        return tuple(g for g, _ in grads), tuple(dx for _, dx in grads)

    return Layer(init, forward, backward, label, tuple(layers),
                 rebuild=lambda *children: branches(*children, name=name))


def residual(*layers: Layer, shortcut: Layer | None = None, name: str | None = None) -> Layer:
    """A skip connection: y = F(x) + S(x) with F = serial(*layers) and S = `shortcut` (the identity by default;
    a projection such as `Dense(n, use_bias=False)` or a 1x1 `Conv2D` when F changes the shape).

    Backward (the chain rule through the sum): both branches receive dy, and
    ∂C/∂x = F's backward(dy) + S's backward(dy) — with the identity shortcut, ∂C/∂x = Fᵀ dy + dy, the "+ dy"
    that carries the gradient past F undiminished (why deep residual networks keep learning where plain ones stall).
    Children: (serial(*layers), shortcut); params/state/cache are pairs in that order.
    """
    if not layers:
        raise ValueError("residual() needs at least one layer for its branch, e.g. residual(Dense(16), Relu())")
    body = layers[0] if len(layers) == 1 else serial(*layers)
    skip = Identity if shortcut is None else shortcut
    if not isinstance(body, Layer) or not isinstance(skip, Layer):
        bad = body if not isinstance(body, Layer) else skip
        raise TypeError(f"residual(): {type(bad).__name__} is not a Layer; {not_a_layer_hint(bad)}")
    return _residual(body, skip, name or f"residual({body.name}" + (f", shortcut={skip.name})" if shortcut else ")"))


def _residual(body: Layer, skip: Layer, label: str) -> Layer:
    def init(key, input_shape):
        out, p_body, s_body = body.init(jax.random.fold_in(key, 0), input_shape)
        out_skip, p_skip, s_skip = skip.init(jax.random.fold_in(key, 1), input_shape)
        if tuple(out) != tuple(out_skip):
            raise ValueError(f"{label}: the branch maps {tuple(input_shape)} to {tuple(out)} but the shortcut gives "
                             f"{tuple(out_skip)}; their sum needs one shape: pass a projection as shortcut, e.g. "
                             f"residual(..., shortcut=Dense({out[-1]}, use_bias=False)) or a 1x1 Conv2D({out[-1]}, 1)")
        return tuple(out), (p_body, p_skip), (s_body, s_skip)

    def forward(params, state, x, ctx):
        y_body, s_body, c_body = body.forward(params[0], state[0], x, ctx.child(0))
        y_skip, s_skip, c_skip = skip.forward(params[1], state[1], x, ctx.child(1))
        if y_body.shape != y_skip.shape:
            raise ValueError(f"{label}: the branch gives shape {tuple(y_body.shape)} but the shortcut "
                             f"{tuple(y_skip.shape)}; pass a projection as shortcut")
        return y_body + y_skip, (s_body, s_skip), (c_body, c_skip)

    def backward(params, cache, dy):
        g_body, dx_body = body.backward(params[0], cache[0], dy)     # both terms of the sum receive dy
        g_skip, dx_skip = skip.backward(params[1], cache[1], dy)
        return (g_body, g_skip), dx_body + dx_skip                   # paths into x add up

    return Layer(init, forward, backward, label, (body, skip),
                 rebuild=lambda new_body, new_skip: _residual(new_body, new_skip, label))
