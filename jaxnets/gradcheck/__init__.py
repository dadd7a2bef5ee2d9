"""Gradient verification: the hand-written backward against `jax.vjp` and float64 finite differences.

    report = gradcheck.check_layer(MyLayer(), (8,), key=jax.random.key(0))   # a layer alone: dparams and dx
    report = gradcheck.check_model(model, loss, params, state, x, y, ctx)    # the model and every child in place
    report = gradcheck.compare(model, loss, params, state, x, y, ctx)        # the model's own gradients
    print(report)            # one row per (layer, leaf), leaf a parameter path or "input"
    report.assert_close()    # AssertionError whose first line names the layer and leaf to look at

Modules: `checks` (the three checks), `report` (Row, Report, the error rule and tolerances), `differences`
(per-coordinate and directional finite differences). Writing and testing your own layer: docs/custom-layers.md.
"""
from jaxnets.gradcheck.checks import COORDINATE_LIMIT, check_layer, check_model, compare
from jaxnets.gradcheck.differences import (as_float64, directional_differences, finite_differences, project,
                                           random_directions)
from jaxnets.gradcheck.report import DEFAULT_FD_RTOL, DEFAULT_RTOL, FLOOR, Report, Row, default_rtol

__all__ = ["check_layer", "check_model", "compare", "Report", "Row", "finite_differences", "directional_differences",
           "random_directions", "project", "as_float64", "default_rtol", "DEFAULT_RTOL", "DEFAULT_FD_RTOL", "FLOOR",
           "COORDINATE_LIMIT"]
