"""Checkpoints of a `fit` run: everything needed to continue it bit for bit.

One file per checkpointed epoch, `<checkpoint_dir>/ckpt-<epoch>.npz` (`jaxnets.checkpoint` format, atomic
writes), holding the tree {"train": TrainState, "key": the run's key, "best": (params, state) of the best
epoch when early stopping restores it} and the metadata {"epoch": epochs completed, "history": ...,
"stop_reason": None | "early_stopping" | "callback", "has_best": bool, "config": {...}}. The newest
`KEEP` files are kept, older ones deleted after each save.

Epoch e (1-based) trains with `fold_in(key, e - 1)`, so a run resumed from the checkpoint of epoch k replays
epochs k+1, k+2, ... exactly as the uninterrupted run would (same compiled program, same inputs).
"""
from __future__ import annotations

import os

import jax
import numpy as np

from jaxnets import checkpoint
from jaxnets.training.history import History

KEEP = 2


class ResumePoint:
    """What a checkpoint restores: train state, best (params, state) or None, history, epochs completed."""

    def __init__(self, ts, best, history, epoch, stop_reason, path):
        self.ts, self.best, self.history, self.epoch = ts, best, history, epoch
        self.stop_reason, self.path = stop_reason, path


def _key_data(key) -> np.ndarray:
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


def save(directory, epoch: int, ts, key, best, history: History, *, stop_reason=None, config=None) -> str:
    """Write the checkpoint of `epoch` (1-based, epochs completed) and prune old ones; returns its path."""
    tree = {"train": ts, "key": key}
    if best is not None:
        tree["best"] = best
    metadata = {"epoch": int(epoch), "history": history.to_dict(), "stop_reason": stop_reason,
                "has_best": best is not None, "config": config or {}}
    path = checkpoint.save(checkpoint.checkpoint_path(directory, epoch), tree, metadata=metadata)
    for _, old in checkpoint.list_checkpoints(directory)[:-KEEP]:
        try:
            os.remove(old)
        except FileNotFoundError:
            pass
    return path


def load(directory, ts_like, key, best_like) -> ResumePoint | None:
    """The latest checkpoint in `directory` restored onto the structure of `ts_like` (None if there is none).

    Raises ValueError when the checkpoint belongs to a run with a different key, and CheckpointError (a
    ValueError) when its params/optimizer state do not match this model and optimizer.
    """
    path = checkpoint.latest(directory)
    if path is None:
        return None
    meta = checkpoint.load_metadata(path)
    like = {"train": ts_like, "key": key}
    if meta.get("has_best"):
        like["best"] = best_like
    try:
        tree = checkpoint.load(path, like=like)
    except checkpoint.CheckpointError as err:
        raise checkpoint.CheckpointError(
            f"cannot resume from {path}: {err}. The checkpoint was written by a different model or optimizer; "
            "use a fresh checkpoint_dir or resume=False") from err
    if not np.array_equal(_key_data(tree["key"]), _key_data(key)):
        raise ValueError(f"cannot resume from {path}: it was written by a run with a different key; pass the "
                         "same key (CLI: --seed) to continue it, or use resume=False / a fresh checkpoint_dir")
    return ResumePoint(tree["train"], tree.get("best"), History.from_dict(meta["history"]), int(meta["epoch"]),
                       meta.get("stop_reason"), path)
