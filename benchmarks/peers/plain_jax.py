"""Plain JAX peer: params as a list of (w, b), a `jax.jit` train step with optax, one call per mini-batch.

This is what a JAX user writes without a library: `jax.value_and_grad` of the batch cost, `optax` update,
`donate_argnums` for params and optimizer state so XLA can update them in place.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from peers import _jaxloop, jax_loss, optax_optimizer


def init_params(key, sizes):
    """LeCun-normal weights, zero biases: [(w (n_in, n_out), b (n_out,)), ...]."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (n_in, n_out), jnp.float32) / jnp.sqrt(n_in), jnp.zeros(n_out)))
    return params


def forward(params, x, activation):
    act = jax.nn.sigmoid if activation == "sigmoid" else jax.nn.relu
    for w, b in params[:-1]:
        x = act(x @ w + b)
    w, b = params[-1]
    z = x @ w + b
    return jax.nn.sigmoid(z) if activation == "sigmoid" else z


def build(cfg, x, y, seed):
    loss_fn = jax_loss(cfg)
    tx = optax_optimizer(cfg)
    params = init_params(jax.random.PRNGKey(seed), cfg.sizes)
    state = [(params, tx.init(params))]

    def train_step(params, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(forward(p, xb, cfg.activation), yb))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @partial(jax.jit, donate_argnums=(0, 1))
    def step_at(params, opt_state, xs, ys, i):
        return train_step(params, opt_state, *_jaxloop.batch_at(xs, ys, i, cfg.batch))

    step_rest = jax.jit(train_step, donate_argnums=(0, 1))

    def at(xs, ys, i):
        params, opt_state, loss = step_at(*state[0], xs, ys, i)
        state[0] = (params, opt_state)
        return loss

    def rest(xb, yb):
        params, opt_state, loss = step_rest(*state[0], xb, yb)
        state[0] = (params, opt_state)
        return loss

    return _jaxloop.driver(x, y, cfg.batch, seed, at, rest)
