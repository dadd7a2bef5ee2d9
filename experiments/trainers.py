"""Training helpers for the experiments: `jaxnets.fit` with per-epoch test evaluation, and the accuracy protocols.

Every experiment trains with `jaxnets.fit` and evaluates with `jaxnets.evaluate`; their default `loop="auto"`
runs ConvNets on the CPU one jitted step (and one jitted evaluation chunk) at a time from Python, because XLA:CPU
executes convolutions inside a compiled loop body far slower (jax-ml/jax#12868), and everything else as one
compiled `lax.scan` per epoch.

Accuracy protocols (see experiments/README.md): "at_best_val" = test accuracy at the epoch of highest
validation accuracy (the one we quote), "final" = last epoch, "peak_test" = best test accuracy over epochs (the
book's chapter-1 protocol, optimistic because it selects on the test set).
"""
from __future__ import annotations

import numpy as np


def fit_tracked(model, loss, optimizer, train, *, epochs, batch_size, key, val=None, test=None, train_eval=None,
                **fit_kwargs):
    """`jaxnets.fit` plus, after each epoch, evaluation-mode accuracy/loss on `test` and on `train_eval` (e.g. a
    slice of the training set: the history's train accuracy is a running mean with dropout active).

    Returns (FitResult, curves) with curves = {"epoch", "train_loss", "train_accuracy", "val_loss",
    "val_accuracy", "test_loss", "test_accuracy", "train_eval_accuracy", ...} (lists, one entry per epoch)."""
    import jaxnets

    extra = {"test": test, "train_eval": train_eval}
    curves = {f"{k}_{m}": [] for k, d in extra.items() if d is not None for m in ("loss", "accuracy")}

    def record(epoch, row, ts):
        for k, d in extra.items():
            if d is not None:
                m = jaxnets.evaluate(model, loss, ts.params, ts.state, d)
                curves[f"{k}_loss"].append(m["loss"])
                curves[f"{k}_accuracy"].append(m["accuracy"])

    callbacks = [record] + list(fit_kwargs.pop("callbacks", None) or [])
    result = jaxnets.fit(model, loss, optimizer, train, epochs=epochs, batch_size=batch_size, key=key,
                         val_data=val, progress=False, callbacks=callbacks, **fit_kwargs)
    for col in result.history.columns:
        curves[col] = result.history[col]
    return result, curves


def protocols(curves) -> dict:
    """Test accuracy under the three protocols (see the module docstring), with the selected epochs."""
    test = curves["test_accuracy"]
    out = {"final": test[-1], "peak_test": max(test), "peak_test_epoch": int(np.argmax(test)) + 1}
    if curves.get("val_accuracy"):
        best = int(np.argmax(curves["val_accuracy"]))
        out.update(at_best_val=test[best], best_val_epoch=best + 1, best_val_accuracy=curves["val_accuracy"][best])
    return out
