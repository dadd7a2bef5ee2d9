"""Three-way gradient checks shared by the layer tests (conv, pool, dropout, batch norm, models).

`three_way(...)` checks a model's parameter gradients and its input gradient dx three ways with one
`jaxnets.gradcheck.compare` call: the hand-written backward, `jax.grad`, and float64 central differences. It returns the
worst relative errors and prints them on one "GRADCHECK" line (visible with `pytest -s`). `vjp_both` runs the manual
backward inside `jax.vjp` (`gradients.as_custom_vjp`) next to autodiff's `jax.vjp`, for the input gradient of larger
programs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import gradcheck, gradients
from jaxnets.core import Ctx


def rel_err(a, b) -> float:
    """Normwise relative error max|a − b| / max(max|a|, max|b|) (0 when both are 0), as in gradcheck."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return float(np.max(np.abs(a - b), initial=0.0)) / scale if scale > 0 else 0.0


def vjp_both(model, params, state, x, dy, ctx):
    """((dparams, dx) from the manual backward run inside `jax.vjp` via `gradients.as_custom_vjp`,
    (dparams, dx) from `jax.vjp` of the plain forward), for the output cotangent dy, in one compiled program."""
    manual_fn = gradients.as_custom_vjp(model)

    @jax.jit
    def both(params, state, x, dy, key):
        c = Ctx(ctx.train, key)
        _, vjp_manual = jax.vjp(lambda p, x_: manual_fn(p, state, x_, c)[0], params, x)
        _, vjp_auto = jax.vjp(lambda p, x_: model.forward(p, state, x_, c)[0], params, x)
        return vjp_manual(dy), vjp_auto(dy)

    return both(params, state, x, dy, ctx.key)


def three_way(label, model, params, state, x, y, loss, ctx=Ctx(train=True), *, rtol, fd_rtol=1e-6, fd=True,
              zero_grad=()):
    """Check the gradients w.r.t. params and input with `gradcheck.compare` (manual backward vs `jax.grad` vs
    float64 central differences); returns the worst relative errors {"man~auto", "man~fd", "auto~fd"} (params and
    dx together) and prints them, with dx's own, on a "GRADCHECK" line.

    `zero_grad` lists parameter paths (as in the report, e.g. "0/b") whose true gradient is exactly zero, such as
    a bias feeding a BatchNorm (the batch mean removes it): besides passing the report's floored relative rule,
    those leaves must agree to 1e-9 in absolute terms in every column (1e-6 for float32 manual~autodiff), and are
    left out of the worst figures.
    """
    zero_grad = set(zero_grad)
    report = gradcheck.compare(model, loss, params, state, x, y, ctx, finite_diff=fd)
    paths = {r.path for r in report.rows}
    assert zero_grad <= paths and "input" in paths, f"unexpected report rows {sorted(paths)}"
    for row in report.rows:
        if row.path in zero_grad:
            for col in ("manual_vs_autodiff", "manual_vs_fd", "autodiff_vs_fd"):
                value = getattr(row, col)   # finite differences are always compared in float64
                atol = 1e-6 if col == "manual_vs_autodiff" and x.dtype == jnp.float32 else 1e-9
                assert value is None or value[0] <= atol, f"{label}: {row.path} should have zero gradient ({col})"
    try:
        report.assert_close(rtol, fd_rtol)
    except AssertionError as err:
        raise AssertionError(f"{label}: {err}\n{report}") from None
    report = report._replace(rows=tuple(r for r in report.rows if r.path not in zero_grad))
    cols = ("manual_vs_autodiff", "manual_vs_fd", "autodiff_vs_fd")
    worst = {short: (report.worst(col) if fd or col == "manual_vs_autodiff" else None)
             for short, col in zip(("man~auto", "man~fd", "auto~fd"), cols)}
    dx_row = next(r for r in report.rows if r.path == "input")
    dx_worst = " ".join(f"{c.split('_vs_')[0][:4]}~{c.split('_vs_')[1][:4]}="
                        f"{'-' if getattr(dx_row, c) is None else format(getattr(dx_row, c)[1], '.1e')}" for c in cols)
    print(f"GRADCHECK {label} [{x.dtype}] " + " ".join(f"{k}={'-' if v is None else format(v, '.2e')}"
                                                      for k, v in worst.items()) + f" | dx: {dx_worst}")
    return worst


def init_model(model, input_shape, dtype, seed=0):
    """init a model and cast its params and state to `dtype`."""
    _, params, state = model.init(jax.random.PRNGKey(seed), input_shape)
    cast = lambda t: jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), t)
    return cast(params), cast(state)


def distinct_normal(seed, shape, dtype, gap=1e-3):
    """Normal samples whose values are pairwise at least `gap` apart in sorted order (no near-ties, none within gap
    of 0), so max-pool arg-maxes and ReLU signs do not flip under finite-difference steps."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    values = np.sort(rng.normal(size=n))
    values = values + gap * np.arange(n)          # spread: consecutive sorted values differ by > gap
    values = values - values[np.argmin(np.abs(values))] + gap / 2   # the value nearest 0 sits at gap/2;
                                                                    # all |v| ≥ gap/2
    return jnp.asarray(rng.permutation(values).reshape(shape), dtype)
