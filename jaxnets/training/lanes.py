"""K training runs ("lanes") through the one engine, for ensembles and sweeps: chunking, and joining the chunks.

    run = check_run("fit_ensemble", model, loss, optimizer, (x, y), epochs=10, batch_size=32, keys=keys)
    out = train_lanes(run, {}, run.keys, chunk_size=8)          # an engine.Outcome over every lane
    out.histories[k], out.best_epochs[k], out.stop_reasons[k]

A lane is one configuration: hyper-parameters `hp` (a dict of scalars, traced inside the program, so every lane
of a structure shares one compiled program), a PRNG key, and its own early stopping and best epoch. `chunk_size`
lanes are trained at a time (memory); a short last chunk is padded with copies of its last lane, so every chunk
reuses the same compiled program. Lane k of an ensemble is exactly `fit(..., key=keys[k])`: the same init
(`model.init(keys[k], ...)`), the same epoch keys `fold_in(keys[k], e − 1)`. The arguments were checked by
`jaxnets.training.run.check_run`, which made the `Run` trained here.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.training import engine, validate
from jaxnets.training.programs import programs


def _pad(tree, start: int, stop: int, size: int):
    """Rows [start, stop) of every leaf, padded to `size` rows by repeating the last row."""
    idx = np.minimum(np.arange(start, start + size), stop - 1)
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def train_lanes(run, hps: dict, keys, *, chunk_size: Optional[int] = None, progress: bool = True,
                verbose: bool = False, desc: str = "lanes") -> engine.Outcome:
    """Train K = len(keys) lanes of the checked `run` (`hps`: {name: (K,) arrays}) through `engine.run`,
    `chunk_size` at a time; one engine Outcome holds them all."""
    k_total = int(keys.shape[0])
    if chunk_size is not None:
        chunk_size = validate.positive_int(chunk_size, "chunk_size", "lanes per compiled program, or None")
    chunk = k_total if chunk_size is None else min(chunk_size, k_total)
    hps = {name: jnp.asarray(v) for name, v in hps.items()}
    init = programs(run.build, run.loss, run.config, run.data.n, chunk, run.input_shape).init
    parts, seconds, epoch_seconds = [], 0.0, []
    for lo in range(0, k_total, chunk):
        hi = min(lo + chunk, k_total)
        hp_c, keys_c = _pad((hps, keys), lo, hi, chunk)
        plan = engine.Plan.of(run, lanes=chunk, hps=hp_c, keys=keys_c, ts=init(hp_c, keys_c), progress=progress,
                              verbose=verbose,
                              desc=desc if k_total == chunk else f"{desc} {lo // chunk + 1}/{-(-k_total // chunk)}")
        n = hi - lo
        try:
            out = engine.run(plan)
        except BaseException as err:   # the lanes trained so far (earlier chunks, and this one's finished epochs)
            if isinstance(getattr(err, "result", None), engine.Outcome):
                part = err.result
                err.result = _joined(parts + [_part(part, n)], epoch_seconds + part.epoch_seconds,
                                     seconds + part.seconds)
            raise
        parts.append(_part(out, n))
        seconds += out.seconds
        epoch_seconds += out.epoch_seconds
    return _joined(parts, epoch_seconds, seconds)


def _part(out, n: int) -> tuple:
    """The first `n` lanes of an engine Outcome (the rest are padding)."""
    return (jax.tree_util.tree_map(lambda a: a[:n], (out.ts, out.best)), out.histories[:n], out.stop_reasons[:n],
            out.diverged_at[:n], out.best_epochs[:n])


def _joined(parts: list, epoch_seconds: list, seconds: float) -> engine.Outcome:
    """One engine Outcome of the chunks' parts, lanes in order."""
    trees = [p[0] for p in parts]
    ts, best = trees[0] if len(trees) == 1 else jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *trees)
    return engine.Outcome(ts=ts, best=best, histories=sum((p[1] for p in parts), []),
                          stop_reasons=sum((p[2] for p in parts), []), diverged_at=sum((p[3] for p in parts), []),
                          best_epochs=sum((p[4] for p in parts), []), resumed_from=0, epoch_seconds=epoch_seconds,
                          seconds=seconds)
