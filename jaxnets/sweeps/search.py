"""Grid and random search as one compiled program: numeric hyper-parameters are traced arrays.

    def make_optimizer(hp):                 # hp["learning_rate"], hp["momentum"]: traced float32 scalars
        return optim.sgd(hp["learning_rate"], momentum=hp["momentum"])

    def make_penalty(hp):
        return losses.l2(hp["lmbda"], n=len(x))

    res = grid_search(model, losses.softmax_cross_entropy, make_optimizer, (x, y), val_data=(xv, yv),
                      grid={"learning_rate": [0.03, 0.1, 0.3, 1.0], "momentum": [0.0, 0.9], "lmbda": [0.0, 1.0]},
                      penalty=make_penalty, epochs=30, batch_size=32, key=jax.random.key(0),
                      early_stopping=EarlyStopping(patience=5))
    print(res)                         # the table; res.best_config, res.best_params, res.to_csv("sweep.csv")

`model`, `optimizer` and `penalty` are each either the object itself or a function `hp -> object` called
inside the traced program with `hp` = the configuration: numeric entries are 0-d arrays (so use `jnp` ops,
not Python `if`, on them), structural entries the Python values. A numeric dropout rate works as
`Dropout(hp["dropout"])` (a traced rate is taken as given); an init scale as
`Dense(n, w_init=lambda k, s, d=None: hp["scale"] * nielsen_normal(k, s, d))`.

All configurations of one structural group train as lanes of the training engine (one vmapped program, see
`jaxnets.training.lanes`), each with its own early stopping and best-epoch params.
Every lane starts from the same key — the same initial weights and data order, so configurations differ
only by their hyper-parameters — unless the search has an int axis "seed": configuration i then uses
`fold_in(key, seed_i)`. Structural axes (non-numeric values, or names in `static=`) loop over programs.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.sweeps.space import grid_configs, group_by_structure, numeric_arrays, sample_configs, split_axes
from jaxnets.sweeps.results import SweepResult
from jaxnets.training import lanes
from jaxnets.training.config import Builder
from jaxnets.training.early_stopping import StopReason
from jaxnets.training.evaluation import DEFAULT_CHUNK
from jaxnets.training.run import check_run


def _lane_keys(key, configs):
    if "seed" in configs[0]:
        if not all(isinstance(c["seed"], (int, np.integer)) and c["seed"] >= 0 for c in configs):
            raise ValueError(f"the 'seed' axis must hold non-negative ints, got {[c['seed'] for c in configs]}")
        seeds = jnp.asarray([int(c["seed"]) for c in configs], jnp.uint32)
        return jax.vmap(lambda s: jax.random.fold_in(key, s))(seeds)
    return jnp.stack([key] * len(configs))


def run_configs(configs, model, loss, optimizer, train_data, *, epochs, batch_size, key, val_data=None,
                penalty=None, gradients="manual", early_stopping=None, monitor=None, static=(), chunk_size=None,
                progress=True, verbose=False, drop_last=False, augment=None, eval_batch_size=DEFAULT_CHUNK,
                loop="auto", compute_dtype=None, desc="sweep") -> SweepResult:
    """Train every configuration (a list of dicts) and collect a `SweepResult`: the code path shared by
    `grid_search` and `random_search` (see the module docstring for the arguments). The arguments are checked
    once, on the first configuration (`check_run`), which also chooses the driver of `loop="auto"` for them all."""
    if isinstance(static, str):
        static = (static,)
    numeric, structural = split_axes(configs, static)
    groups = group_by_structure(configs, structural)
    t0 = time.perf_counter()
    hp0 = {n: v[0] for n, v in numeric_arrays([configs[0]], numeric).items()}
    run = check_run("grid_search/random_search", model, loss, optimizer, train_data, epochs=epochs,
                    batch_size=batch_size, key=key, hp=hp0, static=groups[0][0], val_data=val_data, gradients=gradients,
                    penalty=penalty, early_stopping=early_stopping, monitor=monitor, loop=loop, drop_last=drop_last,
                    augment=augment, compute_dtype=compute_dtype, eval_batch_size=eval_batch_size)
    rows, histories, outcomes = [None] * len(configs), [None] * len(configs), []
    for static_values, indices in groups:
        group = run._replace(build=Builder(model, optimizer, penalty, tuple(static_values.items())))
        hps = numeric_arrays([configs[i] for i in indices], numeric)
        out = lanes.train_lanes(group, hps, _lane_keys(key, [configs[i] for i in indices]), chunk_size=chunk_size,
                                progress=progress, verbose=verbose, desc=desc)
        for j, i in enumerate(indices):
            histories[i] = out.histories[j]
            rows[i] = _row(configs[i], out.histories[j], out.best_epochs[j], out.stop_reasons[j])
        outcomes.append((list(indices), out))
    return SweepResult([dict(c) for c in configs], rows, histories, run.monitor, outcomes, len(groups),
                       time.perf_counter() - t0)


def _row(config, history, best_epoch, stop_reason):
    row = dict(config)
    best = history[best_epoch - 1] if best_epoch else {}
    row["best_epoch"] = best_epoch or None
    row["epochs_run"] = len(history)
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        row[name] = best.get(name)
    reason = StopReason(stop_reason)
    row["stopped_early"], row["diverged"] = reason.stopped_early, reason == StopReason.DIVERGED
    return row


def grid_search(model, loss, optimizer, train_data, *, grid: dict, epochs: int, batch_size: int, key,
                val_data=None, penalty=None, gradients: str = "manual", early_stopping=None, monitor=None,
                static=(), chunk_size=None, progress: bool = True, verbose: bool = False, drop_last: bool = False,
                augment=None, eval_batch_size: int = DEFAULT_CHUNK, loop: str = "auto",
                compute_dtype=None) -> SweepResult:
    """Train every point of the Cartesian product of `grid` ({name: [values]}) and pick the best on
    validation data.

    model / optimizer / penalty: the object or `hp -> object` (e.g. `make_optimizer(hp)`); the other arguments
    are those of `jaxnets.fit`. early_stopping: an `EarlyStopping`, per configuration inside the program
    (its monitor is also the selection criterion); monitor: the selection column without early stopping
    ("val_loss" with val_data, else "train_loss"; or "val_accuracy"). static: names of axes to loop over in
    Python even though their values are numbers (layer sizes). chunk_size: at most this many configurations
    per compiled program (memory). Returns a `SweepResult`.
    """
    return run_configs(grid_configs(grid), model, loss, optimizer, train_data, epochs=epochs,
                       batch_size=batch_size, key=key, val_data=val_data, penalty=penalty, gradients=gradients,
                       early_stopping=early_stopping, monitor=monitor, static=static, chunk_size=chunk_size,
                       progress=progress, verbose=verbose, drop_last=drop_last, augment=augment,
                       eval_batch_size=eval_batch_size, loop=loop, compute_dtype=compute_dtype, desc="grid search")


def random_search(model, loss, optimizer, train_data, *, space: dict, n_trials: int, epochs: int, batch_size: int,
                  key, seed: int = 0, val_data=None, penalty=None, gradients: str = "manual", early_stopping=None,
                  monitor=None, static=(), chunk_size=None, progress: bool = True, verbose: bool = False,
                  drop_last: bool = False, augment=None, eval_batch_size: int = DEFAULT_CHUNK, loop: str = "auto",
                  compute_dtype=None) -> SweepResult:
    """Train `n_trials` configurations drawn from `space` ({name: uniform(..) | loguniform(..) | randint(..)
    | choice([...]) | [values] | constant}; draws from numpy's Generator seeded by `seed`) and pick the best;
    the same code path and arguments as `grid_search`."""
    return run_configs(sample_configs(space, n_trials, seed), model, loss, optimizer, train_data,
                       epochs=epochs, batch_size=batch_size, key=key, val_data=val_data, penalty=penalty,
                       gradients=gradients, early_stopping=early_stopping, monitor=monitor, static=static,
                       chunk_size=chunk_size, progress=progress, verbose=verbose, drop_last=drop_last,
                       augment=augment, eval_batch_size=eval_batch_size, loop=loop, compute_dtype=compute_dtype,
                       desc="random search")
