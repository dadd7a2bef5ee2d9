"""`compare`, `check_layer`, `check_model`: the hand-written backward against `jax.vjp` and finite differences.

    report = check_layer(LeakyRelu(0.01), (8,), key=jax.random.key(0))            # one layer: dparams and dx
    report = check_model(model, loss, params, state, x, y, Ctx(train=True))         # the model and every child
    report = compare(model, loss, params, state, x, y, Ctx(train=True))             # the model only
    print(report); report.assert_close()

Each check computes, for one layer (or the whole model with its loss): the manual gradients (the layer's
`backward`), the autodiff ones (`jax.vjp` of the same `forward`), both again in float64 when the inputs are not
float64, and float64 central finite differences of the scalar ⟨dy, forward(params, x)⟩ (of the cost, for the
model) — per coordinate when the check has at most `COORDINATE_LIMIT` entries (params and input together), else
along `directions` random unit directions per leaf (cost: 2·directions forward passes per leaf, whatever its
size; the cost of a 1.8M-parameter MLP is measured in `check_model`). `finite_diff` selects "auto", "coordinates",
"directions" or False (none).

`check_model` checks every child of the model *in place*: it runs the model once with a probe added to every
layer's output, so one `jax.grad` gives the true cotangent arriving at each layer and the forward records the
activations (and PRNG key) each layer receives; each layer is then checked at exactly those. A layer with a
wrong backward fails there, while the layers around it pass: the report blames it, not a layer below it.
Combinators (any layer with `children` and `rebuild`, such as `serial`) are walked down to their leaves, and
checked themselves too (a wrong routing of cotangents fails at the combinator while its children pass).

Points of non-differentiability. The activations a model really produces can sit exactly on a kink or a tie:
ReLU outputs are exact zeros, so a max-pooling window of four zeros has four maxima (any split of the gradient
among them is a valid subgradient: jaxnets gives it to the first, jax.grad shares it) and finite differences
across a tie measure neither. When a layer fails in place at the recorded input, it is checked again at a nearby
input, x + 10⁻³·rms(x)·N(0, 1) (same params, state, key and cotangent); if it passes there, the recorded point was
a tie, not a bug, and the rows come from the nearby input with the note "nearby input". A backward that is wrong
fails at both points.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import gradients
from jaxnets import nodes
from jaxnets.core import Ctx, Layer
from jaxnets.gradcheck import differences
from jaxnets.gradcheck.report import Report, Row, floor

COORDINATE_LIMIT = 4096
_MODES = ("auto", "coordinates", "directions")


def _mode(finite_diff, size: int):
    if finite_diff is False or finite_diff is None:
        return None
    if finite_diff is True:
        finite_diff = "auto"
    if finite_diff not in _MODES:
        raise ValueError(f"finite_diff must be True/'auto', 'coordinates', 'directions' or False, got {finite_diff!r}")
    if finite_diff == "auto":
        return "coordinates" if size <= COORDINATE_LIMIT else "directions"
    return finite_diff


def _dtype_name(tree) -> str:
    floats = [a.dtype for a in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating)]
    return str(floats[0]) if floats else "float32"


def _path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def _numpy(tree):
    return [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(tree)]


def _coordinate_error(a, b, floor):
    if a.size == 0:
        return 0.0, 0.0
    abs_err = float(np.max(np.abs(a - b)))
    denom = max(float(np.max(np.abs(a))), float(np.max(np.abs(b)))) + floor
    return abs_err, (abs_err / denom if denom > 0 else 0.0)


def _directional_error(projected, estimate, norm, floor):
    abs_err = float(np.max(np.abs(projected - estimate))) if projected.size else 0.0
    denom = norm + floor
    return abs_err, (abs_err / denom if denom > 0 else 0.0)


# ------------------------------------------------------------------------------- compiled programs, memoised
# Every program below is built from hashable statics (layers, losses, penalties, the train flag, the step) and
# takes every array as an argument, so checking the same model again with the same shapes reuses its compiled
# programs instead of compiling closures over the new call's arrays.
@functools.lru_cache(maxsize=256)
def _memo(build, statics):
    return build(*statics)


def _built(build, *statics):
    """build(*statics), memoised when the statics can be hashed (otherwise built afresh, as correct but slower)."""
    try:
        return _memo(build, statics)
    except TypeError:
        return build(*statics)


def _coordinate_fd(fd_fn, step):
    """jit of (p, *extra) -> per-coordinate central differences of q -> fd_fn(q, *extra) at p."""
    return jax.jit(lambda p, *extra: differences.finite_differences(lambda q: fd_fn(q, *extra), p, step=step))


def _directional_fd(fd_fn, step):
    """jit of (p, d, gm, ga, *extra) -> (directional differences along d, gm and ga projected on d)."""
    def estimate(p, d, gm, ga, *extra):
        return (differences.directional_differences(lambda q: fd_fn(q, *extra), p, d, step=step),
                differences.project(gm, d), differences.project(ga, d))

    return jax.jit(estimate)


def _rows(check, labels, manual, auto, mode=None, fd_fn=None, point64=None, man64=None, auto64=None, *,
          fd_extra=(), key=None, directions=4, step=1e-5):
    """One Row per leaf of the gradient trees. labels[i] = (layer, where, leaf) of leaf i in flattening order.
    The finite differences are those of q -> fd_fn(q, *fd_extra) at point64 (fd_fn: a stable function)."""
    low = floor(_dtype_name(manual))
    m, a = _numpy(manual), _numpy(auto)
    scale = max((float(np.max(np.abs(v))) for v in a if v.size), default=0.0)
    columns = [[_coordinate_error(mi, ai, low * scale) for mi, ai in zip(m, a)]]
    if mode is not None:
        m64, a64 = _numpy(man64), _numpy(auto64)
        if mode == "coordinates":
            fd = _numpy(_built(_coordinate_fd, fd_fn, step)(point64, *fd_extra))
            scale64 = max((float(np.max(np.abs(v))) for v in a64 if v.size), default=0.0)
            columns += [[_coordinate_error(g, f, low * scale64) for g, f in zip(gs, fd)] for gs in (m64, a64)]
        else:
            dirs = differences.random_directions(jax.random.key(0) if key is None else key, point64, directions)
            estimate = _built(_directional_fd, fd_fn, step)
            fd, pm, pa = (_numpy(t) for t in estimate(point64, dirs, man64, auto64, *fd_extra))
            norms = [float(np.linalg.norm(v)) for v in a64]
            norm_floor = low * max(norms, default=0.0)
            columns += [[_directional_error(p, f, n, norm_floor) for p, f, n in zip(ps, fd, norms)]
                        for ps in (pm, pa)]
    else:
        columns += [[None] * len(m)] * 2
    shapes = [tuple(np.shape(v)) for v in m]
    return [Row(check, layer, where, leaf, shape, ma, mf, af)
            for (layer, where, leaf), shape, ma, mf, af in zip(labels, shapes, *columns)]


def _fd_label(mode, directions):
    return None if mode is None else ("coordinates" if mode == "coordinates" else f"{directions} directions")


# ---------------------------------------------------------------------------------------------- one layer
def _layer_manual(layer: Layer, train: bool):
    """jit of (params, state, x, dy, key) -> the layer's hand-written (dparams, dx)."""
    def manual(p, s, x_, dy_, key):
        _, _, cache = layer.forward(p, s, x_, Ctx(train, key))
        return layer.backward(p, cache, dy_)

    return jax.jit(manual)


def _layer_autodiff(layer: Layer, train: bool):
    """jit of (params, state, x, dy, key) -> `jax.vjp` of the layer's forward applied to dy."""
    def autodiff(p, s, x_, dy_, key):
        _, vjp = jax.vjp(lambda p_, xx: layer.forward(p_, s, xx, Ctx(train, key))[0], p, x_)
        return vjp(dy_)

    return jax.jit(autodiff)


def _layer_probe(layer: Layer, train: bool):
    """((params, x), state, dy, key) -> ⟨dy, forward(params, x)⟩: the scalar whose finite differences are taken."""
    def probe(px, s, dy, key):
        y, _, _ = layer.forward(px[0], s, px[1], Ctx(train, key))
        return sum(jnp.sum(a * b) for a, b in zip(jax.tree_util.tree_leaves(y), jax.tree_util.tree_leaves(dy)))

    return probe


def _layer_rows(check, layer: Layer, where, params, state, x, ctx, dy, *, finite_diff, directions, step, key):
    """Rows for `layer` at (params, state, x, ctx) with output cotangent dy: each param leaf and the input."""
    train = bool(ctx.train)
    manual, autodiff = _built(_layer_manual, layer, train), _built(_layer_autodiff, layer, train)
    g_man = manual(params, state, x, dy, ctx.key)
    g_auto = autodiff(params, state, x, dy, ctx.key)
    labels = [(layer.name, where, _path_str(path)) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    labels += [(layer.name, where, "/".join(["input"] + ([_path_str(path)] if path else [])))
               for path, _ in jax.tree_util.tree_leaves_with_path(x)]
    size = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves((params, x)))
    mode = _mode(finite_diff, size)
    if mode is None:
        return _rows(check, labels, g_man, g_auto), mode
    with jax.enable_x64(True):
        p64, s64, x64, dy64 = (differences.as_float64(t) for t in (params, state, x, dy))
        if _dtype_name((params, x)) == "float64":
            m64, a64 = g_man, g_auto
        else:
            m64, a64 = manual(p64, s64, x64, dy64, ctx.key), autodiff(p64, s64, x64, dy64, ctx.key)
        rows = _rows(check, labels, g_man, g_auto, mode, _built(_layer_probe, layer, train), (p64, x64), m64, a64,
                     fd_extra=(s64, dy64, ctx.key), key=key, directions=directions, step=step)
    return rows, mode


def check_layer(layer: Layer, input_shape, *, key, batch_size: int = 4, train: bool = True, params=None, state=None,
                finite_diff="auto", directions: int = 4, step: float = 1e-5) -> Report:
    """Check one layer's backward alone, in float64: dparams and dx against `jax.vjp` and finite differences.

    input_shape: per-example shape (no batch axis); key: initialises the layer (unless `params`/`state` are
    given), draws the input x (batch_size, *input_shape) ~ N(0, 1), the output cotangent dy ~ N(0, 1) and the
    layer's own key (dropout masks); train: training mode (batch statistics, dropout) or evaluation mode.
    Returns a `Report` with one "layer" row per parameter leaf and one for the input.
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"check_layer(layer): a jaxnets Layer, got {type(layer).__name__}")
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    input_shape = tuple(input_shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape):
        raise ValueError(f"check_layer({layer.name}): input_shape must be positive ints without the batch axis, got "
                         f"{input_shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"check_layer({layer.name}): batch_size must be a positive int, got {batch_size!r}")
    k_init, k_x, k_dy, k_ctx, k_dir = jax.random.split(key, 5)
    with jax.enable_x64(True):
        if params is None or state is None:
            _, p0, s0 = layer.init(k_init, input_shape)
            params = p0 if params is None else params
            state = s0 if state is None else state
        params, state = differences.as_float64(params), differences.as_float64(state)
        x = jax.random.normal(k_x, (batch_size,) + input_shape, jnp.float64)
        ctx = Ctx(bool(train), k_ctx)
        y = jax.eval_shape(lambda p, s, xx: layer.forward(p, s, xx, ctx)[0], params, state, x)
        dy = jax.random.normal(k_dy, y.shape, jnp.float64)
        rows, mode = _layer_rows("layer", layer, "", params, state, x, ctx, dy, finite_diff=finite_diff,
                                 directions=directions, step=step, key=k_dir)
    return Report(tuple(rows), "float64", _fd_label(mode, directions))


# ---------------------------------------------------------------------------------------------- the model
def _owner(model: Layer, path) -> tuple[str, str, str]:
    """(layer name, where, leaf) of a params path: the deepest child the path walks into."""
    layer, where, rest = model, [], list(path)
    while rest and layer.children and getattr(rest[0], "idx", None) is not None and rest[0].idx < len(layer.children):
        layer = layer.children[rest[0].idx]
        where.append(str(rest.pop(0).idx))
    return layer.name, "/".join(where), _path_str(rest) or "(all)"


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
        if policy is None:
            outputs, _, _ = model.forward(p, s, x_, Ctx(train, key))
            return gradients.penalised(loss.value(outputs, y_), p, penalty)
        low = gradients.cast_floats
        outputs, _, _ = model.forward(low(p, policy.compute_dtype), s, low(x_, policy.compute_dtype), Ctx(train, key))
        return gradients.penalised(loss.value(outputs.astype(jnp.float32), y_), p, penalty)

    return cost


def _model_autodiff(model, loss, penalty, train, policy):
    """jit of (params, state, x, y, key) -> `jax.grad` of the same cost, (dparams, dx)."""
    cost = _built(_model_cost, model, loss, penalty, train, policy)
    return jax.jit(lambda p, s, x_, y_, key: jax.grad(lambda px: cost(px, s, y_, key))((p, x_)))


def _model_rows(model, loss, params, state, x, y, ctx, penalty, finite_diff, directions, step, key, policy=None):
    statics = (model, loss, penalty, bool(ctx.train))
    g_man = _built(_model_manual, *statics, policy)(params, state, x, y, ctx.key)
    g_auto = _built(_model_autodiff, *statics, policy)(params, state, x, y, ctx.key)
    if policy is not None:   # the gradients come back in the master dtype; the check's precision is the compute one
        g_man, g_auto = (gradients.cast_floats(g, policy.compute_dtype) for g in (g_man, g_auto))
    labels = [_owner(model, path) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    labels.append((model.name, "", "input"))
    mode = _mode(finite_diff, sum(int(np.size(a)) for a in jax.tree_util.tree_leaves((params, x))))
    if mode is None:
        return _rows("model", labels, g_man, g_auto), mode
    with jax.enable_x64(True):
        p64, s64, x64, y64 = (differences.as_float64(t) for t in (params, state, x, y))
        if _dtype_name((params, x)) == "float64":
            m64, a64 = g_man, g_auto
        else:
            m64 = _built(_model_manual, *statics, None)(p64, s64, x64, y64, ctx.key)
            a64 = _built(_model_autodiff, *statics, None)(p64, s64, x64, y64, ctx.key)
        rows = _rows("model", labels, g_man, g_auto, mode, _built(_model_cost, *statics, None), (p64, x64), m64, a64,
                     fd_extra=(s64, y64, ctx.key), key=key, directions=directions, step=step)
    return rows, mode


def compare(model: Layer, loss, params, state, x, y, ctx: Ctx = Ctx(train=True), penalty=None, *,
            finite_diff="auto", step: float = 1e-5, directions: int = 4, key=None, compute_dtype=None) -> Report:
    """The whole model's gradient of the cost (loss + penalty) from the three witnesses, per parameter leaf and
    for the input x: "model" rows (see `check_model` for the per-layer blame). manual~autodiff is computed in
    the params' dtype, or under mixed precision with `compute_dtype` (e.g. jnp.bfloat16: float32 master params,
    forward and backward in bfloat16, as `fit(compute_dtype=...)` trains; the tolerance and floor then follow
    the compute dtype); the finite-difference columns always in float64."""
    from jaxnets.training.config import Policy

    policy = None if compute_dtype is None else Policy(jnp.dtype(compute_dtype).type)
    rows, mode = _model_rows(model, loss, params, state, x, y, ctx, penalty, finite_diff, directions, step, key,
                             policy)
    dtype = _dtype_name((params, x)) if policy is None else policy.name
    return Report(tuple(rows), dtype, _fd_label(mode, directions))


def check_model(model: Layer, loss, params, state, x, y, ctx: Ctx = Ctx(train=True), penalty=None, *,
                finite_diff="auto", step: float = 1e-5, directions: int = 4, key=None) -> Report:
    """The whole model (as `compare`), its loss's output gradient and penalty, and every child layer in place.

    Each child is checked at the activations and PRNG key the model feeds it and the true output cotangent
    (from `jax.grad` of the cost through the model), by the same rule as `check_layer`; `report.assert_close()`
    then names the innermost layer whose backward is wrong. Rows: "model" (per parameter leaf and the input),
    "loss", "penalty", then "in place" rows for each child in pre-order (`where` = its child-index path).
    Measured cost (`benchmarks/gradcheck_cost.py`; 2-core CPU, jax 0.10.2, load 0.3–0.8): an MLP [784, 1000,
    1000, 10] (1.8M parameters, float32, batch 32, directional differences in 4 directions) takes 10–14 s on the
    first call (8–11 s of it compiling 84 programs) and 0.9–1.2 s on later calls of the same model with inputs of
    the same shapes, which compile nothing (the programs are memoised on the model's layers, loss and penalty;
    see "compiled programs" below).
    """
    if not isinstance(model, Layer):
        raise TypeError(f"check_model(model): a jaxnets Layer, got {type(model).__name__}")
    rows, mode = _model_rows(model, loss, params, state, x, y, ctx, penalty, finite_diff, directions, step, key)
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
    dtype = _dtype_name((params, x))
    for path, layer in nodes.nodes(model)[1:]:
        x_in, key_in = records[path]
        args = ("in place", layer, "/".join(map(str, path)), nodes.subtree(params, path),
                nodes.subtree(state, path))
        node_ctx, dy = Ctx(ctx.train, key_in), cotangents[path]
        node_rows, _ = _layer_rows(*args, x_in, node_ctx, dy, **fd_args)
        if Report(tuple(node_rows), dtype, None).failures():
            nearby_rows, _ = _layer_rows(*args, _nearby(x_in), node_ctx, dy, **fd_args)
            if not Report(tuple(nearby_rows), dtype, None).failures():
                node_rows = [r._replace(note="nearby input") for r in nearby_rows]
        rows += node_rows
    return Report(tuple(rows), dtype, _fd_label(mode, directions))


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


def _loss_rows(loss, outputs, y, fd_args):
    name = getattr(loss, "name", "loss")
    g_man = loss.grad(outputs, y)
    g_auto = jax.grad(lambda o: loss.value(o, y))(outputs)
    mode = _mode(fd_args["finite_diff"], int(np.size(outputs)))
    labels = [(name, "", "outputs")]
    if mode is None:
        return _rows("loss", labels, g_man, g_auto)
    with jax.enable_x64(True):
        o64, y64 = differences.as_float64(outputs), differences.as_float64(y)
        m64, a64 = loss.grad(o64, y64), jax.grad(lambda o: loss.value(o, y64))(o64)
        return _rows("loss", labels, g_man, g_auto, mode, loss.value, o64, m64, a64, fd_extra=(y64,),
                     key=fd_args["key"], directions=fd_args["directions"], step=fd_args["step"])


def _penalty_rows(penalty, params, fd_args):
    name = getattr(penalty, "name", "penalty")
    labels = [(name, "", _path_str(path)) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    g_man, g_auto = penalty.grad(params), jax.grad(penalty.value)(params)
    mode = _mode(fd_args["finite_diff"], sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params)))
    if mode is None:
        return _rows("penalty", labels, g_man, g_auto)
    with jax.enable_x64(True):
        p64 = differences.as_float64(params)
        return _rows("penalty", labels, g_man, g_auto, mode, penalty.value, p64, penalty.grad(p64),
                     jax.grad(penalty.value)(p64), key=fd_args["key"], directions=fd_args["directions"],
                     step=fd_args["step"])
