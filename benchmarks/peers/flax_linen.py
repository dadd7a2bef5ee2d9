"""Flax linen peer: an `nn.Module` MLP, `flax.training.train_state.TrainState` with optax, a `jax.jit` step.

The idiom of the Flax examples: `state.apply_fn({"params": p}, x)` inside `jax.value_and_grad`, then
`state.apply_gradients(grads=grads)`; the state is donated to the step.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.training import train_state

from peers import _jaxloop, jax_loss, optax_optimizer


class MLP(nn.Module):
    features: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x):
        act = nn.sigmoid if self.activation == "sigmoid" else nn.relu
        for n in self.features[:-1]:
            x = act(nn.Dense(n)(x))
        x = nn.Dense(self.features[-1])(x)
        return nn.sigmoid(x) if self.activation == "sigmoid" else x


def build(cfg, x, y, seed):
    loss_fn = jax_loss(cfg)
    model = MLP(tuple(cfg.sizes[1:]), cfg.activation)
    params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, cfg.sizes[0]), jnp.float32))["params"]
    state = [train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax_optimizer(cfg))]

    def train_step(state, xb, yb):
        def loss_of(p):
            return loss_fn(state.apply_fn({"params": p}, xb), yb)

        loss, grads = jax.value_and_grad(loss_of)(state.params)
        return state.apply_gradients(grads=grads), loss

    @partial(jax.jit, donate_argnums=0)
    def step_at(state, xs, ys, i):
        return train_step(state, *_jaxloop.batch_at(xs, ys, i, cfg.batch))

    step_rest = jax.jit(train_step, donate_argnums=0)

    def at(xs, ys, i):
        state[0], loss = step_at(state[0], xs, ys, i)
        return loss

    def rest(xb, yb):
        state[0], loss = step_rest(state[0], xb, yb)
        return loss

    return _jaxloop.driver(x, y, cfg.batch, seed, at, rest)
