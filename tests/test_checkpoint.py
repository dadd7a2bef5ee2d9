"""Tests for jaxnets.checkpoint: bit-exact round trips, `like` validation, corruption, no pickle, atomicity."""
import collections
import errno
import functools
import os
import stat
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxnets
from jaxnets import checkpoint as ckpt
from jaxnets.checkpoint import CheckpointError


class Pair(NamedTuple):
    first: object
    second: object


def is_key(x):
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def assert_bit_exact(a, b):
    """Same tree structure, and every leaf has the same type, dtype, shape and bytes."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        if is_key(x) or is_key(y):
            assert str(x.dtype) == str(y.dtype)
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        if isinstance(x, (bool, int, float, complex)):
            assert type(x) is type(y) and x == y
            continue
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


_ADAM = optax.adam(1e-2)
_ADAM_UPDATE = jax.jit(_ADAM.update)


def sample_tree():
    """A fresh top-level dict around shared (immutable) leaves, built once per session."""
    return dict(_sample_tree())


@functools.lru_cache(maxsize=1)
def _sample_tree():
    params = [{"w": jnp.linspace(-1, 1, 6, dtype=jnp.float32).reshape(3, 2), "b": jnp.array([0.1, -0.2])},
              {}, {"w": jnp.arange(4.0, dtype=jnp.bfloat16) / 3}]
    state = _ADAM.init(params)
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 0.3), params)
    for _ in range(2):
        _, state = _ADAM_UPDATE(grads, state, params)
    return {
        "params": params, "opt_state": state,
        "key": jax.random.split(jax.random.key(3), 2), "rbg": jax.random.key(5, impl="rbg"),
        "raw_key": jax.random.PRNGKey(1), "pair": Pair(None, (1, 2.5, True)),
        "extra": {"f64": np.array([np.pi, np.nextafter(1.0, 2.0)]), "i8": np.int8(-7),
                  "flags": np.array([True, False])},
        "ints": {2: np.zeros((0, 3), np.float32), 1: np.uint64(2**63 + 5)},
        "empty": (), "slashed/key%": np.ones(1, np.int16), "none": None,
    }


def test_round_trip_with_like_is_bit_exact_and_restores_types(tmp_path):
    tree = sample_tree()
    path = ckpt.save(tmp_path / "ckpt-1.npz", tree, metadata={"epoch": 1, "loss": 0.25})
    out = ckpt.load(path, like=tree)
    assert_bit_exact(out, tree)
    assert isinstance(out["opt_state"][0], optax.ScaleByAdamState)
    assert isinstance(out["opt_state"][1], optax.EmptyState)
    assert isinstance(out["pair"], Pair) and out["pair"].first is None


def test_restored_optimizer_state_continues_training_identically(tmp_path):
    tree = sample_tree()
    ckpt.save(tmp_path / "c.npz", {"params": tree["params"], "opt": tree["opt_state"]})
    back = ckpt.load(tmp_path / "c.npz", like={"params": tree["params"], "opt": tree["opt_state"]})
    update = _ADAM_UPDATE
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, -0.1), tree["params"])
    expected = update(grads, tree["opt_state"], tree["params"])
    got = update(grads, back["opt"], back["params"])
    assert_bit_exact(got, expected)


def test_round_trip_without_like(tmp_path):
    tree = sample_tree()
    ckpt.save(tmp_path / "c.npz", tree)
    out = ckpt.load(tmp_path / "c.npz")
    adam = out["opt_state"][0]
    assert type(adam).__name__ == "ScaleByAdamState" and adam._fields == ("count", "mu", "nu")
    assert int(adam.count) == 2
    np.testing.assert_array_equal(adam.mu[0]["w"], tree["opt_state"][0].mu[0]["w"])
    assert out["pair"] == (None, (1, 2.5, True)) and out["pair"].second[2] is True
    assert out["none"] is None and out["empty"] == () and out["params"][1] == {}
    assert set(out["ints"]) == {1, 2} and out["ints"][1] == np.uint64(2**63 + 5)
    assert str(out["key"].dtype) == "key<fry>" and str(out["rbg"].dtype) == "key<rbg>"
    np.testing.assert_array_equal(jax.random.key_data(out["key"]), jax.random.key_data(tree["key"]))
    # the restored typed key draws the same numbers
    np.testing.assert_array_equal(jax.random.normal(out["rbg"], (3,)), jax.random.normal(tree["rbg"], (3,)))
    assert out["raw_key"].dtype == np.uint32 and out["params"][2]["w"].dtype == jnp.bfloat16
    # arrays come back as JAX arrays, except dtypes JAX cannot hold exactly without x64
    assert isinstance(out["params"][0]["w"], jax.Array) and isinstance(out["raw_key"], jax.Array)
    assert not jax.config.jax_enable_x64
    assert isinstance(out["extra"]["f64"], np.ndarray) and out["extra"]["f64"].dtype == np.float64


def test_float64_leaves_become_jax_arrays_under_x64(tmp_path, x64):
    value = np.array([np.pi, 1e-300])
    ckpt.save(tmp_path / "c.npz", {"v": value, "n": np.ones(2)})
    out = ckpt.load(tmp_path / "c.npz")
    assert isinstance(out["v"], jax.Array) and out["v"].dtype == jnp.float64
    assert np.asarray(out["v"]).tobytes() == value.tobytes()
    like_numpy = ckpt.load(tmp_path / "c.npz", like={"v": value, "n": jnp.ones(2)})
    assert isinstance(like_numpy["v"], np.ndarray) and isinstance(like_numpy["n"], jax.Array)


def test_leaves_are_stored_under_key_paths(tmp_path):
    ckpt.save(tmp_path / "c.npz", {"params": [{"w": np.ones(2)}], "a/b": np.zeros(1), "a": {"b": np.ones(1)}})
    names = set(zipfile.ZipFile(tmp_path / "c.npz").namelist())
    assert {"params/0/w.npy", "a%2Fb.npy", "a/b.npy", "__jaxnets__.npy"} == names
    out = ckpt.load(tmp_path / "c.npz")
    assert out["a/b"].tolist() == [0.0] and out["a"]["b"].tolist() == [1.0]


def test_like_may_be_shape_dtype_structs(tmp_path):
    tree = sample_tree()
    ckpt.save(tmp_path / "c.npz", tree)
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype) if hasattr(x, "dtype") else x, tree)
    assert_bit_exact(ckpt.load(tmp_path / "c.npz", like=abstract), tree)


def _with(tree, **changes):
    new = dict(tree)
    new.update(changes)
    return new


@pytest.mark.parametrize("change, where, detail", [
    (lambda t: _with(t, params=[t["params"][0], {}, {"w": jnp.zeros(4, jnp.float32)}]),
     "params/2/w", "expected shape (4,) dtype float32, found shape (4,) dtype bfloat16"),
    (lambda t: _with(t, params=[{"w": jnp.zeros((2, 3)), "b": t["params"][0]["b"]}, {}, t["params"][2]]),
     "params/0/w", "expected shape (2, 3) dtype float32, found shape (3, 2) dtype float32"),
    (lambda t: _with(t, params=t["params"][:2]), "params/2", "expected no such entry"),
    (lambda t: {k: v for k, v in t.items() if k != "raw_key"}, "raw_key", "`like` lacks it"),
    (lambda t: _with(t, bonus=np.zeros(1)), "bonus", "no such entry in the checkpoint"),
    (lambda t: _with(t, pair=(None, (1, 2.5, True))), "pair", "expected tuple, found Pair"),
    (lambda t: _with(t, pair=Pair(np.zeros(1), (1, 2.5, True))), "pair/first", "found None"),
    (lambda t: _with(t, rbg=jax.random.key(5)), "rbg", "dtype key<fry>, found shape () dtype key<rbg>"),
    (lambda t: _with(t, opt_state=optax.sgd(0.1, momentum=0.9).init(t["params"])), "opt_state/0",
     "expected TraceState, found ScaleByAdamState"),
])
def test_like_mismatch_names_the_leaf(tmp_path, change, where, detail):
    tree = sample_tree()
    ckpt.save(tmp_path / "c.npz", tree)
    with pytest.raises(CheckpointError) as err:
        ckpt.load(tmp_path / "c.npz", like=change(tree))
    text = str(err.value)
    assert f"at {where}:" in text and detail in text, text
    assert isinstance(err.value, ValueError)


def test_truncated_damaged_and_foreign_files_raise_checkpoint_error(tmp_path):
    good = tmp_path / "good.npz"
    ckpt.save(good, {"w": np.arange(5000, dtype=np.int32)})
    blob = good.read_bytes()
    cases = {"half": blob[: len(blob) // 2], "last-byte": blob[:-1], "empty": b"", "text": b"hello world\n"}
    payload = np.arange(5000, dtype=np.int32).tobytes()
    at = blob.index(payload[4000:4100])
    cases["bit-flip"] = blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:]
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(3))
    cases["foreign-npz"] = plain.read_bytes()
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="corrupt.*earlier checkpoint"):
            ckpt.load(path)
    with pytest.raises(FileNotFoundError):
        ckpt.load(tmp_path / "missing.npz")


_UNPICKLED = []


def _mark_unpickled():
    _UNPICKLED.append(True)
    return 0


class _Trap:
    def __reduce__(self):
        return (_mark_unpickled, ())


def test_no_pickle_on_load_and_object_arrays_refused(tmp_path, monkeypatch):
    good = tmp_path / "good.npz"
    ckpt.save(good, {"w": np.ones(3)})
    crafted = tmp_path / "crafted.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(crafted, "w") as dst:
        dst.writestr("__jaxnets__.npy", src.read("__jaxnets__.npy"))
        with dst.open("w.npy", "w") as member:
            np.lib.format.write_array(member, np.array([_Trap()], dtype=object), allow_pickle=True)
    seen = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: seen.append(k.get("allow_pickle")) or real_load(*a, **k))
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load(crafted)
    assert _UNPICKLED == [] and seen == [False]
    with pytest.raises(TypeError, match="leaf w"):
        ckpt.save(tmp_path / "o.npz", {"w": np.array([object()], dtype=object)})
    with pytest.raises(TypeError, match="leaf s"):
        ckpt.save(tmp_path / "s.npz", {"s": {"a set"}})


def test_metadata(tmp_path):
    meta = {"epoch": 3, "history": [0.5, 0.25], "name": "run", "nested": {"lr": 0.1}}
    ckpt.save(tmp_path / "c.npz", {"w": np.ones(1)}, metadata=meta)
    assert ckpt.load_metadata(tmp_path / "c.npz") == meta
    header = ckpt.describe(tmp_path / "c.npz")
    assert header["jaxnets_version"] == jaxnets.__version__ and header["tree"]["t"] == "dict"
    with pytest.raises(TypeError, match="JSON-serialisable"):
        ckpt.save(tmp_path / "d.npz", {"w": np.ones(1)}, metadata={"loss": np.float32(1.0)})
    with pytest.raises(TypeError, match="must be a dict"):
        ckpt.save(tmp_path / "d.npz", {"w": np.ones(1)}, metadata=[1])
    assert not (tmp_path / "d.npz").exists()


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt-1.npz"
    old = {"w": np.arange(6.0), "b": np.zeros(2)}
    ckpt.save(path, old)
    real_write = np.lib.format.write_array
    calls = []

    def crash_midway(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            fp.write(b"\x93NUMPY partial")
            raise OSError("disk full (simulated)")
        return real_write(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", crash_midway)
    with pytest.raises(OSError, match="simulated"):
        ckpt.save(path, {"w": np.ones(6), "b": np.ones(2)})
    monkeypatch.setattr(np.lib.format, "write_array", real_write)
    assert os.listdir(tmp_path) == ["ckpt-1.npz"]
    assert_bit_exact(ckpt.load(path, like=old), old)

    def no_rename(src, dst):
        raise OSError("power cut before rename (simulated)")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="power cut"):
        ckpt.save(path, {"w": np.ones(6), "b": np.ones(2)})
    with pytest.raises(OSError):
        ckpt.save(tmp_path / "ckpt-2.npz", old)
    assert os.listdir(tmp_path) == ["ckpt-1.npz"]
    assert_bit_exact(ckpt.load(path), old)


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    ckpt.save(tmp_path / "c.npz", {"w": np.ones(3)})
    assert events == ["fsync", "replace", "fsync"]  # file, rename, directory


def test_latest_and_naming(tmp_path):
    assert ckpt.latest(tmp_path) is None and ckpt.latest(tmp_path / "absent") is None
    for epoch in (2, 10, 9):
        ckpt.save(ckpt.checkpoint_path(tmp_path, epoch), {"epoch": np.array(epoch)})
    for stray in (".ckpt-11.npz.tmp-1-ab", "ckpt-x.npz", "ckpt-12.npz.bak", "notes.txt"):
        (tmp_path / stray).write_text("x")
    assert ckpt.latest(tmp_path) == str(tmp_path / "ckpt-10.npz")
    assert [e for e, _ in ckpt.list_checkpoints(tmp_path)] == [2, 9, 10]
    assert int(ckpt.load(ckpt.latest(tmp_path))["epoch"]) == 10
    with pytest.raises(ValueError, match="non-negative int"):
        ckpt.checkpoint_path(tmp_path, -1)


class Box:
    """A custom pytree node (not a container jaxnets knows by type)."""

    def __init__(self, a, b):
        self.a, self.b = a, b


jax.tree_util.register_pytree_node(Box, lambda box: ((box.a, box.b), None), lambda _, kids: Box(*kids))


def test_custom_pytree_node(tmp_path):
    tree = {"box": Box(np.ones(2), collections.OrderedDict(z=np.zeros(1), a=np.ones(1)))}
    ckpt.save(tmp_path / "c.npz", tree)
    out = ckpt.load(tmp_path / "c.npz", like=tree)
    assert isinstance(out["box"], Box) and list(out["box"].b) == ["z", "a"]
    assert_bit_exact(out, tree)
    plain = ckpt.load(tmp_path / "c.npz")
    assert isinstance(plain["box"], tuple) and plain["box"][0].tolist() == [1.0, 1.0]


_arrays = st.sampled_from(["float32", "float64", "int32", "uint8", "bool", "bfloat16", "float16"]).flatmap(
    lambda dt: st.lists(st.integers(0, 3), max_size=3).flatmap(
        lambda shape: st.integers(0, 2**31 - 1).map(
            lambda seed: np.random.default_rng(seed).normal(size=shape).astype(jnp.dtype(dt)))))
_trees = st.recursive(
    _arrays | st.none() | st.floats(allow_nan=False) | st.integers(-2**62, 2**62),
    lambda kids: st.lists(kids, max_size=3) | st.lists(kids, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=4), kids, max_size=3)
    | st.tuples(kids, kids).map(lambda p: Pair(*p)),
    max_leaves=8)


@settings(max_examples=25, deadline=None)
@given(tree=_trees)
def test_round_trip_property(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("prop") / "c.npz"
    ckpt.save(path, {"t": tree})
    assert_bit_exact(ckpt.load(path, like={"t": tree}), {"t": tree})


# ------------------------------------------------------------------------------ what save refuses to replace
def assert_refused(path, what):
    """save(path) raises CheckpointTargetError (an OSError) naming the path and `what` it is."""
    with pytest.raises(ckpt.CheckpointTargetError) as err:
        ckpt.save(path, {"w": np.ones(2)})
    assert isinstance(err.value, OSError) and err.value.filename == str(path)
    assert str(path) in str(err.value) and what in str(err.value), str(err.value)
    return err.value


def test_save_refuses_a_directory_at_the_path(tmp_path):
    target = tmp_path / "ckpt-1.npz"
    target.mkdir()
    err = assert_refused(target, "is a directory")
    assert err.errno == errno.EISDIR and "inside it" in str(err)
    assert target.is_dir() and os.listdir(target) == [] and os.listdir(tmp_path) == ["ckpt-1.npz"]
    with pytest.raises(ckpt.CheckpointTargetError, match="ends with a separator"):
        ckpt.save(str(tmp_path) + os.sep, {"w": np.ones(2)})


def test_save_refuses_symbolic_links_and_names_the_target(tmp_path):
    real = tmp_path / "real.npz"
    ckpt.save(real, {"w": np.zeros(2)})
    before = real.read_bytes()
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    err = assert_refused(link, "is a symbolic link")
    assert f"pass the target path {real}" in str(err)
    assert link.is_symlink() and real.read_bytes() == before
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "nowhere.npz")
    assert_refused(dangling, "dangling symbolic link")
    assert dangling.is_symlink() and not (tmp_path / "nowhere.npz").exists()
    assert sorted(os.listdir(tmp_path)) == ["dangling.npz", "link.npz", "real.npz"]
    ckpt.save(os.path.realpath(link), {"w": np.ones(2)})   # the explicit target path is a regular file: fine
    assert ckpt.load(link)["w"].tolist() == [1.0, 1.0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_save_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    assert_refused(fifo, "a FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe.npz"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_save_refuses_a_device_and_leaves_it_alone(monkeypatch):
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    real_replace = os.replace

    def guard(src, dst):  # should save ever regress, it must not swap the machine's /dev/null for a zip file
        if os.fspath(dst) == "/dev/null":
            raise AssertionError("save tried to replace /dev/null")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", guard)
    assert_refused("/dev/null", "a character device")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert not [name for name in os.listdir("/dev") if name.startswith(".null.tmp-")]


def test_a_failed_write_names_the_path_keeps_the_errno_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt-1.npz"
    real_write = np.lib.format.write_array

    def disk_full(fp, array, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", disk_full)
    with pytest.raises(OSError) as err:
        ckpt.save(path, {"w": np.ones(3)})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert str(path) in str(err.value) and "No space left on device" in str(err.value)
    assert err.value.strerror.startswith("No space left on device")
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(np.lib.format, "write_array", real_write)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere/.tmp-file")

    with monkeypatch.context() as patch, pytest.raises(PermissionError) as err:
        patch.setattr(os, "open", denied)
        ckpt.save(path, {"w": np.ones(3)})
    assert err.value.filename == str(path) and ".tmp-" not in str(err.value)


def test_a_parent_that_is_a_file_is_an_oserror_naming_the_path(tmp_path):
    blocker = tmp_path / "somefile"
    blocker.write_text("x")
    with pytest.raises(OSError) as err:
        ckpt.save(blocker / "ckpt-1.npz", {"w": np.ones(2)})
    assert str(blocker / "ckpt-1.npz") in str(err.value)
    assert blocker.read_text() == "x" and os.listdir(tmp_path) == ["somefile"]


# ------------------------------------------------------------------------------------------ nothing silent
def test_latest_of_a_file_names_the_path_instead_of_returning_none(tmp_path):
    path = ckpt.save(tmp_path / "ckpt-1.npz", {"w": np.ones(2)})
    with pytest.raises(NotADirectoryError, match=r"ckpt-1\.npz is a file, not a directory.*checkpoint\.load"):
        ckpt.latest(path)
    with pytest.raises(NotADirectoryError, match="is a file"):
        ckpt.list_checkpoints(path)
    with pytest.raises(ValueError, match="the path is empty"):
        ckpt.latest("")
    assert ckpt.latest(tmp_path) == path and ckpt.latest(tmp_path / "not-yet") is None   # the valid neighbours


def test_a_directory_named_like_a_checkpoint_is_an_error_naming_it(tmp_path):
    ckpt.save(tmp_path / "ckpt-1.npz", {"w": np.ones(2)})
    (tmp_path / "ckpt-3.npz").mkdir()
    with pytest.raises(ckpt.CheckpointError, match=r"ckpt-3\.npz is named like a checkpoint but is a directory"):
        ckpt.latest(tmp_path)
    with pytest.raises(IsADirectoryError, match=r"ckpt-3\.npz is a directory, not a checkpoint file"):
        ckpt.load(tmp_path / "ckpt-3.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ckpt.load(tmp_path / "ckpt-4.npz")


# ------------------------------------------------------------------------------ strings, History, FitResult
def test_a_fit_result_saves_and_loads_whole(tmp_path):
    import jaxnets
    from jaxnets import losses, models, optim
    from jaxnets.training import FitResult, History

    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    model = models.mlp([3, 4, 2])
    result = jaxnets.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1, momentum=0.9), (x, y), epochs=3,
                         batch_size=8, key=jax.random.key(0), val_data=(x[:8], y[:8]), progress=False)
    path = ckpt.save(tmp_path / "result.npz", result, metadata={"note": "run 1"})
    exact = ckpt.load(path, like=result)
    assert type(exact) is FitResult and isinstance(exact.history, History)
    assert exact.history == result.history and exact.history.rows[-1]["val_loss"] == result.history["val_loss"][-1]
    assert (exact.best_epoch, exact.stop_reason, exact.resumed_from) == (result.best_epoch, result.stop_reason, 0)
    _assert_same_leaves(jax.tree_util.tree_leaves(exact.train_state), jax.tree_util.tree_leaves(result.train_state))
    _assert_same_leaves(jax.tree_util.tree_leaves(exact.params), jax.tree_util.tree_leaves(result.params))
    loose = ckpt.load(path)                      # without `like`: a namedtuple with the same fields
    assert type(loose).__name__ == "FitResult" and loose._fields == FitResult._fields
    assert loose.history == result.history and loose.stop_reason == "completed"


def test_strings_and_histories_with_nan_round_trip(tmp_path):
    from jaxnets.training import History

    history = History([{"epoch": 1, "train_loss": float("nan")}, {"epoch": 2, "train_loss": 0.5}])
    tree = {"name": "résumé/1", "h": history, "empty": "", "w": np.arange(3.0)}
    back = ckpt.load(ckpt.save(tmp_path / "s.npz", tree))
    assert back["name"] == "résumé/1" and back["empty"] == ""
    assert np.isnan(back["h"].rows[0]["train_loss"]) and back["h"].rows[1] == {"epoch": 2, "train_loss": 0.5}
    with pytest.raises(CheckpointError, match="expected shape"):
        ckpt.load(tmp_path / "s.npz", like={**tree, "name": np.zeros(2)})


def _assert_same_leaves(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(np.asarray(x), np.asarray(y))


def test_a_model_in_the_tree_is_refused_with_the_fix(tmp_path):
    model = jaxnets.serial(jaxnets.Dense(2), jaxnets.Relu())
    with pytest.raises(TypeError, match=r"is a model \(Layer serial.*checkpoint.save_model"):
        ckpt.save(tmp_path / "m.npz", {"model": model, "params": {"w": np.zeros(2)}})
    assert not (tmp_path / "m.npz").exists()
