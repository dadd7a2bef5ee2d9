"""Flax NNX peer: an `nnx.Module` MLP, `nnx.Optimizer(model, tx, wrt=nnx.Param)`, an `nnx.jit` step.

The idiom of the NNX guides: `nnx.value_and_grad` of a loss of the model, `optimizer.update(model, grads)`,
the model and optimizer mutated in place by the jitted step.
"""
from __future__ import annotations

import jax
from flax import nnx

from peers import _jaxloop, jax_loss, optax_optimizer


class MLP(nnx.Module):
    def __init__(self, sizes, activation, rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.activation = activation

    def __call__(self, x):
        act = nnx.sigmoid if self.activation == "sigmoid" else nnx.relu
        for layer in self.layers[:-1]:
            x = act(layer(x))
        x = self.layers[-1](x)
        return nnx.sigmoid(x) if self.activation == "sigmoid" else x


def build(cfg, x, y, seed):
    loss_fn = jax_loss(cfg)
    model = MLP(cfg.sizes, cfg.activation, nnx.Rngs(seed))
    optimizer = nnx.Optimizer(model, optax_optimizer(cfg), wrt=nnx.Param)

    def train_step(model, optimizer, xb, yb):
        loss, grads = nnx.value_and_grad(lambda m: loss_fn(m(xb), yb))(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def step_at(model, optimizer, xs, ys, i):
        return train_step(model, optimizer, *_jaxloop.batch_at(xs, ys, i, cfg.batch))

    step_rest = nnx.jit(train_step)

    return _jaxloop.driver(x, y, cfg.batch, seed,
                           lambda xs, ys, i: step_at(model, optimizer, xs, ys, i),
                           lambda xb, yb: step_rest(model, optimizer, xb, yb))
