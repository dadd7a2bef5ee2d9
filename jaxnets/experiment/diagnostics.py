"""Gradient diagnostics: per-layer learning speed inside the compiled epoch, dead ReLUs, per-example gradients.

    speed = learning_speed(model, loss, opt, (x, y), epochs=30, batch_size=10, key=key)
    speed.delta[:, l]          # ‖δˡ‖ = ‖∂C/∂bˡ‖ of layer l: row 0 at initialisation, row e the mean over epoch e
    speed.weight[:, l]         # ‖∂C/∂Wˡ‖ likewise
    dead_relu_fraction(model, params, state, x)        # units that never fire on x, per ReLU layer
    per_example_grads(model, loss, params, state, x, y)  # the gradient of each example's cost, stacked on axis 0

The textbook measures how fast each layer learns by ‖δˡ‖, the length of the vector of ∂C/∂bˡⱼ (BP3); in a
deep sigmoid network the early layers' ‖δˡ‖ are much smaller — the vanishing gradient problem. Here the norms
are measured inside the compiled epoch without changing it: `record_gradient_norms(optimizer)` wraps the
optimizer so that every applied update also adds the per-layer norms of the gradient it received to running
sums in the optimizer state; `make_diagnostic_epoch` runs the training engine's `make_epoch` with it and
returns their means over the epoch's steps. A layer is a params dict holding "b" (and "w"), in the params'
pytree order (for `mlp`, the Dense layers from input to output). The weight gradient includes a penalty's
share when a penalty is given (biases are never penalised).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import gradients as gradient_sources
from jaxnets.core import Ctx
from jaxnets.optim.base import GradientTransformation
from jaxnets.training._cache import cached
from jaxnets.training.epoch import make_epoch
from jaxnets.training.state import TrainState, init_train_state


def _layers(tree):
    """[(path string, dict with "b")] for every dict holding a "b" leaf, in pytree order."""
    found = []
    for path, _ in jax.tree_util.tree_leaves_with_path(tree):
        last = path[-1] if path else None
        if isinstance(last, jax.tree_util.DictKey) and last.key == "b":
            found.append(path[:-1])
    if not found:
        raise ValueError("no layer with a bias 'b' was found in the params; the diagnostics measure dense and "
                         "convolutional layers (params dicts with 'w' and 'b')")
    return found


def layer_names(params) -> list[str]:
    """The pytree paths of the layers measured (e.g. '[0]', '[2]', ... for an mlp)."""
    return [jax.tree_util.keystr(p) for p in _layers(params)]


def _get(tree, path):
    for k in path:
        tree = tree[k.key if isinstance(k, jax.tree_util.DictKey) else k.idx]
    return tree


def layer_gradient_norms(grads) -> tuple[jax.Array, jax.Array]:
    """(‖∂C/∂bˡ‖, ‖∂C/∂Wˡ‖) for every layer l of a gradient pytree: two float32 arrays of shape (L,)
    (‖∂C/∂W‖ is 0 for a layer without "w")."""
    b, w = [], []
    for path in _layers(grads):
        layer = _get(grads, path)
        b.append(jnp.sqrt(jnp.sum(jnp.square(layer["b"].astype(jnp.float32)))))
        w.append(jnp.sqrt(jnp.sum(jnp.square(layer["w"].astype(jnp.float32)))) if "w" in layer else jnp.float32(0))
    return jnp.stack(b), jnp.stack(w)


class NormRecorderState(NamedTuple):
    """The wrapped optimizer's state and running sums of the per-layer gradient norms over `count` updates."""

    inner: Any
    delta_sum: jax.Array
    weight_sum: jax.Array
    count: jax.Array


def record_gradient_norms(optimizer) -> GradientTransformation:
    """`optimizer` (optax protocol) with per-layer gradient norms summed into its state (NormRecorderState);
    the updates are exactly the wrapped optimizer's."""

    def init(params):
        n = len(_layers(params))
        zeros = jnp.zeros((n,), jnp.float32)
        return NormRecorderState(optimizer.init(params), zeros, zeros, jnp.zeros((), jnp.int32))

    def update(grads, state, params=None, **extra):
        updates, inner = optimizer.update(grads, state.inner, params, **extra)
        b, w = layer_gradient_norms(grads)
        return updates, NormRecorderState(inner, state.delta_sum + b, state.weight_sum + w, state.count + 1)

    return GradientTransformation(init, update)


def make_diagnostic_epoch(model, loss, optimizer, *, batch_size: int, gradients: str = "manual", penalty=None,
                          drop_last: bool = False, augment=None):
    """Like `make_epoch(...)`: `epoch(ts, x, y, key) -> (ts, metrics)` on a TrainState of `optimizer`, training
    identically, with two more metrics: "delta_norm" and "weight_grad_norm", (L,) float32 arrays, the means of
    ‖∂C/∂bˡ‖ and ‖∂C/∂Wˡ‖ over the epoch's applied steps (each a mini-batch gradient). Pure; jit or vmap it."""
    recorded = record_gradient_norms(optimizer)
    inner = make_epoch(model, loss, recorded, batch_size=batch_size, gradients=gradients, penalty=penalty,
                       drop_last=drop_last, augment=augment)

    def epoch(ts, x, y, key):
        n = len(_layers(ts.params))
        zeros = jnp.zeros((n,), jnp.float32)
        wrapped = ts._replace(opt_state=NormRecorderState(ts.opt_state, zeros, zeros, jnp.zeros((), jnp.int32)))
        wrapped, m = inner(wrapped, x, y, key)
        rec = wrapped.opt_state
        count = jnp.maximum(rec.count, 1).astype(jnp.float32)
        m = dict(m, delta_norm=rec.delta_sum / count, weight_grad_norm=rec.weight_sum / count)
        return wrapped._replace(opt_state=rec.inner), m

    return epoch


def gradient_norms(model, loss, params, state, x, y, *, gradients: str = "manual", penalty=None,
                   train: bool = False, key=None) -> dict:
    """Per-layer norms of the gradient of the cost over all of (x, y) at `params` (one batch; the forward in
    evaluation mode unless `train`): {"layers": names, "delta": (L,) ‖∂C/∂bˡ‖, "weight": (L,) ‖∂C/∂Wˡ‖}."""
    b, w = jax.device_get(cached(_norms_program, model, loss, gradients, penalty, bool(train))(
        params, state, jnp.asarray(x), jnp.asarray(y), key))
    return {"layers": layer_names(params), "delta": np.asarray(b), "weight": np.asarray(w)}


class LearningSpeed(NamedTuple):
    """layers: layer names; delta / weight: (epochs + 1, L) numpy arrays of ‖δˡ‖ = ‖∂C/∂bˡ‖ and ‖∂C/∂Wˡ‖ —
    row 0 over the probe set at initialisation, row e the mean over the mini-batch steps of epoch e;
    train_loss: (epochs,); params / state: after training."""

    layers: list
    delta: np.ndarray
    weight: np.ndarray
    train_loss: np.ndarray
    params: Any
    state: Any


@functools.lru_cache(maxsize=8)
def _speed_programs(model, loss, optimizer, input_shape, batch_size, gradients, penalty):
    init = jax.jit(lambda k: init_train_state(model, optimizer, k, input_shape))
    run = jax.jit(make_diagnostic_epoch(model, loss, optimizer, batch_size=batch_size, gradients=gradients,
                                        penalty=penalty))
    return init, run


@functools.lru_cache(maxsize=8)
def _norms_program(model, loss, gradients, penalty, train):
    grad_fn = gradient_sources.get(gradients)(model, loss, penalty)
    return jax.jit(lambda p, s, xb, yb, key: layer_gradient_norms(grad_fn(p, s, xb, yb, Ctx(train, key))[1]))


def learning_speed(model, loss, optimizer, train_data, *, epochs: int, batch_size: int, key,
                   gradients: str = "manual", penalty=None, probe=None, params=None, state=None) -> LearningSpeed:
    """Train like `jaxnets.fit` (same init `model.init(key, ...)` unless `params`/`state` are given, same epoch
    keys `fold_in(key, e - 1)`) while recording the per-layer gradient norms of every epoch inside the compiled
    epoch. probe: (x, y) for the initial full-batch norms (default: the first 1,000 training examples, as in
    the textbook)."""
    from jaxnets.training import validate as check

    epochs = check.positive_int(epochs, "epochs")
    x, y = (jnp.asarray(a) for a in check.check_arrays(train_data, "train_data"))
    init, run = cached(_speed_programs, model, loss, optimizer, tuple(x.shape[1:]), batch_size, gradients, penalty)
    if params is None or state is None:
        ts = init(key)
        params = ts.params if params is None else params
        state = ts.state if state is None else state
    ts = TrainState.create(params, state, optimizer)
    px, py = probe if probe is not None else (x[:1000], y[:1000])
    first = gradient_norms(model, loss, ts.params, ts.state, jnp.asarray(px), jnp.asarray(py),
                           gradients=gradients, penalty=penalty)
    delta, weight, losses = [first["delta"]], [first["weight"]], []
    for e in range(epochs):
        ts, m = run(ts, x, y, jax.random.fold_in(key, e))
        m = jax.device_get(m)
        delta.append(np.asarray(m["delta_norm"]))
        weight.append(np.asarray(m["weight_grad_norm"]))
        losses.append(float(m["loss"]))
    return LearningSpeed(first["layers"], np.stack(delta), np.stack(weight), np.asarray(losses), ts.params, ts.state)


# ----------------------------------------------------------------------------------------------- dead ReLUs
def _relu_caches(layer, cache, path, out):
    from jaxnets.layers import Relu

    children = getattr(layer, "children", ())
    if children:
        for i, child in enumerate(children):
            _relu_caches(child, cache[i], path + (i,), out)
    elif layer is Relu or layer.name == "Relu":
        out.append((path, cache))  # Relu caches its input z


def dead_relu_fraction(model, params, state, x, *, batch_size: int = 1024) -> dict:
    """Units of every ReLU layer that never fire (z ≤ 0) on any example of x, in evaluation mode.

    A unit is one element of the layer's per-example activation (a neuron; for a convolutional layer one
    position of one feature map). Returns {"layers": [{"path", "units", "dead", "fraction"}], "dead",
    "units", "fraction"} (the last three over all ReLU layers); ValueError if the model has no ReLU layer.
    """
    x = jnp.asarray(x)

    @jax.jit
    def fired(xb):
        _, _, cache = model.forward(params, state, xb, Ctx(False, None))
        found = []
        _relu_caches(model, cache, (), found)
        return [p for p, _ in found], [jnp.any(z > 0, axis=0) for _, z in found]

    paths, active = None, None
    for start in range(0, x.shape[0], batch_size):
        p, a = fired(x[start:start + batch_size])
        paths = p
        active = a if active is None else [u | v for u, v in zip(active, a)]
    if not active:
        raise ValueError(f"{model.name}: the model has no Relu layer; dead units are measured on ReLU activations")
    layers = []
    for path, a in zip(paths, active):
        a = np.asarray(a)
        dead = int(a.size - a.sum())
        layers.append({"path": "".join(f"[{i}]" for i in path), "units": int(a.size), "dead": dead,
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
    grad_fn = gradient_sources.get(gradients)(model, loss, penalty)

    def one(xy):
        xi, yi = xy
        _, g = grad_fn(params, state, xi[None], yi[None], Ctx(train, key))
        return g

    run = jax.jit(lambda xs, ys: jax.lax.map(one, (xs, ys), batch_size=batch_size) if batch_size
                  else jax.vmap(one)((xs, ys)))
    return run(jnp.asarray(x), jnp.asarray(y))
