"""One pass over the training set: the batch plan, the per-batch body, and the two drivers built on them.

    epoch = make_epoch(model, loss, optimizer, batch_size=32)       # the scan driver, as a pure function
    ts, m = jax.jit(epoch, donate_argnums=0)(ts, x, y, jax.random.fold_in(key, e))

The batch plan of epoch key k: `shuffle_key, step_base, aug_base = jax.random.split(k, 3)`; the data order is
`jax.random.permutation(shuffle_key, N)` (or 0..N−1 without shuffling); step i takes the rows
order[i·B : (i+1)·B] (the last, N mod B rows, as one smaller step unless `drop_last`), its layer key (dropout
masks) is `fold_in(step_base, i)` and its augmentation key `fold_in(aug_base, i)`. Streamed batches use the same
step and augmentation keys, so the same batches in the same order train identically from arrays or a stream.

`body` is one mini-batch: gather the rows (inside the compiled program: no host slicing), augment, run the
guarded step of `jaxnets.training.step`, and fold its metrics into the epoch's running `Carry`. The scan driver
runs the bodies of an epoch in one `lax.scan`; the step driver (`StepPrograms`) calls the same body, jitted with
the carry donated, once per mini-batch from Python. Same body, same keys: the two drivers give the same params.
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
from jax import lax

from jaxnets.training.config import Builder, TrainConfig
from jaxnets.training.state import TrainState
from jaxnets.training.step import train_step


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


def plan(key, n: int, shuffle: bool):
    """(order, step_base, aug_base) of an epoch key: the data order (N,) and the bases of the per-step keys."""
    shuffle_key, step_base, aug_base = jax.random.split(key, 3)
    order = jax.random.permutation(shuffle_key, n) if shuffle else jnp.arange(n)
    return order, step_base, aug_base


def make_body(build: Builder, loss, config: TrainConfig, check_data: bool = False):
    """`body(carry, hp, xb, yb, i, step_base, aug_base, active) -> carry`: mini-batch i of an epoch. With
    `check_data` (streamed batches, which were not checked before training) the step also refuses a batch with
    labels out of range or NaN/Inf values; the first such batch is recorded and no later step is applied."""
    step = train_step(build, loss, config, check_data)

    def body(carry: Carry, hp, xb, yb, i, step_base, aug_base, active):
        if config.augment is not None:
            xb = config.augment(jax.random.fold_in(aug_base, i), xb)
        running = active & ~carry.bad & (carry.first_bad_batch < 0)
        ts, m = step(carry.ts, hp, xb, yb, jax.random.fold_in(step_base, i), running)
        refused = running & ~m["data_ok"]
        diverged = running & m["data_ok"] & ~m["finite"]
        applied = running & m["finite"] & m["data_ok"]
        size = xb.shape[0]
        return Carry(ts, carry.bad | diverged, jnp.where(diverged, i, carry.first_bad),
                     jnp.where(refused, i, carry.first_bad_batch),
                     carry.loss_sum + jnp.where(applied, m["loss"] * size, 0.0),
                     carry.correct + jnp.where(applied, m["correct"], 0),
                     carry.count + jnp.where(applied, size, 0))

    return body


def gather(a, idx):
    return a.at[idx].get(mode="promise_in_bounds", unique_indices=True)


def array_body(build: Builder, loss, config: TrainConfig):
    """`body(carry, hp, x, y, order, i, step_base, aug_base, active, size)`: the body on rows order[i·B : i·B + size]
    of device arrays x, y (size static: B, or the remainder)."""
    body = make_body(build, loss, config)

    def run(carry, hp, x, y, order, i, step_base, aug_base, active, size):
        idx = lax.dynamic_slice_in_dim(order, i * config.batch_size, size)
        return body(carry, hp, gather(x, idx), gather(y, idx), i, step_base, aug_base, active)

    return run


def make_lane_epoch(build: Builder, loss, config: TrainConfig):
    """The scan driver: `epoch(ts, hp, x, y, key, active) -> (ts, metrics)`, one lane (vmap it for several)."""
    run = array_body(build, loss, config)
    progress = None
    if config.progress_every:
        from jaxnets.training.progress import scan_tick

        progress = scan_tick(config.progress_every)

    def epoch(ts, hp, x, y, key, active):
        n = x.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"epoch: x has {n} examples but y has {y.shape[0]}; pass matching arrays")
        full, rem = epoch_layout(n, config.batch_size, config.drop_last)
        if full == 0 and rem == 0:
            raise ValueError(f"epoch: batch_size {config.batch_size} with drop_last=True leaves no batch of the {n} "
                             "examples; use a smaller batch_size or drop_last=False")
        order, step_base, aug_base = plan(key, n, config.shuffle)
        carry = start(ts)
        if full:
            def scan_body(carry, i):
                carry = run(carry, hp, x, y, order, i, step_base, aug_base, active, config.batch_size)
                if progress is not None:
                    progress(i)
                return carry, None

            carry, _ = lax.scan(scan_body, carry, jnp.arange(full, dtype=jnp.int32))
        if rem:
            carry = run(carry, hp, x, y, order, jnp.int32(full), step_base, aug_base, active, rem)
        return finish(carry)

    return epoch


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
    epoch = make_lane_epoch(Builder(model, optimizer, penalty), loss, config)
    return lambda ts, x, y, key: epoch(ts, {}, x, y, key, jnp.bool_(True))


class StepPrograms(NamedTuple):
    """The step driver's compiled pieces for one configuration (vmapped over lanes when there are several):
    plan(key) -> (order, step_base, aug_base); full(carry, hp, x, y, order, i, step_base, aug_base, active) for a
    full batch (i traced); remainder(...) for the last, smaller batch (None when there is none); streamed(carry,
    hp, xb, yb, i, step_base, aug_base, active) for a batch given as arrays (its values checked in the step);
    metrics(carry without its train state)."""

    plan: Any
    full: Any
    remainder: Any
    streamed: Any
    metrics: Any


def step_programs(build: Builder, loss, config: TrainConfig, n: int | None, lanes: bool) -> StepPrograms:
    """Jitted step-driver programs for N = n training rows (None: streamed batches only); the carry is donated
    (unless config.donate is False), so each step updates the train state in place."""
    run = array_body(build, loss, config)
    body = make_body(build, loss, config, check_data=True)
    donate = (0,) if config.donate else ()
    rem = epoch_layout(n, config.batch_size, config.drop_last)[1] if n is not None else 0

    def full(carry, hp, x, y, order, i, step_base, aug_base, active):
        return run(carry, hp, x, y, order, i, step_base, aug_base, active, config.batch_size)

    def remainder(carry, hp, x, y, order, i, step_base, aug_base, active):
        return run(carry, hp, x, y, order, i, step_base, aug_base, active, rem)

    def make_plan(key):
        return plan(key, n, config.shuffle)

    def carry_metrics(carry):
        return metrics(carry)

    if lanes:
        lane = (0, 0, None, None, 0, None, 0, 0, 0)
        full, remainder = jax.vmap(full, in_axes=lane), jax.vmap(remainder, in_axes=lane)
        body = jax.vmap(body, in_axes=(0, 0, None, None, None, 0, 0, 0))
        make_plan = jax.vmap(make_plan)
    return StepPrograms(plan=jax.jit(make_plan) if n is not None else None,
                        full=jax.jit(full, donate_argnums=donate) if n is not None and config.batch_size else None,
                        remainder=jax.jit(remainder, donate_argnums=donate) if rem else None,
                        streamed=jax.jit(body, donate_argnums=donate), metrics=jax.jit(carry_metrics))
