"""`SweepResult`: one row per configuration, the best configuration, its params; a printable table and CSV."""
from __future__ import annotations

import math
from typing import Any, Optional

import jax

from jaxnets.training.history import to_pandas, write_csv

METRICS = ("best_epoch", "epochs_run", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
           "stopped_early", "diverged")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


class SweepResult:
    """The outcome of `grid_search` / `random_search`.

    configs: the K configurations (dicts of Python values), in search order.
    rows: one dict per configuration: its hyper-parameters, then best_epoch (1-based epoch with the best
        monitored value, None if no epoch finished), epochs_run, the train/val metrics *at that epoch*,
        stopped_early, diverged.
    histories: one `History` per configuration (rows of the completed epochs).
    monitor: the column the best epoch and configuration were chosen on ("val_loss" by default).
    best_index / best_config / best_row: the configuration with the best monitored value (lowest loss or
        highest accuracy; ties to the first); best_params / best_state: its params at its best epoch.
    result(i): configuration i as a `FitResult` (as `fit` and `EnsembleResult.member` return); stop_reasons,
        best_epochs: one entry per configuration, as in `EnsembleResult`.
    programs: compiled programs run (one per structural group and chunk size); seconds: total wall time.
    """

    def __init__(self, configs, rows, histories, monitor, groups, programs, seconds):
        self.configs, self.rows, self.histories, self.monitor = configs, rows, histories, monitor
        self._groups = groups  # [(indices, LanesOutcome of those configurations)]
        self.programs, self.seconds = programs, seconds
        self.best_index = self._select()

    def _select(self) -> Optional[int]:
        sign = -1.0 if self.monitor.endswith("accuracy") else 1.0
        scored = [(sign * r[self.monitor], i) for i, r in enumerate(self.rows)
                  if r.get(self.monitor) is not None and math.isfinite(r[self.monitor])]
        return min(scored)[1] if scored else None

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def best_config(self) -> Optional[dict]:
        return None if self.best_index is None else dict(self.configs[self.best_index])

    @property
    def best_row(self) -> Optional[dict]:
        return None if self.best_index is None else dict(self.rows[self.best_index])

    def _locate(self, i: int):
        for indices, outcome in self._groups:
            if i in indices:
                return outcome, indices.index(i)
        raise IndexError(f"configuration {i} out of range 0..{len(self) - 1}")

    def params(self, i: int) -> tuple[Any, Any]:
        """(params, state) of configuration i at its best epoch (its initial ones if no epoch finished)."""
        outcome, j = self._locate(i)
        return jax.tree_util.tree_map(lambda a: a[j], outcome.best)

    def result(self, i: int):
        """Configuration i as a FitResult: params/state of its best epoch, its history, best epoch, stop reason."""
        from jaxnets.training.fit import fit_result

        outcome, j = self._locate(i)
        return fit_result(outcome, True, lane=j)

    @property
    def stop_reasons(self) -> list:
        return [self._locate(i)[0].stop_reasons[self._locate(i)[1]] for i in range(len(self))]

    @property
    def best_epochs(self) -> list:
        return [r["best_epoch"] for r in self.rows]

    @property
    def best_params(self):
        return None if self.best_index is None else self.params(self.best_index)[0]

    @property
    def best_state(self):
        return None if self.best_index is None else self.params(self.best_index)[1]

    @property
    def columns(self) -> list[str]:
        names = list(self.configs[0]) if self.configs else []
        present = {k for r in self.rows for k, v in r.items() if v is not None}
        return names + [m for m in METRICS if m in present]

    def table(self, sort: bool = False, limit: Optional[int] = None) -> str:
        """The rows as an aligned text table (sorted best first when `sort`; at most `limit` rows); the
        best configuration is marked with '*'."""
        order = list(range(len(self.rows)))
        if sort:
            sign = -1.0 if self.monitor.endswith("accuracy") else 1.0

            def key(i):
                v = self.rows[i].get(self.monitor)
                return (v is None or not math.isfinite(v), sign * v if v is not None and math.isfinite(v) else 0.0)

            order.sort(key=key)
        if limit is not None:
            order = order[:limit]
        cols = self.columns
        hp = set(self.configs[0]) if self.configs else set()
        cells = [["", *cols]] + [["*" if i == self.best_index else "",
                                  *(str(self.rows[i][c]) if c in hp and self.rows[i][c] is None
                                    else _fmt(self.rows[i].get(c)) for c in cols)] for i in order]
        widths = [max(len(r[j]) for r in cells) for j in range(len(cells[0]))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        best = "none (no configuration finished an epoch)" if self.best_index is None else \
            f"#{self.best_index} {self.best_config} ({self.monitor} {_fmt(self.best_row[self.monitor])})"
        return (f"{len(self)} configurations, {self.programs} compiled program(s), {self.seconds:.1f}s; "
                f"best by {self.monitor}: {best}\n{self.table()}")

    def __repr__(self) -> str:
        return f"SweepResult({len(self)} configs, monitor={self.monitor!r}, best_index={self.best_index})"

    def to_pandas(self):
        """The rows as a pandas DataFrame (one row per configuration, in search order; pandas is optional)."""
        return to_pandas(self.rows, self.columns)

    def to_csv(self, path) -> str:
        """Write the rows (header: the columns) to `path`; returns the path."""
        return write_csv(path, self.rows, self.columns)
