"""The Layer protocol, the training context, and `serial` composition.

A layer is a box with a forward and a backward pass (the flow-graph view of backprop):

    init(key, input_shape)              -> (output_shape, params, state)
    forward(params, state, x, ctx)      -> (y, new_state, cache)
    backward(params, cache, dy)         -> (dparams, dx)

Shapes exclude the batch axis; arrays carry a leading batch axis of size m. `dy` is ∂C/∂y for the whole batch
(the loss gradient already carries the 1/m of the batch mean), so `dparams` are sums over the batch of the
per-example terms. `dparams` has the structure of `params`, `dx` the shape of `x`.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax

Shape = tuple[int, ...]
PyTree = Any


class Ctx(NamedTuple):
    """What a forward pass may depend on besides params, state and input.

    train: Python bool (static under `jit`): batch statistics and dropout masks in training mode.
    key:   a PRNG key or None; `serial` folds in each child's index so every layer draws its own randomness.
    """

    train: bool = False
    key: Optional[jax.Array] = None

    def child(self, index: int) -> "Ctx":
        """The context of the `index`-th child of a combinator: same flag, an independent key."""
        if self.key is None:
            return self
        return Ctx(self.train, jax.random.fold_in(self.key, index))


# `train` is static pytree metadata (layers branch on it in Python); only the key is a traced leaf. So a Ctx
# can be passed straight into `jax.jit`/`vmap`-ed functions without turning the flag into a tracer.
jax.tree_util.register_pytree_node(
    Ctx, lambda ctx: ((ctx.key,), ctx.train), lambda train, children: Ctx(train, children[0]))


class Meta(NamedTuple):
    """What a layer declares about itself, so that tools read data instead of guessing from names.

    bias:    the params key whose gradient is Σ δ over the batch (BP3), e.g. "b" of Dense/Conv2D, "beta" of
             BatchNorm; the gradient diagnostics report ‖δˡ‖ from it.
    weights: the params keys of the layer's weights (the diagnostics' ‖∂C/∂Wˡ‖).
    outputs: what the layer's outputs are when it ends a model: "probabilities" (Softmax, Sigmoid) or
             "log_probabilities" (LogSoftmax); None for anything else (logits, features). Ensemble voting reads it.
    fires:   `fires(cache) -> bool array` of the units that are active on each example (ReLU: z > 0), for the
             dead-unit diagnostics; None for layers without such a notion.
    autodiff_backward: True when `backward` is `jax.vjp` of `forward` rather than hand-written (a layer made by
             `layers.from_function` or an interop adapter); `summary` and the checker say so, and tools that need a
             hand-written backward refuse it.
    """

    bias: Optional[str] = None
    weights: tuple = ()
    outputs: Optional[str] = None
    fires: Optional[Callable[[Any], jax.Array]] = None
    autodiff_backward: bool = False


class Recipe(NamedTuple):
    """How to rebuild a model without its code: a factory of `jaxnets.models` and its arguments.

    factory: the factory's name in `jaxnets.models` ("mlp", "cnn", ...);
    kwargs:  its keyword arguments as sorted (name, value) pairs, lists made tuples (so a Layer stays hashable).
    A checkpoint stores the recipe so that `jaxnets.load_model(path)` needs no code.
    """

    factory: str
    kwargs: tuple = ()


class Layer(NamedTuple):
    """Three pure functions, a name (for error messages and reports), and optional structure.

    children: the layers a combinator is made of (params and state are tuples with one entry per child);
    rebuild:  `rebuild(*children) -> Layer`, the same combinator around other children (tools such as
              `gradcheck.check_model` wrap every child this way); None for leaf layers;
    meta:     a `Meta` describing the layer to tools (diagnostics, voting);
    recipe:   a `Recipe` when the layer came from a `jaxnets.models` factory (what `load_model` rebuilds), else None.

    A Layer is static to JAX (it has no array leaves and hashes by its functions), so a model can be passed as an
    ordinary argument: `jax.jit(jaxnets.apply)(model, params, state, x)`, `jax.vmap(f, in_axes=(None, 0))`.

    Every layer is a value; calling a layer with no arguments returns it, so `Relu` and `Relu()` are the same
    layer and the docs write every layer as a call (`Dense(10)`, `Relu()`, `Flatten()`).
    """

    init: Callable[..., tuple[Shape, PyTree, PyTree]]
    forward: Callable[..., tuple[jax.Array, PyTree, PyTree]]
    backward: Callable[..., tuple[PyTree, jax.Array]]
    name: str = "layer"
    children: tuple = ()
    rebuild: Optional[Callable[..., "Layer"]] = None
    meta: Meta = Meta()
    recipe: Optional[Recipe] = None

    def __call__(self, *args, **kwargs) -> "Layer":
        if args or kwargs:
            raise TypeError(
                f"{self.name} is already a layer; it takes no arguments (write {self.name} or {self.name}()). To run "
                f"it, use jaxnets.apply(model, params, state, x); a layer with options is built by its "
                f"constructor, e.g. LeakyRelu(0.1) or Dense(10)")
        return self


# A model is configuration, not data: no array leaves, hashed by its functions. So `jax.jit`, `vmap` and `grad` take
# it as an ordinary argument (it becomes part of the compiled program's static key).
jax.tree_util.register_static(Layer)


def serial(*layers: Layer, name: str | None = None) -> Layer:
    """Compose layers in sequence; params, state and cache are tuples with one entry per child.

    The backward pass runs the children's backward passes in reverse order: δˡ = backwardˡ⁺¹(δˡ⁺¹) is the
    recursion δˡ = ((Wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ σ′(zˡ) split into its dense and activation factors.
    """
    if not layers:
        raise ValueError("serial() needs at least one layer, e.g. serial(Dense(10), Sigmoid())")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"serial(): argument {i} is {type(layer).__name__}, not a Layer; {not_a_layer_hint(layer)}")
    label = name or "serial(" + ", ".join(layer.name for layer in layers) + ")"

    def init(key, input_shape):
        params, state = [], []
        shape = tuple(input_shape)
        for i, layer in enumerate(layers):
            shape, p, s = layer.init(jax.random.fold_in(key, i), shape)
            params.append(p)
            state.append(s)
        return shape, tuple(params), tuple(state)

    def forward(params, state, x, ctx):
        _check_tuple(label, "params", params, len(layers))
        _check_tuple(label, "state", state, len(layers))
        new_state, caches = [], []
        for i, layer in enumerate(layers):
            x, s, cache = layer.forward(params[i], state[i], x, ctx.child(i))
            new_state.append(s)
            caches.append(cache)
        return x, tuple(new_state), tuple(caches)

    def backward(params, cache, dy):
        dparams = [None] * len(layers)
        for i in reversed(range(len(layers))):
            dparams[i], dy = layers[i].backward(params[i], cache[i], dy)
        return tuple(dparams), dy

    return Layer(init, forward, backward, label, tuple(layers), rebuild=lambda *children: serial(*children, name=name))


def not_a_layer_hint(value) -> str:
    """The fix for a value placed where a Layer belongs: a constructor not called, or a module from another library."""
    bases = [c.__module__ or "" for c in type(value).__mro__]   # a user's module subclasses flax's or equinox's
    if any(b.startswith("flax") for b in bases):
        return ("it is a Flax module; wrap it with jaxnets.interop.from_flax(module) (pip install "
                "'jaxnets[interop]')")
    if any(b.startswith("equinox") for b in bases):
        return "it is an Equinox module; wrap it with jaxnets.interop.from_equinox(module) (pip install 'jaxnets[interop]')"
    if callable(value):
        name = getattr(value, "__name__", "it")
        return (f"{name} looks like a layer constructor passed without calling it; call it with its options, "
                f"e.g. {name}(...) (Dense(10), LeakyRelu(0.1)), or wrap a plain JAX function with "
                f"jaxnets.layers.from_function(fn)")
    return "build layers with jaxnets' constructors (Dense(10), Relu(), Conv2D(20, 5), ...)"


def _check_tuple(label, what, tree, n):
    if not isinstance(tree, (tuple, list)) or len(tree) != n:
        got = f"{type(tree).__name__} of length {len(tree)}" if isinstance(tree, (tuple, list)) else type(tree).__name__
        raise ValueError(
            f"{label}: {what} should be a tuple with one entry per layer ({n}), got {got}; "
            f"pass the {what} returned by this model's init"
        )


def init(model: Layer, key: jax.Array, input_shape: Shape) -> tuple[Shape, PyTree, PyTree]:
    """`model.init` with a friendlier check of `input_shape` (per-example shape, no batch axis)."""
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape):
        raise ValueError(f"{model.name}: input_shape must be positive ints without the batch axis, e.g. (784,) "
                         f"or (28, 28, 1); got {input_shape!r}")
    return model.init(key, tuple(input_shape))


def apply(model: Layer, params: PyTree, state: PyTree, x: jax.Array, *, train: bool = False,
          key: Optional[jax.Array] = None) -> tuple[jax.Array, PyTree]:
    """Run the forward pass: returns (outputs, new_state). `x` has a leading batch axis."""
    y, new_state, _ = model.forward(params, state, x, Ctx(train, key))
    return y, new_state
