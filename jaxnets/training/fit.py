"""`fit`: train one model with the training engine — validation, history, early stopping, checkpoints.

    result = jaxnets.fit(model, loss, optimizer, (x, y), epochs=30, batch_size=32, key=key,
                         val_data=(xv, yv), early_stopping=EarlyStopping(patience=5))
    result.params, result.state, result.opt_state, result.history, result.best_epoch

Everything is checked before anything compiles, by `jaxnets.training.run.check_run` (each error names the argument
and the fix), then `jaxnets.training.engine.run` trains the checked `Run`. Epoch numbers are 1-based everywhere (history, best_epoch, messages,
checkpoint names); epoch e draws everything random from `fold_in(key, e − 1)`.

Divergence: when a step's cost, gradient or update is NaN/Inf, training stops and `TrainingDivergedError` is
raised; its message names the epoch and step, and `err.result` is a FitResult (stop_reason "diverged")
holding the last finite params/state/opt_state (those before the failing step) and the history so far.
"""
from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import numpy as np

from jaxnets.core import Layer
from jaxnets.losses import Loss, Penalty
from jaxnets.optim.base import GradientTransformation
from jaxnets.training import engine, validate
from jaxnets.training.early_stopping import EarlyStopping, StopReason
from jaxnets.training.evaluation import DEFAULT_CHUNK
from jaxnets.training.history import History
from jaxnets.training.metrics import check_metrics
from jaxnets.training.resume import CheckpointDir, CheckpointWriteError, data_digest, run_identity
from jaxnets.training.run import check_run
from jaxnets.training.state import TrainState
from jaxnets.training.streaming import looks_like_arrays

class FitResult(NamedTuple):
    """params/state: the final ones, or those of `best_epoch` when early stopping restored them;
    opt_state: the last optimizer state; history: a `History`; best_epoch: 1-based epoch with the best
    monitored value (early stopping's monitor, else val_loss; None without validation data);
    stop_reason: a `StopReason` (a str): "completed" | "early_stopping" | "callback" | "diverged" |
    "data_exhausted" (a stream of batches ran out; a warning says so) | "interrupted" (the result an error
    carries); train_state: the final TrainState (params not restored); resumed_from: the epoch the run continued from (0 for a fresh start).
    stopped_early, diverged and epochs_run follow from these."""

    params: Any
    state: Any
    opt_state: Any
    history: History
    best_epoch: Optional[int]
    stop_reason: str
    train_state: TrainState
    resumed_from: int = 0

    @property
    def stopped_early(self) -> bool:
        """Early stopping, a callback or the end of a stream ended training before `epochs`."""
        return StopReason(self.stop_reason).stopped_early

    @property
    def diverged(self) -> bool:
        return self.stop_reason == StopReason.DIVERGED

    @property
    def epochs_run(self) -> int:
        """Epochs completed, resumed ones included."""
        return len(self.history)


class TrainingDivergedError(RuntimeError):
    """A training step produced a NaN/Inf cost, gradient or update. Attributes: result (FitResult with the last
    finite params/state/opt_state and the history), epoch (1-based), step (1-based within the epoch), params,
    state, opt_state, history."""

    def __init__(self, message: str, result: FitResult, epoch: int, step: int):
        super().__init__(message)
        self.result, self.epoch, self.step = result, epoch, step
        self.params, self.state, self.opt_state, self.history = result.params, result.state, result.opt_state, \
            result.history


def fit_result(outcome: engine.Outcome, keep_best: bool, lane: int | None = None, reason: str | None = None):
    """The FitResult of one lane (None: a single model) of an engine Outcome."""
    def pick(tree):
        return tree if lane is None else jax.tree_util.tree_map(lambda a: a[lane], tree)

    j = 0 if lane is None else lane
    reason = reason or outcome.stop_reasons[j]
    ts = pick(outcome.ts)
    restore = keep_best and reason != StopReason.DIVERGED and outcome.best is not None and outcome.best_epochs[j] is not None
    params, state = pick(outcome.best) if restore else (ts.params, ts.state)
    return FitResult(params=params, state=state, opt_state=ts.opt_state, history=outcome.histories[j],
                     best_epoch=outcome.best_epochs[j], stop_reason=reason, train_state=ts,
                     resumed_from=outcome.resumed_from)


def fit(model: Layer, loss: Union[Loss, str, Callable[..., Any]], optimizer: Union[GradientTransformation, str],
        train_data: Any, *, epochs: int, batch_size: int | None = None, key: jax.Array,
        val_data: Optional[tuple[Any, Any]] = None, gradients: str = "manual", penalty: Optional[Penalty] = None,
        early_stopping: EarlyStopping | None = None, checkpoint_dir: Union[str, os.PathLike, None] = None,
        checkpoint_every: int = 1, resume: bool = False, overwrite: bool = False, progress: bool = True,
        verbose: bool = False, mesh=None, drop_last: bool = False, augment=None, params=None, state=None,
        callbacks=None, eval_batch_size: int = DEFAULT_CHUNK, loop: str = "auto", shuffle: bool = True,
        steps_per_epoch: int | None = None, compute_dtype=None, loss_scale: float | None = None,
        trainable=None, plateau: str = "epoch", validation_split: float | None = None,
        keep_checkpoints: int = 2, metrics=None) -> FitResult:
    """Train `model` on `train_data` for `epochs` passes of mini-batches.

    train_data: (x, y) arrays — x (N, ...) floats, y (N,) int labels or float targets of the output shape — or a
    stream of (xb, yb) batches (see `jaxnets.training.streaming`; then batch_size is the batches' own and
    `steps_per_epoch` may bound an epoch). loss / optimizer: a Loss and an optax-protocol GradientTransformation
    (jaxnets.optim or optax), or their names ("softmax_cross_entropy", "adam"). params/state: start values
    (default `model.init(key, x.shape[1:])`). gradients: "manual" | "autodiff". penalty: a `Penalty`.
    early_stopping: an `EarlyStopping` (needs val_data for "val_*" monitors). checkpoint_dir: save every
    `checkpoint_every` epochs and at the end; the directory holds one run: resume=True continues it (bit-exact),
    overwrite=True replaces it, otherwise existing checkpoints are an error (`jaxnets.training.resume`).
    progress: tqdm bar when stderr is a terminal; verbose: one printed line per epoch. mesh: data-parallel over
    a `jax.sharding.Mesh` (every batch must divide over its devices; see `jaxnets.parallel`). drop_last: skip
    the N mod batch_size remainder (by default it is one more, smaller step). augment: `fn(key, xb) -> xb` per
    batch. callbacks: `fn(epoch, row, train_state)` after each epoch; returning True stops training; the train
    state handed to callbacks stays valid after `fit` returns. loop: "auto" | "scan" | "step" (see
    `jaxnets.training.loops`; both give the same params). shuffle: reshuffle the arrays every epoch (False:
    keep their order). compute_dtype: mixed precision, e.g. jnp.bfloat16 (float32 master params; see
    `Policy`); loss_scale: static loss scaling for float16. trainable: which params train — a tree of bools
    with the params' structure or a prefix of it (True = trained), or a predicate `fn(path, leaf) -> bool`; a frozen
    leaf gets no update, no penalty and no weight decay (`jaxnets.training.trainable`). plateau: "epoch" (a
    reduce-on-plateau transformation in the optimizer is judged once per epoch on the monitored value: early
    stopping's monitor, else val_loss, else train_loss, as Keras's ReduceLROnPlateau) or "step" (on each batch's
    cost, as optax's examples do). validation_split: hold out this fraction of the (x, y) arrays, the last
    examples before any shuffling (Keras's rule), as val_data. keep_checkpoints: how many of the newest
    checkpoints `checkpoint_dir` keeps. metrics: more per-epoch columns, {name: fn(outputs, targets) -> scalar
    batch mean} or loss names, measured after each epoch on the training and validation sets ("train_<name>",
    "val_<name>"; `jaxnets.training.metrics`). Returns a `FitResult`; raises
    `TrainingDivergedError` on a NaN/Inf step and `CheckpointWriteError` when a checkpoint cannot be written
    (both carry the result so far).

    History: train_loss / train_accuracy are running means over the epoch's steps (measured while the params
    move, weighted by batch size, the penalty excluded); val_loss / val_accuracy come from an evaluation-mode
    pass after the epoch; accuracy is reported for classification targets only; lr: the learning rate of the
    epoch's last update (plateau scale included) when it can be read (jaxnets' optimizers, optax's
    `inject_hyperparams`), lr_scale: the plateau scale.
    """
    keep_checkpoints = validate.positive_int(keep_checkpoints, "keep_checkpoints", "how many checkpoints to keep")
    checkpoint_every = validate.positive_int(checkpoint_every, "checkpoint_every")
    for flag, name in ((resume, "resume"), (overwrite, "overwrite")):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if (resume or overwrite) and checkpoint_dir is None:
        raise ValueError(f"{'resume' if resume else 'overwrite'}=True needs checkpoint_dir, the directory of the run")
    callbacks = validate.check_callbacks(callbacks)
    metrics = check_metrics(metrics)
    train_data, val_data = _split_validation(train_data, val_data, validation_split)
    run = check_run("fit", model, loss, optimizer, train_data, epochs=epochs, batch_size=batch_size, key=key,
                    val_data=val_data, gradients=gradients, penalty=penalty, early_stopping=early_stopping,
                    loop=loop, drop_last=drop_last, shuffle=shuffle, augment=augment, compute_dtype=compute_dtype,
                    loss_scale=loss_scale, eval_batch_size=eval_batch_size, plateau=plateau,
                    steps_per_epoch=steps_per_epoch, mesh=mesh, params=params, state=state, trainable=trainable,
                    progress=progress)
    plan = engine.Plan.of(run, lanes=None, hps={}, callbacks=callbacks, every=checkpoint_every, progress=progress,
                          verbose=verbose, metrics=metrics)
    keep_best, policy = run.keep_best, run.config.policy
    directory, resume_point = None, None
    try:
        if checkpoint_dir is not None:
            directory = CheckpointDir(checkpoint_dir, resume=resume, overwrite=overwrite,
                                      writer=jax.process_index() == 0, keep=keep_checkpoints)
            if run.streamed and resume and run.data.one_pass:
                raise ValueError("resume=True with an iterator as train_data: a one-pass iterator cannot be rewound "
                                 "to the epoch the run stopped at; pass a function returning the batches of an epoch "
                                 "(called with the epoch number when it takes one) to resume a streamed run")
            digest = {"stream": data_digest(*run.sample)} if run.streamed else data_digest(*run.sample)
            identity = run_identity(model, run.loss, run.build.penalty, run.ts, run.build.optimizer, key, digest, {
                "batch_size": run.config.batch_size, "gradients": gradients, "drop_last": drop_last,
                "shuffle": shuffle, "augment": augment is not None,
                "compute_dtype": None if policy is None else policy.name,
                "loss_scale": None if policy is None else policy.loss_scale, "keep_best": keep_best})
            plan = plan._replace(checkpoint=directory, identity=identity)
            found = directory.prepare(identity)
            if found is not None:
                resume_point = engine.restore(plan, *found)
        try:
            outcome = engine.run(plan, resume_point)
        except engine.Diverged as err:
            result = fit_result(err.outcome, keep_best, reason=StopReason.DIVERGED)
            raise TrainingDivergedError(
                f"training diverged: the cost, a gradient or the update became NaN/Inf at epoch {err.epoch}, step "
                f"{err.step}{'' if err.steps is None else f' of {err.steps}'} (update "
                f"{int(result.train_state.step) + 1} overall). Training stopped; "
                f"err.result holds the last finite params (after {int(result.train_state.step)} updates) and the "
                f"history of the {len(result.history)} completed epochs. {_divergence_hint(policy)}", result,
                err.epoch, err.step) from None
        except BaseException as err:   # an error after training started carries the result so far
            if isinstance(getattr(err, "result", None), engine.Outcome):
                err.result = fit_result(err.result, keep_best)
            raise
    finally:
        if directory is not None:
            directory.close()
    return fit_result(outcome, keep_best)


def _split_validation(train_data, val_data, validation_split):
    """(train_data, val_data) with the last `validation_split` fraction of the arrays held out (Keras's rule)."""
    if validation_split is None:
        return train_data, val_data
    fraction = validate.check_number(validation_split, "validation_split", low=0, high=1, low_open=True,
                                     high_open=True)
    if val_data is not None:
        raise ValueError("validation_split and val_data both give validation data; pass one of them")
    if not looks_like_arrays(train_data):
        raise ValueError("validation_split needs (x, y) arrays; with a stream of batches pass val_data=(x_val, y_val)")
    x, y = validate.check_arrays(train_data, "train_data")
    n = x.shape[0]
    cut = int(np.floor(n * (1.0 - fraction)))
    if cut < 1 or cut >= n:
        raise ValueError(f"validation_split={validation_split} of {n} examples leaves {cut} for training and "
                         f"{n - cut} for validation; both need at least one (choose a fraction such as 0.1)")
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def _divergence_hint(policy) -> str:
    """What to try after a divergence: with a float16 loss scale above 1 the scaled backward pass may overflow."""
    if policy is not None and policy.loss_scale > 1 and policy.name == "float16":
        return (f"With compute_dtype=float16 and loss_scale={policy.loss_scale:g}, the scaled gradients can overflow "
                "float16 (max 65504): lower loss_scale first (or use bfloat16, which needs none); then lower the "
                "learning rate.")
    return "Lower the learning rate, clip gradients (optim.clip_by_global_norm), or check the data scale."

