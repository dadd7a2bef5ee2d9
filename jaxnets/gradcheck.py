"""The three-witness gradient check: hand-written backprop, `jax.grad`, and central finite differences.

    report = compare(model, loss, params, state, x, y, ctx, penalty=None)
    print(report)                  # a table: one row per parameter leaf, grouped by layer
    report.assert_close(rtol)      # raises naming the first leaf whose gradients disagree

Errors per leaf are max absolute error max|a − b| and normwise relative error
max|a − b| / max(max|a|, max|b|) (0 when both are 0), which stays meaningful when some entries are ~0.
Finite differences are central, (C(θ + h eᵢ) − C(θ − h eᵢ)) / 2h, evaluated in float64 one coordinate at a
time (vmapped in chunks), so they cost one forward pass per parameter: use small models and batches.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxnets import gradients
from jaxnets.core import Ctx, Layer


def finite_differences(fn, params, *, step: float = 1e-5, chunk: int = 512):
    """Central differences of the scalar `fn(params)` w.r.t. every leaf of `params` (same structure).

    Computed in the dtype of `params`; call it on float64 params (with x64 enabled) for a trustworthy witness.
    """
    flat, unravel = ravel_pytree(params)
    eye_rows = jnp.arange(flat.size)

    def partial(i):
        e = jnp.zeros_like(flat).at[i].set(step)
        return (fn(unravel(flat + e)) - fn(unravel(flat - e))) / (2 * step)

    return unravel(jax.lax.map(partial, eye_rows, batch_size=min(chunk, max(flat.size, 1))))


def as_float64(tree):
    """`tree` with its floating leaves cast to float64 (other leaves unchanged); call it with x64 enabled."""
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, tree)


def _errors(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0, 0.0
    abs_err = float(np.max(np.abs(a - b)))
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    return abs_err, (abs_err / scale if scale > 0 else 0.0)


class LeafRow(NamedTuple):
    path: str
    layer: str
    shape: tuple
    manual_vs_autodiff: tuple[float, float]   # (max abs, rel)
    manual_vs_fd: tuple[float, float] | None
    autodiff_vs_fd: tuple[float, float] | None


class GradCheckReport(NamedTuple):
    rows: tuple[LeafRow, ...]
    dtype: str

    def worst(self, column: str = "manual_vs_autodiff") -> float:
        """The largest relative error in a column ("manual_vs_autodiff", "manual_vs_fd", "autodiff_vs_fd")."""
        values = [getattr(r, column)[1] for r in self.rows if getattr(r, column) is not None]
        return max(values, default=0.0)

    def per_layer(self) -> dict[str, dict[str, float]]:
        """Worst relative error of each column, per layer."""
        out: dict[str, dict[str, float]] = {}
        for r in self.rows:
            entry = out.setdefault(r.layer, {})
            for col in ("manual_vs_autodiff", "manual_vs_fd", "autodiff_vs_fd"):
                value = getattr(r, col)
                if value is not None:
                    entry[col] = max(entry.get(col, 0.0), value[1])
        return out

    def assert_close(self, rtol: float, fd_rtol: float | None = None) -> None:
        """Raise AssertionError naming the first leaf where manual and autodiff differ by more than `rtol`
        (relative), or where either differs from finite differences by more than `fd_rtol` (default rtol)."""
        fd_rtol = rtol if fd_rtol is None else fd_rtol
        for r in self.rows:
            for col, tol in (("manual_vs_autodiff", rtol), ("manual_vs_fd", fd_rtol), ("autodiff_vs_fd", fd_rtol)):
                value = getattr(r, col)
                if value is not None and not value[1] <= tol:
                    raise AssertionError(
                        f"gradient mismatch at {r.path} (layer {r.layer}, shape {r.shape}): {col} relative error "
                        f"{value[1]:.3e} > {tol:.1e} (max abs {value[0]:.3e}); "
                        "check that layer's backward against its forward"
                    )

    def __str__(self) -> str:
        def cell(v):
            return "        -" if v is None else f"{v[1]:9.2e}"

        header = f"{'parameter':<22}{'layer':<16}{'shape':<12}{'man~auto':>10}{'man~fd':>10}{'auto~fd':>10}"
        lines = [f"gradient check ({self.dtype}; relative errors)", header, "-" * len(header)]
        for r in self.rows:
            lines.append(f"{r.path:<22}{r.layer[:15]:<16}{str(r.shape):<12}{cell(r.manual_vs_autodiff):>10}"
                         f"{cell(r.manual_vs_fd):>10}{cell(r.autodiff_vs_fd):>10}")
        summary = f"worst: manual~autodiff {self.worst('manual_vs_autodiff'):.2e}"
        if any(r.manual_vs_fd is not None for r in self.rows):
            summary += f", manual~fd {self.worst('manual_vs_fd'):.2e}, autodiff~fd {self.worst('autodiff_vs_fd'):.2e}"
        else:
            summary += " (finite differences not computed)"
        lines.append(summary)
        return "\n".join(lines)


def _path_str(path) -> str:
    parts = []
    for k in path:
        parts.append(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))))
    return "/".join(parts)


def _layer_name(model: Layer, path) -> str:
    layer = model
    for k in path:
        idx = getattr(k, "idx", None)
        if idx is None or not layer.children or idx >= len(layer.children):
            break
        layer = layer.children[idx]
    return layer.name


def compare(model: Layer, loss, params, state, x, y, ctx: Ctx = Ctx(train=True), penalty=None, *,
            finite_diff: bool = True, step: float = 1e-5) -> GradCheckReport:
    """Gradients of `loss` (plus `penalty`) at `params` from all three witnesses, compared leaf by leaf.

    Manual and autodiff are compared in the dtype of `params`; finite differences, and both gradients
    against them, in float64 (computed under `jax.enable_x64`).
    """
    (_, _), g_manual = jax.jit(gradients.manual(model, loss, penalty))(params, state, x, y, ctx)
    (_, _), g_auto = jax.jit(gradients.autodiff(model, loss, penalty))(params, state, x, y, ctx)
    dtype = str(jax.tree_util.tree_leaves(params)[0].dtype) if jax.tree_util.tree_leaves(params) else "none"
    g_manual = jax.tree_util.tree_map(np.asarray, g_manual)
    g_auto = jax.tree_util.tree_map(np.asarray, g_auto)
    g_fd64 = g_man64 = g_auto64 = None
    if finite_diff:
        with jax.enable_x64(True):
            p64, s64, x64, y64 = (as_float64(t) for t in (params, state, x, y))

            def cost(p):
                outputs, _, _ = model.forward(p, s64, x64, ctx)
                return gradients._penalised(loss.value(outputs, y64), p, penalty)

            g_fd64 = jax.tree_util.tree_map(np.asarray, jax.jit(lambda p: finite_differences(cost, p, step=step))(p64))
            if dtype == "float64":  # already computed in float64 above
                g_man64, g_auto64 = g_manual, g_auto
            else:
                _, g = jax.jit(gradients.manual(model, loss, penalty))(p64, s64, x64, y64, ctx)
                g_man64 = jax.tree_util.tree_map(np.asarray, g)
                _, g = jax.jit(gradients.autodiff(model, loss, penalty))(p64, s64, x64, y64, ctx)
                g_auto64 = jax.tree_util.tree_map(np.asarray, g)

    rows = []
    leaves = jax.tree_util.tree_leaves_with_path(g_manual)
    auto_leaves = jax.tree_util.tree_leaves(g_auto)
    fd_leaves = jax.tree_util.tree_leaves(g_fd64) if finite_diff else [None] * len(leaves)
    m64 = jax.tree_util.tree_leaves(g_man64) if finite_diff else [None] * len(leaves)
    a64 = jax.tree_util.tree_leaves(g_auto64) if finite_diff else [None] * len(leaves)
    for (path, gm), ga, gf, gm64, ga64 in zip(leaves, auto_leaves, fd_leaves, m64, a64):
        rows.append(LeafRow(
            path=_path_str(path), layer=_layer_name(model, path), shape=tuple(gm.shape),
            manual_vs_autodiff=_errors(gm, ga),
            manual_vs_fd=None if gf is None else _errors(gm64, gf),
            autodiff_vs_fd=None if gf is None else _errors(ga64, gf),
        ))
    return GradCheckReport(tuple(rows), dtype)
