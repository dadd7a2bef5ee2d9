"""The `Dataset` container and the checks every loader runs before handing data out."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
    """A train/test pair of numpy arrays.

    x_train: (N, D) float32, or (N, H, W, C) images when loaded with `flatten=False`; image pixels are
             scaled to [0, 1].
    y_train: (N,) int32 class labels in [0, len(classes)), or (N, 1) float32 targets for regression.
    x_test, y_test: the same for the test set.
    classes: tuple of class names (str); empty for regression sets.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple

    def __repr__(self) -> str:
        kind = f"{len(self.classes)} classes" if self.classes else "regression"
        lo, hi = (float(self.x_train.min()), float(self.x_train.max())) if self.x_train.size else (0.0, 0.0)
        return (f"Dataset({self.x_train.shape[0]} train / {self.x_test.shape[0]} test examples of shape "
                f"{tuple(self.x_train.shape[1:])} {self.x_train.dtype} in [{lo:.3g}, {hi:.3g}], {kind}"
                + (f": {', '.join(map(str, self.classes[:10]))}{', ...' if len(self.classes) > 10 else ''}"
                   if self.classes else "") + ")")

    __str__ = __repr__


def check_dataset(ds: Dataset, name: str) -> Dataset:
    """Validate a freshly built dataset; raise ValueError naming `name` and the problem."""
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        if x.shape[0] == 0:
            raise ValueError(f"dataset {name!r}: the {split} split is empty; the source files hold no examples")
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"dataset {name!r}: {split} split has {x.shape[0]} inputs but {y.shape[0]} targets"
            )
        if x.dtype != np.float32:
            raise TypeError(f"dataset {name!r}: {split} inputs are {x.dtype}, expected float32")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"dataset {name!r}: {split} inputs contain NaN or infinite values; the source is damaged")
        if ds.classes:
            if y.dtype != np.int32:
                raise TypeError(f"dataset {name!r}: {split} labels are {y.dtype}, expected int32")
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= len(ds.classes):
                raise ValueError(
                    f"dataset {name!r}: {split} labels span [{lo}, {hi}] but there are {len(ds.classes)} "
                    f"classes (labels must lie in [0, {len(ds.classes) - 1}])"
                )
        elif not np.all(np.isfinite(y)):
            raise ValueError(f"dataset {name!r}: {split} targets contain NaN or infinite values")
    return ds
