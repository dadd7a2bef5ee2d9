"""Loggers to pass as `fit(..., callbacks=[...])`: each writes the epoch's metrics row as training goes.

    fit(..., callbacks=[JSONLinesLogger("runs/a/metrics.jsonl"), TensorBoardLogger("runs/a")])

- `JSONLinesLogger(path)`: one JSON object per epoch per line (`{"epoch": 1, "train_loss": ..., ...}`), appended
  and flushed each epoch, so a crashed run keeps what it logged; needs nothing.
- `CSVLogger(path)`: a header of the row's columns, then a line per epoch (appending to an existing file, so a
  resumed run continues it); needs nothing.
- `TensorBoardLogger(logdir)`: scalars `train/loss`, `train/accuracy`, `val/loss`, `val/accuracy`, `time` per
  epoch in TensorBoard event files, written with tensorboardX (`pip install jaxnets[tensorboard]`). View them with
  `tensorboard --logdir runs` (the `tensorboard` package) and open http://localhost:6006.

A logger is a callback `fn(epoch, row, train_state)` returning None (it never stops training); `close()` flushes
and closes its file (the loggers also close themselves when the object is garbage-collected).
"""
from __future__ import annotations

import csv
import json
import math
import os


def _open(path: str, mode: str, newline=None):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    return open(path, mode, encoding="utf-8", newline=newline)


def _clean(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


class _FileLogger:
    """A logger writing to one text file, flushed every epoch and closed on `close()` or garbage collection."""

    _file = None

    def close(self):
        if self._file is not None and not self._file.closed:
            self._file.close()

    __del__ = close


class JSONLinesLogger(_FileLogger):
    """Append each epoch's row to `path` as one JSON line (NaN/Inf written as null)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = _open(self.path, "a")

    def __call__(self, epoch, row, train_state=None):
        self._file.write(json.dumps({k: _clean(v) for k, v in row.items()}, allow_nan=False) + "\n")
        self._file.flush()


class CSVLogger(_FileLogger):
    """Append each epoch's row to `path` as CSV (a resumed run continues the file); the columns are those of the
    file's header, or of the first row for a new file."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._columns = None
        if os.path.isfile(self.path) and os.path.getsize(self.path):
            with open(self.path, encoding="utf-8", newline="") as f:
                self._columns = next(csv.reader(f), None)
        self._file = _open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)

    def __call__(self, epoch, row, train_state=None):
        if self._columns is None:
            self._columns = list(row)
            self._writer.writerow(self._columns)
        self._writer.writerow(["" if _clean(row.get(c)) is None else row[c] for c in self._columns])
        self._file.flush()


_TAGS = {"train_loss": "train/loss", "train_accuracy": "train/accuracy", "val_loss": "val/loss",
         "val_accuracy": "val/accuracy", "time": "time"}


class TensorBoardLogger:
    """Scalars per epoch in TensorBoard event files under `logdir` (tensorboardX's `SummaryWriter`)."""

    def __init__(self, logdir):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as err:
            raise ImportError("TensorBoardLogger needs tensorboardX: pip install 'jaxnets[tensorboard]' (or "
                              "pip install tensorboardX); JSONLinesLogger and CSVLogger need nothing") from err
        self.logdir = os.fspath(logdir)
        self._writer = SummaryWriter(self.logdir)

    def __call__(self, epoch, row, train_state=None):
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and _clean(value) is not None:
                self._writer.add_scalar(_TAGS.get(key, key), value, global_step=epoch)
        self._writer.flush()

    def close(self):
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.close()
            self._writer = None

    __del__ = close
