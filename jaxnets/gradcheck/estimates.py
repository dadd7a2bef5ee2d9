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


def _coordinates(fn, point, extra, step, programs, floor):
    steps = differences.leaf_steps(point, step, floor)
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
    memo: keep the compiled programs for the next check of the same fn (False for a one-off closure, which the
    memo would otherwise keep alive with the arrays it closes over)."""
    programs = memoised if memo else _fresh
    floor = differences.SCALE_FLOOR if dtype == "float64" else 1.0   # lower precision: no step below `step`
    manual = _host(m64)
    autodiff = None if a64 is None else _host(a64)

    def along(dirs):
        steps = differences.direction_steps(point, step, floor)
        program = programs(_direction_program, fn)
        f0, values, pm, pa = program(point, dirs, [jnp.asarray(h, jnp.float64) for h in steps], m64,
                                     m64 if a64 is None else a64, *extra)
        estimates = [kinks.estimate(f0, v, h) for v, h in zip(values, steps)]
        return estimates, (_host(pm), None if a64 is None else _host(pa)), f0

    if mode == "coordinates":
        return FiniteDifferences(mode, manual, autodiff, _coordinates(fn, point, extra, step, programs, floor),
                                 dtype=dtype, translation=lambda: along(differences.translations(point))[:2])
    estimates, projections, f0 = along(differences.random_directions(jax.random.key(0) if key is None else key,
                                                                     point, directions))
    scales = differences.leaf_scales(point, floor)

    def recheck(leaf_index, coords):
        h = step * scales[leaf_index]
        program = programs(_selected_program, fn, leaf_index)
        values = program(point, jnp.asarray(coords, jnp.int32), jnp.asarray(h, jnp.float64), *extra)
        return kinks.estimate(f0, values, h)

    return FiniteDifferences(mode, manual, autodiff, estimates, projections, recheck, dtype)
