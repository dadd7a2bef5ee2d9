"""`fit(..., trainable=mask)`: which parameters train. A frozen leaf gets no update, no penalty and no weight decay,
whatever the optimizer (its gradient never reaches the optimizer, which keeps no state for it).

    fit(model, loss, "adam", data, ..., trainable=(False, True, True))           # a prefix: layer 0 frozen
    fit(..., trainable=lambda path, leaf: "w" in jax.tree_util.keystr(path))    # a predicate on leaf paths

Only params are frozen: a layer's state still follows training mode — a BatchNorm whose scale and shift are frozen
keeps normalising with batch statistics and updating its running mean and variance (Keras's `trainable=False` also
switches such a layer to inference mode). To keep those statistics too, pass the state back in after training or
train that part with a model built without it.

mask: a pytree of Python bools with the params' structure or a prefix of it (True = trained), or a predicate
`fn(path, leaf) -> bool` on JAX key paths (as `losses.l2(mask=...)` takes). Also `warn_raw_gradients`: the warning
for an optimizer that would move some leaves *uphill* (`optim.masked`/`optax.masked` pass a masked-out leaf's raw
gradient through as its update).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Union

import jax
import numpy as np

from jaxnets.losses import Penalty
from jaxnets.optim.freeze import raw_gradient_leaves, selective_transform

Mask = Union[Any, Callable[[Any, Any], bool]]

__all__ = ["resolve", "apply", "warn_raw_gradients"]


def resolve(trainable: Mask, params: Any) -> Optional[Any]:
    """The full tree of Python bools (True = trained) that `trainable` means for `params`; None when every leaf
    trains. Raises a TypeError/ValueError naming `trainable` and the fix."""
    if trainable is None or trainable is True:
        return None
    if callable(trainable):
        try:
            mask = jax.tree_util.tree_map_with_path(lambda p, v: trainable(p, v), params)
        except Exception as err:   # noqa: BLE001 — the user's predicate: say where it failed
            raise TypeError(f"trainable: the predicate failed on the params ({type(err).__name__}: {err}); it is "
                            "called as fn(path, leaf) with a JAX key path, e.g. "
                            "lambda path, leaf: 'w' in jax.tree_util.keystr(path)") from err
    else:
        try:
            mask = jax.tree_util.tree_map(lambda m, sub: jax.tree_util.tree_map(lambda _: m, sub), trainable, params,
                                          is_leaf=lambda m: isinstance(m, (bool, np.bool_)))
        except ValueError as err:
            raise ValueError(f"trainable: a tree of bools must have the params' structure or a prefix of it (e.g. "
                             f"one bool per layer of a serial model: (False, True, True)); {err}") from None
    bad = [v for v in jax.tree_util.tree_leaves(mask) if not isinstance(v, (bool, np.bool_))]
    if bad:
        raise TypeError(f"trainable: every entry must be a Python bool (True = trained), got {type(bad[0]).__name__}"
                        f" {bad[0]!r}")
    mask = jax.tree_util.tree_map(bool, mask)
    if not any(jax.tree_util.tree_leaves(mask)):
        raise ValueError("trainable: every parameter is frozen, so there is nothing to train; set at least one "
                         "leaf True")
    return None if all(jax.tree_util.tree_leaves(mask)) else mask


def apply(mask: Optional[Any], optimizer, penalty: Optional[Penalty]):
    """(optimizer, penalty) restricted to the trained leaves of `mask` (a `resolve` result; None: unchanged)."""
    if mask is None:
        return optimizer, penalty
    frozen = jax.tree_util.tree_map(lambda m: not m, mask)
    optimizer = selective_transform(optimizer, freeze_mask=frozen)
    if penalty is not None:
        penalty = _masked_penalty(penalty, mask)
    return optimizer, penalty


def _masked_penalty(penalty: Penalty, mask: Any) -> Penalty:
    """The penalty of the trained leaves only: frozen leaves count 0 in its value and get a zero gradient."""
    def keep(tree):
        return jax.tree_util.tree_map(lambda m, v: v if m else v * 0, mask, tree)

    return penalty._replace(value=lambda params: penalty.value(keep(params)),
                            grad=lambda params: keep(penalty.grad(params)),
                            name=f"{penalty.name} (trained leaves)")


def warn_raw_gradients(optimizer, params, where: str = "fit") -> list[str]:
    """Warn (and return the paths) when `optimizer` would add some leaves' raw gradient to them: gradient ascent."""
    paths = raw_gradient_leaves(optimizer, params)
    if paths:
        shown = ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
        warnings.warn(
            f"{where}: the optimizer's update for {shown} is the raw gradient itself, so training would move these "
            "parameters uphill (gradient ascent). This is what optim.masked / optax.masked do to the leaves outside "
            "their mask. To freeze parameters pass fit(..., trainable=mask), or use optim.freeze(mask) / "
            "optim.selective_transform(opt, freeze_mask=mask)", UserWarning, stacklevel=3)
    return paths
