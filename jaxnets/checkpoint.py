"""Save and load pytrees (params, layer state, optimizer state, PRNG keys, a FitResult) without pickle, atomically.

    checkpoint.save("runs/ckpt-10.npz", {"params": params, "opt_state": opt_state}, metadata={"epoch": 10})
    tree = checkpoint.load("runs/ckpt-10.npz", like={"params": params, "opt_state": opt_state})
    checkpoint.save_model("runs/model.npz", model, params, state)      # a model from jaxnets.models, with its recipe
    model, params, state = checkpoint.load_model("runs/model.npz")     # also jaxnets.load_model (see saved_model)

Format: one `.npz` (zip of `.npy` files written and read with allow_pickle=False). Each array leaf is stored under
its key path, e.g. `params/0/w` (dict keys, indices, NamedTuple fields joined by "/"; "%" and "/" inside a key
escaped as %25 and %2F). The member `__jaxnets__` is UTF-8 JSON: the tree structure (dicts and keys, lists, tuples,
NamedTuples with type name and fields, None, other pytree nodes by type name), each leaf's kind, shape and dtype,
the jaxnets and jax versions, the user's `metadata`, and (save_model) the model's recipe. Leaves: numpy/JAX arrays,
Python scalars, typed PRNG keys (`jax.random.key_data` plus the implementation name), ml_dtypes (bfloat16,
float8, int4: stored as same-width unsigned integers), and, stored in the JSON, strings and `History` objects, so
`save(path, fit_result)` keeps the whole result (history, best epoch, stop reason, train state).

Loading is bit-exact: JAX arrays where JAX holds the dtype under `jax_enable_x64` (else, and where `like` has a
numpy leaf, numpy). With `like` the result has like's tree structure (FitResult, custom nodes); without, a
NamedTuple becomes a `collections.namedtuple` of the recorded fields and a custom node a tuple of its children.

Atomic write: a temporary file beside the target, fsync, `os.replace`, fsync of the directory; only a regular file
is replaced (else `CheckpointTargetError`; symbolic links are refused). A model (a `Layer`) is code: refused.
"""
from __future__ import annotations

import collections
import contextlib
import datetime
import errno
import functools
import json
import os
import re
import secrets
import stat
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import Layer

FORMAT = "jaxnets.checkpoint"
FORMAT_VERSION = 1
META_KEY = "__jaxnets__"
_PY_KINDS = {bool: "bool", int: "int", float: "float", complex: "complex"}
_JSON_KINDS = ("str", "history")   # leaves kept in the JSON header, not as arrays
_CKPT_RE = re.compile(r"^ckpt-(\d+)\.npz$")


class CheckpointError(ValueError):
    """A checkpoint is corrupt, not a jaxnets checkpoint, or does not match the expected tree."""


class CheckpointTargetError(OSError):
    """`save` refused to write: its path exists and is not a regular file. An OSError: `filename` is the path,
    `errno` EISDIR for a directory and EEXIST otherwise, `strerror` (and str()) the explanation with the fix."""

    def __str__(self) -> str:
        return str(self.strerror)


# ---------------------------------------------------------------------------------------------- structure
def _key_name(entry) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _join(path: tuple) -> str:
    return "/".join(str(p).replace("%", "%25").replace("/", "%2F") for p in path) or "%root"


def _show(path: tuple) -> str:
    return "/".join(str(p) for p in path) or "<root>"


def _walk(node, path: tuple, on_leaf) -> dict:
    """JSON description of `node`; `on_leaf(x, path)` describes (and possibly records) each leaf."""
    if node is None:
        return {"t": "none"}
    if isinstance(node, Layer):   # static to JAX: it would flatten to nothing and could not be loaded back
        raise TypeError(f"checkpoint: {_show(path)} is a model (Layer {node.name}): save its params and state, or "
                        "use checkpoint.save_model(path, model, params, state)")
    children, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if len(children) == 1 and children[0][0] == () and children[0][1] is node:
        return on_leaf(node, path)
    names = [_key_name(p[0]) for p, _ in children]
    kids = [_walk(child, path + (name,), on_leaf) for name, (_, child) in zip(names, children)]
    cls = type(node)
    if isinstance(node, dict):
        keys = [p[0].key for p, _ in children]
        for k in keys:
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint: dict key {k!r} at {_show(path)} must be a str or an int")
        return {"t": "dict", "keys": keys, "c": kids}
    if isinstance(node, tuple) and hasattr(cls, "_fields"):
        return {"t": "namedtuple", "name": cls.__qualname__, "module": cls.__module__,
                "fields": list(cls._fields), "c": kids}
    if cls in (list, tuple):
        return {"t": cls.__name__, "c": kids}
    return {"t": "custom", "name": cls.__qualname__, "module": cls.__module__, "keys": names, "c": kids}


def _spec(x) -> tuple[str, list, str]:
    """(kind, shape, dtype name) of a leaf or of a ShapeDtypeStruct."""
    if type(x) in _PY_KINDS:
        return _PY_KINDS[type(x)], [], np.asarray(x).dtype.name
    if isinstance(x, str):
        return "str", [], "str"
    if type(x).__name__ == "History" and type(x).__module__ == "jaxnets.training.history":
        return "history", [], "json"
    if isinstance(x, (np.ndarray, np.generic, jax.Array, jax.ShapeDtypeStruct)):
        is_key = jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        return ("key" if is_key else "array"), list(x.shape), str(x.dtype) if is_key else np.dtype(x.dtype).name
    raise TypeError(f"unsupported leaf of type {type(x).__name__}: expected an array or a Python scalar")


# ------------------------------------------------------------------------------------------------- save
def _version() -> str:
    import jaxnets  # already imported by the time save() runs; imported lazily to avoid a cycle

    return getattr(jaxnets, "__version__", "unknown")


def _encode(tree) -> tuple[dict, dict]:
    arrays = {}

    def on_leaf(x, path):
        try:
            kind, shape, dtype = _spec(x)
        except TypeError as err:
            raise TypeError(f"checkpoint: leaf {_show(path)}: {err}") from None
        if isinstance(x, jax.ShapeDtypeStruct):
            raise TypeError(f"checkpoint: leaf {_show(path)} is a ShapeDtypeStruct; save needs concrete values")
        record = {"t": "leaf", "key": _join(path), "kind": kind, "shape": shape, "dtype": dtype}
        if kind in _JSON_KINDS:
            return {**record, "value": x if kind == "str" else x.to_dict()}
        if kind == "key":
            record["impl"] = str(jax.random.key_impl(x))
            data = np.asarray(jax.random.key_data(x))
        else:
            data = np.asarray(x)
        if data.dtype.type.__module__ != "numpy":
            data = data.view(f"u{data.dtype.itemsize}")  # ml_dtypes (bfloat16, float8, int4) as raw bits
            record["stored"] = data.dtype.name
        if data.dtype.kind not in "biufc":
            raise TypeError(f"checkpoint: leaf {_show(path)} has dtype {data.dtype}; only numeric arrays are saved")
        if record["key"] == META_KEY or record["key"] in arrays:
            raise ValueError(f"checkpoint: two leaves map to the archive name {record['key']!r}; rename a key")
        arrays[record["key"]] = data
        return record

    return _walk(tree, (), on_leaf), arrays


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):  # not supported everywhere (e.g. Windows); the rename is done anyway
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save(path: str | os.PathLike, tree: Any, metadata: dict | None = None) -> str:
    """Write `tree` (and JSON-serialisable `metadata`) to the `.npz` file `path`, atomically; return the path.

    The parent directory is created if needed. Raises TypeError for an unsupported leaf (see the module
    docstring) and for metadata that is not a JSON-serialisable dict; CheckpointTargetError when `path` exists and
    is not a regular file; and, when writing fails, the OSError of the failure naming the checkpoint path.
    """
    return _save(path, tree, metadata, {})


def _save(path, tree, metadata, extra: dict) -> str:
    """`save`, with `extra` entries added to the JSON header (save_model's "model" record)."""
    path = os.fspath(path)
    if not path:
        raise ValueError("checkpoint.save(path): the path is empty; give a file name such as runs/ckpt-1.npz")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"checkpoint metadata must be a dict, got {type(metadata).__name__}")
    structure, arrays = _encode(tree)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "jaxnets_version": _version(),
              "jax_version": jax.__version__,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "tree": structure, "metadata": metadata or {}, **extra}
    try:
        text = json.dumps(header)
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable ({err}); convert numpy values with "
                        "float()/int()/.tolist()") from None
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _check_target(path)
    try:
        _write_atomically(path, arrays)
    except OSError as err:
        raise _write_error(err, path) from err
    return path


def _kind(mode: int) -> str:
    """What a non-regular file is, in words, from its lstat mode."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def _refuse(path: str, what: str, fix: str) -> CheckpointTargetError:
    code = errno.EISDIR if what == "a directory" else errno.EEXIST
    return CheckpointTargetError(code, f"checkpoint.save: {path} is {what}; {fix}", path)


def _check_target(path: str) -> None:
    """Raise CheckpointTargetError unless `path` is absent or a regular file (symbolic links are not followed)."""
    if not os.path.basename(path):
        raise _refuse(path, "a directory name (it ends with a separator)",
                      "give the file to write, e.g. " + os.path.join(path, "ckpt-1.npz"))
    if not os.path.lexists(path):
        return
    mode = os.lstat(path).st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):
        target = os.readlink(path)
        if not os.path.exists(path):
            raise _refuse(path, f"a dangling symbolic link (to {target}, which does not exist)",
                          "save does not write through symbolic links: remove the link, or pass the path the file "
                          "should have explicitly")
        raise _refuse(path, f"a symbolic link (to {target})", "save does not write through symbolic links (it would "
                      f"replace the link itself): pass the target path {os.path.realpath(path)} explicitly")
    what = _kind(mode)
    fix = ("give a file path inside it, e.g. " + os.path.join(path, "ckpt-1.npz") if what == "a directory"
           else "save only replaces regular files: choose a file path")
    raise _refuse(path, what, fix)


def _write_atomically(path: str, arrays: dict) -> None:
    """The .npz of `arrays` at `path` via a temporary file (removed on any failure), fsync and os.replace."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for name, data in arrays.items():
                    with archive.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, data, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _write_error(err: OSError, path: str) -> OSError:
    """`err` again, of the same type and errno, naming the checkpoint path instead of the temporary file."""
    reason = (f"{err.strerror or err} (checkpoint not saved: whatever was at that path is unchanged and no "
              "temporary file is left; free space, fix permissions or pass another path)")
    try:
        if err.errno is None:
            return type(err)(f"{reason}: {path!r}")
        return type(err)(err.errno, reason, path)
    except Exception:  # an OSError subclass with its own constructor
        return OSError(err.errno, reason, path)


# ------------------------------------------------------------------------------------------------- load
def _corrupt(path: str, why: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} is corrupt or not a jaxnets checkpoint ({why}); "
                           "load an earlier checkpoint instead")


def _read(path) -> tuple[dict, dict]:
    """(header, {archive name: array}) with every member read and checked against the header."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"checkpoint {path} is a directory, not a checkpoint file; pass a file inside it "
                                "(checkpoint.latest(directory) gives the newest ckpt-<epoch>.npz)")
    if os.path.lexists(path) and not os.path.isfile(path):
        what = _kind(os.stat(path).st_mode) if os.path.exists(path) else "a dangling symbolic link"
        raise CheckpointError(f"checkpoint {path} is {what}, not a checkpoint file; pass the path of a .npz checkpoint")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            header = json.loads(bytes(npz[META_KEY]).decode("utf-8"))
            arrays = {name: npz[name] for name in npz.files if name != META_KEY}
    except PermissionError:
        raise
    except Exception as err:  # any failure to parse the archive means the file is damaged
        raise _corrupt(path, f"{type(err).__name__}: {err}") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT or "tree" not in header:
        raise _corrupt(path, "missing jaxnets header")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {header['format_version']}, newer than this "
                              f"jaxnets ({FORMAT_VERSION}) understands; upgrade jaxnets")
    return header, arrays


def _leaf_value(record: dict, arrays: dict, path: str):
    if record["kind"] in _JSON_KINDS:
        from jaxnets.training.history import History

        return record["value"] if record["kind"] == "str" else History.from_dict(record["value"])
    data = arrays.get(record["key"])
    if data is None:
        raise _corrupt(path, f"leaf {record['key']} is missing")
    try:
        if record.get("stored"):
            data = data.view(jnp.dtype(record["dtype"]))
        value = jax.random.wrap_key_data(data, impl=record["impl"]) if record["kind"] == "key" else data
    except Exception as err:
        raise _corrupt(path, f"leaf {record['key']}: {err}") from err
    dtype = str(value.dtype) if record["kind"] == "key" else value.dtype.name
    if list(value.shape) != record["shape"] or dtype != record["dtype"]:
        raise _corrupt(path, f"leaf {record['key']} has shape {value.shape} {dtype}, header says "
                             f"{tuple(record['shape'])} {record['dtype']}")
    py_type = {kind: t for t, kind in _PY_KINDS.items()}.get(record["kind"])
    return py_type(value[()]) if py_type else value


def _as_jax(value, keep_numpy: bool = False):
    """A numpy leaf as a JAX array when JAX holds its dtype exactly under the current x64 setting."""
    if keep_numpy or not isinstance(value, np.ndarray):
        return value
    if jax.dtypes.canonicalize_dtype(value.dtype) != value.dtype:
        return value  # e.g. float64 with jax_enable_x64 off: stay exact as numpy
    return jnp.asarray(value)


@functools.lru_cache(maxsize=None)
def _namedtuple(name: str, fields: tuple):
    return collections.namedtuple(name.rsplit(".", 1)[-1], fields, rename=True)


def _rebuild(node: dict, leaf):
    t, kids = node["t"], [_rebuild(c, leaf) for c in node.get("c", ())]
    if t == "leaf":
        return leaf(node)
    if t == "none":
        return None
    if t == "dict":
        return dict(zip(node["keys"], kids))
    if t == "list":
        return kids
    if t == "namedtuple":
        return _namedtuple(node["name"], tuple(node["fields"]))(*kids)
    return tuple(kids)  # tuple, and custom pytree nodes (children only)


def _mismatch(path: str, where: tuple, expected: str, found: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} does not match `like` at {_show(where)}: expected {expected}, "
                           f"found {found}")


def _what(node: dict) -> str:
    """Short description of a structure node for error messages."""
    if node["t"] == "leaf":
        return f"shape {tuple(node['shape'])} dtype {node['dtype']}"
    if node["t"] in ("namedtuple", "custom"):
        return node["name"]
    return "None" if node["t"] == "none" else node["t"]


def _compare(exp: dict, got: dict, where: tuple, path: str, dtypes: bool = True) -> None:
    """Raise naming the first place where the checkpoint (`got`) differs from `like` (`exp`) (dtypes=False: leaf
    shapes only)."""
    if exp["t"] != got["t"] or exp.get("name") != got.get("name"):
        raise _mismatch(path, where, _what(exp), _what(got))
    if exp["t"] == "none":
        return
    if exp["t"] == "leaf":
        e, g = (tuple(exp["shape"]), exp["dtype"]), (tuple(got["shape"]), got["dtype"])
        if e[0] != g[0] or (dtypes and e != g):
            raise _mismatch(path, where, f"shape {e[0]} dtype {e[1]}", f"shape {g[0]} dtype {g[1]}")
        return
    field = {"dict": "keys", "custom": "keys", "namedtuple": "fields"}.get(exp["t"])
    ek, gk = [n[field] if field else list(range(len(n["c"]))) for n in (exp, got)]
    if ek != gk:
        missing, extra = [k for k in ek if k not in gk], [k for k in gk if k not in ek]
        if missing:
            child = exp["c"][ek.index(missing[0])]
            raise _mismatch(path, where + (missing[0],), _what(child), "no such entry in the checkpoint")
        if extra:
            child = got["c"][gk.index(extra[0])]
            raise _mismatch(path, where + (extra[0],), "no such entry (`like` lacks it)", _what(child))
        raise _mismatch(path, where, f"{exp['t']} entries in the order {ek}", f"the order {gk}")
    for k, e, g in zip(ek, exp["c"], got["c"]):
        _compare(e, g, where + (k,), path, dtypes)


def load(path: str | os.PathLike, like: Any = None) -> Any:
    """Read a checkpoint written by `save`.

    like: optional pytree of arrays or `jax.ShapeDtypeStruct` with the expected structure. Its structure
        (container types, dict keys, NamedTuple type names and fields), every leaf's shape and dtype are
        checked; the first difference raises CheckpointError naming the leaf path, expected vs found. The
        result then has like's exact tree structure.
    Raises FileNotFoundError for a missing file and CheckpointError for a corrupt or truncated one.
    """
    path = os.fspath(path)
    header, arrays = _read(path)
    if like is None:
        return _rebuild(header["tree"], lambda rec: _as_jax(_leaf_value(rec, arrays, path)))
    expected = _walk(like, (), lambda x, p: {"t": "leaf", **dict(zip(("kind", "shape", "dtype"), _spec(x)))})
    _compare(expected, header["tree"], (), path)
    leaves = []
    _rebuild(header["tree"], lambda rec: leaves.append(_leaf_value(rec, arrays, path)))
    like_leaves, treedef = jax.tree_util.tree_flatten(like)
    leaves = [_as_jax(v, isinstance(ref, (np.ndarray, np.generic))) for v, ref in zip(leaves, like_leaves)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def load_metadata(path: str | os.PathLike) -> dict:
    """The user `metadata` dict stored by `save` (reads and verifies the whole file)."""
    return _read(path)[0]["metadata"]


def describe(path: str | os.PathLike) -> dict:
    """The full JSON header: format, versions, creation time, tree structure with leaf shapes, metadata."""
    return _read(path)[0]


# ------------------------------------------------------------------------------------------ directories
def checkpoint_path(directory: str | os.PathLike, epoch: int) -> str:
    """`<directory>/ckpt-<epoch>.npz`, the name `latest` looks for."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
    return os.path.join(os.fspath(directory), f"ckpt-{int(epoch)}.npz")


def _checkpoint_dir(directory) -> str:
    """`directory` as a str; an error naming it when it is empty or exists as something other than a directory."""
    directory = os.fspath(directory)
    if not directory:
        raise ValueError("checkpoint directory: the path is empty; give the directory holding ckpt-<epoch>.npz files")
    if os.path.lexists(directory) and not os.path.isdir(directory):
        parent = os.path.dirname(directory) or "."
        raise NotADirectoryError(f"checkpoint directory {directory} is a file, not a directory; pass the directory "
                                 f"that holds the ckpt-<epoch>.npz files (here perhaps {parent}), or load a single "
                                 "file with checkpoint.load(path)")
    return directory


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, str]]:
    """[(epoch, path)] of the `ckpt-<epoch>.npz` files in `directory`, by increasing epoch ([] if none, or no
    directory yet). A path that is not a directory, and a non-file named like a checkpoint, are errors naming them."""
    directory = _checkpoint_dir(directory)
    if not os.path.isdir(directory):
        return []
    found = [(int(m.group(1)), os.path.join(directory, name))
             for name in os.listdir(directory) if (m := _CKPT_RE.match(name))]
    for _, path in found:
        if not os.path.isfile(path):
            what = _kind(os.stat(path).st_mode) if os.path.exists(path) else "a dangling symbolic link"
            raise CheckpointError(f"{path} is named like a checkpoint but is {what}, not a checkpoint file; remove "
                                  "or rename it so that it is not taken for (or hides) a checkpoint of the run")
    return sorted(found)


def latest(directory: str | os.PathLike) -> str | None:
    """Path of the highest-epoch `ckpt-<epoch>.npz` in `directory`, or None when there is none (temporary files are
    ignored). A `directory` that is a file raises NotADirectoryError."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


from jaxnets.saved_model import load_model, save_model  # noqa: E402  (uses save/load above)

__all__ = ["save", "load", "load_metadata", "describe", "save_model", "load_model", "checkpoint_path",
           "list_checkpoints", "latest", "CheckpointError", "CheckpointTargetError"]
