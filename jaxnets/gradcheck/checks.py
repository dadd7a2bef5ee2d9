"""`compare`, `check_model` (and `check_layer`, from `one_layer`): the hand-written backward against `jax.vjp` and
finite differences.

    report = check_layer(LeakyRelu(0.01), (8,), key=jax.random.key(0))            # one layer: dparams and dx
    report = check_model(model, loss, params, state, x, y, Ctx(train=True))         # the model and every child
    report = compare(model, loss, params, state, x, y, Ctx(train=True))             # the model only
    print(report); report.assert_close()

Structure first. Before any number is compared, every backward involved is traced (`jax.eval_shape`, nothing
compiled) and what it returns is compared with (params, x): tree, shapes, floating dtypes, the pair itself (see
`structure`). A mismatch gives a failing report with no rows whose first problem names the layer and what is
wrong; the numbers of a backward of the wrong shape would mean nothing.

Then each check computes, for one layer (or the whole model with its loss): the manual gradients (the layer's
`backward`), the autodiff ones (`jax.vjp` of the same `forward`), both again in float64 when the inputs are not
float64, and float64 finite differences of the scalar ⟨dy, forward(params, x)⟩ (of the cost, for the model) —
per coordinate when the check has at most `COORDINATE_LIMIT` entries (params and input together), else along
`directions` random unit directions per leaf (cost: 4·directions forward passes per leaf, whatever its size; a
failing large leaf is re-checked coordinate by coordinate on at most `COORDINATE_LIMIT` entries to name the
failing one; the cost of a 1.8M-parameter MLP is measured in `check_model`). `finite_diff` selects "auto",
"coordinates", "directions" or False (none). The step is relative, step·rms(leaf), raised where round-off would
spoil it (`estimates.smallest_step`), so inputs of size 1e6 or 1e-6 are probed at their own scale. Each failing
row names its worst entry (`Row.entries`).

Points of non-differentiability. The activations a model really produces can sit exactly on a kink or a tie:
ReLU outputs are exact zeros, so a max-pooling window of four zeros has four maxima (any split of the gradient
among them is a valid subgradient: jaxnets gives it to the first, jax.grad shares it), quantised pixels tie in
flat regions, and a backward may take relu′(0) = 1. Finite differences across a kink measure neither side, so the
checks take one-sided differences too and accept, where they disagree, any value inside their bracket (and two
different values when both are inside it): see `kinks`. This applies to every row, the model's included, and the
report says where (`Row.kinks`, a header line). A value outside the bracket fails. Without finite differences
(`finite_diff=False`) there is no bracket: an in-place layer that fails at the recorded input is then checked
again at a nearby input, x + 10⁻³·rms(x)·N(0, 1), and its rows say "nearby input" when it passes there.

Options torch.autograd.gradcheck users expect (`check_layer`): `batched=True` checks that the backward under
`jax.vmap` over 3 output cotangents equals a loop over them; `reentrant=True` that two eager backward calls give
identical results; gradient dtypes equal to the params' are part of the structure check, always.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import gradients
from jaxnets import nodes
from jaxnets.core import Ctx, Layer
from jaxnets.gradcheck import arguments, differences, structure
from jaxnets.gradcheck.estimates import finite_differences_of
from jaxnets.gradcheck.memo import built as _built
from jaxnets.gradcheck.report import COLUMNS, Report
from jaxnets.gradcheck.rows import build_rows
from jaxnets.gradcheck.common import (AUTODIFF_LOSS, COORDINATE_LIMIT, autodiff_notes, check_mode, dtype_name,
                                     fd_label, host, options, path_str, size_of)
from jaxnets.gradcheck.one_layer import check_layer, layer_rows

__all__ = ["check_layer", "check_model", "compare", "COORDINATE_LIMIT"]


# ---------------------------------------------------------------------------------------------- the model
def _owner(model: Layer, path) -> tuple[str, str, str]:
    """(layer name, where, leaf) of a params path: the deepest child the path walks into."""
    layer, where, rest = model, [], list(path)
    while rest and layer.children and getattr(rest[0], "idx", None) is not None and rest[0].idx < len(layer.children):
        layer = layer.children[rest[0].idx]
        where.append(str(rest.pop(0).idx))
    return layer.name, "/".join(where), path_str(rest) or "(all)"


def _model_manual(model, loss, penalty, train, policy):
    """jit of (params, state, x, y, key) -> the hand-written (dparams, dx) of the cost (loss + penalty)."""
    def manual(p, s, x_, y_, key):
        _, _, _, dp, dx = gradients.backprop(model, loss, penalty, p, s, x_, y_, Ctx(train, key), policy)
        return dp, dx

    return jax.jit(manual)


def _model_cost(model, loss, penalty, train, policy):
    """((params, x), state, y, key) -> the cost; under a policy, forward in its compute dtype, loss in float32."""
    def cost(px, s, y_, key):
        p, x_ = px
        if policy is not None:
            p, x_ = gradients.cast_floats(p, policy.compute_dtype), gradients.cast_floats(x_, policy.compute_dtype)
        out, _, _ = model.forward(p, s, x_, Ctx(train, key))
        if policy is not None:
            out = out.astype(jnp.float32)
        return gradients.penalised(loss.value(out, y_), px[0], penalty)

    return cost


def _model_autodiff(model, loss, penalty, train, policy):
    """jit of (params, state, x, y, key) -> `jax.grad` of the same cost, (dparams, dx)."""
    cost = _built(_model_cost, model, loss, penalty, train, policy)
    return jax.jit(lambda p, s, x_, y_, key: jax.grad(lambda px: cost(px, s, y_, key))((p, x_)))


def _model_rows(model, loss, params, state, x, y, ctx, penalty, mode, directions, step, key, policy=None):
    statics = (model, loss, penalty, bool(ctx.train))
    g_man = _built(_model_manual, *statics, policy)(params, state, x, y, ctx.key)
    g_auto = _built(_model_autodiff, *statics, policy)(params, state, x, y, ctx.key)
    if policy is not None:   # the gradients come back in the master dtype; the check's precision is the compute one
        g_man, g_auto = (gradients.cast_floats(g, policy.compute_dtype) for g in (g_man, g_auto))
    labels = [_owner(model, path) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    labels.append((model.name, "", "input"))
    dtype = dtype_name((params, x)) if policy is None else policy.name
    if mode is None:
        return build_rows("model", labels, host(g_man), host(g_auto), dtype)
    with jax.enable_x64(True):
        p64, s64, x64, y64 = (differences.as_float64(t) for t in (params, state, x, y))
        if dtype_name((params, x)) == "float64" and policy is None:
            m64, a64 = g_man, g_auto
        else:
            m64 = _built(_model_manual, *statics, None)(p64, s64, x64, y64, ctx.key)
            a64 = _built(_model_autodiff, *statics, None)(p64, s64, x64, y64, ctx.key)
        fd = finite_differences_of(_built(_model_cost, *statics, None), (p64, x64), (s64, y64, ctx.key), m64, a64,
                                   mode, directions=directions, step=step, key=key)
        return build_rows("model", labels, host(g_man), host(g_auto), dtype, fd)


def _model_arguments(where, model, loss, ctx, penalty, finite_diff, directions, step, key):
    if not isinstance(model, Layer):
        raise TypeError(f"{where}(model): a jaxnets Layer, got {type(model).__name__}")
    loss = arguments.loss(loss, where)
    penalty = arguments.penalty(penalty, where)
    ctx = arguments.ctx(ctx, where)
    directions, step, key = options(where, finite_diff, directions, step, key)
    return loss, penalty, ctx, directions, step, key


def _loss_problems(loss, model, params, state, x, y, ctx) -> list:
    """The loss's gradient must be shaped like the model's outputs (traced, not run)."""
    out = jax.eval_shape(lambda p, s, x_: model.forward(p, s, x_, ctx)[0], params, state, x)
    try:
        got = jax.eval_shape(loss.grad, out, y)
    except Exception as err:   # noqa: BLE001 - reported, not raised
        return [f"wrong gradient structure from loss {getattr(loss, 'name', 'loss')}: grad raised "
                f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"]
    return [f"wrong gradient structure from loss {getattr(loss, 'name', 'loss')}: {p}; grad(outputs, y) must be "
            "shaped like the outputs" for p in structure.tree_problems(out, got, "grad(outputs, y)", "outputs")]


def compare(model: Layer, loss, params, state, x, y, ctx: Ctx = Ctx(train=True), penalty=None, *,
            finite_diff="auto", step: float = 1e-5, directions: int = 4, key=None, compute_dtype=None) -> Report:
    """The whole model's gradient of the cost (loss + penalty) from the three witnesses, per parameter leaf and
    for the input x: "model" rows (see `check_model` for the per-layer blame). manual~autodiff is computed in
    the params' dtype, or under mixed precision with `compute_dtype` (a floating dtype, e.g. jnp.bfloat16: float32
    master params, forward and backward in bfloat16, as `fit(compute_dtype=...)` trains; the tolerance and floor
    then follow the compute dtype); the finite-difference columns always in float64. loss: a Loss or its name;
    penalty: None, a Penalty or its name ("l2(0.1, 1000)"). Structure problems of any layer's backward (see
    `structure.model_problems`) give a failing report without rows."""
    from jaxnets.training.config import Policy

    loss, penalty, ctx, directions, step, key = _model_arguments("compare", model, loss, ctx, penalty, finite_diff,
                                                                 directions, step, key)
    compute = arguments.compute_dtype(compute_dtype, "compare")
    policy = None if compute is None else Policy(compute.type)
    dtype = dtype_name((params, x)) if policy is None else policy.name
    problems = structure.model_problems(model, params, state, x, ctx) + _loss_problems(loss, model, params, state,
                                                                                       x, y, ctx)
    if problems:
        return Report((), dtype, None, problems=tuple(problems))
    mode = check_mode(finite_diff, size_of((params, x)), "compare")
    rows = _model_rows(model, loss, params, state, x, y, ctx, penalty, mode, directions, step, key, policy)
    return Report(tuple(rows), dtype, fd_label(mode, directions), notes=tuple(autodiff_notes(model, loss)))


def check_model(model: Layer, loss, params, state, x, y, ctx: Ctx = Ctx(train=True), penalty=None, *,
                finite_diff="auto", step: float = 1e-5, directions: int = 4, key=None) -> Report:
    """The whole model (as `compare`), its loss's output gradient and penalty, and every child layer in place.

    Each child is checked at the activations and PRNG key the model feeds it and the true output cotangent
    (from `jax.grad` of the cost through the model), by the same rule as `check_layer`; `report.assert_close()`
    then names the innermost layer whose backward is wrong. Rows: "model" (per parameter leaf and the input),
    "loss", "penalty", then "in place" rows for each child in pre-order (`where` = its child-index path).
    Structure first: a child whose backward returns the wrong tree, shape, dtype or count fails the report with
    no rows, naming the child and its position (`structure.model_problems`, which `fit` runs too).
    Measured cost (`benchmarks/gradcheck_cost.py`; 2-core CPU, jax 0.10.2): an MLP [784, 1000, 1000, 10] (1.8M
    parameters, float32, batch 32, directional differences in 4 directions) took 10–14 s on the first call (8–11 s
    of it compiling) and 0.9–1.2 s on later calls at load 0.3–0.8 with the checker before the one-sided
    differences; at load 7 this checker takes 33–39 s and 5.9–6.5 s, the previous one 36 s and 3.6 s (later calls
    of the same model with inputs of the same shapes compile nothing: the programs are memoised on the model's
    layers, loss and penalty; see `memo`).
    """
    loss, penalty, ctx, directions, step, key = _model_arguments("check_model", model, loss, ctx, penalty,
                                                                 finite_diff, directions, step, key)
    dtype = dtype_name((params, x))
    problems = structure.model_problems(model, params, state, x, ctx) + _loss_problems(loss, model, params, state,
                                                                                       x, y, ctx)
    if problems:
        return Report((), dtype, None, problems=tuple(problems))
    mode = check_mode(finite_diff, size_of((params, x)), "check_model")
    rows = _model_rows(model, loss, params, state, x, y, ctx, penalty, mode, directions, step, key)
    fd_args = dict(finite_diff=finite_diff, directions=directions, step=step, key=key)
    outputs = _built(_model_outputs, model, bool(ctx.train))(params, state, x, ctx.key)
    rows += _loss_rows(loss, outputs, y, fd_args)
    if penalty is not None:
        rows += _penalty_rows(penalty, params, fd_args)

    shapes = jax.eval_shape(lambda p: nodes.record(model, p, state, x, ctx)[1], params)
    probes = {path: jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), rec.y)
              for path, rec in shapes.items()}

    cotangents, records = _built(_in_place_cotangents, model, loss, bool(ctx.train))(probes, params, state, x, y,
                                                                                    ctx.key)
    for path, layer in nodes.nodes(model)[1:]:
        x_in, key_in = records[path]
        args = ("in place", layer, "/".join(map(str, path)), nodes.subtree(params, path),
                nodes.subtree(state, path))
        node_ctx, dy = Ctx(ctx.train, key_in), cotangents[path]
        node_mode = check_mode(finite_diff, size_of((args[3], x_in)))
        node_rows = layer_rows(*args, x_in, node_ctx, dy, mode=node_mode, directions=directions, step=step, key=key)
        if node_mode is None and Report(tuple(node_rows), dtype, None).failures():
            nearby_rows = layer_rows(*args, _nearby(x_in), node_ctx, dy, mode=None, directions=directions,
                                      step=step, key=key)
            if not Report(tuple(nearby_rows), dtype, None).failures():
                node_rows = [r._replace(note="nearby input") for r in nearby_rows]
        rows += node_rows
    rows, notes = _coupled_kinks(rows, dtype)
    return Report(tuple(rows), dtype, fd_label(mode, directions), notes=tuple(autodiff_notes(model, loss) + notes))


def _coupled_kinks(rows, dtype):
    """(rows, notes): when every layer passes in place, a failing "model" row whose failure lies on kink entries
    only is judged on its other entries (`Row.off_kinks`). A kink that several units share (one input feeding
    several ReLUs at 0, a conv weight moving many tied pooling windows) is not one-dimensional: the chain rule of
    valid one-sided choices per unit (relu′(0) = 1, a tie given to the first maximum) can leave the bracket of
    the composition, while each layer's choice is inside its own bracket, which the in-place checks verified."""
    failing = Report(tuple(rows), dtype, None).failures()
    if any(r.check == "in place" for r, _, _ in failing):
        return rows, []
    out, excused = [], []
    for r in rows:
        columns = {c for f, c, _ in failing if f is r}
        if r.check == "model" and r.kinks and columns:
            fix = {c: r.off_kinks[i] for i, c in enumerate(COLUMNS) if c in columns and r.off_kinks[i] is not None}
            r = r._replace(**fix, note="coupled kinks")
            excused.append(r.path)
        out.append(r)
    notes = [f"coupled kinks: model rows {', '.join(excused)} judged off the kink entries, where the chain rule of "
             "each layer's valid one-sided choice may leave the bracket of the whole model; every layer passes in "
             "place"] if excused else []
    return out, notes


def _model_outputs(model, train):
    """jit of (params, state, x, key) -> the model's outputs."""
    return jax.jit(lambda p, s, x_, key: model.forward(p, s, x_, Ctx(train, key))[0])


def _in_place_cotangents(model, loss, train):
    """jit of (probes, params, state, x, y, key) -> (the cotangent reaching each layer's output, what each layer
    received: {path: (x, key)}); arrays as arguments, so XLA does not constant-fold the weights."""
    def cost_and_records(probes, p, s, x_, y_, key):
        out, records = nodes.record(model, p, s, x_, Ctx(train, key), probes)
        return loss.value(out, y_), {path: (r.x, r.key) for path, r in records.items()}

    return jax.jit(jax.grad(cost_and_records, has_aux=True))


def _nearby(x):
    """x + 10⁻³·rms(x)·N(0, 1): off the ties and kinks the recorded activations may sit on (fixed key)."""
    rms = jnp.sqrt(jnp.mean(jnp.square(x.astype(jnp.float32)))).astype(x.dtype)
    return x + 1e-3 * jnp.where(rms > 0, rms, 1) * jax.random.normal(jax.random.key(1), x.shape, x.dtype)


def _loss_grad_autodiff(loss):
    return jax.jit(lambda o, y: jax.grad(lambda o_: loss.value(o_, y))(o))


def _loss_rows(loss, outputs, y, fd_args):
    rows = _loss_rows_of(loss, outputs, y, fd_args)
    return [r._replace(note=AUTODIFF_LOSS) for r in rows] if getattr(loss, "autodiff_grad", False) else rows


def _loss_rows_of(loss, outputs, y, fd_args):
    name = getattr(loss, "name", "loss")
    g_man = loss.grad(outputs, y)
    g_auto = _built(_loss_grad_autodiff, loss)(outputs, y)
    mode = check_mode(fd_args["finite_diff"], int(np.size(outputs)))
    labels = [(name, "", "outputs")]
    dtype = dtype_name(outputs)
    if mode is None:
        return build_rows("loss", labels, host(g_man), host(g_auto), dtype)
    with jax.enable_x64(True):
        o64, y64 = differences.as_float64(outputs), differences.as_float64(y)
        m64, a64 = loss.grad(o64, y64), _built(_loss_grad_autodiff, loss)(o64, y64)
        fd = finite_differences_of(loss.value, o64, (y64,), m64, a64, mode, directions=fd_args["directions"],
                                   step=fd_args["step"], key=fd_args["key"])
        return build_rows("loss", labels, host(g_man), host(g_auto), dtype, fd)


def _penalty_rows(penalty, params, fd_args):
    name = getattr(penalty, "name", "penalty")
    labels = [(name, "", path_str(path)) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    g_man, g_auto = penalty.grad(params), jax.grad(penalty.value)(params)
    mode = check_mode(fd_args["finite_diff"], size_of(params))
    dtype = dtype_name(params)
    if mode is None:
        return build_rows("penalty", labels, host(g_man), host(g_auto), dtype)
    with jax.enable_x64(True):
        p64 = differences.as_float64(params)
        fd = finite_differences_of(penalty.value, p64, (), penalty.grad(p64), jax.grad(penalty.value)(p64), mode,
                                   directions=fd_args["directions"], step=fd_args["step"], key=fd_args["key"])
        return build_rows("penalty", labels, host(g_man), host(g_auto), dtype, fd)
