"""Structure before numbers: does a backward (or a custom_vjp rule) return gradients shaped like its inputs?

    problems = backward_problems(layer, params, x, returned, where="checked alone")
    problems = model_problems(model, params, state, x, ctx)        # every layer in place, no compilation
    problems = cotangent_problems(name, arg_names, args, returned)  # a custom_vjp rule's bwd output

Each returns a list of messages (empty when the structure is right), each a complete first line that names the
layer (or function and argument) and what is wrong: a missing, extra or misnamed leaf ("W" where params has
"w"), None, a container of the wrong kind or length, a shape, an integer dtype, a floating dtype other than the
input's, a wrong count ((dparams, dx, extra) or 3 cotangents for 2 arguments). Nothing is compiled: the shapes
come from `jax.eval_shape`, so `fit` can run `model_problems` before training at the cost of tracing the model.

The rule: `backward(params, cache, dy)` returns the pair (dparams, dx) where dparams has the tree structure of
params (dict keys, tuple lengths, NamedTuple types; a zero gradient is an array of zeros, not None) and every
leaf has the shape and the dtype of its parameter, and dx has the shape and dtype of x. A custom_vjp rule returns
a tuple with one cotangent per differentiable argument, each like its argument; there None stands for a zero
cotangent (JAX's convention), so it is accepted.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nodes
from jaxnets.core import Ctx, Layer

_FIX_LAYER = "backward must return (dparams, dx) with the structure, shapes and floating dtypes of (params, x)"
_FIX_RULE = "the bwd rule must return a tuple with one cotangent per argument, each shaped like its argument"


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype")


def _is_leaf(v) -> bool:
    return v is None or _is_array(v) or isinstance(v, (int, float, complex, bool, np.number))


def _kind(v) -> str:
    """A short description of what `v` is, for messages."""
    if v is None:
        return "None"
    if _is_array(v):
        return f"an array of shape {tuple(v.shape)}"
    if isinstance(v, dict):
        return f"a dict with keys {sorted(map(str, v))}"
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return f"a {type(v).__name__}"
    if isinstance(v, (tuple, list)):
        return f"a {type(v).__name__} of {len(v)}"
    return f"a {type(v).__name__}"


def _dtype(v):
    return jnp.dtype(getattr(v, "dtype", None) or jnp.asarray(v).dtype)


def _shape(v) -> tuple:
    return tuple(getattr(v, "shape", np.shape(v)))


def _leaf_problems(expected, got, label: str, like: str, none_ok: bool) -> list:
    if got is None:
        return [] if none_ok else [f"{label} is None where {like} is an array of shape {_shape(expected)}; return "
                                   "the gradient as an array (of zeros where it is zero)"]
    if not _is_leaf(got) or not (_is_array(got) or np.isscalar(got)):
        return [f"{label} is {_kind(got)} where {like} is an array of shape {_shape(expected)}"]
    out = []
    if _shape(got) != _shape(expected):
        out.append(f"{label} has shape {_shape(got)} but {like} has shape {_shape(expected)}")
    want, have = _dtype(expected), _dtype(got)
    if jnp.issubdtype(want, jnp.inexact):
        if not jnp.issubdtype(have, jnp.inexact):
            out.append(f"{label} has integer dtype {have}; a gradient is floating, like {like} ({want})")
        elif have != want:
            out.append(f"{label} has dtype {have} but {like} is {want}; a gradient has the dtype of what it "
                       "differentiates")
    return out


def _key_name(k) -> str:
    return repr(k)


def tree_problems(expected, got, label: str, like: str, *, none_ok: bool = False) -> list:
    """Messages for every way `got` differs from `expected` in structure, shape or dtype. label/like: how the two
    are named in messages ("dparams", "params"); paths are appended as Python indexing ("dparams['w']").
    none_ok: None stands for zeros (a custom_vjp cotangent)."""
    if _is_array(expected) or np.isscalar(expected):
        return _leaf_problems(expected, got, label, like, none_ok)
    if got is None and none_ok:
        return []
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{label} is {_kind(got)} where {like} is {_kind(expected)}"]
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        out = []
        for k in list(missing):
            twin = next((j for j in extra if str(j).lower() == str(k).lower()), None)
            if twin is None and len(missing) == 1 and len(extra) == 1:
                twin = extra[0]
            if twin is not None:
                out.append(f"{label} names a leaf {_key_name(twin)} where {like} has {_key_name(k)}")
                missing.remove(k)
                extra.remove(twin)
        out += [f"{label} is missing {_key_name(k)} ({like}[{_key_name(k)}] is {_kind(expected[k])}); return "
                f"zeros for a leaf without a gradient" for k in missing]
        out += [f"{label} has an extra leaf {_key_name(k)} that {like} does not have" for k in extra]
        for k in expected:
            if k in got:
                out += tree_problems(expected[k], got[k], f"{label}[{_key_name(k)}]", f"{like}[{_key_name(k)}]",
                                     none_ok=none_ok)
        return out
    if isinstance(expected, (tuple, list)):
        if got is None or not isinstance(got, (tuple, list)) or type(got) is not type(expected):
            return [f"{label} is {_kind(got)} where {like} is {_kind(expected)}"]
        if len(got) != len(expected):
            return [f"{label} has {len(got)} entries where {like} has {len(expected)}"]
        out = []
        for j, (e, g) in enumerate(zip(expected, got)):
            field = getattr(expected, "_fields", None)
            step = f".{field[j]}" if field else f"[{j}]"
            out += tree_problems(e, g, f"{label}{step}", f"{like}{step}", none_ok=none_ok)
        return out
    if expected is None:
        empty = got is None or not jax.tree_util.tree_leaves(got)
        return [] if empty else [f"{label} is {_kind(got)} where {like} is None"]
    # any other pytree node (a registered class): compare the tree structures as JAX sees them
    want, have = jax.tree_util.tree_structure(expected), jax.tree_util.tree_structure(got)
    if want != have:
        return [f"{label} has tree structure {have} where {like} has {want}"]
    out = []
    for (path, e), g in zip(jax.tree_util.tree_leaves_with_path(expected), jax.tree_util.tree_leaves(got)):
        step = jax.tree_util.keystr(path)
        out += _leaf_problems(e, g, f"{label}{step}", f"{like}{step}", none_ok)
    return out


def _where(layer_name: str, where: str) -> str:
    return f"wrong gradient structure from layer {layer_name} ({where})"


def backward_problems(layer, params, x, returned, *, where: str = "checked alone") -> list:
    """Messages for what `layer.backward` returned (`returned`, arrays or `jax.ShapeDtypeStruct`s) against
    (params, x): each "wrong gradient structure from layer NAME (WHERE): what is wrong; the fix". `layer`: a
    Layer or its name; `where`: how the layer was called ("checked alone", "at 1 of the model, checked in place",
    "in fit")."""
    name = layer.name if isinstance(layer, Layer) else str(layer)
    head = _where(name, where)
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        what = (f"a {type(returned).__name__} of {len(returned)} values" if isinstance(returned, (tuple, list))
                else _kind(returned))
        return [f"{head}: backward returns {what}, not the pair (dparams, dx); {_FIX_LAYER}"]
    dparams, dx = returned
    found = tree_problems(params, dparams, "dparams", "params") + tree_problems(x, dx, "dx", "x")
    return [f"{head}: {p}; {_FIX_LAYER}" for p in found]


def _shape_of(tree):
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), _dtype(a)), tree)


def returned_shapes(layer: Layer, params, cache, dy):
    """What `layer.backward(params, cache, dy)` returns, as shapes (traced, not run), or the exception it raised."""
    try:
        return jax.eval_shape(layer.backward, params, cache, dy), None
    except Exception as err:   # noqa: BLE001 - any error of the user's backward is reported, not raised
        return None, err


def _raised(name: str, where: str, err: Exception) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{_where(name, where)}: backward raised {type(err).__name__}: {first}; {_FIX_LAYER}"


def model_problems(model: Layer, params, state, x, ctx: Ctx = Ctx(train=True), *, where: str = "") -> list:
    """Structure problems of every layer of `model`, each checked in place at the input, cache and output cotangent
    shapes the model gives it (leaves first; a combinator only when all its children are sound, so the message
    names the layer at fault). x may be an array or a `jax.ShapeDtypeStruct` (batch axis included). `where`:
    appended to each layer's position ("in fit"). Returns [] when every backward is shaped right."""
    records = jax.eval_shape(lambda p, s, x_: nodes.record(model, p, s, x_, ctx)[1], params, state, x)
    problems: dict = {}
    for path, layer in reversed(nodes.nodes(model)):
        inside = [p for p in problems if p[:len(path)] == path and p != path]
        if inside:
            continue
        rec = records[path]
        position = (f"at {'/'.join(map(str, path))} of the model" if path else "the model itself") + \
            (f", {where}" if where else ", checked in place")
        sub = nodes.subtree(params, path)
        dy = _shape_of(rec.y)
        got, err = returned_shapes(layer, sub, rec.cache, dy)
        found = [_raised(layer.name, position, err)] if err is not None else \
            backward_problems(layer, _shape_of(sub), _shape_of(rec.x), got, where=position)
        if found:
            problems[path] = found
    return [msg for path, _ in nodes.nodes(model) for msg in problems.get(path, [])]


def layer_problems(layer: Layer, params, state, x, ctx: Ctx, *, where: str = "checked alone") -> list:
    """Structure problems of one layer's backward at (params, state, x, ctx): the cotangent is shaped like the
    forward's output. Traced, not run."""
    try:
        y, cache = jax.eval_shape(lambda p, s, x_: layer.forward(p, s, x_, ctx)[::2], params, state, x)
    except Exception as err:   # noqa: BLE001
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return [f"layer {layer.name} ({where}): forward raised {type(err).__name__}: {first}"]
    got, err = returned_shapes(layer, params, cache, _shape_of(y))
    if err is not None:
        return [_raised(layer.name, where, err)]
    return backward_problems(layer, _shape_of(params), _shape_of(x), got, where=where)


def cotangent_problems(name: str, arg_names, args, returned) -> list:
    """Messages for a custom_vjp rule's bwd output `returned` against the differentiable `args` (a tuple; names in
    `arg_names`): one cotangent per argument, each shaped like it (None accepted: a zero cotangent)."""
    head = f"wrong cotangent structure from the custom_vjp rule of {name}"
    if not isinstance(returned, (tuple, list)):
        return [f"{head}: bwd returns {_kind(returned)}, not a tuple of {len(args)} cotangents (one per argument: "
                f"{', '.join(arg_names)}); {_FIX_RULE}"]
    if len(returned) != len(args):
        return [f"{head}: bwd returns {len(returned)} cotangents for {len(args)} arguments "
                f"({', '.join(arg_names)}); {_FIX_RULE}"]
    out = []
    for arg_name, arg, ct in zip(arg_names, args, returned):
        out += [f"{head}: {p}; {_FIX_RULE}" for p in tree_problems(
            _shape_of(arg), ct, f"the cotangent of {arg_name}", arg_name, none_ok=True)]
    return out
