"""One pass over the training set as one pure, compilable function.

    epoch = make_epoch(model, loss, optimizer, batch_size=32)
    run = jax.jit(epoch, donate_argnums=0)
    ts, m = run(ts, x, y, jax.random.fold_in(key, e))        # epoch e

    ts, m = jax.vmap(epoch, in_axes=(0, None, None, 0))(stacked_ts, x, y, keys)   # an ensemble

Inside: with S steps in the epoch, `keys = jax.random.split(key, S + 1)` (2S + 1 with `augment`): keys[0]
shuffles (`jax.random.permutation` of the N examples), keys[1 + i] is step i's layer key (`Ctx(train=True,
key=...)`, e.g. dropout masks), keys[1 + S + i] its augmentation key. A `lax.scan` runs the N // B full
mini-batches, each gathered from `x`, `y` through its slice of the permutation (no shuffled copy of the data
is made: on CPU that measured as fast or faster); when N % B > 0 and not `drop_last`, one more step runs on
the remainder batch of static size N % B (its cost mean and gradient carry the true 1/(N % B)).
`augment(key, xb) -> xb` must keep the batch shape.

Divergence: from the first step whose cost or gradient is non-finite on, no update is applied (see
`jaxnets.training.step`), so the returned state holds the last good values.

metrics (all scalars): "loss" mean data cost over the examples of the applied steps, weighted by batch size
(a running mean measured while the params change during the epoch); "correct" and "count" examples classified
right / seen in applied steps; "accuracy" = correct / count; "finite" False if some step diverged;
"first_bad_step" index (0-based, within the epoch) of the first non-finite step, -1 if none. The number of
steps is static: `full + (rem > 0)` with `full, rem = epoch_layout(N, B, drop_last)`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer
from jaxnets.training.state import TrainState
from jaxnets.training.step import guarded_step


def epoch_layout(n: int, batch_size: int, drop_last: bool = False) -> tuple[int, int]:
    """(number of full batches, size of the remainder batch that is trained on, 0 if none)."""
    full, rem = divmod(n, batch_size)
    return full, (0 if drop_last else rem)


def make_epoch(model: Layer, loss, optimizer, *, batch_size: int, gradients: str = "manual", penalty=None,
               drop_last: bool = False, augment=None, mesh=None, shuffle: bool = True):
    """A pure epoch `epoch(ts, x, y, key) -> (ts, metrics)` (see the module docstring).

    x: (N, ...) inputs and y: (N,) int labels or (N, k) targets, device arrays (N and the shapes are static;
    a new N compiles a new program). batch_size: B ≥ 1. drop_last: skip the N % B remainder instead of one
    extra step on it. augment: optional `fn(key, xb) -> xb`. shuffle=False keeps the data order (for tests
    and hand-checks). Not jitted and without host syncs: jit it (donating `ts`), vmap it, or call it from
    another traced function; building `optimizer` from traced hyper-parameters inside a vmapped function works.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"make_epoch: batch_size must be a positive int, got {batch_size!r}")
    step = guarded_step(model, loss, optimizer, gradients=gradients, penalty=penalty, mesh=mesh)

    def epoch(ts: TrainState, x, y, key):
        n = x.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"epoch: x has {n} examples but y has {y.shape[0]}; pass matching arrays")
        full, rem = epoch_layout(n, batch_size, drop_last)
        if full == 0 and rem == 0:
            raise ValueError(
                f"epoch: batch_size {batch_size} with drop_last=True leaves no batch of the {n} examples; "
                "use a smaller batch_size or drop_last=False"
            )
        steps = full + (1 if rem else 0)
        keys = jax.random.split(key, (1 if augment is None else 2) * steps + 1)  # shuffle, step keys, augment keys
        order = jax.random.permutation(keys[0], n) if shuffle else jnp.arange(n)
        step_keys = keys[1:steps + 1]
        aug_keys = step_keys if augment is None else keys[steps + 1:]  # (unused without augment)

        def run(carry, idx, i, step_key, aug_key):
            ts, bad, first_bad, loss_sum, correct, count = carry
            xb = x.at[idx].get(mode="promise_in_bounds", unique_indices=True)
            yb = y.at[idx].get(mode="promise_in_bounds", unique_indices=True)
            if augment is not None:
                xb = augment(aug_key, xb)
            ts, m = step(ts, xb, yb, step_key, ~bad)
            applied = m["finite"] & ~bad
            first_bad = jnp.where(~m["finite"] & ~bad, i, first_bad)
            size = xb.shape[0]
            loss_sum = loss_sum + jnp.where(applied, m["loss"] * size, 0.0)
            correct = correct + jnp.where(applied, m["correct"], 0)
            count = count + jnp.where(applied, size, 0)
            return (ts, bad | ~m["finite"], first_bad, loss_sum, correct, count)

        carry = (ts, jnp.bool_(False), jnp.int32(-1), jnp.float32(0.0), jnp.int32(0), jnp.int32(0))
        if full:
            def body(carry, inputs):
                i, step_key, aug_key = inputs
                idx = lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
                return run(carry, idx, i, step_key, aug_key), None

            carry, _ = lax.scan(body, carry, (jnp.arange(full, dtype=jnp.int32), step_keys[:full], aug_keys[:full]))
        if rem:
            carry = run(carry, order[full * batch_size:], jnp.int32(full), step_keys[full], aug_keys[full])
        ts, bad, first_bad, loss_sum, correct, count = carry
        seen = jnp.maximum(count, 1)
        metrics = {
            "loss": jnp.where(count > 0, loss_sum / seen, jnp.nan),
            "correct": correct,
            "count": count,
            "accuracy": correct / seen,
            "finite": ~bad,
            "first_bad_step": first_bad,
        }
        return ts, metrics

    return epoch
