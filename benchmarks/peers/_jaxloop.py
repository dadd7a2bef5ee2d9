"""The epoch driver shared by the JAX-based peers: shuffle on the device, then one jitted call per mini-batch.

Each epoch draws a permutation and gathers the shuffled (xs, ys) once on the device; the full batches are cut
out *inside* the jitted step with `lax.dynamic_slice` from the batch index (slicing a device array from Python
costs 100-350 µs a batch on this machine, more than a whole nielsen step), and the remainder batch, if any,
goes through a second jitted step. The loss of every step is computed but not fetched, as in a typical loop
that logs only now and then.
"""
from __future__ import annotations

import jax
import numpy as np
from jax import lax


@jax.jit
def _shuffle(key, x, y):
    key, sub = jax.random.split(key)
    perm = jax.random.permutation(sub, x.shape[0])
    return key, x[perm], y[perm]


def batch_at(xs, ys, i, batch):
    """The i-th full mini-batch of the shuffled arrays (traceable; i may be a traced scalar)."""
    return lax.dynamic_slice_in_dim(xs, i * batch, batch), lax.dynamic_slice_in_dim(ys, i * batch, batch)


def driver(x, y, batch: int, seed: int, step_at, step_rest):
    """An epoch runner `run(max_batches=None)` for a peer whose state lives in the closures it is given
    (`max_batches` cuts the epoch short after that many mini-batches, for extrapolating very slow peers).

    step_at(xs, ys, i) trains on full batch i of the shuffled arrays; step_rest(xb, yb) on the remainder.
    Both update the peer's state and return the loss (a device array; the epoch blocks on the last one, an
    output of the same executable as the new parameters, so it is ready only when they are).
    """
    x, y = jax.device_put(x), jax.device_put(y)
    n = x.shape[0]
    full, rest = divmod(n, batch)
    key = [jax.random.PRNGKey(seed)]
    # Batch indices as device scalars made once: a Python int would be static under eqx.filter_jit.
    indices = [jax.device_put(np.int32(i)) for i in range(full)]

    def run(max_batches=None):
        key[0], xs, ys = _shuffle(key[0], x, y)
        loss = None
        for i in indices[:max_batches]:
            loss = step_at(xs, ys, i)
        if rest and (max_batches is None or max_batches > full):
            loss = step_rest(xs[full * batch:], ys[full * batch:])
        jax.block_until_ready(loss)
        return loss

    return run
