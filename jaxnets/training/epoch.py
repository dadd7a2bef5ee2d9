"""What one pass over the training set is: its keys and batch layout (`EpochKeys`, `epoch_layout`), its running
`Carry` and metrics, and `make_epoch`, the scanned epoch as a pure function (how an epoch runs — the mini-batch
body and the two drivers — is `jaxnets.training.drivers`).

    epoch = make_epoch(model, loss, optimizer, batch_size=32)       # the scan driver, as a pure function
    ts, m = jax.jit(epoch, donate_argnums=0)(ts, x, y, jax.random.fold_in(key, e))

The batch plan of epoch key k: `shuffle_key, step_base, aug_base = jax.random.split(k, 3)`; the data order is
`jax.random.permutation(shuffle_key, N)` (or 0..N−1 without shuffling); step i takes the rows
order[i·B : (i+1)·B] (the last, N mod B rows, as one smaller step unless `drop_last`), its layer key (dropout
masks) is `fold_in(step_base, i)` and its augmentation key `fold_in(aug_base, i)`. Streamed batches use the same
step and augmentation keys, so the same batches in the same order train identically from arrays or a stream.

The mini-batch body (`drivers.make_body`) gathers the rows (inside the compiled program: no host slicing),
augments, runs the guarded step of `jaxnets.training.step`, and folds its metrics into the epoch's running
`Carry`. The scan driver runs the bodies of an epoch in one `lax.scan`; the step driver calls the same body,
jitted with the carry donated, once per mini-batch from Python. Same body, same keys: the two drivers give the
same params.
After the first non-finite step of an epoch no further update is applied (the carried state is the last good
one, see `jaxnets.training.step`).

metrics (scalars): "loss" mean data cost over the examples of the applied steps, weighted by batch size (a
running mean measured while the params change); "correct" and "count" examples classified right / seen in
applied steps; "accuracy" = correct / count; "finite" False if some step diverged; "first_bad_step" the 0-based
index of the first non-finite step, -1 if none; "first_bad_batch" the 0-based index of the first streamed batch
the step refused (labels out of range, NaN/Inf values), -1 if none.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.training.config import Builder, TrainConfig
from jaxnets.training.state import TrainState


class Carry(NamedTuple):
    """The running state of an epoch: the train state, whether a step diverged (and the first such), the first
    streamed batch whose values the step refused (-1: none), and the metric sums over the applied steps."""

    ts: TrainState
    bad: jax.Array
    first_bad: jax.Array
    first_bad_batch: jax.Array
    loss_sum: jax.Array
    correct: jax.Array
    count: jax.Array


def start(ts: TrainState, lanes: int | None = None) -> Carry:
    """The carry at the start of an epoch (scalars, or (lanes,) vectors for several lanes)."""
    shape = () if lanes is None else (lanes,)
    return Carry(ts, jnp.zeros(shape, bool), jnp.full(shape, -1, jnp.int32), jnp.full(shape, -1, jnp.int32),
                 jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.int32), jnp.zeros(shape, jnp.int32))


def metrics(carry: Carry) -> dict:
    """The epoch's metrics from its final carry (elementwise: works on lanes too)."""
    seen = jnp.maximum(carry.count, 1)
    return {"loss": jnp.where(carry.count > 0, carry.loss_sum / seen, jnp.nan), "correct": carry.correct,
            "count": carry.count, "accuracy": carry.correct / seen, "finite": ~carry.bad,
            "first_bad_step": carry.first_bad, "first_bad_batch": carry.first_bad_batch}


def finish(carry: Carry):
    """(train state, metrics) at the end of an epoch."""
    return carry.ts, metrics(carry)


def epoch_layout(n: int, batch_size: int, drop_last: bool = False) -> tuple[int, int]:
    """(number of full batches, size of the remainder batch that is trained on, 0 if none)."""
    full, rem = divmod(n, batch_size)
    return full, (0 if drop_last else rem)


class EpochKeys(NamedTuple):
    """What an epoch's key decides (one record, so a swapped key cannot pass silently): `order` the data order (N,)
    (None for streamed batches), `step_base` and `aug_base` the bases of the per-step layer and augmentation keys."""

    order: Any
    step_base: jax.Array
    aug_base: jax.Array


def epoch_keys(key, n: int | None, shuffle: bool = True) -> EpochKeys:
    """The `EpochKeys` of an epoch key for N = n rows (None: streamed batches, no order)."""
    shuffle_key, step_base, aug_base = jax.random.split(key, 3)
    if n is None:
        return EpochKeys(None, step_base, aug_base)
    return EpochKeys(jax.random.permutation(shuffle_key, n) if shuffle else jnp.arange(n), step_base, aug_base)


def make_epoch(model, loss, optimizer, *, batch_size: int, gradients: str = "manual", penalty=None,
               drop_last: bool = False, augment=None, mesh=None, shuffle: bool = True, compute_dtype=None):
    """A pure epoch `epoch(ts, x, y, key) -> (ts, metrics)`: the scan driver for one model (see the module
    docstring). x: (N, ...) inputs and y: (N,) int labels or (N, k) targets, device arrays (N and the shapes are
    static). Not jitted and without host syncs: jit it (donating `ts`), vmap it, or call it from another traced
    function; building `optimizer` from traced hyper-parameters inside a vmapped function works. The arguments
    are checked as `fit` checks them."""
    from jaxnets.training.step import checked_parts
    from jaxnets.training.validate import check_callable, positive_int

    model, loss, optimizer, penalty, policy, mesh = checked_parts("make_epoch", model, loss, optimizer, gradients,
                                                                  penalty, compute_dtype, mesh)
    batch_size = positive_int(batch_size, "make_epoch: batch_size")
    check_callable(augment, "augment", "fn(key, xb) -> xb")
    for flag, name in ((drop_last, "drop_last"), (shuffle, "shuffle")):
        if not isinstance(flag, bool):
            raise TypeError(f"make_epoch: {name} must be True or False, got {flag!r}")
    config = TrainConfig(batch_size=batch_size, gradients=gradients, drop_last=drop_last, shuffle=shuffle,
                         augment=augment, mesh=mesh, policy=policy)
    from jaxnets.training.drivers import make_lane_epoch
    from jaxnets.training.streaming import ArrayData

    epoch = make_lane_epoch(Builder(model, optimizer, penalty), loss, config)
    return lambda ts, x, y, key: epoch(ts, {}, ArrayData(x, y), key, jnp.bool_(True))
