"""Two checks of a backward beyond its values: batching and reentrancy (as torch.autograd.gradcheck offers).

    batched_problems(label, fn, cotangents, dtype)   # jax.vmap(fn) over stacked cotangents == a loop over them
    reentrant_problems(label, call)                  # call() twice, eagerly: bit-identical results

fn(cotangent) -> a gradient pytree is a backward with everything but the cotangent fixed. Under `jax.vmap` every
primitive gets a batch axis; a backward that branches in Python on a shape, reshapes with a hard-coded batch
size, or calls numpy on its inputs gives a different (or no) answer there, and so would `jax.jacrev`, `vmap`ped
per-example gradients, or `jax.hessian` through it. Reentrancy: a backward that keeps Python state (a global, a
counter, numpy randomness) returns different results for the same arguments; it is called eagerly (not under
`jit`, which would run the Python once). Each returns a list of messages (empty when all is well) that name the
entry where the two disagree and the two values.
"""
from __future__ import annotations

import jax
import numpy as np

from jaxnets.gradcheck.report import DEFAULT_RTOL, default_rtol, floor, indexed

BATCH = 3   # cotangents stacked for the batched check


def _leaves_with_paths(tree):
    return [(jax.tree_util.keystr(path), np.asarray(leaf, np.float64))
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)]


def batched_problems(label: str, fn, cotangents, dtype: str) -> list:
    """[message] when jax.vmap(fn)(cotangents) differs from [fn(c) for c in cotangents] beyond the manual~autodiff
    tolerance of `dtype` (relative to the largest entry, with the scale floor); cotangents: a leading axis of
    size n. A backward that cannot be vmapped at all is reported with the error it raised."""
    n = int(jax.tree_util.tree_leaves(cotangents)[0].shape[0])
    looped = [fn(jax.tree_util.tree_map(lambda c, i=i: c[i], cotangents)) for i in range(n)]
    try:
        mapped = jax.vmap(fn)(cotangents)
    except Exception as err:   # noqa: BLE001 - reported, not raised
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return [f"{label}: the backward fails under jax.vmap ({type(err).__name__}: {first}); it must be "
                "batching-safe (no Python branch on traced values or shapes, no numpy on its inputs)"]
    stacked = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *looped)
    pairs = list(zip(_leaves_with_paths(mapped), _leaves_with_paths(stacked)))
    scale = max((float(np.max(np.abs(b))) for (_, _), (_, b) in pairs if b.size), default=0.0)
    tol = default_rtol(dtype) * (1 + floor(dtype)) * scale if dtype in DEFAULT_RTOL else 0.0
    for (path, a), (_, b) in pairs:
        if a.shape != b.shape:
            return [f"{label}: the backward under jax.vmap returns {path or 'its output'} of shape {a.shape}, the loop "
                    f"{b.shape}; it must be batching-safe"]
        diff = np.abs(a - b)
        if diff.size and not float(np.max(diff)) <= tol:
            at = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))),
                                                         diff.shape))
            return [f"{label}: the backward under jax.vmap over {n} output cotangents differs from a loop over them at "
                    f"{indexed(path or 'output', at[1:])} (cotangent {at[0]}): vmap {a[at]:.6g}, loop {b[at]:.6g}; "
                    "it must be batching-safe (no Python branch on shapes or values, no hard-coded batch size)"]
    return []


def reentrant_problems(label: str, call) -> list:
    """[message] when two calls of call() (eager) return different structures or values (NaN equals NaN)."""
    first, second = call(), call()
    a_leaves, b_leaves = _leaves_with_paths(first), _leaves_with_paths(second)
    if jax.tree_util.tree_structure(first) != jax.tree_util.tree_structure(second):
        return [f"{label}: two backward calls with the same arguments return different structures"]
    for (path, a), (_, b) in zip(a_leaves, b_leaves):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if not np.all(same):
            at = tuple(int(i) for i in np.unravel_index(int(np.argmin(same)), same.shape)) if same.shape else ()
            return [f"{label}: two backward calls with the same arguments differ at {indexed(path or 'output', at)}: "
                    f"{a[at]:.6g} then {b[at]:.6g}; the backward is not reentrant (it keeps hidden state: a global, "
                    "a counter, numpy randomness)"]
    return []
