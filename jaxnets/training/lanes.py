"""K training runs ("lanes") through the one engine, for ensembles and sweeps: shared checks, and chunking.

    out = train_lanes(build, loss, config, x, y, val, hps, keys, epochs=10, ...)

A lane is one configuration: hyper-parameters `hp` (a dict of scalars, traced inside the program, so every lane
of a structure shares one compiled program), a PRNG key, and its own early stopping and best epoch. `chunk_size`
lanes are trained at a time (memory); a short last chunk is padded with copies of its last lane, so every chunk
reuses the same compiled program. Lane k of an ensemble is exactly `fit(..., key=keys[k])`: the same init
(`model.init(keys[k], ...)`), the same epoch keys `fold_in(keys[k], e − 1)`.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.training import engine, validate
from jaxnets.training.config import Builder, TrainConfig
from jaxnets.training.early_stopping import MONITORS, EarlyStopping
from jaxnets.training.programs import programs
from jaxnets.training.streaming import ArrayData


class LanesOutcome(NamedTuple):
    """Every lane's final train state and best (params, state) (stacked on axis 0), and per lane: its History,
    stop reason, divergence point, best epoch; the wall time of each epoch call (all lanes of a chunk
    together; the first includes compilation) and the total."""

    ts: Any
    best: Any
    histories: list
    stop_reasons: list
    diverged_at: list
    best_epochs: list
    epoch_seconds: list
    seconds: float
    resumed_from: int = 0


def check_keys(keys, name: str = "keys") -> jax.Array:
    """K PRNG keys stacked on axis 0: typed keys of shape (K,) or raw uint32 keys of shape (K, 2)."""
    if isinstance(keys, (list, tuple)) and keys:
        keys = jnp.stack([jnp.asarray(k) for k in keys])
    hint = f"pass {name}=jax.random.split(jax.random.key(0), K) for K members"
    if not isinstance(keys, jax.Array):
        raise TypeError(f"{name} must be an array of PRNG keys stacked on axis 0, got {type(keys).__name__}; {hint}")
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    if not ((typed and keys.ndim == 1) or (keys.dtype == jnp.uint32 and keys.ndim == 2)):
        raise ValueError(f"{name} must hold K keys stacked on axis 0, got dtype {keys.dtype} shape "
                         f"{tuple(keys.shape)}; {hint}")
    if keys.shape[0] < 1:
        raise ValueError(f"{name} is empty; {hint}")
    return keys


def resolve_stopping(early_stopping, has_val: bool, classification: bool, default_monitor=None):
    """(monitor, rule or None): the column each lane's best epoch is chosen on, and its early-stopping rule."""
    if early_stopping is None:
        monitor = default_monitor or ("val_loss" if has_val else "train_loss")
        if monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
        rule = None
    else:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError("early_stopping must be a jaxnets.EarlyStopping(patience=...) or None")
        monitor, rule = early_stopping.monitor, early_stopping
    if monitor.startswith("val") and not has_val:
        raise ValueError(f"selecting or stopping on {monitor!r} needs val_data=(x_val, y_val); pass it or monitor "
                         "'train_loss'")
    if monitor.endswith("accuracy") and not classification:
        raise ValueError(f"{monitor!r} needs classification targets; monitor a loss instead")
    return monitor, rule


def check_data(build: Builder, hp0: dict, key0, loss, train_data, val_data, batch_size):
    """(x, y, val, classification, input_shape) as device arrays, checked as `fit` checks them."""
    x, y = validate.check_arrays(train_data, "train_data")
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size {batch_size} is larger than the {x.shape[0]} training examples; use "
                         f"batch_size <= {x.shape[0]}")
    from jaxnets.training.programs import output_shape

    validate.warn_if_channels_first(x, "train_data")
    try:
        out_shape = output_shape(build, hp0, key0, x.shape[1:], x.dtype)
    except KeyError as err:
        raise ValueError(f"building the model/optimizer/penalty asked for the hyper-parameter {err}, which this run "
                         f"does not define: it has {sorted({**dict(build.static), **hp0})} (the grid/space keys); "
                         "use one of those names") from None
    except (ValueError, TypeError, IndexError, jax.errors.ConcretizationTypeError) as err:
        raise ValueError(f"building the model/optimizer/penalty and running it on inputs of per-example shape "
                         f"{tuple(x.shape[1:])} failed: {err}\nNumeric hyper-parameters arrive as traced arrays; if "
                         "one must be a Python value (a layer size, a flag), list it in static=(...)") from err
    validate.check_targets(y, out_shape, "train_data", loss)
    classification = validate.is_classification(y, out_shape)
    model = build(hp0).model
    validate.check_initial_cost(model, loss, *validate.init_params(model, key0, x), x, y)
    val = None
    if val_data is not None:
        xv, yv = validate.check_arrays(val_data, "val_data")
        validate.check_same_features(x, xv)
        validate.check_targets(yv, out_shape, "val_data", loss)
        val = (jnp.asarray(xv), jnp.asarray(yv))
    return jnp.asarray(x), jnp.asarray(y), val, classification, tuple(x.shape[1:])


def _pad(tree, start: int, stop: int, size: int):
    """Rows [start, stop) of every leaf, padded to `size` rows by repeating the last row."""
    idx = np.minimum(np.arange(start, start + size), stop - 1)
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def train_lanes(build: Builder, loss, config: TrainConfig, x, y, val, hps: dict, keys, *, epochs: int,
                classification: bool, input_shape, rule: Optional[EarlyStopping], monitor: str, keep_best: bool,
                chunk_size: Optional[int] = None, progress: bool = True, verbose: bool = False,
                desc: str = "lanes") -> LanesOutcome:
    """Train K = len(keys) lanes (`hps`: {name: (K,) arrays}) through `engine.run`, `chunk_size` at a time."""
    k_total = int(keys.shape[0])
    if chunk_size is not None:
        chunk_size = validate.positive_int(chunk_size, "chunk_size", "lanes per compiled program, or None")
    chunk = k_total if chunk_size is None else min(chunk_size, k_total)
    hps = {name: jnp.asarray(v) for name, v in hps.items()}
    init = programs(build, loss, config, int(x.shape[0]), chunk, input_shape).init
    parts, seconds, epoch_seconds = [], 0.0, []
    for lo in range(0, k_total, chunk):
        hi = min(lo + chunk, k_total)
        hp_c, keys_c = _pad((hps, keys), lo, hi, chunk)
        plan = engine.Plan(build=build, loss=loss, config=config, data=ArrayData(x, y), val=val, lanes=chunk,
                           hps=hp_c, keys=keys_c, ts=init(hp_c, keys_c), epochs=epochs, classification=classification,
                           input_shape=tuple(input_shape), rule=rule, monitor=monitor, keep_best=keep_best,
                           progress=progress, verbose=verbose,
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


def _joined(parts: list, epoch_seconds: list, seconds: float) -> LanesOutcome:
    trees = [p[0] for p in parts]
    ts, best = trees[0] if len(trees) == 1 else jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *trees)
    return LanesOutcome(ts, best, sum((p[1] for p in parts), []), sum((p[2] for p in parts), []),
                        sum((p[3] for p in parts), []), sum((p[4] for p in parts), []), epoch_seconds, seconds)
