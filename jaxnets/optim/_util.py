"""Internal helpers shared by the optimizer modules: argument checks, tree checks, counters, bias correction.

Nothing here is public API. The numerical helpers mirror optax 0.2.8's fine print so that a jaxnets
optimizer reproduces an optax trajectory bit for bit on CPU (see docs/optimizers.md, "Numerics").
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp

NO_PARAMS_MSG = (
    "this transformation needs the current parameters: call `update(grads, state, params)` "
    "(adamw and add_decayed_weights read the weights they decay)."
)


# ----------------------------------------------------------------------------------------------- arguments
def is_python_number(x: Any) -> bool:
    """True for concrete host numbers (int, float, NumPy scalars); False for bools, arrays and tracers.

    Only such values are range-checked at construction: a JAX array (possibly a tracer under `vmap`/`jit`)
    is taken as given, so a sweep can vmap one compiled program over many hyper-parameter values.
    """
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_positive(where: str, name: str, value: Any) -> None:
    """Raise ValueError if a Python-number `value` is not finite and > 0 (NaN and ±inf included)."""
    if is_python_number(value) and not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{where}: {name} must be a finite number > 0, got {value!r}; pass a positive number.")


def check_nonnegative(where: str, name: str, value: Any) -> None:
    """Raise ValueError if a Python-number `value` is not finite and >= 0 (NaN and ±inf included)."""
    if is_python_number(value) and not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}; pass a non-negative number.")


def check_decay(where: str, name: str, value: Any) -> None:
    """Raise ValueError if a Python-number decay rate (beta, momentum) lies outside [0, 1)."""
    if is_python_number(value) and not 0 <= value < 1:
        raise ValueError(
            f"{where}: {name} must lie in [0, 1), got {value!r}; "
            f"typical values are 0.9 (momentum, b1) and 0.999 (b2)."
        )


def check_learning_rate(where: str, learning_rate: Any) -> None:
    """A learning rate is a schedule (callable), a JAX/NumPy array (unchecked) or a Python number > 0."""
    if learning_rate is None or callable(learning_rate):
        return
    check_positive(where, "learning_rate", learning_rate)


# ----------------------------------------------------------------------------------------------- trees
def _describe(tree: Any) -> dict[str, tuple]:
    return {jax.tree_util.keystr(path): jnp.shape(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def state_field(where: str, state: Any, field: str, updates: Any) -> Any:
    """Return `state.<field>` after checking it has the tree structure and leaf shapes of `updates`.

    Raises TypeError if `state` has no such field (a state from another optimizer) and ValueError naming the
    first differing leaves otherwise. Runs in Python while `update` is traced: under `jit` it costs nothing.
    """
    if not hasattr(state, field):
        raise TypeError(
            f"{where}: expected an optimizer state with a field '{field}', got {type(state).__name__}; "
            "pass the state returned by this transformation's own init(params)."
        )
    moment = getattr(state, field)
    check_matching_tree(where, field, updates, moment)
    return moment


def check_matching_tree(where: str, field: str, updates: Any, moment: Any) -> None:
    """Raise ValueError if a state field `moment` does not have the structure and leaf shapes of `updates`."""
    if jax.tree.structure(updates) == jax.tree.structure(moment):
        bad = [
            (jax.tree_util.keystr(p), jnp.shape(u), jnp.shape(m))
            for (p, u), m in zip(jax.tree_util.tree_leaves_with_path(updates), jax.tree.leaves(moment))
            if jnp.shape(u) != jnp.shape(m)
        ]
        if not bad:
            return
        detail = "; ".join(f"leaf {k}: updates {su} vs state {sm}" for k, su, sm in bad[:3])
    else:
        got, want = _describe(updates), _describe(moment)
        only_u = [k for k in got if k not in want][:3]
        only_s = [k for k in want if k not in got][:3]
        detail = (
            f"updates have {len(got)} leaves, state.{field} has {len(want)}; "
            f"only in updates: {only_u or '-'}; only in state: {only_s or '-'}; "
            f"updates tree {jax.tree.structure(updates)} vs state tree {jax.tree.structure(moment)}"
        )
    raise ValueError(
        f"{where}: the optimizer state field '{field}' does not match the updates ({detail}). "
        "Build the state with `init(params)` on params shaped like the gradients you pass to `update`."
    )


# ----------------------------------------------------------------------------------------------- numerics
def safe_increment(count: jax.Array) -> jax.Array:
    """count + 1, saturating at the dtype's maximum instead of wrapping around (int32 counters)."""
    count = jnp.asarray(count)
    top = jnp.array(jnp.iinfo(count.dtype).max, count.dtype)
    return jnp.where(count < top, count + jnp.array(1, count.dtype), top)


@functools.partial(jax.jit, inline=True)
def debias(moment: Any, decay: Any, count: jax.Array) -> Any:
    """moment / (1 - decay**count), per leaf.

    `1 - decay**count` is evaluated inside this (inlined) jit, where a Python-float `decay` becomes a weakly
    typed float32 (float64 under x64) value: the same precision optax uses. Only the quotient is cast to the
    moment's dtype, so bfloat16 moments do not round the correction to 1 - 1 = 0.
    """
    correction = 1 - decay**count
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


def abs_sq(g: jax.Array) -> jax.Array:
    """|g|², which is g*g for real arrays (the same HLO) and re² + im² for complex ones."""
    return (g.conj() * g).real


def ema(decay: Any, new: jax.Array, old: jax.Array) -> jax.Array:
    """Exponential moving average written as optax writes it: fresh term first, (1 - decay) * new + decay * old."""
    return (1 - decay) * new + decay * old
