"""Reduce the learning rate on a plateau (optax's `contrib.reduce_on_plateau`, same arguments, state and numbers),
and what `fit` needs to judge a plateau once per epoch.

    tx = optim.chain(optim.adam(1e-3), optim.reduce_on_plateau(factor=0.5, patience=3))
    updates, state = tx.update(grads, state, params, value=cost)      # every update is scaled by state.scale

The rule, each time `accumulation_size` values have been averaged into v:
    improved  = v < (1 − rtol)·best − atol;     best ← v if improved
    count     = 0 if improved else count + 1;    if count == patience: scale ← max(scale·factor, min_scale),
                                                 count ← 0, and `cooldown` judgements are skipped.

`fit` (by default) judges the plateau once per epoch on its monitored value (val_loss with validation data), as
Keras's ReduceLROnPlateau does: inside the epoch the steps keep the plateau state (`hold`) and apply its scale as
it stood (`rescale`), and after the epoch `take` keeps the plateau state of one update made with the monitored
value. Any transformation whose state
is a `ReduceLROnPlateauState` (this one or optax's) is handled so.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.optim import _util
from jaxnets.optim.base import GradientTransformation


class ReduceLROnPlateauState(NamedTuple):
    scale: jax.Array           # the factor every update is multiplied by (1.0 until the first plateau)
    best_value: jax.Array      # the best averaged value so far
    plateau_count: jax.Array   # int32: judgements without improvement
    cooldown_count: jax.Array  # int32: judgements still skipped after a reduction
    count: jax.Array           # int32: values averaged so far towards the next judgement
    avg_value: jax.Array       # their running mean


def reduce_on_plateau(factor: float = 0.1, patience: int = 10, rtol: float = 1e-4, atol: float = 0.0,
                      cooldown: int = 0, accumulation_size: int = 1, min_scale: float = 0.0) -> GradientTransformation:
    """Multiply the updates by a scale that shrinks by `factor` after `patience` judgements without improvement
    (optax's defaults and checks). `update(..., value=v)` needs the monitored value v (a scalar)."""
    if not 0.0 < factor < 1.0:
        raise ValueError(f"reduce_on_plateau: factor must be in (0, 1), got {factor!r} (e.g. 0.5 halves the rate)")
    if rtol < 0.0 or atol < 0.0 or (rtol == 0.0 and atol == 0.0) or rtol > 1.0:
        raise ValueError(f"reduce_on_plateau: need 0 <= rtol <= 1, atol >= 0, and one of them > 0; got rtol={rtol!r}, "
                         f"atol={atol!r}")
    patience = _util.check_steps("reduce_on_plateau", "patience", patience, low=1)
    cooldown = _util.check_steps("reduce_on_plateau", "cooldown", cooldown)
    accumulation_size = _util.check_steps("reduce_on_plateau", "accumulation_size", accumulation_size, low=1)

    def init(params):
        leaves = jax.tree.leaves(params)
        dtypes = [jnp.result_type(p) for p in leaves] or [jnp.float32]
        low = min(dtypes, key=lambda d: jnp.finfo(d).bits if jnp.issubdtype(d, jnp.floating) else 64)
        high = max(dtypes, key=lambda d: jnp.finfo(d).bits if jnp.issubdtype(d, jnp.floating) else 0)
        zero = jnp.asarray(0, jnp.int32)
        return ReduceLROnPlateauState(scale=jnp.asarray(1.0, low), best_value=jnp.asarray(jnp.inf, high),
                                      plateau_count=zero, cooldown_count=zero, count=zero,
                                      avg_value=jnp.asarray(0.0, high))

    def judge(s: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        improved = s.avg_value < (1 - rtol) * s.best_value - atol
        best = jnp.where(improved, s.avg_value.astype(s.best_value.dtype), s.best_value)
        plateau = jnp.where(improved, 0, _util.safe_increment(s.plateau_count))
        cooling = s.cooldown_count > 0
        reduce = ~cooling & (plateau == patience)
        return ReduceLROnPlateauState(
            scale=jnp.where(reduce, jnp.maximum(s.scale * factor, min_scale), s.scale).astype(s.scale.dtype),
            best_value=best.astype(s.best_value.dtype),
            plateau_count=jnp.where(cooling | reduce, 0, plateau).astype(jnp.int32),
            cooldown_count=jnp.where(cooling, s.cooldown_count - 1, jnp.where(reduce, cooldown, 0)).astype(jnp.int32),
            count=jnp.asarray(0, jnp.int32), avg_value=jnp.zeros_like(s.avg_value))

    def update(updates, state, params=None, *, value=None, **extra):
        if value is None:
            raise TypeError("reduce_on_plateau: update needs value= (the monitored cost); jaxnets.fit passes it")
        count = _util.safe_increment(state.count)
        avg = (state.count * state.avg_value + jnp.asarray(value).astype(state.avg_value.dtype)) / count
        state = state._replace(avg_value=avg.astype(state.avg_value.dtype), count=count)
        state = jax.lax.cond(count == accumulation_size, judge, lambda s: s, state)
        return jax.tree.map(lambda g: (state.scale * g).astype(g.dtype), updates), state

    return GradientTransformation(init, update)


def is_plateau_state(node: Any) -> bool:
    """True for the state of a reduce-on-plateau transformation (jaxnets' or optax's, matched by name and fields)."""
    return type(node).__name__ == "ReduceLROnPlateauState" and hasattr(node, "scale") and hasattr(node, "best_value")


def has_plateau(opt_state: Any) -> bool:
    """Whether `opt_state` holds a reduce-on-plateau state anywhere."""
    return any(is_plateau_state(n) for n in jax.tree.leaves(opt_state, is_leaf=is_plateau_state))


def scale_of(opt_state: Any) -> jax.Array:
    """The product of every plateau scale in `opt_state` (1.0 when there is none); traced-friendly."""
    scale = jnp.asarray(1.0, jnp.float32)
    for node in jax.tree.leaves(opt_state, is_leaf=is_plateau_state):
        if is_plateau_state(node):
            scale = scale * node.scale
    return scale


def strip(opt_state: Any) -> Any:
    """`opt_state` with its plateau states left out (their best value is +inf until the first judgement, which a
    finiteness check must not take for a divergence)."""
    return jax.tree.map(lambda n: () if is_plateau_state(n) else n, opt_state, is_leaf=is_plateau_state)


def take(into: Any, source: Any) -> Any:
    """`into` with each plateau state replaced by the one at the same place in `source`."""
    return jax.tree.map(lambda a, b: b if is_plateau_state(a) else a, into, source, is_leaf=is_plateau_state)


def hold(new: Any, old: Any) -> Any:
    """`new` with its plateau states put back to those of `old`: a step that must not judge the plateau."""
    return take(new, old)


def rescale(updates: Any, new_state: Any, old_state: Any) -> Any:
    """`updates` made with the plateau scales of `new_state`, rescaled to those of `old_state` (for a step that must
    not judge the plateau: it gets the batch cost, which every other value-aware transformation needs, and this
    undoes a reduction that cost may have triggered). Equal scales give the factor 1.0 exactly."""
    new, old = scale_of(new_state), scale_of(old_state)
    factor = jnp.where(new > 0, old / jnp.where(new > 0, new, 1.0), 1.0)
    return jax.tree.map(lambda u: (u * factor).astype(u.dtype), updates)
