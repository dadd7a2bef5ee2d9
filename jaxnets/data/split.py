"""Label encoding and dataset splitting helpers (numpy in, numpy out)."""
from __future__ import annotations

import numpy as np

from jaxnets.data.base import Dataset


def one_hot(labels, num_classes: int, dtype=np.float32):
    """Encode integer labels of shape S as one-hot vectors of shape S + (num_classes,).

    Concrete inputs are checked: a non-integer dtype or a label outside [0, num_classes) raises ValueError.
    Inside `jit` (traced labels) the values cannot be inspected; the result is `jax.nn.one_hot`, which maps
    an out-of-range label to a zero row.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    import jax

    try:
        arr = np.asarray(labels)
    except jax.errors.TracerArrayConversionError:
        return jax.nn.one_hot(labels, int(num_classes), dtype=dtype)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"one_hot needs integer labels, got dtype {arr.dtype}; convert with .astype(int)")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"one_hot: label {bad} is out of range for num_classes={num_classes} "
                f"(labels span [{lo}, {hi}], allowed [0, {num_classes - 1}])"
            )
    return (arr[..., None] == np.arange(num_classes)).astype(dtype)


def train_val_split(x, y, val_fraction: float | None = None, *, val_size: int | None = None, seed: int = 0):
    """Split (x, y) into training and validation parts: returns (x_train, y_train, x_val, y_val).

    Give exactly one of `val_fraction` (in (0, 1); the count is rounded) or `val_size`. Which examples go to
    validation is a seeded random choice, so the same seed gives the same split; both parts keep the
    original order of the examples.
    """
    x, y = np.asarray(x), np.asarray(y)
    n = x.shape[0] if x.ndim else 0
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"x and y must have the same leading length, got {x.shape} and {y.shape}")
    if (val_fraction is None) == (val_size is None):
        raise ValueError("give exactly one of val_fraction (e.g. 0.1) or val_size (e.g. 1000)")
    if val_fraction is not None:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
        val_size = int(round(val_fraction * n))
    if not 1 <= val_size <= n - 1:
        raise ValueError(
            f"the split leaves an empty part: {val_size} validation examples out of {n}; "
            "choose a validation size between 1 and n - 1"
        )
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(order[:val_size]), np.sort(order[val_size:])
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def subset(ds: Dataset, n: int) -> Dataset:
    """The first `n` training examples of `ds` (test set unchanged), e.g. for 1,000-image experiments."""
    total = ds.x_train.shape[0]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= total:
        raise ValueError(f"subset size must be an int between 1 and {total} (the training set size), got {n!r}")
    return ds._replace(x_train=ds.x_train[:n], y_train=ds.y_train[:n])
