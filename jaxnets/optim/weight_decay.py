"""Weight decay (`add_decayed_weights`, L2 or decoupled), restricted to some leaves with `base.masked`."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.optim import _util
from jaxnets.optim.base import EmptyState, GradientTransformation, ScalarOrSchedule, masked


class WeightDecaySchedule(NamedTuple):
    count: jax.Array  # int32 scalar: number of updates so far


def add_decayed_weights(weight_decay: ScalarOrSchedule = 0.0, mask: Any = None) -> GradientTransformation:
    """u = g + wd * p: the gradient of the L2 penalty (wd/2)‖p‖², added to the incoming updates.

    Placed *before* an adaptive scaling (adam, rmsprop) this is L2 regularisation; placed *after* it, as in
    `adamw`, it is decoupled weight decay. `weight_decay` may be a number (>= 0), an array or a schedule
    `count -> wd` (state WeightDecaySchedule(count), count = 0 on the first update). `mask` (bool pytree or
    function of the params) restricts the decay to some leaves, e.g. weights but not biases.
    Needs `params` in `update`.
    """
    scheduled = callable(weight_decay)
    if not scheduled:
        _util.check_nonnegative("add_decayed_weights", "weight_decay", weight_decay)

    def init(params):
        return WeightDecaySchedule(count=jnp.zeros([], jnp.int32)) if scheduled else EmptyState()

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("add_decayed_weights: " + _util.NO_PARAMS_MSG)
        new_state = WeightDecaySchedule(count=_util.safe_increment(state.count)) if scheduled else state
        if _util.is_python_number(weight_decay) and weight_decay == 0:
            return updates, new_state
        wd = weight_decay(state.count) if scheduled else weight_decay
        return jax.tree.map(lambda g, p: g + wd * p, updates, params), new_state

    tx = GradientTransformation(init, update)
    return tx if mask is None else masked(tx, mask)
