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
import numpy as np

NO_PARAMS_MSG = (
    "this transformation needs the current parameters: call `update(grads, state, params)` "
    "(adamw and add_decayed_weights read the weights they decay)."
)


# ----------------------------------------------------------------------------------------------- arguments
_NUMERIC = (numbers.Real, np.ndarray, np.generic, jax.Array)


def is_python_number(x: Any) -> bool:
    """True for concrete host numbers (int, float, NumPy scalars); False for bools, arrays and tracers."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def concrete_value(where: str, name: str, value: Any, expect: str = "a number") -> np.ndarray | None:
    """`value` as a host array when it is a concrete number or array; None for a tracer (a value under
    `jit`/`vmap`, e.g. a hyper-parameter swept through one compiled program, is taken as given).

    Anything else (a string, a list, a bool, None) is a TypeError naming `where`, `name`, the value and `expect`.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _NUMERIC):
        raise TypeError(f"{where}: {name} must be {expect}, got {type(value).__name__} {value!r}"
                        + (f"; pass the number itself, e.g. {float(value)!r}" if _numeric_text(value) else ""))
    if isinstance(value, jax.core.Tracer):
        return None
    host = np.asarray(value)
    if not (np.issubdtype(host.dtype, np.floating) or np.issubdtype(host.dtype, np.integer)):
        raise TypeError(f"{where}: {name} must be {expect}, got an array of dtype {host.dtype}")
    return host


def _numeric_text(value: Any) -> bool:
    try:
        return isinstance(value, str) and math.isfinite(float(value))
    except ValueError:
        return False


def check_range(where: str, name: str, value: Any, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, fix: str = "") -> None:
    """Raise unless `value` is a finite number (or array of them) in the interval given by low/high; a tracer is
    taken as given. The message names `where`, `name`, the interval, the value and `fix`."""
    if low is not None and high is not None:
        interval = f"lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        interval = f"be a finite number {'>' if low_open else '>='} {low:g}"
    else:
        interval = "be a finite number"
    host = concrete_value(where, name, value, f"a number (to {interval})")
    if host is None:
        return
    ok = np.all(np.isfinite(host))
    ok = ok and (low is None or bool(np.all(host > low if low_open else host >= low)))
    ok = ok and (high is None or bool(np.all(host < high if high_open else host <= high)))
    if not ok:
        raise ValueError(f"{where}: {name} must {interval}, got {_show(value)}; {fix or 'pass a number in range.'}")


def _show(value: Any) -> str:
    """A Python number as written; an array as its values (a JAX array's repr would span lines)."""
    return repr(value) if is_python_number(value) else f"an array {np.asarray(value).tolist()!r}"


def check_positive(where: str, name: str, value: Any) -> None:
    """Raise unless `value` is finite and > 0 (NaN and ±inf refused; a tracer taken as given)."""
    check_range(where, name, value, low=0, low_open=True, fix="pass a positive number.")


def check_nonnegative(where: str, name: str, value: Any) -> None:
    """Raise unless `value` is finite and >= 0 (NaN and ±inf refused; a tracer taken as given)."""
    check_range(where, name, value, low=0, fix="pass a non-negative number.")


def check_finite(where: str, name: str, value: Any) -> None:
    """Raise unless `value` is a finite number or array (a tracer taken as given)."""
    check_range(where, name, value, fix="pass a finite number.")


def check_decay(where: str, name: str, value: Any, optional: bool = False) -> None:
    """Raise unless a decay rate (beta, momentum) lies in [0, 1); None passes when `optional`."""
    if value is None and optional:
        return
    check_range(where, name, value, low=0, high=1, high_open=True,
                fix="typical values are 0.9 (momentum, b1) and 0.999 (b2).")


def check_learning_rate(where: str, learning_rate: Any, name: str = "learning_rate") -> None:
    """A learning rate is a schedule (callable `count -> lr`), None (no scaling) or a number/array > 0."""
    if learning_rate is None or callable(learning_rate):
        return
    if not isinstance(learning_rate, _NUMERIC) or isinstance(learning_rate, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a number > 0, an array or a schedule (a function count -> "
                        f"{name}), got {type(learning_rate).__name__} {learning_rate!r}"
                        + (f"; pass the number itself, e.g. {where}({float(learning_rate)!r})"
                           if _numeric_text(learning_rate) else ""))
    check_positive(where, name, learning_rate)


def check_flag(where: str, name: str, value: Any) -> None:
    """Raise TypeError unless `value` is True or False (a string such as "no" would be truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {type(value).__name__} {value!r}")


def check_steps(where: str, name: str, value: Any, low: int = 0) -> int:
    """A count of updates: a Python int >= `low` (no bool, float or array), else an error naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int (a number of updates), got {type(value).__name__} "
                        f"{value!r}")
    if value < low:
        raise ValueError(f"{where}: {name} must be an int >= {low} (a number of updates), got {value!r}")
    return int(value)


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
