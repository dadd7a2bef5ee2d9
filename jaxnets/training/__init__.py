"""Training: one engine behind `fit`, ensembles and sweeps, and the pure building blocks it is made of.

Building blocks (pure functions, not jitted; compose with `jit`, `vmap`, `lax.scan`, sharding):

    TrainState(params, state, opt_state, step)                     a NamedTuple pytree
    TrainState.create(params, state, optimizer) / init_train_state(model, optimizer, key, input_shape)
    make_step(model, loss, optimizer, *, gradients="manual", penalty=None, mesh=None, compute_dtype=None)
        -> step(ts, xb, yb, key) -> (ts, {"loss", "correct", "finite"})
    make_epoch(model, loss, optimizer, *, batch_size, gradients="manual", penalty=None, drop_last=False,
               augment=None, mesh=None, shuffle=True, compute_dtype=None)
        -> epoch(ts, x, y, key) -> (ts, {"loss", "accuracy", "correct", "count", "finite", "first_bad_step"})
    make_eval(model, loss, *, batch_size=1024) -> eval(params, state, x, y) -> {"loss", "accuracy", ...}
    make_predict(model, *, batch_size=1024) -> predict(params, state, x) -> outputs

An ensemble: `jax.vmap(epoch, in_axes=(0, None, None, 0))(stack(states), x, y, keys)`.

The engine (`engine.run`) and its pieces: `config` (TrainConfig, Builder, Policy: the frozen cache keys),
`step` (the guarded step), `epoch` (batch plan, scan and step drivers), `loops` (which driver), `programs`
(compiled and memoised), `streaming` (arrays or batches), `evaluation`, `early_stopping`, `history`,
`progress`, `resume` (checkpoint directories), `callbacks` (loggers), `fit`.
"""
from jaxnets.training.callbacks import CSVLogger, JSONLinesLogger, TensorBoardLogger
from jaxnets.training.config import Policy, TrainConfig
from jaxnets.training.early_stopping import EarlyStopping, StopReason
from jaxnets.training.epoch import epoch_layout, make_epoch
from jaxnets.training.evaluation import evaluate, make_eval, make_predict, predict
from jaxnets.training.fit import FitResult, TrainingDivergedError, fit
from jaxnets.training.history import History
from jaxnets.training.plots import plot_history
from jaxnets.training.resume import CheckpointDirError, CheckpointWriteError
from jaxnets.training.state import TrainState, init_train_state, stack, unstack
from jaxnets.training.step import count_correct, make_step

__all__ = [
    "TrainState", "init_train_state", "stack", "unstack", "make_step", "make_epoch", "epoch_layout", "make_eval",
    "make_predict", "count_correct", "fit", "FitResult", "TrainingDivergedError", "evaluate", "predict",
    "EarlyStopping", "StopReason", "History", "plot_history", "Policy", "TrainConfig", "CheckpointDirError",
    "CheckpointWriteError", "CSVLogger", "JSONLinesLogger", "TensorBoardLogger",
]
