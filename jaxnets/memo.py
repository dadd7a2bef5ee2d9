"""Compiled programs memoised on *values*: equal configurations share one program, however they were built.

    @memoised(maxsize=32)
    def epoch_program(model, optimizer, config):      # builds and returns a jitted function
        ...
    epoch_program(Dense(16), optim.adam(1e-3), cfg)     # traces and compiles
    epoch_program(Dense(16), optim.adam(1e-3), cfg)     # fresh but equal objects: the same program, no compile

A Layer, an optimizer or a loss is a tuple of closures, so object identity (what `functools.lru_cache` and
`jax.jit` key on) changes every time one is rebuilt — `fit(..., "adam")` twice, or a model made again in a
notebook cell. `value_key(obj)` is a hashable description of what the object computes instead:

- numbers, strings, None and dtypes: their value (with their type, so 1, 1.0 and True differ); classes, modules
  and code objects: their identity;
- tuples (NamedTuples included) and frozen dataclasses: their type and the keys of their entries;
- a function: its code object and module (by identity), the keys of its defaults and of the values it closes over
  (so `adam(1e-3)` and `adam(1e-4)` differ, `adam(1e-3)` twice does not), and the identity of every global name
  its code reads (a global patched in a test gives another key); `functools.partial` and bound methods likewise;
- a JAX array of at most `ARRAY_LIMIT` elements: its shape, dtype and bytes (larger ones and tracers: identity);
- a pytree structure (`PyTreeDef`): its text and its (structural) hash;
- any other hashable object: itself (its own `__eq__`, usually identity);
- mutable containers (lists, dicts, sets, NumPy arrays) cannot be keyed: their content may change after the
  program was traced, so a call holding one is built afresh, not memoised (`Unkeyable`).

A memoised entry keeps the objects of the call that built it alive, so an identity inside a key is never reused
by another object. The key is computed on every call: a few milliseconds for the largest models in jaxnets.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import threading
import types
from typing import Any, Callable

import jax
import numpy as np

__all__ = ["value_key", "memoised", "Unkeyable", "ARRAY_LIMIT"]

ARRAY_LIMIT = 4096


class Unkeyable(TypeError):
    """An argument holds a value that cannot stand in a memo key (a list, dict, NumPy array, tracer …)."""


def value_key(obj: Any) -> bytes:
    """A key (a SHA-256 digest) equal for two objects that compute the same thing (see the module docstring).

    Sub-objects shared inside `obj` (a layer referenced by its parent's init, forward, backward and rebuild) are
    digested once, so the cost is linear in the number of distinct objects, not in the paths to them. An object
    keyed by identity enters the digest as its `id`: the memo entry keeps it alive, so no other object can
    take that id while the entry exists."""
    return _Digest().of(obj)


class _Digest:
    def __init__(self):
        self.done: dict = {}    # id -> digest, for the objects of this call (all alive until it returns)
        self.path: dict = {}    # id -> depth of the objects on the current path, to cut cycles

    def of(self, obj) -> bytes:
        marker = id(obj)
        if marker in self.done:
            return self.done[marker]
        if marker in self.path:  # a cycle (a function that refers to itself): how far up the path it points
            return _hash(b"cycle", (len(self.path) - self.path[marker]).to_bytes(8, "little"))
        self.path[marker] = len(self.path)
        try:
            digest = _hash(_type_name(obj), *self._parts(obj))
        finally:
            del self.path[marker]
        self.done[marker] = digest
        return digest

    def _parts(self, obj):
        if obj is None or isinstance(obj, (bool, int, str, type(Ellipsis))):
            return (repr(obj).encode(),)
        if isinstance(obj, float):
            return (obj.hex().encode(),)
        if isinstance(obj, (complex, bytes)):
            return (repr(obj).encode(),)
        if isinstance(obj, np.dtype):
            return (obj.str.encode(),)
        if isinstance(obj, np.generic):
            return (obj.dtype.str.encode(), obj.tobytes())
        if isinstance(obj, (type, types.ModuleType, types.BuiltinFunctionType, types.CodeType)):
            return (_id(obj),)
        if isinstance(obj, tuple):
            return tuple(self.of(item) for item in obj)
        if isinstance(obj, frozenset):
            return tuple(sorted(self.of(item) for item in obj))
        if isinstance(obj, types.FunctionType):
            return self._function(obj)
        if isinstance(obj, functools.partial):
            return (self.of(obj.func), self.of(obj.args), self._mapping(obj.keywords))
        if isinstance(obj, types.MethodType):
            return (self.of(obj.__func__), self.of(obj.__self__))
        if isinstance(obj, jax.core.Tracer):
            raise Unkeyable("a traced value cannot be part of a memo key")
        if isinstance(obj, jax.Array):
            if obj.size > ARRAY_LIMIT:
                return (_id(obj),)
            return (repr(obj.shape).encode(), str(obj.dtype).encode(), np.asarray(obj).tobytes())
        if isinstance(obj, jax.tree_util.PyTreeDef):   # a tree's structure: equal structures, equal keys
            return (str(obj).encode(), (hash(obj) & (2**64 - 1)).to_bytes(8, "little"))
        if dataclasses.is_dataclass(obj) and obj.__dataclass_params__.frozen:
            return tuple(self.of(getattr(obj, f.name)) for f in dataclasses.fields(obj))
        if isinstance(obj, (list, dict, set, bytearray, np.ndarray)):
            raise Unkeyable(f"a {type(obj).__name__} cannot be part of a memo key (its content may change)")
        try:
            hash(obj)
        except TypeError:
            raise Unkeyable(f"a {type(obj).__name__} is not hashable") from None
        return (_id(obj),)  # any other object: identity

    def _function(self, fn: types.FunctionType):
        cells = tuple(self._cell(cell) for cell in fn.__closure__ or ())
        module = fn.__globals__
        # what each global name read by the code is bound to now, by identity (a patched global changes it)
        reads = tuple(name.encode() + _global(module[name]) for name in _names(fn.__code__) if name in module)
        return (_id(fn.__code__), _id(module), _hash(b"cells", *cells), self.of(fn.__defaults__ or ()),
                self._mapping(fn.__kwdefaults__ or {}), _hash(b"reads", *reads))

    def _mapping(self, mapping: dict) -> bytes:
        return _hash(b"mapping", *(name.encode() + self.of(value) for name, value in sorted(mapping.items())))

    def _cell(self, cell) -> bytes:
        try:
            contents = cell.cell_contents
        except ValueError:  # a cell not yet filled
            return b"empty"
        return self.of(contents)


def _hash(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def _id(obj) -> bytes:
    return id(obj).to_bytes(8, "little")


def _type_name(obj) -> bytes:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}:{id(kind)}".encode()


def _global(value) -> bytes:
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value).encode()
    return _id(value)


@functools.lru_cache(maxsize=4096)
def _names(code: types.CodeType) -> tuple:
    """The names read by `code` and by the functions defined inside it (sorted, without repeats)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(_names(const))
    return tuple(sorted(names))


def memoised(maxsize: int = 32) -> Callable[[Callable], Callable]:
    """Decorator: `factory(*args)` memoised on `value_key(args)` (least recently used first out, `maxsize`
    entries). A call whose arguments cannot be keyed (`Unkeyable`) builds afresh without memoising.
    `factory.cache_info()` gives (hits, misses, size); `factory.cache_clear()` empties it."""

    def wrap(factory):
        entries: collections.OrderedDict = collections.OrderedDict()
        counts = {"hits": 0, "misses": 0}
        lock = threading.Lock()

        @functools.wraps(factory)
        def call(*args):
            try:
                key = value_key(args)
            except Unkeyable:
                return factory(*args)
            with lock:
                if key in entries:
                    entries.move_to_end(key)
                    counts["hits"] += 1
                    return entries[key][0]
            result = factory(*args)
            with lock:
                counts["misses"] += 1
                entries[key] = (result, args)  # args keep every identity inside the key alive
                while len(entries) > maxsize:
                    entries.popitem(last=False)
            return result

        call.cache_info = lambda: (counts["hits"], counts["misses"], len(entries))
        call.cache_clear = lambda: entries.clear()
        return call

    return wrap
