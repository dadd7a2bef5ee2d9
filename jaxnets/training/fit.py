"""`fit`: the training loop around `make_epoch` — validation, history, early stopping, checkpoints.

    result = jaxnets.fit(model, loss, optimizer, (x, y), epochs=30, batch_size=32, key=key,
                         val_data=(xv, yv), early_stopping=EarlyStopping(patience=5))
    result.params, result.state, result.opt_state, result.history, result.best_epoch

Each epoch is one compiled call (`jax.jit(make_epoch(...), donate_argnums=0)`), followed by one
evaluation-mode pass over `val_data` and a single host fetch of both metrics. Epoch e (1-based) draws
everything random from `fold_in(key, e - 1)`. Epoch numbers are 1-based everywhere (history, best_epoch,
messages, checkpoint names).

Divergence: when a step's cost or gradient is NaN/Inf, training stops and `TrainingDivergedError` is raised;
its message names the epoch and step, and `err.result` is a FitResult (diverged=True) holding the last good
params/state/opt_state (those before the failing step) and the history so far.
"""
from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxnets.training import resume as ckpt
from jaxnets.training import validate as check
from jaxnets.training._cache import cached
from jaxnets.training.early_stopping import EarlyStopping
from jaxnets.training.epoch import epoch_layout, make_epoch
from jaxnets.training.evaluation import DEFAULT_CHUNK, _jitted_eval as _eval_program
from jaxnets.training.history import History
from jaxnets.training.report import Reporter
from jaxnets.training.state import TrainState


class FitResult(NamedTuple):
    """params/state: the final ones, or those of `best_epoch` when early stopping restored them;
    opt_state: the last optimizer state; history: a `History`; best_epoch: 1-based epoch with the best
    monitored value (early stopping's monitor, else val_loss; None without validation data);
    stopped_early: True when early stopping or a callback ended training before `epochs`;
    stop_reason: "completed" | "early_stopping" | "callback" | "diverged"; diverged: True only on the result
    carried by TrainingDivergedError; epochs_run: epochs completed (resumed ones included); resumed_from:
    the epoch the run continued from (0 for a fresh start);
    train_state: the final TrainState (params not restored)."""

    params: Any
    state: Any
    opt_state: Any
    history: History
    best_epoch: Optional[int]
    stopped_early: bool
    stop_reason: str
    diverged: bool
    epochs_run: int
    train_state: TrainState
    resumed_from: int = 0


class TrainingDivergedError(RuntimeError):
    """A training step produced a NaN/Inf cost or gradient. Attributes: result (FitResult with the last good
    params/state/opt_state and the history), epoch (1-based), step (1-based within the epoch), params, state,
    opt_state, history."""

    def __init__(self, message: str, result: FitResult, epoch: int, step: int):
        super().__init__(message)
        self.result, self.epoch, self.step = result, epoch, step
        self.params, self.state, self.opt_state, self.history = result.params, result.state, result.opt_state, \
            result.history


@functools.lru_cache(maxsize=16)
def _epoch_program(model, loss, optimizer, batch_size, gradients, penalty, drop_last, augment, mesh):
    return jax.jit(make_epoch(model, loss, optimizer, batch_size=batch_size, gradients=gradients, penalty=penalty,
                              drop_last=drop_last, augment=augment, mesh=mesh), donate_argnums=0)


@functools.lru_cache(maxsize=16)
def _create_program(optimizer):
    return jax.jit(lambda params, state: TrainState.create(params, state, optimizer))


def _copy(tree, sharding=None):
    """Fresh device buffers (so donating them never invalidates arrays the caller holds)."""
    return jax.device_put(tree, sharding, may_alias=False)


def _check_key(key):
    if not isinstance(key, jax.Array) or not (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
                                              or (key.dtype == jnp.uint32 and key.ndim >= 1)):
        raise TypeError(f"key must be a JAX PRNG key (jax.random.key(0) or jax.random.PRNGKey(0)), got "
                        f"{type(key).__name__}")


def fit(model, loss, optimizer, train_data, *, epochs: int, batch_size: int, key, val_data=None,
        gradients: str = "manual", penalty=None, early_stopping: EarlyStopping | None = None, checkpoint_dir=None,
        checkpoint_every: int = 1, resume: bool = False, progress: bool = True, verbose: bool = False, mesh=None,
        drop_last: bool = False, augment=None, params=None, state=None, callbacks=None,
        eval_batch_size: int = DEFAULT_CHUNK) -> FitResult:
    """Train `model` on `train_data = (x, y)` for `epochs` passes of mini-batches of `batch_size`.

    x: (N, ...) float inputs; y: (N,) int labels or float targets of the output shape (numpy or jax).
    params/state: start values (default `model.init(key, x.shape[1:])`). optimizer: an optax-protocol
    GradientTransformation (jaxnets.optim or optax). gradients: "manual" | "autodiff". penalty: a
    `jaxnets.losses.Penalty`. early_stopping: an `EarlyStopping` (needs val_data for "val_*" monitors).
    checkpoint_dir: save a checkpoint every `checkpoint_every` epochs and at the end; resume: continue from the
    latest checkpoint there (bit-exact; a fresh start when there is none). progress: tqdm bar when stderr is
    a terminal; verbose: one printed line per epoch. mesh: data-parallel over a `jax.sharding.Mesh` (every
    batch, the last one too, must divide over its devices; see `jaxnets.parallel`; with several processes only
    process 0 reports and writes checkpoints). drop_last: skip the N % batch_size remainder (by default it is one
    more, smaller step). augment: `fn(key, xb) -> xb` per batch. callbacks: `fn(epoch, row, train_state)`
    called after each epoch; returning True stops training (the train state is donated to the next epoch:
    copy what you keep). Returns a `FitResult`; raises `TrainingDivergedError` on a NaN/Inf step.

    History: train_loss / train_accuracy are running means over the epoch's steps (measured while the params
    move, weighted by batch size, the penalty excluded); val_loss / val_accuracy come from an evaluation-mode
    pass after the epoch; accuracy is reported for classification targets only.
    """
    check.check_gradients(gradients)
    epochs = check.positive_int(epochs, "epochs")
    batch_size = check.positive_int(batch_size, "batch_size")
    checkpoint_every = check.positive_int(checkpoint_every, "checkpoint_every")
    _check_key(key)
    x, y = check.check_arrays(train_data, "train_data")
    n = x.shape[0]
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training examples; use batch_size <= {n}")
    if params is None or state is None:
        init_p, init_s = check.init_params(model, key, x)
        params = init_p if params is None else params
        state = init_s if state is None else state
    out_shape = check.output_shape(model, params, state, x)
    check.check_targets(y, out_shape, "train_data")
    classification = check.is_classification(y, out_shape)
    if val_data is not None:
        xv, yv = check.check_arrays(val_data, "val_data")
        check.check_same_features(x, xv)
        check.check_targets(yv, out_shape, "val_data")
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError("early_stopping must be an EarlyStopping(patience=...) or None")
        if early_stopping.monitor.startswith("val") and val_data is None:
            raise ValueError(f"early stopping monitors {early_stopping.monitor!r} but no val_data was given; "
                             "pass val_data=(x_val, y_val) or monitor='train_loss'")
        if early_stopping.monitor.endswith("accuracy") and not classification:
            raise ValueError("early stopping on accuracy needs classification targets; monitor a loss instead")
    full, rem = epoch_layout(n, batch_size, drop_last)
    steps = full + (rem > 0)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir, the directory the interrupted run saved to")

    sharding = None
    if mesh is not None:
        from jaxnets.parallel import check_batches, replicated

        check_batches(mesh, n, batch_size, drop_last)  # every batch, the last one too, splits over the devices
        sharding = replicated(mesh)
    x, y = jax.device_put((x, y), sharding)
    if val_data is not None:
        xv, yv = jax.device_put((xv, yv), sharding)

    ts = _copy(cached(_create_program, optimizer)(params, state), sharding)
    monitor = early_stopping.monitor if early_stopping else ("val_loss" if val_data is not None else None)
    tracker = (early_stopping or EarlyStopping(patience=2**31 - 1, monitor=monitor or "train_loss")).tracker()
    keep_best = early_stopping is not None and early_stopping.restore_best
    best, history, start, stop_reason = None, History(), 0, None
    if resume:
        point = ckpt.load(checkpoint_dir, ts, key, (ts.params, ts.state))
        if point is not None:
            ts = jax.device_put(point.ts, sharding)
            best = None if point.best is None else jax.device_put(point.best, sharding)
            history, start, stop_reason = point.history, point.epoch, point.stop_reason
            tracker.replay(history)
    if keep_best and best is None:
        best = _copy((ts.params, ts.state), sharding)

    run_epoch = cached(_epoch_program, model, loss, optimizer, batch_size, gradients, penalty, drop_last, augment,
                        mesh)
    run_eval = cached(_eval_program, model, loss, eval_batch_size) if val_data is not None else None
    config = {"batch_size": batch_size, "gradients": gradients, "drop_last": drop_last, "epochs": epochs}
    main = jax.process_index() == 0  # multi-process runs: only process 0 reports and writes checkpoints
    reporter = Reporter(epochs, min(start, epochs), progress=progress and main, verbose=verbose and main)

    def result(reason, diverged=False):
        restore = keep_best and not diverged and best is not None and tracker.best_epoch is not None
        params_out, state_out = best if restore else (ts.params, ts.state)
        return FitResult(params_out, state_out, ts.opt_state, history, tracker.best_epoch if monitor else None,
                         reason in ("early_stopping", "callback"), reason, diverged, len(history), ts, start)

    try:
        epoch = start
        while stop_reason is None and epoch < epochs:
            epoch += 1
            t0 = time.perf_counter()
            ts, m = run_epoch(ts, x, y, jax.random.fold_in(key, epoch - 1))
            vm = run_eval(ts.params, ts.state, xv, yv) if run_eval is not None else None
            m, vm = jax.device_get((m, vm))
            row = {"epoch": epoch, "train_loss": float(m["loss"])}
            if classification:
                row["train_accuracy"] = float(m["accuracy"])
            if vm is not None:
                row["val_loss"] = float(vm["loss"])
                if classification:
                    row["val_accuracy"] = float(vm["accuracy"])
            row["time"] = time.perf_counter() - t0
            if not bool(m["finite"]):
                bad = int(m["first_bad_step"]) + 1
                raise TrainingDivergedError(
                    f"training diverged: the cost or a gradient became NaN/Inf at epoch {epoch}, step {bad} of "
                    f"{steps} (update {int(ts.step) + 1} overall). Training stopped; err.result holds the last "
                    f"finite params (after {int(ts.step)} updates) and the history of the {len(history)} completed "
                    "epochs. Lower the learning rate, clip gradients (optim.clip_by_global_norm), or check the "
                    "data scale.", result("diverged", diverged=True), epoch, bad)
            history.append(row)
            improved, stop = tracker.update(epoch, row.get(tracker.rule.monitor))
            if improved and keep_best:
                best = _copy((ts.params, ts.state), sharding)
            if early_stopping is not None and stop:
                stop_reason = "early_stopping"
                reporter.message(f"early stopping at epoch {epoch}: {monitor} has not improved for "
                                 f"{early_stopping.patience} epochs (best at epoch {tracker.best_epoch})")
            for callback in callbacks or ():
                if callback(epoch, dict(row), ts) is True and stop_reason is None:
                    stop_reason = "callback"
            reporter.epoch(row)
            due = epoch % checkpoint_every == 0 or epoch == epochs or stop_reason
            if checkpoint_dir is not None and main and due:
                ckpt.save(checkpoint_dir, epoch, ts, key, best if keep_best else None, history,
                          stop_reason=stop_reason, config=config)
    finally:
        reporter.close()
    return result(stop_reason or "completed")
