"""Progress output of the training engine: a tqdm bar on a terminal or in Jupyter (`tqdm.auto` draws a widget
there), a one-line "compiling" notice before a first epoch that compiles (also in a log file, where no bar is
drawn), an optional line per epoch, or nothing (progress=False).

The bar counts epochs; within an epoch that takes more than a few seconds it also advances with the steps:
the step driver reports after each step from the host loop, and a scanned epoch reports from inside the
compiled program every `every` steps through `jax.debug.callback` (compiled in only when a bar is shown, so
benchmarks and tests run the plain program; the callback does not wait for the device, so it adds no host
synchronisation to the steps).
"""
from __future__ import annotations

import os
import sys
import time

import jax
import numpy as np

_SHORT = {"train_loss": "loss", "train_accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
SLOW_EPOCH_SECONDS = 3.0   # show steps within epochs once an epoch takes longer than this
_CURRENT = []              # the Reporter of the running fit, for the in-program callback


def format_row(row: dict) -> str:
    """'loss 0.1234  acc 0.9500  val_loss 0.2000  val_acc 0.9300  1.05s' for the metrics a row holds."""
    parts = [f"{short} {row[name]:.4f}" for name, short in _SHORT.items() if row.get(name) is not None]
    if row.get("time") is not None:
        parts.append(f"{row['time']:.2f}s")
    return "  ".join(parts)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr is not a terminal but `tqdm.auto` draws a widget)."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is None:
            return False
        # Jupyter's kernel shell, or a subclass of it (Colab's); a kernel app in the config also counts
        return any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__) or \
            "IPKernelApp" in getattr(shell, "config", {})
    except Exception:   # noqa: BLE001 — an IPython without a running shell
        return False


def shows_bar(progress: bool, stream=None) -> bool:
    stream = sys.stderr if stream is None else stream
    return bool(progress) and (getattr(stream, "isatty", lambda: False)() or (stream is sys.stderr and in_notebook()))


def step_done(done: int) -> None:
    """`done` steps of the current epoch have finished (the step driver's host loop says so after each step)."""
    if _CURRENT:
        _CURRENT[-1].step(done)


def _on_step(i):
    step_done(int(np.max(np.asarray(i))) + 1)


def scan_tick(every: int):
    """`tick(i)` for a scan body: a host callback after steps every−1, 2·every−1, ... (i is 0-based)."""
    def tick(i):
        jax.lax.cond(i % every == every - 1, lambda: jax.debug.callback(_on_step, i), lambda: None)

    return tick


class Reporter:
    """progress: a tqdm bar over epochs (and steps within slow epochs), only when stderr is a terminal.
    verbose: print one line per epoch to stdout (through the bar when it is shown)."""

    def __init__(self, epochs: int, start: int, steps: int | None, *, progress: bool, verbose: bool,
                 stream=None, desc: str = "fit"):
        self.epochs, self.verbose, self.steps, self.progress, self.desc = epochs, verbose, steps, progress, desc
        stream = sys.stderr if stream is None else stream
        self.stream = stream
        self.bar, self._epoch_start, self._done_steps = None, time.perf_counter(), 0
        if shows_bar(progress, stream):
            from tqdm.auto import tqdm

            try:
                sized = os.get_terminal_size(stream.fileno()).columns > 0
            except (OSError, ValueError, AttributeError):
                sized = False
            # a terminal that reports no size (some pseudo-terminals) would hide the bar: assume 100 x 50
            self.bar = tqdm(total=float(epochs), initial=float(start), unit="epoch", desc=desc, file=stream,
                            leave=True, dynamic_ncols=sized, ncols=None if sized else 100, nrows=None if sized else 50,
                            bar_format="{l_bar}{bar}| {n:.2f}/{total:.0f} [{elapsed}<{remaining}{postfix}]")
        _CURRENT.append(self)

    @property
    def shown(self) -> bool:
        return self.bar is not None

    def begin_epoch(self) -> None:
        self._epoch_start, self._done_steps = time.perf_counter(), 0

    def step(self, done: int) -> None:
        """`done` steps of the current epoch have finished: advance the bar by the fraction, if epochs are slow."""
        if self.bar is None or not self.steps or time.perf_counter() - self._epoch_start < SLOW_EPOCH_SECONDS:
            return
        done = min(done, self.steps)
        if done > self._done_steps:
            self.bar.update((done - self._done_steps) / self.steps)
            self._done_steps = done

    def epoch(self, row: dict, note: str = "") -> None:
        """The end of an epoch: its metrics row (and a note, e.g. how many lanes still run)."""
        text = "  ".join(t for t in (format_row(row), note) if t)
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1 - (self._done_steps / self.steps if self.steps else 0))
        if self.verbose:
            line = f"epoch {row['epoch']:>{len(str(self.epochs))}}/{self.epochs}  {text}"
            if self.bar is not None:
                self.bar.write(line)
            else:
                print(line, flush=True)

    def compiling(self) -> None:
        """One line before a first epoch whose programs are not compiled yet (they compile during it)."""
        if not self.progress:
            return
        text = (f"{self.desc}: compiling the training programs during the first epoch (once per configuration; "
                "later fits with the same configuration reuse them)")
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        elif self.verbose:
            print(text, flush=True)

    def close(self) -> None:
        if self in _CURRENT:
            _CURRENT.remove(self)
        if self.bar is not None:
            self.bar.close()
            self.bar = None
