"""`fit(..., metrics=...)`: extra per-epoch columns, Keras's `metrics=`.

    fit(..., metrics={"mae": lambda out, y: jnp.mean(jnp.abs(out - y))}, val_data=(xv, yv))
    fit(..., metrics=["mean_absolute_error", "huber"])       # any loss's name or alias: its value is the metric
    fit(..., metrics={"kl": losses.kl_divergence})           # or a Loss
    history["train_mae"], history["val_mae"]

A metric is `fn(outputs, targets) -> scalar`, the mean over the batch (as a loss value is); outputs (m, k) as the
model gives them, targets as in the data. After each epoch every metric is measured in evaluation mode over the
whole training set (column "train_<name>") and the validation set ("val_<name>"), in chunks, one forward pass per
set for all metrics. (So "train_<name>" is measured on the params at the end of the epoch, while "train_loss" is
the running mean during it.) "accuracy" is accepted and adds nothing: it is recorded for classification targets
anyway.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Ctx
from jaxnets.memo import memoised
from jaxnets.training.config import Builder
from jaxnets.training.evaluation import _slice, chunks

__all__ = ["check_metrics", "metrics_program"]


def check_metrics(metrics: Any) -> tuple:
    """`metrics` as a tuple of (name, fn) pairs; a dict {name: fn} or a list of loss names. Errors name the entry."""
    if metrics is None:
        return ()
    from jaxnets import losses

    if isinstance(metrics, dict):
        items = list(metrics.items())
    elif isinstance(metrics, (list, tuple)):
        items = []
        for entry in metrics:
            if not isinstance(entry, str):
                raise TypeError(f"metrics: a list names metrics by string (e.g. ['mae']); give functions as a dict "
                                f"{{'name': fn}}, got {type(entry).__name__}")
            items.append((entry, entry))
    else:
        raise TypeError(f"metrics must be a dict {{'name': fn(outputs, targets) -> scalar}} or a list of loss names, "
                        f"got {type(metrics).__name__}")
    out = []
    for name, fn in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"metrics: a metric's name must be a word such as 'mae' (it names the columns "
                             f"train_<name> and val_<name>), got {name!r}")
        if name == "accuracy" and fn == "accuracy":
            continue   # recorded for classification targets already
        if isinstance(fn, str):
            try:
                fn = losses.get(fn).value
            except ValueError as err:
                raise ValueError(f"metrics[{name!r}]: {err}") from None
        elif isinstance(fn, losses.Loss):
            fn = fn.value
        if not callable(fn):
            raise TypeError(f"metrics[{name!r}] must be a function fn(outputs, targets) -> scalar batch mean, got "
                            f"{type(fn).__name__}")
        if name in ("loss", "accuracy"):
            raise ValueError(f"metrics: {name!r} is already a column (train_{name}, val_{name}); choose another name")
        out.append((name, fn))
    return tuple(out)


@memoised(maxsize=16)
def metrics_program(build: Builder, metrics: tuple, batch_size, lanes: bool) -> Callable:
    """jitted `run(params, state, hp, x, y) -> {name: mean over the examples}` in evaluation mode (vmapped over
    stacked params/state/hp when `lanes`)."""

    def run(params, state, hp, x, y):
        model = build(hp).model

        def chunk(start, size):
            xb, yb = _slice(x, start, size), _slice(y, start, size)
            out = model.forward(params, state, xb, Ctx(False, None))[0]
            out = out.astype(jnp.promote_types(out.dtype, jnp.float32))
            return jnp.stack([jnp.asarray(fn(out, yb), jnp.float32) * size for _, fn in metrics])

        n = x.shape[0]
        size, full, rem = chunks(n, batch_size)
        total = jnp.zeros(len(metrics), jnp.float32)
        if full:
            total = jnp.sum(lax.map(lambda i: chunk(i * size, size), jnp.arange(full, dtype=jnp.int32)), axis=0)
        if rem:
            total = total + chunk(full * size, rem)
        return {name: total[i] / n for i, (name, _) in enumerate(metrics)}

    return jax.jit(jax.vmap(run, in_axes=(0, 0, 0, None, None)) if lanes else run)
