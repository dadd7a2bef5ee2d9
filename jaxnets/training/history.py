"""`History`: one row of metrics per epoch, written to JSON or CSV.

Columns (a row holds those that apply): "epoch" (1-based), "train_loss", "train_accuracy" (running means over
the epoch's steps, see `jaxnets.training.epoch`), "val_loss", "val_accuracy" (an evaluation-mode pass after
the epoch), "time" (seconds of wall time for the epoch, validation included; the first epoch also pays
compilation). Accuracy columns are absent for regression targets, val columns without validation data.

    history["val_loss"]              # [0.41, 0.33, ...], None where a row lacks the column
    history.to_json("h.json"); History.from_json("h.json"); history.to_csv("h.csv")
    history.to_pandas()              # a DataFrame indexed by epoch (pandas: pip install jaxnets[pandas])
"""
from __future__ import annotations

import csv
import json
import math
import os

ORDER = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "time")


def _clean(value):
    """JSON-safe scalar: Python float/int, None for NaN/Inf."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


class History:
    """A list of per-epoch metric dicts with column access and JSON/CSV export."""

    def __init__(self, rows=None):
        self.rows: list[dict] = [dict(r) for r in (rows or [])]

    def append(self, row: dict) -> None:
        self.rows.append({k: _clean(v) for k, v in row.items()})

    @property
    def columns(self) -> list[str]:
        """Column names present in any row, in the canonical order, extra columns last."""
        seen = {k for r in self.rows for k in r}
        return [c for c in ORDER if c in seen] + sorted(seen - set(ORDER))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            if not any(key in r for r in self.rows):
                raise KeyError(f"history has no column {key!r}; columns: {self.columns}")
            return [r.get(key) for r in self.rows]
        return self.rows[key]

    def __eq__(self, other) -> bool:
        return isinstance(other, History) and self.rows == other.rows

    def __repr__(self) -> str:
        last = self.rows[-1] if self.rows else {}
        return f"History({len(self)} epochs, last={last})"

    def to_dict(self) -> dict:
        return {"columns": self.columns, "rows": [dict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise ValueError("History.from_dict: expected {'rows': [...]} as written by History.to_dict")
        return cls(data["rows"])

    def to_json(self, path) -> str:
        """Write {"columns": [...], "rows": [{...}, ...]} (NaN/Inf written as null); returns the path."""
        path = os.fspath(path)
        _parent(path)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1, allow_nan=False)
            f.write("\n")
        return path

    @classmethod
    def from_json(cls, path) -> "History":
        with open(os.fspath(path), encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def to_csv(self, path) -> str:
        """Write a header line of column names and one line per epoch (empty cells for missing values)."""
        return write_csv(path, self.rows, self.columns)

    def to_pandas(self):
        """A pandas DataFrame with one row per epoch, indexed by "epoch" (pandas is an optional dependency)."""
        return to_pandas(self.rows, self.columns, index="epoch")

    def save(self, path) -> str:
        """`to_csv` for a .csv path, else `to_json`."""
        return self.to_csv(path) if os.fspath(path).lower().endswith(".csv") else self.to_json(path)


def _parent(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)


def to_pandas(rows, columns, index=None):
    """`rows` (dicts) as a pandas DataFrame with `columns` (missing values as NaN), optionally indexed."""
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("to_pandas needs pandas: pip install 'jaxnets[pandas]' (or pip install pandas); "
                          "to_csv and to_json need nothing") from err
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))
    return frame.set_index(index) if index is not None and index in frame.columns else frame


def write_csv(path, rows, columns) -> str:
    """Write dict `rows` as CSV with a header of `columns` (empty cells for missing/None); returns the path."""
    path = os.fspath(path)
    _parent(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else r[c] for c in columns])
    return path
