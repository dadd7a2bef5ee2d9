"""The textbook's first neurons: the perceptron with Rosenblatt's rule, and the single sigmoid neuron.

Perceptron: output = 1 if w·x + b > 0 else 0, where b = −threshold. Rosenblatt's learning rule, applied one
example at a time: w ← w + η (t − y) x,  b ← b + η (t − y). It converges when the classes are linearly
separable (and never settles on XOR).

Sigmoid neuron: y = σ(w·x + b) trained on the quadratic cost ½(y − t)² by per-example SGD. The update is
w ← w − η (y − t) y(1 − y) x  (BP1 and BP4 for a one-layer network), which `sgd_per_example` computes with
the hand-written backward passes (or `jax.grad`) of the layer model.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

import jaxnets.gradients
from jaxnets.core import Ctx, Layer, serial
from jaxnets.layers import Dense, Sigmoid, Step
from jaxnets.initializers import zeros


def perceptron(w_init=zeros) -> Layer:
    """A perceptron on flat inputs: Dense(1) followed by the Step unit; params ({"w": (n, 1), "b": (1,)}, ())."""
    return serial(Dense(1, w_init=w_init), Step, name="perceptron")


def perceptron_params(weights, threshold):
    """Params of `perceptron()` from the textbook's weights and threshold (b = −threshold)."""
    w = jnp.asarray(weights, dtype=float).reshape(-1, 1)
    return ({"w": w, "b": jnp.full((1,), -float(threshold), dtype=w.dtype)}, ())


def perceptron_predict(params, x):
    """0/1 decisions, shape (m,), for inputs x of shape (m, n)."""
    dense, _ = params
    return (x @ dense["w"] + dense["b"] > 0).astype(jnp.int32)[:, 0]


def rosenblatt_step(params, x, t, learning_rate=1.0):
    """One application of the rule to one example x (n,) with target t ∈ {0, 1}."""
    dense, act = params
    y = (x @ dense["w"][:, 0] + dense["b"][0] > 0).astype(x.dtype)
    error = t - y
    new = {"w": dense["w"] + learning_rate * error * x[:, None], "b": dense["b"] + learning_rate * error}
    return (new, act), error != 0


def train_perceptron(params, x, t, *, epochs: int = 10, learning_rate: float = 1.0):
    """Sweep the examples in order `epochs` times. Returns (params, mistakes per epoch (epochs,))."""
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    t = jnp.asarray(t, dtype=x.dtype)
    if x.ndim != 2 or t.shape != (x.shape[0],):
        raise ValueError(f"train_perceptron: need x of shape (m, n) and t of shape (m,), got {x.shape} and {t.shape}")

    def one_example(p, example):
        p, wrong = rosenblatt_step(p, example[0], example[1], learning_rate)
        return p, wrong

    def one_epoch(p, _):
        p, wrong = lax.scan(one_example, p, (x, t))
        return p, jnp.sum(wrong)

    return jax.jit(lambda p: lax.scan(one_epoch, p, None, length=epochs))(params)


def sigmoid_neuron(w_init=zeros) -> Layer:
    """A single sigmoid neuron: Dense(1) followed by Sigmoid."""
    return serial(Dense(1, w_init=w_init), Sigmoid(), name="sigmoid_neuron")


def sgd_per_example(model: Layer, loss, params, state, x, t, *, learning_rate: float, epochs: int = 1,
                    gradients: str = "manual"):
    """Plain SGD with mini-batches of one example, in order: θ ← θ − η ∂C_x/∂θ. Returns (params, state)."""
    grad_fn = jaxnets.gradients.get(gradients)(model, loss)

    def one_example(carry, example):
        p, s = carry
        xi, ti = example
        (_, s), g = grad_fn(p, s, xi[None], ti[None], Ctx(train=True))
        p = jax.tree_util.tree_map(lambda a, b: a - learning_rate * b, p, g)
        return (p, s), None

    def one_epoch(carry, _):
        carry, _ = lax.scan(one_example, carry, (x, t))
        return carry, None

    (params, state), _ = jax.jit(lambda c: lax.scan(one_epoch, c, None, length=epochs))((params, state))
    return params, state
