"""Shape-only layers: `Flatten` and `Reshape`. Their backward is the inverse reshape of δ (a permutation-free
relabelling of the same numbers, so ∂C/∂x = reshape(∂C/∂y, shape of x)).

The cache is a zero-size "shape token" of shape (0, *x.shape[1:]): it carries the per-example input shape as a
static shape through `jit` and `custom_vjp` without storing any data.
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxnets.core import Layer
from jaxnets.layers._shapes import size


def _shape_token(x):
    return jnp.zeros((0,) + tuple(x.shape[1:]), x.dtype)


def _backward(params, token, dy):
    return (), dy.reshape((dy.shape[0],) + tuple(token.shape[1:]))


def _flatten_init(key, input_shape):
    return (size(input_shape),), (), ()


def _flatten_forward(params, state, x, ctx):
    if x.ndim < 1:
        raise ValueError("Flatten: input must have a leading batch axis, got a scalar")
    return x.reshape(x.shape[0], -1), state, _shape_token(x)


# (m, d1, d2, ...) -> (m, d1·d2·…): e.g. the feature maps (m, 12, 12, 20) of a conv-pool stage -> (m, 2880).
# Row-major order (C fastest), the order Dense weights after it are indexed in.
Flatten = Layer(_flatten_init, _flatten_forward, _backward, "Flatten")


def Reshape(shape) -> Layer:
    """Reshape each example to `shape` (no batch axis; at most one entry may be -1, inferred), row-major.

    E.g. Reshape((28, 28, 1)) turns flat MNIST rows (m, 784) into NHWC images for Conv2D.
    """
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"Reshape(shape): shape must be a tuple of ints, got {shape!r}") from None
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"Reshape(shape): shape must be a tuple of ints, got {shape!r}")
    if sum(d == -1 for d in shape) > 1 or any(d == 0 or d < -1 for d in shape):
        raise ValueError(f"Reshape(shape): entries must be positive, with at most one -1 (inferred), got {shape}")
    name = f"Reshape({shape})"

    def target(input_shape):
        n = size(input_shape)
        known = size(d for d in shape if d != -1)
        if -1 in shape:
            if n % known:
                raise ValueError(f"{name}: cannot reshape per-example shape {tuple(input_shape)} ({n} values) to "
                                 f"{shape}; {n} is not a multiple of {known}")
            return tuple(n // known if d == -1 else d for d in shape)
        if known != n:
            raise ValueError(f"{name}: cannot reshape per-example shape {tuple(input_shape)} ({n} values) to {shape} "
                             f"({known} values); the sizes must match")
        return shape

    def init(key, input_shape):
        return target(input_shape), (), ()

    def forward(params, state, x, ctx):
        if x.ndim < 1:
            raise ValueError(f"{name}: input must have a leading batch axis, got a scalar")
        return x.reshape((x.shape[0],) + target(x.shape[1:])), state, _shape_token(x)

    return Layer(init, forward, _backward, name)
