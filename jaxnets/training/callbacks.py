"""Loggers to pass as `fit(..., callbacks=[...])`: each writes the epoch's metrics row as training goes.

    fit(..., callbacks=[JSONLinesLogger("runs/a/metrics.jsonl"), TensorBoardLogger("runs/a")])

- `JSONLinesLogger(path)`: one JSON object per epoch per line (`{"epoch": 1, "train_loss": ..., ...}`), appended
  and flushed each epoch, so a crashed run keeps what it logged; needs nothing.
- `CSVLogger(path, append=True)`: a header of the row's columns, then a line per epoch (appending to an existing
  file, so a resumed run continues it); needs nothing. A row with a column the header lacks (appending to the
  file of an earlier run without validation data, say) is an error naming the file and the columns, never a
  silent drop: write to a new path, or pass `append=False` to start the file afresh.
- `TensorBoardLogger(logdir)`: scalars `train/loss`, `train/accuracy`, `val/loss`, `val/accuracy`, `time` (and
  any other numeric column under its own name; a text column as text) per epoch in TensorBoard event files, written with tensorboardX (`pip install jaxnets[tensorboard]`). View them with
  `tensorboard --logdir runs` (the `tensorboard` package) and open http://localhost:6006.

A logger is a callback `fn(epoch, row, train_state)` returning None (it never stops training); `close()` flushes
and closes its file (the loggers also close themselves when the object is garbage-collected). Values may be
Python numbers or NumPy/JAX scalars (written as numbers; NaN/Inf as null/empty); a value that is not a scalar is
an error naming its column.
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


__all__ = ["CSVLogger", "JSONLinesLogger", "TensorBoardLogger"]


def _scalar(key: str, value):
    """A row value as a Python scalar: NumPy/JAX scalars (and one-element arrays) unwrapped; None, str, int and
    float kept; anything else is a TypeError naming the column."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        return value.item()
    raise TypeError(f"logger: the row's column {key!r} holds {type(value).__name__} of shape "
                    f"{getattr(value, 'shape', '?')}, not a scalar; loggers write one number per column and epoch "
                    "(reduce the metric to a number, e.g. float(jnp.mean(...)))")


def _clean(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _row(row) -> dict:
    """The row with every value a finite Python scalar or None."""
    return {key: _clean(_scalar(key, value)) for key, value in row.items()}


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
        self._file.write(json.dumps(_row(row), allow_nan=False) + "\n")
        self._file.flush()


class CSVLogger(_FileLogger):
    """Write each epoch's row to `path` as CSV; the columns are those of the file's header, or of the first row for
    a new file. `append=True` (the default) continues an existing file, so a resumed run adds to it;
    `append=False` starts the file afresh. A row with a column the header lacks raises ValueError naming the
    file and the columns (they would otherwise be dropped); a column the row lacks is left empty."""

    def __init__(self, path, append: bool = True):
        if not isinstance(append, bool):
            raise TypeError(f"CSVLogger(append): True (continue an existing file) or False (start it afresh), got "
                            f"{append!r}")
        self.path = os.fspath(path)
        self._columns = None
        if append and os.path.isfile(self.path) and os.path.getsize(self.path):
            with open(self.path, encoding="utf-8", newline="") as f:
                self._columns = next(csv.reader(f), None)
        self._from_file = self._columns is not None
        self._file = _open(self.path, "a" if append else "w", newline="")
        self._writer = csv.writer(self._file)

    def __call__(self, epoch, row, train_state=None):
        row = _row(row)
        if self._columns is None:
            self._columns = list(row)
            self._writer.writerow(self._columns)
        self._check_columns(epoch, row)
        self._writer.writerow(["" if row.get(c) is None else row[c] for c in self._columns])
        self._file.flush()

    def _check_columns(self, epoch, row) -> None:
        new = [c for c in row if c not in self._columns]
        if not new:
            return
        source = "the header of the existing file (an earlier run's)" if self._from_file else "the file's header"
        raise ValueError(f"CSVLogger({self.path}): the row of epoch {epoch} has columns {new} that {source} "
                         f"{self._columns} lacks, so they would be dropped; log to a new path, delete the file, or "
                         "pass CSVLogger(path, append=False) to start it afresh (JSONLinesLogger keeps any columns)")


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
        for key, value in _row(row).items():
            if key == "epoch" or value is None:
                continue
            if isinstance(value, str):      # a text column (no scalar chart holds it)
                self._writer.add_text(key, value, global_step=epoch)
            else:
                self._writer.add_scalar(_TAGS.get(key, key), value, global_step=epoch)
        self._writer.flush()

    def close(self):
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.close()
            self._writer = None

    __del__ = close
