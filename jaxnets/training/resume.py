"""Checkpoint directories of a training run: one run per directory, nothing lost, nothing mixed up.

One file per checkpointed epoch, `<dir>/ckpt-<epoch>.npz` (`jaxnets.checkpoint`: atomic, pickle-free),
holding {"train": TrainState, "key": the run's key(s), "best": (params, state) of the best epoch when kept} and
the metadata {"epoch", "histories", "stop_reasons", "has_best", "run": the run's identity}. The newest `keep`
files of the run are kept (`CheckpointDir(..., keep=2)`, fit's `keep_checkpoints`). When the model came from
`jaxnets.models`, the identity also holds its recipe and input shape ("recipe"), so `jaxnets.load_model(dir)`
rebuilds it without code (a model without a recipe records None; one whose recipe has no JSON form, the reason). A stream of batches resumes like arrays only if its batches depend on nothing but
the epoch: pass a factory (called once per epoch, with the 1-based epoch number when it takes an argument);
an iterator (one pass) cannot be rewound, so resuming from it is refused.

The directory belongs to one run. Its identity is a fingerprint of what decides the trajectory: the model (the
names of all its layers, and the shapes/dtypes of params and state), the loss, the penalty (its name and value
at the initial params), the optimizer (its state's structure and the updates it makes to a fixed probe gradient
in two steps, which tells learning rates and momenta apart), the key, the training data (shape, dtype and a
digest of 256 rows spread over it; for a stream, its first batch), and the settings (batch, gradients,
drop_last, shuffle, augmentation on or off, mixed precision, whether the best epoch is kept). Before training:

- the directory is validated (created if missing; not a file; writable, by writing and removing a probe file)
  and locked (`flock` on the directory itself), so a second fit on it fails at once instead of interleaving (in a
  multi-process run only process 0 locks and writes; the others only read);
- checkpoints already there are refused unless `resume=True` (continue them: their identity must equal this
  run's, else the error names what differs) or `overwrite=True` (they are deleted first).

A write that fails during training raises `CheckpointWriteError` naming the path and the OS error, with the
trained result attached (`err.result`), so no training is lost.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import checkpoint

KEEP = 2   # the default of CheckpointDir(keep=...)
_PROBE_RTOL = 1e-4


class CheckpointDirError(ValueError):
    """The checkpoint directory cannot be used for this run (explained in the message)."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written during training. `path`: the file; `result`: the FitResult (or
    ensemble result) trained so far, with the last finite state."""

    def __init__(self, message: str, path: str, result=None):
        super().__init__(message)
        self.path, self.result = path, result


def key_data(key) -> np.ndarray:
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


def _shapes(tree) -> list:
    return [[jax.tree_util.keystr(p), list(np.shape(a)), str(getattr(a, "dtype", np.asarray(a).dtype))]
            for p, a in jax.tree_util.tree_leaves_with_path(tree)]


def data_digest(x, y) -> dict:
    """shape, dtype and the SHA-256 of 256 rows spread evenly over (x, y)."""
    n = int(x.shape[0])
    rows = np.unique(np.linspace(0, n - 1, min(n, 256)).astype(np.int64))
    digest = hashlib.sha256()
    for a in (x, y):
        digest.update(np.ascontiguousarray(np.asarray(jax.device_get(a[rows]))).tobytes())
    return {"x": [list(x.shape), str(x.dtype)], "y": [list(y.shape), str(y.dtype)], "rows": digest.hexdigest()}


def optimizer_probe(optimizer, params) -> list:
    """Σ|u| per leaf of the first two updates `optimizer` makes to the probe gradient g = 10⁻³ (from its initial
    state, at `params`): differs when the learning rate, momentum or other hyper-parameters differ."""
    from jaxnets.training.step import takes_value

    extra = {"value": jnp.zeros((), jnp.float32)} if takes_value(optimizer) else {}   # reduce_on_plateau needs it

    @jax.jit
    def probe(p):
        g = jax.tree_util.tree_map(lambda a: jnp.full_like(a, 1e-3), p)
        state = optimizer.init(p)
        out = []
        for _ in range(2):
            u, state = optimizer.update(g, state, p, **extra)
            out.append([jnp.sum(jnp.abs(leaf)).astype(jnp.float32) for leaf in jax.tree_util.tree_leaves(u)])
        return out

    return [[float(v) for v in step] for step in jax.device_get(probe(params))]


def model_recipe(model, data: dict):
    """{"recipe": JSON recipe, "input_shape": one example's shape} for load_model; {"error": why} when the recipe
    cannot be stored; None for a model without a recipe. `data` is `data_digest`'s record (or {"stream": it})."""
    if getattr(model, "recipe", None) is None:
        return None
    from jaxnets.models import RecipeError, recipe_to_json

    try:
        recipe = recipe_to_json(model.recipe)
    except RecipeError as err:
        return {"error": str(err)}
    return {"recipe": recipe, "input_shape": list(data.get("stream", data)["x"][0][1:])}


def run_identity(model, loss, penalty, ts, optimizer, keys, data, config: dict) -> dict:
    """The run's fingerprint (JSON-able): see the module docstring."""
    from jaxnets import nodes

    cost = None if penalty is None else float(jax.device_get(penalty.value(ts.params)))
    return {"model": [layer.name for _, layer in nodes.nodes(model)], "recipe": model_recipe(model, data),
            "params": _shapes(ts.params),
            "state": _shapes(ts.state), "opt_state": _shapes(ts.opt_state),
            "optimizer_probe": optimizer_probe(optimizer, ts.params), "loss": getattr(loss, "name", repr(loss)),
            "penalty": None if penalty is None else [getattr(penalty, "name", "penalty"), cost],
            "key": key_data(keys).tolist(), "data": data, "config": config}


def _close(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(u, v) for u, v in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=_PROBE_RTOL, abs_tol=1e-30)
    return a == b


_WHAT = {"model": "model", "recipe": "model (its jaxnets.models recipe)", "params": "model (its parameter shapes)", "state": "model (its layer state)",
         "opt_state": "optimizer (its state)", "optimizer_probe": "optimizer hyper-parameters (learning rate, "
         "momentum, ...)", "key": "key (CLI: --seed)", "data": "training data", "config": "batch settings"}


def differences(saved: dict, current: dict) -> list[str]:
    """What differs between a saved run identity and this run's (a "recipe" entry is compared only when the saved
    identity has one: checkpoints written before recipes were recorded still resume)."""
    return [f"{_WHAT.get(k, k)}" + (f" {saved.get(k)!r} vs {current.get(k)!r}" if k == "config" else "")
            for k in current if not _close(saved.get(k), current[k]) and (k != "recipe" or k in saved)]


class CheckpointDir:
    """A validated, locked checkpoint directory for one run (see the module docstring)."""

    def __init__(self, directory, *, resume: bool, overwrite: bool, writer: bool = True, keep: int = KEEP):
        """keep: how many of the run's newest checkpoints stay on disk (a positive int; older ones are deleted after
        each save). writer=False (the other processes of a multi-process run): only read the checkpoints to resume
        from; no lock, no writes, no deletions (process 0 does those)."""
        if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 1:
            raise ValueError(f"keep_checkpoints (keep) must be a positive int (how many of the newest checkpoints to "
                             f"keep, e.g. 2), got {keep!r}")
        self.keep = int(keep)
        self.directory = os.fspath(directory)
        if resume and overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other: resume continues the "
                             "checkpoints in checkpoint_dir, overwrite deletes them; pass one")
        self.resume, self.overwrite, self.writer = resume, overwrite, writer
        self._lock = None
        if writer:
            self._validate()
            self._lock = self._take_lock()
        self.written: list[str] = []

    def _validate(self) -> None:
        d = self.directory
        if os.path.lexists(d) and not os.path.isdir(d):
            raise CheckpointDirError(f"checkpoint_dir {d!r} exists and is not a directory; pass a directory path "
                                     "(it is created if missing)")
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as err:
            raise CheckpointDirError(f"checkpoint_dir {d!r} cannot be created: {err.strerror or err}; pass a "
                                     "writable directory") from err
        probe = os.path.join(d, f".jaxnets-write-test-{os.getpid()}")
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise CheckpointDirError(f"checkpoint_dir {d!r} is not writable: {err.strerror or err} (errno "
                                     f"{errno.errorcode.get(err.errno, err.errno)}); pass a writable directory with "
                                     "free space") from err
        finally:
            try:
                os.unlink(probe)
            except OSError:
                pass

    def _take_lock(self):
        """An exclusive `flock` on the directory itself (no lock file to leave behind; the kernel releases it when
        the process ends, also on SIGKILL)."""
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CheckpointDirError(f"checkpoint_dir {self.directory!r} is in use by another training run (it holds "
                                     "the directory's lock); wait for it to finish or pass another directory") from None
        return fd

    def close(self) -> None:
        """Release the directory's lock."""
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    def existing(self) -> list:
        return checkpoint.list_checkpoints(self.directory)

    def prepare(self, run_identity: dict):
        """Apply the rules for checkpoints already in the directory; returns (path, tree-less metadata) of the
        checkpoint to resume from, or None."""
        found = self.existing()
        if not found:
            return None
        if self.overwrite:
            if self.writer:
                for _, path in found:
                    os.remove(path)
            return None
        epochs = [e for e, _ in found]
        if not self.resume:
            raise CheckpointDirError(
                f"checkpoint_dir {self.directory!r} already holds checkpoints of a run (epochs {epochs}); pass "
                "resume=True to continue that run, overwrite=True to delete them and start afresh, or another "
                "directory")
        path = found[-1][1]
        meta = checkpoint.load_metadata(path)
        saved = meta.get("run")
        if not isinstance(saved, dict):
            raise CheckpointDirError(f"cannot resume from {path}: it records no run identity (written by another "
                                     "program or an older jaxnets); pass overwrite=True or another directory")
        diff = differences(saved, run_identity)
        if diff:
            raise CheckpointDirError(f"cannot resume from {path}: it was written by a different run (different "
                                     f"{'; '.join(diff)}); pass the same arguments to continue it, overwrite=True "
                                     "to replace it, or another directory")
        return path, meta

    def save(self, epoch: int, tree, metadata: dict, result_so_far) -> str:
        """Write the checkpoint of `epoch` and prune this run's older ones (keeping the newest `keep`)."""
        path = checkpoint.checkpoint_path(self.directory, epoch)
        try:
            checkpoint.save(path, tree, metadata=metadata)
        except OSError as err:
            raise CheckpointWriteError(
                f"writing the checkpoint {path} failed after epoch {epoch}: {err.strerror or err} (errno "
                f"{errno.errorcode.get(err.errno, err.errno)}). Training stopped; err.result holds the trained state "
                "of that epoch; free space or pass another checkpoint_dir, then resume from the last checkpoint",
                path, result_so_far() if result_so_far else None) from err
        if path not in self.written:
            self.written.append(path)
        owned = [p for _, p in self.existing()]
        for old in owned[:-self.keep]:
            if old != path:
                try:
                    os.remove(old)
                except FileNotFoundError:
                    pass
        return path
