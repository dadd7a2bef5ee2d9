"""Host-side checks run before anything is compiled: each failure is a ValueError/TypeError naming the
problem and the fix."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import Ctx
from jaxnets.training._cache import cached

GRADIENT_SOURCES = ("manual", "autodiff")


def positive_int(value, name: str, hint: str = "") -> int:
    """`value` as an int ≥ 1, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}{'; ' + hint if hint else ''}")
    return int(value)


def check_gradients(gradients) -> str:
    if gradients not in GRADIENT_SOURCES:
        raise ValueError(
            f"gradients={gradients!r} is not a gradient source; use gradients='manual' (hand-written backprop) "
            "or gradients='autodiff' (jax.grad)"
        )
    return gradients


def _all_finite(a) -> bool:
    if isinstance(a, jax.Array):
        return bool(jnp.all(jnp.isfinite(a)))
    return bool(np.all(np.isfinite(a)))


def check_arrays(data, name: str):
    """`data` must be an (x, y) pair of arrays with a common, non-zero leading length and finite values."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be an (x, y) tuple of arrays, got {type(data).__name__}; "
                        f"pass {name}=(x, y)")
    x, y = data
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = np.asarray(x)
    if not hasattr(y, "shape") or not hasattr(y, "dtype"):
        y = np.asarray(y)
    if x.ndim < 2:
        raise ValueError(f"{name}: x has shape {tuple(x.shape)} but needs a batch axis and feature axes, "
                         "e.g. (N, D); reshape it, e.g. x[:, None] for one feature")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (x has shape {tuple(x.shape)}); pass at least one example")
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: x has {x.shape[0]} examples but y has shape {tuple(y.shape)}; "
                         "x and y need the same leading length")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: x has dtype {x.dtype}; convert inputs to floating point, e.g. x.astype('float32')")
    if not _all_finite(x):
        raise ValueError(f"{name}: x contains NaN or infinite values; clean or impute the data before training")
    if jnp.issubdtype(y.dtype, jnp.floating) and not _all_finite(y):
        raise ValueError(f"{name}: y contains NaN or infinite values; clean the targets before training")
    if not (jnp.issubdtype(y.dtype, jnp.floating) or jnp.issubdtype(y.dtype, jnp.integer)):
        raise TypeError(f"{name}: y has dtype {y.dtype}; use integer class labels or float targets")
    return x, y


def output_shape(model, params, state, x) -> tuple:
    """Per-example output shape of `model` on inputs like `x` (abstract evaluation, no compute)."""
    def run(p, s, xb):
        return model.forward(p, s, xb, Ctx(False, None))[0]

    try:
        out = jax.eval_shape(run, params, state, jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype))
    except (ValueError, TypeError, IndexError) as err:
        raise ValueError(f"the model cannot take inputs of per-example shape {tuple(x.shape[1:])}: {err}") from err
    return tuple(out.shape[1:])


@functools.lru_cache(maxsize=16)
def _init_program(model, shape):
    return jax.jit(lambda k: model.init(k, shape)[1:])


def init_params(model, key, x):
    """`model.init(key, x.shape[1:])` with a clear error when the data does not fit the model."""
    shape = tuple(x.shape[1:])
    try:
        params, state = cached(_init_program, model, shape)(key)  # one compiled program, not op by op
    except (ValueError, TypeError, IndexError) as err:
        raise ValueError(f"cannot initialise the model for inputs of per-example shape {tuple(x.shape[1:])}: "
                         f"{err}") from err
    return params, state


def _host(a):
    return np.asarray(jax.device_get(a))


def is_classification(y, out_shape) -> bool:
    """True for integer labels, and for dense targets whose entries are all 0/1 with one 1 per row (k > 1) or
    a single 0/1 column (k = 1); False for real-valued (regression) targets."""
    if jnp.issubdtype(y.dtype, jnp.integer):
        return True
    if y.ndim != 2 or tuple(y.shape[1:]) != tuple(out_shape):
        return False
    yh = _host(y)
    binary = np.all((yh == 0) | (yh == 1))
    return bool(binary and (yh.shape[1] == 1 or np.all(yh.sum(axis=1) == 1)))


def check_targets(y, out_shape, name: str) -> None:
    """Targets must be integer labels in [0, classes) (shape (N,)) or dense targets of the output shape."""
    n_out = out_shape[-1] if out_shape else 1
    if jnp.issubdtype(y.dtype, jnp.integer):
        if y.ndim != 1:
            raise ValueError(f"{name}: integer labels must have shape (N,), got {tuple(y.shape)}; "
                             "pass class indices or float one-hot rows")
        yh = _host(y)
        lo, hi = int(yh.min()), int(yh.max())
        top = 1 if n_out == 1 else n_out - 1
        if lo < 0 or hi > top:
            raise ValueError(
                f"{name}: labels span [{lo}, {hi}] but the model has {n_out} output unit(s), so labels must lie in "
                f"[0, {top}]; give the last layer one unit per class or fix the labels"
            )
        return
    if tuple(y.shape[1:]) != tuple(out_shape):
        hint = " (use y[:, None])" if y.ndim == 1 and tuple(out_shape) == (1,) else ""
        raise ValueError(
            f"{name}: targets of per-example shape {tuple(y.shape[1:])} do not match the model's output shape "
            f"{tuple(out_shape)}{hint}; pass integer labels (N,) or float targets (N,) + output shape"
        )


def check_same_features(x_train, x_val) -> None:
    if tuple(x_val.shape[1:]) != tuple(x_train.shape[1:]):
        raise ValueError(f"val_data: x has per-example shape {tuple(x_val.shape[1:])} but train_data has "
                         f"{tuple(x_train.shape[1:])}; validation inputs must look like training inputs")
