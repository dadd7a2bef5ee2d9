"""Learning curves: `plot_history(history, path)` writes a PNG; without a path it returns the matplotlib Figure
(shown inline in Jupyter). matplotlib is an optional dependency (`pip install jaxnets[plot]`)."""
from __future__ import annotations

import os
import sys


def _pyplot(headless: bool):
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("plot_history needs matplotlib; install it with `pip install jaxnets[plot]`") from err
    if headless and "matplotlib.pyplot" not in sys.modules:   # writing a file: no display needed; never override
        matplotlib.use("Agg", force=False)                     # a backend the user (or Jupyter) already chose
    import matplotlib.pyplot as plt

    return plt


def _integer_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True, min_n_ticks=1)


def plot_history(history, path=None, *, title: str | None = None, best_epoch: int | None = None):
    """Plot loss (and accuracy, when recorded) per epoch for training and validation.

    history: a `History`, a `FitResult` (its history and best epoch), or anything with `.rows` of dicts with
    "epoch"/"train_loss"/...; path: where to save a PNG, or None to return the Figure (Jupyter shows it);
    best_epoch: draw a dotted marker at that epoch (e.g. `result.best_epoch`). Returns the path, or the Figure.
    """
    if hasattr(history, "history") and hasattr(history, "best_epoch"):   # a FitResult
        best_epoch = history.best_epoch if best_epoch is None else best_epoch
        history = history.history
    rows = list(getattr(history, "rows", history))
    if not rows:
        raise ValueError("plot_history: the history is empty; train at least one epoch first")
    plt = _pyplot(headless=path is not None)
    epochs = [r["epoch"] for r in rows]
    has_acc = any(r.get("train_accuracy") is not None or r.get("val_accuracy") is not None for r in rows)
    panels = [("loss", "loss (cost)")] + ([("accuracy", "accuracy")] if has_acc else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels):
        for split, style in (("train", "-"), ("val", "--")):
            values = [r.get(f"{split}_{metric}") for r in rows]
            points = [(e, v) for e, v in zip(epochs, values) if v is not None]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, style, marker="o" if len(xs) < 30 else None, markersize=3,
                        label="training" if split == "train" else "validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="gray", linestyle=":", label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(_integer_locator())  # whole epochs only
        ax.set_ylabel(label)
        ax.set_title(f"{label} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "learning curves")
    fig.tight_layout()
    if path is None:
        plt.close(fig)   # not kept by pyplot: Jupyter shows the returned Figure once (not also as an open figure)
        return fig
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
