"""Freezing parameters: optax's `freeze` and `selective_transform`, and the check for the `masked` trap.

    optim.chain(optim.freeze(mask), optim.adam(1e-3))            # optax semantics: mask True = frozen
    optim.selective_transform(optim.adam(1e-3), freeze_mask=mask)  # frozen leaves never reach adam (no state)
    jaxnets.fit(..., trainable=mask)                               # the same, plus no penalty; True = trained

The trap: `masked(inner, mask)` passes the leaves outside `mask` through *unchanged*, so their update is the raw
gradient, and `apply_updates` adds it: those leaves climb the cost (gradient ascent). `raw_gradient_leaves` finds
such leaves by tracing the optimizer once (no compile), so `fit` can warn before training.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxnets.memo import memoised
from jaxnets.optim.base import GradientTransformation, chain, init_empty_state, masked


def set_to_zero() -> GradientTransformation:
    """Every update becomes 0 (optax's `set_to_zero`); stateless."""

    def update(updates, state, params=None, **extra):
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(init_empty_state, update)


def freeze(mask: Any) -> GradientTransformation:
    """Zero the updates of the leaves where `mask` is True (optax's `freeze`): `masked(set_to_zero(), mask)`.

    mask: a pytree of Python bools shaped like the params (or a prefix of it), True = frozen, or one bool. Chain it
    *before* a stateful optimizer only if that optimizer maps a zero gradient to a zero update (sgd, adam); weight
    decay still moves a frozen leaf then, so put `freeze` last, or use `selective_transform`.
    """
    if isinstance(mask, bool):
        return set_to_zero() if mask else GradientTransformation(init_empty_state, lambda u, s, p=None, **e: (u, s))
    return masked(set_to_zero(), mask)


def selective_transform(optimizer: GradientTransformation, *, freeze_mask: Any) -> GradientTransformation:
    """Only the leaves where `freeze_mask` is False are optimized; the frozen ones get a zero update and no optimizer
    state (optax's `selective_transform`: no momentum, no weight decay on them).

    freeze_mask: a pytree of Python bools shaped like the params (or a prefix), True = frozen.
    """
    if isinstance(freeze_mask, bool):
        return freeze(True) if freeze_mask else optimizer
    trained = jax.tree.map(lambda m: not m, freeze_mask)
    return chain(masked(optimizer, trained), freeze(freeze_mask))


def raw_gradient_leaves(optimizer: GradientTransformation, params: Any) -> list[str]:
    """The paths of the leaves whose update *is* their gradient (the same array, untouched), found by tracing
    `optimizer.update` once: such a leaf would be moved uphill by `apply_updates` (the `masked` trap). Returns []
    when the optimizer cannot be traced on its own (an optimizer needing extra arguments is not checked). Memoised
    on the optimizer's value and the params' shapes, so a repeated `fit` traces nothing."""
    leaves, treedef = jax.tree.flatten(params)
    return list(_raw_gradient_leaves(optimizer, treedef,
                                     tuple((tuple(jnp.shape(p)), jnp.result_type(p).name) for p in leaves)))


@memoised(maxsize=32)
def _raw_gradient_leaves(optimizer, treedef, specs: tuple) -> tuple:
    shapes = treedef.unflatten([jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in specs])

    def updates_of(grads, p, **extra):
        return optimizer.update(grads, optimizer.init(p), p, **extra)[0]

    closed = None
    for extra in ({}, {"value": jnp.zeros(())}):   # a value-aware transformation (reduce_on_plateau) needs `value`
        try:
            closed = jax.make_jaxpr(lambda g, p: updates_of(g, p, **extra))(shapes, shapes)
            break
        except Exception:   # noqa: BLE001 — a user optimizer with other needs: this check is advisory only
            continue
    if closed is None or len(closed.jaxpr.outvars) != len(specs):
        return ()
    grad_vars = closed.jaxpr.invars[:len(specs)]
    paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(shapes)[0]]
    return tuple(paths[i] for i, v in enumerate(closed.jaxpr.outvars) if v is grad_vars[i])
