"""How an epoch runs: the mini-batch body, the scanned epoch, and the two drivers, one object each (the engine calls
`driver.train(...)` without knowing which).

    driver = drivers.make(build, loss, config, n=60000, lanes=None)     # memoised: equal configurations share it
    ts, metrics = driver.train(ts, hps, data.epoch(e), keys, active)      # the arrays, or epoch e's batches

`ScanDriver`: the whole epoch as one compiled `lax.scan` (`jaxnets.training.epoch.make_lane_epoch`), train state
donated. `StepDriver`: the same mini-batch body, jitted with the epoch's carry donated, called once per mini-batch
from Python — for arrays (rows gathered inside the program; a remainder batch is one more, smaller program) — and
for streamed batches (each checked inside the step): these are read STREAM_CHUNK at a time, and a chunk of one
shape is stacked, moved to the device in one transfer and trained as one `lax.scan` of the same body (a shorter
run, e.g. an odd-sized last batch, goes batch by batch), so a stream trains at nearly the speed of arrays. Both give the same params from the same key. Which one runs
is decided once, in `TrainConfig.loop` (`jaxnets.training.loops.resolve` chose it); a stream always steps.
With `lanes`, every program is vmapped over axis 0 of the train state, hyper-parameters, keys and activity.
"""
from __future__ import annotations

import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnets.memo import memoised
from jaxnets.training.config import Builder, TrainConfig
from jaxnets.training.epoch import Carry, EpochKeys, epoch_keys, epoch_layout, finish, metrics, start
from jaxnets.core import Ctx
from jaxnets.training.step import constrain, gradient, guarded_update
from jaxnets.training.progress import step_done
from jaxnets.training.streaming import ArrayData, prefetch

__all__ = ["ScanDriver", "StepDriver", "make", "make_body", "make_lane_epoch"]

_INDICES: list = []
STREAM_CHUNK = 16   # streamed batches of one shape trained as one scanned program (one transfer, one dispatch)


def _shapes(batch) -> tuple:
    return tuple((tuple(a.shape), str(a.dtype)) for a in batch)


def _indices(n: int) -> list:
    """Device int32 scalars 0 .. n−1, made once: passing a Python int to a jitted step would transfer one per call."""
    while len(_INDICES) < n:
        _INDICES.extend(jax.device_put(np.arange(len(_INDICES), max(n, 2 * len(_INDICES) + 16), dtype=np.int32)))
    return _INDICES


def gather(a, idx):
    return a.at[idx].get(mode="promise_in_bounds", unique_indices=True)


def make_body(build: Builder, loss, config: TrainConfig, *, size: int | None = None, check_data: bool = False,
              scanned: bool = False):
    """`body(carry, i, hp, data, keys, active) -> carry`: mini-batch i of an epoch (carry and i first, so that
    `lax.scan` can call a `functools.partial` of it directly).

    data: with `size` (static: B, or the remainder), the epoch's device arrays (x, y), of which the body gathers
    rows keys.order[i·B : i·B + size] inside the compiled program; without, the batch (xb, yb) itself. With
    `check_data` (streamed batches, which were not checked before training) the step also refuses a batch with
    labels out of range or NaN/Inf values; the first such batch is recorded and no later step is applied.
    `scanned`: the body of `lax.scan` over i (returns (carry, None), and reports progress when configured)."""
    tick = None
    if scanned and config.progress_every:
        from jaxnets.training.progress import scan_tick

        tick = scan_tick(config.progress_every)

    def body(carry: Carry, i, hp, data, keys: EpochKeys, active):
        xb, yb = data
        if size is not None:
            idx = lax.dynamic_slice_in_dim(keys.order, i * config.batch_size, size)
            xb, yb = gather(xb, idx), gather(yb, idx)
        if config.augment is not None:
            xb = config.augment(jax.random.fold_in(keys.aug_base, i), xb)
        running = active & ~carry.bad & (carry.first_bad_batch < 0)
        # the step (`jaxnets.training.step`): the gradient source called from here, then the guarded update
        spec, ts = build(hp), carry.ts
        xb, yb = constrain(xb, yb, config)
        result = gradient(spec, loss, config)(ts.params, (ts.state, None), xb, yb,
                                              Ctx(True, jax.random.fold_in(keys.step_base, i)))
        ts, m = guarded_update(spec, loss, config, ts, result, xb, yb, running, check_data)
        refused = running & ~m["data_ok"]
        diverged = running & m["data_ok"] & ~m["finite"]
        applied = running & m["finite"] & m["data_ok"]
        n = xb.shape[0]
        carry = Carry(ts, carry.bad | diverged, jnp.where(diverged, i, carry.first_bad),
                      jnp.where(refused, i, carry.first_bad_batch),
                      carry.loss_sum + jnp.where(applied, m["loss"] * n, 0.0),
                      carry.correct + jnp.where(applied, m["correct"], 0),
                      carry.count + jnp.where(applied, n, 0))
        if not scanned:
            return carry
        if tick is not None:
            tick(i)
        return carry, None

    return body


def make_lane_epoch(build: Builder, loss, config: TrainConfig):
    """The scanned epoch: `epoch(ts, hp, data, key, active) -> (ts, metrics)`, data an `ArrayData` (x, y) of device
    arrays; one lane (vmap it for several)."""
    full_body = make_body(build, loss, config, size=config.batch_size, scanned=True)

    def epoch(ts, hp, data: ArrayData, key, active):
        x, y = data
        n = x.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"epoch: x has {n} examples but y has {y.shape[0]}; pass matching arrays")
        full, rem = epoch_layout(n, config.batch_size, config.drop_last)
        if full == 0 and rem == 0:
            raise ValueError(f"epoch: batch_size {config.batch_size} with drop_last=True leaves no batch of the {n} "
                             "examples; use a smaller batch_size or drop_last=False")
        keys = epoch_keys(key, n, config.shuffle)
        carry = start(ts)
        if full:
            scanned = functools.partial(full_body, hp=hp, data=(x, y), keys=keys, active=active)
            carry, _ = lax.scan(scanned, carry, jnp.arange(full, dtype=jnp.int32))
        if rem:
            carry = make_body(build, loss, config, size=rem)(carry, jnp.int32(full), hp, (x, y), keys, active)
        return finish(carry)

    return epoch


class ScanDriver:
    """The epoch as one compiled `lax.scan` over (device) arrays: `train(ts, hps, data, keys, active) -> (ts,
    device metrics)` is the jitted epoch itself (progress is reported from inside the scan)."""

    def __init__(self, build: Builder, loss, config: TrainConfig, lanes: bool):
        one = make_lane_epoch(build, loss, config)
        fn = jax.vmap(one, in_axes=(0, 0, None, 0, 0)) if lanes else one
        self.train = jax.jit(fn, donate_argnums=(0,) if config.donate else ())


class StepDriver:
    """One jitted, donated mini-batch step at a time, called from Python: for arrays and for streamed batches."""

    def __init__(self, build: Builder, loss, config: TrainConfig, n: Optional[int], lanes: bool):
        self.config, self.lanes = config, lanes
        donate = (0,) if config.donate else ()
        full, rem = epoch_layout(n, config.batch_size, config.drop_last) if n is not None else (0, 0)
        self.layout = (full, rem)
        # body(carry, i, hp, data, keys, active): vmapped over carry, hp, keys and activity (data and i shared)
        axes = (0, None, 0, None, 0, 0)

        def program(body):
            return jax.jit(jax.vmap(body, in_axes=axes) if lanes else body, donate_argnums=donate)

        self._full = program(make_body(build, loss, config, size=config.batch_size)) if full else None
        self._remainder = program(make_body(build, loss, config, size=rem)) if rem else None
        streamed = make_body(build, loss, config, check_data=True)
        self._streamed = program(streamed)

        def chunk(carry, first, hp, data, keys, active):
            """STREAM_CHUNK streamed batches of one shape, stacked on a leading axis, as one `lax.scan`."""
            def one(c, batch):
                i, xb, yb = batch
                return streamed(c, i, hp, (xb, yb), keys, active), None

            steps = first + jnp.arange(data[0].shape[0], dtype=jnp.int32)
            return lax.scan(one, carry, (steps, data[0], data[1]))[0]

        self._chunk = program(chunk)
        shuffle = config.shuffle

        def keys_of(key, count):
            one = functools.partial(epoch_keys, n=count, shuffle=shuffle)
            return jax.vmap(one)(key) if lanes else one(key)

        self._keys = jax.jit(keys_of, static_argnums=1)
        self._metrics = jax.jit(metrics)
        self._sharding = None
        if config.mesh is not None:
            from jaxnets.parallel import replicated

            self._sharding = replicated(config.mesh)

    def train(self, ts, hps, data, keys, active):
        """(train state, device metrics) after one epoch of every lane: data is the `ArrayData`, or an iterable of
        the epoch's (xb, yb) batches; the running fit's progress reporter hears of each step."""
        carry = start(ts, ts.step.shape[0] if self.lanes else None)
        if isinstance(data, ArrayData):
            batches = self._keys(keys, data.n)
            full, rem = self.layout
            index = _indices(full + 1)
            arrays = (data.x, data.y)
            for i in range(full):
                carry = self._full(carry, index[i], hps, arrays, batches, active)
                step_done(i + 1)
            if rem:
                carry = self._remainder(carry, index[full], hps, arrays, batches, active)
        else:
            batches = self._keys(keys, None)
            chunk, first = _Chunk(), 0
            for i, batch in enumerate(data):
                if chunk.batches and _shapes(batch) != _shapes(chunk.batches[0]):
                    carry = self._stream(carry, chunk, first, hps, batches, active)
                    chunk, first = _Chunk(), i
                chunk.add(batch)
                if len(chunk.batches) == STREAM_CHUNK:
                    carry = self._stream(carry, chunk, first, hps, batches, active)
                    chunk, first = _Chunk(), i + 1
            if chunk.batches:
                carry = self._stream(carry, chunk, first, hps, batches, active)
        return carry.ts, self._metrics(carry._replace(ts=None))

    def _stream(self, carry, chunk: "_Chunk", first: int, hps, batches, active):
        """Train the streamed batches of `chunk` (indices first, first + 1, ...): a full chunk as one scanned program
        (moved to the device in one transfer), a shorter run batch by batch."""
        pending = chunk.batches
        if len(pending) == STREAM_CHUNK:
            data = jax.device_put(chunk.stacked(), self._sharding)
            carry = self._chunk(carry, _indices(first + 1)[first], hps, data, batches, active)
        else:
            for i, batch in prefetch(pending, self._sharding):
                carry = self._streamed(carry, _indices(first + i + 1)[first + i], hps, batch, batches, active)
        step_done(first + len(pending))
        return carry


class _Chunk:
    """Streamed batches of one shape gathered for one scanned program. NumPy batches are copied as they arrive into
    a fresh (STREAM_CHUNK, ...) buffer (so a stream that refills one array for every batch is read correctly, and
    the chunk costs one host copy); device arrays, which cannot change, are kept and stacked on the device."""

    def __init__(self):
        self.batches: list = []
        self._buffers = None

    def add(self, batch) -> None:
        if all(isinstance(a, np.ndarray) for a in batch):
            if self._buffers is None:
                self._buffers = tuple(np.empty((STREAM_CHUNK,) + a.shape, a.dtype) for a in batch)
            k = len(self.batches)
            for buffer, a in zip(self._buffers, batch):
                buffer[k] = a
            batch = tuple(buffer[k] for buffer in self._buffers)
        self.batches.append(batch)

    def stacked(self) -> tuple:
        if self._buffers is not None and all(getattr(b[0], "base", None) is self._buffers[0] for b in self.batches):
            return self._buffers
        return tuple(jnp.stack([b[j] for b in self.batches]) for j in range(2))


@memoised(maxsize=32)
def make(build: Builder, loss, config: TrainConfig, n: Optional[int], lanes: bool) -> Any:
    """The driver of this configuration: scan over arrays when `config.loop == "scan"`, else (and for streams,
    n=None) the step driver."""
    if config.loop == "scan" and n is not None:
        return ScanDriver(build, loss, config, lanes)
    return StepDriver(build, loss, config, n, lanes)
