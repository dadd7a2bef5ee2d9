"""Evaluation-mode passes over a dataset in fixed-size chunks: loss/accuracy and predictions.

    jaxnets.evaluate(model, loss, params, state, (x, y)) -> {"loss": float, "accuracy": float | None}
    jaxnets.predict(model, params, state, x) -> outputs (N, ...)
    ev = make_eval(model, loss, batch_size=1024); m = jax.jit(ev)(params, state, x, y)     # pure building block

The forward pass runs with `Ctx(train=False)` (dropout off, BatchNorm on its running statistics; the layer
state is read, never updated). The N examples are processed in chunks of `batch_size`, so memory is bounded by
one chunk's activations. Two drivers, as for training (`jaxnets.training.loops`): "scan" maps over the chunks
inside one compiled program (`lax.map`), "step" calls one jitted chunk after another from Python, summing on
the device (convolutions on the CPU run far faster that way); "auto" picks. "loss" is the data cost (no
penalty) averaged over all N examples.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Ctx, Layer
from jaxnets.training import loops
from jaxnets.memo import memoised
from jaxnets.training.config import Builder
from jaxnets.training.step import count_correct

DEFAULT_CHUNK = 1024


def chunks(n: int, batch_size: int | None) -> tuple[int, int, int]:
    size = n if batch_size is None else min(batch_size, n)
    full, rem = divmod(n, size)
    return size, full, rem


def _slice(a, start, size):
    return lax.dynamic_slice_in_dim(a, start, size) if isinstance(start, jax.Array) else a[start:start + size]


def chunk_eval(model, loss):
    def chunk(params, state, x, y, start, size):
        xb, yb = _slice(x, start, size), _slice(y, start, size)
        out, _, _ = model.forward(params, state, xb, Ctx(False, None))
        out = out.astype(jnp.promote_types(out.dtype, jnp.float32))   # float32 or wider (float64 stays)
        return loss.value(out, yb) * size, count_correct(out, yb, loss)

    return chunk


def totals(n, total, correct):
    correct = correct.astype(jnp.int32)
    return {"loss": total / n, "accuracy": correct / n, "correct": correct, "count": jnp.int32(n)}


def make_eval(model: Layer, loss, *, batch_size: int | None = DEFAULT_CHUNK):
    """A pure `eval(params, state, x, y) -> {"loss", "accuracy", "correct", "count"}` in evaluation mode, the
    chunks in one `lax.map` (the scan driver). batch_size: chunk size (None: the whole set at once). "accuracy"
    is correct / N, meaningful for classification targets only. Not jitted; vmappable over stacked params/state."""
    check_chunk(batch_size)
    chunk = chunk_eval(model, loss)

    def evaluate_fn(params, state, x, y):
        n = x.shape[0]
        if n == 0:
            raise ValueError("evaluate: the dataset is empty; pass at least one example")
        size, full, rem = chunks(n, batch_size)
        total, correct = 0.0, jnp.int32(0)
        if full:
            losses_, corrects = lax.map(lambda i: chunk(params, state, x, y, i * size, size),
                                        jnp.arange(full, dtype=jnp.int32))
            total, correct = jnp.sum(losses_), jnp.sum(corrects)
        if rem:
            lv, c = chunk(params, state, x, y, full * size, rem)
            total, correct = total + lv, correct + c
        return totals(n, total, correct)

    return evaluate_fn


def make_predict(model: Layer, *, batch_size: int | None = DEFAULT_CHUNK):
    """A pure `predict(params, state, x) -> outputs` in evaluation mode, in chunks of `batch_size` (lax.map)."""
    check_chunk(batch_size)

    def predict_fn(params, state, x):
        if x.shape[0] == 0:
            raise ValueError("predict: x is empty; pass at least one example")
        size, full, rem = chunks(x.shape[0], batch_size)
        parts = []
        if full:
            out = lax.map(lambda i: model.forward(params, state, _slice(x, i * size, size), Ctx(False, None))[0],
                          jnp.arange(full, dtype=jnp.int32))
            parts.append(out.reshape((-1,) + out.shape[2:]))
        if rem:
            parts.append(model.forward(params, state, x[full * size:], Ctx(False, None))[0])
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts)

    return predict_fn


def check_chunk(batch_size, name: str = "batch_size"):
    """An evaluation chunk size: a positive int, or None for the whole set at once."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"{name} must be a positive int (examples per evaluation chunk) or None (the whole set at "
                         f"once), got {batch_size!r}")
    return batch_size


class Evaluator:
    """Evaluation of `build(hp).model` on (x, y), for one lane or vmapped over lanes, by the given driver;
    `__call__(params, state, hp, x, y)` -> device metrics (the caller fetches them once)."""

    def __init__(self, build: Builder, loss, batch_size, loop: str, lanes: bool):
        self.batch_size, self.loop, self.lanes = check_chunk(batch_size), loop, lanes
        self._build, self._loss, self._chunk = build, loss, {}
        if loop == "scan":
            def full(params, state, hp, x, y):
                return make_eval(build(hp).model, loss, batch_size=batch_size)(params, state, x, y)

            self._full = jax.jit(jax.vmap(full, in_axes=(0, 0, 0, None, None)) if lanes else full)
        self._totals = jax.jit(totals, static_argnums=0)

    def _chunk_program(self, size: int):
        if size not in self._chunk:
            def chunk(params, state, hp, x, y, start):
                return chunk_eval(self._build(hp).model, self._loss)(params, state, x, y, start, size)

            self._chunk[size] = jax.jit(jax.vmap(chunk, in_axes=(0, 0, 0, None, None, None)) if self.lanes else chunk)
        return self._chunk[size]

    def __call__(self, params, state, hp, x, y):
        if self.loop == "scan":
            return self._full(params, state, hp, x, y)
        n = x.shape[0]
        size, full, rem = chunks(n, self.batch_size)
        total = correct = None
        for start, length in [(i * size, size) for i in range(full)] + ([(full * size, rem)] if rem else []):
            lv, c = self._chunk_program(length)(params, state, hp, x, y, jnp.int32(start))
            total, correct = (lv, c) if total is None else (total + lv, correct + c)
        return self._totals(n, total, correct)


class Predictor:
    """Compiled predictions for one (model, chunk size, driver): `predictor(params, state, x) -> outputs`
    (vmapped over stacked lanes with `lanes`: outputs (K, N, ...))."""

    def __init__(self, model, batch_size, loop: str, lanes: bool = False):
        self.model, self.batch_size, self.loop, self.lanes, self._chunk = (model, check_chunk(batch_size), loop,
                                                                           lanes, {})
        if loop == "scan":
            fn = make_predict(model, batch_size=batch_size)
            self._scan = jax.jit(jax.vmap(fn, in_axes=(0, 0, None)) if lanes else fn)

    def _chunk_program(self, size: int):
        if size not in self._chunk:
            def chunk(params, state, x, start):
                return self.model.forward(params, state, _slice(x, start, size), Ctx(False, None))[0]

            self._chunk[size] = jax.jit(jax.vmap(chunk, in_axes=(0, 0, None, None)) if self.lanes else chunk)
        return self._chunk[size]

    def __call__(self, params, state, x):
        if self.loop == "scan":
            return self._scan(params, state, x)
        size, full, rem = chunks(x.shape[0], self.batch_size)
        parts = [self._chunk_program(size)(params, state, x, jnp.int32(i * size)) for i in range(full)]
        if rem:
            parts.append(self._chunk_program(rem)(params, state, x, jnp.int32(full * size)))
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1 if self.lanes else 0)


@memoised(maxsize=32)
def evaluator(model, loss, batch_size, loop, lanes=False) -> Evaluator:
    return Evaluator(Builder(model, None), loss, batch_size, loop, lanes)


@memoised(maxsize=32)
def predictor(model, batch_size, loop, lanes=False) -> Predictor:
    return Predictor(model, batch_size, loop, lanes)


def evaluate(model: Layer, loss, params, state, data, *, batch_size: int | None = DEFAULT_CHUNK,
             loop: str = "auto") -> dict:
    """Data cost and accuracy of `model` on `data = (x, y)` in evaluation mode, as Python floats.

    loss: a `jaxnets.losses.Loss` or its name. Returns {"loss": float, "accuracy": float or None}; accuracy is None
    for regression targets (float targets that are not one-hot rows). The data is checked as `fit` checks it
    (shapes, finite values, labels in range for the model's outputs). loop: "auto" | "scan" | "step".
    """
    from jaxnets.training import validate

    loss = validate.check_loss(loss, "evaluate(model, loss, params, state, data)")
    check_chunk(batch_size)
    validate.check_model_params(model, params, state, "evaluate")
    x, y = validate.check_arrays(data, "data")
    out_shape = validate.output_shape(model, params, state, x)
    validate.check_targets(y, out_shape, "data", loss)
    chosen = loops.resolve(loop, model, params, state, x.shape[1:], x.dtype)
    m = jax.device_get(evaluator(model, loss, batch_size, chosen)(params, state, {}, jnp.asarray(x),
                                                                           jnp.asarray(y)))
    accuracy = float(m["accuracy"]) if validate.is_classification(y, out_shape) else None
    return {"loss": float(m["loss"]), "accuracy": accuracy}


def predict(model: Layer, params, state, x, *, batch_size: int | None = DEFAULT_CHUNK, loop: str = "auto") -> jax.Array:
    """The model's outputs on `x` (N, ...) in evaluation mode, computed in chunks of `batch_size`."""
    from jaxnets.training import validate

    validate.check_model_params(model, params, state, "predict")
    check_chunk(batch_size)
    x = validate.check_inputs(x, "x")
    validate.output_shape(model, params, state, x)
    chosen = loops.resolve(loop, model, params, state, x.shape[1:], x.dtype)
    return predictor(model, batch_size, chosen)(params, state, jnp.asarray(x))
