"""Weight decay (`add_decayed_weights`, L2 or decoupled) and `masked`, which restricts a transform to some leaves."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.optim import _util
from jaxnets.optim.base import EmptyState, GradientTransformation, ScalarOrSchedule, _extra_kwargs_filter


class MaskedState(NamedTuple):
    inner_state: Any  # the wrapped transform's state, holding only masked-in leaves


class MaskedNode(NamedTuple):
    """Placeholder for a masked-out leaf: an empty pytree node, skipped by `jax.tree.map`."""


class WeightDecaySchedule(NamedTuple):
    count: jax.Array  # int32 scalar: number of updates so far


def masked(inner: GradientTransformation, mask: Any | Callable[[Any], Any]) -> GradientTransformation:
    """Apply `inner` only where `mask` is True; other leaves pass through unchanged.

    `mask` is a pytree of Python bools with the structure of the params (or a prefix of it), or a function
    returning one; the function is called on the params at init and on the updates at update. The mask must be
    static (Python bools), so that `jit` sees one program. Masked-out positions hold `MaskedNode()` in the inner
    state, which therefore stores only the masked-in leaves.
    """
    inner_init, inner_update = inner
    inner_extra = _extra_kwargs_filter(inner_update)

    def resolve(tree):
        mask_tree = mask(tree) if callable(mask) else mask
        for leaf in jax.tree.leaves(mask_tree):
            static = isinstance(leaf, (bool, np.bool_)) or (
                not isinstance(leaf, jax.core.Tracer) and np.shape(leaf) == () and np.asarray(leaf).dtype == bool
            )
            if not static:
                raise TypeError(
                    f"masked: mask leaves must be static Python bools (True = transform this leaf), got "
                    f"{type(leaf).__name__}; build the mask outside jit, "
                    "e.g. jax.tree.map(lambda p: p.ndim > 1, params)."
                )
        return mask_tree

    def hide(tree, mask_tree):
        return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)

    def init(params):
        return MaskedState(inner_state=inner_init(hide(params, resolve(params))))

    def update(updates, state, params=None, **extra):
        mask_tree = resolve(updates)
        inner_params = None if params is None else hide(params, mask_tree)
        args = (hide(updates, mask_tree), state.inner_state, inner_params)
        new, inner_state = inner_update(*args, **inner_extra(extra))
        out = jax.tree.map(lambda m, n, old: n if m else old, mask_tree, new, updates)
        return out, MaskedState(inner_state=inner_state)

    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay: ScalarOrSchedule = 0.0, mask: Any = None) -> GradientTransformation:
    """u = g + wd * p: the gradient of the L2 penalty (wd/2)‖p‖², added to the incoming updates.

    Placed *before* an adaptive scaling (adam, rmsprop) this is L2 regularisation; placed *after* it, as in
    `adamw`, it is decoupled weight decay. `weight_decay` may be a number (>= 0), an array or a schedule
    `count -> wd` (state WeightDecaySchedule(count), count = 0 on the first update). `mask` (bool pytree or
    function of the params) restricts the decay to some leaves, e.g. weights but not biases.
    Needs `params` in `update`.
    """
    _util.check_nonnegative("add_decayed_weights", "weight_decay", weight_decay)
    scheduled = callable(weight_decay)

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
