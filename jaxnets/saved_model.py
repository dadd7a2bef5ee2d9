"""Saved models that load without code: `save_model` and `load_model` (re-exported by `jaxnets.checkpoint`).

    model = jaxnets.models.mlp([784, 30, 10], activation="relu")
    jaxnets.checkpoint.save_model("runs/model.npz", model, params, state)
    model, params, state = jaxnets.load_model("runs/model.npz")     # or a fit(checkpoint_dir=...) directory

A model built by a `jaxnets.models` factory carries its recipe (the factory's name and arguments, `Layer.recipe`);
`save_model` writes the recipe and the per-example input shape into the checkpoint's JSON header (key "model")
beside {"params": params, "state": state}, and `fit(checkpoint_dir=...)` records them in every run checkpoint
(`training.resume.run_identity`). `load_model` calls the factory again, checks that the stored params and state
have exactly the structure and shapes the rebuilt model's `init` gives for that input shape (a changed recipe or
foreign params are refused, naming the first leaf that differs), and returns them in the model's own structure.

A hand-built model (`serial(...)`) has no recipe: `save_model` refuses it (RecipeError) and says to save the
params with `checkpoint.save(path, {"params": params, "state": state})`, rebuild the architecture in code and
read them back with `checkpoint.load(path, like=...)`; `load_model` on a checkpoint without a recipe says the same.
"""
from __future__ import annotations

import os

import jax

from jaxnets import checkpoint as ckpt
from jaxnets.core import Layer

__all__ = ["save_model", "load_model", "PATTERN"]

PATTERN = ("rebuild the architecture in code, then read the arrays with checkpoint.load(path, like=...) (for a fit "
           "checkpoint: like={'train': result.train_state, 'key': key}; see docs/checkpoints.md)")


def _input_shape(model: Layer, input_shape):
    """The per-example input shape to record: the given one, or the one the recipe fixes (mlp, resnet_mlp)."""
    kwargs = dict(model.recipe.kwargs)
    implied = {"mlp": lambda: (kwargs["sizes"][0],), "resnet_mlp": lambda: (kwargs["n_in"],)}.get(model.recipe.factory)
    implied = implied() if implied else None
    if input_shape is None:
        if implied is None:
            raise ValueError(f"save_model: a {model.recipe.factory} model accepts inputs of many shapes; pass "
                             "input_shape=, the shape of one example without the batch axis, e.g. (28, 28, 1)")
        return list(implied)
    if (not isinstance(input_shape, (tuple, list)) or not input_shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)):
        raise ValueError(f"save_model(input_shape): a tuple of positive ints without the batch axis, e.g. (28, 28, 1);"
                         f" got {input_shape!r}")
    if implied is not None and tuple(input_shape) != tuple(implied):
        raise ValueError(f"save_model(input_shape): the model takes inputs of shape {tuple(implied)}, got "
                         f"{tuple(input_shape)}; leave input_shape out for this model")
    return list(input_shape)


def save_model(path: str | os.PathLike, model: Layer, params, state, *, input_shape=None,
               metadata: dict | None = None) -> str:
    """Write `{"params": params, "state": state}` and `model`'s recipe to the `.npz` file `path` (atomic, no pickle,
    as `checkpoint.save`); return the path.

    model: a Layer from a `jaxnets.models` factory (it carries `model.recipe`).
    input_shape: one example's shape without the batch axis, e.g. (28, 28, 1); needed for cnn, cnn2 and
        resnet_cnn (whose params depend on it), implied by the recipe of mlp and resnet_mlp.
    Raises RecipeError (before writing anything) for a model without a recipe or with an argument that has no
    JSON form (e.g. a w_init function that is not one of `jaxnets.initializers`), naming it and the fix.
    """
    from jaxnets.models import RecipeError, recipe_to_json

    if not isinstance(model, Layer):
        raise TypeError(f"save_model(model): expected a jaxnets Layer, got {type(model).__name__}")
    if model.recipe is None:
        raise RecipeError(f"save_model: the model {model.name} has no recipe (it was not built by a jaxnets.models "
                          "factory), so load_model could not rebuild it. Save the arrays with checkpoint.save(path, "
                          "{'params': params, 'state': state}) instead, and to load them " + PATTERN)
    record = {"recipe": recipe_to_json(model.recipe), "input_shape": _input_shape(model, input_shape)}
    _check_fits(model, record["input_shape"], params, state)
    return ckpt._save(path, {"params": params, "state": state}, metadata, {"model": record})


def _expected(model: Layer, input_shape):
    """(params, state) of `model.init` for one example of `input_shape`, as ShapeDtypeStructs (nothing computed)."""
    return jax.eval_shape(lambda key: model.init(key, tuple(input_shape))[1:], jax.random.key(0))


def _difference(expected, got: dict) -> str | None:
    """Where the header node `got` ({"params", "state"}) differs from the ShapeDtypeStructs `expected` (params,
    state) in structure or shapes (dtypes may differ), e.g. "params/0/w: expected shape (6, 5) ..., found ..."."""
    try:
        ckpt._compare(_walk_specs({"params": expected[0], "state": expected[1]}), got, (), "", dtypes=False)
    except ckpt.CheckpointError as err:
        return str(err).split("does not match `like` at ", 1)[-1]
    return None


def _check_fits(model, input_shape, params, state) -> None:
    """Refuse params/state that are not the model's own (before saving what load_model would refuse)."""
    try:
        got = _walk_specs({"params": params, "state": state})
    except TypeError as err:
        raise TypeError(f"save_model: {err}") from None
    where = _difference(_expected(model, input_shape), got)
    if where:
        raise ValueError(f"save_model: the (params, state) passed are not those of {model.name} on inputs of shape "
                         f"{tuple(input_shape)} (at {where}); pass the model's own params (jaxnets.init(model, key, "
                         "input_shape)) and the right input_shape")


def _walk_specs(tree) -> dict:
    return ckpt._walk(tree, (), lambda x, p: {"t": "leaf", **dict(zip(("kind", "shape", "dtype"), ckpt._spec(x)))})


def _child(node: dict, name):
    """The header node of child `name` (a dict key or a NamedTuple field) or index of `node`, else None."""
    if node.get("t") == "dict" and name in node["keys"]:
        return node["c"][node["keys"].index(name)]
    if node.get("t") == "namedtuple" and name in node["fields"]:
        return node["c"][node["fields"].index(name)]
    if node.get("t") in ("tuple", "list") and isinstance(name, int) and name < len(node["c"]):
        return node["c"][name]
    return None


def _locate(path: str) -> str:
    path = os.fspath(path)
    if os.path.isdir(path):
        found = ckpt.latest(path)
        if found is None:
            raise FileNotFoundError(f"load_model: the directory {path} holds no checkpoint (ckpt-<epoch>.npz); pass a "
                                    "file written by save_model or the checkpoint_dir of a fit run that saved one")
        return found
    return path


def _record_and_arrays(path: str, header: dict):
    """(the "model" record, the header node of (params, state), what the node is) of a save_model file or a fit
    checkpoint; an error with the documented pattern when the file has no recipe."""
    if "model" in header:
        return header["model"], header["tree"], "params and state"
    run = (header.get("metadata") or {}).get("run")
    if isinstance(run, dict):
        record = run.get("recipe")
        tree = header["tree"]
        best = _child(tree, "best") if (header.get("metadata") or {}).get("has_best") else None
        node = best if best is not None else _child(tree, "train")
        if isinstance(record, dict) and record.get("error"):
            raise ckpt.CheckpointError(f"load_model: the run that wrote {path} used a model whose recipe could not be "
                                       f"stored ({record['error']}); to load it " + PATTERN)
        if isinstance(record, dict) and record.get("recipe") and node is not None:
            if best is None:
                node = {"t": "tuple", "c": [_child(node, "params"), _child(node, "state")]}
            return record, {"t": "dict", "keys": ["params", "state"], "c": node["c"][:2]}, \
                "the best epoch's params and state" if best is not None else "the train state's params and state"
        raise ckpt.CheckpointError(f"load_model: {path} is a fit checkpoint of a model that was not built by a "
                                   "jaxnets.models factory (or by a jaxnets older than load_model), so it holds no "
                                   "recipe; to load it " + PATTERN)
    raise ckpt.CheckpointError(f"load_model: {path} holds no model recipe (it was written by checkpoint.save, not "
                               "save_model or fit(checkpoint_dir=...)); to load it " + PATTERN)


def load_model(path: str | os.PathLike) -> tuple[Layer, object, object]:
    """(model, params, state) from a file written by `save_model`, or from a `fit(checkpoint_dir=...)` run of a
    `jaxnets.models` model: its directory (the newest checkpoint there) or one of its ckpt-<epoch>.npz files. For a
    run checkpoint the params are those fit would return: the best epoch's when early stopping keeps it, else the
    last epoch's.

    Raises CheckpointError when the file holds no recipe (a hand-built model: the message gives the pattern) or
    when the stored arrays do not fit the model the recipe rebuilds (naming the first leaf that differs), and
    RecipeError when the recipe does not rebuild a model with this jaxnets.
    """
    from jaxnets.models import from_recipe

    path = _locate(path)
    header, arrays = ckpt._read(path)
    record, node, what = _record_and_arrays(path, header)
    model = from_recipe(record["recipe"])
    shape = tuple(record["input_shape"])
    like = _expected(model, shape)
    where = _difference(like, node)
    if where:
        raise ckpt.CheckpointError(f"load_model: the arrays in {path} ({what}) do not fit the model its recipe "
                                   f"rebuilds ({model.name} on inputs of shape {shape}) at {where}; the recipe or the "
                                   "arrays were changed after saving: load an unmodified checkpoint")
    leaves = []
    for name in ("params", "state"):
        ckpt._rebuild(_child(node, name), lambda rec: leaves.append(ckpt._as_jax(ckpt._leaf_value(rec, arrays, path))))
    params, state = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), leaves)
    return model, params, state
