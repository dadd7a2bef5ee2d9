"""`check_layer`: one layer alone — its hand-written backward against `jax.vjp` and finite differences at a
random input, with the batched and reentrant options — and `layer_rows`, the rows of one layer, which
`check_model` also uses for every child in place. The rules (structure first, kinks, the worst entry) are
described in `checks`."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.core import Ctx, Layer
from jaxnets.gradcheck import arguments, consistency, differences, structure
from jaxnets.gradcheck.estimates import finite_differences_of
from jaxnets.gradcheck.memo import built as _built
from jaxnets.gradcheck.report import Report
from jaxnets.gradcheck.rows import build_rows
from jaxnets.gradcheck.common import (AUTODIFF_LAYER, autodiff_notes, check_mode, dtype_name, fd_label, host,
                                     is_autodiff, options, path_str, size_of)

__all__ = ["check_layer", "layer_rows"]


# ---------------------------------------------------------------------------------------------- one layer
def _layer_manual(layer: Layer, train: bool):
    """jit of (params, state, x, dy, key) -> the layer's hand-written (dparams, dx)."""
    def manual(p, s, x_, dy_, key):
        _, _, cache = layer.forward(p, s, x_, Ctx(train, key))
        return layer.backward(p, cache, dy_)

    return jax.jit(manual)


def _layer_autodiff(layer: Layer, train: bool):
    """jit of (params, state, x, dy, key) -> `jax.vjp` of the layer's forward applied to dy."""
    def autodiff(p, s, x_, dy_, key):
        _, vjp = jax.vjp(lambda p_, xx: layer.forward(p_, s, xx, Ctx(train, key))[0], p, x_)
        return vjp(dy_)

    return jax.jit(autodiff)


def _layer_probe(layer: Layer, train: bool):
    """((params, x), state, dy, key) -> ⟨dy, forward(params, x)⟩: the scalar whose finite differences are taken."""
    def probe(px, s, dy, key):
        y, _, _ = layer.forward(px[0], s, px[1], Ctx(train, key))
        return sum(jnp.sum(a * b) for a, b in zip(jax.tree_util.tree_leaves(y), jax.tree_util.tree_leaves(dy)))

    return probe


def _layer_labels(layer: Layer, where, params, x) -> list:
    labels = [(layer.name, where, path_str(path)) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    return labels + [(layer.name, where, "/".join(["input"] + ([path_str(path)] if path else [])))
                     for path, _ in jax.tree_util.tree_leaves_with_path(x)]


def layer_rows(check, layer: Layer, where, params, state, x, ctx, dy, *, mode, directions, step, key):
    """Rows for `layer` at (params, state, x, ctx) with output cotangent dy: each param leaf and the input; the
    rows of a layer with an autodiff backward carry the note `AUTODIFF_LAYER`."""
    rows = _rows(check, layer, where, params, state, x, ctx, dy, mode=mode, directions=directions, step=step, key=key)
    return [r._replace(note=AUTODIFF_LAYER) for r in rows] if is_autodiff(layer) else rows


def _rows(check, layer: Layer, where, params, state, x, ctx, dy, *, mode, directions, step, key):
    train = bool(ctx.train)
    manual, autodiff = _built(_layer_manual, layer, train), _built(_layer_autodiff, layer, train)
    g_man = manual(params, state, x, dy, ctx.key)
    g_auto = autodiff(params, state, x, dy, ctx.key)
    labels = _layer_labels(layer, where, params, x)
    dtype = dtype_name((params, x))
    if mode is None:
        return build_rows(check, labels, host(g_man), host(g_auto), dtype)
    with jax.enable_x64(True):
        p64, s64, x64, dy64 = (differences.as_float64(t) for t in (params, state, x, dy))
        if dtype == "float64":
            m64, a64 = g_man, g_auto
        else:
            m64, a64 = manual(p64, s64, x64, dy64, ctx.key), autodiff(p64, s64, x64, dy64, ctx.key)
        fd = finite_differences_of(_built(_layer_probe, layer, train), (p64, x64), (s64, dy64, ctx.key), m64, a64,
                                   mode, directions=directions, step=step, key=key)
        return build_rows(check, labels, host(g_man), host(g_auto), dtype, fd)


def _layer_consistency(layer: Layer, label: str, params, state, x, ctx, dy, key, *, batched, reentrant):
    """(problems, notes) of the batched and reentrancy checks of one layer's backward (see `consistency`)."""
    problems, notes = [], []
    dtype = dtype_name((params, x))
    if batched:
        manual = _built(_layer_manual, layer, bool(ctx.train))
        cotangents = jax.random.normal(key, (consistency.BATCH,) + tuple(dy.shape), dy.dtype)
        found = consistency.batched_problems(label, lambda d: manual(params, state, x, d, ctx.key), cotangents,
                                             dtype)
        problems += found
        notes.append(f"batched: the backward under jax.vmap over {consistency.BATCH} output cotangents "
                     f"{'differs from' if found else 'equals'} the loop over them")
    if reentrant:
        def call():
            _, _, cache = layer.forward(params, state, x, ctx)
            return layer.backward(params, cache, dy)

        found = consistency.reentrant_problems(label, call)
        problems += found
        notes.append(f"reentrant: two eager backward calls {'differ' if found else 'are identical'}")
    return problems, notes


def check_layer(layer: Layer, input_shape, *, key, batch_size: int = 4, train: bool = True, params=None, state=None,
                finite_diff="auto", directions: int = 4, step: float = 1e-5, batched: bool = False,
                reentrant: bool = False, allow_autodiff: bool = False) -> Report:
    """Check one layer's backward alone, in float64: dparams and dx against `jax.vjp` and finite differences.

    input_shape: per-example shape (no batch axis); key: initialises the layer (unless `params`/`state` are
    given), draws the input x (batch_size, *input_shape) ~ N(0, 1), the output cotangent dy ~ N(0, 1) and the
    layer's own key (dropout masks); train: training mode (batch statistics, dropout) or evaluation mode;
    finite_diff, directions, step: see the module docstring; batched, reentrant: the extra checks of the module
    docstring. Returns a `Report` with one "layer" row per parameter leaf and one for the input, or, when what
    `backward` returns is not shaped like (params, x), no rows and the problems.

    check_layer tests a hand-written backward, so it refuses (ValueError) a layer whose backward is autodiff of
    its forward (`Meta.autodiff_backward`: `layers.from_function`, `jaxnets.interop` adapters), where manual~autodiff
    is 0 by construction, unless `allow_autodiff=True`: then its rows say so and only the finite-difference
    columns test it (autodiff through the forward).
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"check_layer(layer): a jaxnets Layer, got {type(layer).__name__}")
    where = f"check_layer({layer.name})"
    if not isinstance(allow_autodiff, bool):
        raise TypeError(f"{where}: allow_autodiff must be True or False, got {allow_autodiff!r}")
    if is_autodiff(layer) and not allow_autodiff:
        raise ValueError(f"{where}: this layer's backward is jax.vjp of its forward (Meta.autodiff_backward: "
                         "layers.from_function or a jaxnets.interop adapter), not hand-written, so comparing it with "
                         "autodiff proves nothing; pass allow_autodiff=True to check it anyway (the finite-difference "
                         "columns then test autodiff through the forward), or write its backward by hand "
                         "(docs/custom-layers.md)")
    directions, step, _ = options(where, finite_diff, directions, step, None)
    key = arguments.key(key, where)
    if key is None:
        raise TypeError(f"{where}: key must be one JAX PRNG key (jax.random.key(0)), got None")
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    input_shape = tuple(input_shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape):
        raise ValueError(f"{where}: input_shape must be positive ints without the batch axis, got {input_shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{where}: batch_size must be a positive int, got {batch_size!r}")
    k_init, k_x, k_dy, k_ctx, k_dir = jax.random.split(key, 5)
    with jax.enable_x64(True):
        if params is None or state is None:
            _, p0, s0 = layer.init(k_init, input_shape)
            params = p0 if params is None else params
            state = s0 if state is None else state
        params, state = differences.as_float64(params), differences.as_float64(state)
        x = jax.random.normal(k_x, (batch_size,) + input_shape, jnp.float64)
        ctx = Ctx(bool(train), k_ctx)
        problems = structure.layer_problems(layer, params, state, x, ctx, where="checked alone")
        if problems:
            return Report((), "float64", None, problems=tuple(problems))
        y = jax.eval_shape(lambda p, s, xx: layer.forward(p, s, xx, ctx)[0], params, state, x)
        dy = jax.random.normal(k_dy, y.shape, jnp.float64)
        mode = check_mode(finite_diff, size_of((params, x)), where)
        rows = layer_rows("layer", layer, "", params, state, x, ctx, dy, mode=mode, directions=directions,
                           step=step, key=k_dir)
        problems, notes = _layer_consistency(layer, f"layer {layer.name} (checked alone)", params, state, x, ctx, dy,
                                             k_dir, batched=batched, reentrant=reentrant)
    notes = autodiff_notes(layer) + notes
    return Report(tuple(rows), "float64", fd_label(mode, directions), tuple(problems), tuple(notes))
