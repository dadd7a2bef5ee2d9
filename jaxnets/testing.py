"""Gradient assertions for your test suite: one call per check, a first line that says what is wrong, the table.

    from jaxnets.testing import assert_layer_gradients, assert_vjp, assert_grad

    def test_my_layer():
        assert_layer_gradients(MyDense(4), (6,))    # train and eval mode; structure, values, batched, reentrant

    def test_my_rule():
        assert_vjp(my_custom_vjp_fn, x, w)          # the rule vs autodiff of the undecorated function vs FD

    def test_any_function():
        assert_grad(f, x, w)                         # jax.vjp vs finite differences

Each raises `AssertionError` whose first line is the report's verdict (the layer or argument, the leaf, the index
of the worst entry and the values there, or the structural problem), followed by the whole report table; pytest
shows it as the failure. Each returns the report(s) when the check passes. Tolerances: `rtol` (manual~autodiff,
default by dtype), `fd_rtol` (against finite differences, default 1e-6 in float64), `atol`. Other keyword
arguments go to the `jaxnets.gradcheck` function underneath. `check_grads` takes the arguments of
`jax.test_util.check_grads` (order 1).

These helpers test hand-written derivatives. A layer whose backward is autodiff of its forward
(`Meta.autodiff_backward`: `layers.from_function`, `jaxnets.interop` adapters) agrees with autodiff by construction,
so `assert_layer_gradients` refuses it with a ValueError unless `allow_autodiff=True` (then only the finite-
difference columns test anything); `assert_model_gradients` checks a model containing such layers and its report
marks their rows.
"""
from __future__ import annotations

import jax

from jaxnets import gradcheck
from jaxnets.core import Ctx

__all__ = ["assert_layer_gradients", "assert_model_gradients", "assert_vjp", "assert_grad", "assert_report",
           "check_grads"]


def assert_report(report, *, rtol=None, fd_rtol=None, atol: float = 0.0):
    """`report.assert_close(rtol, fd_rtol, atol=atol)`, with the report's table appended to the message."""
    __tracebackhide__ = True
    try:
        report.assert_close(rtol, fd_rtol, atol=atol)
    except AssertionError as err:
        raise AssertionError(f"{err}\n\n{report}") from None
    return report


def assert_layer_gradients(layer, input_shape, *, key=None, train=(True, False), rtol=None, fd_rtol=None,
                           atol: float = 0.0, batched: bool = True, reentrant: bool = True, **options) -> tuple:
    """Check one layer alone (`gradcheck.check_layer`) in each mode of `train` (a bool or a tuple of bools;
    default both), with the batched and reentrancy checks on. key: default jax.random.key(0). Returns the
    reports, one per mode. A layer with an autodiff backward is refused unless `allow_autodiff=True` is passed
    (it goes to check_layer with the other options)."""
    __tracebackhide__ = True
    modes = (train,) if isinstance(train, bool) else tuple(train)
    key = jax.random.key(0) if key is None else key
    return tuple(assert_report(gradcheck.check_layer(layer, input_shape, key=key, train=mode, batched=batched,
                                                     reentrant=reentrant, **options),
                               rtol=rtol, fd_rtol=fd_rtol, atol=atol) for mode in modes)


def assert_model_gradients(model, loss, params, state, x, y, ctx: Ctx = Ctx(train=True), penalty=None, *, rtol=None,
                           fd_rtol=None, atol: float = 0.0, **options):
    """Check a model and every layer in place (`gradcheck.check_model`); the message names the layer at fault."""
    __tracebackhide__ = True
    report = gradcheck.check_model(model, loss, params, state, x, y, ctx, penalty, **options)
    return assert_report(report, rtol=rtol, fd_rtol=fd_rtol, atol=atol)


def assert_vjp(f, *args, key=None, reference=None, rtol=None, fd_rtol=None, atol: float = 0.0, batched: bool = True,
               reentrant: bool = True, **options):
    """Check a custom_vjp (or custom_jvp) rule (`gradcheck.check_vjp`), batched and reentrancy checks on."""
    __tracebackhide__ = True
    report = gradcheck.check_vjp(f, *args, key=key, reference=reference, batched=batched, reentrant=reentrant,
                                 **options)
    return assert_report(report, rtol=rtol, fd_rtol=fd_rtol, atol=atol)


def assert_grad(f, *args, key=None, fd_rtol=None, atol: float = 0.0, **options):
    """Check any function's jax.vjp against finite differences (`gradcheck.check_grad`)."""
    __tracebackhide__ = True
    return assert_report(gradcheck.check_grad(f, *args, key=key, **options), fd_rtol=fd_rtol, atol=atol)


def check_grads(f, args, order: int = 1, modes=("rev",), atol=None, rtol=None, eps=None) -> None:
    """`jax.test_util.check_grads` with jaxnets' checker underneath (order 1): raises AssertionError naming the
    argument, leaf and index. modes: "rev" and/or "fwd" (JAX's vjp is the transpose of the jvp, so one reverse
    check covers a custom_jvp rule too); rtol: the finite-difference tolerance (default 1e-6, float64, not scaled
    by the array's size); atol: a max abs error that passes; eps: the relative step (default 1e-5)."""
    __tracebackhide__ = True
    if order != 1:
        raise NotImplementedError(f"check_grads(order={order!r}): jaxnets checks first derivatives; for higher orders "
                                  "use jax.test_util.check_grads")
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unknown = [m for m in modes if m not in ("fwd", "rev")]
    if unknown or not modes:
        raise ValueError(f"check_grads(modes): 'fwd' and/or 'rev', got {modes!r}")
    assert_grad(f, *args, fd_rtol=rtol, atol=0.0 if atol is None else atol, **({} if eps is None else {"step": eps}))
