"""Equinox peer: `eqx.nn.MLP` (vmapped over the batch), optax, an `eqx.filter_jit` step.

The idiom of the Equinox examples: `eqx.filter_value_and_grad` of the loss, `optim.update(grads, opt_state,
eqx.filter(model, eqx.is_array))`, `eqx.apply_updates`; model and optimizer state are returned by the step.
"""
from __future__ import annotations

import equinox as eqx
import jax

from peers import _jaxloop, jax_loss, optax_optimizer


def build(cfg, x, y, seed):
    loss_fn = jax_loss(cfg)
    act = jax.nn.sigmoid if cfg.activation == "sigmoid" else jax.nn.relu
    final = jax.nn.sigmoid if cfg.activation == "sigmoid" else (lambda z: z)
    model = eqx.nn.MLP(cfg.sizes[0], cfg.sizes[-1], cfg.sizes[1], len(cfg.sizes) - 2,
                       activation=act, final_activation=final, key=jax.random.PRNGKey(seed))
    if any(w != cfg.sizes[1] for w in cfg.sizes[1:-1]):
        raise ValueError("eqx.nn.MLP needs equal hidden widths")
    optim = optax_optimizer(cfg)
    state = [(model, optim.init(eqx.filter(model, eqx.is_array)))]

    def train_step(model, opt_state, xb, yb):
        def loss_of(m):
            return loss_fn(jax.vmap(m)(xb), yb)

        loss, grads = eqx.filter_value_and_grad(loss_of)(model)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    @eqx.filter_jit
    def step_at(model, opt_state, xs, ys, i):
        return train_step(model, opt_state, *_jaxloop.batch_at(xs, ys, i, cfg.batch))

    step_rest = eqx.filter_jit(train_step)

    def at(xs, ys, i):
        model, opt_state, loss = step_at(*state[0], xs, ys, i)
        state[0] = (model, opt_state)
        return loss

    def rest(xb, yb):
        model, opt_state, loss = step_rest(*state[0], xb, yb)
        state[0] = (model, opt_state)
        return loss

    return _jaxloop.driver(x, y, cfg.batch, seed, at, rest)
