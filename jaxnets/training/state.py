"""`TrainState`: everything one training step reads and writes, as one pytree.

    ts = TrainState.create(params, state, optimizer)          # opt_state = optimizer.init(params), step = 0
    ts = init_train_state(model, optimizer, key, input_shape)  # params and layer state from model.init

A `TrainState` is a NamedTuple, hence a pytree: stack several along a new leading axis (`stack`) to train an
ensemble with `jax.vmap(epoch)`, replicate it over a mesh with `jax.device_put`, save it with
`jaxnets.checkpoint`. `step` counts the optimizer updates applied (a non-finite step is not applied and
not counted).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


class TrainState(NamedTuple):
    """params: the model's parameter pytree; state: its layer state (BatchNorm statistics, () if none);
    opt_state: the optimizer's state; step: int32 scalar, number of updates applied so far."""

    params: PyTree
    state: PyTree
    opt_state: PyTree
    step: jax.Array

    @classmethod
    def create(cls, params: PyTree, state: PyTree, optimizer) -> "TrainState":
        """A fresh train state: `optimizer.init(params)` and step 0 (an int32 scalar, not weakly typed)."""
        params = jax.tree_util.tree_map(jnp.asarray, params)
        state = jax.tree_util.tree_map(jnp.asarray, state)
        return cls(params, state, optimizer.init(params), jnp.zeros((), jnp.int32))


def init_train_state(model, optimizer, key: jax.Array, input_shape) -> TrainState:
    """Initialise a model from `key` for per-example `input_shape` (no batch axis) and wrap it in a TrainState.

    Pure and traceable: `jax.vmap(lambda k: init_train_state(model, opt, k, (64,)))(keys)` builds an
    ensemble of independently initialised members with their params stacked on axis 0.
    """
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    _, params, state = model.init(key, tuple(input_shape))
    return TrainState.create(params, state, optimizer)


def stack(states) -> TrainState:
    """Stack a sequence of TrainStates (same structure) along a new leading axis, for `jax.vmap`."""
    states = list(states)
    if not states:
        raise ValueError("stack() needs at least one TrainState")
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *states)


def unstack(stacked: TrainState) -> list[TrainState]:
    """The inverse of `stack`: a list of TrainStates, one per index of the leading axis."""
    n = int(jax.tree_util.tree_leaves(stacked.step)[0].shape[0])
    return [jax.tree_util.tree_map(lambda a, i=i: a[i], stacked) for i in range(n)]
