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
in range for the model); later ones for their structure and shapes only (a NaN in one stops training as a
diverged step, named by epoch and step).
"""
from __future__ import annotations

import inspect
import itertools
from typing import Any, Iterator, NamedTuple

import jax
import numpy as np


class ArrayData(NamedTuple):
    x: Any
    y: Any

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


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
            self.first = check_batch(next(pending), 0)
        except StopIteration:
            raise ValueError("train_data: the stream yielded no batch; pass at least one (xb, yb) batch") from None
        self._pending = (1, itertools.chain([self.first], pending))   # epoch 1 starts with the peeked batch

    def _open(self, epoch: int):
        if self._iterator is not None:
            return self._iterator
        return iter(self._factory(epoch) if self._by_epoch else self._factory())

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
            yield batch if count == 0 and batch is self.first else check_batch(batch, count)
            count += 1
            self._read += 1
        short = self.one_pass and count < self.steps_per_epoch
        if count == 0 or short:
            self.exhausted = (f"train_data ran out in epoch {number} ({count} of {self.steps_per_epoch or 'its'} "
                              f"batches, {self._read} in all): training stopped there, keeping what it trained; pass "
                              "a function returning each epoch's batches (e.g. lambda epoch: my_batches(epoch)), a "
                              "longer iterator, or fewer epochs or steps_per_epoch")


def check_batch(batch, i: int):
    """(xb, yb) with a common leading length, float inputs."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(_is_array(a) for a in batch)):
        raise TypeError(f"train_data: batch {i} is {type(batch).__name__}, not an (xb, yb) pair of arrays")
    xb, yb = batch
    if xb.ndim < 2 or yb.ndim < 1 or xb.shape[0] != yb.shape[0] or xb.shape[0] == 0:
        raise ValueError(f"train_data: batch {i} has xb of shape {tuple(xb.shape)} and yb of shape "
                         f"{tuple(yb.shape)}; each batch needs a common, non-zero leading length (batch, ...)")
    if not np.issubdtype(np.dtype(xb.dtype), np.floating):
        raise TypeError(f"train_data: batch {i} has inputs of dtype {xb.dtype}; use floating-point inputs")
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
