"""Early stopping: stop when the monitored validation metric has not improved for `patience` epochs; and
`StopReason`, why a run (or one lane of it) stopped.

    fit(..., val_data=(xv, yv), early_stopping=EarlyStopping(patience=5))

An epoch improves on the best so far when its value beats it by more than `min_delta` (lower for a loss,
higher for an accuracy; NaN never improves). After `patience` epochs in a row without improvement training
stops, i.e. at epoch best_epoch + patience. With `restore_best`, `fit` returns the params/state of the best
epoch (the optimizer state stays the last one).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from jaxnets.training.validate import check_number, positive_int

__all__ = ["EarlyStopping", "MONITORS", "StopReason", "Tracker"]


class StopReason(str, enum.Enum):
    """Why training stopped. A `str` subclass, so `result.stop_reason == "diverged"` keeps working and it is
    written to JSON as its value; `stopped_early` is defined here once for fit, ensembles and sweeps."""

    COMPLETED = "completed"            # every epoch ran
    EARLY_STOPPING = "early_stopping"  # the monitored value stopped improving (`EarlyStopping`)
    CALLBACK = "callback"              # a callback returned True
    DIVERGED = "diverged"              # a step's cost, gradient or update was NaN/Inf
    DATA_EXHAUSTED = "data_exhausted"  # a stream of batches ran out
    INTERRUPTED = "interrupted"        # an error or Ctrl-C stopped training (the result an error carries, err.result)

    def __str__(self) -> str:
        return self.value

    @property
    def stopped_early(self) -> bool:
        """Ended before `epochs` for a reason other than divergence."""
        return self in (StopReason.EARLY_STOPPING, StopReason.CALLBACK, StopReason.DATA_EXHAUSTED,
                        StopReason.INTERRUPTED)

MONITORS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")


@dataclass(frozen=True)
class EarlyStopping:
    """patience: epochs without improvement before stopping (None: never stop, only track the best epoch — what
    the engine uses to find the best epoch without a rule); min_delta: the least change that counts;
    monitor: one of MONITORS; restore_best: return the best epoch's params."""

    patience: int | None
    min_delta: float = 0.0
    monitor: str = "val_loss"
    restore_best: bool = True

    def __post_init__(self):
        if self.patience is not None:
            positive_int(self.patience, "EarlyStopping: patience", "the number of epochs without improvement, e.g. "
                         "EarlyStopping(patience=5)")
        check_number(self.min_delta, "EarlyStopping: min_delta (the least change that counts as an improvement)",
                     low=0)
        if not isinstance(self.monitor, str) or self.monitor not in MONITORS:
            raise ValueError(f"EarlyStopping: monitor must be one of {MONITORS}, got {self.monitor!r}")
        if not isinstance(self.restore_best, bool):
            raise TypeError(f"EarlyStopping: restore_best must be True (return the best epoch's params) or False "
                            f"(keep the last), got {type(self.restore_best).__name__} {self.restore_best!r}")

    @property
    def mode(self) -> str:
        """"min" for losses, "max" for accuracies."""
        return "min" if self.monitor.endswith("loss") else "max"

    def improves(self, value, best) -> bool:
        """Whether `value` beats `best` (None: no best yet) by more than min_delta."""
        if value is None or not math.isfinite(value):
            return False
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta

    def tracker(self) -> "Tracker":
        return Tracker(self)


class Tracker:
    """The running state of an EarlyStopping rule: best value, its epoch, epochs since."""

    def __init__(self, rule: EarlyStopping):
        self.rule, self.best, self.best_epoch, self.wait = rule, None, None, 0

    def update(self, epoch: int, value) -> tuple[bool, bool]:
        """Record `value` for `epoch`; returns (improved, stop)."""
        if self.rule.improves(value, self.best):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            return True, False
        self.wait += 1
        return False, self.rule.patience is not None and self.wait >= self.rule.patience

    def replay(self, history) -> bool:
        """Feed every row of a History (e.g. after resuming); returns whether it would have stopped."""
        stop = False
        for row in history:
            _, stop = self.update(row["epoch"], row.get(self.rule.monitor))
        return stop
