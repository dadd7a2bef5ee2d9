"""A model's layer tree: its nodes in pre-order, and one forward pass that records what each node saw.

    nodes(model)                          -> [(path, layer)]: the model at (), its children at (0,), (1,), (1, 0), ...
    outputs, records = record(model, params, state, x, ctx)
    records[path] = Record(x, y, key, cache)   # the input, output, PRNG key and cache of the node at `path`

A combinator is a layer with `children` and `rebuild` (`serial`, `residual`, `branches`, ...); its params and
state are tuples with one entry per child, so the node at path (i, j) owns `params[i][j]`. Other layers are
leaves. `record` runs the model once with every node wrapped so that its forward also returns what it saw, and,
given `probes` ({path: arrays shaped like that node's output}), adds each probe to the node's output: the
gradient of any function of the outputs with respect to the probes is then the cotangent arriving at every node
(what `jaxnets.gradcheck.check_model` uses). Used by gradient checks, `summary` and the diagnostics.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.core import Layer


class Record(NamedTuple):
    """What one node saw in a forward pass: its input, its output, its PRNG key (or None), its cache."""

    x: Any
    y: Any
    key: Any
    cache: Any


def is_combinator(layer: Layer) -> bool:
    """A layer the tools walk into: it has children and a `rebuild`."""
    return bool(layer.children) and layer.rebuild is not None


def nodes(model: Layer, path: tuple = ()) -> list:
    """[(path, layer)] of `model` and everything inside it, in pre-order (a parent before its children)."""
    out = [(path, model)]
    if is_combinator(model):
        for i, child in enumerate(model.children):
            out += nodes(child, path + (i,))
    return out


def subtree(tree, path: tuple):
    """The entry of a params/state tree that belongs to the node at `path`."""
    for i in path:
        tree = tree[i]
    return tree


def _instrument(layer: Layer) -> Layer:
    inner = layer.rebuild(*[_instrument(c) for c in layer.children]) if is_combinator(layer) else layer

    def forward(params, state, x, ctx):
        inner_params, probe = params
        y, new_state, cache = inner.forward(inner_params, state, x, ctx)
        seen = Record(x, y, ctx.key, cache)
        return (y if probe is None else jax.tree_util.tree_map(jnp.add, y, probe)), (new_state, seen), cache

    return Layer(inner.init, forward, None, layer.name)


def _with_probes(layer: Layer, params, probes: dict, path: tuple):
    if is_combinator(layer):
        if not isinstance(params, (tuple, list)) or len(params) != len(layer.children):
            raise ValueError(f"{layer.name} is a combinator, so its params must be a tuple with one entry per child "
                             f"({len(layer.children)}), got {type(params).__name__}; pass the params of this model")
        params = tuple(_with_probes(c, params[i], probes, path + (i,)) for i, c in enumerate(layer.children))
    return params, probes.get(path)


def _collect(layer: Layer, new_state, path: tuple, out: dict) -> None:
    inner_state, out[path] = new_state
    if is_combinator(layer):
        for i, child in enumerate(layer.children):
            _collect(child, inner_state[i], path + (i,), out)


def record(model: Layer, params, state, x, ctx, probes: dict | None = None):
    """(outputs, {path: Record}) of one forward pass of `model` (pure: works under jit, grad, eval_shape)."""
    out, new_state, _ = _instrument(model).forward(_with_probes(model, params, probes or {}, ()), state, x, ctx)
    records: dict = {}
    _collect(model, new_state, (), records)
    return out, records
