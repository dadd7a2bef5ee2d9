"""The third witness: central finite differences, per coordinate or along random directions, in float64.

    finite_differences(fn, tree)                       # ∂fn/∂θᵢ ≈
                                                       # (fn(θ + h eᵢ) − fn(θ − h eᵢ)) / 2h, every i
    directional_differences(fn, tree, key=k, n=4)      # vᵀ∇fn ≈ (fn(θ + h v) − fn(θ − h v)) / 2h, per leaf

Per-coordinate differences cost two evaluations of `fn` per coordinate (vmapped in chunks), so they suit small
problems. Directional differences cost 2·n evaluations per leaf whatever its size: n random unit directions v
(normal entries, normalised over the leaf), each perturbing one leaf only, so a leaf's error is measured on
its own. A wrong gradient g′ ≠ g fails the comparison vᵀg′ ≈ vᵀg for almost every v, so a few directions
suffice. Both should be evaluated on float64 inputs (under `jax.enable_x64`).

The checks use stencils instead: the values of fn at θ ± h and θ ± h/2 along each coordinate (or direction),
from which `jaxnets.gradcheck.kinks` forms the central difference and the two one-sided ones (to see kinks).
The step h is relative to the leaf it moves: `leaf_steps` gives step·rms(leaf) per coordinate (step itself for
an all-zero leaf), so a leaf of size 1e6 or 1e-6 is probed at its own scale (the checks raise a step that
round-off would spoil, see `jaxnets.gradcheck.estimates.smallest_step`).

    coordinate_stencil(fn, θ, steps)          # (k, 4): fn(θ + s·hᵢ eᵢ) for s in (1, −1, ½, −½), every coordinate i
    direction_stencil(fn, θ, dirs, h)         # per leaf (n, 4): the same along each of its n unit directions
    selected_stencil(fn, θ, leaf, coords, h)  # (k, 4): only the chosen coordinates of one leaf
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
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


def translations(tree):
    """One unit direction per leaf, ones/√size: every entry moved by the same amount (leading axis of size 1)."""
    return jax.tree_util.tree_map(
        lambda leaf: jnp.full((1,) + tuple(leaf.shape), 1 / np.sqrt(max(int(np.size(leaf)), 1)), leaf.dtype), tree)


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


SIGNS = (1.0, -1.0, 0.5, -0.5)   # the stencil: θ + s·h for each s; SIGNS[2:] are the half steps


def leaf_scales(tree) -> list:
    """[rms(leaf)] per leaf (host floats; 1.0 for an all-zero or empty leaf): the scale a relative step is taken
    at (the checks raise a step that round-off would spoil: `estimates.smallest_step`)."""
    scales = []
    for leaf in jax.tree_util.tree_leaves(tree):
        a = np.asarray(leaf, np.float64)
        rms = float(np.sqrt(np.mean(a * a))) if a.size else 0.0
        scales.append(rms if rms > 0 and np.isfinite(rms) else 1.0)
    return scales


def leaf_steps(tree, step: float) -> np.ndarray:
    """The per-coordinate steps of `coordinate_stencil`: step·scale(leaf) for every entry (see `leaf_scales`),
    flattened as `ravel_pytree` flattens `tree` (leaf order, row-major)."""
    leaves = jax.tree_util.tree_leaves(tree)
    parts = [np.full(int(np.size(leaf)), step * s) for leaf, s in zip(leaves, leaf_scales(tree))]
    return np.concatenate(parts) if parts else np.zeros((0,))


def direction_steps(tree, step: float) -> list:
    """The per-leaf steps along unit directions: step·scale(leaf)·√size, so each entry moves by about
    step·scale(leaf), as a coordinate step does."""
    return [step * s * float(np.sqrt(max(int(np.size(leaf)), 1)))
            for leaf, s in zip(jax.tree_util.tree_leaves(tree), leaf_scales(tree))]


def coordinate_stencil(fn, point, steps, *, chunk: int = 512):
    """(fn(point), values) with values[i, j] = fn(point + SIGNS[j]·steps[i]·eᵢ) for every flat coordinate i:
    shape (size, 4). `steps`: (size,) as from `leaf_steps`. Traceable (jit it)."""
    flat, unravel = ravel_pytree(point)
    f0 = fn(point)
    if flat.size == 0:
        return f0, jnp.zeros((0, len(SIGNS)), flat.dtype)
    signs = jnp.asarray(SIGNS, flat.dtype)

    def one(i):
        e = jnp.zeros_like(flat).at[i].set(steps[i])
        return jnp.stack([fn(unravel(flat + s * e)) for s in signs])

    return f0, jax.lax.map(one, jnp.arange(flat.size), batch_size=min(chunk, flat.size))


def direction_stencil(fn, point, directions, steps):
    """(fn(point), per-leaf values): for leaf i, an (n, 4) array of fn with that leaf moved by SIGNS[j]·steps[i]
    along each of its n unit directions (see `random_directions`); the other leaves stay. Traceable."""
    leaves, treedef = jax.tree_util.tree_flatten(point)
    dirs = treedef.flatten_up_to(directions)
    signs = SIGNS
    out = []
    for i, v in enumerate(dirs):
        def along(d, i=i):
            def moved(s):
                return treedef.unflatten([leaf + s * steps[i] * d if j == i else leaf for j, leaf in enumerate(leaves)])
            return jnp.stack([fn(moved(s)) for s in signs])

        out.append(jax.lax.map(along, v))
    return fn(point), out


def selected_stencil(fn, point, leaf_index: int, coords, step):
    """(k, 4): fn with entry coords[c] (flat, row-major) of leaf `leaf_index` moved by SIGNS[j]·step; the rest of
    `point` stays. For re-checking chosen coordinates of one large leaf (a failing directional check). Traceable
    with `leaf_index` static."""
    leaves, treedef = jax.tree_util.tree_flatten(point)
    leaf = leaves[leaf_index]
    flat = leaf.reshape(-1)

    def one(c):
        def moved(s):
            new = flat.at[c].add(s * step).reshape(leaf.shape)
            return treedef.unflatten([new if j == leaf_index else x for j, x in enumerate(leaves)])
        return jnp.stack([fn(moved(s)) for s in SIGNS])

    return jax.lax.map(one, coords, batch_size=min(256, max(int(coords.shape[0]), 1)))
