"""Gradient diagnostics: per-layer learning speed during training, dead units, per-example gradients.

    speed = learning_speed(model, loss, opt, (x, y), epochs=30, batch_size=10, key=key)
    speed.delta[:, l]          # ‖δˡ‖ = ‖∂C/∂bˡ‖ of layer l: row 0 at initialisation,
                               # row e the mean over epoch e
    speed.weight[:, l]         # ‖∂C/∂Wˡ‖ likewise
    dead_relu_fraction(model, params, state, x)        # units that never fire on x, per layer that can
    per_example_grads(model, loss, params, state, x, y)  # the gradient of each example's cost, stacked on axis 0

The textbook measures how fast each layer learns by ‖δˡ‖, the length of the vector of ∂C/∂bˡⱼ (BP3); in a
deep sigmoid network the early layers' ‖δˡ‖ are much smaller — the vanishing gradient problem. The layers
measured are those that declare it in their metadata (`jaxnets.core.Meta`): `bias` names the params key
whose gradient is Σδ (Dense and Conv2D "b", BatchNorm and LayerNorm "beta"), `weights` the weight keys; a
user's layer is measured exactly when it declares the same. Dead units are counted in layers that declare
`fires` (ReLU: z > 0), whatever their names.

`learning_speed` trains with `jaxnets.fit` itself: `record_gradient_norms(model, optimizer)` wraps the optimizer
so that every applied update also adds the per-layer norms of the gradient it receives to running sums in the
optimizer state, and a callback turns them into per-epoch means. The updates are the optimizer's own.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxnets.gradients
from jaxnets import nodes
from jaxnets.core import Ctx
from jaxnets.optim.base import GradientTransformation
from jaxnets.memo import memoised


def measured_layers(model) -> list:
    """[(path, layer)] of the layers whose metadata declares a bias or weights, in pre-order (input to output
    for `serial` models)."""
    found = [(path, layer) for path, layer in nodes.nodes(model)
             if not nodes.is_combinator(layer) and (layer.meta.bias is not None or layer.meta.weights)]
    if not found:
        raise ValueError(f"{model.name}: no layer declares a bias or weights (Meta(bias=..., weights=...)); the "
                         "gradient diagnostics measure layers such as Dense, Conv2D and BatchNorm")
    return found


def layer_names(model) -> list[str]:
    """"path: name" of the layers measured, e.g. ["0: Dense(30)", "2: Dense(10)"] for an mlp."""
    return [f"{'/'.join(map(str, path)) or '-'}: {layer.name}" for path, layer in measured_layers(model)]


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(a.astype(jnp.float32))) for a in jax.tree_util.tree_leaves(tree)))


def layer_gradient_norms(model, grads) -> tuple[jax.Array, jax.Array]:
    """(‖∂C/∂bˡ‖, ‖∂C/∂Wˡ‖) for every measured layer l of `model`'s gradient pytree: two float32
    arrays of shape (L,); 0 for a layer without a bias or without weights (see `without_bias` for which is which)."""
    b, w = [], []
    for path, layer in measured_layers(model):
        g = nodes.subtree(grads, path)
        b.append(_norm(g[layer.meta.bias]) if layer.meta.bias is not None else jnp.float32(0))
        w.append(_norm([g[k] for k in layer.meta.weights]) if layer.meta.weights else jnp.float32(0))
    return jnp.stack(b), jnp.stack(w)


def without_bias(model) -> np.ndarray:
    """(L,) bool: the measured layers that declare no bias (their ‖δˡ‖ cannot be read from their gradients)."""
    return np.array([layer.meta.bias is None for _, layer in measured_layers(model)])


def _mark_missing(model, delta):
    """Host-side: NaN for ‖δˡ‖ of layers without a bias (the traced programs carry 0 there, which keeps the
    training state finite)."""
    delta = np.array(delta, dtype=np.float64)
    delta[..., without_bias(model)] = np.nan
    return delta


class NormRecorderState(NamedTuple):
    """The wrapped optimizer's state and running sums of the per-layer gradient norms over `count` updates."""

    inner: Any
    delta_sum: jax.Array
    weight_sum: jax.Array
    count: jax.Array


def record_gradient_norms(model, optimizer) -> GradientTransformation:
    """`optimizer` (optax protocol) with `model`'s per-layer gradient norms summed into its state
    (NormRecorderState); the updates are exactly the wrapped optimizer's."""
    n = len(measured_layers(model))

    def init(params):
        zeros = jnp.zeros((n,), jnp.float32)
        return NormRecorderState(optimizer.init(params), zeros, zeros, jnp.zeros((), jnp.int32))

    def update(grads, state, params=None, **extra):
        from jaxnets.optim.base import extra_kwargs_filter

        updates, inner = optimizer.update(grads, state.inner, params, **extra_kwargs_filter(optimizer.update)(extra))
        b, w = layer_gradient_norms(model, grads)
        return updates, NormRecorderState(inner, state.delta_sum + b, state.weight_sum + w, state.count + 1)

    return GradientTransformation(init, update)


@memoised(maxsize=8)
def _norms_program(model, loss, gradients, penalty, train):
    grad_fn = jaxnets.gradients.get(gradients)(model, loss, penalty)
    return jax.jit(lambda p, s, xb, yb, key: layer_gradient_norms(model, grad_fn(p, s, xb, yb, Ctx(train, key))[1]))


def gradient_norms(model, loss, params, state, x, y, *, gradients: str = "manual", penalty=None,
                   train: bool = False, key=None) -> dict:
    """Per-layer norms of the gradient of the cost over all of (x, y) at `params` (one batch; the forward in
    evaluation mode unless `train`): {"layers": names, "delta": (L,) ‖∂C/∂bˡ‖,
    "weight": (L,) ‖∂C/∂Wˡ‖}."""
    from jaxnets.training import validate

    loss = validate.check_loss(loss, "gradient_norms(model, loss, params, state, x, y)")
    b, w = jax.device_get(_norms_program(model, loss, gradients, penalty, bool(train))(
        params, state, jnp.asarray(x), jnp.asarray(y), key))
    return {"layers": layer_names(model), "delta": _mark_missing(model, b), "weight": np.asarray(w)}


class LearningSpeed(NamedTuple):
    """layers: layer names; delta / weight: (epochs + 1, L) numpy arrays of ‖δˡ‖ = ‖∂C/∂bˡ‖ and
    ‖∂C/∂Wˡ‖ — row 0 over the probe set at initialisation, row e the mean over the mini-batch steps of
    epoch e (‖δˡ‖ is NaN for a layer without a bias);
    train_loss: (epochs,); params / state: after training; result: the FitResult of the training run."""

    layers: list
    delta: np.ndarray
    weight: np.ndarray
    train_loss: np.ndarray
    params: Any
    state: Any
    result: Any = None


def learning_speed(model, loss, optimizer, train_data, *, epochs: int, batch_size: int, key,
                   gradients: str = "manual", penalty=None, probe=None, params=None, state=None,
                   **fit_options) -> LearningSpeed:
    """Train with `jaxnets.fit` (same init, same keys, same steps) while recording the per-layer gradient norms
    of every applied update. probe: (x, y) for the initial full-batch norms (default: the first 1,000 training
    examples, as in the textbook). Further keyword arguments go to `fit` (val_data, loop, ...)."""
    from jaxnets.training import fit, validate

    loss = validate.check_loss(loss, "learning_speed(model, loss, optimizer, train_data)")
    optimizer = validate.check_optimizer(optimizer, "learning_speed")
    x, y = validate.check_arrays(train_data, "train_data")
    if params is None or state is None:
        p0, s0 = validate.init_params(model, key, x)
        params = p0 if params is None else params
        state = s0 if state is None else state
    px, py = probe if probe is not None else (x[:1000], y[:1000])
    first = gradient_norms(model, loss, params, state, px, py, gradients=gradients, penalty=penalty)
    delta, weight, previous = [first["delta"]], [first["weight"]], (0.0, 0.0, 0)

    def collect(epoch, row, ts):
        nonlocal previous
        rec = jax.device_get(ts.opt_state)
        count = int(rec.count) - previous[2]
        delta.append((np.asarray(rec.delta_sum) - previous[0]) / max(count, 1))
        weight.append((np.asarray(rec.weight_sum) - previous[1]) / max(count, 1))
        previous = (np.asarray(rec.delta_sum), np.asarray(rec.weight_sum), int(rec.count))

    result = fit(model, loss, record_gradient_norms(model, optimizer), (x, y), epochs=epochs, batch_size=batch_size,
                 key=key, gradients=gradients, penalty=penalty, params=params, state=state, progress=False,
                 callbacks=[collect] + list(fit_options.pop("callbacks", None) or ()), **fit_options)
    return LearningSpeed(first["layers"], _mark_missing(model, np.stack(delta)), np.stack(weight),
                         np.asarray(result.history["train_loss"]), result.params, result.state, result)


# ----------------------------------------------------------------------------------------------- dead units
def dead_relu_fraction(model, params, state, x, *, batch_size: int = 1024) -> dict:
    """Units that never fire on any example of x, in evaluation mode, in every layer that declares `fires`
    (`Meta(fires=lambda cache: z > 0)`: ReLU); a user's layer counts when it declares the same, whatever its name.

    A unit is one element of the layer's per-example activation (a neuron; for a convolutional layer one
    position of one feature map). Returns {"layers": [{"path", "name", "units", "dead", "fraction"}], "dead",
    "units", "fraction"} (the last three over all such layers); ValueError if the model has none.
    """
    from jaxnets.training import validate

    x = jnp.asarray(validate.check_inputs(x, "dead_relu_fraction: x"))
    firing = [(path, layer) for path, layer in nodes.nodes(model) if layer.meta.fires is not None]
    if not firing:
        raise ValueError(f"{model.name}: no layer declares when its units fire (Meta(fires=...), as Relu does); dead "
                         "units are counted in such layers")

    @jax.jit
    def fired(xb):
        _, records = nodes.record(model, params, state, xb, Ctx(False, None))
        return [jnp.any(layer.meta.fires(records[path].cache), axis=0) for path, layer in firing]

    active = None
    for start in range(0, x.shape[0], batch_size):
        a = fired(x[start:start + batch_size])
        active = a if active is None else [u | v for u, v in zip(active, a)]
    layers = []
    for (path, layer), a in zip(firing, active):
        a = np.asarray(a)
        dead = int(a.size - a.sum())
        layers.append({"path": "/".join(map(str, path)), "name": layer.name, "units": int(a.size), "dead": dead,
                       "fraction": dead / a.size})
    dead, units = sum(r["dead"] for r in layers), sum(r["units"] for r in layers)
    return {"layers": layers, "dead": dead, "units": units, "fraction": dead / units}


# ----------------------------------------------------------------------------------------------- per example
def per_example_grads(model, loss, params, state, x, y, *, gradients: str = "manual", penalty=None,
                      train: bool = False, key=None, batch_size: int | None = None):
    """The gradient of each example's own cost C_x (+ penalty), stacked: a pytree like `params` with a leading
    axis of size N. Computed by `vmap` of the gradient source over examples (each a batch of one); with
    `batch_size`, in chunks of that many examples (`lax.map`) to bound memory. Their mean over the N
    examples is the gradient of the batch-mean cost."""
    grad_fn = jaxnets.gradients.get(gradients)(model, loss, penalty)

    def one(xy):
        xi, yi = xy
        _, g = grad_fn(params, state, xi[None], yi[None], Ctx(train, key))
        return g

    run = jax.jit(lambda xs, ys: jax.lax.map(one, (xs, ys), batch_size=batch_size) if batch_size
                  else jax.vmap(one)((xs, ys)))
    return run(jnp.asarray(x), jnp.asarray(y))
