"""The finite-difference witness of one check: stencils evaluated by compiled programs, turned into estimates.

    fd = finite_differences_of(fn, point, extra, m64, a64, "coordinates", directions=4, step=1e-5, key=k)

fn(point, *extra) -> scalar is the function whose gradient with respect to `point` (a pytree, float64 under
`jax.enable_x64`) the gradients m64 (manual) and a64 (autodiff, or None) claim to be. Coordinates: 4 evaluations
per entry (see `differences.coordinate_stencil`). Directions: 4 per direction per leaf, plus the projections vᵀg,
and a `recheck` that evaluates chosen coordinates of one leaf (see `rows`). Returns a `rows.FiniteDifferences`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.gradcheck import differences, kinks
from jaxnets.gradcheck.memo import built as memoised
from jaxnets.gradcheck.report import default_fd_rtol
from jaxnets.gradcheck.rows import FiniteDifferences


def _coordinate_program(fn):
    """jit of (point, steps, *extra) -> (fn at point, (size, 4) stencil values)."""
    return jax.jit(lambda p, steps, *extra: differences.coordinate_stencil(lambda q: fn(q, *extra), p, steps))


def _direction_program(fn):
    """jit of (point, dirs, steps, gm, ga, *extra) -> (fn at point, per-leaf (n, 4) values, vᵀgm, vᵀga)."""
    def program(p, d, steps, gm, ga, *extra):
        f0, values = differences.direction_stencil(lambda q: fn(q, *extra), p, d, steps)
        return f0, values, differences.project(gm, d), differences.project(ga, d)

    return jax.jit(program)


def _selected_program(fn, leaf_index):
    """jit of (point, coords, step, *extra) -> (k, 4) stencil values at the chosen coordinates of one leaf."""
    return jax.jit(lambda p, coords, h, *extra: differences.selected_stencil(lambda q: fn(q, *extra), p, leaf_index,
                                                                            coords, h))


def _host(tree) -> list:
    return [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(tree)]


def _fresh(build, *statics):
    return build(*statics)


ROUNDOFF_MARGIN = 100.0


def _value_program(fn):
    """jit of (point, *extra) -> fn(point, *extra): the value the round-off bound of the steps is taken from."""
    return jax.jit(fn)


def smallest_step(f0, gradient_scale: float, dtype: str) -> float:
    """The step below which round-off would exceed 1/ROUNDOFF_MARGIN of the tolerance: the error of a difference
    quotient is about eps·|f|/h, so h >= margin·eps·|f| / (tolerance·scale of the gradient). A relative step that
    is smaller (a leaf of size 1e-6 in a function whose value does not shrink with it, such as log(1 + eˣ)) is
    raised to it; a homogeneous function (a norm) keeps its relative step."""
    eps = float(jnp.finfo(dtype).eps)
    scale = gradient_scale if gradient_scale > 0 else 1.0
    return ROUNDOFF_MARGIN * eps * abs(float(f0)) / (default_fd_rtol(dtype) * scale)


def _coordinates(fn, point, extra, steps, programs):
    f0, values = programs(_coordinate_program, fn)(point, jnp.asarray(steps), *extra)
    values = np.asarray(values, np.float64)
    out, start = [], 0
    for leaf in jax.tree_util.tree_leaves(point):
        end = start + int(np.size(leaf))
        out.append(kinks.estimate(f0, values[start:end], steps[start:end]))
        start = end
    return out


def finite_differences_of(fn, point, extra, m64, a64, mode: str, *, directions: int, step: float, key,
                          dtype: str = "float64", memo: bool = True) -> FiniteDifferences:
    """The `FiniteDifferences` of fn at point (see the module docstring); call under `jax.enable_x64(True)`.
    Steps: step·rms(leaf) per entry (`differences.leaf_steps`), raised to `smallest_step` where round-off would
    otherwise matter. memo: keep the compiled programs for the next check of the same fn (False for a one-off
    closure, which the memo would otherwise keep alive with the arrays it closes over)."""
    programs = memoised if memo else _fresh
    manual = _host(m64)
    autodiff = None if a64 is None else _host(a64)
    reference = autodiff if autodiff is not None else manual
    f0 = programs(_value_program, fn)(point, *extra)
    entry_floor = smallest_step(f0, max((float(np.max(np.abs(g))) for g in reference if g.size), default=0.0), dtype)
    norm_floor = smallest_step(f0, max((float(np.linalg.norm(g)) for g in reference), default=0.0), dtype)

    def along(dirs):
        steps = [max(h, norm_floor) for h in differences.direction_steps(point, step)]
        program = programs(_direction_program, fn)
        _, values, pm, pa = program(point, dirs, [jnp.asarray(h, jnp.float64) for h in steps], m64,
                                    m64 if a64 is None else a64, *extra)
        estimates = [kinks.estimate(f0, v, h) for v, h in zip(values, steps)]
        return estimates, (_host(pm), None if a64 is None else _host(pa))

    if mode == "coordinates":
        steps = np.maximum(differences.leaf_steps(point, step), entry_floor)
        return FiniteDifferences(mode, manual, autodiff, _coordinates(fn, point, extra, steps, programs),
                                 dtype=dtype, translation=lambda: along(differences.translations(point)))
    estimates, projections = along(differences.random_directions(jax.random.key(0) if key is None else key, point,
                                                                 directions))
    scales = differences.leaf_scales(point)

    def recheck(leaf_index, coords):
        h = max(step * scales[leaf_index], entry_floor)
        program = programs(_selected_program, fn, leaf_index)
        values = program(point, jnp.asarray(coords, jnp.int32), jnp.asarray(h, jnp.float64), *extra)
        return kinks.estimate(f0, values, h)

    return FiniteDifferences(mode, manual, autodiff, estimates, projections, recheck, dtype)
