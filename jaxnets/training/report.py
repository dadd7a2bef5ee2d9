"""Per-epoch output of `fit`: a tqdm bar on a terminal, optional one-line-per-epoch log, or nothing."""
from __future__ import annotations

import os
import sys

_SHORT = {"train_loss": "loss", "train_accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}


def format_row(row: dict) -> str:
    """'loss 0.1234  acc 0.9500  val_loss 0.2000  val_acc 0.9300  1.05s' for the metrics a row holds."""
    parts = [f"{short} {row[name]:.4f}" for name, short in _SHORT.items() if row.get(name) is not None]
    if row.get("time") is not None:
        parts.append(f"{row['time']:.2f}s")
    return "  ".join(parts)


class Reporter:
    """progress: show a tqdm bar over epochs, but only when stderr is a terminal.
    verbose: print one line per epoch to stdout (through the bar when it is shown)."""

    def __init__(self, epochs: int, start: int, *, progress: bool, verbose: bool, stream=None):
        self.epochs, self.verbose = epochs, verbose
        stream = sys.stderr if stream is None else stream
        self.bar = None
        if progress and getattr(stream, "isatty", lambda: False)():
            from tqdm.auto import tqdm

            try:
                sized = os.get_terminal_size(stream.fileno()).columns > 0
            except (OSError, ValueError, AttributeError):
                sized = False
            # a terminal that reports no size (some pseudo-terminals) would hide the bar: assume 100 x 50
            self.bar = tqdm(total=epochs, initial=start, unit="epoch", desc="fit", file=stream, leave=True,
                            dynamic_ncols=sized, ncols=None if sized else 100, nrows=None if sized else 50)

    def epoch(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(format_row(row), refresh=False)
            self.bar.update(1)
        if self.verbose:
            line = f"epoch {row['epoch']:>{len(str(self.epochs))}}/{self.epochs}  {format_row(row)}"
            if self.bar is not None:
                self.bar.write(line)
            else:
                print(line, flush=True)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        elif self.verbose:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
