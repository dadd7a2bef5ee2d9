"""The third witness: central finite differences, per coordinate or along random directions, in float64.

    finite_differences(fn, tree)                       # ∂fn/∂θᵢ ≈
                                                       # (fn(θ + h eᵢ) − fn(θ − h eᵢ)) / 2h, every i
    directional_differences(fn, tree, key=k, n=4)      # vᵀ∇fn ≈ (fn(θ + h v) − fn(θ − h v)) / 2h, per leaf

Per-coordinate differences cost two evaluations of `fn` per coordinate (vmapped in chunks), so they suit small
problems. Directional differences cost 2·n evaluations per leaf whatever its size: n random unit directions v
(normal entries, normalised over the leaf), each perturbing one leaf only, so a leaf's error is measured on
its own. A wrong gradient g′ ≠ g fails the comparison vᵀg′ ≈ vᵀg for almost every v, so a few directions
suffice. Both should be evaluated on float64 inputs (under `jax.enable_x64`).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def as_float64(tree):
    """`tree` with its floating leaves cast to float64 (other leaves unchanged); call it with x64 enabled."""
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, tree)


def finite_differences(fn, params, *, step: float = 1e-5, chunk: int = 512):
    """Central differences of the scalar `fn(params)` w.r.t. every entry of every leaf (same structure).

    Computed in the dtype of `params`; call it on float64 params (with x64 enabled) for a trustworthy witness.
    """
    flat, unravel = ravel_pytree(params)
    if flat.size == 0:
        return params

    def partial(i):
        e = jnp.zeros_like(flat).at[i].set(step)
        return (fn(unravel(flat + e)) - fn(unravel(flat - e))) / (2 * step)

    return unravel(jax.lax.map(partial, jnp.arange(flat.size), batch_size=min(chunk, flat.size)))


@functools.partial(jax.jit, static_argnums=2)
def random_directions(key, tree, n: int):
    """`n` unit directions per leaf: a tree like `tree` whose leaves have a leading axis of size n.

    One normal draw of n × (all the leaves' sizes) is cut into the leaves (one random-number program to compile,
    however many leaves), then each leaf's n vectors are scaled to unit length."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    sizes = [int(leaf.size) for leaf in leaves]
    dtype = jnp.result_type(*leaves) if leaves else jnp.float32
    draws = jax.random.normal(key, (n, sum(sizes)), dtype)
    out, start = [], 0
    for size, leaf in zip(sizes, leaves):
        v = draws[:, start:start + size].reshape((n,) + tuple(leaf.shape)).astype(leaf.dtype)
        start += size
        norms = jnp.sqrt(jnp.sum(v * v, axis=tuple(range(1, v.ndim)), keepdims=True))
        out.append(v / jnp.where(norms > 0, norms, 1))
    return jax.tree_util.tree_unflatten(treedef, out)


def directional_differences(fn, params, directions, *, step: float = 1e-5):
    """(fn(θ + h v) − fn(θ − h v)) / 2h for each leaf's directions (see `random_directions`): a tree like
    `params` whose leaves are vectors of n estimates of vᵀ∂fn/∂leaf. Only the leaf being probed moves."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    dirs = treedef.flatten_up_to(directions)
    estimates = []
    for i, v in enumerate(dirs):
        def along(d, i=i):
            plus = [leaf + step * d if j == i else leaf for j, leaf in enumerate(leaves)]
            minus = [leaf - step * d if j == i else leaf for j, leaf in enumerate(leaves)]
            return (fn(treedef.unflatten(plus)) - fn(treedef.unflatten(minus))) / (2 * step)

        estimates.append(jax.lax.map(along, v))
    return treedef.unflatten(estimates)


def project(grads, directions):
    """vᵀg for each leaf's directions: a tree of vectors of n projections, like `directional_differences`."""
    return jax.tree_util.tree_map(lambda g, v: jnp.tensordot(v, g, axes=g.ndim), grads, directions)
