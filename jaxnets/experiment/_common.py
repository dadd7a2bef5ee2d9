"""Host-side checks shared by `fit_ensemble` and the sweeps (each failure names the problem and the fix)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.training import validate as check
from jaxnets.training.early_stopping import MONITORS, EarlyStopping


def check_keys(keys, name: str = "keys") -> jax.Array:
    """K PRNG keys stacked on axis 0: typed keys of shape (K,) or raw uint32 keys of shape (K, 2)."""
    if isinstance(keys, (list, tuple)) and keys:
        keys = jnp.stack([jnp.asarray(k) for k in keys])
    hint = f"pass {name}=jax.random.split(jax.random.key(0), K) for K members"
    if not isinstance(keys, jax.Array):
        raise TypeError(f"{name} must be an array of PRNG keys stacked on axis 0, got {type(keys).__name__}; {hint}")
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    if not ((typed and keys.ndim == 1) or (keys.dtype == jnp.uint32 and keys.ndim == 2)):
        raise ValueError(f"{name} must hold K keys stacked on axis 0, got dtype {keys.dtype} shape "
                         f"{tuple(keys.shape)}; {hint}")
    if keys.shape[0] < 1:
        raise ValueError(f"{name} is empty; {hint}")
    return keys


def check_key(key, name: str = "key") -> jax.Array:
    """A single PRNG key (typed scalar or raw uint32 (2,))."""
    ok = isinstance(key, jax.Array) and (
        (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 0)
        or (key.dtype == jnp.uint32 and key.shape == (2,)))
    if not ok:
        raise TypeError(f"{name} must be one PRNG key, e.g. jax.random.key(0), got {type(key).__name__}")
    return key


def check_data(train_data, val_data, batch_size, out_shape_fn):
    """(x, y, xv, yv, classification) as device arrays; `out_shape_fn(x)` gives the model's output shape."""
    x, y = check.check_arrays(train_data, "train_data")
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size {batch_size} is larger than the {x.shape[0]} training examples; use "
                         f"batch_size <= {x.shape[0]}")
    out_shape = out_shape_fn(x)
    check.check_targets(y, out_shape, "train_data")
    classification = check.is_classification(y, out_shape)
    xv = yv = None
    if val_data is not None:
        xv, yv = check.check_arrays(val_data, "val_data")
        check.check_same_features(x, xv)
        check.check_targets(yv, out_shape, "val_data")
        xv, yv = jnp.asarray(xv), jnp.asarray(yv)
    return jnp.asarray(x), jnp.asarray(y), xv, yv, classification


def resolve_stopping(early_stopping, has_val: bool, classification: bool, default_monitor=None):
    """(monitor, patience or None, min_delta) for an `EarlyStopping` or None."""
    if early_stopping is None:
        monitor = default_monitor or ("val_loss" if has_val else "train_loss")
        if monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
        if monitor.startswith("val") and not has_val:
            raise ValueError(f"selecting on {monitor!r} needs val_data=(x_val, y_val); pass it or monitor "
                             "'train_loss'")
        if monitor.endswith("accuracy") and not classification:
            raise ValueError(f"{monitor!r} needs classification targets; monitor a loss instead")
        return monitor, None, 0.0
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError("early_stopping must be a jaxnets.EarlyStopping(patience=...) or None")
    if early_stopping.monitor.startswith("val") and not has_val:
        raise ValueError(f"early stopping monitors {early_stopping.monitor!r} but no val_data was given; pass "
                         "val_data=(x_val, y_val) or EarlyStopping(monitor='train_loss')")
    if early_stopping.monitor.endswith("accuracy") and not classification:
        raise ValueError("early stopping on accuracy needs classification targets; monitor a loss instead")
    return early_stopping.monitor, early_stopping.patience, float(early_stopping.min_delta)


def common_checks(gradients, epochs, batch_size):
    check.check_gradients(gradients)
    return check.positive_int(epochs, "epochs"), check.positive_int(batch_size, "batch_size")
