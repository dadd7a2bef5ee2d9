"""Tests for jaxnets.data: IDX reading and its error paths, dataset lookup/download, digits, synthetic sets,
helpers. IDX files are built byte by byte here (struct), independently of the reader under test."""
import gzip
import hashlib
import os
import struct
import urllib.error

import jax
import numpy as np
import pytest

from jaxnets import data
from jaxnets.data import sources

# Debian's copy, when it is installed and the data search path (JAXNETS_DATA_PATH) does not hide it; CI hides it.
FASHION_DIR = os.path.join(sources.SYSTEM_DIR, "fashion-mnist")
FASHION_VISIBLE = FASHION_DIR in sources.search_dirs("fashion-mnist") and os.path.isdir(FASHION_DIR)
CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_bytes(array, code=0x08, dims=None):
    """IDX encoding written from the specification: 0, 0, type code, ndim, big-endian dims, big-endian data."""
    array = np.asarray(array)
    dims = array.shape if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + array.astype(CODES[code]).tobytes()


def write(path, payload, compress=False):
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_set(directory, train_x, train_y, test_x, test_y, compress=(False, True, True, False)):
    directory.mkdir(parents=True, exist_ok=True)
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    arrays = [train_x, train_y, test_x, test_y]
    for name, arr, gz in zip(names, arrays, compress):
        write(directory / (name + (".gz" if gz else "")), idx_bytes(arr), gz)
    return directory


def tiny_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 4), dtype=np.uint8)


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No real data directories, no JAXNETS_DATA, a private HOME, and no network."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("JAXNETS_DATA", raising=False)
    monkeypatch.delenv("JAXNETS_DATA_PATH", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DIR", str(tmp_path / "system"))

    def offline(url, timeout=None):
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr(sources, "_urlopen", offline)
    return tmp_path


# ------------------------------------------------------------------------------------------------ IDX
@pytest.mark.parametrize("code", sorted(CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_all_element_types(tmp_path, code, compress):
    values = (np.arange(24).reshape(2, 3, 4) - 5) * (0.5 if code >= 0x0D else 1)
    path = write(tmp_path / "a-idx3", idx_bytes(values, code), compress)
    out = data.read_idx(path)
    assert out.shape == (2, 3, 4)
    assert out.dtype == np.dtype(CODES[code]).newbyteorder("=")
    np.testing.assert_array_equal(out, values.astype(CODES[code]))
    out[0, 0, 0] = 1  # writable


@pytest.mark.parametrize("payload, message", [
    (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", "magic number"),
    (b"\x00\x00\x0a\x01" + struct.pack(">I", 2) + b"ab", "element type 0x0A"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
    (b"\x00\x00", "shorter than the 4-byte"),
    (idx_bytes(np.zeros((3, 2, 2)))[:-1], "truncated"),
    (idx_bytes(np.zeros((3, 2, 2))) + b"\x00", "trailing bytes"),
    (idx_bytes(np.zeros((3, 2), np.int32), 0x0C)[:-2], "truncated"),
], ids=["magic", "type-code", "zero-dims", "short-header", "tiny", "short-payload", "extra-byte", "short-int32"])
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_read_idx_rejects_damaged_files(tmp_path, payload, message, compress):
    path = write(tmp_path / "bad-idx", payload, compress)
    with pytest.raises(ValueError, match=message) as err:
        data.read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(tiny_images(50, 0)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="gzip stream is corrupt or truncated"):
        data.read_idx(path)


# ---------------------------------------------------------------------------------- IDX datasets
def test_load_fashion_mnist_from_data_dir(isolated):
    xs, ys = tiny_images(7, 1), np.array([0, 9, 3, 3, 1, 2, 5], np.uint8)
    xt, yt = tiny_images(2, 2), np.array([4, 8], np.uint8)
    root = write_set(isolated / "fm", xs, ys, xt, yt)
    ds = data.load("fashion-mnist", data_dir=root)
    assert ds.x_train.shape == (7, 12) and ds.x_test.shape == (2, 12)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    np.testing.assert_allclose(ds.x_train, xs.reshape(7, 12) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, yt)
    assert len(ds.classes) == 10 and ds.classes[9] == "Ankle boot"
    images = data.load("Fashion_MNIST", data_dir=root, flatten=False)
    assert images.x_train.shape == (7, 3, 4, 1)
    np.testing.assert_array_equal(images.x_train[..., 0], ds.x_train.reshape(7, 3, 4))


def test_jaxnets_data_env_and_search_order(isolated, monkeypatch):
    env = isolated / "env"
    write_set(env / "mnist", tiny_images(3, 3), np.array([1, 2, 3]), tiny_images(1, 4), np.array([7]))
    monkeypatch.setenv("JAXNETS_DATA", str(env))
    assert data.search_dirs("mnist", "/given") == [
        "/given", str(env / "mnist"), str(env), str(isolated / "home" / ".cache" / "jaxnets" / "mnist"),
        str(isolated / "system" / "mnist")]
    ds = data.load("mnist")
    np.testing.assert_array_equal(ds.y_train, [1, 2, 3])
    assert ds.classes == tuple("0123456789")
    assert data.available()["mnist"] and not data.available()["fashion-mnist"]
    row = {r.name: r for r in data.datasets()}["mnist"]
    assert row.offline and row.location == str(env / "mnist") and row.kind == "idx"


def test_data_path_variable_replaces_the_default_roots(isolated, monkeypatch):
    a, b = isolated / "a", isolated / "b"
    write_set(b / "mnist", tiny_images(2, 5), np.array([4, 5]), tiny_images(1, 6), np.array([6]))
    monkeypatch.setenv("JAXNETS_DATA_PATH", os.pathsep.join([str(a), "", str(b)]))
    assert data.search_dirs("mnist") == [str(a / "mnist"), str(b / "mnist")]  # no ~/.cache, no /usr/share
    np.testing.assert_array_equal(data.load("mnist", download=False).y_train, [4, 5])
    assert sources.cache_dir("mnist") == str(a / "mnist")  # downloads go to the first root
    monkeypatch.setenv("JAXNETS_DATA_PATH", "")  # set but empty: nothing is searched but data_dir/JAXNETS_DATA
    assert data.search_dirs("mnist") == []
    with pytest.raises(data.DatasetNotFoundError, match="JAXNETS_DATA_PATH"):
        data.load("mnist", download=False)


def test_image_label_count_mismatch(isolated):
    root = write_set(isolated / "d", tiny_images(5, 0), np.arange(4), tiny_images(2, 1), np.arange(2))
    with pytest.raises(ValueError, match="5 images but .*train-labels.* 4 labels"):
        data.load("mnist", data_dir=root)


def test_empty_nan_and_label_range_errors(isolated):
    empty = write_set(isolated / "e", np.zeros((0, 3, 4), np.uint8), np.zeros(0), tiny_images(1, 0), [1])
    with pytest.raises(ValueError, match="train split is empty"):
        data.load("mnist", data_dir=empty)
    bad_label = write_set(isolated / "l", tiny_images(2, 0), [1, 10], tiny_images(1, 0), [1])
    with pytest.raises(ValueError, match=r"labels span \[1, 10\]"):
        data.load("mnist", data_dir=bad_label)
    nan_dir = isolated / "n"
    write_set(nan_dir, tiny_images(2, 0), [0, 1], tiny_images(1, 0), [1])
    images = np.full((2, 3, 4), 0.5, np.float32)
    images[1, 2, 3] = np.nan
    write(nan_dir / "train-images-idx3-ubyte", idx_bytes(images, 0x0D))
    with pytest.raises(ValueError, match="NaN"):
        data.load("mnist", data_dir=nan_dir)


def test_not_found_error_lists_directories_and_fixes(isolated):
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("fashion-mnist")
    text = str(err.value)
    for directory in data.search_dirs("fashion-mnist"):
        assert directory in text
    assert "apt-get install dataset-fashion-mnist" in text and "JAXNETS_DATA" in text
    assert "network unreachable" in text
    with pytest.raises(FileNotFoundError, match="downloads are disabled"):
        data.load("mnist", download=False)
    assert not os.path.exists(isolated / "home" / ".cache")  # nothing created when offline


class _Response:
    def __init__(self, payload, fail_after=None):
        self.payload, self.pos, self.fail_after = payload, 0, fail_after

    def read(self, n):
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise ConnectionResetError("connection dropped (test)")
        chunk = self.payload[self.pos:self.pos + min(n, 1000)]
        self.pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_verifies_checksums_and_caches(isolated, monkeypatch):
    arrays = {"train_images": tiny_images(4, 5), "train_labels": np.array([3, 1, 4, 1]),
              "test_images": tiny_images(2, 6), "test_labels": np.array([5, 9])}
    served = {sources.BASE_URLS["mnist"] + sources.FILE_NAMES[r] + ".gz": gzip.compress(idx_bytes(a))
              for r, a in arrays.items()}
    for role in arrays:
        blob = served[sources.BASE_URLS["mnist"] + sources.FILE_NAMES[role] + ".gz"]
        monkeypatch.setitem(sources.SHA256["mnist"], role, hashlib.sha256(blob).hexdigest())
    requested = []
    monkeypatch.setattr(sources, "_urlopen", lambda url, timeout=None: requested.append(url) or _Response(served[url]))
    ds = data.load("mnist")
    np.testing.assert_array_equal(ds.y_train, [3, 1, 4, 1])
    np.testing.assert_allclose(ds.x_test, arrays["test_images"].reshape(2, 12) / 255.0, rtol=1e-6)
    cache = isolated / "home" / ".cache" / "jaxnets" / "mnist"
    assert sorted(os.listdir(cache)) == sorted(sources.FILE_NAMES[r] + ".gz" for r in arrays)
    assert len(requested) == 4
    data.load("mnist")  # second load: from the cache, no new requests
    assert len(requested) == 4


def test_checksum_mismatch_and_interrupted_download_leave_nothing(isolated, monkeypatch):
    dest = isolated / "dl" / "file.gz"
    monkeypatch.setattr(sources, "_urlopen", lambda url, timeout=None: _Response(b"x" * 5000))
    with pytest.raises(data.ChecksumError, match="SHA-256"):
        sources.fetch("http://example.invalid/file.gz", str(dest), "0" * 64)
    assert os.listdir(dest.parent) == []
    monkeypatch.setattr(sources, "_urlopen", lambda url, timeout=None: _Response(b"x" * 5000, fail_after=2000))
    with pytest.raises(ConnectionResetError):
        sources.fetch("http://example.invalid/file.gz", str(dest), hashlib.sha256(b"x" * 5000).hexdigest())
    assert os.listdir(dest.parent) == []
    monkeypatch.setattr(sources, "_urlopen", lambda url, timeout=None: _Response(b"x" * 5000))
    sources.fetch("http://example.invalid/file.gz", str(dest), hashlib.sha256(b"x" * 5000).hexdigest())
    assert os.listdir(dest.parent) == ["file.gz"] and dest.read_bytes() == b"x" * 5000


# Official MD5s from Fashion-MNIST's README; mtime/name recovered from them (Debian strips both).
_FASHION_MD5 = {"train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
                "test_images": "bef4ecab320f06d8554ea6380940ec79", "test_labels": "bb300cfdad3c16e7a12a480ee83cd310"}
_FASHION_MTIME = {"train_images": 1504176606, "train_labels": 1504176606,
                  "test_images": 1504176627, "test_labels": 1504176627}


@pytest.mark.skipif(not FASHION_VISIBLE, reason="Debian's dataset-fashion-mnist is not installed (`make data`), or "
                    "JAXNETS_DATA_PATH hides it (as CI does)")
def test_real_fashion_mnist_files_load_and_match_canonical_checksums():
    for role, base in sources.FILE_NAMES.items():
        blob = open(os.path.join(FASHION_DIR, base + ".gz"), "rb").read()
        assert blob[:4] == b"\x1f\x8b\x08\x00"  # header without the original file name
        canonical = (b"\x1f\x8b\x08\x08" + struct.pack("<I", _FASHION_MTIME[role]) + blob[8:10]
                     + base.encode() + b"\x00" + blob[10:])
        assert hashlib.md5(canonical).hexdigest() == _FASHION_MD5[role]
        assert hashlib.sha256(canonical).hexdigest() == sources.SHA256["fashion-mnist"][role]
    ds = data.load("fashion-mnist", data_dir=FASHION_DIR, download=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [1000] * 10)


# ---------------------------------------------------------------------------------------- digits
def _raw_digits():
    path = os.path.join(os.path.dirname(data.__file__), "files", "digits.csv.gz")
    with gzip.open(path, "rt") as f:
        return np.loadtxt(f, delimiter=",")


def test_digits_shapes_scale_and_fixed_split():
    ds = data.load()
    assert ds.x_train.shape == (1437, 64) and ds.x_test.shape == (360, 64)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.classes == tuple("0123456789") and set(np.unique(ds.y_test)) == set(range(10))
    again = data.load("digits")
    for a, b in zip(ds[:4], again[:4]):
        np.testing.assert_array_equal(a, b)
    images = data.load("digits", flatten=False)
    assert images.x_train.shape == (1437, 8, 8, 1)
    np.testing.assert_array_equal(images.x_train.reshape(1437, 64), ds.x_train)


def test_digits_split_is_a_stratified_partition_of_the_file():
    raw = _raw_digits()
    ds = data.load("digits")
    rows = np.concatenate([np.column_stack([ds.x_train * 16, ds.y_train]),
                           np.column_stack([ds.x_test * 16, ds.y_test])])
    np.testing.assert_array_equal(rows[np.lexsort(rows.T)], raw[np.lexsort(raw.T)])
    share = np.bincount(raw[:, 64].astype(int)) * 360 / len(raw)
    assert np.all(np.abs(np.bincount(ds.y_test) - share) < 1)


def test_unknown_name_and_options():
    with pytest.raises(ValueError, match="known datasets: digits, mnist, fashion-mnist, mnist-5k, xor"):
        data.load("cifar10")
    with pytest.raises(TypeError, match="takes no options"):
        data.load("digits", n=3)


# ------------------------------------------------------------------------------------- synthetic
def test_xor_truth_table_and_noisy_samples():
    ds = data.load("xor")
    np.testing.assert_array_equal(ds.x_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(ds.y_train, [0, 1, 1, 0])
    noisy = data.load("xor", n=300, noise=0.1, seed=3)
    assert noisy.x_train.shape == (300, 2) and noisy.x_test.shape == (300, 2)
    corners = np.round(noisy.x_train).astype(int)
    np.testing.assert_array_equal(noisy.y_train, corners[:, 0] ^ corners[:, 1])
    assert 0 < noisy.y_train.mean() < 1


@pytest.mark.parametrize("name", ["xor", "spirals", "sine"])
def test_synthetic_sets_are_deterministic_in_the_seed(name):
    a, b = data.load(name, n=50, seed=7), data.load(name, n=50, seed=7)
    c = data.load(name, n=50, seed=8)
    k1, k2 = data.load(name, n=50, seed=jax.random.key(7)), data.load(name, n=50, seed=jax.random.key(7))
    for x, y, z, u, v in zip(a[:4], b[:4], c[:4], k1[:4], k2[:4]):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.x_train, c.x_train)


def test_spirals_geometry():
    ds = data.spirals(400, noise=0.0, seed=1, turns=1.5)
    x, y = ds.x_train.astype(np.float64), ds.y_train
    assert np.bincount(y).tolist() == [200, 200] and ds.classes == ("0", "1")
    r = np.hypot(x[:, 0], x[:, 1])
    phase = np.arctan2(x[:, 1], x[:, 0]) - 2 * np.pi * 1.5 * r - np.pi * y
    np.testing.assert_allclose(np.cos(phase), 1.0, atol=1e-4)  # on the class's spiral


def test_sine_regression():
    ds = data.load("sine", n=100, n_test=25, noise=0.0, seed=0)
    assert ds.x_train.shape == ds.y_train.shape == (100, 1) and ds.x_test.shape == (25, 1)
    assert ds.classes == () and ds.y_train.dtype == np.float32
    assert np.all(np.abs(ds.x_train) <= np.pi)
    np.testing.assert_allclose(ds.y_train, np.sin(ds.x_train.astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(ds.x_test[[0, -1], 0], [-np.pi, np.pi], rtol=1e-6)
    with pytest.raises(ValueError, match="n must be a positive int"):
        data.sine(0)


# ---------------------------------------------------------------------------------------- helpers
def test_one_hot():
    labels = np.array([[2, 0], [1, 2]])
    np.testing.assert_array_equal(data.one_hot(labels, 3), np.eye(3)[labels])
    assert data.one_hot(labels, 3).dtype == np.float32
    traced = jax.jit(lambda l: data.one_hot(l, 4))(np.array([3, 1]))
    np.testing.assert_array_equal(traced, np.eye(4)[[3, 1]])
    with pytest.raises(ValueError, match="label 3 is out of range for num_classes=3"):
        data.one_hot([0, 3], 3)
    with pytest.raises(ValueError, match="label -1 is out of range"):
        data.one_hot([-1, 0], 3)
    with pytest.raises(ValueError, match="integer labels"):
        data.one_hot([0.0, 1.0], 3)


def test_train_val_split():
    x, y = np.arange(100).reshape(50, 2), np.arange(50)
    xt, yt, xv, yv = data.train_val_split(x, y, 0.2, seed=1)
    assert len(yv) == 10 and len(yt) == 40
    assert sorted(np.concatenate([yt, yv]).tolist()) == list(range(50))
    np.testing.assert_array_equal(xt[:, 0] // 2, yt)
    assert np.all(np.diff(yt) > 0) and np.all(np.diff(yv) > 0)
    np.testing.assert_array_equal(data.train_val_split(x, y, val_size=10, seed=1)[3], yv)
    assert not np.array_equal(data.train_val_split(x, y, val_size=10, seed=2)[3], yv)
    for kwargs in ({}, {"val_fraction": 0.1, "val_size": 3}, {"val_fraction": 1.0}, {"val_size": 50}):
        with pytest.raises(ValueError):
            data.train_val_split(x, y, **kwargs)
    with pytest.raises(ValueError, match="same leading length"):
        data.train_val_split(x, y[:-1], 0.1)


def test_subset():
    ds = data.load("digits")
    small = data.subset(ds, 1000)
    assert small.x_train.shape == (1000, 64)
    np.testing.assert_array_equal(small.y_train, ds.y_train[:1000])
    assert small.x_test is ds.x_test
    with pytest.raises(ValueError, match="between 1 and 1437"):
        data.subset(ds, 2000)
