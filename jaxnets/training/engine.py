"""The training engine: one host loop for `fit`, `fit_ensemble`, the sweeps and (through `fit`) pretraining.

A run advances one model, or K "lanes" — K models of one structure, with their own keys and (traced)
hyper-parameters, stacked on axis 0 and trained by the same vmapped programs. The single fit is the lanes code
with the vmap left out, so both share every line below: per epoch,

1. train: `driver.train` — the scan driver's compiled epoch, or the step driver's jitted step per mini-batch
   (from arrays, with the batch cut inside the step, or from a stream, each batch prefetched) —
   `jaxnets.training.drivers`;
2. evaluate on the validation data (one compiled pass, `Evaluator`), then one host fetch of all metrics;
3. per lane: a history row (with "lr"/"lr_scale" when the optimizer's learning rate can be read); divergence (a lane whose step was non-finite stops with its last finite state, and a
   single fit raises `TrainingDivergedError`); early stopping and the best epoch (`EarlyStopping`'s tracker, the
   only implementation); the best params kept on the device;
4. a reduce-on-plateau judgement on the monitored value (when the optimizer has one and the config judges per
   epoch); callbacks (a callback that keeps the train state it is given gets arrays that stay valid: the engine then
   continues from a copy; otherwise nothing is copied and the next epoch reuses the buffers), progress, a
   checkpoint when due (`jaxnets.training.resume`).

Lanes that stopped stay in the program, frozen (their update is masked off), until every lane has stopped.
Epoch e (1-based) of a lane draws everything random from `fold_in(key, e − 1)`.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.optim import plateau
from jaxnets.training.config import Builder, TrainConfig
from jaxnets.training.early_stopping import EarlyStopping, StopReason
from jaxnets.training.epoch import epoch_layout
from jaxnets.training.history import History
from jaxnets.training.metrics import metrics_program
from jaxnets.training.programs import programs
from jaxnets.training.progress import Reporter
from jaxnets.training.resume import CheckpointWriteError
from jaxnets.training.streaming import ArrayData


class Plan(NamedTuple):
    """A checked run (a `jaxnets.training.run.Run`, through `Plan.of`) and what its caller adds. data: ArrayData
    (device arrays) or Stream; val: (x, y) device arrays or None; lanes: K or None (one model); hps: {name: (K,)
    arrays} ({} for one model); keys: (K,) keys or one key; ts: the initial TrainState (stacked for lanes); rule:
    EarlyStopping or None; monitor: the column the best epoch is chosen on (None: no best epoch); keep_best: keep
    the best epoch's params; callbacks: fn(epoch, row, ts) (one model only); checkpoint: a CheckpointDir or None,
    with `identity` the run's fingerprint; every: checkpoint period; on_divergence: "raise" (one model) or "stop"
    (lanes); metrics: (name, fn) pairs measured after each epoch on the training and validation sets
    (`jaxnets.training.metrics`)."""

    build: Builder
    loss: Any
    config: TrainConfig
    data: Any
    val: Any
    lanes: Optional[int]
    hps: dict
    keys: Any
    ts: Any
    epochs: int
    classification: bool
    input_shape: tuple
    rule: Optional[EarlyStopping] = None
    monitor: Optional[str] = None
    keep_best: bool = False
    callbacks: tuple = ()
    checkpoint: Any = None
    identity: Optional[dict] = None
    every: int = 1
    progress: bool = True
    verbose: bool = False
    desc: str = "fit"
    sharding: Any = None
    metrics: tuple = ()

    @classmethod
    def of(cls, run, **rest) -> "Plan":
        """The Plan of a checked `Run`: its fields of the same names, then `rest` (lanes, hps, callbacks, ...;
        a chunk of lanes gives its own keys and ts)."""
        return cls(**{**{name: getattr(run, name) for name in cls._fields if name in run._fields}, **rest})


class Outcome(NamedTuple):
    """What the engine returns: the final train state, the best (params, state) (or None), one History,
    stop reason (None while running; "completed" | "early_stopping" | "callback" | "diverged") and divergence
    point ((epoch, step) or None) per lane, the epoch the run resumed from, per-epoch wall times, total time.
    Stop reasons: "completed", "early_stopping", "callback", "diverged", "data_exhausted" (a stream ran out)."""

    ts: Any
    best: Any
    histories: list
    stop_reasons: list
    diverged_at: list
    best_epochs: list
    resumed_from: int
    epoch_seconds: list
    seconds: float


class Diverged(Exception):
    """Raised inside `run` for a single model: carries the partial Outcome; `fit` turns it into
    TrainingDivergedError."""

    def __init__(self, outcome: Outcome, epoch: int, step: int, steps: int):
        super().__init__("diverged")
        self.outcome, self.epoch, self.step, self.steps = outcome, epoch, step, steps


def _lane(tree, j, lanes):
    return tree if lanes is None else jax.tree_util.tree_map(lambda a: a[j], tree)


def _epoch_keys(keys, e, lanes):
    if lanes is None:
        return jax.random.fold_in(keys, e - 1)
    return jax.vmap(lambda k: jax.random.fold_in(k, e - 1))(keys)


def _copy(tree, sharding=None):
    """Fresh device buffers (so donating the train state never invalidates what is kept)."""
    return jax.device_put(tree, sharding, may_alias=False)


_RAN: set = set()   # ids of the (memoised) Programs that have trained an epoch in this process: compiled already


@jax.jit
def _select(mask, new, old):
    return jax.tree_util.tree_map(lambda n, o: jnp.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


def _row(epoch, m, vm, classification, seconds):
    row = {"epoch": epoch, "train_loss": float(m["loss"])}
    if classification:
        row["train_accuracy"] = float(m["accuracy"])
    if vm is not None:
        row["val_loss"] = float(vm["loss"])
        if classification:
            row["val_accuracy"] = float(vm["accuracy"])
    row["time"] = seconds
    return row


def steps_per_epoch(plan: Plan) -> Optional[int]:
    if isinstance(plan.data, ArrayData):
        full, rem = epoch_layout(plan.data.n, plan.config.batch_size, plan.config.drop_last)
        return full + (1 if rem else 0)
    return plan.data.steps_per_epoch


def run(plan: Plan, resume_point=None) -> Outcome:
    """Train `plan` for its epochs (see the module docstring); `resume_point`: (ts, best, histories,
    stop_reasons, epoch) restored from a checkpoint, or None."""
    config, lanes = plan.config, plan.lanes
    k = 1 if lanes is None else lanes
    data_n = plan.data.n if isinstance(plan.data, ArrayData) else None
    progs = programs(plan.build, plan.loss, config, data_n, lanes, plan.input_shape)
    ts, keys = _copy(plan.ts, plan.sharding), plan.keys
    histories = [History() for _ in range(k)]
    stop = [None] * k
    diverged_at = [None] * k
    epoch0 = 0
    best = None
    if resume_point is not None:
        ts, best, histories, stop, epoch0 = resume_point
        ts = jax.device_put(ts, plan.sharding)
        best = None if best is None else jax.device_put(best, plan.sharding)
    rule = plan.rule or EarlyStopping(patience=None, monitor=plan.monitor or "train_loss")   # tracks, never stops
    trackers = [rule.tracker() for _ in range(k)]
    for tracker, history in zip(trackers, histories):
        tracker.replay(history)
    if plan.keep_best and best is None:
        best = (ts.params, ts.state)
    main = jax.process_index() == 0  # multi-process runs: only process 0 reports and writes checkpoints
    reporter = Reporter(plan.epochs, min(epoch0, plan.epochs), steps_per_epoch(plan), progress=plan.progress and main,
                        verbose=plan.verbose and main, desc=plan.desc)
    epoch_seconds, t_start = [], time.perf_counter()
    if id(progs) not in _RAN and epoch0 < plan.epochs:
        reporter.compiling()
    _RAN.add(id(progs))
    judging = not config.plateau_per_step and plateau.has_plateau(plan.ts.opt_state)
    observing = bool(jax.eval_shape(progs.observe, plan.ts, plan.hps))

    def outcome(unfinished=StopReason.COMPLETED):
        best_epochs = [t.best_epoch if plan.monitor else None for t in trackers]
        return Outcome(ts, best, histories, [s or unfinished for s in stop], diverged_at, best_epochs, epoch0,
                       epoch_seconds, time.perf_counter() - t_start)

    try:
        epoch = epoch0
        while epoch < plan.epochs and not all(stop):
            epoch += 1
            t0 = time.perf_counter()
            reporter.begin_epoch()
            active = np.array([s is None for s in stop])
            active_arg = jnp.asarray(active if lanes else active[0])
            # the epoch trains (and donates) a copy: `ts` stays the state of the last epoch in the histories, valid
            # for what a callback kept and for the result an error carries
            trained, m = progs.driver.train(_copy(ts, plan.sharding), plan.hps, plan.data.epoch(epoch),
                                            _epoch_keys(keys, epoch, lanes), active_arg)
            vm = None
            if plan.val is not None:
                vm = progs.evaluate(trained.params, trained.state, plan.hps, plan.val[0], plan.val[1])
            obs = progs.observe(trained, plan.hps) if observing else None
            extra = _measure(plan, trained) if plan.metrics else None
            m, vm, obs, extra = jax.device_get((m, vm, obs, extra))
            _check_batches(m, epoch, lanes)
            ts = trained
            seconds = time.perf_counter() - t0
            epoch_seconds.append(seconds)
            improved = np.zeros(k, bool)
            rows = []
            exhausted = getattr(plan.data, "exhausted", None)
            for j in range(k):
                if not active[j]:
                    continue
                mj, vj = _lane(m, j, lanes), _lane(vm, j, lanes)
                if exhausted and int(mj["count"]) == 0:   # a stream with no batch left: nothing trained this epoch
                    stop[j] = StopReason.DATA_EXHAUSTED
                    continue
                if not bool(mj["finite"]):
                    diverged_at[j], stop[j] = (epoch, int(mj["first_bad_step"]) + 1), StopReason.DIVERGED
                    if lanes is None:
                        raise Diverged(outcome(), epoch, diverged_at[j][1], steps_per_epoch(plan))
                    continue
                row = _row(epoch, mj, vj, plan.classification, seconds)
                row.update({name: float(v) for name, v in (_lane(obs, j, lanes) or {}).items()})
                row.update({name: float(v) for name, v in (_lane(extra, j, lanes) or {}).items()})
                histories[j].append(row)
                rows.append(row)
                better, patience_out = trackers[j].update(epoch, row.get(rule.monitor))
                improved[j] = better
                if plan.rule is not None and patience_out:
                    stop[j] = StopReason.EARLY_STOPPING
                    if lanes is None:
                        reporter.message(f"early stopping at epoch {epoch}: {rule.monitor} has not improved for "
                                         f"{rule.patience} epochs (best at epoch {trackers[j].best_epoch})")
            if exhausted:
                warnings.warn(exhausted, RuntimeWarning, stacklevel=3)
                stop = [s or StopReason.DATA_EXHAUSTED for s in stop]
            if judging and rows:
                ts = progs.judge(ts, plan.hps, jnp.asarray(_monitored(histories, epoch, rule.monitor, lanes)))
            if plan.keep_best and improved.any():   # `ts` is never donated (each epoch trains a copy)
                best = (ts.params, ts.state) if lanes is None else _select(jnp.asarray(improved),
                                                                          (ts.params, ts.state), best)
            for callback in plan.callbacks if rows else ():
                if callback(epoch, dict(rows[0]), ts) is True and stop[0] is None and epoch < plan.epochs:
                    stop[0] = StopReason.CALLBACK
            if lanes is None and rows:
                reporter.epoch(rows[0])
            elif lanes is not None:
                reporter.epoch({"epoch": epoch, "time": seconds}, _lanes_note(rows, rule.monitor, stop))
            due = epoch % plan.every == 0 or epoch == plan.epochs or all(stop)
            if plan.checkpoint is not None and main and due:
                _save(plan, epoch, ts, best, histories, stop, outcome)
    except (Diverged, CheckpointWriteError):
        raise   # these carry their result already
    except BaseException as err:  # a bad batch, the user's stream or callback, Ctrl-C: nothing trained is lost
        attach_result(err, outcome(StopReason.INTERRUPTED), f"training stopped in epoch {epoch}; err.result holds the state after epoch "
                                      f"{len(histories[0])} and the history of the {len(histories[0])} finished "
                                      "epochs")
        raise
    finally:
        reporter.close()
    return outcome()


def _measure(plan: Plan, ts) -> dict:
    """The user's metrics on the training arrays ("train_<name>") and the validation set ("val_<name>")."""
    run = metrics_program(plan.build, plan.metrics, plan.config.eval_batch_size, plan.lanes is not None)
    out = {}
    for prefix, data in (("train_", (plan.data.x, plan.data.y) if isinstance(plan.data, ArrayData) else None),
                         ("val_", plan.val)):
        if data is not None:
            out.update({prefix + k: v for k, v in run(ts.params, ts.state, plan.hps, *data).items()})
    return out


def _monitored(histories, epoch: int, monitor: str, lanes):
    """The monitored value of this epoch per lane, for the plateau, which minimises a non-negative value: an accuracy
    becomes the error rate 1 − accuracy (its relative tolerance then means what it means for a loss); a lane
    without a row (it stopped) gets +inf."""
    values = np.array([h.rows[-1].get(monitor) if len(h) and h.rows[-1]["epoch"] == epoch else None
                       for h in histories], dtype=float)
    values = 1.0 - values if monitor.endswith("accuracy") else values
    values = np.where(np.isfinite(values), values, np.inf).astype(np.float32)
    return values if lanes else values[0]


def attach_result(err: BaseException, result, note: str) -> None:
    """Give `err` the result trained so far (`err.result`) and a note saying so (shown under its message)."""
    err.result = result
    if hasattr(err, "add_note"):
        err.add_note(note)


def _check_batches(m, epoch: int, lanes) -> None:
    """Raise for a streamed batch whose values the compiled step refused (labels out of range, NaN/Inf)."""
    for j in range(1 if lanes is None else lanes):
        bad = int(_lane(m, j, lanes)["first_bad_batch"])
        if bad >= 0:
            raise ValueError(f"train_data: epoch {epoch}, batch {bad + 1} has labels outside the model's classes or "
                             "NaN/Inf inputs or targets (the step refused it and training stopped before it); clean "
                             "the stream, e.g. check each batch with np.isfinite and the label range")


def _lanes_note(rows, monitor, stop) -> str:
    values = [r[monitor] for r in rows if r.get(monitor) is not None and np.isfinite(r[monitor])]
    best = (max if monitor.endswith("accuracy") else min)(values) if values else None
    return f"{sum(s is None for s in stop)}/{len(stop)} lanes running" + \
        (f", best {monitor} {best:.4f}" if best is not None else "")


def _save(plan: Plan, epoch, ts, best, histories, stop, outcome: Callable):
    tree = {"train": ts, "key": plan.keys}
    if best is not None:
        tree["best"] = best
    metadata = {"epoch": int(epoch), "histories": [h.to_dict() for h in histories], "stop_reasons": stop,
                "has_best": best is not None, "run": plan.identity}
    plan.checkpoint.save(epoch, tree, metadata, outcome)


def restore(plan: Plan, path: str, meta: dict):
    """The resume point (ts, best, histories, stop_reasons, epoch) from the checkpoint at `path`."""
    from jaxnets import checkpoint

    like = {"train": plan.ts, "key": plan.keys}
    if meta.get("has_best"):
        like["best"] = (plan.ts.params, plan.ts.state)
    try:
        tree = checkpoint.load(path, like=like)
    except checkpoint.CheckpointError as err:
        raise checkpoint.CheckpointError(
            f"cannot resume from {path}: {err}. The checkpoint was written by a different model or optimizer; "
            "use a fresh checkpoint_dir or overwrite=True") from err
    histories = [History.from_dict(h) for h in meta["histories"]]
    reasons = [None if r is None else StopReason(r) for r in meta["stop_reasons"]]
    return tree["train"], tree.get("best"), histories, reasons, int(meta["epoch"])
