"""Gradient verification: hand-written backward passes and custom JAX rules against `jax.vjp` and float64 finite
differences, structure before numbers, kinks bracketed, the failing index named.

    report = gradcheck.check_layer(MyLayer(), (8,), key=jax.random.key(0))   # a layer alone: dparams and dx
    report = gradcheck.check_model(model, loss, params, state, x, y, ctx)    # the model and every child in place
    report = gradcheck.compare(model, loss, params, state, x, y, ctx)        # the model's own gradients
    report = gradcheck.check_vjp(f, x, w)     # a jax.custom_vjp rule: rule vs autodiff of f.fun vs finite differences
    report = gradcheck.check_grad(f, x, w)    # any function: jax.vjp vs finite differences
    print(report)            # one row per (layer, leaf), leaf a parameter path, "input" or an argument
    report.assert_close()    # AssertionError whose first line names the layer (or argument), leaf and index

Modules, one job each: `checks` (compare, check_model), `one_layer` (check_layer and the rows of one layer),
`common` (what the checks share), `vjp` (check_vjp, check_grad), `structure` (what a backward or rule returns,
against its inputs), `arguments` (the checks' arguments), `differences` (finite-
difference stencils), `kinks` (one-sided differences and the bracket rule), `estimates` (the compiled stencil
programs of one check), `rows` (arrays to rows: errors, worst entries, re-checks), `report` (Row, Report, the
error rule and tolerances), `consistency` (batched and reentrant backward), `memo` (compiled programs kept).
A layer whose backward is autodiff of its forward (`Meta.autodiff_backward`: `layers.from_function`, the
`jaxnets.interop` adapters) or a loss whose gradient is (`Loss.autodiff_grad`: `losses.from_function`) is named in
the report's header and its rows carry a note (`common.AUTODIFF_LAYER`, `AUTODIFF_LOSS`): manual~autodiff is 0
there by construction; `check_layer` refuses such a layer unless `allow_autodiff=True`.
Guides: docs/custom-layers.md (your own layer), docs/custom-vjp.md (your own jax.custom_vjp rule); pytest helpers:
`jaxnets.testing`.
"""
from jaxnets.gradcheck.checks import COORDINATE_LIMIT, check_layer, check_model, compare
from jaxnets.gradcheck.differences import (as_float64, directional_differences, finite_differences, project,
                                           random_directions)
from jaxnets.gradcheck.report import (DEFAULT_FD_RTOL, DEFAULT_RTOL, FD_RTOL, FLOOR, Entry, Report, Row,
                                      default_fd_rtol, default_rtol)
from jaxnets.gradcheck.structure import backward_problems, model_problems
from jaxnets.gradcheck.vjp import check_grad, check_vjp

__all__ = ["check_layer", "check_model", "compare", "check_vjp", "check_grad", "Report", "Row", "Entry",
           "model_problems", "backward_problems", "finite_differences", "directional_differences",
           "random_directions", "project", "as_float64", "default_rtol", "default_fd_rtol", "DEFAULT_RTOL",
           "DEFAULT_FD_RTOL", "FD_RTOL", "FLOOR", "COORDINATE_LIMIT"]
