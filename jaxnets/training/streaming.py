"""Training data as arrays or as a stream of batches.

`fit(train_data=...)` takes either `(x, y)` arrays (placed on the device once, shuffled there every epoch) or a
stream of `(xb, yb)` mini-batches, for data larger than device memory:

- a function returning an iterable, called once per epoch: `lambda: batches_from_memmap(...)`, or with the
  1-based epoch number when it takes an argument (`lambda epoch: shuffled_batches(seed=epoch)`), so that a
  resumed run sees the same batches as an uninterrupted one;
- an iterable that can be iterated again each epoch: a list of batches, a grain `DataLoader`;
- an iterator (a generator object): one pass, read on across epochs; give `steps_per_epoch`.

`steps_per_epoch` ends an epoch after that many batches (needed for an endless iterator); without it an epoch
ends when the iterable does, and an epoch without a single batch is an error. Batches are used in the order given
(shuffling is the stream's job) and each one is moved to the device one step ahead of its use (`prefetch`), so
the transfer overlaps the previous step. The first batch is checked like arrays (shapes, finite values, labels
in range for the model); every later one for its structure, shapes and dtypes as it arrives, and for its values
(labels in range, no NaN/Inf) inside the compiled step. A bad batch stops training with an error that names its
epoch and batch and carries the result of the finished epochs (`err.result`).
"""
from __future__ import annotations

import inspect
import itertools
from typing import Any, Iterator, NamedTuple

import jax
import numpy as np


class ArrayData(NamedTuple):
    """(x, y) training arrays on the device: every epoch is one pass over them (`epoch(e)` is the data itself, as
    `Stream.epoch(e)` is the batches of epoch e)."""

    x: Any
    y: Any

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def epoch(self, number: int = 1) -> "ArrayData":
        return self


def _is_array(a) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype")


def looks_like_arrays(data) -> bool:
    """(x, y) arrays, as opposed to a stream of (xb, yb) batches."""
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(_is_array(a) for a in data)


def _takes_epoch(fn) -> bool:
    """Whether a batch factory accepts an argument (then it is called with the 1-based epoch number)."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return False
    return bool(params)


class Stream:
    """A stream of (xb, yb) batches (see the module docstring). `first` is the first batch (peeked, for the
    checks made before training); `epoch(e)` yields the batches of epoch e (1-based); `one_pass` is True for an
    iterator, which cannot be read again (so a run on it cannot be resumed)."""

    def __init__(self, source, steps_per_epoch: int | None):
        if _is_array(source):
            raise TypeError("train_data must be an (x, y) tuple of arrays (or a stream of (xb, yb) batches), got a "
                            "single array; pass train_data=(x, y)")
        self._iterator = self._factory = None
        self._by_epoch = False
        if callable(source) and not hasattr(source, "__iter__"):
            self._factory, self._by_epoch = source, _takes_epoch(source)
        elif hasattr(source, "__next__"):
            if steps_per_epoch is None:
                raise ValueError("train_data is an iterator (e.g. a generator object), which can be read only once: "
                                 "pass steps_per_epoch=... to cut it into epochs, or pass a function that returns a "
                                 "fresh iterable each epoch (e.g. lambda: my_batches())")
            self._iterator = source
        elif hasattr(source, "__iter__"):
            self._factory = lambda: source
        else:
            raise TypeError(f"train_data must be (x, y) arrays or a stream of (xb, yb) batches (an iterable, an "
                            f"iterator, or a function returning an iterable), got {type(source).__name__}")
        self.steps_per_epoch, self.one_pass, self._read = steps_per_epoch, self._iterator is not None, 0
        self.exhausted = None
        pending = self._open(1)
        try:
            self.first = check_batch(next(pending), 1, 1)
        except StopIteration:
            raise ValueError("train_data: the stream yielded no batch; pass at least one (xb, yb) batch") from None
        self._pending = (1, itertools.chain([self.first], pending))   # epoch 1 starts with the peeked batch

    def _open(self, epoch: int):
        if self._iterator is not None:
            return self._iterator
        batches = self._factory(epoch) if self._by_epoch else self._factory()
        if batches is None or not hasattr(batches, "__iter__"):
            name = getattr(self._factory, "__name__", "the batch function")
            raise TypeError(f"train_data: {name}() returned {type(batches).__name__} for epoch {epoch}, not an "
                            "iterable of (xb, yb) batches; return (or yield) the epoch's batches (a missing return?)")
        return iter(batches)

    def epoch(self, number: int = 1) -> Iterator:
        """The batches of epoch `number`, checked. When the stream runs out — an epoch without a single batch, or a
        one-pass iterator ending before `steps_per_epoch` — `exhausted` is set (with a message) and the engine ends
        training after this epoch, keeping everything trained so far."""
        pending, self._pending = self._pending, None
        if pending is not None and (pending[0] == number or not self._by_epoch):
            source = pending[1]
        else:
            source = self._open(number)
        if self.steps_per_epoch is not None:
            source = itertools.islice(source, self.steps_per_epoch)
        count = 0
        for batch in source:
            yield batch if count == 0 and batch is self.first else check_batch(batch, number, count + 1, self.first)
            count += 1
            self._read += 1
        short = self.one_pass and count < self.steps_per_epoch
        if count == 0 or short:
            self.exhausted = (f"train_data ran out in epoch {number} ({count} of {self.steps_per_epoch or 'its'} "
                              f"batches, {self._read} in all): training stopped there, keeping what it trained; pass "
                              "a function returning each epoch's batches (e.g. lambda epoch: my_batches(epoch)), a "
                              "longer iterator, or fewer epochs or steps_per_epoch")


def check_batch(batch, epoch: int, i: int, first=None):
    """(xb, yb) with a common leading length and float inputs; after the first batch (`first`), the same per-example
    shapes and dtypes as it. `epoch` and `i` (1-based) name the batch in the error. Values (NaN, labels out of
    range) are checked inside the compiled step, where it costs nothing measurable."""
    where = f"train_data: epoch {epoch}, batch {i}"
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(_is_array(a) for a in batch)):
        raise TypeError(f"{where} is {type(batch).__name__}, not an (xb, yb) pair of arrays; a stream yields "
                        "(xb, yb) pairs (zip two separate iterables of inputs and targets)")
    xb, yb = batch
    if xb.ndim < 2 or yb.ndim < 1 or xb.shape[0] != yb.shape[0] or xb.shape[0] == 0:
        raise ValueError(f"{where} has xb of shape {tuple(xb.shape)} and yb of shape {tuple(yb.shape)}; each batch "
                         "needs a common, non-zero leading length (batch, ...)")
    if not np.issubdtype(np.dtype(xb.dtype), np.floating):
        raise TypeError(f"{where} has inputs of dtype {xb.dtype}; use floating-point inputs, e.g. xb.astype('float32')")
    if first is not None:
        x0, y0 = first
        if xb.shape[1:] != x0.shape[1:] or yb.shape[1:] != y0.shape[1:]:
            raise ValueError(f"{where} has per-example shapes {tuple(xb.shape[1:])} (inputs) and {tuple(yb.shape[1:])} "
                             f"(targets), but the first batch had {tuple(x0.shape[1:])} and {tuple(y0.shape[1:])}; "
                             "every batch needs the same per-example shapes (only the batch size may vary)")
        if np.dtype(xb.dtype) != np.dtype(x0.dtype) or \
                np.issubdtype(np.dtype(yb.dtype), np.integer) != np.issubdtype(np.dtype(y0.dtype), np.integer):
            raise TypeError(f"{where} has dtypes {xb.dtype} (inputs) and {yb.dtype} (targets), but the first batch had "
                            f"{x0.dtype} and {y0.dtype}; give every batch the same dtypes")
    return xb, yb


def prefetch(batches, sharding=None):
    """Each (xb, yb) put on the device one step ahead: yields (index, device batch)."""
    it = iter(batches)
    try:
        ahead = jax.device_put(next(it), sharding)
    except StopIteration:
        return
    for i in itertools.count():
        try:
            following = next(it)
        except StopIteration:
            yield i, ahead
            return
        current, ahead = ahead, jax.device_put(following, sharding)
        yield i, current
