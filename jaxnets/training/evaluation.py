"""Evaluation-mode passes over a dataset in fixed-size chunks: loss/accuracy and predictions.

    ev = make_eval(model, loss, batch_size=1024)
    m = jax.jit(ev)(params, state, x, y)          # {"loss", "accuracy", "correct", "count"} (device scalars)
    jaxnets.evaluate(model, params, state, (x, y), loss) -> {"loss": float, "accuracy": float | None}
    jaxnets.predict(model, params, state, x) -> outputs (N, ...)

The forward pass runs with `Ctx(train=False)` (dropout off, BatchNorm on its running statistics; the layer
state is read, never updated). The N examples are processed in chunks of `batch_size` (a `lax.map` over the
full chunks, then the remainder chunk), so memory is bounded by one chunk's activations. "loss" is the data
cost (no penalty) averaged over all N examples.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Ctx, Layer
from jaxnets.training._cache import cached
from jaxnets.training.step import count_correct

DEFAULT_CHUNK = 1024


def _chunked(fn, n: int, batch_size: int | None):
    """Apply `fn(start, size)` over [0, n) in chunks; returns (stacked outputs of full chunks, remainder output)."""
    size = n if batch_size is None else min(batch_size, n)
    full, rem = divmod(n, size)
    body = (lambda i: fn(i * size, size))
    stacked = lax.map(body, jnp.arange(full, dtype=jnp.int32)) if full else None
    tail = fn(full * size, rem) if rem else None
    return stacked, tail


def _slice(a, start, size):
    return lax.dynamic_slice_in_dim(a, start, size) if isinstance(start, jax.Array) else a[start:start + size]


def make_eval(model: Layer, loss, *, batch_size: int | None = DEFAULT_CHUNK):
    """A pure `eval(params, state, x, y) -> {"loss", "accuracy", "correct", "count"}` in evaluation mode.

    batch_size: chunk size (None: the whole set at once). "accuracy" is correct / N, meaningful for
    classification targets only (see `jaxnets.training.step.count_correct`). Not jitted; vmappable over
    stacked params/state.
    """
    _check_chunk(batch_size)

    def evaluate_fn(params, state, x, y):
        n = x.shape[0]
        if n == 0:
            raise ValueError("evaluate: the dataset is empty; pass at least one example")

        def chunk(start, size):
            xb, yb = _slice(x, start, size), _slice(y, start, size)
            out, _, _ = model.forward(params, state, xb, Ctx(False, None))
            return loss.value(out, yb).astype(jnp.float32) * size, count_correct(out, yb, loss)

        stacked, tail = _chunked(chunk, n, batch_size)
        parts = [p for p in (stacked, tail) if p is not None]
        total = sum(jnp.sum(p[0]) for p in parts)
        correct = sum(jnp.sum(p[1]) for p in parts).astype(jnp.int32)
        return {"loss": total / n, "accuracy": correct / n, "correct": correct, "count": jnp.int32(n)}

    return evaluate_fn


def make_predict(model: Layer, *, batch_size: int | None = DEFAULT_CHUNK):
    """A pure `predict(params, state, x) -> outputs` in evaluation mode, in chunks of `batch_size`."""
    _check_chunk(batch_size)

    def predict_fn(params, state, x):
        if x.shape[0] == 0:
            raise ValueError("predict: x is empty; pass at least one example")

        def chunk(start, size):
            out, _, _ = model.forward(params, state, _slice(x, start, size), Ctx(False, None))
            return out

        stacked, tail = _chunked(chunk, x.shape[0], batch_size)
        parts = []
        if stacked is not None:
            parts.append(stacked.reshape((-1,) + stacked.shape[2:]))
        if tail is not None:
            parts.append(tail)
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts)

    return predict_fn


def _check_chunk(batch_size):
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None (whole set), got {batch_size!r}")


@functools.lru_cache(maxsize=32)
def _jitted_eval(model, loss, batch_size):
    return jax.jit(make_eval(model, loss, batch_size=batch_size))


@functools.lru_cache(maxsize=32)
def _jitted_predict(model, batch_size):
    return jax.jit(make_predict(model, batch_size=batch_size))


def evaluate(model: Layer, params, state, data, loss, *, batch_size: int | None = DEFAULT_CHUNK) -> dict:
    """Data cost and accuracy of `model` on `data = (x, y)` in evaluation mode, as Python floats.

    Returns {"loss": float, "accuracy": float or None}; accuracy is None for regression targets (float
    targets that are not one-hot rows).
    """
    from jaxnets.training.validate import check_arrays, is_classification, output_shape

    x, y = check_arrays(data, "data")
    out_shape = output_shape(model, params, state, x)
    m = jax.device_get(cached(_jitted_eval, model, loss, batch_size)(params, state, jnp.asarray(x), jnp.asarray(y)))
    accuracy = float(m["accuracy"]) if is_classification(y, out_shape) else None
    return {"loss": float(m["loss"]), "accuracy": accuracy}


def predict(model: Layer, params, state, x, *, batch_size: int | None = DEFAULT_CHUNK) -> jax.Array:
    """The model's outputs on `x` (N, ...) in evaluation mode, computed in chunks of `batch_size`."""
    return cached(_jitted_predict, model, batch_size)(params, state, jnp.asarray(x))
