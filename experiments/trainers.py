"""Training helpers for the experiments: `fit` with per-epoch test evaluation, a host-driven step loop for
ConvNets on CPU, chunked evaluation, and the accuracy protocols.

Accuracy protocols (see experiments/README.md): "at_best_val" = test accuracy at the epoch of highest
validation accuracy (the one we quote), "final" = last epoch, "peak_test" = best test accuracy over epochs (the
book's chapter-1 protocol, optimistic because it selects on the test set).
"""
from __future__ import annotations

import time

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


def evaluate_chunks(model, params, state, data, loss, chunk=1000, _cache={}):
    """Evaluation-mode {"loss", "accuracy"} over `data` with one jitted forward per chunk, driven from Python.

    Workaround (see `fit_stepwise`): `jaxnets.evaluate` runs its chunks in a `lax.map`, and XLA:CPU executes
    convolutions inside a loop body ~10x slower than at top level (jax-ml/jax#12868)."""
    import jax
    import jax.numpy as jnp

    from jaxnets.training.step import count_correct

    key = (id(model), id(loss))
    if key not in _cache:
        def chunk_fn(p, s, xb, yb):
            out, _, _ = model.forward(p, s, xb, jaxnets_ctx(False))
            return loss.value(out, yb) * xb.shape[0], count_correct(out, yb, loss)

        _cache[key] = (model, loss, jax.jit(chunk_fn))  # keep model/loss alive so their ids stay unique
    fn = _cache[key][2]
    x, y = data
    total, correct = 0.0, 0
    for start in range(0, x.shape[0], chunk):
        lv, c = fn(params, state, jnp.asarray(x[start:start + chunk]), jnp.asarray(y[start:start + chunk]))
        total, correct = total + float(lv), correct + int(c)
    return {"loss": total / x.shape[0], "accuracy": correct / x.shape[0]}


def jaxnets_ctx(train, key=None):
    from jaxnets import Ctx

    return Ctx(train, key)


def fit_stepwise(model, loss, optimizer, train, *, epochs, batch_size, key, val=None, test=None, augment=None,
                 penalty=None, gradients="manual", log=None):
    """Mini-batch training with one jitted `jaxnets.training.make_step` call per mini-batch, driven from Python.

    Used for convolutional nets on CPU instead of `jaxnets.fit`, whose whole-epoch `lax.scan` hits XLA:CPU's
    slow path for convolutions inside loop bodies (jax-ml/jax#12868; measured here ~12-15x slower per image
    for `models.cnn2`). Same semantics as `fit`: init `model.init(key, ...)`, epoch e shuffles with
    `fold_in(key, e - 1)`, the N % B remainder is one more (smaller) step. `augment(key, xb) -> xb` per batch.
    Returns (params, state, curves) with the same curve names as `fit_tracked` (train_* are running means)."""
    import jax
    import jax.numpy as jnp

    from jaxnets.training import init_train_state, make_step

    step = make_step(model, loss, optimizer, gradients=gradients, penalty=penalty)

    def one_step(ts, x, y, idx, k):
        xb, yb = x[idx], y[idx]
        if augment is not None:
            xb = augment(jax.random.fold_in(k, 1), xb)
        return step(ts, xb, yb, jax.random.fold_in(k, 0))

    run_step = jax.jit(one_step, donate_argnums=0)
    x, y = jnp.asarray(train[0]), jnp.asarray(train[1])
    n = x.shape[0]
    ts = jax.jit(lambda k: init_train_state(model, optimizer, k, x.shape[1:]))(key)
    names = ["epoch", "train_loss", "train_accuracy", "time"] + [f"{s}_{m}" for s, d in (("val", val), ("test", test))
                                                                  if d is not None for m in ("loss", "accuracy")]
    curves = {k: [] for k in names}
    for e in range(1, epochs + 1):
        t0 = time.perf_counter()
        ek = jax.random.fold_in(key, e - 1)
        order = np.asarray(jax.random.permutation(jax.random.fold_in(ek, 0), n))
        loss_sum, correct = 0.0, 0
        metrics = []
        for i, start in enumerate(range(0, n, batch_size)):
            idx = jnp.asarray(order[start:start + batch_size])
            ts, m = run_step(ts, x, y, idx, jax.random.fold_in(ek, i + 1))
            metrics.append((m["loss"], m["correct"], idx.shape[0]))
        for lv, c, size in jax.device_get(metrics):
            loss_sum, correct = loss_sum + float(lv) * size, correct + int(c)
        curves["epoch"].append(e)
        curves["train_loss"].append(loss_sum / n)
        curves["train_accuracy"].append(correct / n)
        for split, d in (("val", val), ("test", test)):
            if d is not None:
                m = evaluate_chunks(model, ts.params, ts.state, d, loss)
                curves[f"{split}_loss"].append(m["loss"])
                curves[f"{split}_accuracy"].append(m["accuracy"])
        curves["time"].append(time.perf_counter() - t0)
        if log is not None:
            log(f"epoch {e}/{epochs}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in curves.items() if k != "epoch"))
    return ts.params, ts.state, curves


def protocols(curves) -> dict:
    """Test accuracy under the three protocols (see the module docstring), with the selected epochs."""
    test = curves["test_accuracy"]
    out = {"final": test[-1], "peak_test": max(test), "peak_test_epoch": int(np.argmax(test)) + 1}
    if curves.get("val_accuracy"):
        best = int(np.argmax(curves["val_accuracy"]))
        out.update(at_best_val=test[best], best_val_epoch=best + 1, best_val_accuracy=curves["val_accuracy"][best])
    return out
