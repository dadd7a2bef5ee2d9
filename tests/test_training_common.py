"""Shared helpers for the training tests (tiny models and datasets; params built with numpy so no test pays
for compiling a random initializer)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import Layer, apply, serial
from jaxnets.layers import Dense, Tanh

N_IN, N_HIDDEN, N_OUT = 4, 6, 3


def tiny_model():
    return serial(Dense(N_HIDDEN), Tanh, Dense(N_OUT))


def tiny_params(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return ({"w": (rng.normal(size=(N_IN, N_HIDDEN)) * 0.5).astype(dtype), "b": np.zeros(N_HIDDEN, dtype)}, (),
            {"w": (rng.normal(size=(N_HIDDEN, N_OUT)) * 0.5).astype(dtype), "b": np.zeros(N_OUT, dtype)})


def tiny_state():
    return ((), (), ())


def blobs(n, seed=0, dtype=np.float32):
    """n points in R^4 from 3 Gaussian blobs; labels int32."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_OUT, n).astype(np.int32)
    centers = np.eye(N_OUT, N_IN) * 2.0
    x = (centers[y] + 0.5 * rng.normal(size=(n, N_IN))).astype(dtype)
    return x, y


def counter_layer():
    """A stateful test layer: identity on x; in training mode its state counts calls and records a number
    drawn from the layer key (so tests see the state threaded through the scan and a fresh key per step)."""

    def init(key, input_shape):
        return tuple(input_shape), (), {"calls": jnp.zeros((), jnp.int32), "draw": jnp.zeros((), jnp.float32)}

    def forward(params, state, x, ctx):
        if ctx.train:
            draw = jax.random.uniform(ctx.key) if ctx.key is not None else jnp.float32(-1.0)
            state = {"calls": state["calls"] + 1, "draw": draw}
        return x, state, None

    def backward(params, cache, dy):
        return (), dy

    return Layer(init, forward, backward, "Counter")


def leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(la, lb))


@functools.lru_cache(maxsize=None)
def _cost_grad(model, loss, state):
    def cost(p, xb, yb):
        out, _ = apply(model, p, state, xb)
        return loss.value(out, yb)

    return jax.jit(jax.grad(cost))


def hand_sgd(model, loss, params, x, y, lr, batches, state=None):
    """Plain mini-batch SGD written out: p <- p - lr * grad C_batch(p), C the batch-mean cost (jax.grad)."""
    grad = _cost_grad(model, loss, tiny_state() if state is None else state)
    for idx in batches:
        g = grad(params, x[idx], y[idx])
        params = jax.tree_util.tree_map(lambda p, d: p - lr * d, params, g)
    return params
