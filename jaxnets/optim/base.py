"""The gradient-transformation protocol, `chain` and `apply_updates` (optax-compatible).

A gradient transformation is a pair of pure functions:

    init(params)                                  -> state
    update(updates, state, params=None, **extra)  -> (new_updates, new_state)

`updates` is a pytree shaped like `params` (usually the gradients). Transformations compose with `chain`, and
the final updates are *added* to the parameters by `apply_updates`: the minus sign of gradient descent lives in
`scale_by_learning_rate`, so an optimizer returns u = -lr * direction.

`masked(inner, mask)` restricts a transformation to some leaves (optax's `masked`). The protocol is structural: a
jaxnets transformation unpacks like any `(init, update)` pair, so `optax.chain` accepts it, and `jaxnets.optim.chain`
accepts optax transformations (passing each one only the extra keyword arguments its `update` can take).
"""
from __future__ import annotations

import inspect
import weakref
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
Params = Updates = OptState = PyTree
Schedule = Callable[[jax.typing.ArrayLike], jax.typing.ArrayLike]
ScalarOrSchedule = Union[float, jax.Array, Schedule]


class GradientTransformation(NamedTuple):
    """`init(params) -> state` and `update(updates, state, params=None, **extra) -> (updates, state)`.

    Every jaxnets `update` accepts and ignores unknown keyword arguments (optax's "extra args" contract).
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


# The learning rate each transformation was built with, keyed on its `update` function (a GradientTransformation is
# a plain pair of functions, so this side table is how `fit` can report the learning rate in the history).
_LEARNING_RATES: "weakref.WeakKeyDictionary[Callable, Any]" = weakref.WeakKeyDictionary()


def remember_learning_rate(tx: "GradientTransformation", learning_rate: Any) -> "GradientTransformation":
    """Record that `tx` scales by `learning_rate` (a number or a schedule `count -> lr`); returns `tx`."""
    try:
        _LEARNING_RATES[tx[1]] = learning_rate
    except TypeError:   # an update function that cannot be weakly referenced: nothing is recorded
        pass
    return tx


def learning_rate_of(tx: Any) -> Any:
    """The learning rate (number or schedule) `tx` was built with, or None when it cannot be known: jaxnets'
    optimizers and `scale_by_learning_rate` record theirs, and `chain`/`masked` pass on a single inner one. An
    optax optimizer's is not recorded (wrap it with `optax.inject_hyperparams` to make it readable from the state)."""
    try:
        return _LEARNING_RATES.get(tx[1])
    except (TypeError, IndexError):
        return None


class EmptyState(NamedTuple):
    """The state of a stateless transformation: a pytree node with no leaves."""


def init_empty_state(params: Params) -> EmptyState:
    del params
    return EmptyState()


def identity() -> GradientTransformation:
    """Pass the updates through unchanged (state: EmptyState)."""

    def update(updates, state, params=None, **extra):
        del params, extra
        return updates, state

    return GradientTransformation(init_empty_state, update)


def extra_kwargs_filter(fn: Callable) -> Callable[[dict], dict]:
    """Which extra keyword arguments `fn` can take: all of them if it declares **kwargs, else those it names."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins or C callables: pass nothing extra
        return lambda extra: {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return lambda extra: extra
    named = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    named -= {"updates", "state", "params"}
    return lambda extra: {k: v for k, v in extra.items() if k in named}


def _check_transformation(tx: Any, where: str) -> None:
    """TypeError naming `where` unless `tx` is an (init, update) pair of functions."""
    if not (isinstance(tx, tuple) and len(tx) == 2 and all(callable(f) for f in tx)):
        raise TypeError(
            f"{where} is {type(tx).__name__}, not a gradient transformation (init, update); "
            "did you pass a factory without calling it (adam instead of adam(1e-3))?"
        )


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply `transforms` in order; the state is a plain tuple with one entry per transformation.

    Every transformation receives the same `params` and the extra keyword arguments its `update` can take (all of
    them if it declares `**kwargs`, else the ones it names), so plain optax transformations work too.
    """
    for i, tx in enumerate(transforms):
        _check_transformation(tx, f"chain(): argument {i}")
    init_fns = tuple(tx[0] for tx in transforms)
    update_fns = tuple(tx[1] for tx in transforms)
    extra_for = tuple(extra_kwargs_filter(fn) for fn in update_fns)

    def init(params):
        return tuple(fn(params) for fn in init_fns)

    def update(updates, state, params=None, **extra):
        if not isinstance(state, (tuple, list)) or len(state) != len(update_fns):
            got = f"{len(state)} entries" if isinstance(state, (tuple, list)) else type(state).__name__
            raise ValueError(
                f"chain of {len(update_fns)} transformations got a state with {got}; "
                "pass the state returned by this same chain's init(params)."
            )
        new_state = []
        for fn, s, select in zip(update_fns, state, extra_for):
            updates, s = fn(updates, s, params, **select(extra))
            new_state.append(s)
        return updates, tuple(new_state)

    rates = [r for r in (learning_rate_of(tx) for tx in transforms) if r is not None]
    out = GradientTransformation(init, update)
    return remember_learning_rate(out, rates[0]) if len(rates) == 1 else out


class MaskedState(NamedTuple):
    inner_state: Any  # the wrapped transform's state, holding only masked-in leaves


class MaskedNode(NamedTuple):
    """Placeholder for a masked-out leaf: an empty pytree node, skipped by `jax.tree.map`."""


def masked(inner: GradientTransformation, mask: Any | Callable[[Any], Any]) -> GradientTransformation:
    """Apply `inner` only where `mask` is True; other leaves pass through unchanged.

    `mask` is a pytree of Python bools with the structure of the params (or a prefix of it), or a function
    returning one; the function is called on the params at init and on the updates at update. The mask must be
    static (Python bools), so that `jit` sees one program. Masked-out positions hold `MaskedNode()` in the inner
    state, which therefore stores only the masked-in leaves.
    """
    _check_transformation(inner, "masked(inner, mask): inner")
    if mask is None or isinstance(mask, (str, bytes)):
        raise TypeError(f"masked(inner, mask): mask must be a pytree of bools shaped like the params (True = "
                        f"transform this leaf) or a function params -> such a pytree, got {mask!r}")
    inner_init, inner_update = inner
    inner_extra = extra_kwargs_filter(inner_update)

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

    rate = learning_rate_of(inner)
    out = GradientTransformation(init, update)
    return out if rate is None else remember_learning_rate(out, rate)


def apply_updates(params: Params, updates: Updates) -> Params:
    """params + updates per leaf, cast back to each parameter's dtype; `None` leaves stay `None`.

    The sum is formed in the promoted dtype (e.g. bf16 param + f32 update in f32) and then cast to the param dtype.
    """

    def add(p, u):
        if p is None:
            return None
        return jnp.asarray(p + u).astype(jnp.asarray(p).dtype)

    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)
