"""`summary(model, input_shape)`: every layer with its output shape, parameter count and state size.

    print(jaxnets.summary(models.mlp([784, 30, 10]), (784,)))

    layer                                  output shape      params   state
    mlp([784, 30, 10])                     (10,)             23,860       0
      Dense(30)                            (30,)             23,550       0
      ...
    total: 23,860 parameters (93.2 KiB as float32), 0 state values

Nested layers (the children of `serial`, `residual`, `branches`, ...) are indented under their parent, whose
counts include theirs. A layer whose backward is autodiff of its forward rather than hand-written
(`Meta.autodiff_backward`: `layers.from_function`, the `jaxnets.interop` adapters) is marked in a last column,
"backward: autodiff", shown only when the model has such a layer, and counted under the table. Nothing is computed: shapes come from `jax.eval_shape` of `init` and of one forward pass.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnets import nodes
from jaxnets.core import Ctx, Layer, init
from jaxnets.layers._args import check_dtype

__all__ = ["Summary", "SummaryRow", "summary"]


class SummaryRow(NamedTuple):
    """depth below the model; the layer's name; its per-example output shape; its parameter and state counts;
    autodiff_backward: its backward is autodiff of its forward, not hand-written."""

    depth: int
    name: str
    output_shape: tuple
    params: int
    state: int
    autodiff_backward: bool = False


class Summary(NamedTuple):
    """rows: one `SummaryRow` per layer in pre-order (depth 0 is the model); params / state: the totals;
    param_bytes: the parameters' memory."""

    rows: tuple
    params: int
    state: int
    param_bytes: int

    def __str__(self) -> str:
        labels = [_clip("  " * r.depth + r.name, NAME_WIDTH) for r in self.rows]
        width = max([len(label) for label in labels] + [20]) + 2
        shape_width = max([len(str(r.output_shape)) for r in self.rows] + [12]) + 2
        marked = sum(r.autodiff_backward for r in self.rows)
        lines = [f"{'layer':<{width}}{'output shape':<{shape_width}}{'params':>12}{'state':>10}"
                 + ("  backward" if marked else "")]
        lines.append("-" * len(lines[0]))
        for label, r in zip(labels, self.rows):
            lines.append(f"{label:<{width}}{str(r.output_shape):<{shape_width}}{r.params:>12,}{r.state:>10,}"
                         + ("  autodiff" if r.autodiff_backward else ""))
        lines.append(f"total: {self.params:,} parameters ({_bytes(self.param_bytes)}), {self.state:,} state values")
        if marked:
            lines.append(f"autodiff backward: {marked} layer{'s' if marked > 1 else ''} whose backward is jax.vjp of "
                         "the forward, not hand-written (layers.from_function, jaxnets.interop)")
        return "\n".join(lines)


NAME_WIDTH = 56


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _count(tree) -> int:
    return sum(int(math.prod(a.shape)) for a in jax.tree_util.tree_leaves(tree))


def _per_example(shape):
    if hasattr(shape, "shape"):
        return tuple(shape.shape[1:])
    return tuple(_per_example(s) for s in shape)


def summary(model: Layer, input_shape, *, dtype=None) -> Summary:
    """The layer table of `model` for per-example inputs of `input_shape` (no batch axis); see the module
    docstring. `input_shape` is checked as `jaxnets.init` checks it (positive ints); the model's own error is
    raised when it cannot take that shape. `dtype` is the inputs' dtype, by default JAX's default float (float32,
    or float64 under `jax_enable_x64`: the dtype the initializers give the params)."""
    if not isinstance(model, Layer):
        raise TypeError(f"summary(model): a jaxnets Layer, got {type(model).__name__}")
    check_dtype("summary", dtype)
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64) if dtype is None else dtype
    _, params, state = jax.eval_shape(lambda k: init(model, k, input_shape), jax.random.key(0))
    input_shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    x = jax.ShapeDtypeStruct((1,) + input_shape, dtype)
    records = jax.eval_shape(lambda p, s, xb: nodes.record(model, p, s, xb, Ctx(False, None))[1], params, state, x)
    rows = []
    for path, layer in nodes.nodes(model):
        rows.append(SummaryRow(len(path), layer.name, _per_example(records[path].y),
                               _count(nodes.subtree(params, path)), _count(nodes.subtree(state, path)),
                               bool(layer.meta.autodiff_backward)))
    nbytes = sum(int(math.prod(a.shape)) * jnp.dtype(a.dtype).itemsize for a in jax.tree_util.tree_leaves(params))
    return Summary(tuple(rows), _count(params), _count(state), nbytes)
