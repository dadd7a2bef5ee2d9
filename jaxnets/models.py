"""Model factories: the textbook's fully connected and convolutional networks as `serial` models.

    model = mlp([784, 30, 10], activation="sigmoid")                 # chapter 1–3 networks
    model = cnn(activation="relu")                                    # chapter 6: conv 20×5×5, 2×2 pool, 100, 10
    model = cnn2(activation="relu", dropout=0.5)                      # two conv-pool stages (20 and 40 maps)
    model = resnet_mlp(784, 30, depth=10, classes=10)                 # 10 hidden layers, 9 with skip connections
    model = resnet_cnn(classes=10)                                    # a small residual ConvNet
    shape, params, state = jaxnets.init(model, key, (28, 28, 1))

Outputs are logits unless `output` names an output unit ("softmax", "sigmoid"): pair logits with
`losses.softmax_cross_entropy` / `losses.sigmoid_cross_entropy`, and probabilities with `quadratic` or
`binary_cross_entropy`.

Every factory records its call as `model.recipe` (a `core.Recipe`: the factory's name and all its arguments,
defaults included), so a checkpoint can rebuild the architecture without code (`jaxnets.load_model`).
`recipe_to_json(recipe)` turns it into JSON — initializers of `jaxnets.initializers` by name, activation and output
units by their table name — and raises `RecipeError` naming an argument that cannot be stored; `from_recipe(data)`
calls the factory again.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import NamedTuple

import numpy as np

from jaxnets import initializers
from jaxnets.core import Layer, Recipe, serial
from jaxnets.initializers import glorot_uniform
from jaxnets.layers import (BatchNorm, Conv2D, Dense, Dropout, Elu, Flatten, Gelu, GlobalAvgPool, Identity, LeakyRelu,
                            LogSoftmax, MaxPool, Relu, Sigmoid, Softmax, Softplus, Tanh, residual)
from jaxnets.layers.pool import POOLS

ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": Relu, "identity": Identity, "linear": Identity,
               "leaky_relu": LeakyRelu(), "elu": Elu(), "gelu": Gelu(), "softplus": Softplus}
OUTPUTS = {"softmax": Softmax, "log_softmax": LogSoftmax, "sigmoid": Sigmoid, "tanh": Tanh, "identity": Identity,
           "linear": Identity}


class RecipeError(TypeError):
    """A model's recipe cannot be stored (an argument with no JSON form) or does not rebuild a model."""


class Unhashable(NamedTuple):
    """Stands in a recipe for an argument value that cannot be hashed (a Layer must stay hashable); saving refuses
    it."""

    text: str


def _frozen(value):
    """`value` with lists (and tuples) made tuples, so that the recipe, and the Layer holding it, stay hashable."""
    if type(value) in (list, tuple):   # not a Layer or another NamedTuple
        return tuple(_frozen(v) for v in value)
    if isinstance(value, np.generic):   # np.int64(10), np.float32(0.5): the Python number (JSON-storable)
        return value.item()
    try:
        hash(value)
    except TypeError:
        return Unhashable(repr(value))
    return value


def _recorded(factory):
    """Decorate a factory so that the model it returns carries `Recipe(name, sorted (argument, value) pairs)`."""
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def build(*args, **kwargs):
        model = factory(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return model._replace(recipe=Recipe(factory.__name__, tuple(sorted(
            (k, _frozen(v)) for k, v in bound.arguments.items()))))

    return build


def unit(value, table, what):
    if isinstance(value, Layer):
        return value
    if isinstance(value, str) and value.lower() in table:
        return table[value.lower()]
    raise ValueError(f"{what} must be one of {sorted(table)} or a Layer, got {value!r}")


def _dropout(rate):
    return [] if rate is None or rate == 0 else [Dropout(rate)]


def _check_input(model: Layer, expected: tuple) -> Layer:
    """The model with an init that insists on the documented per-example input shape."""

    def init(key, input_shape):
        if tuple(input_shape) != expected:
            raise ValueError(f"{model.name}: built for per-example inputs of shape {expected}, "
                             f"got {tuple(input_shape)}; "
                             "init with the size given as sizes[0], or build the model for your data's size")
        return model.init(key, input_shape)

    return model._replace(init=init)


@_recorded
def mlp(sizes, activation="sigmoid", output=None, w_init=glorot_uniform, dropout=None, batch_norm=False) -> Layer:
    """A fully connected network with layer sizes [n_in, h1, …, n_out].

    Each hidden layer is Dense(h) → [BatchNorm] → activation → [Dropout(dropout)]; the last is Dense(n_out) →
    [output unit]. Dropout thus acts on the inputs of every Dense layer after the first (the textbook's placement).
    `init` checks the input shape is (n_in,).
    """
    if (not isinstance(sizes, (list, tuple)) or len(sizes) < 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes)):
        raise ValueError(f"mlp(sizes): sizes must list at least two positive ints [n_in, ..., n_out], e.g. "
                         f"[784, 30, 10]; got {sizes!r}")
    act = unit(activation, ACTIVATIONS, "mlp(activation)")
    layers = []
    for h in sizes[1:-1]:
        layers += [Dense(h, w_init=w_init)] + ([BatchNorm()] if batch_norm else []) + [act] + _dropout(dropout)
    layers.append(Dense(sizes[-1], w_init=w_init))
    if output is not None:
        layers.append(unit(output, OUTPUTS, "mlp(output)"))
    return _check_input(serial(*layers, name=f"mlp({list(sizes)})"), (sizes[0],))


@_recorded
def cnn(features=20, kernel=5, pool=2, hidden=100, classes=10, activation="sigmoid", pooling="max", output=None,
        dropout=None, w_init=glorot_uniform, padding="VALID", batch_norm=False) -> Layer:
    """The textbook's convolutional network (chapter 6): for each entry of `features` (an int or a sequence, one
    conv-pool stage each) Conv2D(f, kernel) → [BatchNorm] → activation → pool (`pooling` "max"|"l2"|"avg", window
    `pool`); then Flatten → [Dropout] → Dense(hidden) → activation → [Dropout] → Dense(classes)
    → [output unit].

    On 28×28×1 inputs the default is conv 20×5×5 (24×24 maps) → 2×2 max-pool (12×12) → 100 → 10. Pooling
    after the activation is the book's description; for max pooling and a monotone activation it equals its network3
    code, which pools first. `hidden=None` drops the hidden dense layer. Dropout masks the inputs of the dense layers.
    """
    stages = (features,) if isinstance(features, int) else tuple(features)
    if not stages or not all(isinstance(f, int) and f > 0 for f in stages):
        raise ValueError(f"cnn(features): give a positive int or a sequence of them (feature maps per stage), got "
                         f"{features!r}")
    act = unit(activation, ACTIVATIONS, "cnn(activation)")
    pool_layer = POOLS.get(pooling)
    if pool_layer is None:
        raise ValueError(f"cnn(pooling): choose one of {sorted(POOLS)}, got {pooling!r}")
    layers = []
    for f in stages:
        layers += [Conv2D(f, kernel, padding=padding, w_init=w_init)] + ([BatchNorm()] if batch_norm else []) \
            + [act, pool_layer(pool)]
    layers += [Flatten] + _dropout(dropout)
    if hidden is not None:
        layers += [Dense(hidden, w_init=w_init), act] + _dropout(dropout)
    layers.append(Dense(classes, w_init=w_init))
    if output is not None:
        layers.append(unit(output, OUTPUTS, "cnn(output)"))
    label = "cnn(" + "-".join(f"{f}x{kernel}" for f in stages) + f", {pooling}{pool}, {hidden}, {classes})"
    return serial(*layers, name=label)


@_recorded
def cnn2(features=(20, 40), kernel=5, pool=2, hidden=100, classes=10, activation="sigmoid", pooling="max",
         output=None, dropout=None, w_init=glorot_uniform, padding="VALID", batch_norm=False) -> Layer:
    """The deeper textbook network: conv 20×5×5 → pool → conv 40×5×5 → pool → dense 100 → 10 (28×28 →
    24 → 12 → 8 → 4, so the dense layer sees 40·4·4 = 640 inputs). Same options as `cnn`."""
    return cnn(features, kernel, pool, hidden, classes, activation, pooling, output, dropout, w_init, padding,
               batch_norm)


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@_recorded
def resnet_mlp(n_in: int, width: int, depth: int, classes: int, activation="relu", *, batch_norm: bool = False,
               output=None, w_init=glorot_uniform) -> Layer:
    """A deep fully connected network with skip connections: `depth` hidden layers of `width` units.

    Dense(width) → σ, then depth − 1 residual blocks h ← h + σ(BatchNorm(Dense(width)(h))) (BatchNorm only
    with batch_norm=True), then Dense(classes) [→ output unit]. With the identity shortcut, ∂C/∂h of every block carries the cotangent of the
    block above unchanged plus the block's own term, so early layers keep learning where `mlp` with the same layers
    stalls (the vanishing-gradient problem; experiments/e11_skip_connections.py). Input (m, n_in) -> (m, classes).
    """
    for name, v in (("resnet_mlp(n_in)", n_in), ("resnet_mlp(width)", width), ("resnet_mlp(depth)", depth),
                    ("resnet_mlp(classes)", classes)):
        _positive(name, v)
    act = unit(activation, ACTIVATIONS, "resnet_mlp(activation)")
    blocks = [residual(Dense(width, w_init=w_init, use_bias=not batch_norm), *([BatchNorm()] if batch_norm else []),
                       act) for _ in range(depth - 1)]
    layers = [Dense(width, w_init=w_init), act, *blocks, Dense(classes, w_init=w_init)]
    if output is not None:
        layers.append(unit(output, OUTPUTS, "resnet_mlp(output)"))
    return _check_input(serial(*layers, name=f"resnet_mlp({n_in}, {width}x{depth}, {classes})"), (n_in,))


@_recorded
def resnet_cnn(classes: int = 10, features=(16, 32), blocks: int = 1, activation="relu", *, output=None,
               w_init=glorot_uniform) -> Layer:
    """A small residual ConvNet for NHWC images: a 3×3 stem Conv2D(features[0]) → BatchNorm → σ, then per stage s
    `blocks` residual blocks [Conv2D 3×3 → BatchNorm → σ → Conv2D 3×3 → BatchNorm] + shortcut (a bias-free
    1×1 Conv2D where the number of maps changes, else the identity), each followed by σ, a 2×2 max-pool between
    stages, then GlobalAvgPool → Dense(classes). SAME padding throughout: any H, W divisible by 2^(stages − 1).
    """
    _positive("resnet_cnn(classes)", classes)
    _positive("resnet_cnn(blocks)", blocks)
    stages = (features,) if isinstance(features, int) else tuple(features)
    if not stages or not all(isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in stages):
        raise ValueError(f"resnet_cnn(features): positive ints, one per stage, got {features!r}")
    act = unit(activation, ACTIVATIONS, "resnet_cnn(activation)")

    def conv(f, k):
        return Conv2D(f, k, padding="SAME", w_init=w_init, use_bias=False)

    layers, maps = [conv(stages[0], 3), BatchNorm(), act], stages[0]
    for s, f in enumerate(stages):
        if s > 0:
            layers.append(MaxPool(2))
        for _ in range(blocks):
            shortcut = None if f == maps else conv(f, 1)
            layers += [residual(conv(f, 3), BatchNorm(), act, conv(f, 3), BatchNorm(), shortcut=shortcut), act]
            maps = f
    layers += [GlobalAvgPool, Dense(classes, w_init=w_init)]
    if output is not None:
        layers.append(unit(output, OUTPUTS, "resnet_cnn(output)"))
    return serial(*layers, name=f"resnet_cnn({'-'.join(map(str, stages))}, blocks={blocks}, {classes})")


# ------------------------------------------------------------------------------------------------ recipes
FACTORIES = ("mlp", "cnn", "cnn2", "resnet_mlp", "resnet_cnn")
_STORE_FIX = ("pass it by name (an activation or output as a string such as 'relu', an initializer of "
              "jaxnets.initializers such as w_init=initializers.he_normal or initializers.normal(0.1)), or save the "
              "params alone with checkpoint.save and rebuild the architecture in code (docs/checkpoints.md)")


def _initializer_json(fn):
    """{"initializer": name[, "std": s]} for a jaxnets initializer, else None."""
    if getattr(fn, "__module__", None) != initializers.__name__:
        return None
    name = getattr(fn, "__name__", "")
    if name in initializers.__all__ and getattr(initializers, name) is fn:
        return {"initializer": name}
    code = getattr(fn, "__code__", None)
    cells = dict(zip(code.co_freevars, (c.cell_contents for c in fn.__closure__ or ()))) if code else {}
    if getattr(fn, "__qualname__", "") == "normal.<locals>.init" and isinstance(cells.get("std"), (int, float)):
        return {"initializer": "normal", "std": float(cells["std"])}
    return None


def _value_json(factory, name, value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
    elif type(value) is tuple:
        return [_value_json(factory, name, v) for v in value]
    elif isinstance(value, Layer):
        for table in (ACTIVATIONS, OUTPUTS):
            found = [k for k, layer in table.items() if layer is value]
            if found:
                return found[0]   # the factories take units by name
    elif callable(value) and _initializer_json(value) is not None:
        return _initializer_json(value)
    shown = (value.text if isinstance(value, Unhashable) else value.name if isinstance(value, Layer)
             else f"{value.__module__}.{value.__qualname__}" if hasattr(value, "__qualname__") else repr(value))
    raise RecipeError(f"cannot store the recipe of {factory}(...): argument {name}={shown} has no JSON form; "
                      + _STORE_FIX)


def recipe_to_json(recipe: Recipe) -> dict:
    """{"factory": name, "kwargs": {argument: JSON value}}; RecipeError names an argument that cannot be stored."""
    if not isinstance(recipe, Recipe) or recipe.factory not in FACTORIES:
        raise RecipeError(f"recipe_to_json: expected the Recipe of a jaxnets.models factory, got {recipe!r}")
    return {"factory": recipe.factory,
            "kwargs": {k: _value_json(recipe.factory, k, v) for k, v in recipe.kwargs}}


def _value_from_json(value):
    if isinstance(value, list):
        return tuple(_value_from_json(v) for v in value)
    if isinstance(value, dict) and "initializer" in value:
        if value["initializer"] == "normal" and set(value) == {"initializer", "std"}:
            return initializers.normal(value["std"])
        if set(value) == {"initializer"} and value["initializer"] in initializers.__all__:
            return getattr(initializers, value["initializer"])
    if isinstance(value, dict):
        raise RecipeError(f"unknown recipe value {value!r}")
    return value


def from_recipe(data: dict) -> Layer:
    """The model that `recipe_to_json` described: its factory called again with the stored arguments.
    RecipeError names what is wrong (unknown factory, unknown argument, a value the factory refuses)."""
    if not isinstance(data, dict) or data.get("factory") not in FACTORIES or not isinstance(data.get("kwargs"), dict):
        raise RecipeError(f"not a model recipe (expected {{'factory': one of {list(FACTORIES)}, 'kwargs': {{...}}}}),"
                          f" got {data!r}")
    factory = globals()[data["factory"]]
    try:
        return factory(**{k: _value_from_json(v) for k, v in data["kwargs"].items()})
    except (TypeError, ValueError) as err:
        raise RecipeError(f"the recipe {data['factory']}(...) does not rebuild a model with this jaxnets: {err}") \
            from err


__all__ = ["mlp", "cnn", "cnn2", "resnet_mlp", "resnet_cnn", "unit", "ACTIVATIONS", "OUTPUTS", "FACTORIES",
           "RecipeError", "recipe_to_json", "from_recipe"]
