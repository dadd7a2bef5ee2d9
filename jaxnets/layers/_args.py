"""Layer arguments: checks shared by the layers (initializers, dtypes), and names that show every argument given
a non-default value, e.g. `Dense(10, w_init=he_normal, dtype=float64)`.

    layer_name("Dense", [n], use_bias=(use_bias, True), w_init=(w_init, glorot_uniform))

Positional values are always shown; each keyword is a (value, default) pair, shown as `key=value` only when the
value is not the default. Numbers print with `:g`, dtypes by name, initializers by name (`normal(std=0.1)` for
one built by a factory, read from its closure), anything else with `repr`.
"""
from __future__ import annotations

import inspect

import jax.numpy as jnp
import numpy as np

__all__ = ["check_dtype", "check_initializer", "layer_name", "show"]


def check_initializer(where: str, name: str, fn) -> None:
    """TypeError unless `fn` is an initializer, a function (key, shape, dtype=None) -> array."""
    if not callable(fn):
        hint = f" (pass the function, e.g. jaxnets.initializers.{fn})" if isinstance(fn, str) else ""
        raise TypeError(f"{where}: {name} must be an initializer, a function (key, shape, dtype=None) -> array such "
                        f"as jaxnets.initializers.glorot_uniform; got {type(fn).__name__} {fn!r}{hint}")


def check_dtype(where: str, dtype) -> None:
    """TypeError unless `dtype` is None (the default float) or a floating dtype (jnp.float32, "bfloat16", ...)."""
    if dtype is None:
        return
    try:
        ok = jnp.issubdtype(jnp.dtype(dtype), jnp.floating)
    except TypeError:
        ok = False
    if not ok:
        raise TypeError(f"{where}: dtype must be a floating dtype for the params (e.g. jnp.float32, jnp.bfloat16) or "
                        f"None for the default, got {dtype!r}")


def _show_function(fn) -> str:
    """A module-level function by name; a closure made by a factory as factory(name=value, ...)."""
    qualname = getattr(fn, "__qualname__", "")
    if "<locals>" not in qualname:
        return getattr(fn, "__name__", repr(fn))
    outer = qualname.split(".<locals>", 1)[0]
    try:
        bound = inspect.getclosurevars(fn).nonlocals
    except (TypeError, ValueError):
        bound = {}
    shown = ", ".join(f"{k}={show(v)}" for k, v in bound.items() if not callable(v))
    return f"{outer}({shown})" if outer != "<lambda>" else "<lambda>"


def show(value) -> str:
    """`value` the way a layer name writes it."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{value:g}"
    if isinstance(value, (type, np.dtype)):
        try:
            return np.dtype(value).name
        except TypeError:
            return getattr(value, "__name__", repr(value))
    if callable(value):
        return _show_function(value)
    return repr(value)


def _differs(value, default) -> bool:
    if value is default:
        return False
    try:
        return bool(value != default)
    except (TypeError, ValueError):
        return True


def layer_name(kind: str, positional=(), **options) -> str:
    """`kind(positional..., key=value...)` with each option (value, default) shown when it is not the default;
    `kind` alone when nothing is shown."""
    parts = [show(v) for v in positional]
    parts += [f"{key}={show(value)}" for key, (value, default) in options.items() if _differs(value, default)]
    return f"{kind}({', '.join(parts)})" if parts else kind
